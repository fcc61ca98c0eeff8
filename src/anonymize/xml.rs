//! XML bodies (UCWA's `application/vnd.microsoft.com.ucwa+xml`), replaced in place:
//! `roxmltree` reads the tree with byte positions; a `<property name="…">`'s text is judged
//! by its name like a JSON member, a link's `title` attribute is the display name of the
//! person its `href` names, `data:` hrefs are message text or photos, and identifiers are
//! replaced in every other byte. The element structure and namespaces are never touched.

use roxmltree::{Document, Node};

use super::fields::{self, Context, PERSON_KEYS};
use super::ident::{self, Span};
use super::json::{Mode, replace_value};
use super::table::Table;

/// The body with its people replaced, None when it is not XML; `Some(None)`: unchanged.
pub(crate) fn anonymize(table: &mut Table, body: &[u8], mode: &Mode) -> Option<Option<Vec<u8>>> {
    let offset = if body.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    let text = std::str::from_utf8(&body[offset..]).ok()?;
    let doc = Document::parse(text).ok()?;
    let mut spans = Vec::new();
    for node in doc.descendants().filter(Node::is_element) {
        element(table, node, offset, mode, &mut spans);
    }
    match mode {
        Mode::Bind | Mode::Collect(_) => Some(None),
        Mode::Replace => Some(ident::apply(table, body, spans)),
    }
}

