//! Bodies as a person reads them: JSON and XML pretty-printed, forms one field a line, other
//! text as is, binary as a hex preview. Redaction placeholders (`REDACTED-3`) stand out as
//! badges so the reader sees which credential a request carried. A body the recording holds
//! only in part is flagged, and a huge body is shown up to [`SHOWN_MAX`] bytes.

use std::sync::OnceLock;

use regex::Regex;

use super::escape::{Html, lossy};
use super::format;
use crate::ucwa::media::{essence, strip_bom};

/// The most pretty-printed text shown for one body: the page stays light to open even when
/// a session carries photos or multi-megabyte batch answers.
pub const SHOWN_MAX: usize = 64 * 1024;

/// How a body was recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Empty,
    Json,
    Xml,
    Form,
    Text,
    Binary,
}

impl Shape {
    pub fn label(self) -> &'static str {
        match self {
            Shape::Empty => "empty",
            Shape::Json => "JSON",
            Shape::Xml => "XML",
            Shape::Form => "form",
            Shape::Text => "text",
            Shape::Binary => "binary",
        }
    }
}

/// The body as text to show, and how it was recognised. JSON and XML that do not parse
/// (a truncated copy, a server bug) are shown as recorded.
pub fn pretty(body: &[u8], content_type: Option<&str>) -> (Shape, String) {
    if body.is_empty() {
        return (Shape::Empty, String::new());
    }
    let mime = content_type.map(essence).unwrap_or_default();
    let stripped = strip_bom(body);
    let first = stripped.iter().find(|b| !b.is_ascii_whitespace()).copied();
    let jsonish = mime.contains("json") || (mime.is_empty() && matches!(first, Some(b'{' | b'[')));
    let xmlish = mime.contains("xml") || (mime.is_empty() && first == Some(b'<'));
    if jsonish && let Ok(v) = serde_json::from_slice::<serde_json::Value>(stripped) {
        return (
            Shape::Json,
            serde_json::to_string_pretty(&v).unwrap_or_else(|_| lossy(body).into_owned()),
        );
    }
    if let Ok(text) = std::str::from_utf8(stripped) {
        if xmlish && roxmltree::Document::parse(text).is_ok() {
            return (Shape::Xml, indent_xml(text));
        }
        if mime == "application/x-www-form-urlencoded" {
            return (Shape::Form, text.replace('&', "\n&"));
        }
        if !text.contains('\0') {
            return (Shape::Text, text.to_string());
        }
    }
    (Shape::Binary, hex_preview(body))
}

/// Well-formed XML re-indented, two spaces a level; an element holding only text stays on
/// one line. Tags are copied as written (prefixes, attribute order and `&amp;` kept).
pub fn indent_xml(text: &str) -> String {
    let tokens = xml_tokens(text);
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    let mut depth = 0usize;
    let mut i = 0;
    let line = |out: &mut String, depth: usize, s: &str| {
        if !out.is_empty() {
            out.push('\n');
        }
        out.extend(std::iter::repeat_n("  ", depth));
        out.push_str(s);
    };
    while i < tokens.len() {
        let t = match tokens[i] {
            Tok::Text(text) => {
                // Whitespace-only text between tags is layout, not content.
                if !text.trim().is_empty() {
                    line(&mut out, depth, text.trim());
                }
                i += 1;
                continue;
            }
            Tok::Tag(t) => t,
        };
        let is_end = t.starts_with("</");
        let is_start =
            !is_end && !t.starts_with("<?") && !t.starts_with("<!") && !t.ends_with("/>");
        if is_end {
            depth = depth.saturating_sub(1);
            line(&mut out, depth, t);
        } else if is_start {
            // `<a>text</a>` on one line.
            if let (Some(Tok::Text(text)), Some(Tok::Tag(end))) =
                (tokens.get(i + 1), tokens.get(i + 2))
                && end.starts_with("</")
            {
                line(&mut out, depth, &format!("{t}{}{end}", text.trim()));
                i += 3;
                continue;
            }
            line(&mut out, depth, t);
            depth += 1;
        } else {
            line(&mut out, depth, t);
        }
        i += 1;
    }
    out
}

/// A piece of an XML document: a tag (comment, CDATA, declaration) or the text between.
#[derive(Debug, Clone, Copy)]
enum Tok<'a> {
    Tag(&'a str),
    Text(&'a str),
}

/// Tags and text of an XML document in order.
fn xml_tokens(text: &str) -> Vec<Tok<'_>> {
    let mut out = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    let mut text_start = 0;
    while i < b.len() {
        if b[i] != b'<' {
            i += 1;
            continue;
        }
        if text_start < i {
            out.push(Tok::Text(&text[text_start..i]));
        }
        let end = if text[i..].starts_with("<!--") {
            text[i..].find("-->").map(|e| i + e + 3)
        } else if text[i..].starts_with("<![CDATA[") {
            text[i..].find("]]>").map(|e| i + e + 3)
        } else {
            // A tag: `>` outside quoted attribute values ends it.
            let mut quote = None;
            let mut found = None;
            for (j, &c) in b.iter().enumerate().skip(i + 1) {
                match (quote, c) {
                    (None, b'"' | b'\'') => quote = Some(c),
                    (Some(q), c) if c == q => quote = None,
                    (None, b'>') => {
                        found = Some(j + 1);
                        break;
                    }
                    _ => {}
                }
            }
            found
        }
        .unwrap_or(b.len());
        out.push(Tok::Tag(&text[i..end]));
        i = end;
        text_start = end;
    }
    if text_start < b.len() {
        out.push(Tok::Text(&text[text_start..]));
    }
    out
}

