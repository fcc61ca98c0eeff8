//! NDJSON (what `export --format ndjson` writes, one exchange per line) read back into
//! sessions, for a replay held in memory. Lines are grouped by their `session` member; each
//! session's upstream is the origin of its first `url` outside `/_upstream/HOST`, and the
//! hosts under `/_upstream/` are its other upstreams. Every exchange goes through the ingest
//! step again (redaction, events, match key), so a hand-edited line keys like a recorded one.

use std::path::Path;

use base64::Engine;
use serde_json::Value;

use super::HarError;
use crate::error::Error;
use crate::recording::{
    Exchange, HeaderList, Ingest, KeyOptions, Origin, ResourceKind, SessionInfo,
};
use crate::redact::RedactConfig;
use crate::ucwa::Representation;

/// Read NDJSON text (`name` names it in errors) into sessions, in order of first appearance,
/// their exchanges in `seq` order. Blank lines are skipped; a bad line is an error naming it.
pub fn sessions_from_ndjson(
    name: &Path,
    text: &str,
    key: &KeyOptions,
) -> Result<Vec<(SessionInfo, Vec<Exchange>)>, Error> {
    let bad = |line: usize, detail: String| HarError::BadEntry {
        path: name.to_path_buf(),
        index: line,
        detail,
    };
    let mut sessions: Vec<(SessionInfo, Vec<Exchange>)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let number = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line)
            .map_err(|e| bad(number, format!("line {number} is not JSON: {e}")))?;
        let (session, ex, origin) =
            exchange(&v).map_err(|d| bad(number, format!("line {number}: {d}")))?;
        let at = match sessions.iter().position(|(s, _)| s.name == session) {
            Some(at) => at,
            None => {
                sessions.push((
                    SessionInfo {
                        id: 0,
                        name: session,
                        upstream: String::new(),
                        also_upstreams: Vec::new(),
                        started_at: String::new(),
                        ended_at: None,
                        tool_version: String::new(),
                        exchanges: 0,
                        events: 0,
                    },
                    Vec::new(),
                ));
                sessions.len() - 1
            }
        };
        let (info, exchanges) = &mut sessions[at];
        let published = ex.path.starts_with("/_upstream/");
        if published && !info.also_upstreams.contains(&origin) {
            info.also_upstreams.push(origin);
        } else if !published && info.upstream.is_empty() {
            info.upstream = origin;
        }
        exchanges.push(ex);
    }
    if sessions.is_empty() {
        return Err(HarError::Empty {
            path: name.to_path_buf(),
        }
        .into());
    }
    let mut out = Vec::with_capacity(sessions.len());
    for (mut info, mut exchanges) in sessions {
        if info.upstream.is_empty() {
            return Err(bad(
                0,
                format!(
                    "session {:?} has no exchange outside /_upstream/ to tell its upstream",
                    info.name
                ),
            )
            .into());
        }
        exchanges.sort_by_key(|e| e.seq);
        let ingest = Ingest::new(&RedactConfig::default(), key.clone())?;
        for ex in &mut exchanges {
            ingest.ingest_classified(ex, false);
        }
        info.exchanges = exchanges.len() as u64;
        info.events = exchanges.iter().map(|e| e.events.len() as u64).sum();
        out.push((info, exchanges));
    }
    Ok(out)
}

