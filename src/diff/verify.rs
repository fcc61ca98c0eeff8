//! `verify`: re-send a recorded session to a live upstream, record the answers as a new
//! session of the same file, and diff the two (Hoverfly's "diff mode" for UCWA).
//!
//! - Requests go in recorded order. A request waits for a pending events-feed request only
//!   when the recording shows it did (the P-GET had finished before it started), or when it
//!   needs an id that only that answer can give.
//! - Ids change between servers and runs: two id-only [`Normalizer`]s (one fed the recorded
//!   answers, one the live answers, pairwise in the same order) number ids in order of first
//!   appearance, and a recorded href is rewritten to the live id behind the same placeholder.
//! - Events-feed requests follow the live feed (`_links.next`, `resync`, `resume`, or the
//!   application's `events` link) and give up after `events_timeout`, so verify finishes
//!   whatever the feed does.
//! - Sign-in: the token request's (redacted) form is replaced by the given username and
//!   password, or not sent at all with a given token (the recorded answer is kept, marked in
//!   its `error` field); later requests carry `Authorization: Bearer <live token>`.
//! - Client-generated ids (`EndpointId`, `operationId`, …) are sent fresh, as the client
//!   would send them (`fresh_ids`); the stored request keeps the recorded ones.
//! - A failed sign-in (the token request refused, or a request that was authorised when
//!   recorded answered 401) stops verify with [`Error::SignIn`]; an upstream that answers
//!   nothing at all stops it with [`Error::NoAnswer`]. The half-made session is removed.
//! - Requests that got no answer are listed in the report's `verify` member and make it
//!   unequal; events-feed requests still held at `events_timeout` are counted apart.
//! - Nothing given on the command line nor any live token is stored: the new session keeps
//!   the recorded (redacted) request headers and body, and the live answers go through the
//!   same ingest step as `record` ([`Ingest`]: numbered placeholders, cookie attributes kept,
//!   the user's key options), with the live token pinned to the placeholder the recording used
//!   for its token and new secrets numbered above the recording's.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::{HeaderName, HeaderValue, Method, Request};
use http_body_util::BodyExt;
use serde_json::Value;
use tokio::task::JoinHandle;

use super::fresh_ids;
use super::normalize::{NormalizeOptions, Normalizer};
use super::{DiffOptions, DiffReport, diff_sessions};
use crate::body::full;
use crate::error::Error;
use crate::recording::{Exchange, HeaderList, Ingest, KeyOptions, ResourceKind};
use crate::redact::{RedactConfig, highest_placeholder};
use crate::store::{NewSession, Recording, StoreWriter};
use crate::ucwa::feed::feed_links;
use crate::ucwa::media::strip_bom;
use crate::ucwa::{Representation, split_target, target_of};
use crate::upstream::{TrustConfig, UpstreamClient};

/// Credentials to sign in with (never stored).
#[derive(Debug, Clone, Default)]
pub enum Credentials {
    /// Send requests as recorded (the server must not need a token).
    #[default]
    None,
    /// A token (`cwt=…`, or a whole `Bearer …` value): the token request is not re-sent.
    Token(String),
    /// Sign in again with the password grant.
    Password { username: String, password: String },
}

/// How to verify. Start from [`VerifyOptions::new`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct VerifyOptions {
    /// The live upstream (`https://fe1.contoso.com`).
    pub upstream: String,
    pub credentials: Credentials,
    /// Name of the new session.
    pub new_session: String,
    /// Replace an existing session of that name instead of refusing.
    pub replace: bool,
    /// Give up on an events-feed request after this long.
    pub events_timeout: Duration,
    /// Give up on any other request after this long.
    pub request_timeout: Duration,
    /// Trust settings for an `https://` upstream.
    pub trust: TrustConfig,
    /// How to compare afterwards.
    pub diff: DiffOptions,
    /// Extra redaction for the live answers (as `record --redact-*`).
    pub redact: RedactConfig,
    /// How the new session's match keys are computed (as `record --ignore-body-field`).
    pub key_options: KeyOptions,
}

