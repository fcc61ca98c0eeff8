//! The replay server: reads a request, asks the [`Replayer`] what answers it, waits as told
//! (pacing, a held P-GET at the end of the feed, an injected delay) and writes the answer —
//! byte for byte what the recording client got, with the recorded origins rewritten to the
//! replay's own — or the injected fault instead. Requests under `/_replay/` go to the
//! control API ([`super::control`]). [`run`] serves a replayer on a listener the caller
//! bound (mini-redis style); [`run_with`] also forwards what the recording cannot answer
//! (spy mode, composed above this module).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::Either;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::control;
use super::fault::FaultAction;
use super::feed;
use super::hold::Hold;
use super::miss::{MISS_HEADER, miss_response};
use super::options::FeedEnd;
use super::pacing::{Waited, wait};
use super::replayer::{Answer, Decided, Replayer};
use super::report::{Forwarded, Rejected, ReplayReport};
use super::session::Loaded;
use crate::body::{Body, BoxError, full};
use crate::error::Error;
use crate::serve::{
    CloseConnection, ConnInfo, DEFAULT_DRAIN, Limits, OnRefused, Refused, serve_observed,
};
use crate::ucwa::feed::is_events_request;
use crate::ucwa::{ErrorBody, Representation, error_response};

/// Largest request body the replayer reads (a UCWA request body is a few KiB).
const MAX_REQUEST_BODY: usize = 16 * 1024 * 1024;

/// The answer of a [`Fallback`].
pub type Forwarding = Pin<Box<dyn Future<Output = Response<Body>> + Send>>;

/// What answers the requests the recording cannot (spy mode, `--fallback`). The replay
/// module only calls it; the forwarding and recording live above it (`crate::spy`), since
/// replay never reaches into the proxy.
pub trait Fallback: Send + Sync + 'static {
    /// Forward `req` (its body read, as the client sent it) and return the live answer.
    fn forward(&self, req: Request<Bytes>, conn: ConnInfo) -> Forwarding;
}

impl Replayer {
    /// The origin rewriter for a replay of the current session reachable at `public_base`
    /// (`http://127.0.0.1:PORT`).
    pub fn rewriter(&self, public_base: &str) -> crate::recording::OriginRewriter {
        self.loaded().rewriter(public_base)
    }

