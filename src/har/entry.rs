//! One HAR entry → one unredacted [`Exchange`]: URL split into origin, path and query,
//! headers in order (pseudo-headers dropped), bodies decoded from text or base64, and the
//! `_ucwa` custom fields of our own exports applied. Lenient where browsers are (missing
//! `cache` / `timings`, `h2` as a version), strict where meaning would be lost (a body that
//! claims base64 and is not).

use base64::Engine;
use har::v1_2;
use serde::Deserialize;
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

/// An entry's JSON text read as HAR 1.2, with what our exports and browsers add to it.
#[derive(Debug, PartialEq)]
pub(super) struct Parsed {
    pub(super) entry: v1_2::Entries,
    /// `_ucwa`, when it is an object.
    pub(super) custom: Option<Map<String, Value>>,
    /// `response._error` (Chrome's reason for a request that got no response), when it is
    /// a string that is not empty.
    pub(super) browser_error: Option<String>,
}

/// A HAR 1.2 entry read in one pass: the `har` crate's fields, with the defaults
/// [`fill_defaults`] supplies for what browsers and other tools leave out, and beside them
/// the `_ucwa` of our exports and the `response._error` of browsers, which its types leave
/// out. Converted into [`v1_2::Entries`] field by field, so that a change to that type does
/// not build until this one follows it.
#[derive(Deserialize)]
pub(super) struct Complete {
    pageref: Option<String>,
    #[serde(rename = "startedDateTime")]
    started_date_time: String,
    #[serde(default)]
    time: f64,
    request: ObjectOnly<CompleteRequest>,
    response: ObjectOnly<CompleteResponse>,
    #[serde(default = "left_out")]
    cache: v1_2::Cache,
    #[serde(default = "left_out")]
    timings: v1_2::Timings,
    #[serde(rename = "serverIPAddress")]
    server_ip_address: Option<String>,
    connection: Option<String>,
    comment: Option<String>,
    /// [`super::CUSTOM`] (a serde name must be a literal).
    #[serde(rename = "_ucwa")]
    custom: Option<Value>,
}

/// [`v1_2::Request`]'s fields, with its defaults and [`fill_defaults`]'.
#[derive(Deserialize)]
struct CompleteRequest {
    method: String,
    url: String,
    #[serde(rename = "httpVersion", default)]
    http_version: String,
    #[serde(default)]
    cookies: Vec<v1_2::Cookies>,
    #[serde(default)]
    headers: Vec<v1_2::Headers>,
    #[serde(rename = "queryString", default)]
    query_string: Vec<v1_2::QueryString>,
    #[serde(rename = "postData")]
    post_data: Option<v1_2::PostData>,
    #[serde(
        rename = "headersSize",
        default = "unknown_size",
        deserialize_with = "size_or_unknown"
    )]
    headers_size: i64,
    #[serde(rename = "bodySize", default = "unknown_size")]
    body_size: i64,
    comment: Option<String>,
}

/// [`v1_2::Response`]'s fields, with its defaults and [`fill_defaults`]', and `_error`.
#[derive(Deserialize)]
struct CompleteResponse {
    status: i64,
    #[serde(rename = "statusText", default)]
    status_text: String,
    #[serde(rename = "httpVersion", default)]
    http_version: String,
    #[serde(default)]
    cookies: Vec<v1_2::Cookies>,
    #[serde(default)]
    headers: Vec<v1_2::Headers>,
    #[serde(default = "left_out")]
    content: v1_2::Content,
    #[serde(rename = "redirectURL")]
    redirect_url: Option<String>,
    #[serde(rename = "headersSize", default = "unknown_size")]
    headers_size: i64,
    #[serde(rename = "bodySize", default = "unknown_size")]
    body_size: i64,
    comment: Option<String>,
    #[serde(rename = "_error")]
    error: Option<Value>,
}

/// HAR's "not known" size: what the `har` crate and [`fill_defaults`] give a size left out.
fn unknown_size() -> i64 {
    -1
}

/// A size that may be `null` (the `har` crate reads a request's `headersSize` so).
fn size_or_unknown<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    Ok(Option::<i64>::deserialize(d)?.unwrap_or_else(unknown_size))
}

