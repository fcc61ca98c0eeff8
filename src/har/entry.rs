//! One HAR entry → one unredacted [`Exchange`]: URL split into origin, path and query,
//! headers in order (pseudo-headers dropped), bodies decoded from text or base64, and the
//! `_ucwa` custom fields of our own exports applied. Lenient where browsers are (missing
//! `cache` / `timings`, `h2` as a version), strict where meaning would be lost (a body that
//! claims base64 and is not).

use base64::Engine;
use har::v1_2;
use serde_json::{Map, Value, json};

use crate::recording::decode::is_encoded;
use crate::recording::{Exchange, HeaderList};
use crate::recording::{Origin, ResourceKind, Upstreams};
use crate::ucwa::Representation;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// One entry, parsed, before redaction.
pub(super) struct Raw {
    pub(super) index: usize,
    pub(super) started_us: i64,
    pub(super) origin: Option<Origin>,
    pub(super) path: String,
    pub(super) query: Option<String>,
    pub(super) entry: v1_2::Entries,
    pub(super) custom: Option<Map<String, Value>>,
    pub(super) browser_error: Option<String>,
}

/// Browsers and other tools leave out fields HAR 1.2 calls required but that carry nothing
/// for us (`cache`, `timings`, empty lists): supply them, so that such files still import.
pub(super) fn fill_defaults(entry: &mut Map<String, Value>) {
    let set = |o: &mut Map<String, Value>, k: &str, v: Value| {
        o.entry(k.to_string()).or_insert(v);
    };
    set(entry, "cache", json!({}));
    set(
        entry,
        "timings",
        json!({"send": 0, "wait": 0, "receive": 0}),
    );
    set(entry, "time", json!(0));
    for side in ["request", "response"] {
        if let Some(o) = entry.get_mut(side).and_then(Value::as_object_mut) {
            set(o, "httpVersion", json!(""));
            set(o, "cookies", json!([]));
            set(o, "headers", json!([]));
            set(o, "headersSize", json!(-1));
            set(o, "bodySize", json!(-1));
        }
    }
    if let Some(o) = entry.get_mut("request").and_then(Value::as_object_mut) {
        set(o, "queryString", json!([]));
    }
    if let Some(o) = entry.get_mut("response").and_then(Value::as_object_mut) {
        set(o, "statusText", json!(""));
        set(o, "content", json!({"size": 0}));
    }
}

/// `scheme://authority/path?query#fragment` → (origin, path, query); a relative URL has no
/// origin; None for URLs that are not HTTP (`data:`, `blob:`, `ws:`, `chrome-extension:`).
pub(super) fn split_url(url: &str) -> Option<(Option<Origin>, String, Option<String>)> {
    let url = url.split('#').next().unwrap_or(url);
    let (origin, rest) = match url.find("://") {
        Some(i) => {
            let scheme = url[..i].to_ascii_lowercase();
            if scheme != "http" && scheme != "https" {
                return None;
            }
            let after = &url[i + 3..];
            let end = after.find(['/', '?']).unwrap_or(after.len());
            let origin = Origin::parse(&format!("{scheme}://{}", &after[..end])).ok()?;
            (Some(origin), &after[end..])
        }
        None if url.starts_with('/') => (None, url),
        None => return None,
    };
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q.to_string())),
        None => (rest, None),
    };
    let path = if path.is_empty() { "/" } else { path };
    Some((origin, path.to_string(), query))
}

fn custom_str(c: &Option<Map<String, Value>>, key: &str) -> Option<String> {
    c.as_ref()?.get(key)?.as_str().map(str::to_owned)
}

