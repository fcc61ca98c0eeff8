//! The events feed (docs/UCWA.md, "The events feed"): recognising P-GETs and flattening their responses into
//! [`EventRow`]s, in delivery order across senders.
//!
//! JSON: `{"_links":{…},"sender":[{"rel","href","events":[{"link","in"?,"_embedded"?,"status"?,
//! "reason"?,"type"}]}]}` (a UTF-8 BOM is tolerated; a missing `sender` means no events).
//! XML: `<events><link rel="next"/><sender rel href><added rel href title? status?>
//! <in rel href/>? <reason>…</reason>? <resource …>…</resource>?</added></sender></events>`;
//! the event type is the element name.

use serde_json::{Map, Value};

use crate::ucwa::Representation;
use crate::ucwa::media::strip_bom;

/// One event of an events-feed response , flattened.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventRow {
    /// The `ack` of the request that delivered it.
    pub ack: Option<i64>,
    /// Position within the response, from 0, across senders.
    pub position: u32,
    pub sender_rel: String,
    pub sender_href: String,
    pub link_rel: String,
    pub link_href: String,
    pub link_title: Option<String>,
    pub in_rel: Option<String>,
    pub in_href: Option<String>,
    /// `added`, `updated`, `deleted`, `started`, `completed`.
    pub event_type: String,
    pub status: Option<String>,
    /// The `reason` object as JSON text.
    pub reason: Option<String>,
    /// The embedded resource as JSON text (or the XML `<resource>` element's text).
    pub embedded: Option<String>,
}

/// Why an events body could not be indexed (the exchange is stored anyway).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FeedError {
    #[error("events body is not JSON")]
    Json(#[source] serde_json::Error),
    #[error("events body is not UTF-8 XML")]
    Utf8(#[source] std::str::Utf8Error),
    #[error("events body is not XML")]
    Xml(#[source] roxmltree::Error),
    /// It parses, but is not an events envelope.
    #[error("events body not understood: {0}")]
    Shape(String),
}

fn err(msg: impl Into<String>) -> FeedError {
    FeedError::Shape(msg.into())
}

/// Whether a request is for the events feed (P-GET).
pub fn is_events_request(method: &str, path: &str) -> bool {
    method.eq_ignore_ascii_case("GET") && path.trim_end_matches('/').ends_with("/events")
}

/// The raw value of the first `name=` parameter of a query (as sent: not decoded, name
/// case-sensitive), e.g. an events request's `ack` or `timeout`.
pub fn query_value<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?
        .split('&')
        .find_map(|p| p.strip_prefix(name).and_then(|rest| rest.strip_prefix('=')))
}

/// The `ack` of an events request's query.
pub fn ack_of(query: Option<&str>) -> Option<i64> {
    query_value(query, "ack").and_then(|v| v.trim().parse().ok())
}

/// The links of an events response that tell the client where to go next.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedLinks {
    pub next: Option<String>,
    pub resync: Option<String>,
    pub resume: Option<String>,
}

impl FeedLinks {
    /// Where a well-behaved client goes next: resync, then resume, then next.
    pub fn follow(&self) -> Option<&str> {
        self.resync
            .as_deref()
            .or(self.resume.as_deref())
            .or(self.next.as_deref())
    }
}

/// The `next` / `resync` / `resume` links of an events response (the first of each rel;
/// `Other` sniffs the body as [`parse_events`] does).
pub fn feed_links(repr: Representation, body: &[u8]) -> Result<FeedLinks, FeedError> {
    let mut links = FeedLinks::default();
    let mut set = |rel: &str, href: String| {
        let slot = match rel {
            "next" => &mut links.next,
            "resync" => &mut links.resync,
            "resume" => &mut links.resume,
            _ => return,
        };
        slot.get_or_insert(href);
    };
    match sniff(repr, body) {
        Representation::Xml => {
            let text = xml_text(body)?;
            let doc = roxmltree::Document::parse(text).map_err(FeedError::Xml)?;
            for link in doc
                .root_element()
                .children()
                .filter(|n| n.is_element() && n.tag_name().name() == "link")
            {
                if let (Some(rel), Some(href)) = (link.attribute("rel"), link.attribute("href")) {
                    set(rel, href.to_string());
                }
            }
        }
        _ => {
            let value = json_value(body)?;
            if let Some(Value::Object(l)) = value.get("_links") {
                for (rel, v) in l {
                    if let Some(href) = v.get("href").and_then(Value::as_str) {
                        set(rel, href.to_string());
                    }
                }
            }
        }
    }
    Ok(links)
}