impl VerifyOptions {
    /// Defaults for everything but the upstream and the new session's name.
    pub fn new(upstream: impl Into<String>, new_session: impl Into<String>) -> Self {
        VerifyOptions {
            upstream: upstream.into(),
            credentials: Credentials::None,
            new_session: new_session.into(),
            replace: false,
            events_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            trust: TrustConfig::default(),
            diff: DiffOptions::default(),
            redact: RedactConfig::default(),
            key_options: KeyOptions::default(),
        }
    }
}

/// What verify did.
#[derive(Debug)]
pub struct VerifyOutcome {
    /// The new session's name.
    pub session: String,
    /// Requests sent to the upstream.
    pub sent: usize,
    /// Requests that got no answer (connection failure, timeout); events-feed requests still
    /// held when verify gave up on them are not failures.
    pub failed: usize,
    /// The diff; its `verify` member says what was sent and what failed, and a failed
    /// request makes it unequal.
    pub report: DiffReport,
}

/// What verify sent and what came of it, in the report (text: one line after the diff;
/// JSON: the `verify` member).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerifySummary {
    /// The live upstream.
    pub upstream: String,
    /// The session holding the live answers.
    pub session: String,
    /// Requests sent.
    pub sent: usize,
    /// Requests answered (any status).
    pub answered: usize,
    /// Events-feed requests still held when verify gave up on them (`--events-timeout`):
    /// a quiet feed, not a failure.
    pub held: usize,
    /// Requests that got no answer.
    pub failed: Vec<FailedRequest>,
}

/// A request the live server did not answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FailedRequest {
    /// `seq` of the recorded exchange.
    pub seq: u64,
    pub method: String,
    /// What was sent (live ids).
    pub target: String,
    pub error: String,
}

impl std::fmt::Display for VerifySummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = |n: usize, noun: &str| crate::error::plural(n as u64, noun);
        write!(
            f,
            "verify: {} sent to {}, {} answered",
            n(self.sent, "request"),
            self.upstream,
            self.answered
        )?;
        if self.held > 0 {
            write!(
                f,
                ", {} still held (given up)",
                n(self.held, "events-feed request")
            )?;
        }
        if !self.failed.is_empty() {
            let list: Vec<String> = self
                .failed
                .iter()
                .map(|r| format!("#{} {} {}: {}", r.seq, r.method, r.target, r.error))
                .collect();
            write!(f, ", {} FAILED ({})", self.failed.len(), list.join("; "))?;
        }
        write!(f, "; live answers in session {:?}", self.session)
    }
}

/// Why verify stopped before the end.
enum Stop {
    /// Signing in failed, or the live server refused the credentials.
    SignIn(String),
    /// The upstream answered nothing at all.
    NoAnswer(String),
}

/// A default name for the new session: `NAME-verify-<unix seconds>`.
pub fn default_session_name(recorded: &str) -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{recorded}-verify-{secs}")
}

/// A live answer (or the failure instead of one).
#[derive(Debug)]
struct Live {
    status: Option<u16>,
    headers: HeaderList,
    body: Vec<u8>,
    error: Option<String>,
    /// No answer within the deadline (for an events-feed request: still held).
    timed_out: bool,
    started: SystemTime,
    elapsed: Duration,
}

/// Request headers never forwarded as recorded.
const DROP_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "upgrade",
    "authorization",
    "cookie",
    "accept-encoding",
    "via",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
];

fn is_token_request(ex: &Exchange) -> bool {
    ex.kind == ResourceKind::Token
        || ex.path.to_ascii_lowercase().ends_with("/oauthtoken")
        || (ex.method.eq_ignore_ascii_case("POST")
            && ex
                .request_headers
                .get("content-type")
                .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"))
            && String::from_utf8_lossy(&ex.request_body).contains("grant_type="))
}

