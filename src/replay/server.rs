//! The replayer: a loaded session plus its cursors, and the request handler that answers from
//! them. [`run`] serves it on a listener the caller bound (mini-redis style).
//!
//! All mutable state (cursors, play counts, misses) sits behind one `std::sync::Mutex` that
//! is taken for a few integer operations and never held across an await: a held P-GET or a
//! paced answer waits on its own task and blocks nobody.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::cursor::{Cursors, Pick};
use super::feed;
use super::index::{GroupId, Index};
use super::miss::{Miss, MissReason, closest, miss_response};
use super::options::{BodyMatch, Exhausted, FeedEnd, ReplayConfig};
use super::pacing;
use super::redacted::equal_but_secrets;
use super::report::{ReplayReport, Unplayed};
use crate::body::{Body, full};
use crate::error::Error;
use crate::recording::headers::{ResponseRules, client_headers, retain_in_order};
use crate::recording::{Exchange, SessionInfo};
use crate::recording::{KeyOptions, KeyRequest, MatchKey};
use crate::recording::{OriginRewriter, Upstreams};
use crate::serve::{ConnInfo, DEFAULT_DRAIN, serve};
use crate::store::Recording;
use crate::ucwa::feed::{ack_of, is_events_request};
use crate::ucwa::{ErrorBody, Representation, error_response};

/// Path (on the replay listener) that returns the report so far as JSON and, with
/// `--report`, writes the file: the "on demand" report for scripts.
pub const REPORT_PATH: &str = "/_replay/report";

/// Largest request body the replayer reads (a UCWA request body is a few KiB).
const MAX_REQUEST_BODY: usize = 16 * 1024 * 1024;

/// A loaded session, ready to answer requests. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct Replayer {
    recording: PathBuf,
    session: SessionInfo,
    index: Index,
    config: ReplayConfig,
    key_options: KeyOptions,
    upstreams: Upstreams,
    state: Mutex<State>,
    /// The response-head rules for the last public base answered at (a replay is normally
    /// reached at one base, so they are built once rather than per response).
    head_rules: Mutex<Option<(String, Arc<ResponseRules>)>>,
}

/// Everything that changes while replaying.
#[derive(Debug)]
struct State {
    cursors: Cursors,
    /// Times each entry was served.
    played: Vec<u32>,
    served: u64,
    misses: Vec<Miss>,
}

/// Why a request whose key matched nothing is served anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fallback {
    /// It differs only where the recording holds redaction placeholders.
    Secrets,
    /// `--body-match lenient` and a single candidate.
    Lenient,
}

/// What the handler decided under the lock; acted upon (and awaited) after releasing it.
enum Decision {
    Serve(usize),
    FeedEnd { ack: i64 },
    Miss(Miss),
}

impl Replayer {
    /// Load `session` (or the only session when `None`) of the recording at `db`.
    pub fn load(
        db: impl AsRef<Path>,
        session: Option<&str>,
        config: ReplayConfig,
    ) -> Result<Self, Error> {
        let db = db.as_ref();
        let recording = Recording::open(db)?;
        let info = recording.session(session)?;
        let exchanges = recording.exchanges(&info)?;
        Replayer::from_exchanges(db, info, exchanges, config)
    }

    /// Build from exchanges already read (in `seq` order); `recording` only names the source
    /// in reports.
    pub fn from_exchanges(
        recording: impl AsRef<Path>,
        session: SessionInfo,
        exchanges: Vec<Exchange>,
        config: ReplayConfig,
    ) -> Result<Self, Error> {
        let upstreams =
            Upstreams::parse(&session.upstream, &session.also_upstreams).map_err(|e| {
                Error::invalid_because(
                    "recording",
                    format!(
                        "session {:?} records an upstream that is not an origin",
                        session.name
                    ),
                    e,
                )
            })?;
        let key_options = config.key_options();
        let recompute = !config.ignore_body_fields.is_empty();
        let index = Index::build(exchanges, &key_options, recompute);
        let state = State {
            cursors: Cursors::new(index.group_count()),
            played: vec![0; index.entries().len()],
            served: 0,
            misses: Vec::new(),
        };
        Ok(Replayer {
            recording: recording.as_ref().to_path_buf(),
            session,
            index,
            config,
            key_options,
            upstreams,
            state: Mutex::new(state),
            head_rules: Mutex::new(None),
        })
    }

    /// The session being replayed.
    pub fn session(&self) -> &SessionInfo {
        &self.session
    }

    /// The options in force.
    pub fn config(&self) -> &ReplayConfig {
        &self.config
    }