/// What a member [`fill_defaults`] supplies reads as, for the types whose own `Default`
/// is not that (`Timings`' unknown phases are -1, not 0), read from the same JSON.
fn left_out<T: LeftOut>() -> T {
    serde_json::from_value(T::json()).expect("the defaults read as their type")
}

/// A member's value when it is left out of an entry.
trait LeftOut: serde::de::DeserializeOwned {
    fn json() -> Value;
}

impl LeftOut for v1_2::Cache {
    fn json() -> Value {
        json!({})
    }
}

impl LeftOut for v1_2::Timings {
    fn json() -> Value {
        json!({"send": 0, "wait": 0, "receive": 0})
    }
}

impl LeftOut for v1_2::Content {
    fn json() -> Value {
        json!({"size": 0})
    }
}

/// `T` read from a JSON object only: serde also reads a struct from an array, which the
/// lenient reading (a tree) refuses for an entry.
pub(super) struct ObjectOnly<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ObjectOnly<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Object<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Object<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(Object(std::marker::PhantomData))
            .map(ObjectOnly)
    }
}

impl From<ObjectOnly<Complete>> for Parsed {
    fn from(ObjectOnly(c): ObjectOnly<Complete>) -> Self {
        let (ObjectOnly(q), ObjectOnly(r)) = (c.request, c.response);
        Parsed {
            entry: v1_2::Entries {
                pageref: c.pageref,
                started_date_time: c.started_date_time,
                time: c.time,
                request: v1_2::Request {
                    method: q.method,
                    url: q.url,
                    http_version: q.http_version,
                    cookies: q.cookies,
                    headers: q.headers,
                    query_string: q.query_string,
                    post_data: q.post_data,
                    headers_size: q.headers_size,
                    body_size: q.body_size,
                    comment: q.comment,
                },
                response: v1_2::Response {
                    status: r.status,
                    status_text: r.status_text,
                    http_version: r.http_version,
                    cookies: r.cookies,
                    headers: r.headers,
                    content: r.content,
                    redirect_url: r.redirect_url,
                    headers_size: r.headers_size,
                    body_size: r.body_size,
                    comment: r.comment,
                },
                cache: c.cache,
                timings: c.timings,
                server_ip_address: c.server_ip_address,
                connection: c.connection,
                comment: c.comment,
            },
            custom: match c.custom {
                Some(Value::Object(custom)) => Some(custom),
                _ => None,
            },
            browser_error: match r.error {
                Some(Value::String(e)) if !e.is_empty() => Some(e),
                _ => None,
            },
        }
    }
}

/// An entry as the walk hands it over: read whole as a [`Complete`] entry, or its JSON text
/// when it does not read so.
pub(super) type Walked<'a> = Result<ObjectOnly<Complete>, &'a [u8]>;

/// Read an entry; the reason when it is not a HAR entry.
///
/// An entry (every export, and what browsers and other tools write, fields left out
/// included) is read in one pass, with no JSON tree: the tree, and a conversion from it,
/// were most of an import's time (two readings of every entry of a file of hundreds of
/// MB). Anything else (a member given twice, a member of the wrong type, something that is
/// not an entry at all) is read again as a tree, the defaults filled in, and converted: the
/// lenient reading, whose answer (or reason) is the one that counts. Both give the same
/// result for an entry the first one reads (unit tests).
pub(super) fn parse_entry(entry: Walked<'_>) -> Result<Parsed, String> {
    match entry {
        Ok(complete) => Ok(complete.into()),
        Err(text) => parse_lenient(text),
    }
}