fn custom_bool(c: &Option<Map<String, Value>>, key: &str) -> bool {
    c.as_ref()
        .and_then(|c| c.get(key))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// The stored spelling of a HAR `httpVersion` (`h2` → `HTTP/2.0`).
fn http_version(v: &str) -> String {
    match v.trim().to_ascii_lowercase().as_str() {
        "h2" | "http/2" | "http/2.0" => "HTTP/2.0".into(),
        "h3" | "http/3" | "http/3.0" => "HTTP/3.0".into(),
        "http/1.0" => "HTTP/1.0".into(),
        "" | "http/1.1" | "unknown" => "HTTP/1.1".into(),
        other => other.to_ascii_uppercase(),
    }
}

/// Headers in order, names lower-case (as the proxy stores them), pseudo-headers dropped,
/// binary values restored from `_ucwa.binaryHeaders`.
fn headers(list: &[v1_2::Headers], binary: Option<&Value>) -> HeaderList {
    let mut out = HeaderList::default();
    for (i, h) in list.iter().enumerate() {
        if h.name.starts_with(':') {
            continue;
        }
        let value = binary
            .and_then(|b| b.get(i.to_string()))
            .and_then(Value::as_str)
            .and_then(|b| B64.decode(b).ok())
            .unwrap_or_else(|| h.value.clone().into_bytes());
        out.push(h.name.to_ascii_lowercase(), value);
    }
    out
}

/// An entry as an unredacted exchange. Errors carry the entry's index.
pub(super) fn to_exchange(
    raw: Raw,
    seq: u64,
    upstreams: &Upstreams,
) -> Result<Exchange, (usize, String)> {
    let Raw {
        index,
        started_us,
        origin,
        path,
        query,
        entry,
        custom,
        browser_error,
    } = raw;
    let req = &entry.request;
    let res = &entry.response;
    let origin = origin.unwrap_or_else(|| upstreams.main.clone());
    let path = upstreams.publish(&origin, &path);
    let binary = custom.as_ref().and_then(|c| c.get("binaryHeaders"));
    let request_headers = headers(&req.headers, binary.and_then(|b| b.get("request")));
    let response_headers = headers(&res.headers, binary.and_then(|b| b.get("response")));

    let request_body = match &req.post_data {
        Some(pd) => match (&pd.text, &pd.params) {
            (Some(text), _) if custom_bool(&custom, "requestBodyBase64") => B64
                .decode(text)
                .map_err(|e| (index, format!("postData.text is not base64: {e}")))?,
            (Some(text), _) => text.clone().into_bytes(),
            (None, Some(params)) => {
                let mut form = form_urlencoded::Serializer::new(String::new());
                for p in params {
                    form.append_pair(&p.name, p.value.as_deref().unwrap_or(""));
                }
                form.finish().into_bytes()
            }
            (None, None) => Vec::new(),
        },
        None => Vec::new(),
    };
    let response_body = match (&res.content.text, res.content.encoding.as_deref()) {
        (Some(text), Some(enc)) if enc.eq_ignore_ascii_case("base64") => B64
            .decode(text.trim())
            .map_err(|e| (index, format!("response.content.text is not base64: {e}")))?,
        (Some(text), _) => text.clone().into_bytes(),
        (None, _) => Vec::new(),
    };
    let status = status_of(res.status).map_err(|detail| (index, detail))?;
    let content_encoding = match &custom {
        Some(c) if c.contains_key("contentEncoding") => custom_str(&custom, "contentEncoding"),
        _ => response_headers
            .get("content-encoding")
            .filter(|e| is_encoded(Some(e)))
            .map(str::to_owned),
    };
    let error = match &custom {
        Some(c) if c.contains_key("error") => custom_str(&custom, "error"),
        _ if status.is_none() => Some(browser_error.unwrap_or_else(|| "no response".into())),
        _ => None,
    };
    let representation = custom_str(&custom, "representation")
        .and_then(|r| Representation::parse(&r))
        .unwrap_or_else(|| Representation::from_accept(request_headers.get("accept")));
    Ok(Exchange {
        id: 0,
        seq,
        started_us,
        duration_us: duration_us(entry.time, index),
        method: req.method.to_ascii_uppercase(),
        path,
        query,
        http_version: http_version(&req.http_version),
        request_headers,
        request_body,
        request_truncated: custom_bool(&custom, "requestTruncated"),
        status,
        response_headers,
        response_body,
        response_truncated: custom_bool(&custom, "responseTruncated"),
        content_encoding,
        error,
        kind: custom_str(&custom, "kind")
            .map(|k| ResourceKind::from_rel(&k))
            .unwrap_or_default(),
        representation,
        match_key: Default::default(),
        ordinal: 0,
        credential: None,
        upstream: custom_str(&custom, "upstream").or_else(|| Some(origin.base())),
        events: Vec::new(),
    })
}

/// The longest an imported exchange is taken to have lasted: longer than any UCWA request
/// (a P-GET is held at most 1800 s), short enough that `replay --pace recorded` ends.
pub const MAX_DURATION_MS: f64 = 3_600_000.0;

/// An entry's `time` (milliseconds) as microseconds: negative (HAR's -1, "not known") is 0;
/// more than [`MAX_DURATION_MS`] is cut to it, with a warning naming the entry.
fn duration_us(time_ms: f64, index: usize) -> i64 {
    if time_ms.is_nan() || time_ms <= 0.0 {
        return 0;
    }
    let ms = if time_ms > MAX_DURATION_MS {
        let shown = if time_ms >= 1e12 {
            format!("{time_ms:e}")
        } else {
            time_ms.to_string()
        };
        tracing::warn!(
            "HAR entry {index}: time {shown} ms is longer than any exchange; stored as {MAX_DURATION_MS} ms"
        );
        MAX_DURATION_MS
    } else {
        time_ms
    };
    (ms * 1000.0).round() as i64
}

/// A HAR `response.status` as stored: browsers write 0 for a request that got no response;
/// HTTP's are three digits. Checked by the first reading of an import, so that a bad one
/// writes nothing.
pub(super) fn status_of(status: i64) -> Result<Option<u16>, String> {
    match status {
        0 => Ok(None),
        s @ 100..=999 => Ok(Some(s as u16)),
        other => Err(format!(
            "response.status {other} is not an HTTP status (100 to 999, or 0 for no response)"
        )),
    }
}
