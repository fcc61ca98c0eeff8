//! Serving HTTP/1.1 and h2 (optionally over TLS) for the simulator, the recording proxy and the
//! replayer, with one shutdown story: stop accepting, let in-flight exchanges finish within a
//! deadline, then return. Servers that park requests (P-GETs) release them themselves when the
//! same [`CancellationToken`] fires.
//!
//! Following mini-redis, the caller binds the listener (port 0 in tests) and owns the token.
//! [`BackgroundServer`] is the wiremock-rs pattern on top: a server on its own thread and
//! runtime, usable from any test, stopped when dropped.

use std::convert::Infallible;
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
            async move { Ok::<_, Infallible>(fut.await) }
        });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            let result = match tls {
                None => {
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(conn.into_owned()).await
                }
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(Duration::from_secs(30), acceptor.accept(stream));
                    match handshake.await {
                        Ok(Ok(tls_stream)) => {
                            let conn = builder.serve_connection(TokioIo::new(tls_stream), service);
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
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => tracing::debug!("all connections closed"),
        _ = tokio::time::sleep(drain) => tracing::warn!(?drain, "shutdown deadline passed with connections still open"),
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