async fn send(
    client: UpstreamClient,
    base: String,
    method: String,
    target: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    deadline: Duration,
) -> Live {
    let started = SystemTime::now();
    let clock = Instant::now();
    let fail = |error: String, timed_out: bool, clock: Instant| Live {
        status: None,
        headers: HeaderList::default(),
        body: Vec::new(),
        error: Some(error),
        timed_out,
        started,
        elapsed: clock.elapsed(),
    };
    let mut builder = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET))
        .uri(format!("{base}{target}"));
    for (name, value) in &headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) {
            builder = builder.header(n, v);
        }
    }
    let req = match builder.body(full(body)) {
        Ok(r) => r,
        Err(e) => return fail(format!("cannot build the request: {e}"), false, clock),
    };
    let exchange = async {
        let resp = client.send(req, deadline).await.map_err(|e| {
            let timed_out = e.kind == crate::upstream::FailureKind::Timeout;
            (e.to_string(), timed_out)
        })?;
        let status = resp.status().as_u16();
        let headers = HeaderList::from_http(resp.headers());
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| (format!("reading the answer: {e}"), false))?
            .to_bytes()
            .to_vec();
        Ok::<_, (String, bool)>((status, headers, body))
    };
    match tokio::time::timeout(deadline, exchange).await {
        Err(_) => fail(format!("no answer within {deadline:?}"), true, clock),
        Ok(Err((e, timed_out))) => fail(e, timed_out, clock),
        Ok(Ok((status, headers, body))) => Live {
            status: Some(status),
            headers,
            body,
            error: None,
            timed_out: false,
            started,
            elapsed: clock.elapsed(),
        },
    }
}

/// Feed an exchange's target and answer to an id normaliser (same order on both sides).
fn learn(norm: &mut Normalizer, target: &str, headers: &HeaderList, body: &[u8]) {
    norm.text(target);
    if let Some(loc) = headers.get("location") {
        norm.text(loc);
    }
    let text = strip_bom(body);
    match serde_json::from_slice::<Value>(text) {
        Ok(v) => {
            norm.json(&v);
        }
        Err(_) => {
            if let Ok(t) = std::str::from_utf8(text) {
                norm.text(t);
            }
        }
    }
}

/// The next events href a live events answer gives (resync, then resume, then next).
fn feed_link(body: &[u8]) -> Option<String> {
    let links = feed_links(Representation::Other, body).ok()?;
    links.follow().map(str::to_string)
}

struct Pending {
    index: usize,
    target: String,
    handle: JoinHandle<Live>,
}

struct Run<'a> {
    recorded: &'a [Exchange],
    opts: &'a VerifyOptions,
    base: String,
    client: UpstreamClient,
    sink: crate::store::ExchangeSink,
    rec_ids: Normalizer,
    live_ids: Normalizer,
    /// The live token, sent with later requests (never stored: the ingest step maps it to
    /// the recording's token placeholder).
    live_token: Option<String>,
    token_placeholder: Option<String>,
    ingest: Ingest,
    next_events: Option<String>,
    sent: usize,
    answered: usize,
    held: usize,
    failed: Vec<FailedRequest>,
    stop: Option<Stop>,
}

