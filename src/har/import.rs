//! HAR → a new session. The whole file is read, validated and turned into finished exchanges
//! (redacted, classified, keyed, events indexed) before the recording is touched, so a bad
//! file writes nothing.
//!
//! Two kinds of input:
//! - our own exports: the `_ucwa` custom fields restore what HAR cannot say (kind,
//!   representation, truncation, the original `Content-Encoding`, the error, binary header
//!   values), and `log._ucwa` the session's upstreams;
//! - browser devtools HARs (Chrome, Firefox) of a UCWA web app: absolute URLs on possibly
//!   several hosts. The session's upstream is the origin of the first `/ucwa/` request (else
//!   of the first entry); other hosts become `also_upstreams` and their paths get the proxy's
//!   `/_upstream/HOST` prefix, exactly as if they had been recorded through the proxy, so
//!   replay serves them. Entries that are not `http(s)` (`data:`, `blob:`, `ws:`) are skipped,
//!   as are HTTP/2 pseudo-headers. Browsers hold real tokens: redaction always runs.
//!
//! HAR bodies are decoded; a `Content-Encoding` response header is kept (as the proxy keeps
//! it) and recorded as the exchange's original encoding, so replay drops it and sends the
//! decoded body, as it does for recorded sessions.

use std::path::Path;

use har::v1_2;
use serde_json::{Map, Value};

use super::entry::{Raw, fill_defaults, split_url, to_exchange};
use super::{CUSTOM, HarError, time};
use crate::error::Error;
use crate::recording::{Exchange, Ingest, KeyOptions, Origin, ResourceKind, Upstreams};
use crate::redact::RedactConfig;
use crate::store::{NewSession, StoreWriter};

/// HAR versions whose entries have the 1.2 shape.
const VERSIONS: &[&str] = &["1.1", "1.2"];

/// What an import writes and how.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The new session's name.
    pub session: String,
    /// Replace a session of the same name instead of refusing.
    pub replace: bool,
    /// Redaction beyond the defaults.
    pub redact: RedactConfig,
    /// Match-key options (body fields left out of the key).
    pub key: KeyOptions,
}

/// A HAR file turned into a session, not written yet.
#[derive(Debug, Clone)]
pub struct ImportPlan {
    pub upstream: String,
    pub also_upstreams: Vec<String>,
    /// Finished exchanges in `seq` order (from 1).
    pub exchanges: Vec<Exchange>,
    /// Entries left out (not `http(s)` URLs).
    pub skipped: usize,
    /// Distinct secrets the redactor replaced.
    pub secrets: usize,
}

/// What an import wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImportStats {
    pub session: String,
    pub upstream: String,
    pub also_upstreams: Vec<String>,
    pub exchanges: u64,
    pub events: u64,
    pub skipped: usize,
    pub secrets_redacted: usize,
}

/// Read `file` and write it as session `opts.session` of the recording `db`.
pub async fn import_har(
    db: &Path,
    file: &Path,
    opts: &ImportOptions,
) -> Result<ImportStats, Error> {
    let plan = plan_import(file, opts)?;
    let writer = StoreWriter::create(
        db,
        &NewSession {
            name: opts.session.clone(),
            upstream: plan.upstream.clone(),
            also_upstreams: plan.also_upstreams.clone(),
            replace: opts.replace,
        },
    )?;
    let sink = writer.sink();
    for ex in plan.exchanges {
        sink.submit(ex);
    }
    drop(sink);
    let stats = writer.finish().await?;
    Ok(ImportStats {
        session: opts.session.clone(),
        upstream: plan.upstream,
        also_upstreams: plan.also_upstreams,
        exchanges: stats.exchanges,
        events: stats.events,
        skipped: plan.skipped,
        secrets_redacted: plan.secrets,
    })
}

/// Read and convert a HAR file; writes nothing.
pub fn plan_import(file: &Path, opts: &ImportOptions) -> Result<ImportPlan, Error> {
    let bytes = std::fs::read(file).map_err(|source| HarError::Read {
        path: file.to_path_buf(),
        source,
    })?;
    plan_from_slice(file, &bytes, opts)
}