    /// Answer one request whose body has been read. `public_base` is this replay's own
    /// URL (recorded origins are rewritten to it); `shutdown` releases held P-GETs. The
    /// caller is trusted like a loopback client (the control API answers it).
    pub async fn respond(
        &self,
        req: Request<Bytes>,
        public_base: &str,
        shutdown: &CancellationToken,
    ) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let begun = self.begin(parts, body, public_base, None, false);
        self.finish(begun, public_base, shutdown, None).await
    }

    /// Decide a request (its body read) and everything about its answer that needs no
    /// waiting. The request's parts are dropped here unless it is forwarded: hyper's read
    /// buffer is shared with them, and once they are gone the connection reads its next
    /// request into the same buffer instead of a new one.
    fn begin(
        &self,
        parts: http::request::Parts,
        body: Bytes,
        public_base: &str,
        conn: Option<ConnInfo>,
        forwarding: bool,
    ) -> Begun {
        if parts.uri.path().starts_with(control::PREFIX) {
            return Begun::Now(control::handle(self, &parts, &body, conn.map(|c| c.peer)));
        }
        let decided = self.decide(&parts, &body, forwarding);
        let repr = decided.key.representation;
        let path = parts.uri.path();
        let query = parts.uri.query();
        // A newer P-GET on a feed releases the one held there (docs/UCWA.md).
        let hold = is_events_request(parts.method.as_str(), path)
            .then(|| self.holds.arrive(path.to_string()));
        let mut fault_delay = Duration::ZERO;
        if let Some(rule) = &decided.fault {
            match rule.action() {
                FaultAction::Error { status, subcode } => {
                    return Begun::Now(fault_error(
                        *status,
                        subcode.as_deref(),
                        &parts.headers,
                        repr,
                    ));
                }
                FaultAction::Reset => {
                    tracing::info!(rule = %rule, "replay: injected reset");
                    let mut resp = Response::new(crate::body::empty());
                    resp.extensions_mut().insert(CloseConnection);
                    return Begun::Now(resp);
                }
                FaultAction::Truncate => {
                    let whole = self.unpaced(&decided, path, query, public_base);
                    return Begun::Truncated(whole);
                }
                FaultAction::Delay(d) => fault_delay = *d,
            }
        }
        let then = match &decided.answer {
            Answer::Serve(entry) => {
                let recorded = &decided.loaded.index.entries()[*entry];
                Then::Recorded {
                    entry: *entry,
                    delay: self.config.pace.delay(recorded.duration_us),
                }
            }
            Answer::FeedEnd { ack } => Then::Ready {
                delay: match self.config.feed_end {
                    FeedEnd::Hold => feed::request_timeout(query),
                    FeedEnd::Empty => Duration::ZERO,
                },
                resp: feed_end(&decided.loaded, path, query, *ack, repr),
            },
            Answer::Miss(miss) => {
                tracing::warn!(
                    method = %miss.method,
                    target = %miss.path,
                    query = miss.query.as_deref().unwrap_or(""),
                    closest = ?miss.closest.iter().map(|c| (c.seq, c.differs.join("+"))).collect::<Vec<_>>(),
                    "replay miss: {}",
                    miss.message
                );
                Then::Ready {
                    delay: Duration::ZERO,
                    resp: miss_response(miss),
                }
            }
            Answer::Forward => Then::Forward(Box::new((parts, body, conn))),
        };
        Begun::Later(Later {
            decided,
            hold,
            fault_delay,
            then,
        })
    }

    /// Wait as [`Self::begin`] decided (an injected delay, pacing, a held P-GET), then answer.
    async fn finish(
        &self,
        begun: Begun,
        public_base: &str,
        shutdown: &CancellationToken,
        fallback: Option<&dyn Fallback>,
    ) -> Response<Body> {
        let later = match begun {
            Begun::Now(resp) => return resp,
            Begun::Truncated(whole) => return truncated(whole).await,
            Begun::Later(later) => later,
        };
        let Later {
            decided,
            hold,
            fault_delay,
            then,
        } = later;
        let repr = decided.key.representation;
        let replaced = hold.as_ref().map(|h| &h.replaced);
        let delay = match &then {
            Then::Recorded { delay, .. } | Then::Ready { delay, .. } => *delay,
            Then::Forward(_) => Duration::ZERO,
        };
        for delay in [fault_delay, delay] {
            if wait(delay, shutdown, replaced).await == Waited::Replaced {
                self.note_replaced(&decided);
                return pget_replaced(repr);
            }
        }
        match then {
            Then::Recorded { entry, .. } => recorded_response(&decided, entry, public_base),
            Then::Ready { resp, .. } => resp,
            Then::Forward(forwarded) => {
                let (parts, body, conn) = *forwarded;
                let Some(fallback) = fallback else {
                    unreachable!("forwarding is only decided with a fallback");
                };
                let conn = conn.unwrap_or(ConnInfo {
                    peer: SocketAddr::from(([127, 0, 0, 1], 0)),
                    local: SocketAddr::from(([127, 0, 0, 1], 0)),
                    tls: false,
                });
                let resp = fallback
                    .forward(Request::from_parts(parts, body), conn)
                    .await;
                let status = resp.status().as_u16();
                tracing::info!(
                    method = %decided.key.method,
                    target = %decided.key.path,
                    status,
                    "replay: not in the recording; forwarded to the live server (spy mode)"
                );
                let logged = self.logged(&decided);
                self.note_forwarded(
                    &decided,
                    Forwarded {
                        method: decided.key.method.clone(),
                        path: logged
                            .as_ref()
                            .map_or_else(|| decided.key.path.clone(), |l| l.path.clone()),
                        query: logged.and_then(|l| l.query),
                        representation: repr,
                        status,
                    },
                );
                resp
            }
        }
    }

    /// What would answer at once, without pacing (what a `truncate` cuts).
    fn unpaced(
        &self,
        decided: &Decided,
        path: &str,
        query: Option<&str>,
        public_base: &str,
    ) -> Response<Body> {
        let repr = decided.key.representation;
        match &decided.answer {
            Answer::Serve(entry) => recorded_response(decided, *entry, public_base),
            Answer::FeedEnd { ack } => feed_end(&decided.loaded, path, query, *ack, repr),
            Answer::Miss(miss) => miss_response(miss),
            Answer::Forward => miss_response(&super::miss::Miss {
                method: decided.key.method.clone(),
                path: decided.key.path.clone(),
                query: None,
                representation: repr,
                credential: None,
                match_key: decided.key.to_string(),
                reason: super::miss::MissReason::NoMatch,
                message: "not in the recording".into(),
                closest: Vec::new(),
            }),
        }
    }

    /// Answer a request from hyper. One without a body (nearly every UCWA request is a
    /// GET) is decided at once, before hyper first polls the answer, so its parts are gone
    /// by the time hyper reads on ([`Self::begin`]), and answered at once when there is
    /// nothing to wait for ([`Later::at_once`]) nor, on h2, to read from the file; one with
    /// a body once the body is read.
    /// The control API is left to the answer's own task, and from there to the blocking
    /// pool: switching sessions loads an index, which must hold up neither an h2
    /// connection's other streams nor, on a replay with one worker thread (`--threads`),
    /// every other connection.
    fn handle(
        self: Arc<Self>,
        req: Request<hyper::body::Incoming>,
        info: ConnInfo,
        shutdown: CancellationToken,
        fallback: Option<Arc<dyn Fallback>>,
    ) -> impl Future<Output = Response<Body>> + Send + 'static {
        let public_base = public_base(info.local, req.headers());
        // hyper calls the service of an h2 connection from the connection's own task and
        // spawns each stream's answer: a row read here would hold up the other streams.
        let may_read = req.version() != http::Version::HTTP_2;
        let begun = if hyper::body::Body::is_end_stream(req.body())
            && !req.uri().path().starts_with(control::PREFIX)
        {
            let (parts, _) = req.into_parts();
            Ok(self.begin(
                parts,
                Bytes::new(),
                &public_base,
                Some(info),
                fallback.is_some(),
            ))
        } else {
            Err(req)
        };
        // Nothing to wait for (most answers): answered here, so that the future hyper keeps
        // and moves is a response, not the state machine below (3.4 KB, copied several
        // times per request), which is boxed once for the answers that wait or read a body.
        let begun = match begun {
            Ok(Begun::Now(resp)) => return Either::Left(std::future::ready(resp)),
            Ok(Begun::Later(later)) => match later.at_once(&public_base, may_read) {
                Ok(resp) => return Either::Left(std::future::ready(resp)),
                Err(later) => Ok(Begun::Later(later)),
            },
            other => other,
        };
        Either::Right(Box::pin(async move {
            let begun = match begun {
                Ok(begun) => begun,
                Err(req) => {
                    self.read_then_begin(req, &public_base, info, fallback.is_some())
                        .await
                }
            };
            self.finish(begun, &public_base, &shutdown, fallback.as_deref())
                .await
        }))
    }

    /// Read the body of a hyper request, then [`Self::begin`], or answer the control API
    /// on the blocking pool.
    async fn read_then_begin(
        self: &Arc<Self>,
        req: Request<hyper::body::Incoming>,
        public_base: &str,
        info: ConnInfo,
        forwarding: bool,
    ) -> Begun {
        let repr = Representation::from_accept(
            req.headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok()),
        );
        let (parts, body) = req.into_parts();
        let limited = http_body_util::Limited::new(body, MAX_REQUEST_BODY);
        match limited.collect().await {
            Ok(collected) if parts.uri.path().starts_with(control::PREFIX) => {
                let me = Arc::clone(self);
                let body = collected.to_bytes();
                Begun::Now(
                    on_blocking_pool(repr, move || {
                        control::handle(&me, &parts, &body, Some(info.peer))
                    })
                    .await,
                )
            }
            Ok(collected) => self.begin(
                parts,
                collected.to_bytes(),
                public_base,
                Some(info),
                forwarding,
            ),
            Err(err) => {
                let err = ErrorBody::new(
                    StatusCode::BAD_REQUEST,
                    None,
                    format!("request body could not be read: {err}"),
                );
                Begun::Now(error_response(&err, repr))
            }
        }
    }
}

