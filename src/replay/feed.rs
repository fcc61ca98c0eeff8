//! The events feed on replay (docs/UCWA.md, "The events feed"): keyed by (application, ack), idempotent like
//! the server (the same ack always gets the same recorded batch, however often it is asked),
//! and an end: an ack beyond the recording is held like a quiet server and answered with an
//! empty batch, or answered at once (`--feed-end`).

use std::time::Duration;

use super::index::{GroupId, Index};
use crate::ucwa::error::xml_escape;
use crate::ucwa::feed::query_value;
use crate::ucwa::{Representation, XML_NS};

/// How long a real server holds a P-GET without a `timeout` parameter.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(180);

/// The recorded answer for an ack: the first successful response recorded for it (a retried
/// ack may also have drawn a `409 PGetReplaced`), else the first response at all. `None`
/// when no response was ever recorded for it (the client stopped while it was held): that
/// ack is then treated as the end of the feed.
pub fn recorded_answer(index: &Index, group: GroupId) -> Option<usize> {
    let entries = index.group(group);
    let status = |i: usize| index.entries()[i].status;
    entries
        .iter()
        .copied()
        .find(|&i| status(i).is_some_and(|s| (200..300).contains(&s)))
        .or_else(|| entries.iter().copied().find(|&i| status(i).is_some()))
}

/// The request's `timeout` parameter in seconds (180 when absent or unreadable). Honoured as
/// given, without the server's 180–1800 clamp, so tests can use `timeout=1`.
pub fn request_timeout(query: Option<&str>) -> Duration {
    query_value(query, "timeout")
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(|v| Duration::from_secs_f64(v.min(86_400.0)))
        .unwrap_or(DEFAULT_TIMEOUT)
}

/// The href of the next batch: the request's own, with `ack` one higher.
pub(super) fn next_href(path: &str, query: Option<&str>, ack: i64) -> String {
    let mut replaced = false;
    let pairs: Vec<String> = query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            if !replaced && p.starts_with("ack=") {
                replaced = true;
                format!("ack={}", ack + 1)
            } else {
                p.to_string()
            }
        })
        .collect();
    format!("{path}?{}", pairs.join("&"))
}

/// The empty batch a quiet server sends when a P-GET times out:
/// `{"_links":{"self":{"href":…},"next":{"href":…}},"sender":[]}` (or the XML `<events>`).
pub fn empty_batch(path: &str, query: Option<&str>, ack: i64, repr: Representation) -> Vec<u8> {
    let self_href = match query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    };
    let next = next_href(path, query, ack);
    match repr {
        Representation::Xml => format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><events href=\"{}\" xmlns=\"{XML_NS}\"><link rel=\"next\" href=\"{}\" /></events>",
            xml_escape(&self_href),
            xml_escape(&next)
        )
        .into_bytes(),
        _ => serde_json::json!({
            "_links": {"self": {"href": self_href}, "next": {"href": next}},
            "sender": [],
        })
        .to_string()
        .into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_is_taken_as_given() {
        assert_eq!(
            request_timeout(Some("ack=3&timeout=1")),
            Duration::from_secs(1)
        );
        assert_eq!(request_timeout(Some("ack=3")), DEFAULT_TIMEOUT);
        assert_eq!(request_timeout(Some("timeout=x")), DEFAULT_TIMEOUT);
    }

    #[test]
    fn empty_batches_link_to_the_next_ack() {
        let body = empty_batch(
            "/ucwa/oauth/v1/applications/1/events",
            Some("ack=4&timeout=1"),
            4,
            Representation::Json,
        );
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"_links":{"self":{"href":"/ucwa/oauth/v1/applications/1/events?ack=4&timeout=1"},"next":{"href":"/ucwa/oauth/v1/applications/1/events?ack=5&timeout=1"}},"sender":[]}"#
        );
        let xml = empty_batch("/e", Some("ack=1"), 1, Representation::Xml);
        let xml = String::from_utf8(xml).unwrap();
        let doc = roxmltree::Document::parse(&xml).unwrap();
        assert_eq!(doc.root_element().tag_name().name(), "events");
        assert!(
            xml.contains(r#"<link rel="next" href="/e?ack=2" />"#),
            "{xml}"
        );
    }
}