    /// The state lock; a panic elsewhere must not stop the replay from reporting.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Misses so far, in arrival order.
    pub fn misses(&self) -> Vec<Miss> {
        self.state().misses.clone()
    }

    /// Recorded exchanges not served so far, in recorded order.
    pub fn unplayed(&self) -> Vec<Unplayed> {
        let state = self.state();
        self.unplayed_in(&state)
    }

    fn unplayed_in(&self, state: &State) -> Vec<Unplayed> {
        self.index
            .entries()
            .iter()
            .zip(&state.played)
            .filter(|(_, n)| **n == 0)
            .map(|(entry, _)| {
                let e = &entry.exchange;
                Unplayed {
                    seq: e.seq,
                    method: e.method.clone(),
                    path: e.path.clone(),
                    query: e.query.clone(),
                    representation: entry.key().representation,
                    status: e.status,
                    match_key: entry.key().to_string(),
                }
            })
            .collect()
    }

    /// The report so far.
    pub fn report(&self) -> ReplayReport {
        let state = self.state();
        ReplayReport {
            recording: self.recording.display().to_string(),
            session: self.session.name.clone(),
            recorded: self.index.entries().len(),
            served: state.served,
            played: state.played.iter().filter(|n| **n > 0).count(),
            misses: state.misses.clone(),
            unplayed: self.unplayed_in(&state),
        }
    }

    /// Write the report to the configured `--report` file, if any.
    pub fn write_report(&self) -> Result<Option<ReplayReport>, Error> {
        match &self.config.report_path {
            None => Ok(None),
            Some(path) => {
                let report = self.report();
                report.write(path)?;
                Ok(Some(report))
            }
        }
    }

    /// The origin rewriter for a replay reachable at `public_base` (`http://127.0.0.1:PORT`).
    pub fn rewriter(&self, public_base: &str) -> OriginRewriter {
        OriginRewriter::to_public(&self.upstreams.main, &self.upstreams.also, public_base)
    }

    /// The same head rewriting as the recording proxy (hop-by-hop fields, Via, origins in
    /// Location / WWW-Authenticate / …, cookie domains), so the client gets what it got
    /// while recording; built once per `public_base`.
    fn head_rules(&self, public_base: &str) -> Arc<ResponseRules> {
        let mut cached = self.head_rules.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((base, rules)) = cached.as_ref()
            && base == public_base
        {
            return rules.clone();
        }
        let rules = Arc::new(ResponseRules {
            to_public: self.rewriter(public_base),
            upstream_hosts: self.upstreams.all().map(|o| o.host.clone()).collect(),
        });
        *cached = Some((public_base.to_string(), rules.clone()));
        rules
    }

    /// Answer one request whose body has been read. `public_base` is this replay's own
    /// URL (recorded origins are rewritten to it); `shutdown` releases held P-GETs.
    pub async fn respond(
        &self,
        req: Request<Bytes>,
        public_base: &str,
        shutdown: &CancellationToken,
    ) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let path = parts.uri.path();
        let query = parts.uri.query();
        if path == REPORT_PATH && parts.method == http::Method::GET {
            return self.report_response();
        }
        let header = |name: HeaderName| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let key = KeyRequest::of_http(&parts, &body).key(&self.key_options);
        let placeholder = header(header::AUTHORIZATION).and_then(credential_placeholder);
        let credential = self.index.lookup_credential(placeholder);