/// `answer` run on the blocking pool. A panic there (a bug) is answered `500` with what it
/// said, in the client's representation, instead of a connection closed without a word.
async fn on_blocking_pool(
    repr: Representation,
    answer: impl FnOnce() -> Response<Body> + Send + 'static,
) -> Response<Body> {
    tokio::task::spawn_blocking(answer)
        .await
        .unwrap_or_else(|err| {
            let err = ErrorBody::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
                format!("the control request failed: {err}"),
            );
            error_response(&err, repr)
        })
}

/// A request's answer as far as [`Replayer::begin`] could take it without waiting. The
/// large variant is not boxed: most answers are finished at once ([`Later::at_once`]) and
/// never go into a future, and the rest go into one that is boxed whole.
#[allow(clippy::large_enum_variant)]
enum Begun {
    /// Answered at once: the control API, an injected error or reset, a body unread.
    Now(Response<Body>),
    /// An injected `truncate` of this answer.
    Truncated(Response<Body>),
    /// Answered after waiting (possibly for nothing): see [`Later`].
    Later(Later),
}

/// What is left of a request once decided: waits, then the answer.
struct Later {
    decided: Decided,
    /// Its place on its events feed, when it is a P-GET: a newer one cuts the waits short.
    hold: Option<Hold>,
    /// An injected delay, first.
    fault_delay: Duration,
    then: Then,
}