/// [`plan_import`] on bytes already read (`file` names them in errors).
pub fn plan_from_slice(
    file: &Path,
    bytes: &[u8],
    opts: &ImportOptions,
) -> Result<ImportPlan, Error> {
    let not_har = |detail: &str| HarError::NotHar {
        path: file.to_path_buf(),
        detail: detail.to_string(),
    };
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let doc: Value = serde_json::from_slice(bytes).map_err(|source| HarError::NotJson {
        path: file.to_path_buf(),
        source,
    })?;
    let log = doc
        .get("log")
        .and_then(Value::as_object)
        .ok_or_else(|| not_har("no top-level `log` object"))?;
    let entries = log
        .get("entries")
        .and_then(Value::as_array)
        .ok_or_else(|| not_har("`log.entries` is missing or not an array"))?;
    let version = log
        .get("version")
        .and_then(Value::as_str)
        .ok_or_else(|| not_har("`log.version` is missing"))?;
    if !VERSIONS.contains(&version) {
        return Err(HarError::UnsupportedVersion {
            path: file.to_path_buf(),
            version: version.to_string(),
        }
        .into());
    }
    let log_custom = log.get(CUSTOM).and_then(Value::as_object);

    let mut raws = Vec::with_capacity(entries.len());
    let mut skipped = 0;
    for (index, value) in entries.iter().enumerate() {
        let bad = |detail: String| HarError::BadEntry {
            path: file.to_path_buf(),
            index,
            detail,
        };
        let mut value = value.clone();
        let obj = value
            .as_object_mut()
            .ok_or_else(|| bad("not an object".into()))?;
        fill_defaults(obj);
        let custom = obj.get(CUSTOM).and_then(Value::as_object).cloned();
        let browser_error = obj
            .get("response")
            .and_then(|r| r.get("_error"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        let entry: v1_2::Entries =
            serde_json::from_value(value).map_err(|e| bad(format!("not a HAR entry: {e}")))?;
        let Some((origin, path, query)) = split_url(&entry.request.url) else {
            skipped += 1;
            continue;
        };
        let started_us = time::parse_us(&entry.started_date_time).ok_or_else(|| {
            bad(format!(
                "startedDateTime {:?} is not an RFC 3339 time",
                entry.started_date_time
            ))
        })?;
        raws.push(Raw {
            index,
            started_us,
            origin,
            path,
            query,
            entry,
            custom,
            browser_error,
        });
    }
    // An export of an empty session still names its upstream; anything else without an
    // HTTP entry says nothing to import.
    let exported_upstream = log_custom.is_some_and(|c| c.get("upstream").is_some());
    if raws.is_empty() && !exported_upstream {
        return Err(HarError::Empty {
            path: file.to_path_buf(),
        }
        .into());
    }
    raws.sort_by_key(|r| (r.started_us, r.index));

    let (main, also) = choose_upstreams(log_custom, &raws);
    let upstreams = Upstreams { main, also };
    // The same step as the recording proxy's, in recorded order.
    let ingest = Ingest::new(&opts.redact, opts.key.clone())?;
    let mut exchanges = Vec::with_capacity(raws.len());
    for (i, raw) in raws.into_iter().enumerate() {
        let mut ex = to_exchange(raw, i as u64 + 1, &upstreams).map_err(|(index, detail)| {
            HarError::BadEntry {
                path: file.to_path_buf(),
                index,
                detail,
            }
        })?;
        if ex.kind == ResourceKind::Other {
            ingest.ingest(&mut ex);
        } else {
            // A kind the export carried is kept.
            ingest.ingest_classified(&mut ex, false);
        }
        exchanges.push(ex);
    }
    Ok(ImportPlan {
        upstream: upstreams.main.base(),
        also_upstreams: upstreams.also.iter().map(Origin::base).collect(),
        exchanges,
        skipped,
        secrets: ingest.redactor().secrets_seen(),
    })
}

/// The session's upstream and its other origins: as exported (`log._ucwa`), else the origin
/// of the first UCWA request (else of the first entry), the other hosts in order of first
/// appearance.
fn choose_upstreams(
    log_custom: Option<&Map<String, Value>>,
    raws: &[Raw],
) -> (Origin, Vec<Origin>) {
    let exported = log_custom
        .and_then(|c| c.get("upstream"))
        .and_then(Value::as_str)
        .and_then(|u| Origin::parse(u).ok());
    let mut also: Vec<Origin> = log_custom
        .and_then(|c| c.get("alsoUpstreams"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .filter_map(|u| Origin::parse(u).ok())
                .collect()
        })
        .unwrap_or_default();
    let upstream = exported
        .or_else(|| {
            raws.iter()
                .filter(|r| r.path.to_ascii_lowercase().contains("/ucwa/"))
                .find_map(|r| r.origin.clone())
        })
        .or_else(|| raws.iter().find_map(|r| r.origin.clone()))
        .unwrap_or_else(|| Origin {
            scheme: "http".into(),
            host: "localhost".into(),
            port: 80,
        });
    for r in raws {
        if let Some(o) = &r.origin
            && *o != upstream
            && !also.contains(o)
        {
            also.push(o.clone());
        }
    }
    (upstream, also)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan(text: &str) -> Result<ImportPlan, Error> {
        plan_from_slice(
            Path::new("in.har"),
            text.as_bytes(),
            &ImportOptions {
                session: "s".into(),
                ..ImportOptions::default()
            },
        )
    }

    #[test]
    fn refuses_what_is_not_a_har_with_a_reason() {
        let err = plan("hello").unwrap_err().to_string();
        assert!(err.starts_with("in.har: not JSON"), "{err}");
        let err = plan(r#"{"log":{"version":"1.2"}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`log.entries` is missing"), "{err}");
        let err = plan(r#"[1,2]"#).unwrap_err().to_string();
        assert!(err.contains("no top-level `log`"), "{err}");
        let err = plan(r#"{"log":{"version":"9.9","entries":[]}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unsupported HAR version \"9.9\""), "{err}");
        let err = plan(r#"{"log":{"version":"1.2","entries":[{"request":{}}]}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("in.har: entry 0: not a HAR entry"), "{err}");
        let err = plan(r#"{"log":{"version":"1.2","entries":[]}}"#)
            .unwrap_err()
            .to_string();
        assert_eq!(err, "in.har: no http(s) entries to import");
        let empty_export = r#"{"log":{"version":"1.2","entries":[],"_ucwa":{"upstream":"https://fe1.contoso.com"}}}"#;
        assert_eq!(
            plan(empty_export).unwrap().upstream,
            "https://fe1.contoso.com"
        );
    }

    #[test]
    fn browser_hosts_become_also_upstreams_and_secrets_are_redacted() {
        let entry = |t: &str, url: &str, auth: &str| {
            json!({
                "startedDateTime": t, "time": 12.5,
                "request": {"method": "GET", "url": url, "httpVersion": "h2",
                    "headers": [{"name": ":authority", "value": "x"},
                                {"name": "Authorization", "value": auth}],
                    "queryString": [], "cookies": [], "headersSize": -1, "bodySize": 0},
                "response": {"status": 200, "statusText": "OK", "httpVersion": "h2",
                    "headers": [{"name": "Content-Type", "value": "application/json"}],
                    "cookies": [], "content": {"size": 2, "mimeType": "application/json", "text": "{}"},
                    "redirectURL": "", "headersSize": -1, "bodySize": 2},
                "cache": {}, "timings": {"send": 0, "wait": 12.5, "receive": 0}
            })
        };
        let doc = json!({"log": {"version": "1.2", "creator": {"name": "WebInspector", "version": "537.36"},
        "entries": [
            entry("2025-01-01T10:00:01.000Z", "https://lyncweb.contoso.com/WebTicket/oauthtoken", "Bearer cwt=SECRETSECRET"),
            entry("2025-01-01T10:00:00.000Z", "data:image/png;base64,AAAA", ""),
            entry("2025-01-01T10:00:02.000Z", "https://fe1.contoso.com/ucwa/oauth/v1/applications?x=1", "Bearer cwt=SECRETSECRET"),
        ]}});
        let p = plan(&doc.to_string()).unwrap();
        assert_eq!(p.upstream, "https://fe1.contoso.com");
        assert_eq!(p.also_upstreams, ["https://lyncweb.contoso.com"]);
        assert_eq!(p.skipped, 1);
        let [a, b] = &p.exchanges[..] else {
            panic!("two exchanges")
        };
        assert_eq!((a.seq, b.seq), (1, 2));
        assert_eq!(
            a.path,
            "/_upstream/lyncweb.contoso.com/WebTicket/oauthtoken"
        );
        assert_eq!(b.path, "/ucwa/oauth/v1/applications");
        assert_eq!(b.query.as_deref(), Some("x=1"));
        assert_eq!(a.http_version, "HTTP/2.0");
        assert_eq!(a.duration_us, 12_500);
        assert_eq!(a.request_headers.0.len(), 1);
        assert_eq!(
            a.request_headers.get("authorization"),
            Some("Bearer cwt=REDACTED-1")
        );
        assert_eq!(b.credential.as_deref(), Some("REDACTED-1"));
        assert_eq!(b.kind, ResourceKind::Applications);
        assert!(
            b.match_key
                .to_string()
                .starts_with("GET /ucwa/oauth/v1/applications?x=1 json")
        );
    }
}