        let fallback = match self.index.lookup(credential.as_deref(), &key) {
            Some(_) => None,
            None => self.fallback(
                &key,
                credential.as_deref(),
                header(header::CONTENT_TYPE),
                &body,
            ),
        };
        let decision = self.decide(&key, credential.as_deref(), placeholder, query, fallback);
        match decision {
            Decision::Serve(entry) => {
                let exchange = &self.index.entries()[entry].exchange;
                let delay = self.config.pace.delay(exchange.duration_us);
                pacing::wait(delay, shutdown).await;
                self.recorded_response(exchange, &key, public_base)
            }
            Decision::FeedEnd { ack } => {
                if self.config.feed_end == FeedEnd::Hold {
                    pacing::wait(feed::request_timeout(query), shutdown).await;
                }
                let repr = key.representation;
                let body = feed::empty_batch(path, query, ack, repr);
                let content_type = self
                    .index
                    .feed_content_type(path, repr)
                    .unwrap_or(repr.default_content_type())
                    .to_string();
                let mut resp = Response::new(full(body));
                if let Ok(v) = HeaderValue::from_str(&content_type) {
                    resp.headers_mut().insert(header::CONTENT_TYPE, v);
                }
                resp
            }
            Decision::Miss(miss) => {
                tracing::warn!(
                    method = %miss.method,
                    target = %miss.path,
                    query = miss.query.as_deref().unwrap_or(""),
                    closest = ?miss.closest.iter().map(|c| (c.seq, c.differs.join("+"))).collect::<Vec<_>>(),
                    "replay miss: {}",
                    miss.message
                );
                miss_response(&miss)
            }
        }
    }

    /// Choose the answer: a few map lookups and counter updates under the lock.
    fn decide(
        &self,
        key: &MatchKey,
        credential: Option<&str>,
        placeholder: Option<&str>,
        query: Option<&str>,
        fallback: Option<(Vec<GroupId>, Fallback)>,
    ) -> Decision {
        let mut state = self.state();
        let group = self.index.lookup(credential, key);
        if is_events_request(&key.method, &key.path) {
            if let Some(g) = group {
                // Idempotent: every entry for this ack counts as played; one answer is served.
                for &i in self.index.group(g) {
                    state.played[i] += 1;
                }
                return match feed::recorded_answer(&self.index, g) {
                    Some(entry) => {
                        state.served += 1;
                        Decision::Serve(entry)
                    }
                    None => Decision::FeedEnd {
                        ack: ack_of(query).unwrap_or(0),
                    },
                };
            }
            if let (Some(ack), Some(max)) = (
                ack_of(query),
                self.index.feed_max_ack(credential, &key.path),
            ) && ack > max
            {
                return Decision::FeedEnd { ack };
            }
        }
        if let Some(g) = group {
            return match self.pick(&mut state, g) {
                Some(entry) => Decision::Serve(entry),
                None => {
                    let recorded = self.index.group(g).len();
                    self.record_miss(
                        &mut state,
                        key,
                        placeholder,
                        query,
                        MissReason::Exhausted,
                        format!(
                            "all {recorded} recorded answers to this request were already served (--exhausted error)"
                        ),
                    )
                }
            };
        }
        // Several recorded requests equal but for secrets (two users' token POSTs) are
        // served in recorded order, like repeated identical requests: the first with an
        // answer not yet played, else the last (the exhaustion policy applies).
        let chosen = fallback.and_then(|(groups, why)| {
            let unplayed = groups
                .iter()
                .copied()
                .find(|&g| self.index.group(g).iter().any(|&i| state.played[i] == 0));
            unplayed.or(groups.last().copied()).map(|g| (g, why))
        });
        if let Some((g, why)) = chosen
            && let Some(entry) = self.pick(&mut state, g)
        {
            let seq = self.index.entries()[entry].exchange.seq;
            match why {
                Fallback::Secrets => tracing::debug!(
                    method = %key.method,
                    target = %key.path,
                    recorded_seq = seq,
                    "replay: request body differs from the recording only where it was redacted"
                ),
                Fallback::Lenient => tracing::warn!(
                    method = %key.method,
                    target = %key.path,
                    recorded_seq = seq,
                    "replay: request body differs from the recording; serving the only recorded request of this method, path and representation (--body-match lenient)"
                ),
            }
            return Decision::Serve(entry);
        }
        self.record_miss(
            &mut state,
            key,
            placeholder,
            query,
            MissReason::NoMatch,
            format!("no recorded request matches {key}"),
        )
    }

    /// For a request whose key matches nothing: the recorded requests of the same method,
    /// path, query and representation that it equals but for redacted secrets (in recorded
    /// order), else (with `--body-match lenient`) the only one there is. Read-only, so
    /// computed before locking.
    fn fallback(
        &self,
        key: &MatchKey,
        credential: Option<&str>,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Option<(Vec<GroupId>, Fallback)> {
        let same = self.index.same_shape(credential, key);
        let secrets: Vec<GroupId> = same
            .iter()
            .copied()
            .filter(|&g| {
                let recorded = &self.index.entries()[self.index.group(g)[0]].exchange;
                equal_but_secrets(
                    &self.key_options,
                    content_type,
                    body,
                    recorded.request_headers.get("content-type"),
                    &recorded.request_body,
                )
            })
            .collect();
        match (&secrets[..], &same[..], self.config.body_match) {
            ([], [g], BodyMatch::Lenient) => Some((vec![*g], Fallback::Lenient)),
            ([], _, _) => None,
            _ => Some((secrets, Fallback::Secrets)),
        }
    }

    /// Advance a group's cursor and count the play.
    fn pick(&self, state: &mut State, group: GroupId) -> Option<usize> {
        let policy: Exhausted = self.config.exhausted;
        match state.cursors.pick(group, self.index.group(group), policy) {
            Pick::Serve(entry) => {
                state.played[entry] += 1;
                state.served += 1;
                Some(entry)
            }
            Pick::Exhausted { .. } => None,
        }
    }

    fn record_miss(
        &self,
        state: &mut State,
        key: &MatchKey,
        placeholder: Option<&str>,
        query: Option<&str>,
        reason: MissReason,
        message: String,
    ) -> Decision {
        let credential = self.index.lookup_credential(placeholder);
        let miss = Miss {
            method: key.method.clone(),
            path: key.path.clone(),
            query: query.map(str::to_string),
            representation: key.representation,
            credential: credential.clone(),
            match_key: key.to_string(),
            reason,
            message,
            closest: closest(&self.index, credential.as_deref(), key),
        };
        state.misses.push(miss.clone());
        Decision::Miss(miss)
    }

    /// The recorded response, byte for byte, with the recorded origins rewritten to ours.
    fn recorded_response(
        &self,
        exchange: &Exchange,
        key: &MatchKey,
        public_base: &str,
    ) -> Response<Body> {
        let Some(status) = exchange.status else {
            // The client got no response from upstream while recording: the recording
            // proxy answered with its own 502, which is what we answer with too.
            let message = exchange
                .error
                .clone()
                .unwrap_or_else(|| "no response was recorded".to_string());
            let err = ErrorBody::new(StatusCode::BAD_GATEWAY, Some("UpstreamFailed"), message);
            return error_response(&err, key.representation);
        };
        let rules = self.head_rules(public_base);
        let body = rules
            .to_public
            .rewrite(&exchange.response_body)
            .into_owned();
        let mut headers = exchange.response_headers.to_http();
        if exchange.content_encoding.is_some() {
            // The body is stored decoded and sent whole.
            retain_in_order(&mut headers, |n| n != header::CONTENT_ENCODING);
        }
        client_headers(&mut headers, &rules);
        if let Some(length) = headers.get_mut(header::CONTENT_LENGTH) {
            *length = HeaderValue::from(body.len());
        }
        let keeps_length = !body.is_empty() || !headers.contains_key(header::CONTENT_LENGTH);
        let body = if keeps_length {
            full(body)
        } else {
            // hyper moves the `Content-Length: 0` of a known-empty body to the end of the
            // head; a body of unknown size keeps the recorded field where it was.
            empty_of_unknown_size()
        };
        let mut resp = Response::new(body);
        *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
        *resp.headers_mut() = headers;
        resp
    }

    fn report_response(&self) -> Response<Body> {
        let report = self.report();
        if let Err(err) = self.write_report() {
            tracing::error!(%err, "cannot write the replay report");
        }
        let text = serde_json::to_vec_pretty(&report).unwrap_or_default();
        let mut resp = Response::new(full(text));
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        resp
    }

    /// Read the body of a hyper request and answer it.
    async fn handle(
        &self,
        req: Request<hyper::body::Incoming>,
        info: ConnInfo,
        shutdown: &CancellationToken,
    ) -> Response<Body> {
        let public_base = public_base(info.local, req.headers());
        let repr = Representation::from_accept(
            req.headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok()),
        );
        let (parts, body) = req.into_parts();
        let limited = http_body_util::Limited::new(body, MAX_REQUEST_BODY);
        let bytes = match limited.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(err) => {
                let err = ErrorBody::new(
                    StatusCode::BAD_REQUEST,
                    None,
                    format!("request body could not be read: {err}"),
                );
                return error_response(&err, repr);
            }
        };
        self.respond(Request::from_parts(parts, bytes), &public_base, shutdown)
            .await
    }
}

