//! Serving HTTP/1.1 and h2 (optionally over TLS) for the simulator, the recording proxy and the
//! replayer, with one shutdown story: stop accepting, let in-flight exchanges finish within a
//! deadline, then return. Servers that park requests (P-GETs) release them themselves when the
//! same [`CancellationToken`] fires.
//!
//! Every listener applies the same [`Limits`] to its clients, so that a slow or hostile one
//! cannot hold it: a request head must arrive within the header-read timeout (the first one
//! counted from the accept, so a silent connection or a half-sent h2 preface is closed too),
//! at most `max_connections` are open at once (a semaphore taken before each accept, as in
//! mini-redis: at the cap new clients wait in the listen queue), and a failed accept (out of
//! file descriptors) backs off instead of spinning, logged once per burst.
//!
//! `OPTIONS *` asks about the server itself, not a resource (RFC 9110 §9.3.7): every listener
//! answers it here, so no handler ever sees an asterisk-form target (the recording proxy
//! once forwarded it to the upstream host's default port).
//!
//! Following mini-redis, the caller binds the listener (port 0 in tests) and owns the token.
//! [`BackgroundServer`] is the wiremock-rs pattern on top: a server on its own thread and
//! runtime, usable from any test, stopped when dropped.

mod limits;
mod sniff;

pub use limits::{DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_MAX_CONNECTIONS, Limits};

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::future::Either;
use http::{Method, StatusCode, Uri, header};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
pub use tokio_util::sync::CancellationToken;

use self::limits::{AcceptBackoff, Burst};
use self::sniff::{Sniff, SniffHandle};
use crate::body::{Body, empty};

/// What a handler knows about the connection a request came on.
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    /// The client's address.
    pub peer: SocketAddr,
    /// The listener's address.
    pub local: SocketAddr,
    /// Whether the connection is TLS.
    pub tls: bool,
}

/// How long in-flight exchanges may take to finish after shutdown starts.
pub const DEFAULT_DRAIN: Duration = Duration::from_secs(10);

/// Bind a TCP listener on `addr` (`host:port`), naming the address when that fails.
pub async fn bind(addr: &str) -> Result<TcpListener, crate::Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| crate::Error::Bind {
            addr: addr.to_string(),
            source,
        })
}

/// Put in a response's extensions to close the connection instead of sending the response
/// (the replayer's injected `reset`): an HTTP/1.1 client sees the connection closed with no
/// answer, an h2 client a reset stream.
#[derive(Debug, Clone, Copy)]
pub struct CloseConnection;

/// The error a handler's [`CloseConnection`] becomes for hyper.
#[derive(Debug, thiserror::Error)]
#[error("connection closed on purpose (an injected reset)")]
struct Closed;

/// A request the HTTP layer refused before any handler saw it: hyper answers a request line
/// longer than 64 KiB with `414` and a head beyond its buffer with `431` on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub peer: SocketAddr,
    /// The status hyper answered with.
    pub status: u16,
    pub reason: &'static str,
    /// The first bytes of the refused request as read off the connection (at most 512).
    pub head: Vec<u8>,
    /// The length of its request line, when its end was read.
    pub line_len: Option<usize>,
}

/// Called for every [`Refused`] request (the replayer reports them).
pub type OnRefused = Arc<dyn Fn(Refused) + Send + Sync>;

/// Serve `listener` with the default [`Limits`] until `shutdown` fires, calling `handler`
/// for every request; see [`serve_with`].
pub async fn serve<H, F>(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    handler: H,
    shutdown: CancellationToken,
    drain: Duration,
) where
    H: Fn(Request<Incoming>, ConnInfo) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    serve_with(listener, tls, handler, shutdown, drain, Limits::new()).await
}

/// Serve `listener` until `shutdown` fires, calling `handler` for every request, within
/// `limits`; at shutdown, in-flight exchanges get `drain` to finish.
///
/// Handlers never fail: request-path errors must already be responses (502, 404 …).
pub async fn serve_with<H, F>(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    handler: H,
    shutdown: CancellationToken,
    drain: Duration,
    limits: Limits,
) where
    H: Fn(Request<Incoming>, ConnInfo) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    serve_observed(listener, tls, handler, shutdown, drain, limits, None).await
}