/// [`parse_entry`] through a JSON tree, with the defaults of [`fill_defaults`].
fn parse_lenient(text: &[u8]) -> Result<Parsed, String> {
    let mut value: Value =
        serde_json::from_slice(text).map_err(|e| format!("not a HAR entry: {e}"))?;
    let obj = value
        .as_object_mut()
        .ok_or_else(|| "not an object".to_string())?;
    fill_defaults(obj);
    let custom = obj.get(super::CUSTOM).and_then(Value::as_object).cloned();
    let browser_error = obj
        .get("response")
        .and_then(|r| r.get("_error"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let entry: v1_2::Entries =
        serde_json::from_value(value).map_err(|e| format!("not a HAR entry: {e}"))?;
    Ok(Parsed {
        entry,
        custom,
        browser_error,
    })
}

/// Browsers and other tools leave out fields HAR 1.2 calls required but that carry nothing
/// for us (`cache`, `timings`, empty lists): supply them, so that such files still import.
fn fill_defaults(entry: &mut Map<String, Value>) {
    let set = |o: &mut Map<String, Value>, k: &str, v: Value| {
        o.entry(k.to_string()).or_insert(v);
    };
    set(entry, "cache", v1_2::Cache::json());
    set(entry, "timings", v1_2::Timings::json());
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
        set(o, "content", v1_2::Content::json());
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// How the walk reads an entry's text: in one pass when it can.
    fn one_pass(text: &str) -> Option<Parsed> {
        serde_json::from_str::<ObjectOnly<Complete>>(text)
            .ok()
            .map(Parsed::from)
    }

    /// A browser's entry, complete, with the fields of its own that HAR allows.
    fn browser_entry() -> Value {
        json!({
            "_initiator": {"type": "script"}, "_priority": "High", "_resourceType": "xhr",
            "cache": {}, "connection": "443", "pageref": "page_1",
            "request": {
                "method": "POST", "url": "https://fe1.contoso.com/ucwa/oauth/v1/applications?x=1",
                "httpVersion": "http/2.0",
                "headers": [{"name": ":authority", "value": "fe1.contoso.com"},
                            {"name": "authorization", "value": "Bearer cwt=AAEB"}],
                "queryString": [{"name": "x", "value": "1"}],
                "cookies": [{"name": "a", "value": "b", "httpOnly": true}],
                "headersSize": -1, "bodySize": 12,
                "postData": {"mimeType": "application/json", "text": "{\"a\":1}"}
            },
            "response": {
                "status": 0, "statusText": "", "httpVersion": "", "headers": [], "cookies": [],
                "content": {"size": 0, "mimeType": "x-unknown"}, "redirectURL": "",
                "headersSize": -1, "bodySize": -1, "_transferSize": 0,
                "_error": "net::ERR_CONNECTION_REFUSED"
            },
            "serverIPAddress": "10.0.0.1", "startedDateTime": "2026-11-26T21:33:23.529Z",
            "time": 3.25,
            "timings": {"blocked": 1.5, "dns": -1, "ssl": -1, "connect": -1, "send": 0,
                        "wait": 0, "receive": 0, "_blocked_queueing": 1.0}
        })
    }

    /// The entries of one of our exports, as text.
    fn exported_entries() -> &'static [String] {
        static ENTRIES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        ENTRIES.get_or_init(|| {
            let path = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/data/pre-architecture/export-demo.har"
            );
            let doc: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
            doc["log"]["entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(Value::to_string)
                .collect()
        })
    }

    #[test]
    fn complete_entries_read_in_one_pass_as_the_lenient_reading_reads_them() {
        let mut texts = exported_entries().to_vec();
        assert_eq!(texts.len(), 30);
        texts.push(browser_entry().to_string());
        // What the types leave out, in the shapes that do not count.
        for (key, value) in [
            ("_error", json!("")),
            ("_error", json!(7)),
            ("_error", Value::Null),
            ("_ucwa", json!("x")),
            ("_ucwa", Value::Null),
            ("_ucwa", json!({})),
        ] {
            let mut entry = browser_entry();
            match key {
                "_error" => entry["response"][key] = value,
                _ => entry[key] = value,
            }
            texts.push(entry.to_string());
        }
        for text in &texts {
            let fast = one_pass(text).unwrap_or_else(|| panic!("not read in one pass: {text}"));
            assert_eq!(fast, parse_lenient(text.as_bytes()).unwrap(), "{text}");
        }
        // What the types leave out is read too.
        let browser = one_pass(&texts[30]).unwrap();
        assert_eq!(
            browser.browser_error.as_deref(),
            Some("net::ERR_CONNECTION_REFUSED")
        );
        let exported = one_pass(&texts[0]).unwrap();
        assert!(exported.custom.is_some_and(|c| c.contains_key("kind")));
    }

    #[test]
    fn what_one_pass_does_not_read_is_read_leniently() {
        let twice = browser_entry()
            .to_string()
            .replacen('{', r#"{"time":7,"#, 1);
        let array = format!("[{}]", browser_entry()["time"]);
        let mut null_cache = browser_entry();
        null_cache["cache"] = Value::Null;
        for text in [twice.clone(), array, null_cache.to_string()] {
            assert!(one_pass(&text).is_none(), "{text}");
        }
        // The last of two members wins, as in a tree; what is not an entry says why.
        assert_eq!(parse_entry(Err(twice.as_bytes())).unwrap().entry.time, 3.25);
        assert_eq!(
            parse_entry(Err(b"[1]")).unwrap_err(),
            "not an object".to_string()
        );
        let null_cache = parse_entry(Err(null_cache.to_string().as_bytes())).unwrap_err();
        assert!(null_cache.contains("invalid type: null"), "{null_cache}");
    }

    #[test]
    fn what_tools_leave_out_is_read_in_one_pass_with_the_lenient_defaults() {
        // Every member `fill_defaults` supplies, left out.
        let mut bare = browser_entry();
        for key in ["cache", "timings", "time"] {
            bare.as_object_mut().unwrap().remove(key);
        }
        for side in ["request", "response"] {
            let o = bare[side].as_object_mut().unwrap();
            for key in [
                "httpVersion",
                "cookies",
                "headers",
                "headersSize",
                "bodySize",
            ] {
                o.remove(key);
            }
        }
        bare["request"]
            .as_object_mut()
            .unwrap()
            .remove("queryString");
        let response = bare["response"].as_object_mut().unwrap();
        response.remove("statusText");
        response.remove("content");
        let text = bare.to_string();
        let fast = one_pass(&text).expect("read in one pass");
        assert_eq!(fast, parse_lenient(text.as_bytes()).unwrap());
        assert_eq!(fast.entry.timings.blocked, Some(-1.0));
        assert_eq!(fast.entry.response.content.size, 0);
        assert_eq!(fast.entry.request.headers_size, -1);
        // A request's `headersSize` may be null, as the `har` crate reads it.
        let mut null_size = browser_entry();
        null_size["request"]["headersSize"] = Value::Null;
        let text = null_size.to_string();
        let fast = one_pass(&text).expect("read in one pass");
        assert_eq!(fast, parse_lenient(text.as_bytes()).unwrap());
        assert_eq!(fast.entry.request.headers_size, -1);
    }

    /// Every place of an entry that holds a member: (path of objects, key).
    fn members(value: &Value, path: &mut Vec<String>, out: &mut Vec<(Vec<String>, String)>) {
        if let Value::Object(map) = value {
            for (key, inner) in map {
                out.push((path.clone(), key.clone()));
                path.push(key.clone());
                members(inner, path, out);
                path.pop();
            }
        }
    }

    fn at<'a>(value: &'a mut Value, path: &[String]) -> &'a mut Map<String, Value> {
        let mut v = value;
        for key in path {
            v = &mut v[key.as_str()];
        }
        v.as_object_mut().unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Whatever is changed in an entry, one pass either declines it or reads what the
        /// lenient reading reads.
        #[test]
        fn one_pass_reads_what_the_lenient_reading_reads(
            exported in any::<bool>(),
            changes in proptest::collection::vec((any::<prop::sample::Index>(), 0..9u8), 1..4),
        ) {
            let mut entry = if exported {
                serde_json::from_str(&exported_entries()[3]).unwrap()
            } else {
                browser_entry()
            };
            let mut twice = None;
            for (place, how) in changes {
                let mut all = Vec::new();
                members(&entry, &mut Vec::new(), &mut all);
                let (path, key) = place.get(&all).clone();
                let map = at(&mut entry, &path);
                let new = match how {
                    0 => { map.remove(&key); continue; }
                    1 => Value::Null,
                    2 => json!(-1),
                    3 => json!(2.5),
                    4 => json!("x"),
                    5 => json!([]),
                    6 => json!({}),
                    7 => json!(""),
                    _ => {
                        twice = Some(key);
                        continue;
                    }
                };
                map.insert(key, new);
            }
            let mut text = entry.to_string();
            if let Some(key) = twice {
                // A member of the entry given twice, the first time as a string.
                let first = format!("{{{}:\"dup\",", Value::String(key));
                text = text.replacen('{', &first, 1);
            }
            if let Some(fast) = one_pass(&text) {
                prop_assert_eq!(Ok(fast), parse_lenient(text.as_bytes()));
            }
        }
    }
}