/// Flatten an events response body.
pub fn parse_events(
    repr: Representation,
    body: &[u8],
    ack: Option<i64>,
) -> Result<Vec<EventRow>, FeedError> {
    match sniff(repr, body) {
        Representation::Xml => parse_xml(body, ack),
        _ => parse_json(body, ack),
    }
}

/// `repr`, or for `Other` (a body of unknown type that still is an events response) XML
/// when it starts with `<`, else JSON.
fn sniff(repr: Representation, body: &[u8]) -> Representation {
    if repr != Representation::Other {
        return repr;
    }
    match super::media::first_significant_byte(body) {
        Some(b'<') => Representation::Xml,
        _ => Representation::Json,
    }
}

fn json_value(body: &[u8]) -> Result<Value, FeedError> {
    let body = strip_bom(body);
    serde_json::from_slice(body).map_err(FeedError::Json)
}

fn str_field(v: &Value, name: &str) -> Option<String> {
    v.get(name).and_then(Value::as_str).map(str::to_owned)
}

fn parse_json(body: &[u8], ack: Option<i64>) -> Result<Vec<EventRow>, FeedError> {
    let value = json_value(body)?;
    let Value::Object(top) = &value else {
        return Err(err("JSON: not an object"));
    };
    let senders = match top.get("sender") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(s)) => s,
        Some(_) => return Err(err("JSON: `sender` is not an array")),
    };
    let mut rows = Vec::new();
    for sender in senders {
        let Value::Object(s) = sender else {
            return Err(err("JSON: a sender is not an object"));
        };
        let sender_rel = s.get("rel").and_then(Value::as_str).unwrap_or_default();
        let sender_href = s.get("href").and_then(Value::as_str).unwrap_or_default();
        let events = match s.get("events") {
            None | Some(Value::Null) => continue,
            Some(Value::Array(e)) => e,
            Some(_) => return Err(err("JSON: `events` is not an array")),
        };
        for event in events {
            let Value::Object(e) = event else {
                return Err(err("JSON: an event is not an object"));
            };
            let link = e.get("link").unwrap_or(&Value::Null);
            let link_rel = str_field(link, "rel").unwrap_or_default();
            let embedded = e
                .get("_embedded")
                .map(|emb| embedded_json(emb, &link_rel).to_string());
            rows.push(EventRow {
                ack,
                position: rows.len() as u32,
                sender_rel: sender_rel.to_string(),
                sender_href: sender_href.to_string(),
                link_href: str_field(link, "href").unwrap_or_default(),
                link_title: str_field(link, "title"),
                link_rel,
                in_rel: e.get("in").and_then(|i| str_field(i, "rel")),
                in_href: e.get("in").and_then(|i| str_field(i, "href")),
                event_type: e
                    .get("type")
                    .and_then(Value::as_str)
                    .ok_or_else(|| err("JSON: an event has no `type`"))?
                    .to_string(),
                status: e.get("status").and_then(Value::as_str).map(str::to_owned),
                reason: e
                    .get("reason")
                    .filter(|r| !r.is_null())
                    .map(Value::to_string),
                embedded,
            });
        }
    }
    Ok(rows)
}

/// The embedded resource: the value keyed by the link rel, else the only value, else the
/// whole `_embedded` object.
fn embedded_json<'a>(emb: &'a Value, link_rel: &str) -> &'a Value {
    match emb {
        Value::Object(m) => m
            .get(link_rel)
            .or_else(|| (m.len() == 1).then(|| m.values().next()).flatten())
            .unwrap_or(emb),
        other => other,
    }
}

fn xml_text(body: &[u8]) -> Result<&str, FeedError> {
    let body = strip_bom(body);
    std::str::from_utf8(body).map_err(FeedError::Utf8)
}

