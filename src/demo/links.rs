//! Finding links in UCWA bodies of either representation, the way a client follows them.

use serde_json::Value;

use crate::ucwa::Representation;
use crate::ucwa::media::strip_bom;

/// The href of the first link named `rel` anywhere in a body (JSON `_links.rel.href`, also
/// inside `_embedded`; XML `<link rel href>` or `<resource rel href>`).
pub fn find_link(repr: Representation, body: &[u8], rel: &str) -> Option<String> {
    match repr {
        Representation::Xml => find_xml(body, rel),
        _ => {
            let text = strip_bom(body);
            let value: Value = serde_json::from_slice(text).ok()?;
            find_json(&value, rel)
        }
    }
}

fn find_json(value: &Value, rel: &str) -> Option<String> {
    let obj = value.as_object()?;
    if let Some(href) = obj
        .get("_links")
        .and_then(|l| l.get(rel))
        .and_then(|l| match l {
            Value::Array(items) => items.first(),
            other => Some(other),
        })
        .and_then(|l| l.get("href"))
        .and_then(Value::as_str)
    {
        return Some(href.to_string());
    }
    if let Some(embedded) = obj.get("_embedded").and_then(Value::as_object) {
        for (name, inner) in embedded {
            if name == rel
                && let Some(href) = inner
                    .get("_links")
                    .and_then(|l| l.get("self"))
                    .and_then(|s| s.get("href"))
                    .and_then(Value::as_str)
            {
                return Some(href.to_string());
            }
            let found = match inner {
                Value::Array(items) => items.iter().find_map(|i| find_json(i, rel)),
                other => find_json(other, rel),
            };
            if found.is_some() {
                return found;
            }
        }
    }
    None
}

fn find_xml(body: &[u8], rel: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let doc = roxmltree::Document::parse(text).ok()?;
    doc.descendants()
        .filter(|n| n.is_element())
        .filter(|n| matches!(n.tag_name().name(), "link" | "resource"))
        .find(|n| n.attribute("rel") == Some(rel) && n.attribute("href").is_some())
        .and_then(|n| n.attribute("href"))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_links_in_json_and_xml() {
        let json = br#"{"_links":{"self":{"href":"/a"},"events":{"href":"/a/events?ack=1"}},"_embedded":{"me":{"_links":{"self":{"href":"/a/me"},"makeMeAvailable":{"href":"/a/me/makeMeAvailable"}}}}}"#;
        assert_eq!(
            find_link(Representation::Json, json, "events").as_deref(),
            Some("/a/events?ack=1")
        );
        assert_eq!(
            find_link(Representation::Json, json, "makeMeAvailable").as_deref(),
            Some("/a/me/makeMeAvailable")
        );
        assert_eq!(
            find_link(Representation::Json, json, "me").as_deref(),
            Some("/a/me")
        );
        let xml = br#"<resource rel="application" href="/a" xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><link rel="events" href="/a/events?ack=1"/></resource>"#;
        assert_eq!(
            find_link(Representation::Xml, xml, "events").as_deref(),
            Some("/a/events?ack=1")
        );
        assert_eq!(find_link(Representation::Xml, xml, "nope"), None);
    }
}
