//! Exchanges → HAR 1.2 and NDJSON (the mapping is documented in the module above).
//!
//! Both are written while the exchanges are read ([`export_har`], [`export_ndjson`]): a
//! session of 100 000 exchanges is exported in the memory of one page of them, not of the
//! session and its whole document.
//!
//! HAR's standard part is built with the `har` crate's types, so that it is the shape viewers
//! expect; the `_ucwa` custom fields are added to the JSON afterwards, since those types have
//! no room for extensions.

use std::io::Write;

use base64::Engine;
use har::v1_2;
use serde_json::{Map, Value, json};

use super::{CUSTOM, HAR_VERSION, time};
use crate::error::Error;
use crate::recording::Upstreams;
use crate::recording::{EventRow, Exchange, HeaderList, SessionInfo};
use crate::store::Recording;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Where each exchange's URL points: the session's upstream, or the also-upstream named by a
/// `/_upstream/HOST` path prefix (the one parser in [`Upstreams`]).
struct Origins {
    /// The recorded origins, when they parse.
    upstreams: Option<Upstreams>,
    /// The recorded upstream as written, for a session whose origins do not parse.
    raw: String,
}

impl Origins {
    fn new(session: &SessionInfo) -> Self {
        Origins {
            upstreams: Upstreams::parse(&session.upstream, &session.also_upstreams).ok(),
            raw: session.upstream.trim_end_matches('/').to_string(),
        }
    }

    /// The absolute URL of an exchange.
    fn url(&self, ex: &Exchange) -> String {
        match &self.upstreams {
            Some(u) => u.url_of(&ex.path, ex.query.as_deref()),
            None => match &ex.query {
                Some(q) => format!("{}{}?{q}", self.raw, ex.path),
                None => format!("{}{}", self.raw, ex.path),
            },
        }
    }
}

/// The HAR document of a session.
pub fn to_har(session: &SessionInfo, exchanges: &[Exchange]) -> Value {
    let origins = Origins::new(session);
    let log = v1_2::Log {
        creator: v1_2::Creator {
            name: "ucwa-replay".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            comment: None,
        },
        browser: None,
        pages: None,
        entries: exchanges.iter().map(|e| entry(&origins, e)).collect(),
        comment: Some(format!("ucwa-replay session {:?}", session.name)),
    };
    let har = har::Har {
        log: har::Spec::V1_2(log),
    };
    let mut doc = serde_json::to_value(&har).unwrap_or(Value::Null);
    if let Some(log) = doc.get_mut("log").and_then(Value::as_object_mut) {
        log.insert(
            CUSTOM.into(),
            json!({
                "session": session.name,
                "upstream": session.upstream,
                "alsoUpstreams": session.also_upstreams,
                "startedAt": session.started_at,
                "toolVersion": session.tool_version,
            }),
        );
        if let Some(Value::Array(entries)) = log.get_mut("entries") {
            for (value, ex) in entries.iter_mut().zip(exchanges) {
                if let Some(obj) = value.as_object_mut() {
                    obj.insert(CUSTOM.into(), custom(ex));
                }
            }
        }
    }
    debug_assert_eq!(
        doc.pointer("/log/version").and_then(Value::as_str),
        Some(HAR_VERSION)
    );
    doc
}

/// Write the HAR document (pretty JSON, newline-terminated).
pub fn write_har<W: Write>(
    out: W,
    session: &SessionInfo,
    exchanges: &[Exchange],
) -> std::io::Result<()> {
    har_stream(out, session, exchanges.iter().map(Ok)).map(drop)
}

/// Write one JSON object per exchange per line.
pub fn write_ndjson<W: Write>(
    out: W,
    session: &SessionInfo,
    exchanges: &[Exchange],
) -> std::io::Result<()> {
    ndjson_stream(out, session, exchanges.iter().map(Ok)).map(drop)
}

/// Write the HAR document of a session while its exchanges are read from the recording, a
/// page at a time: the bytes of [`write_har`], in memory for one exchange, not the session.
/// Returns how many exchanges were written.
pub fn export_har<W: Write>(
    out: W,
    recording: &Recording,
    session: &SessionInfo,
) -> Result<u64, Error> {
    let exchanges = recording
        .stream_exchanges(session)
        .map(|r| r.map_err(Error::from));
    har_stream(out, session, exchanges)
}

