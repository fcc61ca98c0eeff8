//! The match key: what makes two requests "the same request" for replay and for diff
//! alignment. Computed once by the recorder and stored, so replay
//! start-up and diff never re-parse bodies.
//!
//! Text form: `METHOD PATH[?CANONICAL_QUERY] REPR BODY`, where `BODY` is `-` (no body) or
//! `json:`/`form:`/`xml:`/`bytes:` and 16 hex digits of a SHA-256 of the canonical body.
//! Never part of it: volatile headers, credentials (those are redacted), events-feed tuning
//! parameters, client-generated identifiers in bodies.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::model::Exchange;
use crate::ucwa::media::strip_bom;
use crate::ucwa::{Representation, media};

/// Events-feed query parameters that tune the long poll without changing what it returns.
pub const FEED_TUNING_PARAMS: &[&str] = &["timeout", "low", "medium", "priority"];

/// Body fields that real clients regenerate on every run (compared case-insensitively).
pub const DEFAULT_IGNORED_BODY_FIELDS: &[&str] = &[
    "EndpointId",
    "operationId",
    "sessionContext",
    "telemetryId",
    "clientRequestId",
    "correlationId",
];

/// Options of key computation shared by record, replay and diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOptions {
    /// JSON fields, form fields and XML `<property name>`s left out of the body part.
    pub ignore_body_fields: Vec<String>,
}

impl Default for KeyOptions {
    fn default() -> Self {
        KeyOptions {
            ignore_body_fields: DEFAULT_IGNORED_BODY_FIELDS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

impl KeyOptions {
    /// Defaults plus `extra` fields (`--ignore-body-field`).
    pub fn with_extra_fields<I: IntoIterator<Item = String>>(extra: I) -> Self {
        let mut opts = KeyOptions::default();
        opts.ignore_body_fields.extend(extra);
        opts
    }

    fn ignores(&self, name: &str) -> bool {
        self.ignore_body_fields
            .iter()
            .any(|f| f.eq_ignore_ascii_case(name))
    }
}

/// A parsed match key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MatchKey {
    pub method: String,
    pub path: String,
    /// Canonical query (sorted, tuning parameters removed); empty when none.
    pub query: String,
    pub representation: Representation,
    /// `-` or `KIND:DIGEST`.
    pub body: String,
}

impl fmt::Display for MatchKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)?;
        if !self.query.is_empty() {
            write!(f, "?{}", self.query)?;
        }
        write!(f, " {} {}", self.representation, self.body)
    }
}

impl MatchKey {
    /// Parse the stored text form.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split(' ');
        let method = parts.next()?.to_string();
        let target = parts.next()?;
        let representation = Representation::parse(parts.next()?)?;
        let body = parts.next()?.to_string();
        if parts.next().is_some() {
            return None;
        }
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_string(), q.to_string()),
            None => (target.to_string(), String::new()),
        };
        Some(MatchKey {
            method,
            path,
            query,
            representation,
            body,
        })
    }
}

/// What a match key is computed from: a request as the client sent it, after redaction.
/// Build it from a target and add what the request has:
/// ```
/// use ucwa_replay::recording::{KeyOptions, KeyRequest};
/// let key = KeyRequest::new("GET", "/ucwa/oauth/v1/applications/1/events?ack=2&timeout=900")
///     .accept(Some("application/json"))
///     .key(&KeyOptions::default());
/// assert_eq!(key.to_string(), "GET /ucwa/oauth/v1/applications/1/events?ack=2 json -");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    /// The `Accept` header (JSON or XML asked for).
    pub accept: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
}