/// [`serve_with`], also telling `on_refused` about requests the HTTP layer refused on its
/// own.
pub async fn serve_observed<H, F>(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    handler: H,
    shutdown: CancellationToken,
    drain: Duration,
    limits: Limits,
    on_refused: Option<OnRefused>,
) where
    H: Fn(Request<Incoming>, ConnInfo) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let local = match listener.local_addr() {
        Ok(addr) => addr,
        Err(err) => {
            tracing::error!(%err, "listener has no local address");
            return;
        }
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // Without a timer hyper silently disables header-read timeouts (docs/ARCHITECTURE.md,
    // "Traps"). hyper's own timer covers each HTTP/1.1 request head after the first (and so
    // idle keep-alive connections); the first is covered by `connection` below.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    // A zero cap would never accept; the semaphore has a maximum of its own.
    let cap = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let permits = Arc::new(Semaphore::new(cap));
    let mut at_cap = Burst::default();
    let mut failing = Burst::default();
    let mut backoff = AcceptBackoff::default();

    loop {
        // Take a connection's permit before accepting it: at the cap, clients wait in the
        // listen queue rather than being accepted and left unserved.
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => {
                if let Some(run) = at_cap.calm(std::time::Instant::now()) {
                    tracing::info!(
                        cap,
                        waits = run.events,
                        over = ?run.lasted,
                        "below the connection cap again"
                    );
                }
                permit
            }
            Err(_) => {
                if at_cap.event(std::time::Instant::now()) {
                    tracing::warn!(
                        cap,
                        "connection cap reached: new clients wait until a connection closes \
                         (logged once per burst; see --max-connections)"
                    );
                }
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    permit = permits.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break, // never closed
                    },
                }
            }
        };
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    let pause = backoff.pause_after(&err);
                    if pause.is_zero() {
                        tracing::debug!(%err, "a connection failed before it was accepted");
                    } else if failing.event(std::time::Instant::now()) {
                        // Out of file descriptors, most likely: running out must not end
                        // the server, nor fill the log.
                        tracing::warn!(
                            %err,
                            "accept failed: backing off and retrying (logged once per burst)"
                        );
                    }
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(pause) => continue,
                    }
                }
            },
        };
        backoff.succeeded();
        if let Some(run) = failing.calm(std::time::Instant::now()) {
            tracing::info!(
                failed = run.events,
                over = ?run.lasted,
                "accepting connections again"
            );
        }
        let info = ConnInfo {
            peer,
            local,
            tls: tls.is_some(),
        };
        let conn = Conn {
            builder: builder.clone(),
            watcher: graceful.watcher(),
            deadline: Instant::now() + limits.header_read_timeout,
            timeout: limits.header_read_timeout,
            info,
            on_refused: on_refused.clone(),
        };
        let handler = handler.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            // Held for as long as the connection lives.
            let _permit = permit;
            conn.run(stream, tls, handler).await;
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => tracing::debug!("all connections closed"),
        _ = tokio::time::sleep(drain) => tracing::warn!(?drain, "shutdown deadline passed with connections still open"),
    }
}

/// One accepted connection and what it needs to be served.
struct Conn {
    builder: Arc<auto::Builder<TokioExecutor>>,
    watcher: Watcher,
    /// When the first request head must have arrived by.
    deadline: Instant,
    timeout: Duration,
    info: ConnInfo,
    on_refused: Option<OnRefused>,
}

