//! HAR → a new session. The file is read twice as a stream ([`super::stream`]), never held
//! whole:
//! 1. **plan** ([`plan_import`]): the whole file is read and checked (JSON, HAR shape,
//!    version, every entry, base64 bodies) and each http(s) entry noted in a few bytes (its
//!    start time, origin, whether it is a UCWA request): that gives the recorded order (by
//!    start time) and the session's upstreams. Nothing is written yet, so a bad file writes
//!    nothing;
//! 2. **import** ([`import_har`]): the file is read again, each entry converted into an
//!    exchange (redacted, classified, keyed, events indexed) in recorded order and handed to
//!    the store's writer, waiting whenever the writer is behind (its bounded queue). An entry
//!    that comes before its turn waits in memory for it: a file in order, as exports and
//!    browsers write them, keeps none.
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

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use base64::Engine;
use serde_json::{Map, Value};

use super::entry::{Parsed, Raw, Walked, parse_entry, split_url, status_of, to_exchange};
use super::{HarError, stream, time};
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

/// A HAR file read and checked, not written yet: the session it makes and the order its
/// entries go in ([`plan_import`]).
#[derive(Debug, Clone)]
pub struct ImportPlan {
    pub upstream: String,
    pub also_upstreams: Vec<String>,
    /// The http(s) entries, each an exchange of the session.
    pub exchanges: usize,
    /// Entries left out (not `http(s)` URLs).
    pub skipped: usize,
    upstreams: Upstreams,
    /// The place in recorded order (from 0) of the n-th http(s) entry of the file; None when
    /// the file is in order already.
    rank: Option<Vec<u32>>,
}

/// A HAR document converted in memory ([`convert_slice`]).
#[derive(Debug, Clone)]
pub struct Converted {
    pub plan: ImportPlan,
    /// Finished exchanges in `seq` order (from 1).
    pub exchanges: Vec<Exchange>,
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

/// Read `file` and write it as session `opts.session` of the recording `db`. The file is
/// read twice (checked, then imported) on a blocking thread; memory stays that of a few
/// entries and of what waits for the writer, whatever the size of the file.
pub async fn import_har(
    db: &Path,
    file: &Path,
    opts: &ImportOptions,
) -> Result<ImportStats, Error> {
    let plan = blocking({
        let file = file.to_path_buf();
        move || plan_import(&file)
    })
    .await?;
    let writer = StoreWriter::create(
        db,
        &NewSession {
            name: opts.session.clone(),
            upstream: plan.upstream.clone(),
            also_upstreams: plan.also_upstreams.clone(),
            replace: opts.replace,
        },
    )?;
    let session_id = writer.session_id();
    let sink = writer.sink();
    let converted = blocking({
        let (file, opts, plan) = (file.to_path_buf(), opts.clone(), plan.clone());
        move || -> Result<usize, Error> {
            let ingest = Ingest::new(&opts.redact, opts.key.clone())?;
            let reader = open(&file)?;
            convert(&file, reader, &plan, &ingest, &mut |ex| {
                sink.room_blocking();
                sink.submit(ex);
            })?;
            Ok(ingest.redactor().secrets_seen())
        }
    })
    .await;
    let stats = writer.finish().await;
    let secrets = match converted {
        Ok(secrets) => secrets,
        Err(err) => {
            // Only a file that changed between the two readings gets here (the first one
            // checked everything): take back what was written.
            if let Err(cleanup) = crate::store::remove_session_by_id(db, session_id) {
                tracing::warn!(error = %crate::error::Chain(&cleanup), "a partly imported session was left");
            }
            return Err(err);
        }
    };
    let stats = stats?;
    Ok(ImportStats {
        session: opts.session.clone(),
        upstream: plan.upstream,
        also_upstreams: plan.also_upstreams,
        exchanges: stats.exchanges,
        events: stats.events,
        skipped: plan.skipped,
        secrets_redacted: secrets,
    })
}

/// Run blocking work (file reading, parsing) off the async runtime's threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    }
}

fn open(file: &Path) -> Result<std::fs::File, Error> {
    Ok(std::fs::File::open(file).map_err(|source| HarError::Read {
        path: file.to_path_buf(),
        source,
    })?)
}

/// Read and check a HAR file (the first of the two readings of [`import_har`]); writes
/// nothing.
pub fn plan_import(file: &Path) -> Result<ImportPlan, Error> {
    plan(file, open(file)?)
}

/// [`plan_import`] on bytes already read (`file` names them in errors).
pub fn plan_from_slice(file: &Path, bytes: &[u8]) -> Result<ImportPlan, Error> {
    plan(file, bytes)
}