/// [`write_ndjson`] while the exchanges are read from the recording (see [`export_har`]).
pub fn export_ndjson<W: Write>(
    out: W,
    recording: &Recording,
    session: &SessionInfo,
) -> Result<u64, Error> {
    let exchanges = recording
        .stream_exchanges(session)
        .map(|r| r.map_err(Error::from));
    ndjson_stream(out, session, exchanges)
}

/// The indentation of an entry in the pretty document (`log` → `entries` → element).
const ENTRY_INDENT: &str = "      ";

/// The HAR document written one entry at a time. The parts around the entries come from
/// the document of the session with no entries, so that the bytes are those of
/// `to_writer_pretty(to_har(..))` whatever the `har` crate puts around them.
fn har_stream<W, I, X, E>(mut out: W, session: &SessionInfo, exchanges: I) -> Result<u64, E>
where
    W: Write,
    I: IntoIterator<Item = Result<X, E>>,
    X: std::borrow::Borrow<Exchange>,
    E: From<std::io::Error>,
{
    let empty =
        serde_json::to_string_pretty(&to_har(session, &[])).map_err(std::io::Error::from)?;
    let marker = "\"entries\": []";
    let at = empty
        .find(marker)
        .expect("the HAR document has an entries array");
    let (head, tail) = (
        &empty[..at + marker.len() - 1],
        &empty[at + marker.len() - 1..],
    );
    out.write_all(head.as_bytes())?;
    let origins = Origins::new(session);
    let mut written = 0u64;
    let mut buf = Vec::new();
    for ex in exchanges {
        let ex = ex?;
        let ex = ex.borrow();
        let with_custom = WithCustom {
            entry: &entry(&origins, ex),
            custom: custom(ex),
        };
        buf.clear();
        serde_json::to_writer_pretty(&mut buf, &with_custom).map_err(std::io::Error::from)?;
        out.write_all(if written == 0 { b"\n" } else { b",\n" })?;
        // Strings never hold a raw newline (JSON escapes it): every line break is layout.
        for (i, line) in buf.split(|b| *b == b'\n').enumerate() {
            if i > 0 {
                out.write_all(b"\n")?;
            }
            out.write_all(ENTRY_INDENT.as_bytes())?;
            out.write_all(line)?;
        }
        written += 1;
    }
    if written > 0 {
        out.write_all(b"\n    ")?;
    }
    out.write_all(tail.as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(written)
}

/// An entry and its `_ucwa` member, written straight out: the bytes of the entry made a
/// JSON tree with `_ucwa` added last (as [`to_har`] does), without building the tree,
/// which was about a third of an export's time.
#[derive(serde::Serialize)]
struct WithCustom<'a> {
    #[serde(flatten)]
    entry: &'a v1_2::Entries,
    /// [`CUSTOM`] (a serde name must be a literal).
    #[serde(rename = "_ucwa")]
    custom: Value,
}

/// NDJSON lines written one exchange at a time.
fn ndjson_stream<W, I, X, E>(mut out: W, session: &SessionInfo, exchanges: I) -> Result<u64, E>
where
    W: Write,
    I: IntoIterator<Item = Result<X, E>>,
    X: std::borrow::Borrow<Exchange>,
    E: From<std::io::Error>,
{
    let origins = Origins::new(session);
    let mut written = 0;
    for ex in exchanges {
        let ex = ex?;
        serde_json::to_writer(&mut out, &ndjson_line(&origins, &session.name, ex.borrow()))
            .map_err(std::io::Error::from)?;
        out.write_all(b"\n")?;
        written += 1;
    }
    out.flush()?;
    Ok(written)
}