/// An empty body that does not announce its size.
fn empty_of_unknown_size() -> Body {
    let frames =
        futures_util::stream::empty::<Result<http_body::Frame<Bytes>, std::convert::Infallible>>();
    crate::body::boxed(http_body_util::StreamBody::new(frames))
}

/// The `REDACTED-n` placeholder inside an `Authorization` value (`Bearer cwt=REDACTED-2`).
pub fn credential_placeholder(authorization: &str) -> Option<&str> {
    const MARK: &str = "REDACTED-";
    let start = authorization.find(MARK)?;
    let rest = &authorization[start + MARK.len()..];
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    (digits > 0).then(|| &authorization[start..start + MARK.len() + digits])
}

/// This replay's own URL as the client reached it: the listener's address, or the `Host`
/// the client used when listening on all interfaces.
fn public_base(local: SocketAddr, headers: &HeaderMap) -> String {
    if local.ip().is_unspecified()
        && let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok())
    {
        return format!("http://{host}");
    }
    format!("http://{local}")
}

/// Serve `replayer` on `listener` until `shutdown` fires, then write the `--report` file (if
/// configured) and return the final report. Held P-GETs are released at once on shutdown.
pub async fn run(
    listener: TcpListener,
    replayer: Arc<Replayer>,
    shutdown: CancellationToken,
) -> Result<ReplayReport, Error> {
    let token = shutdown.clone();
    let served = replayer.clone();
    let handler = move |req: Request<hyper::body::Incoming>, info: ConnInfo| {
        let replayer = served.clone();
        let token = token.clone();
        async move { replayer.handle(req, info, &token).await }
    };
    serve(listener, None, handler, shutdown, DEFAULT_DRAIN).await;
    Ok(match replayer.write_report()? {
        Some(report) => report,
        None => replayer.report(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::recording::HeaderList;

    fn session() -> SessionInfo {
        SessionInfo {
            id: 1,
            name: "s".into(),
            upstream: "https://fe1.contoso.com".into(),
            also_upstreams: vec![],
            started_at: String::new(),
            ended_at: None,
            tool_version: String::new(),
            exchanges: 2,
            events: 0,
        }
    }

    fn exchange(seq: u64, method: &str, path: &str, query: Option<&str>, body: &str) -> Exchange {
        let target = match query {
            Some(q) => format!("{path}?{q}"),
            None => path.to_string(),
        };
        let key = KeyRequest::new(method, &target).key(&KeyOptions::default());
        let mut response_headers = HeaderList::default();
        response_headers.push("Content-Type", "application/json");
        response_headers.push("Location", "https://fe1.contoso.com/ucwa/x");
        response_headers.push("Content-Length", body.len().to_string());
        Exchange {
            id: seq as i64,
            seq,
            method: method.into(),
            path: path.into(),
            query: query.map(str::to_string),
            http_version: "HTTP/1.1".into(),
            status: Some(200),
            response_headers,
            response_body: body.as_bytes().to_vec(),
            match_key: key,
            ..Default::default()
        }
    }

    async fn ask(r: &Replayer, method: &str, target: &str) -> (u16, HeaderMap, String) {
        let req = Request::builder()
            .method(method)
            .uri(target)
            .body(Bytes::new())
            .unwrap();
        let resp = r
            .respond(req, "http://127.0.0.1:9", &CancellationToken::new())
            .await;
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        (
            parts.status.as_u16(),
            parts.headers,
            String::from_utf8(bytes.to_vec()).unwrap(),
        )
    }

    #[tokio::test]
    async fn answers_rewritten_feed_end_and_misses_without_a_network() {
        let config = ReplayConfig {
            feed_end: FeedEnd::Empty,
            ..ReplayConfig::default()
        };
        let r = Replayer::from_exchanges(
            "mem",
            session(),
            vec![
                exchange(
                    1,
                    "GET",
                    "/ucwa/x",
                    None,
                    r#"{"href":"https:\/\/fe1.contoso.com\/ucwa"}"#,
                ),
                exchange(2, "GET", "/app/events", Some("ack=1"), "{}"),
            ],
            config,
        )
        .unwrap();
        let (status, headers, body) = ask(&r, "GET", "/ucwa/x").await;
        assert_eq!(status, 200);
        assert_eq!(body, r#"{"href":"http:\/\/127.0.0.1:9\/ucwa"}"#);
        assert_eq!(headers["location"], "http://127.0.0.1:9/ucwa/x");
        assert_eq!(headers["content-length"], body.len().to_string().as_str());

        let (status, _, body) = ask(&r, "GET", "/app/events?ack=2&timeout=1").await;
        assert_eq!(status, 200);
        assert!(body.contains(r#""sender":[]"#), "{body}");

        let (status, headers, body) = ask(&r, "GET", "/ucwa/y").await;
        assert_eq!(status, 404);
        assert_eq!(headers["x-ucwa-replay"], "miss");
        assert!(body.contains(r#""subcode":"ReplayMiss""#), "{body}");
        assert!(body.contains(r#""differs":["path"]"#), "{body}");
        assert_eq!(r.report().played, 1);
        assert_eq!(r.unplayed()[0].seq, 2);
    }

    #[test]
    fn finds_the_placeholder_in_authorization() {
        assert_eq!(
            credential_placeholder("Bearer cwt=REDACTED-12"),
            Some("REDACTED-12")
        );
        assert_eq!(credential_placeholder("Bearer cwt=REDACTED-"), None);
        assert_eq!(credential_placeholder("Bearer cwt=AAEB"), None);
    }
}
