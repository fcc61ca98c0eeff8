//! A UCWA front-end simulator: what every test (and `ucwa-replay simulate`) talks to, since
//! no Skype for Business server is reachable from here or from CI.
//!
//! It behaves like a quiet Skype for Business front-end in the sign-in, application,
//! events-feed and instant-messaging flows, in JSON (default) or XML (`Accept:
//! application/xml` or `application/vnd.microsoft.com.ucwa+xml`; the content type echoes
//! what was asked), and it is deterministic: with the same [`SimConfig::seed`] and the same
//! sequence of requests every status, header and body is identical byte for byte. Ids,
//! tokens and etags come from a seeded stream drawn only by state-changing requests; the
//! `Date` header and message timestamps from a simulated clock that starts at 2024-01-01 and
//! advances one second per non-GET request; `X-MS-Correlation-Id` from the request itself.
//! So a P-GET held across other requests (as every real client does) changes no bytes.
//!
//! # Signing in
//! - `GET /` or `GET /autodiscover/autodiscoverservice.svc/root`: `_links.user` (absolute,
//!   built from the request's `Host`).
//! - `GET /Autodiscover/AutodiscoverService.svc/root/oauth/user` without a token: `401` with
//!   the `Bearer` and `MsRtcOAuth href="…/WebTicket/oauthtoken"` challenges.
//! - `POST /WebTicket/oauthtoken`, form `grant_type=password&username=alice@contoso.com&password=Pa55w0rd!`:
//!   any well-formed username works, the password is always [`PASSWORD`] (`Pa55w0rd!`).
//!   Add `scope=User.ReadWrite` (space- or comma-separated) for a reduced-scope token: a
//!   token with neither `Conversations.Initiate` nor `Conversations.Receive` gets `403` on
//!   every conversation resource. Without `scope` the token has [`DEFAULT_SCOPES`].
//! - Every `/ucwa/…` request needs `Authorization: Bearer cwt=…` of an issued token.
//!
//! # UCWA resources
//! `POST /ucwa/oauth/v1/applications` and then everything linked from the application:
//! me (`makeMeAvailable`, `reportMyActivity`), people, onlineMeetings, policies,
//! communication, conversations, conversation (GET, DELETE), participants, participant /
//! localParticipant, participantMessaging, messaging (`sendMessage`, `stopMessaging`,
//! `setIsTyping`, `typingParticipants`), messages, message, messagingInvitation
//! (startMessaging, accept, decline), presence / note / location of me, contacts and
//! their presence, and the events feed with full P-GET semantics (docs/UCWA.md, "The events feed"). An
//! outgoing invitation is accepted by the remote side at once. The `batch` link takes `multipart/batching` requests (parts `application/http; msgtype=request`),
//! answered part by part; the events feed and nested batches are refused inside a batch.
//!
//! # The clock option
//! [`SimConfig::time_scale`] multiplies every wait: a P-GET's `timeout` (clamped to
//! 180–1800 s as on a real server) lasts `timeout × time_scale` real seconds. Tests use
//! `0.001` (a 180 s timeout releases after 180 ms); the CLI flag is `--time-scale`.
//!
//! # Control API (same listener, loopback peers only, else `403`)
//! JSON bodies; `app` (application id) defaults to the latest application, `conversation`
//! (id or href) to its latest conversation.
//! - `GET /_sim/state`: applications, conversations, invitations, participants (ids and hrefs).
//! - `POST /_sim/invite` `{"from":"bob@contoso.com","name":"Bob","subject":"","message":"Hi"}`:
//!   a remote user invites the user to IM (needs `makeMeAvailable` first). Answers
//!   `{"conversation":href,"invitation":href,"accept":href,"decline":href}`.
//! - `POST /_sim/join` `{"participant":"carol@contoso.com"}`: the participant (added if new)
//!   joins messaging: participantMessaging `added`.
//! - `POST /_sim/update` `{"participant":…}`: participantMessaging `updated`.
//! - `POST /_sim/leave` `{"participant":…}`: participantMessaging `deleted`.
//!   (`participant` defaults to the first remote participant in messaging.)
//! - `POST /_sim/message` `{"from":"bob@contoso.com","text":"Hi","html":false}`: an incoming
//!   message (message `completed`, `plainMessage`/`htmlMessage` data URI).
//! - `POST /_sim/errors` `{"method":"GET","rel":"participantMessaging","status":409,"subcode":"AlreadyExists","message":"…","times":1}`
//!   (or `"path":"/ucwa/oauth/v1/…"` instead of `rel`): the next matching request (after the
//!   token check) gets that UCWA error in its representation; `DELETE /_sim/errors` clears.
//!   The rel is the one UCWA links the resource by (`localParticipant` for the user's own
//!   participant, `startMessaging`, `stopMessaging`, `sendMessage` for POST messages,
//!   `messages` for GET, `accept`, `events`, …; `root`, `user`, `oauthtoken` for sign-in).
//!
//! # XML events
//! `<events href><link rel="next"/><sender rel href><added rel href title?>` with an
//! `<in rel href/>` child, an embedded `<resource>`, a `status="Success"` attribute and a
//! `<reason>` child where the JSON has `in`, `_embedded`, `status` and `reason`.
//!
//! Answers are JSON; failures are UCWA error bodies (404 no such application/conversation,
//! 409 wrong state).