fn entry(origins: &Origins, ex: &Exchange) -> v1_2::Entries {
    let ms = ex.duration_us.max(0) as f64 / 1000.0;
    let request_ct = ex.request_headers.get("content-type").unwrap_or("");
    let post_data = (!ex.request_body.is_empty()).then(|| v1_2::PostData {
        mime_type: request_ct.to_string(),
        text: Some(text_or_base64(&ex.request_body).0),
        params: None,
        comment: None,
    });
    let (content_text, base64) = text_or_base64(&ex.response_body);
    let status = ex.status.unwrap_or(0);
    v1_2::Entries {
        pageref: None,
        started_date_time: time::format_us(ex.started_us),
        time: ms,
        request: v1_2::Request {
            method: ex.method.clone(),
            url: origins.url(ex),
            http_version: ex.http_version.clone(),
            cookies: request_cookies(&ex.request_headers),
            headers: har_headers(&ex.request_headers),
            query_string: ex
                .query
                .as_deref()
                .map(|q| {
                    form_urlencoded::parse(q.as_bytes())
                        .map(|(name, value)| v1_2::QueryString {
                            name: name.into_owned(),
                            value: value.into_owned(),
                            comment: None,
                        })
                        .collect()
                })
                .unwrap_or_default(),
            post_data,
            headers_size: -1,
            body_size: ex.request_body.len() as i64,
            comment: None,
        },
        response: v1_2::Response {
            status: i64::from(status),
            status_text: http::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("")
                .to_string(),
            http_version: ex.http_version.clone(),
            cookies: response_cookies(&ex.response_headers),
            headers: har_headers(&ex.response_headers),
            content: v1_2::Content {
                size: ex.response_body.len() as i64,
                compression: None,
                mime_type: Some(
                    ex.response_headers
                        .get("content-type")
                        .unwrap_or("")
                        .to_string(),
                ),
                text: Some(content_text),
                encoding: base64.then(|| "base64".to_string()),
                comment: None,
            },
            redirect_url: Some(ex.response_headers.get("location").unwrap_or("").into()),
            headers_size: -1,
            body_size: if ex.status.is_some() {
                ex.response_body.len() as i64
            } else {
                -1
            },
            comment: None,
        },
        cache: v1_2::Cache::default(),
        timings: v1_2::Timings {
            blocked: None,
            dns: None,
            connect: None,
            send: 0.0,
            wait: ms,
            receive: 0.0,
            ssl: None,
            comment: None,
        },
        server_ip_address: None,
        connection: None,
        comment: ex.error.clone(),
    }
}

/// The `_ucwa` object of an entry.
fn custom(ex: &Exchange) -> Value {
    let mut c = Map::new();
    c.insert("seq".into(), ex.seq.into());
    c.insert("kind".into(), ex.kind.as_str().into());
    c.insert("representation".into(), ex.representation.as_str().into());
    c.insert("matchKey".into(), ex.match_key.to_string().into());
    c.insert("ordinal".into(), ex.ordinal.into());
    c.insert("credential".into(), ex.credential.clone().into());
    c.insert("upstream".into(), ex.upstream.clone().into());
    c.insert("error".into(), ex.error.clone().into());
    c.insert("requestTruncated".into(), ex.request_truncated.into());
    c.insert("responseTruncated".into(), ex.response_truncated.into());
    c.insert("contentEncoding".into(), ex.content_encoding.clone().into());
    c.insert(
        "requestBodyBase64".into(),
        std::str::from_utf8(&ex.request_body).is_err().into(),
    );
    let binary = json!({
        "request": binary_headers(&ex.request_headers),
        "response": binary_headers(&ex.response_headers),
    });
    if binary.as_object().is_some_and(|o| {
        o.values()
            .any(|v| v.as_object().is_some_and(|m| !m.is_empty()))
    }) {
        c.insert("binaryHeaders".into(), binary);
    }
    c.insert("events".into(), ex.events.len().into());
    Value::Object(c)
}

/// Indexes of header values that are not UTF-8, with their bytes in base64.
fn binary_headers(h: &HeaderList) -> Value {
    Value::Object(
        h.0.iter()
            .enumerate()
            .filter(|(_, (_, v))| std::str::from_utf8(v).is_err())
            .map(|(i, (_, v))| (i.to_string(), Value::String(B64.encode(v))))
            .collect(),
    )
}

/// UTF-8 text as is, anything else as base64 (the flag says which).
fn text_or_base64(bytes: &[u8]) -> (String, bool) {
    match std::str::from_utf8(bytes) {
        Ok(s) => (s.to_string(), false),
        Err(_) => (B64.encode(bytes), true),
    }
}