fn parse_xml(body: &[u8], ack: Option<i64>) -> Result<Vec<EventRow>, FeedError> {
    let text = xml_text(body)?;
    let doc = roxmltree::Document::parse(text).map_err(FeedError::Xml)?;
    let root = doc.root_element();
    if root.tag_name().name() != "events" {
        return Err(err(format!(
            "XML: root element is <{}>, not <events>",
            root.tag_name().name()
        )));
    }
    let mut rows = Vec::new();
    for sender in root
        .children()
        .filter(|n| n.is_element() && n.tag_name().name() == "sender")
    {
        let sender_rel = sender.attribute("rel").unwrap_or_default();
        let sender_href = sender.attribute("href").unwrap_or_default();
        for event in sender.children().filter(|n| n.is_element()) {
            let child = |name: &str| {
                event
                    .children()
                    .find(|n| n.is_element() && n.tag_name().name() == name)
            };
            let in_el = child("in");
            let status = event.attribute("status").map(str::to_owned).or_else(|| {
                child("status")
                    .and_then(|s| s.text())
                    .map(|t| t.trim().to_owned())
            });
            let reason = child("reason").map(|r| {
                let mut m = Map::new();
                for c in r.children().filter(|n| n.is_element()) {
                    let v = c.text().unwrap_or_default().trim().to_string();
                    m.insert(c.tag_name().name().to_string(), Value::String(v));
                }
                Value::Object(m).to_string()
            });
            let embedded = child("resource").map(|r| text[r.range()].to_string());
            rows.push(EventRow {
                ack,
                position: rows.len() as u32,
                sender_rel: sender_rel.to_string(),
                sender_href: sender_href.to_string(),
                link_rel: event.attribute("rel").unwrap_or_default().to_string(),
                link_href: event.attribute("href").unwrap_or_default().to_string(),
                link_title: event.attribute("title").map(str::to_owned),
                in_rel: in_el.and_then(|i| i.attribute("rel")).map(str::to_owned),
                in_href: in_el.and_then(|i| i.attribute("href")).map(str::to_owned),
                event_type: event.tag_name().name().to_string(),
                status,
                reason,
                embedded,
            });
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// The UCWA documentation samples the tests use, committed under `tests/data`.
    fn samples() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/ucwa-samples")
    }

    /// A sample's payload: the `# ` header lines and one blank line dropped.
    fn payload(rel: &str) -> Vec<u8> {
        let path = samples().join(rel);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("sample {}: {e}", path.display()));
        let mut lines = text.split_inclusive('\n');
        let mut consumed = 0;
        for line in lines.by_ref() {
            consumed += line.len();
            if line.trim_end().is_empty() {
                break;
            }
        }
        text.as_bytes()[consumed..].to_vec()
    }

    #[test]
    fn events_requests_and_acks() {
        assert!(is_events_request(
            "GET",
            "/ucwa/oauth/v1/applications/105/events"
        ));
        assert!(!is_events_request(
            "POST",
            "/ucwa/oauth/v1/applications/105/events"
        ));
        assert!(!is_events_request("GET", "/ucwa/oauth/v1/applications/105"));
        assert_eq!(ack_of(Some("ack=7&timeout=180")), Some(7));
        assert_eq!(ack_of(Some("key=x&ack=12")), Some(12));
        assert_eq!(ack_of(Some("timeout=1")), None);
        assert_eq!(ack_of(Some("ack=x")), None);
        assert_eq!(ack_of(None), None);
    }

    #[test]
    fn seed_participant_messaging_events() {
        for (file, ty) in [
            ("ref/participantMessaging/event-added.json", "added"),
            ("ref/participantMessaging/event-updated.json", "updated"),
            ("ref/participantMessaging/event-deleted.json", "deleted"),
        ] {
            let body = payload(file);
            let rows = parse_events(Representation::Json, &body, Some(1)).unwrap();
            assert_eq!(rows.len(), 1, "{file}");
            let r = &rows[0];
            assert_eq!(r.event_type, ty);
            assert_eq!(r.link_rel, "participantMessaging");
            assert_eq!(r.sender_rel, "conversation");
            assert_eq!(r.ack, Some(1));
            assert_eq!(r.position, 0);
            assert!(r.link_href.ends_with("/participantMessaging"));
        }
    }

    #[test]
    fn fixed_receive_im_sample_in_order_with_in_status_embedded() {
        let body =
            payload("fixed/receive-im/15-events-ack5-connected-participantmessaging-added.json");
        let rows = parse_events(Representation::Json, &body, Some(5)).unwrap();
        let got: Vec<(u32, &str, &str, &str)> = rows
            .iter()
            .map(|r| {
                (
                    r.position,
                    r.sender_rel.as_str(),
                    r.link_rel.as_str(),
                    r.event_type.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (0, "conversation", "messaging", "updated"),
                (1, "communication", "conversation", "updated"),
                (2, "conversation", "participantMessaging", "added"),
                (3, "conversation", "participantMessaging", "added"),
                (4, "conversation", "participant", "updated"),
                (5, "communication", "messagingInvitation", "completed"),
            ]
        );
        assert_eq!(rows[2].in_rel.as_deref(), Some("localParticipant"));
        assert_eq!(rows[3].in_rel.as_deref(), Some("participant"));
        assert_eq!(rows[3].embedded, None);
        assert_eq!(rows[5].status.as_deref(), Some("Success"));
        let emb: Value = serde_json::from_str(rows[2].embedded.as_deref().unwrap()).unwrap();
        assert_eq!(emb["rel"], "participantMessaging");
        assert_eq!(rows[4].link_title.as_deref(), Some("Lene Aaling"));
    }

    #[test]
    fn every_sample_parses_or_fails_cleanly() {
        let mut files = Vec::new();
        for dir in ["concept/events", "concept/receive-im", "concept/send-im"] {
            if let Ok(rd) = std::fs::read_dir(samples().join(dir)) {
                for e in rd.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if name.contains("events") || dir == "concept/events" {
                        files.push(format!("{dir}/{name}"));
                    }
                }
            }
        }
        for dir in ["fixed/receive-im", "fixed/send-im"] {
            if let Ok(rd) = std::fs::read_dir(samples().join(dir)) {
                for e in rd.flatten() {
                    files.push(format!("{dir}/{}", e.file_name().to_string_lossy()));
                }
            }
        }
        if let Ok(rd) = std::fs::read_dir(samples().join("ref")) {
            for res in rd.flatten() {
                if let Ok(inner) = std::fs::read_dir(res.path()) {
                    for e in inner.flatten() {
                        let name = e.file_name().to_string_lossy().into_owned();
                        if name.starts_with("event-") {
                            files.push(format!("ref/{}/{name}", res.file_name().to_string_lossy()));
                        }
                    }
                }
            }
        }
        let mut ok = 0;
        for f in &files {
            let body = payload(f);
            let repr = if f.ends_with(".xml") {
                Representation::Xml
            } else {
                Representation::Json
            };
            let valid = if f.ends_with(".http") {
                None
            } else if repr == Representation::Json {
                Some(serde_json::from_slice::<Value>(&body).is_ok())
            } else {
                Some(true)
            };
            let result = parse_events(repr, &body, None);
            // Same answer from sniffing.
            let _ = parse_events(Representation::Other, &body, None);
            if valid == Some(true)
                && body
                    .windows(8)
                    .any(|w| w == b"\"sender\"" || w == b"<sender ")
            {
                let rows = result.unwrap_or_else(|e| panic!("{f}: {e}"));
                assert!(!rows.is_empty(), "{f}");
                ok += 1;
            } else if valid == Some(false) {
                assert!(result.is_err(), "{f} is invalid JSON but parsed");
            }
        }
        assert!(files.len() >= 20, "only {} sample files found", files.len());
        assert!(ok >= 10, "only {ok} samples parsed");
    }

    #[test]
    fn xml_sample_from_the_event_channel_page() {
        let body = payload("concept/events/eventchanneldetails-sample-xml-event-response.xml");
        let rows = parse_events(Representation::Xml, &body, Some(1)).unwrap();
        let got: Vec<(&str, &str, &str)> = rows
            .iter()
            .map(|r| {
                (
                    r.sender_rel.as_str(),
                    r.link_rel.as_str(),
                    r.event_type.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("communication", "communication", "updated"),
                ("me", "me", "updated"),
                ("me", "presence", "added"),
                ("me", "note", "added"),
                ("me", "location", "added"),
            ]
        );
        let emb = rows[0].embedded.as_deref().unwrap();
        assert!(emb.starts_with("<resource rel=\"communication\""), "{emb}");
        assert!(emb.ends_with("</resource>"));
        assert_eq!(rows[1].embedded, None);
        let links = feed_links(Representation::Xml, &body).unwrap();
        assert_eq!(
            links.next.as_deref(),
            Some("/ucwa/oauth/v1/applications/102/events?ack=2")
        );
    }

    #[test]
    fn xml_in_status_reason() {
        let body = br#"<?xml version="1.0" encoding="utf-8"?>
<events href="/a/events?ack=3" xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa">
  <link rel="next" href="/a/events?ack=4" />
  <sender rel="conversation" href="/a/conversations/1">
    <deleted rel="participantMessaging" href="/a/conversations/1/participants/x/messaging" title="X">
      <in rel="participant" href="/a/conversations/1/participants/x" />
    </deleted>
  </sender>
  <sender rel="communication" href="/a/communication">
    <completed rel="messagingInvitation" href="/a/mi/1" status="Failure">
      <reason><code>Gone</code><subcode>Declined</subcode><message>no</message></reason>
    </completed>
  </sender>
</events>"#;
        let rows = parse_events(Representation::Xml, body, Some(3)).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].event_type, "deleted");
        assert_eq!(rows[0].in_rel.as_deref(), Some("participant"));
        assert_eq!(rows[0].link_title.as_deref(), Some("X"));
        assert_eq!(rows[1].position, 1);
        assert_eq!(rows[1].status.as_deref(), Some("Failure"));
        let reason: Value = serde_json::from_str(rows[1].reason.as_deref().unwrap()).unwrap();
        assert_eq!(reason["subcode"], "Declined");
    }

    #[test]
    fn truncated_bodies_never_panic() {
        let json = br#"{"sender":[{"rel":"c","href":"/c","events":[{"link":{"rel":"m","href":"/m"},"_embedded":{"m":{}},"type":"added"}]}]}"#;
        let xml = br#"<events><sender rel="c" href="/c"><added rel="m" href="/m"><resource rel="m"/></added></sender></events>"#;
        for body in [&json[..], &xml[..]] {
            for cut in 0..body.len() {
                for repr in [
                    Representation::Json,
                    Representation::Xml,
                    Representation::Other,
                ] {
                    let _ = parse_events(repr, &body[..cut], None);
                    let _ = feed_links(repr, &body[..cut]);
                }
            }
        }
    }

    #[test]
    fn empty_batches_resync_and_garbage() {
        let none = br#"{"_links":{"self":{"href":"/e?ack=2"},"next":{"href":"/e?ack=3"}}}"#;
        assert!(
            parse_events(Representation::Json, none, Some(2))
                .unwrap()
                .is_empty()
        );
        let empty = b"\xEF\xBB\xBF{\"_links\":{\"resync\":{\"href\":\"/e?ack=1\"}},\"sender\":[]}";
        assert!(
            parse_events(Representation::Json, empty, None)
                .unwrap()
                .is_empty()
        );
        let links = feed_links(Representation::Json, empty).unwrap();
        assert_eq!(links.follow(), Some("/e?ack=1"));
        for bad in [
            &b""[..],
            b"[]",
            b"{\"sender\":{}}",
            b"{\"sender\":[1]}",
            b"{\"sender\":[{\"events\":[{\"link\":{}}]}]}",
            b"\xff\xfe",
            b"{\"sender\": [",
        ] {
            assert!(parse_events(Representation::Json, bad, None).is_err());
        }
        for bad in [&b"<events"[..], b"<x/>", b"\xff", b""] {
            assert!(parse_events(Representation::Xml, bad, None).is_err());
        }
    }
}

#[cfg(test)]
mod proptests;