/// The first 512 bytes as a hex dump.
fn hex_preview(body: &[u8]) -> String {
    let mut out = String::new();
    for (n, chunk) in body.chunks(16).take(32).enumerate() {
        out.push_str(&format!("{:06x}  ", n * 16));
        for b in chunk {
            out.push_str(&format!("{b:02x} "));
        }
        out.push('\n');
    }
    if body.len() > 512 {
        out.push('…');
    }
    out
}

fn placeholder_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"REDACTED-[0-9]+").expect("static regex"))
}

/// Text with every redaction placeholder as a badge (`<mark class="ph">`), all escaped.
pub fn text_with_placeholders(h: &mut Html, s: &str) {
    let mut last = 0;
    for m in placeholder_re().find_iter(s) {
        h.text(&s[last..m.start()]);
        h.raw("<mark class=\"ph\" title=\"redacted secret\">")
            .text(m.as_str())
            .raw("</mark>");
        last = m.end();
    }
    h.text(&s[last..]);
}

/// Every placeholder in `s`, in order of appearance.
pub fn placeholders(s: &str) -> impl Iterator<Item = &str> {
    placeholder_re().find_iter(s).map(|m| m.as_str())
}

/// A body block: a line saying what it is (shape, size, truncation) and the text.
pub fn render(h: &mut Html, body: &[u8], content_type: Option<&str>, truncated: bool) {
    let (shape, text) = pretty(body, content_type);
    h.raw("<div class=\"bmeta\">");
    if shape == Shape::Empty && !truncated {
        h.raw("no body</div>");
        return;
    }
    h.text(shape.label())
        .raw(" · ")
        .text(&format::bytes(body.len()));
    if truncated {
        h.raw(" <span class=\"badge trunc\" title=\"the recording holds the first bytes only; the client received the whole body\">truncated</span>");
    }
    h.raw("</div>");
    if shape == Shape::Empty {
        return;
    }
    let cut = if text.len() > SHOWN_MAX {
        let mut end = SHOWN_MAX;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        Some(end)
    } else {
        None
    };
    h.raw("<pre class=\"body\">");
    text_with_placeholders(h, &text[..cut.unwrap_or(text.len())]);
    h.raw("</pre>");
    if cut.is_some() {
        h.raw("<div class=\"bmeta\">shown: the first ")
            .text(&format::bytes(SHOWN_MAX))
            .raw(" of ")
            .text(&format::bytes(text.len()))
            .raw(" (<code>ucwa-replay export</code> has it all)</div>");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_pretty_printed_in_recorded_key_order() {
        let (shape, text) = pretty(
            b"\xef\xbb\xbf{\"z\":1,\"a\":{\"href\":\"\\/x\"}}",
            Some("application/json; charset=utf-8"),
        );
        assert_eq!(shape, Shape::Json);
        assert_eq!(
            text,
            "{\n  \"z\": 1,\n  \"a\": {\n    \"href\": \"/x\"\n  }\n}"
        );
    }

    #[test]
    fn xml_is_indented_with_tags_as_written() {
        let xml = r#"<?xml version="1.0"?><resource rel="participantMessaging" href="/a?x=1&amp;y=2" xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><link rel="participant" href="/p" /><property name="rel">participantMessaging</property><!-- c > d --></resource>"#;
        let (shape, text) = pretty(xml.as_bytes(), Some("application/xml"));
        assert_eq!(shape, Shape::Xml);
        assert_eq!(
            text,
            "<?xml version=\"1.0\"?>\n<resource rel=\"participantMessaging\" href=\"/a?x=1&amp;y=2\" xmlns=\"http://schemas.microsoft.com/rtc/2012/03/ucwa\">\n  <link rel=\"participant\" href=\"/p\" />\n  <property name=\"rel\">participantMessaging</property>\n  <!-- c > d -->\n</resource>"
        );
        // An attribute value holding `>` does not end its tag.
        assert_eq!(
            indent_xml(r#"<a t="x>y"><b/></a>"#),
            "<a t=\"x>y\">\n  <b/>\n</a>"
        );
    }

    #[test]
    fn broken_json_forms_text_and_binary() {
        assert_eq!(
            pretty(b"{\"a\":", Some("application/json")),
            (Shape::Text, "{\"a\":".into())
        );
        assert_eq!(
            pretty(
                b"grant_type=password&password=REDACTED-2",
                Some("application/x-www-form-urlencoded")
            )
            .1,
            "grant_type=password\n&password=REDACTED-2"
        );
        let (shape, text) = pretty(&[0u8, 159, 146, 150], Some("image/png"));
        assert_eq!(shape, Shape::Binary);
        assert!(text.starts_with("000000  00 9f 92 96"), "{text}");
        assert_eq!(pretty(b"", None).0, Shape::Empty);
    }

    #[test]
    fn placeholders_become_badges_and_markup_stays_text() {
        let mut h = Html::default();
        text_with_placeholders(&mut h, "Bearer cwt=REDACTED-3 <b>");
        assert_eq!(
            h.as_str(),
            "Bearer cwt=<mark class=\"ph\" title=\"redacted secret\">REDACTED-3</mark> &lt;b&gt;"
        );
    }

    #[test]
    fn truncated_and_huge_bodies_are_flagged() {
        let mut h = Html::default();
        render(&mut h, b"{\"a\":1", Some("application/json"), true);
        assert!(h.as_str().contains("truncated"), "{}", h.as_str());
        let big = "x".repeat(SHOWN_MAX + 10);
        let mut h = Html::default();
        render(&mut h, big.as_bytes(), Some("text/plain"), false);
        assert!(
            h.as_str().contains("shown: the first 64.0 KiB"),
            "{}",
            &h.as_str()[..100]
        );
        assert!(h.len() < SHOWN_MAX + 1000);
    }
}