/// Plan and convert a HAR document held in memory: the exchanges an import would write, in
/// `seq` order.
pub fn convert_slice(file: &Path, bytes: &[u8], opts: &ImportOptions) -> Result<Converted, Error> {
    let plan = plan(file, bytes)?;
    let ingest = Ingest::new(&opts.redact, opts.key.clone())?;
    let mut exchanges = Vec::with_capacity(plan.exchanges);
    convert(file, bytes, &plan, &ingest, &mut |ex| exchanges.push(ex))?;
    Ok(Converted {
        plan,
        exchanges,
        secrets: ingest.redactor().secrets_seen(),
    })
}

/// What the first reading keeps of an http(s) entry.
#[derive(Debug, Clone, Copy)]
struct Noted {
    /// Position among the file's http(s) entries.
    nth: u32,
    index: u32,
    started_us: i64,
    /// Into the list of distinct origins; None for a relative URL.
    origin: Option<u32>,
    /// The path names a UCWA resource (`/ucwa/`).
    ucwa: bool,
}

/// The first reading: check everything, note every entry, decide order and upstreams.
fn plan<R: Read>(file: &Path, reader: R) -> Result<ImportPlan, Error> {
    let bad = |index: usize, detail: String| HarError::BadEntry {
        path: file.to_path_buf(),
        index,
        detail,
    };
    let not_har = |detail: &str| HarError::NotHar {
        path: file.to_path_buf(),
        detail: detail.to_string(),
    };
    let mut noted: Vec<Noted> = Vec::new();
    let mut origins: Vec<Origin> = Vec::new();
    let mut skipped = 0;
    // The first entry that does not read (by index), and entries whose bodies do not decode
    // (reported in recorded order, as the conversion would meet them).
    let mut unreadable: Option<(usize, String)> = None;
    let mut undecodable: Vec<(usize, String)> = Vec::new();
    let outline = stream::walk(reader, &mut |index, value| {
        if unreadable.is_some() {
            // Only the JSON syntax of the rest matters now.
            return true;
        }
        match read_entry(index, value) {
            Err(detail) => unreadable = Some((index, detail)),
            Ok(None) => skipped += 1,
            Ok(Some(raw)) => {
                if let Err(detail) =
                    status_of(raw.entry.response.status).and_then(|_| check_bodies(&raw))
                {
                    undecodable.push((index, detail));
                }
                let origin = raw
                    .origin
                    .map(|o| match origins.iter().position(|x| *x == o) {
                        Some(i) => i as u32,
                        None => {
                            origins.push(o);
                            origins.len() as u32 - 1
                        }
                    });
                noted.push(Noted {
                    nth: noted.len() as u32,
                    index: index as u32,
                    started_us: raw.started_us,
                    origin,
                    ucwa: raw.path.to_ascii_lowercase().contains("/ucwa/"),
                });
            }
        }
        true
    })
    .map_err(|e| match e {
        stream::WalkError::Io(source) => HarError::Read {
            path: file.to_path_buf(),
            source,
        },
        stream::WalkError::Json(source) => HarError::NotJson {
            path: file.to_path_buf(),
            source,
        },
        stream::WalkError::Stopped => unreachable!("the first reading never stops early"),
    })?;
    if !outline.log {
        return Err(not_har("no top-level `log` object").into());
    }
    if let Some(member) = outline.duplicate {
        return Err(not_har(&format!("{member} appears more than once")).into());
    }
    if outline.entries != Some(true) {
        return Err(not_har("`log.entries` is missing or not an array").into());
    }
    let Some(version) = outline.version else {
        return Err(not_har("`log.version` is missing").into());
    };
    if !VERSIONS.contains(&version.as_str()) {
        return Err(HarError::UnsupportedVersion {
            path: file.to_path_buf(),
            version,
        }
        .into());
    }
    if let Some((index, detail)) = unreadable {
        return Err(bad(index, detail).into());
    }
    // An export of an empty session still names its upstream; anything else without an
    // HTTP entry says nothing to import.
    let log_custom = outline.custom.as_ref();
    let exported_upstream = log_custom.is_some_and(|c| c.get("upstream").is_some());
    if noted.is_empty() && !exported_upstream {
        return Err(HarError::Empty {
            path: file.to_path_buf(),
        }
        .into());
    }
    let in_order = noted.is_sorted_by_key(|n| (n.started_us, n.index));
    if !in_order {
        noted.sort_by_key(|n| (n.started_us, n.index));
    }
    if let Some(first) = noted
        .iter()
        .find_map(|n| undecodable.iter().find(|(i, _)| *i == n.index as usize))
    {
        return Err(bad(first.0, first.1.clone()).into());
    }
    let (main, also) = choose_upstreams(
        log_custom,
        noted
            .iter()
            .map(|n| (n.origin.map(|o| &origins[o as usize]), n.ucwa)),
    );
    let rank = (!in_order).then(|| {
        let mut rank = vec![0; noted.len()];
        for (place, n) in noted.iter().enumerate() {
            rank[n.nth as usize] = place as u32;
        }
        rank
    });
    let upstreams = Upstreams { main, also };
    Ok(ImportPlan {
        upstream: upstreams.main.base(),
        also_upstreams: upstreams.also.iter().map(Origin::base).collect(),
        exchanges: noted.len(),
        skipped,
        upstreams,
        rank,
    })
}