mod auth;
mod batch;
mod clock;
mod control;
mod exchange;
mod feed;
mod im;
mod render;
mod resources;
mod routes;
mod state;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use http::{HeaderName, HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use tokio::net::TcpListener;

pub use auth::{DEFAULT_SCOPES, PASSWORD};

use crate::body::{Body, full};
use crate::serve::{BackgroundServer, CancellationToken, ConnInfo, DEFAULT_DRAIN, Limits};
use exchange::{Fail, Negotiated, Reply, Req};
use state::State;

/// The largest request body the simulator reads (UCWA bodies are a few kilobytes).
const MAX_BODY: usize = 1 << 20;

/// What a simulator is started with.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Seeds every id, token and etag.
    pub seed: u64,
    /// Real seconds per simulated second of waiting (P-GET timeouts); `0.001` in tests.
    pub time_scale: f64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 1,
            time_scale: 1.0,
        }
    }
}

impl SimConfig {
    /// A simulated duration in real time.
    pub fn scaled(&self, d: Duration) -> Duration {
        let scale = if self.time_scale.is_finite() && self.time_scale >= 0.0 {
            self.time_scale
        } else {
            1.0
        };
        Duration::try_from_secs_f64(d.as_secs_f64() * scale).unwrap_or(d)
    }
}

/// The shared state of one running simulator.
#[derive(Debug)]
pub(crate) struct Sim {
    config: SimConfig,
    state: Mutex<State>,
    shutdown: CancellationToken,
}

impl Sim {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere must not take the simulator down with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn handle(self: Arc<Self>, req: Request<Incoming>, info: ConnInfo) -> Response<Body> {
        // Date and correlation id are fixed on arrival and depend on as little ordering as
        // possible, so that a P-GET released concurrently with other requests cannot change
        // their bytes: the clock advances only for requests that change state, and the
        // correlation id derives from the request itself (and how often it was seen).
        let stamp = {
            let mut state = self.lock();
            let now = if matches!(*req.method(), http::Method::GET | http::Method::HEAD) {
                state.clock.now()
            } else {
                state.clock.tick()
            };
            let key = format!("{} {}", req.method(), req.uri());
            (clock::http_date(now), state.correlation_id(&key))
        };
        let (parts, body) = req.into_parts();
        let neg = Negotiated::from_accept(
            parts
                .headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok()),
        );
        let body = match Limited::new(body, MAX_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(err) => {
                tracing::debug!(%err, "request body unreadable");
                let fail = Fail::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    None,
                    "The request body is too large or was cut off.",
                );
                return self.finish(Reply::error(&neg, &error_body(fail)), stamp);
            }
        };
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string)
            .or_else(|| parts.uri.authority().map(|a| a.to_string()))
            .unwrap_or_else(|| info.local.to_string());
        let req = Req {
            method: parts.method,
            path: parts.uri.path().to_string(),
            query: parts.uri.query().map(str::to_string),
            headers: parts.headers,
            body,
            origin: format!("http://{host}"),
            neg,
        };
        tracing::debug!(method = %req.method, path = %req.path, "simulator request");
        let reply = match self.route(&req, info).await {
            Ok(reply) => reply,
            Err(fail) => fail_reply(&req, fail),
        };
        self.finish(reply, stamp)
    }

    async fn route(self: &Arc<Self>, req: &Req, info: ConnInfo) -> exchange::Handled {
        let path = req.path.as_str();
        if path == "/_sim" || path.starts_with("/_sim/") {
            if !is_loopback(info.peer) {
                return Err(Fail::new(
                    StatusCode::FORBIDDEN,
                    None,
                    "The control API only answers loopback clients.",
                ));
            }
            return control::handle(&mut self.lock(), req);
        }
        if path
            .get(..6)
            .is_some_and(|p| p.eq_ignore_ascii_case("/ucwa/"))
        {
            return routes::handle(self, req).await;
        }
        let mut state = self.lock();
        let rel = if auth::is_root_path(path) {
            "root"
        } else if auth::is_user_path(path) {
            "user"
        } else if auth::is_token_path(path) {
            "oauthtoken"
        } else {
            "unknown"
        };
        if let Some(err) = control::take_injection(&mut state, &req.method, Some(rel), path) {
            return Err(Fail::Ucwa(Box::new(err)));
        }
        let get = req.method == http::Method::GET;
        match rel {
            "root" if get => auth::root(req),
            "user" if get => auth::user(&state, req),
            "oauthtoken" if req.method == http::Method::POST => auth::issue_token(&mut state, req),
            "root" | "user" => Err(Fail::Method(&["GET"])),
            "oauthtoken" => Err(Fail::Method(&["POST"])),
            _ => Err(Fail::not_found("The resource does not exist.")),
        }
    }

    /// Add the headers every response carries (`stamp`: the Date and correlation id the
    /// request got on arrival).
    fn finish(&self, reply: Reply, stamp: (String, String)) -> Response<Body> {
        let (date, correlation) = stamp;
        let mut resp = Response::new(full(reply.body));
        *resp.status_mut() = reply.status;
        let headers = resp.headers_mut();
        // hyper adds a wall-clock Date unless one is present: always set ours.
        headers.insert(
            header::DATE,
            HeaderValue::from_str(&date)
                .unwrap_or(HeaderValue::from_static("Mon, 01 Jan 2024 00:00:00 GMT")),
        );
        let mut has_cache_control = false;
        for (name, value) in reply.headers {
            has_cache_control |= name == header::CACHE_CONTROL;
            match HeaderValue::from_str(&value) {
                Ok(v) => {
                    headers.append(name, v);
                }
                Err(err) => tracing::warn!(%name, %err, "dropped an unencodable header"),
            }
        }
        if !has_cache_control {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        }
        headers.insert(
            HeaderName::from_static("x-ms-server-fqdn"),
            HeaderValue::from_static("SIMFE01.contoso.com"),
        );
        if let Ok(v) = HeaderValue::from_str(&correlation) {
            headers.insert(HeaderName::from_static("x-ms-correlation-id"), v);
        }
        resp
    }
}

