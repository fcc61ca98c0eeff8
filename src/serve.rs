//! Serving HTTP/1.1 and h2 (optionally over TLS) for the simulator, the recording proxy and the
//! replayer, with one shutdown story: stop accepting, let in-flight exchanges finish within a
//! deadline, then return. Servers that park requests (P-GETs) release them themselves when the
//! same [`CancellationToken`] fires.
//!
//! Following mini-redis, the caller binds the listener (port 0 in tests) and owns the token.
//! [`BackgroundServer`] is the wiremock-rs pattern on top: a server on its own thread and
//! runtime, usable from any test, stopped when dropped.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
pub use tokio_util::sync::CancellationToken;

use crate::body::Body;

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

/// Serve `listener` until `shutdown` fires, calling `handler` for every request.
///
/// Handlers never fail: request-path errors must already be responses (502, 404 …).
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
    serve_observed(listener, tls, handler, shutdown, drain, None).await;
}

/// [`serve`], also telling `on_refused` about requests the HTTP layer refused on its own.
pub async fn serve_observed<H, F>(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    handler: H,
    shutdown: CancellationToken,
    drain: Duration,
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
    // "Traps").
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(60));
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();

    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    // Running out of file descriptors must not end the server.
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let info = ConnInfo {
            peer,
            local,
            tls: tls.is_some(),
        };
        let handler = handler.clone();
        let service = service_fn(move |req| {
            let fut = handler(req, info);
            async move {
                let resp = fut.await;
                if resp.extensions().get::<CloseConnection>().is_some() {
                    return Err(Closed);
                }
                Ok::<_, Closed>(resp)
            }
        });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        let on_refused = on_refused.clone();
        let sniffed = SniffHandle::default();
        let sniff = sniffed.clone();
        tokio::spawn(async move {
            let result = match tls {
                None => {
                    let io = TokioIo::new(Sniff::new(stream, sniff));
                    let conn = builder.serve_connection(io, service);
                    watcher.watch(conn.into_owned()).await
                }
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(Duration::from_secs(30), acceptor.accept(stream));
                    match handshake.await {
                        Ok(Ok(tls_stream)) => {
                            let io = TokioIo::new(Sniff::new(tls_stream, sniff));
                            let conn = builder.serve_connection(io, service);
                            watcher.watch(conn.into_owned()).await
                        }
                        Ok(Err(err)) => {
                            tracing::debug!(%peer, %err, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    }
                }
            };
            if let Err(err) = result {
                tracing::debug!(%peer, %err, "connection ended with an error");
                let too_large = err
                    .downcast_ref::<hyper::Error>()
                    .filter(|e| e.is_parse_too_large());
                if let (Some(e), Some(notify)) = (too_large, on_refused) {
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
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => tracing::debug!("all connections closed"),
        _ = tokio::time::sleep(drain) => tracing::warn!(?drain, "shutdown deadline passed with connections still open"),
    }
}

/// What [`Sniff`] saw of the request being read.
#[derive(Debug, Clone, Default)]
struct Sniffed {
    head: Vec<u8>,
    line_len: usize,
    line_done: bool,
    /// The connection wrote since the last read: the next read starts a new request.
    fresh: bool,
}

/// How much of a request's start [`Sniff`] keeps.
const SNIFF_BYTES: usize = 512;

type SniffHandle = Arc<std::sync::Mutex<Sniffed>>;

/// A connection that keeps the first bytes of the request being read (the start of its
/// request line), so that a request the HTTP layer refuses on its own can still be named.
/// A response written marks the next bytes read as a new request.
struct Sniff<S> {
    inner: S,
    seen: SniffHandle,
}

impl<S> Sniff<S> {
    fn new(inner: S, seen: SniffHandle) -> Self {
        Sniff { inner, seen }
    }

    fn note_read(&self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let Ok(mut s) = self.seen.lock() else {
            return;
        };
        if s.fresh {
            *s = Sniffed::default();
        }
        let room = SNIFF_BYTES.saturating_sub(s.head.len());
        s.head.extend_from_slice(&data[..data.len().min(room)]);
        if !s.line_done {
            match data.iter().position(|b| *b == b'\n') {
                Some(at) => {
                    s.line_len += at;
                    s.line_done = true;
                }
                None => s.line_len += data.len(),
            }
        }
    }

    fn note_write(&self) {
        if let Ok(mut s) = self.seen.lock() {
            s.fresh = true;
        }
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Sniff<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if let std::task::Poll::Ready(Ok(())) = &polled {
            self.note_read(&buf.filled()[before..]);
        }
        polled
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Sniff<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.note_write();
        std::pin::Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.note_write();
        std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
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