/// An XML body that does not parse (cut at `--max-body`): its `<property name="…">` values
/// and the `title`s of elements with an `href` are judged one by one.
pub(crate) fn lenient(table: &mut Table, body: &[u8], mode: &Mode) -> Option<Vec<u8>> {
    use regex::bytes::Regex;
    static PROPERTY: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    static TITLED: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    let property = PROPERTY.get_or_init(|| {
        Regex::new(r#"<property\s+name\s*=\s*["']([^"']{1,64})["']\s*>([^<]*)</property>"#)
            .expect("static regex")
    });
    let titled = TITLED.get_or_init(|| {
        Regex::new(r#"<[A-Za-z][^<>]*?\shref\s*=\s*"([^"]*)"[^<>]*?\stitle\s*=\s*"([^"]*)""#)
            .expect("static regex")
    });
    let unescape = |raw: &[u8]| -> String {
        String::from_utf8_lossy(raw)
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&")
    };
    let mut spans = Vec::new();
    for c in titled.captures_iter(body) {
        let (Some(href), Some(title)) = (c.get(1), c.get(2)) else {
            continue;
        };
        let who = fields::person_of_href(&unescape(href.as_bytes()));
        let ctx = Context {
            is_link: true,
            ..Context::default()
        };
        if let Some(new) = replace_value(
            table,
            "title",
            &unescape(title.as_bytes()),
            ctx,
            who.as_ref(),
            mode,
        ) {
            spans.push((title.range(), escape(&new, true)));
        }
    }
    for c in property.captures_iter(body) {
        let (Some(name), Some(value)) = (c.get(1), c.get(2)) else {
            continue;
        };
        let key = String::from_utf8_lossy(name.as_bytes()).into_owned();
        if let Some(new) = replace_value(
            table,
            &key,
            &unescape(value.as_bytes()),
            Context::default(),
            None,
            mode,
        ) {
            spans.push((value.range(), escape(&new, false)));
        }
    }
    match mode {
        Mode::Replace => ident::apply(table, body, spans),
        _ => None,
    }
}

fn local<'a>(node: Node<'a, '_>) -> &'a str {
    node.tag_name().name()
}

/// The person an element is about: an address in its person properties, else in its own
/// `href` or its `self` link.
fn person(node: Node<'_, '_>) -> Option<(String, String)> {
    for key in PERSON_KEYS {
        for child in node.children().filter(Node::is_element) {
            let named = child
                .attribute("name")
                .is_some_and(|n| n.eq_ignore_ascii_case(key));
            if !named {
                continue;
            }
            let texts: Vec<&str> = match local(child) {
                "property" => child.text().into_iter().collect(),
                "propertyList" => child
                    .children()
                    .filter(|c| c.is_element())
                    .filter_map(|c| c.text())
                    .collect(),
                _ => continue,
            };
            for t in texts {
                if let Some(f) = ident::addresses(t.as_bytes()).into_iter().next() {
                    return Some((f.local, f.domain));
                }
            }
        }
    }
    let href = node.attribute("href").or_else(|| {
        node.children()
            .filter(|c| c.is_element() && local(*c) == "link" && c.attribute("rel") == Some("self"))
            .find_map(|c| c.attribute("href"))
    })?;
    fields::person_of_href(href)
}

fn element(
    table: &mut Table,
    node: Node<'_, '_>,
    offset: usize,
    mode: &Mode,
    spans: &mut Vec<Span>,
) {
    // A link-like element (`<link>`, an event `<added rel href title>`): its title and href.
    if let Some(href) = node.attribute("href") {
        let who = fields::person_of_href(href).or_else(|| person(node));
        let ctx = Context {
            is_link: true,
            is_error: false,
            rel: node.attribute("rel"),
        };
        for attr in node.attributes() {
            let key = match attr.name() {
                "title" => "title",
                "href" => "href",
                _ => continue,
            };
            if let Some(new) = replace_value(table, key, attr.value(), ctx, who.as_ref(), mode) {
                let r = attr.range_value();
                spans.push((r.start + offset..r.end + offset, escape(&new, true)));
            }
        }
    }
    // The properties of a resource (or an `<input>`).
    let who = person(node);
    let ctx = Context {
        is_link: false,
        is_error: local(node) == "reason",
        rel: node.attribute("rel"),
    };
    for child in node.children().filter(Node::is_element) {
        let Some(key) = child.attribute("name") else {
            continue;
        };
        let items: Vec<Node<'_, '_>> = match local(child) {
            "property" => vec![child],
            "propertyList" => child.children().filter(Node::is_element).collect(),
            _ => continue,
        };
        for item in items {
            let texts: Vec<Node<'_, '_>> = item.children().filter(Node::is_text).collect();
            // One text node (no comment or CDATA split): replaced as a whole.
            let [text] = texts.as_slice() else { continue };
            let value = text.text().unwrap_or("");
            if let Some(new) = replace_value(table, key, value, ctx, who.as_ref(), mode) {
                let r = text.range();
                spans.push((r.start + offset..r.end + offset, escape(&new, false)));
            }
        }
    }
}

/// XML text or attribute spelling of a value.
fn escape(value: &str, attribute: bool) -> Vec<u8> {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            '\'' if attribute => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anonymize::table::name_of_address;

    #[test]
    fn properties_links_and_data_uris() {
        let mut t = Table::new(b"k".to_vec(), false, false);
        let body = r#"<?xml version="1.0" encoding="utf-8"?>
<resource rel="contact" href="/ucwa/v1/applications/1/people/bob@contoso.com" xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa">
  <link rel="self" href="/ucwa/v1/applications/1/people/bob@contoso.com"/>
  <link rel="participant" href="/c/participants/bob@contoso.com" title="Bob &amp; Co"/>
  <link rel="plainMessage" href="data:text/plain;charset=utf-8,Hi+there"/>
  <property name="name">Bob &amp; Co</property>
  <property name="department">R&amp;D</property>
  <property name="workPhoneNumber">tel:+14255550100</property>
  <propertyList name="emailAddresses"><item>bob@contoso.com</item></propertyList>
  <property name="rel">contact</property>
</resource>"#;
        let out = anonymize(&mut t, body.as_bytes(), &Mode::Replace)
            .unwrap()
            .unwrap();
        let out = String::from_utf8(out).unwrap();
        let bob = t.address("bob", "contoso.com");
        let name = name_of_address(&bob);
        assert!(out.contains(&format!("title=\"{name}\"")), "{out}");
        assert!(
            out.contains(&format!("<property name=\"name\">{name}</property>")),
            "{out}"
        );
        assert!(out.contains("xmlns=\"http://schemas.microsoft.com/rtc/2012/03/ucwa\""));
        assert!(
            out.contains("<property name=\"department\">Department "),
            "{out}"
        );
        assert!(out.contains("tel:+999"), "{out}");
        for real in ["Bob", "contoso", "R&amp;D", "Hi+there", "4255550100"] {
            assert!(!out.contains(real), "{real} in {out}");
        }
        Document::parse(&out).unwrap();
    }

    #[test]
    fn xml_that_does_not_parse_is_read_element_by_element() {
        let mut t = Table::new(b"k".to_vec(), false, false);
        let body = br#"<resource rel="contact"><link rel="participant" href="/c/participants/bob@contoso.com" title="Bob Jones"/><property name="department">Sales</property><property name="name">Bob Jo"#;
        let out = String::from_utf8(lenient(&mut t, body, &Mode::Replace).unwrap()).unwrap();
        let name = name_of_address(&t.address("bob", "contoso.com"));
        assert!(out.contains(&format!("title=\"{name}\"")), "{out}");
        assert!(
            !out.contains("Sales") && !out.contains("Bob Jones"),
            "{out}"
        );
    }
}