/// The response for a failed request.
fn fail_reply(req: &Req, fail: Fail) -> Reply {
    match fail {
        Fail::Unauthorized => auth::unauthorized(req, false),
        Fail::Method(allowed) => Reply::error(
            &req.neg,
            &crate::ucwa::ErrorBody::new(
                StatusCode::METHOD_NOT_ALLOWED,
                None,
                format!("{} is not allowed on this resource.", req.method),
            ),
        )
        .header(header::ALLOW, allowed.join(", ")),
        Fail::Ucwa(err) => Reply::error(&req.neg, &err),
    }
}

/// Whether a peer may use the control API (IPv4-mapped IPv6 loopback counts).
fn is_loopback(peer: SocketAddr) -> bool {
    peer.ip().to_canonical().is_loopback()
}

fn error_body(fail: Fail) -> crate::ucwa::ErrorBody {
    match fail {
        Fail::Ucwa(e) => *e,
        other => crate::ucwa::ErrorBody::new(StatusCode::BAD_REQUEST, None, other.to_string()),
    }
}

/// Serve the simulator on `listener` until `shutdown` fires. Held P-GETs are released at
/// once (with an empty batch) when it does.
pub async fn run(listener: TcpListener, config: SimConfig, shutdown: CancellationToken) {
    run_with_limits(listener, config, Limits::new(), shutdown).await
}

/// [`run`] with the listener's [`Limits`] (`--header-timeout`, `--max-connections`).
pub async fn run_with_limits(
    listener: TcpListener,
    config: SimConfig,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let sim = Arc::new(Sim {
        state: Mutex::new(State::new(config.seed)),
        config,
        shutdown: shutdown.clone(),
    });
    let handler = move |req: Request<Incoming>, info: ConnInfo| {
        let sim = sim.clone();
        sim.handle(req, info)
    };
    crate::serve::serve_with(listener, None, handler, shutdown, DEFAULT_DRAIN, limits).await;
}

/// A simulator on its own thread and runtime on `127.0.0.1:0`, stopped when dropped: the
/// upstream of in-process tests.
#[derive(Debug)]
pub struct SimServer {
    server: BackgroundServer,
}

impl SimServer {
    pub fn start(config: SimConfig) -> std::io::Result<SimServer> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let server = BackgroundServer::start("ucwa-sim", addr, move |listener, token| {
            run(listener, config, token)
        })?;
        Ok(SimServer { server })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Stop now (dropping does the same).
    pub fn stop(self) {
        self.server.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_api_is_for_loopback_peers_only() {
        assert!(is_loopback("127.0.0.1:5".parse().unwrap()));
        assert!(is_loopback("[::1]:5".parse().unwrap()));
        assert!(is_loopback("[::ffff:127.0.0.1]:5".parse().unwrap()));
        assert!(!is_loopback("10.0.0.2:5".parse().unwrap()));
        assert!(!is_loopback("[::ffff:10.0.0.2]:5".parse().unwrap()));
    }

    #[test]
    fn time_scale_shortens_waits() {
        let c = SimConfig {
            seed: 0,
            time_scale: 0.001,
        };
        assert_eq!(
            c.scaled(Duration::from_secs(180)),
            Duration::from_millis(180)
        );
        let bad = SimConfig {
            seed: 0,
            time_scale: f64::NAN,
        };
        assert_eq!(bad.scaled(Duration::from_secs(3)), Duration::from_secs(3));
    }
}