impl Conn {
    /// The TLS handshake (if any), then HTTP until the client or the shutdown ends it.
    async fn run<H, F>(self, stream: TcpStream, tls: Option<tokio_rustls::TlsAcceptor>, handler: H)
    where
        H: Fn(Request<Incoming>, ConnInfo) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = Response<Body>> + Send + 'static,
    {
        let _ = stream.set_nodelay(true);
        let peer = self.info.peer;
        match tls {
            None => self.http(stream, handler).await,
            Some(acceptor) => {
                // The handshake counts against the first request's deadline.
                match tokio::time::timeout_at(self.deadline, acceptor.accept(stream)).await {
                    Ok(Ok(tls_stream)) => self.http(tls_stream, handler).await,
                    Ok(Err(err)) => tracing::debug!(%peer, %err, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            }
        }
    }

    /// Serve HTTP/1.1 or h2 on `io`. hyper's header-read timer starts only once it has told
    /// the two protocols apart, which takes the first bytes: a client that sends nothing, or
    /// half an h2 preface, would never meet it. So the first request must reach the service
    /// by the connection's deadline, or the connection is dropped (closed).
    async fn http<I, H, F>(self, io: I, handler: H)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        H: Fn(Request<Incoming>, ConnInfo) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = Response<Body>> + Send + 'static,
    {
        let info = self.info;
        let started = Arc::new(AtomicBool::new(false));
        let seen = started.clone();
        let service = service_fn(move |req: Request<Incoming>| {
            seen.store(true, Ordering::Relaxed);
            let answer = match asterisk_answer(req.method(), req.uri()) {
                Some(answer) => Either::Left(std::future::ready(answer)),
                None => Either::Right(handler(req, info)),
            };
            async move {
                let resp = answer.await;
                if resp.extensions().get::<CloseConnection>().is_some() {
                    return Err(Closed);
                }
                Ok::<_, Closed>(resp)
            }
        });
        let sniffed = SniffHandle::default();
        let io = Sniff::new(io, sniffed.clone());
        let conn = self.builder.serve_connection(TokioIo::new(io), service);
        let conn = self.watcher.watch(conn.into_owned());
        tokio::pin!(conn);
        let result = tokio::select! {
            result = &mut conn => result,
            _ = tokio::time::sleep_until(self.deadline) => {
                if !started.load(Ordering::Relaxed) {
                    tracing::debug!(
                        peer = %info.peer,
                        timeout = ?self.timeout,
                        "no request head within the header-read timeout: connection closed"
                    );
                    return;
                }
                conn.await
            }
        };
        if let Err(err) = result {
            tracing::debug!(peer = %info.peer, %err, "connection ended with an error");
            if let Some(notify) = &self.on_refused {
                refused(&*err, info.peer, &sniffed, notify);
            }
        }
    }
}

/// Tell `notify` when `err` is hyper refusing a request it could not read whole (too long a
/// request line or head), with what the connection showed of it.
fn refused(
    err: &(dyn std::error::Error + Send + Sync + 'static),
    peer: SocketAddr,
    sniffed: &SniffHandle,
    notify: &OnRefused,
) {
    let Some(e) = err
        .downcast_ref::<hyper::Error>()
        .filter(|e| e.is_parse_too_large())
    else {
        return;
    };
    let (status, reason) = if e.to_string().contains("URI too long") {
        (
            414,
            "URI Too Long: the request line is longer than the HTTP layer reads (64 KiB)",
        )
    } else {
        (
            431,
            "Request Header Fields Too Large: the request head is larger than the HTTP layer reads",
        )
    };
    let seen = sniffed.lock().map(|s| s.clone()).unwrap_or_default();
    notify(Refused {
        peer,
        status,
        reason,
        head: seen.head,
        line_len: seen.line_done.then_some(seen.line_len),
    });
}

/// The answer to an asterisk-form request (`OPTIONS *`), which names no resource: the
/// listener itself answers, with no body. `None` for every other request target.
fn asterisk_answer(method: &Method, uri: &Uri) -> Option<Response<Body>> {
    if uri.scheme().is_some() || uri.authority().is_some() || uri.path() != "*" {
        return None;
    }
    let mut response = Response::new(empty());
    // Only OPTIONS may name the server as a whole (RFC 9112 §3.2.4).
    if method != Method::OPTIONS {
        *response.status_mut() = StatusCode::BAD_REQUEST;
    }
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, header::HeaderValue::from(0));
    Some(response)
}

/// A server running on its own thread and tokio runtime, stopped (and joined) when dropped.
///
/// This is what lets a plain `#[test]` and a `#[tokio::test]` alike start a simulator or a
/// replay server on port 0: nothing depends on the caller's runtime.
pub struct BackgroundServer {
    addr: SocketAddr,
    shutdown: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BackgroundServer {
    /// Bind `addr` (use port 0 for a free port), then run `run(listener, shutdown)` on a new
    /// thread with its own runtime until the handle is dropped or [`BackgroundServer::stop`].
    pub fn start<R, Fut>(name: &str, addr: SocketAddr, run: R) -> std::io::Result<Self>
    where
        R: FnOnce(TcpListener, CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let std_listener = std::net::TcpListener::bind(addr)?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(format!("{name}-worker"))
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                runtime.block_on(async move {
                    match TcpListener::from_std(std_listener) {
                        Ok(listener) => run(listener, token).await,
                        Err(err) => tracing::error!(%err, "cannot adopt listener"),
                    }
                });
                // Do not wait for tasks stuck on I/O the server already gave up on.
                runtime.shutdown_timeout(Duration::from_millis(100));
            })?;
        Ok(BackgroundServer {
            addr,
            shutdown,
            thread: Some(thread),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop the server and wait for its thread.
    pub fn stop(mut self) {
        self.stop_inner();
    }

    fn stop_inner(&mut self) {
        self.shutdown.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for BackgroundServer {
    fn drop(&mut self) {
        self.stop_inner();
    }
}

impl std::fmt::Debug for BackgroundServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackgroundServer")
            .field("addr", &self.addr)
            .finish()
    }
}