impl<'a> KeyRequest<'a> {
    /// A request without headers or body; `target` is `path[?query]`.
    pub fn new(method: &'a str, target: &'a str) -> Self {
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (target, None),
        };
        KeyRequest {
            method,
            path,
            query,
            ..KeyRequest::default()
        }
    }

    /// With the `Accept` header the client sent.
    pub fn accept(mut self, accept: Option<&'a str>) -> Self {
        self.accept = accept;
        self
    }

    /// With a body and its `Content-Type`.
    pub fn body(mut self, content_type: Option<&'a str>, body: &'a [u8]) -> Self {
        self.content_type = content_type;
        self.body = body;
        self
    }

    /// The request of a recorded exchange.
    pub fn of_exchange(e: &'a Exchange) -> Self {
        KeyRequest {
            method: &e.method,
            path: &e.path,
            query: e.query.as_deref(),
            accept: e.request_headers.get("accept"),
            content_type: e.request_headers.get("content-type"),
            body: &e.request_body,
        }
    }

    /// A request arriving over HTTP (its body already read).
    pub fn of_http(parts: &'a http::request::Parts, body: &'a [u8]) -> Self {
        let header = |name| parts.headers.get(name).and_then(|v| v.to_str().ok());
        KeyRequest {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query(),
            accept: header(http::header::ACCEPT),
            content_type: header(http::header::CONTENT_TYPE),
            body,
        }
    }

    /// The match key of this request.
    pub fn key(&self, opts: &KeyOptions) -> MatchKey {
        MatchKey {
            method: self.method.to_ascii_uppercase(),
            // Spaces cannot appear in a request path; keep the text form splittable regardless.
            path: self.path.replace(' ', "%20"),
            query: canonical_query(self.query.unwrap_or("")),
            representation: Representation::from_accept(self.accept),
            body: body_part(opts, self.content_type, self.body),
        }
    }
}

/// Sort the query's pairs (byte-wise, stable for repeated names) and drop the events-feed
/// tuning parameters. Encoding is kept as sent.
pub fn canonical_query(query: &str) -> String {
    // Each pair is normalised before sorting, so that the order is the order of the bytes
    // written out: sorting first made `" &!"` come out as `"%20&!"`, which sorts differently
    // the second time (the canonical form must be a fixed point).
    let mut pairs: Vec<std::borrow::Cow<'_, str>> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| {
            let name = p.split('=').next().unwrap_or("");
            !FEED_TUNING_PARAMS
                .iter()
                .any(|t| t.eq_ignore_ascii_case(name))
        })
        .map(|p| {
            // Most pairs need neither change: no copy for them (this runs per request).
            if !p.contains(' ') && !p.contains("REDACTED-") {
                return std::borrow::Cow::Borrowed(p);
            }
            let spaced = p.replace(' ', "%20");
            String::from_utf8_lossy(&unnumber_placeholders(spaced.as_bytes()))
                .into_owned()
                .into()
        })
        .collect();
    pairs.sort();
    pairs.join("&")
}

/// The canonical text of a body and its kind (`json`, `form`, `xml`, `bytes`), or `None` for
/// an empty body. Diff and miss reports use the text; the key uses its digest.
pub fn canonical_body(
    opts: &KeyOptions,
    content_type: Option<&str>,
    body: &[u8],
) -> Option<(&'static str, Vec<u8>)> {
    if body.is_empty() {
        return None;
    }
    let mime = content_type.map(media::essence).unwrap_or_default();
    let text = strip_bom(body);
    if mime == "application/x-www-form-urlencoded" {
        let mut pairs: Vec<(String, String)> = form_urlencoded::parse(text)
            .filter(|(k, _)| !opts.ignores(k))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        pairs.sort();
        let canon = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        return Some(("form", canon.into_bytes()));
    }
    if let Ok(value) = serde_json::from_slice::<Value>(text) {
        let canon = canonical_json(opts, &value);
        return Some(("json", canon.to_string().into_bytes()));
    }
    if let Some(canon) = std::str::from_utf8(text)
        .ok()
        .and_then(|s| canonical_xml(opts, s))
    {
        return Some(("xml", canon.into_bytes()));
    }
    Some(("bytes", body.to_vec()))
}

/// Redaction placeholders (`REDACTED-3`) are numbered in the order the recorder met each
/// secret, which may differ between runs: the key keeps that a value was redacted, not its
/// number, so it never depends on a secret (nor on its rank).
fn unnumber_placeholders(text: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    static PLACEHOLDER: std::sync::LazyLock<regex::bytes::Regex> = std::sync::LazyLock::new(|| {
        regex::bytes::Regex::new(r"REDACTED-[0-9]+").expect("static regex")
    });
    PLACEHOLDER.replace_all(text, &b"REDACTED"[..])
}