impl Run<'_> {
    fn translate(&self, target: &str) -> (String, bool) {
        self.rec_ids.translate(target, &self.live_ids)
    }

    fn headers_for(&self, ex: &Exchange) -> Vec<(String, Vec<u8>)> {
        let mut headers: Vec<(String, Vec<u8>)> = ex
            .request_headers
            .iter()
            .filter(|(n, _)| !DROP_HEADERS.iter().any(|d| d.eq_ignore_ascii_case(n)))
            .map(|(n, v)| (n.to_string(), v.to_vec()))
            .collect();
        let auth = match (&self.live_token, &self.opts.credentials) {
            (Some(t), _) => Some(t.clone()),
            (None, Credentials::Token(t)) => Some(t.clone()),
            _ => None,
        };
        if let Some(t) = auth
            && ex.request_headers.get("authorization").is_some()
        {
            let value = if t.starts_with("Bearer ") {
                t
            } else {
                format!("Bearer {t}")
            };
            headers.push(("authorization".into(), value.into_bytes()));
        }
        headers
    }

    /// Store the live answer to recorded exchange `index`, sent as `target`, and learn from it.
    fn record(&mut self, index: usize, target: &str, live: Live) {
        let recorded = self.recorded;
        let ex = &recorded[index];
        let rec_target = ex.path_and_query();
        learn(
            &mut self.rec_ids,
            &rec_target,
            &ex.response_headers,
            &ex.response_body,
        );
        learn(&mut self.live_ids, target, &live.headers, &live.body);
        self.judge(ex, target, &live);
        // The live token: used for later requests, stored as the recording's placeholder.
        if is_token_request(ex)
            && let Ok(v) = serde_json::from_slice::<Value>(&live.body)
            && let Some(t) = v["access_token"].as_str()
        {
            if let Some(placeholder) = &self.token_placeholder {
                self.ingest.redactor().pin(t, placeholder);
            }
            self.live_token = Some(t.to_string());
        }
        if ex.is_events() {
            if let Some(next) = feed_link(&live.body) {
                self.next_events = Some(target_of(&next).to_string());
            }
        } else if self.next_events.is_none()
            && let Ok(v) = serde_json::from_slice::<Value>(&live.body)
            && let Some(h) = v["_links"]["events"]["href"].as_str()
        {
            self.next_events = Some(target_of(h).to_string());
        }
        let (path, query) = split_target(target);
        let started_us = live
            .started
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0);
        let mut stored = Exchange {
            id: 0,
            seq: ex.seq,
            started_us,
            duration_us: live.elapsed.as_micros() as i64,
            method: ex.method.clone(),
            path: path.to_string(),
            query: query.map(str::to_string),
            http_version: "HTTP/1.1".into(),
            request_headers: ex.request_headers.clone(),
            request_body: ex.request_body.clone(),
            request_truncated: ex.request_truncated,
            status: live.status,
            response_headers: live.headers,
            response_body: live.body,
            error: live.error,
            kind: ex.kind.clone(),
            representation: ex.representation,
            upstream: Some(self.base.clone()),
            ..Exchange::default()
        };
        self.ingest.ingest_classified(&mut stored, false);
        self.sink.submit(stored);
    }

    /// Count the answer, and decide whether going on makes sense: a failed sign-in or
    /// refused credentials would only turn every later answer into a 401 difference.
    fn judge(&mut self, ex: &Exchange, target: &str, live: &Live) {
        match live.status {
            Some(_) => self.answered += 1,
            None if ex.is_events() && live.timed_out => self.held += 1,
            None => {
                let error = live.error.clone().unwrap_or_default();
                if self.answered == 0 && self.stop.is_none() {
                    self.stop = Some(Stop::NoAnswer(format!("{} {target}: {error}", ex.method)));
                }
                self.failed.push(FailedRequest {
                    seq: ex.seq,
                    method: ex.method.clone(),
                    target: target.to_string(),
                    error,
                });
            }
        }
        if self.stop.is_some() {
            return;
        }
        let status = live.status;
        if is_token_request(ex) && matches!(self.opts.credentials, Credentials::Password { .. }) {
            let token = serde_json::from_slice::<Value>(&live.body)
                .ok()
                .filter(|v| v["access_token"].is_string());
            if let Some(code) = status
                && !(token.is_some() && (200..300).contains(&code))
            {
                let why = serde_json::from_slice::<Value>(&live.body)
                    .ok()
                    .map(|v| {
                        [&v["error"], &v["error_description"]]
                            .iter()
                            .filter_map(|x| x.as_str())
                            .collect::<Vec<_>>()
                            .join(": ")
                    })
                    .filter(|w| !w.is_empty())
                    .map(|w| format!(" ({w})"))
                    .unwrap_or_default();
                self.stop = Some(Stop::SignIn(format!(
                    "the token request ({} {target}) was answered {code}{why}; check --username and --password",
                    ex.method
                )));
            }
            return;
        }
        let authorised_then = ex.request_headers.get("authorization").is_some()
            && ex.status.is_some_and(|s| s != 401);
        if authorised_then && status == Some(401) {
            let hint = match self.opts.credentials {
                Credentials::None => "give --token, or --username and --password",
                Credentials::Token(_) => "the token given with --token was refused (expired?)",
                Credentials::Password { .. } => "the live server refused the token it issued",
            };
            self.stop = Some(Stop::SignIn(format!(
                "{} {target} was answered 401 where the recording was answered {}; {hint}",
                ex.method,
                ex.status.unwrap_or_default()
            )));
        }
    }

    async fn settle(&mut self, pending: Pending) {
        let live = match pending.handle.await {
            Ok(live) => live,
            Err(e) => Live {
                status: None,
                headers: HeaderList::default(),
                body: Vec::new(),
                error: Some(format!("request task failed: {e}")),
                timed_out: false,
                started: SystemTime::now(),
                elapsed: Duration::ZERO,
            },
        };
        self.record(pending.index, &pending.target, live);
    }

    fn token_body(&self, ex: &Exchange) -> Vec<u8> {
        match &self.opts.credentials {
            Credentials::Password { username, password } => {
                let mut form = form_urlencoded::Serializer::new(String::new());
                let mut named = false;
                for (k, v) in form_urlencoded::parse(&ex.request_body) {
                    match k.as_ref() {
                        "username" => {
                            form.append_pair("username", username);
                            named = true;
                        }
                        "password" => {}
                        _ => {
                            form.append_pair(&k, &v);
                        }
                    }
                }
                if !named {
                    form.append_pair("username", username);
                }
                form.append_pair("password", password);
                form.finish().into_bytes()
            }
            _ => ex.request_body.clone(),
        }
    }

    async fn run(&mut self) {
        let mut pending: Option<Pending> = None;
        let recorded = self.recorded;
        for (index, ex) in recorded.iter().enumerate() {
            if self.stop.is_some() {
                break;
            }
            // Wait for a P-GET the recording shows had finished before this request started.
            if let Some(p) = pending.take() {
                let prev = &recorded[p.index];
                if ex.is_events() || prev.started_us + prev.duration_us <= ex.started_us {
                    self.settle(p).await;
                } else {
                    pending = Some(p);
                }
            }
            if is_token_request(ex) && matches!(self.opts.credentials, Credentials::Token(_)) {
                let mut copy = ex.clone();
                copy.error = Some("not re-sent: verify was given a token".into());
                copy.id = 0;
                copy.events.clear();
                self.ingest.ingest_classified(&mut copy, false);
                learn(
                    &mut self.rec_ids,
                    &ex.path_and_query(),
                    &ex.response_headers,
                    &ex.response_body,
                );
                learn(
                    &mut self.live_ids,
                    &ex.path_and_query(),
                    &ex.response_headers,
                    &ex.response_body,
                );
                self.sink.submit(copy);
                continue;
            }
            let target = if ex.is_events() {
                match &self.next_events {
                    Some(next) => next.clone(),
                    None => self.translate(&ex.path_and_query()).0,
                }
            } else {
                let (mut t, mut unmapped) = self.translate(&ex.path_and_query());
                if unmapped && let Some(p) = pending.take() {
                    // It needs an id the pending events answer may give.
                    self.settle(p).await;
                    (t, unmapped) = self.translate(&ex.path_and_query());
                }
                if unmapped {
                    tracing::debug!(seq = ex.seq, target = %t, "verify: an id of the recording has no live counterpart yet");
                }
                t
            };
            let body = if is_token_request(ex) {
                self.token_body(ex)
            } else if let Ok(text) = std::str::from_utf8(&ex.request_body) {
                let translated = self.translate(text).0.into_bytes();
                // A fresh EndpointId (operationId, …), as the client would send.
                let content_type = ex.request_headers.get("content-type");
                fresh_ids::refresh(&translated, content_type).into_owned()
            } else {
                ex.request_body.clone()
            };
            let deadline = if ex.is_events() {
                self.opts.events_timeout
            } else {
                self.opts.request_timeout
            };
            let handle = tokio::spawn(send(
                self.client.clone(),
                self.base.clone(),
                ex.method.clone(),
                target.clone(),
                self.headers_for(ex),
                body,
                deadline,
            ));
            self.sent += 1;
            let p = Pending {
                index,
                target,
                handle,
            };
            if ex.is_events() {
                pending = Some(p);
            } else {
                self.settle(p).await;
            }
        }
        if let Some(p) = pending.take() {
            if self.stop.is_some() {
                p.handle.abort();
            } else {
                self.settle(p).await;
            }
        }
    }
}