/// One line: its session, the exchange, and the origin of its URL.
fn exchange(v: &Value) -> Result<(String, Exchange, String), String> {
    let str_of = |k: &str| v.get(k).and_then(Value::as_str);
    let need = |k: &str| str_of(k).ok_or_else(|| format!("no {k:?} string"));
    let session = need("session")?.to_string();
    let url = need("url")?;
    let origin = Origin::parse(url)
        .map(|o| o.base())
        .map_err(|e| format!("url {url:?}: {e}"))?;
    let method = need("method")?.to_string();
    let path = need("path")?.to_string();
    let headers = |k: &str| -> Result<HeaderList, String> {
        let mut list = HeaderList::default();
        for pair in v.get(k).and_then(Value::as_array).into_iter().flatten() {
            match pair.as_array().map(Vec::as_slice) {
                Some([Value::String(n), Value::String(val)]) => list.push(n.clone(), val.clone()),
                _ => {
                    return Err(format!(
                        "{k:?} holds something other than [name, value] pairs"
                    ));
                }
            }
        }
        Ok(list)
    };
    let body = |k: &str| -> Result<Vec<u8>, String> {
        if let Some(text) = str_of(k) {
            return Ok(text.as_bytes().to_vec());
        }
        match str_of(&format!("{k}_base64")) {
            Some(b64) => base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| format!("{k}_base64: {e}")),
            None => Ok(Vec::new()),
        }
    };
    let status = match v.get("status") {
        None | Some(Value::Null) => None,
        Some(s) => Some(
            s.as_u64()
                .and_then(|s| u16::try_from(s).ok())
                .filter(|s| (100..600).contains(s))
                .ok_or_else(|| format!("status {s} is not an HTTP status"))?,
        ),
    };
    let seq = v
        .get("seq")
        .and_then(Value::as_u64)
        .ok_or("no \"seq\" number")?;
    let ex = Exchange {
        seq,
        started_us: v.get("started_us").and_then(Value::as_i64).unwrap_or(0),
        duration_us: v.get("duration_us").and_then(Value::as_i64).unwrap_or(0),
        method,
        path,
        query: str_of("query").map(str::to_string),
        http_version: str_of("http_version").unwrap_or("HTTP/1.1").to_string(),
        request_headers: headers("request_headers")?,
        request_body: body("request_body")?,
        request_truncated: v
            .get("request_truncated")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        status,
        response_headers: headers("response_headers")?,
        response_body: body("response_body")?,
        response_truncated: v
            .get("response_truncated")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        content_encoding: str_of("content_encoding").map(str::to_string),
        error: str_of("error").map(str::to_string),
        kind: ResourceKind::from_rel(str_of("kind").unwrap_or("")),
        representation: str_of("representation")
            .and_then(Representation::parse)
            .unwrap_or_default(),
        upstream: str_of("upstream").map(str::to_string),
        ..Exchange::default()
    };
    Ok((session, ex, origin))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_export_reads_back_with_its_upstreams_and_keys() {
        let text = concat!(
            r#"{"session":"s","seq":2,"method":"GET","url":"https://lyncweb.contoso.com/x","path":"/_upstream/lyncweb.contoso.com/x","query":null,"request_headers":[],"status":200,"response_headers":[["content-type","application/json"]],"response_body":"{}"}"#,
            "\n\n",
            r#"{"session":"s","seq":1,"method":"GET","url":"https://fe1.contoso.com/ucwa/me?a=1","path":"/ucwa/me","query":"a=1","request_headers":[["accept","application/json"]],"status":200,"response_headers":[],"response_body":"{\"name\":\"A\"}","kind":"me"}"#,
            "\n"
        );
        let got = sessions_from_ndjson(Path::new("mem"), text, &KeyOptions::default()).unwrap();
        let (info, exchanges) = &got[0];
        assert_eq!(info.upstream, "https://fe1.contoso.com");
        assert_eq!(info.also_upstreams, ["https://lyncweb.contoso.com"]);
        assert_eq!(exchanges[0].seq, 1, "in seq order");
        assert_eq!(
            exchanges[0].match_key.to_string(),
            "GET /ucwa/me?a=1 json -"
        );
        let err = sessions_from_ndjson(Path::new("mem"), "{\"seq\":1}\n", &KeyOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 1: no \"session\" string"), "{err}");
        let err = sessions_from_ndjson(Path::new("mem"), "not json", &KeyOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 1 is not JSON"), "{err}");
    }
}