impl Later {
    /// The answer now, when there is nothing to wait for (no injected delay, no pacing, no
    /// end of the feed held) and it is not forwarded: what [`Replayer::finish`] would answer
    /// after waits of zero. A recorded answer that may have to be read from the file is
    /// answered now only if `may_read`. Otherwise `self`, for it: large, but moved only on
    /// its way into the boxed future, and boxing it here would be one more allocation.
    #[allow(clippy::result_large_err)]
    fn at_once(self, public_base: &str, may_read: bool) -> Result<Response<Body>, Later> {
        if !self.fault_delay.is_zero() {
            return Err(self);
        }
        match self.then {
            Then::Recorded { entry, delay } if delay.is_zero() && may_read => {
                Ok(recorded_response(&self.decided, entry, public_base))
            }
            Then::Ready { resp, delay } if delay.is_zero() => Ok(resp),
            then => Err(Later { then, ..self }),
        }
    }
}

/// How a decided request is answered.
enum Then {
    /// The recorded answer, prepared after its paced `delay` (an answer read for a P-GET
    /// that is replaced meanwhile is never read).
    Recorded { entry: usize, delay: Duration },
    /// An answer known now, sent after `delay`: the end of the feed (held until the
    /// request's timeout), a miss.
    Ready {
        resp: Response<Body>,
        delay: Duration,
    },
    /// Spy mode: to the live server, as the client sent it.
    Forward(Box<(http::request::Parts, Bytes, Option<ConnInfo>)>),
}

/// The recorded response of the entry at `at`, byte for byte, with the recorded origins
/// rewritten to ours.
fn recorded_response(decided: &Decided, at: usize, public_base: &str) -> Response<Body> {
    let (loaded, key) = (&decided.loaded, &decided.key);
    // Epoch 0 is the first pass: no reset or switch yet.
    let rewound = decided.epoch > 0;
    let entry = &loaded.index.entries()[at];
    let answer = match entry.status {
        Some(_) => loaded
            .prepared(at, public_base, rewound)
            .map(|p| match Arc::try_unwrap(p) {
                Ok(own) => own.into_response(),
                Err(kept) => kept.response(),
            }),
        None => loaded.response(entry).map(|parts| {
            // The client got no response from upstream while recording: the recording
            // proxy answered with its own 502, which is what we answer with too.
            let message = parts
                .error
                .unwrap_or_else(|| "no response was recorded".to_string());
            let err = ErrorBody::new(StatusCode::BAD_GATEWAY, Some("UpstreamFailed"), message);
            error_response(&err, key.representation)
        }),
    };
    answer.unwrap_or_else(|e| {
        let message = format!(
            "the recorded answer (#{}) could not be read: {}",
            entry.seq,
            crate::error::Chain(&e)
        );
        tracing::error!("replay: {message}");
        let err = ErrorBody::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            Some("ReplayUnreadable"),
            message,
        );
        error_response(&err, key.representation)
    })
}