fn har_headers(h: &HeaderList) -> Vec<v1_2::Headers> {
    h.iter()
        .map(|(name, value)| v1_2::Headers {
            name: name.to_string(),
            value: String::from_utf8_lossy(value).into_owned(),
            comment: None,
        })
        .collect()
}

fn cookie(name: &str, value: &str) -> v1_2::Cookies {
    v1_2::Cookies {
        name: name.trim().to_string(),
        value: value.trim().to_string(),
        ..v1_2::Cookies::default()
    }
}

fn request_cookies(h: &HeaderList) -> Vec<v1_2::Cookies> {
    h.get_all("cookie")
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.split_once('='))
        .map(|(n, v)| cookie(n, v))
        .collect()
}

fn response_cookies(h: &HeaderList) -> Vec<v1_2::Cookies> {
    h.get_all("set-cookie")
        .filter_map(|line| line.split(';').next()?.split_once('='))
        .map(|(n, v)| cookie(n, v))
        .collect()
}

fn ndjson_line(origins: &Origins, session: &str, ex: &Exchange) -> Value {
    let headers = |h: &HeaderList| -> Value {
        h.iter()
            .map(|(n, v)| json!([n, String::from_utf8_lossy(v)]))
            .collect()
    };
    let mut o = Map::new();
    o.insert("session".into(), session.into());
    o.insert("seq".into(), ex.seq.into());
    o.insert("started".into(), time::format_us(ex.started_us).into());
    o.insert("started_us".into(), ex.started_us.into());
    o.insert("duration_us".into(), ex.duration_us.into());
    o.insert("method".into(), ex.method.clone().into());
    o.insert("url".into(), origins.url(ex).into());
    o.insert("path".into(), ex.path.clone().into());
    o.insert("query".into(), ex.query.clone().into());
    o.insert("http_version".into(), ex.http_version.clone().into());
    o.insert("request_headers".into(), headers(&ex.request_headers));
    body_fields(&mut o, "request_body", &ex.request_body);
    o.insert("request_truncated".into(), ex.request_truncated.into());
    o.insert("status".into(), ex.status.into());
    o.insert("response_headers".into(), headers(&ex.response_headers));
    body_fields(&mut o, "response_body", &ex.response_body);
    o.insert("response_truncated".into(), ex.response_truncated.into());
    o.insert(
        "content_encoding".into(),
        ex.content_encoding.clone().into(),
    );
    o.insert("error".into(), ex.error.clone().into());
    o.insert("kind".into(), ex.kind.as_str().into());
    o.insert("representation".into(), ex.representation.as_str().into());
    o.insert("match_key".into(), ex.match_key.to_string().into());
    o.insert("ordinal".into(), ex.ordinal.into());
    o.insert("credential".into(), ex.credential.clone().into());
    o.insert("upstream".into(), ex.upstream.clone().into());
    o.insert("events".into(), ex.events.iter().map(event_json).collect());
    Value::Object(o)
}

fn body_fields(o: &mut Map<String, Value>, name: &str, body: &[u8]) {
    match text_or_base64(body) {
        (text, false) => o.insert(name.into(), text.into()),
        (b64, true) => o.insert(format!("{name}_base64"), b64.into()),
    };
}

/// JSON text as JSON, anything else (XML) as a string.
fn json_or_text(text: &Option<String>) -> Value {
    match text {
        None => Value::Null,
        Some(t) => serde_json::from_str(t).unwrap_or_else(|_| Value::String(t.clone())),
    }
}

fn event_json(e: &EventRow) -> Value {
    json!({
        "ack": e.ack,
        "position": e.position,
        "sender_rel": e.sender_rel,
        "sender_href": e.sender_href,
        "type": e.event_type,
        "link_rel": e.link_rel,
        "link_href": e.link_href,
        "link_title": e.link_title,
        "in_rel": e.in_rel,
        "in_href": e.in_href,
        "status": e.status,
        "reason": json_or_text(&e.reason),
        "embedded": json_or_text(&e.embedded),
    })
}
