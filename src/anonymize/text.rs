//! Message text, subjects and notes, plain or HTML, and the `data:` URIs UCWA carries
//! message text (and sometimes photos) in: `data:text/plain;charset=utf-8,Hi+Tosh%0d%0a`.
//! The text is replaced by filler of the same length; HTML keeps its tags and attributes
//! and only the text between them is replaced; a data URI keeps its media type and the
//! encoding it was written with (`+` for spaces, `%20`, or base64).

use base64::Engine;

use super::Category;
use super::photo;
use super::table::Table;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The replacement of a piece of text of `category` (Text, Subject: kept with
/// `--keep-text`; Note: always replaced).
pub(crate) fn replace(table: &mut Table, category: Category, text: &str, html: bool) -> String {
    if text.trim().is_empty() || (table.keep_text() && category != Category::Note) {
        return text.to_string();
    }
    if !html {
        return table.text(category, text);
    }
    // HTML: every run of text between tags, one pseudonym per run.
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(lt) = rest.find('<') {
        let (run, tail) = rest.split_at(lt);
        if run.trim().is_empty() {
            out.push_str(run);
        } else {
            out.push_str(&table.text(category, run));
        }
        let close = tail.find('>').map_or(tail.len(), |i| i + 1);
        out.push_str(&tail[..close]);
        rest = &tail[close..];
    }
    if rest.trim().is_empty() {
        out.push_str(rest);
    } else {
        out.push_str(&table.text(category, rest));
    }
    out
}

/// Whether a string is a `data:` URI.
pub(crate) fn is_data_uri(s: &str) -> bool {
    s.len() >= 5 && s[..5].eq_ignore_ascii_case("data:")
}

/// A `data:` URI with its text or image replaced; None when it is neither (or kept).
pub(crate) fn data_uri(table: &mut Table, uri: &str) -> Option<String> {
    let rest = &uri[5..];
    let comma = rest.find(',')?;
    let (meta, payload) = (&rest[..comma], &rest[comma + 1..]);
    let base64 = meta
        .rsplit(';')
        .next()
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("base64"));
    let media = meta
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if photo::is_image(&media) {
        table.count(Category::Photo, true);
        let image = photo::placeholder(&media).unwrap_or_default();
        return Some(format!("data:{media};base64,{}", B64.encode(image)));
    }
    let html = media == "text/html";
    if !(media.is_empty() || media == "text/plain" || html) {
        return None;
    }
    let text = if base64 {
        String::from_utf8(B64.decode(payload.trim()).ok()?).ok()?
    } else if payload.contains('+') {
        form_urlencoded::parse(format!("x={payload}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())?
    } else {
        percent_encoding::percent_decode_str(payload)
            .decode_utf8()
            .ok()?
            .into_owned()
    };
    let replaced = replace(table, Category::Text, &text, html);
    if replaced == text {
        return None;
    }
    let encoded = if base64 {
        B64.encode(replaced.as_bytes())
    } else if payload.contains('+') {
        form_urlencoded::byte_serialize(replaced.as_bytes()).collect()
    } else {
        percent_encoding::utf8_percent_encode(&replaced, DATA_ENCODE).to_string()
    };
    Some(format!("data:{meta},{encoded}"))
}

/// What a percent-encoded data URI payload escapes.
const DATA_ENCODE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'!')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// The text a `data:` URI carries (for the audit), or None for another media type.
pub fn data_uri_text(uri: &str) -> Option<(String, bool)> {
    if !is_data_uri(uri) {
        return None;
    }
    let rest = &uri[5..];
    let comma = rest.find(',')?;
    let (meta, payload) = (&rest[..comma], &rest[comma + 1..]);
    let media = meta
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let html = media == "text/html";
    if !(media.is_empty() || media == "text/plain" || html) {
        return None;
    }
    let base64 = meta.to_ascii_lowercase().ends_with(";base64");
    let text = if base64 {
        String::from_utf8_lossy(&B64.decode(payload.trim()).ok()?).into_owned()
    } else {
        form_urlencoded::parse(format!("x={payload}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())?
    };
    Some((text, html))
}

/// The text runs of an HTML fragment (for the audit).
pub fn html_runs(html: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        let run = &rest[..lt];
        if !run.trim().is_empty() {
            out.push(run);
        }
        let tail = &rest[lt..];
        let close = tail.find('>').map_or(tail.len(), |i| i + 1);
        rest = &tail[close..];
    }
    if !rest.trim().is_empty() {
        out.push(rest);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anonymize::filler::is_filler;

    fn table(keep_text: bool) -> Table {
        Table::new(b"k".to_vec(), false, keep_text)
    }

    #[test]
    fn data_uris_keep_their_encoding() {
        let mut t = table(false);
        let out = data_uri(&mut t, "data:text/plain;charset=utf-8,Hi+Tosh%0d%0a").unwrap();
        assert!(out.starts_with("data:text/plain;charset=utf-8,"), "{out}");
        let (text, html) = data_uri_text(&out).unwrap();
        assert!(
            !html && text.ends_with("\r\n") && text.chars().count() == 9,
            "{text:?}"
        );
        assert!(is_filler(&text));
        let b64 = data_uri(
            &mut t,
            &format!("data:text/plain;base64,{}", B64.encode("Hello Bob")),
        )
        .unwrap();
        assert!(b64.starts_with("data:text/plain;base64,"));
        assert!(is_filler(&data_uri_text(&b64).unwrap().0));
        let html = data_uri(
            &mut t,
            "data:text/html;charset=utf-8,%3Cb%3EHi%20Bob%3C%2Fb%3E",
        )
        .unwrap();
        let (text, is_html) = data_uri_text(&html).unwrap();
        assert!(
            is_html && text.starts_with("<b>") && text.ends_with("</b>"),
            "{text}"
        );
        let img = data_uri(&mut t, "data:image/png;base64,AAAA").unwrap();
        assert!(img.starts_with("data:image/png;base64,iVBOR"), "{img}");
        assert_eq!(data_uri(&mut t, "data:application/json,{}"), None);
    }

    #[test]
    fn keep_text_keeps_messages_but_not_notes() {
        let mut t = table(true);
        assert_eq!(data_uri(&mut t, "data:text/plain,Hi%20Bob"), None);
        assert_eq!(
            replace(&mut t, Category::Subject, "Budget", false),
            "Budget"
        );
        assert_ne!(
            replace(&mut t, Category::Note, "On leave", false),
            "On leave"
        );
    }

    #[test]
    fn html_keeps_its_tags() {
        let mut t = table(false);
        let out = replace(
            &mut t,
            Category::Text,
            r#"<div style="x">Hello <b>Bob</b></div>"#,
            true,
        );
        assert!(
            out.starts_with(r#"<div style="x">"#)
                && out.contains("<b>")
                && out.ends_with("</b></div>"),
            "{out}"
        );
        assert!(!out.contains("Bob") && !out.contains("Hello"));
        assert!(html_runs(&out).iter().all(|r| is_filler(r)));
    }
}