/// The second reading: every http(s) entry converted and finished through the ingest step in
/// recorded order (the order of `plan`), handed to `emit`.
fn convert<R: Read>(
    file: &Path,
    reader: R,
    plan: &ImportPlan,
    ingest: &Ingest,
    emit: &mut (dyn FnMut(Exchange) + Send),
) -> Result<(), Error> {
    // Two threads: this one reads and converts, the other finishes each exchange through
    // the ingest step (redact, classify, key, events) and hands it on, in order.
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Exchange>(256);
        let finisher = scope.spawn(move || {
            for mut ex in rx {
                if ex.kind == ResourceKind::Other {
                    ingest.ingest(&mut ex);
                } else {
                    // A kind the export carried is kept.
                    ingest.ingest_classified(&mut ex, false);
                }
                emit(ex);
            }
        });
        // Only a panic stops the finisher early; it is raised here.
        let read = read_in_order(file, reader, plan, &mut |ex| {
            let _ = tx.send(ex);
        });
        drop(tx);
        if let Err(panic) = finisher.join() {
            std::panic::resume_unwind(panic);
        }
        read
    })
}

/// The second reading's conversion: every http(s) entry of `reader` as an exchange (not yet
/// through the ingest step), handed to `finish` in recorded order.
fn read_in_order<R: Read>(
    file: &Path,
    reader: R,
    plan: &ImportPlan,
    finish: &mut dyn FnMut(Exchange),
) -> Result<(), Error> {
    let changed = || HarError::Changed {
        path: file.to_path_buf(),
    };
    let mut nth = 0usize;
    let mut next = 0u32;
    // Entries converted before their turn, by place.
    let mut early: BTreeMap<u32, Exchange> = BTreeMap::new();
    let mut failure: Option<Error> = None;
    let walked = stream::walk(reader, &mut |index, value| {
        let raw = match read_entry(index, value) {
            Ok(Some(raw)) => raw,
            Ok(None) => return true,
            Err(_) => {
                failure = Some(changed().into());
                return false;
            }
        };
        let place = match &plan.rank {
            None => nth as u32,
            Some(rank) => match rank.get(nth) {
                Some(place) => *place,
                None => {
                    failure = Some(changed().into());
                    return false;
                }
            },
        };
        nth += 1;
        let ex = match to_exchange(raw, u64::from(place) + 1, &plan.upstreams) {
            Ok(ex) => ex,
            Err((index, detail)) => {
                failure = Some(
                    HarError::BadEntry {
                        path: file.to_path_buf(),
                        index,
                        detail,
                    }
                    .into(),
                );
                return false;
            }
        };
        if place != next {
            early.insert(place, ex);
            return true;
        }
        finish(ex);
        next += 1;
        while let Some(ex) = early.remove(&next) {
            finish(ex);
            next += 1;
        }
        true
    });
    if let Some(err) = failure {
        return Err(err);
    }
    walked.map_err(|e| match e {
        stream::WalkError::Io(source) => HarError::Read {
            path: file.to_path_buf(),
            source,
        },
        // It read the first time.
        stream::WalkError::Json(_) | stream::WalkError::Stopped => changed(),
    })?;
    if nth != plan.exchanges || !early.is_empty() {
        return Err(changed().into());
    }
    Ok(())
}

/// One entry of `log.entries` read as HAR: None for one that is not `http(s)`; the reason
/// when it is not a HAR entry.
fn read_entry(index: usize, walked: Walked<'_>) -> Result<Option<Raw>, String> {
    let Parsed {
        entry,
        custom,
        browser_error,
    } = parse_entry(walked)?;
    let Some((origin, path, query)) = split_url(&entry.request.url) else {
        return Ok(None);
    };
    let started_us = time::parse_us(&entry.started_date_time).ok_or_else(|| {
        format!(
            "startedDateTime {:?} is not an RFC 3339 time",
            entry.started_date_time
        )
    })?;
    Ok(Some(Raw {
        index,
        started_us,
        origin,
        path,
        query,
        entry,
        custom,
        browser_error,
    }))
}