fn body_part(opts: &KeyOptions, content_type: Option<&str>, body: &[u8]) -> String {
    match canonical_body(opts, content_type, body) {
        None => "-".to_string(),
        Some((kind, canon)) => {
            let digest = Sha256::digest(unnumber_placeholders(&canon));
            format!("{kind}:{}", &hex::encode(digest)[..16])
        }
    }
}

/// JSON with object keys sorted and ignored fields removed at any depth.
pub fn canonical_json(opts: &KeyOptions, value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let sorted: BTreeMap<&String, Value> = map
                .iter()
                .filter(|(k, _)| !opts.ignores(k))
                .map(|(k, v)| (k, canonical_json(opts, v)))
                .collect();
            Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| canonical_json(opts, v)).collect())
        }
        other => other.clone(),
    }
}

/// XML as a canonical line per element: namespace-resolved names, sorted attributes, trimmed
/// text; `<property name="X">` elements for ignored fields dropped.
fn canonical_xml(opts: &KeyOptions, text: &str) -> Option<String> {
    let doc = roxmltree::Document::parse(text).ok()?;
    let mut out = String::new();
    write_xml(opts, doc.root_element(), 0, &mut out);
    Some(out)
}

fn write_xml(opts: &KeyOptions, node: roxmltree::Node<'_, '_>, depth: usize, out: &mut String) {
    if node.tag_name().name() == "property"
        && node.attribute("name").is_some_and(|n| opts.ignores(n))
    {
        return;
    }
    let tag = node.tag_name();
    let mut attrs: Vec<String> = node
        .attributes()
        .map(|a| match a.namespace() {
            Some(ns) => format!("{{{ns}}}{}={:?}", a.name(), a.value()),
            None => format!("{}={:?}", a.name(), a.value()),
        })
        .collect();
    attrs.sort();
    out.push_str(&"  ".repeat(depth));
    out.push_str(&format!(
        "{{{}}}{} {}",
        tag.namespace().unwrap_or(""),
        tag.name(),
        attrs.join(" ")
    ));
    let text: String = node
        .children()
        .filter(|c| c.is_text())
        .filter_map(|c| c.text())
        .collect::<String>();
    let text = text.trim();
    if !text.is_empty() {
        out.push_str(&format!(" text={text:?}"));
    }
    out.push('\n');
    for child in node.children().filter(|c| c.is_element()) {
        write_xml(opts, child, depth + 1, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(method: &str, pq: &str, accept: Option<&str>, ct: Option<&str>, body: &str) -> MatchKey {
        let (p, q) = match pq.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (pq, None),
        };
        KeyRequest {
            method,
            path: p,
            query: q,
            accept,
            content_type: ct,
            body: body.as_bytes(),
        }
        .key(&KeyOptions::default())
    }

    #[test]
    fn tuning_parameters_and_order_do_not_matter() {
        let a = key(
            "GET",
            "/ucwa/oauth/v1/applications/1/events?ack=3&timeout=900&priority=1",
            None,
            None,
            "",
        );
        let b = key(
            "get",
            "/ucwa/oauth/v1/applications/1/events?low=5&ack=3",
            None,
            None,
            "",
        );
        assert_eq!(a, b);
        assert_eq!(
            a.to_string(),
            "GET /ucwa/oauth/v1/applications/1/events?ack=3 json -"
        );
        assert_ne!(
            a,
            key(
                "GET",
                "/ucwa/oauth/v1/applications/1/events?ack=4",
                None,
                None,
                ""
            )
        );
    }

    /// Found by the property test: normalising after sorting gave a form that sorted
    /// differently when canonicalised again.
    #[test]
    fn the_canonical_query_sorts_what_it_writes() {
        assert_eq!(canonical_query(" &!"), "!&%20");
        assert_eq!(canonical_query("!&%20"), "!&%20");
        // `REDACTED-10Z` sorts before `REDACTED-9`, but both lose their numbers.
        let canon = canonical_query("x=REDACTED-9&x=REDACTED-10Z");
        assert_eq!(canon, "x=REDACTED&x=REDACTEDZ");
        assert_eq!(canonical_query(&canon), canon);
    }

    #[test]
    fn representation_comes_from_accept() {
        let json = key("GET", "/x", Some("application/json"), None, "");
        let xml = key(
            "GET",
            "/x",
            Some("application/vnd.microsoft.com.ucwa+xml"),
            None,
            "",
        );
        assert_ne!(json, xml);
        assert_eq!(xml.representation, Representation::Xml);
    }

    #[test]
    fn json_bodies_compare_by_value_without_client_ids() {
        let a = key(
            "POST",
            "/ucwa/oauth/v1/applications",
            None,
            Some("application/json"),
            r#"{"UserAgent":"bot","EndpointId":"1111","Culture":"en-US"}"#,
        );
        let b = key(
            "POST",
            "/ucwa/oauth/v1/applications",
            None,
            Some("application/json"),
            "\u{feff}{ \"Culture\" : \"en-US\", \"endpointId\":\"2222\", \"UserAgent\":\"bot\" }",
        );
        assert_eq!(a, b);
        let c = key(
            "POST",
            "/ucwa/oauth/v1/applications",
            None,
            Some("application/json"),
            r#"{"UserAgent":"other","Culture":"en-US"}"#,
        );
        assert_ne!(a, c);
    }

    #[test]
    fn form_and_xml_bodies_are_canonical() {
        let a = key(
            "POST",
            "/t",
            None,
            Some("application/x-www-form-urlencoded"),
            "b=2&a=1&operationId=9",
        );
        let b = key(
            "POST",
            "/t",
            None,
            Some("application/x-www-form-urlencoded"),
            "a=1&b=2",
        );
        assert_eq!(a, b);
        assert!(a.body.starts_with("form:"));
        let x1 = r#"<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><property name="UserAgent">bot</property><property name="EndpointId">1</property></input>"#;
        let x2 = r#"<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa">
            <property name="UserAgent">bot</property><property name="EndpointId">2</property></input>"#;
        assert_eq!(
            key("POST", "/a", None, Some("application/xml"), x1),
            key("POST", "/a", None, Some("application/xml"), x2)
        );
    }

    #[test]
    fn placeholder_numbers_do_not_change_the_key() {
        let ct = Some("application/x-www-form-urlencoded");
        let a = key(
            "POST",
            "/t?x=cwt=REDACTED-1",
            None,
            ct,
            "username=REDACTED-1&password=REDACTED-2",
        );
        let b = key(
            "POST",
            "/t?x=cwt=REDACTED-7",
            None,
            ct,
            "username=REDACTED-2&password=REDACTED-3",
        );
        assert_eq!(a, b);
        let c = key(
            "POST",
            "/t?x=cwt=REDACTED-7",
            None,
            ct,
            "username=bob&password=REDACTED-3",
        );
        assert_ne!(a, c);
    }

    #[test]
    fn text_form_round_trips() {
        let k = key(
            "POST",
            "/a/b?z=1&y=2",
            Some("application/xml"),
            Some("text/plain"),
            "Hello",
        );
        assert_eq!(MatchKey::parse(&k.to_string()), Some(k.clone()));
        assert!(k.body.starts_with("bytes:"));
    }

    #[test]
    fn token_request_keys_ignore_placeholder_numbers() {
        const FORM: Option<&str> = Some("application/x-www-form-urlencoded");
        let a = key(
            "POST",
            "/WebTicket/oauthtoken",
            None,
            FORM,
            "grant_type=password&username=REDACTED-1&password=REDACTED-2",
        );
        let b = key(
            "POST",
            "/WebTicket/oauthtoken",
            None,
            FORM,
            "grant_type=password&username=REDACTED-3&password=REDACTED-14",
        );
        assert_eq!(a, b);
        let other = key(
            "POST",
            "/WebTicket/oauthtoken",
            None,
            FORM,
            "grant_type=refresh_token&username=REDACTED-1&password=REDACTED-2",
        );
        assert_ne!(a, other);
    }
}

#[cfg(test)]
mod proptests;