/// The empty batch at the end of the events feed.
fn feed_end(
    loaded: &Loaded,
    path: &str,
    query: Option<&str>,
    ack: i64,
    repr: Representation,
) -> Response<Body> {
    let body = feed::empty_batch(path, query, ack, repr);
    let content_type = loaded
        .feed_content_type(path, repr)
        .unwrap_or_else(|| repr.default_content_type().to_string());
    let mut resp = Response::new(full(body));
    if let Ok(v) = HeaderValue::from_str(&content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

/// An injected UCWA error: the simulator's body, with the content type the client asked
/// for echoed back.
fn fault_error(
    status: StatusCode,
    subcode: Option<&str>,
    headers: &HeaderMap,
    repr: Representation,
) -> Response<Body> {
    let err = ErrorBody::injected(status, subcode);
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let (text, _) = err.render(repr);
    let mut resp = Response::new(full(text));
    *resp.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(&crate::ucwa::media::answer_content_type(accept)) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp.headers_mut()
        .insert(MISS_HEADER, HeaderValue::from_static("fault"));
    resp
}

/// A held P-GET released by a newer one: `409 Conflict/PGetReplaced`, as a front-end says it.
fn pget_replaced(repr: Representation) -> Response<Body> {
    let err = ErrorBody::new(
        StatusCode::CONFLICT,
        Some("PGetReplaced"),
        "This pending GET was replaced by a newer one on the same events feed.",
    );
    error_response(&err, repr)
}

/// `whole` with the full `Content-Length` but half its body, then the connection closed.
async fn truncated(whole: Response<Body>) -> Response<Body> {
    let (mut parts, body) = whole.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let half = bytes.slice(..bytes.len() / 2);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    parts
        .headers
        .insert(MISS_HEADER, HeaderValue::from_static("fault"));
    // The half goes out first (hyper flushes while the body is pending), then the body
    // breaks and hyper closes the connection.
    let half = futures_util::stream::iter([Ok::<_, BoxError>(http_body::Frame::data(half))]);
    let broken = futures_util::stream::once(async {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        Err::<http_body::Frame<Bytes>, BoxError>(
            "injected truncate: the connection is closed mid-body".into(),
        )
    });
    let body = crate::body::boxed(http_body_util::StreamBody::new(
        futures_util::StreamExt::chain(half, broken),
    ));
    Response::from_parts(parts, body)
}

/// This replay's own URL as the client reached it: the listener's address, or the `Host`
/// the client used when listening on all interfaces.
fn public_base(local: SocketAddr, headers: &HeaderMap) -> Arc<str> {
    /// What a base URL was made from.
    #[derive(PartialEq)]
    enum From {
        Host(HeaderValue),
        Local(SocketAddr),
    }
    thread_local! {
        /// The last base URL this thread made: every request of a connection, and nearly
        /// every request of a replay, has the same one, and formatting an address costs
        /// about as much as finding the recorded answer.
        static LAST: std::cell::RefCell<Option<(From, Arc<str>)>> = const { std::cell::RefCell::new(None) };
    }
    let host = local
        .ip()
        .is_unspecified()
        .then(|| headers.get(header::HOST))
        .flatten()
        .filter(|v| v.to_str().is_ok());
    let from = match host {
        Some(host) => From::Host(host.clone()),
        None => From::Local(local),
    };
    LAST.with_borrow_mut(|last| {
        if let Some((made_from, base)) = last.as_ref()
            && *made_from == from
        {
            return base.clone();
        }
        let base: Arc<str> = match &from {
            From::Host(host) => format!("http://{}", host.to_str().unwrap_or_default()),
            From::Local(local) => format!("http://{local}"),
        }
        .into();
        *last = Some((from, base.clone()));
        base
    })
}

/// What the report says of a request the HTTP layer refused.
fn rejected(refused: &Refused) -> Rejected {
    const MAX_TARGET: usize = 200;
    let head = String::from_utf8_lossy(&refused.head);
    let line = head.lines().next().unwrap_or("");
    let mut words = line.split(' ');
    let first = words.next().unwrap_or("");
    let method = (!first.is_empty() && first.bytes().all(|b| b.is_ascii_uppercase()))
        .then(|| first.to_string());
    let target = if method.is_some() {
        words.next().unwrap_or("")
    } else {
        line
    };
    let mut shown: String = target.chars().take(MAX_TARGET).collect();
    if shown.len() < target.len() || refused.line_len.is_none_or(|n| n > refused.head.len()) {
        shown.push('…');
    }
    Rejected {
        status: refused.status,
        reason: refused.reason.to_string(),
        method,
        target: shown,
        request_line_bytes: refused.line_len,
    }
}

/// Serve `replayer` on `listener` until `shutdown` fires, then write the `--report` file (if
/// configured) and return the final report. Held P-GETs are released at once on shutdown.
pub async fn run(
    listener: TcpListener,
    replayer: Arc<Replayer>,
    shutdown: CancellationToken,
) -> Result<ReplayReport, Error> {
    run_with(listener, replayer, None, Limits::new(), shutdown).await
}

/// [`run`], with requests the recording cannot answer handed to `fallback` (spy mode), and
/// the listener's [`Limits`] (header-read timeout, connection cap).
pub async fn run_with(
    listener: TcpListener,
    replayer: Arc<Replayer>,
    fallback: Option<Arc<dyn Fallback>>,
    limits: Limits,
    shutdown: CancellationToken,
) -> Result<ReplayReport, Error> {
    let token = shutdown.clone();
    let served = replayer.clone();
    let handler = move |req: Request<hyper::body::Incoming>, info: ConnInfo| {
        let replayer = served.clone();
        let token = token.clone();
        let fallback = fallback.clone();
        replayer.handle(req, info, token, fallback)
    };
    let noted = replayer.clone();
    let on_refused: OnRefused = Arc::new(move |refused: Refused| {
        let r = rejected(&refused);
        tracing::warn!(peer = %refused.peer, status = r.status, "replay: request refused by the HTTP layer: {r}");
        noted.note_rejected(r);
    });
    serve_observed(
        listener,
        None,
        handler,
        shutdown,
        DEFAULT_DRAIN,
        limits,
        Some(on_refused),
    )
    .await;
    Ok(match replayer.write_report()? {
        Some(report) => report,
        None => replayer.report(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::{Exchange, HeaderList, KeyOptions, KeyRequest, SessionInfo};
    use crate::replay::ReplayConfig;

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
    async fn a_control_request_that_panics_is_answered_500() {
        let ok = on_blocking_pool(Representation::Json, || {
            Response::new(crate::body::full(Bytes::from_static(b"done")))
        })
        .await;
        assert_eq!(ok.status(), StatusCode::OK);
        let failed = on_blocking_pool(Representation::Json, || panic!("switch went wrong")).await;
        assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = failed.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(
            text.contains("the control request failed") && text.contains("switch went wrong"),
            "{text}"
        );
    }

    /// A recording file of `exchanges` (kept while the directory lives).
    async fn recording(
        exchanges: impl IntoIterator<Item = Exchange>,
    ) -> (tempfile::TempDir, std::path::PathBuf) {
        use crate::store::{NewSession, StoreWriter};
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("rec.sqlite");
        let writer =
            StoreWriter::create(&db, &NewSession::new("s", "https://fe1.contoso.com")).unwrap();
        let sink = writer.sink();
        for exchange in exchanges {
            sink.submit(exchange);
        }
        drop(sink);
        writer.finish().await.unwrap();
        (dir, db)
    }

    /// Take every exchange out of the recording under a running replay.
    fn forget_rows(db: &std::path::Path) {
        rusqlite::Connection::open(db)
            .unwrap()
            .execute_batch("DELETE FROM events; DELETE FROM exchanges;")
            .unwrap();
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

    /// A replay of a file reads each answer from it when first asked, and keeps it: an
    /// answer already prepared survives its row, one not yet read is a clear 500.
    #[tokio::test]
    async fn answers_come_from_the_file_when_asked() {
        let (_dir, db) = recording(
            [
                exchange(1, "GET", "/ucwa/a", None, r#"{"n":1}"#),
                exchange(2, "GET", "/ucwa/a", None, r#"{"n":2}"#),
            ]
            .into_iter()
            // Far enough on not to be read ahead with the second answer, nor in the window
            // read after those.
            .chain((3..=100).map(|n| exchange(n, "GET", &format!("/ucwa/b{n}"), None, "{}"))),
        )
        .await;

        let r = Replayer::load(&db, None, ReplayConfig::default()).unwrap();
        let (status, headers, body) = ask(&r, "GET", "/ucwa/a").await;
        assert_eq!((status, body.as_str()), (200, r#"{"n":1}"#));
        assert_eq!(headers["location"], "http://127.0.0.1:9/ucwa/x");
        assert_eq!(ask(&r, "GET", "/ucwa/a").await.2, r#"{"n":2}"#);
        forget_rows(&db);
        // Recorded answers used up: the last one again, as prepared before.
        assert_eq!(ask(&r, "GET", "/ucwa/a").await.2, r#"{"n":2}"#);
        let (status, _, body) = ask(&r, "GET", "/ucwa/b100").await;
        assert_eq!(status, 500);
        assert!(body.contains(r#""subcode":"ReplayUnreadable""#), "{body}");
        assert!(body.contains("exchange row 100 is gone"), "{body}");
    }

    #[test]
    fn the_public_base_follows_the_host_and_the_address() {
        let host = |h: &'static str| {
            let mut m = HeaderMap::new();
            m.insert(header::HOST, HeaderValue::from_static(h));
            m
        };
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let one: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let two: SocketAddr = "127.0.0.2:9".parse().unwrap();
        let cases = [
            (any, host("a.test:8080"), "http://a.test:8080"),
            (any, host("a.test:8080"), "http://a.test:8080"),
            (any, host("b.test"), "http://b.test"),
            (any, HeaderMap::new(), "http://0.0.0.0:8080"),
            (one, host("b.test"), "http://127.0.0.1:8080"),
            (one, HeaderMap::new(), "http://127.0.0.1:8080"),
            (two, host("b.test"), "http://127.0.0.2:9"),
            (any, host("a.test:8080"), "http://a.test:8080"),
        ];
        for (local, headers, want) in cases {
            assert_eq!(&*public_base(local, &headers), want);
        }
    }

    #[tokio::test]
    async fn answers_asked_in_recorded_order_are_read_ahead() {
        let (_dir, db) = recording((0..100).map(|n| {
            exchange(
                n + 1,
                "GET",
                &format!("/ucwa/r/{n}"),
                None,
                &format!(r#"{{"n":{n}}}"#),
            )
        }))
        .await;
        let body = |n: usize| format!(r#"{{"n":{n}}}"#);

        // In order: the second answer asked for reads the next READ_AHEAD with it, and the
        // window after those is read on the blocking pool.
        let in_order = Replayer::load(&db, None, ReplayConfig::default()).unwrap();
        // Out of order: each answer is read alone.
        let jumping = Replayer::load(&db, None, ReplayConfig::default()).unwrap();
        for n in [0, 1] {
            assert_eq!(
                ask(&in_order, "GET", &format!("/ucwa/r/{n}")).await.2,
                body(n)
            );
        }
        // 10 twice: an answer served again from memory reads nothing ahead either.
        for n in [50, 10, 10, 70, 30] {
            assert_eq!(
                ask(&jumping, "GET", &format!("/ucwa/r/{n}")).await.2,
                body(n)
            );
        }
        in_order.loaded().settle_reads();
        jumping.loaded().settle_reads();
        forget_rows(&db);
        for n in 2..65 {
            let (status, _, got) = ask(&in_order, "GET", &format!("/ucwa/r/{n}")).await;
            assert_eq!((status, got), (200, body(n)));
        }
        // Reached once the rows were gone: read in vain, so asked for it is read alone.
        let (status, _, got) = ask(&in_order, "GET", "/ucwa/r/65").await;
        assert_eq!(status, 500, "{got}");
        // Nothing was read beyond what the jumping replay asked for.
        for n in [51, 31, 71] {
            let (status, _, got) = ask(&jumping, "GET", &format!("/ucwa/r/{n}")).await;
            assert_eq!(status, 500, "{got}");
        }
    }

    #[tokio::test]
    async fn only_answers_that_can_be_asked_again_are_kept() {
        let (_dir, db) = recording(
            (1..=3).map(|n| exchange(n, "GET", "/ucwa/a", None, &format!(r#"{{"n":{n}}}"#))),
        )
        .await;

        // First pass: the last answer repeats, so it is kept; the others are not.
        let r = Replayer::load(&db, None, ReplayConfig::default()).unwrap();
        for n in 1..=3 {
            assert_eq!(ask(&r, "GET", "/ucwa/a").await.2, format!(r#"{{"n":{n}}}"#));
        }
        // Once rewound, every answer may be asked again: all are kept.
        let again = Replayer::load(&db, None, ReplayConfig::default()).unwrap();
        again.reset();
        for n in 1..=3 {
            assert_eq!(
                ask(&again, "GET", "/ucwa/a").await.2,
                format!(r#"{{"n":{n}}}"#)
            );
        }
        forget_rows(&db);
        assert_eq!(ask(&r, "GET", "/ucwa/a").await.2, r#"{"n":3}"#);
        r.reset();
        let (status, _, body) = ask(&r, "GET", "/ucwa/a").await;
        assert_eq!(status, 500, "{body}");
        again.reset();
        for n in 1..=3 {
            assert_eq!(
                ask(&again, "GET", "/ucwa/a").await.2,
                format!(r#"{{"n":{n}}}"#)
            );
        }
    }
}