/// What converting an entry would fail on (bodies that claim base64 and are not), found by
/// the first reading so that nothing is written for such a file.
fn check_bodies(raw: &Raw) -> Result<(), String> {
    const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
    let request_b64 = raw
        .custom
        .as_ref()
        .and_then(|c| c.get("requestBodyBase64"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if let Some(text) = raw
        .entry
        .request
        .post_data
        .as_ref()
        .and_then(|p| p.text.as_ref())
        && request_b64
        && let Err(e) = B64.decode(text)
    {
        return Err(format!("postData.text is not base64: {e}"));
    }
    let content = &raw.entry.response.content;
    if let (Some(text), Some(enc)) = (&content.text, content.encoding.as_deref())
        && enc.eq_ignore_ascii_case("base64")
        && let Err(e) = B64.decode(text.trim())
    {
        return Err(format!("response.content.text is not base64: {e}"));
    }
    Ok(())
}

/// The session's upstream and its other origins: as exported (`log._ucwa`), else the origin
/// of the first UCWA request (else of the first entry), the other hosts in order of first
/// appearance. `entries` are (origin, is a UCWA request) in recorded order.
fn choose_upstreams<'a>(
    log_custom: Option<&Map<String, Value>>,
    entries: impl Iterator<Item = (Option<&'a Origin>, bool)> + Clone,
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
            entries
                .clone()
                .filter(|(_, ucwa)| *ucwa)
                .find_map(|(o, _)| o.cloned())
        })
        .or_else(|| entries.clone().find_map(|(o, _)| o.cloned()))
        .unwrap_or_else(|| Origin {
            scheme: "http".into(),
            host: "localhost".into(),
            port: 80,
        });
    for (o, _) in entries {
        if let Some(o) = o
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

    fn plan(text: &str) -> Result<Converted, Error> {
        convert_slice(
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
            plan(empty_export).unwrap().plan.upstream,
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
        assert_eq!(p.plan.upstream, "https://fe1.contoso.com");
        assert_eq!(p.plan.also_upstreams, ["https://lyncweb.contoso.com"]);
        assert_eq!(p.plan.skipped, 1);
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

    /// Entries out of order are imported in recorded order; a file that reads differently
    /// the second time is refused, not imported half.
    #[test]
    fn entries_go_in_recorded_order_and_a_changed_file_is_refused() {
        let entry = |t: &str, path: &str| {
            json!({
                "startedDateTime": t,
                "request": {"method": "GET", "url": format!("https://fe1.contoso.com{path}"),
                    "httpVersion": "HTTP/1.1", "headers": []},
                "response": {"status": 200, "httpVersion": "HTTP/1.1", "headers": [],
                    "content": {"size": 0, "mimeType": "text/plain"}, "redirectURL": ""}
            })
        };
        let doc = |entries: Vec<serde_json::Value>| {
            json!({"log": {"version": "1.2", "entries": entries}}).to_string()
        };
        let first = doc(vec![
            entry("2025-01-01T10:00:02Z", "/ucwa/b"),
            entry("2025-01-01T10:00:01Z", "/ucwa/a"),
            entry("2025-01-01T10:00:03Z", "/ucwa/c"),
        ]);
        let converted = plan(&first).unwrap();
        let paths: Vec<(u64, &str)> = converted
            .exchanges
            .iter()
            .map(|ex| (ex.seq, ex.path.as_str()))
            .collect();
        assert_eq!(paths, [(1, "/ucwa/a"), (2, "/ucwa/b"), (3, "/ucwa/c")]);

        let file = Path::new("in.har");
        let ingest = Ingest::new(&RedactConfig::default(), KeyOptions::default()).unwrap();
        let planned = plan_from_slice(file, first.as_bytes()).unwrap();
        for changed in [
            doc(vec![entry("2025-01-01T10:00:02Z", "/ucwa/b")]),
            doc(vec![
                entry("2025-01-01T10:00:02Z", "/ucwa/b"),
                json!("not an entry"),
                entry("2025-01-01T10:00:03Z", "/ucwa/c"),
            ]),
            first.replace("\"entries\":[", "\"entries\":[1,"),
            first[..first.len() - 3].to_string(),
        ] {
            let err = convert(file, changed.as_bytes(), &planned, &ingest, &mut drop)
                .unwrap_err()
                .to_string();
            assert_eq!(
                err, "in.har: the file changed while it was being imported; nothing was imported",
                "{changed}"
            );
        }
    }
}