/// Re-send session `session` of `db` to the upstream, record the answers as a new session of
/// `db`, and diff the recorded session (A) with the new one (B).
pub async fn verify(
    db: &Path,
    session: Option<&str>,
    opts: &VerifyOptions,
) -> Result<VerifyOutcome, Error> {
    let base = opts.upstream.trim_end_matches('/').to_string();
    let uri: http::Uri = base
        .parse()
        .map_err(|e| Error::invalid_because("--upstream URL", format!("{base:?}"), e))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
        return Err(Error::invalid(
            "--upstream URL",
            format!("{base:?}: expected http://HOST[:PORT] or https://HOST[:PORT]"),
        ));
    }
    let rec = Recording::open(db)?;
    let info = rec.session(session)?;
    let recorded = rec.exchanges(&info)?;
    let client = UpstreamClient::new(&opts.trust)?;
    let ingest = Ingest::new(&opts.redact, opts.key_options.clone())?;
    let writer = StoreWriter::create(
        db,
        &NewSession {
            name: opts.new_session.clone(),
            upstream: base.clone(),
            also_upstreams: vec![],
            replace: opts.replace,
        },
    )?;
    // What stands for the live token: the recorded token answer's placeholder (or, with a
    // given token, the recorded requests' credential). New secrets are numbered above every
    // placeholder the recording holds, so they never take one of its numbers.
    let token_placeholder = recorded
        .iter()
        .filter(|e| is_token_request(e))
        .find_map(|e| {
            serde_json::from_slice::<Value>(&e.response_body)
                .ok()
                .and_then(|v| v["access_token"].as_str().map(str::to_string))
        })
        .or_else(|| recorded.iter().find_map(|e| e.credential.clone()));
    let highest = recorded
        .iter()
        .flat_map(|e| {
            [&e.request_body, &e.response_body]
                .into_iter()
                .map(|b| highest_placeholder(b))
                .chain(
                    e.request_headers
                        .iter()
                        .chain(e.response_headers.iter())
                        .map(|(_, v)| highest_placeholder(v)),
                )
                .chain([highest_placeholder(e.path_and_query().as_bytes())])
        })
        .max()
        .unwrap_or(0);
    ingest.redactor().reserve(highest);
    if let (Credentials::Token(t), Some(placeholder)) = (&opts.credentials, &token_placeholder) {
        ingest
            .redactor()
            .pin(t.trim_start_matches("Bearer ").trim(), placeholder);
    }
    let ids_only = NormalizeOptions {
        ids: true,
        ..NormalizeOptions::none()
    };
    let mut run = Run {
        recorded: &recorded,
        opts,
        base: base.clone(),
        client,
        sink: writer.sink(),
        rec_ids: Normalizer::new(ids_only, &[]),
        live_ids: Normalizer::new(ids_only, &[]),
        live_token: None,
        token_placeholder,
        ingest,
        next_events: None,
        sent: 0,
        answered: 0,
        held: 0,
        failed: Vec::new(),
        stop: None,
    };
    run.run().await;
    let summary = VerifySummary {
        upstream: base.clone(),
        session: opts.new_session.clone(),
        sent: run.sent,
        answered: run.answered,
        held: run.held,
        failed: std::mem::take(&mut run.failed),
    };
    let stop = run.stop.take();
    drop(run);
    let finished = writer.finish().await;
    if let Some(stop) = stop {
        // A half session of 401s or refusals helps nobody: it goes.
        crate::store::remove_session(db, &opts.new_session)?;
        return Err(match stop {
            Stop::SignIn(detail) => Error::SignIn {
                upstream: base,
                detail,
            },
            Stop::NoAnswer(detail) => Error::NoAnswer {
                upstream: base,
                detail,
            },
        });
    }
    finished?;

    let live_rec = Recording::open(db)?;
    let live_info = live_rec.session(Some(&opts.new_session))?;
    let mut report = diff_sessions(&rec, &info, &live_rec, &live_info, &opts.diff)?;
    let failed = summary.failed.len();
    if failed > 0 {
        // Unanswered requests were not verified: the sessions are not known to be equal.
        report.equal = false;
    }
    let sent = summary.sent;
    report.verify = Some(summary);
    Ok(VerifyOutcome {
        session: opts.new_session.clone(),
        sent,
        failed,
        report,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(target_of("http://h:1/a/events?ack=2"), "/a/events?ack=2");
        assert_eq!(target_of("/a?b"), "/a?b");
        assert_eq!(
            feed_link(br#"{"_links":{"self":{"href":"/e?ack=1"},"next":{"href":"/e?ack=2"}}}"#),
            Some("/e?ack=2".into())
        );
        assert_eq!(
            feed_link(br#"<events href="/e?ack=1" xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><link rel="next" href="/e?ack=2"/></events>"#),
            Some("/e?ack=2".into())
        );
    }
}
