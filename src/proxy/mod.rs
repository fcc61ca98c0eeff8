//! The recording reverse proxy: every request is forwarded to
//! the configured upstream with bodies streaming both ways, the response is rewritten to the
//! public origin, and a copy of both is recorded off the client's path.
//!
//! - `forward`: routing (main upstream, `/_upstream/HOST` also-upstreams), refusals, request
//!   headers;
//! - `response`: response headers and bodies back to the client;
//! - `capture`: body wrappers that copy while streaming and notice the end of an exchange;
//! - `record`: the record of each exchange, finished through the shared ingest step
//!   ([`crate::recording::Ingest`]) and handed to the store's writer;
//! - `rewrite_stream`: origin substitution over a streamed body; `tls`: the listener.
//!
//! The caller binds the listener and owns the shutdown token (mini-redis style):
//! `RecordingProxy::new(config)?.run(listener, tls, sink, shutdown).await`.

mod capture;
mod forward;
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;
mod record;
mod response;
mod rewrite_stream;
mod tls;

pub use tls::acceptor_from_pem_files as tls_acceptor;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response, header};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use self::capture::Tee;
use self::forward::{ClientSide, Router, pget_deadline, upstream_request_headers, via_version};
use self::record::Recorder;
use self::response::{failure_response, relay};
use crate::body::{Body, boxed};
use crate::error::Error;
use crate::recording::headers::ResponseRules;
use crate::recording::{
    Exchange, ExchangeFilter, HeaderList, Ingest, KeyOptions, Origin, OriginRewriter,
};
use crate::redact::RedactConfig;
use crate::serve::{ConnInfo, DEFAULT_DRAIN, Limits, serve_with};
use crate::store::ExchangeSink;
use crate::ucwa::{ErrorBody, Representation, error_response, feed};
use crate::upstream::{TrustConfig, UpstreamClient, UpstreamError};

/// Default `--max-body`: bodies are stored up to 32 MiB (the client always gets every byte).
pub const DEFAULT_MAX_BODY: usize = 32 * 1024 * 1024;
/// Default `--max-capture-memory`: two bodies at the default `--max-body` cap (UCWA bodies
/// are a few KiB; thousands fit). On their way to the disk the copies are copied again
/// (secrets are numbered on a snapshot, SQLite copies each blob), so the process's peak is
/// up to about three times this figure: six 200 MB uploads at once peak near 210 MB.
pub const DEFAULT_MAX_CAPTURE_MEMORY: usize = 2 * DEFAULT_MAX_BODY;
/// Default `--upstream-timeout` for requests other than events-feed P-GETs.
pub const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(60);

/// Everything the recording proxy is configured with. Start from [`ProxyConfig::new`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ProxyConfig {
    /// The front-end every request goes to.
    pub upstream: Origin,
    /// Other hosts of the deployment, published under `/_upstream/HOST`.
    pub also_upstreams: Vec<Origin>,
    /// The origin clients use to reach the proxy; default `http(s)://` + the bound address.
    pub public_url: Option<String>,
    pub trust: TrustConfig,
    /// Deadline of ordinary requests (P-GETs get their `timeout` + 60 s, at most 1860 s).
    pub upstream_timeout: Duration,
    /// How many bytes of each body are stored.
    pub max_body: usize,
    pub redact: RedactConfig,
    pub key_options: KeyOptions,
    /// Applied to the stored copy after redaction (`record --anonymize`); the client still
    /// gets the real answers.
    pub filter: Option<Arc<dyn ExchangeFilter>>,
    /// How long in-flight exchanges may take to finish at shutdown.
    pub drain: Duration,
    /// Told about each exchange as it goes to the store.
    pub on_exchange: Option<ExchangeObserver>,
    /// The listener's header-read timeout and connection cap.
    pub limits: Limits,
    /// How many bytes of bodies may be held in memory for the recording at once, across
    /// every exchange in flight; beyond it stored copies are truncated (and flagged), the
    /// clients still get every byte.
    pub max_capture_memory: usize,
}

/// Told about each exchange as it is handed to the store (redacted and classified, so what
/// it shows holds no secret): the binary prints an access-log line from it on a terminal.
#[derive(Clone)]
pub struct ExchangeObserver(Arc<dyn Fn(&Exchange) + Send + Sync>);

impl ExchangeObserver {
    pub fn new(f: impl Fn(&Exchange) + Send + Sync + 'static) -> Self {
        ExchangeObserver(Arc::new(f))
    }

    pub(crate) fn tell(&self, exchange: &Exchange) {
        (self.0)(exchange)
    }
}

impl std::fmt::Debug for ExchangeObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExchangeObserver")
    }
}

impl ProxyConfig {
    /// Defaults for everything but the upstream.
    pub fn new(upstream: Origin) -> Self {
        ProxyConfig {
            upstream,
            also_upstreams: Vec::new(),
            public_url: None,
            trust: TrustConfig::default(),
            upstream_timeout: DEFAULT_UPSTREAM_TIMEOUT,
            max_body: DEFAULT_MAX_BODY,
            redact: RedactConfig::default(),
            key_options: KeyOptions::default(),
            filter: None,
            drain: DEFAULT_DRAIN,
            on_exchange: None,
            limits: Limits::new(),
            max_capture_memory: DEFAULT_MAX_CAPTURE_MEMORY,
        }
    }
}

/// What a finished run reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Exchanges handed to the store.
    pub exchanges: u64,
    /// Exchanges that finished too late to be stored.
    pub lost: u64,
}

/// A configured, not yet running, recording proxy.
#[derive(Debug)]
pub struct RecordingProxy {
    config: ProxyConfig,
    client: UpstreamClient,
    ingest: Ingest,
}

impl RecordingProxy {
    /// Check the configuration (public URL, trust files, redaction regexes) and build the
    /// upstream client.
    pub fn new(config: ProxyConfig) -> Result<Self, Error> {
        if let Some(public) = &config.public_url {
            Origin::parse(public)?;
            // Only an origin: the proxy serves the upstream's paths at its root.
            let path = public
                .parse::<http::Uri>()
                .ok()
                .map(|u| u.path().to_string());
            if path.as_deref().is_some_and(|p| p != "/" && !p.is_empty()) {
                return Err(Error::invalid(
                    "--public-url",
                    format!("{public:?}: give an origin (scheme://host[:port]) without a path"),
                ));
            }
        }
        let client = UpstreamClient::new(&config.trust)?;
        let mut ingest = Ingest::new(&config.redact, config.key_options.clone())?;
        if let Some(filter) = &config.filter {
            ingest = ingest.with_filter(filter.clone());
        }
        Ok(RecordingProxy {
            config,
            client,
            ingest,
        })
    }

    /// The public URL for a listener bound at `local`.
    pub fn public_url(&self, local: SocketAddr, tls: bool) -> String {
        match &self.config.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => default_public_url(local, tls),
        }
    }

    /// The ingest step the proxy records through (spy mode teaches it the session it
    /// extends, and reserves the placeholders already used).
    pub fn ingest(&self) -> &Ingest {
        &self.ingest
    }

    /// Serve until `shutdown` fires: stop accepting, release held P-GETs, let other
    /// exchanges finish within the drain deadline, hand every record to `sink`, and drop
    /// every clone of `sink` before returning (so the writer can finish).
    pub async fn run(
        self,
        listener: TcpListener,
        tls: Option<tokio_rustls::TlsAcceptor>,
        sink: ExchangeSink,
        shutdown: CancellationToken,
    ) -> Result<ProxyStats, Error> {
        let local = listener.local_addr()?;
        let public = self.public_url(local, tls.is_some());
        let drain = self.config.drain;
        let limits = self.config.limits;
        let forwarder = self.forwarder(&public, local, sink, shutdown.clone(), 0)?;
        tracing::info!(%public, upstream = %forwarder.shared.router.upstreams[0], "recording proxy listening");
        let shared = forwarder.shared.clone();
        // Boxed once: the exchange's state machine is about 3.9 KiB (the upstream request's
        // and the relay's futures inside it), and the serve layer and hyper move the
        // handler's future a few times per request; a box moves as a pointer.
        let handler = move |req, conn| Box::pin(handle(shared.clone(), req, conn));
        serve_with(listener, tls, handler, shutdown, drain, limits).await;
        Ok(forwarder.close().await)
    }

    /// The proxy's forwarding path for requests another server received (spy mode: a
    /// replay forwards what its recording cannot answer): the same routing, origin
    /// rewriting to `public`, capture and ingest as [`Self::run`]. Records are numbered from
    /// `after_seq + 1` (a session being extended) and handed to `sink`.
    pub fn forwarder(
        self,
        public: &str,
        local: SocketAddr,
        sink: ExchangeSink,
        shutdown: CancellationToken,
        after_seq: u64,
    ) -> Result<Forwarder, Error> {
        let public_origin = Origin::parse(public)?;
        let cfg = self.config;
        let mut upstreams = vec![cfg.upstream.clone()];
        upstreams.extend(cfg.also_upstreams.iter().cloned());
        let recorder = Arc::new(Recorder::new(
            self.ingest,
            sink,
            cfg.max_body,
            after_seq,
            cfg.on_exchange.clone(),
            cfg.max_capture_memory,
        ));
        let shared = Arc::new(Shared {
            rules: ResponseRules {
                to_public: OriginRewriter::to_public(&cfg.upstream, &cfg.also_upstreams, public),
                upstream_hosts: upstreams.iter().map(|o| o.host.clone()).collect(),
            },
            to_upstream: OriginRewriter::to_upstream(&cfg.upstream, &cfg.also_upstreams, public),
            router: Router::new(upstreams, &public_origin, local),
            client: self.client,
            upstream_timeout: cfg.upstream_timeout,
            max_body: cfg.max_body,
            recorder,
            shutdown,
        });
        Ok(Forwarder { shared })
    }
}

/// The recording proxy's forwarding path, for one request at a time (see
/// [`RecordingProxy::forwarder`]).
pub struct Forwarder {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder").finish_non_exhaustive()
    }
}

impl Forwarder {
    /// Forward one request and answer it; it is recorded like every proxied exchange.
    pub async fn forward(&self, req: Request<Body>, conn: ConnInfo) -> Response<Body> {
        handle(self.shared.clone(), req, conn).await
    }

    /// Let exchanges being finished reach the sink (at most 10 s), then let go of it.
    pub async fn close(&self) -> ProxyStats {
        self.shared.recorder.close(Duration::from_secs(10)).await;
        let (exchanges, lost) = self.shared.recorder.counts();
        ProxyStats { exchanges, lost }
    }
}

/// `http(s)://` + the bound address (an unspecified address is reached as loopback).
pub(crate) fn default_public_url(local: SocketAddr, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    let mut addr = local;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    format!("{scheme}://{addr}")
}

/// State shared by every request.
struct Shared {
    router: Router,
    client: UpstreamClient,
    rules: ResponseRules,
    to_upstream: OriginRewriter,
    upstream_timeout: Duration,
    max_body: usize,
    recorder: Arc<Recorder>,
    shutdown: CancellationToken,
}

/// One request, start to finish. Never fails: refusals and upstream failures are answered
/// with UCWA error bodies, and every forwarded request is recorded.
async fn handle<B>(shared: Arc<Shared>, req: Request<B>, conn: ConnInfo) -> Response<Body>
where
    B: http_body::Body<Data = bytes::Bytes> + Send + Sync + Unpin + 'static,
    B::Error: Into<crate::body::BoxError>,
{
    let repr = Representation::from_accept(
        req.headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok()),
    );
    let h2 = req.version() == http::Version::HTTP_2;
    let route = match shared.router.route(req.method(), req.uri(), h2) {
        Ok(route) => route,
        Err(refusal) => {
            tracing::warn!(peer = %conn.peer, method = %req.method(), uri = %req.uri(), "{refusal}");
            let err = ErrorBody::new(refusal.status, Some(refusal.subcode), refusal.message);
            return error_response(&err, repr);
        }
    };
    let upstream = &shared.router.upstreams[route.upstream];
    let upstream_base = upstream.base();
    let (parts, body) = req.into_parts();
    let method = parts.method.clone();
    shared.recorder.room().await; // backpressure: wait while the writer is behind
    let mut pending = shared.recorder.begin(method.as_str(), &route.client_path);

    let client_host = parts
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| parts.uri.authority().map(|a| a.to_string()));
    let mut headers = parts.headers;
    upstream_request_headers(
        &mut headers,
        upstream,
        &shared.to_upstream,
        &ClientSide {
            peer: conn.peer,
            tls: conn.tls,
            host: client_host.as_deref(),
            version: via_version(parts.version),
        },
    );
    let upstream_path_only = route.upstream_path.split('?').next().unwrap_or("");
    let events = feed::is_events_request(method.as_str(), upstream_path_only);
    if let Some(ex) = pending.exchange() {
        ex.method = method.to_string();
        ex.path = route.client_path.clone();
        ex.query = parts.uri.query().map(str::to_string);
        ex.http_version = format!("{:?}", parts.version);
        ex.representation = repr;
        ex.upstream = Some(upstream_base.clone());
        ex.request_headers = HeaderList::from_http(&headers);
    }
    let deadline = if events {
        pget_deadline(parts.uri.query())
    } else {
        shared.upstream_timeout
    };

    let uri = match shared.router.upstream_uri(&route) {
        Ok(uri) => uri,
        Err(refusal) => {
            pending.finish(Some(refusal.message.clone()));
            let err = ErrorBody::new(refusal.status, Some(refusal.subcode), refusal.message);
            return error_response(&err, repr);
        }
    };
    let (tee, copy) = Tee::new(body, shared.max_body, shared.recorder.budget());
    pending.set_request_capture(copy.clone());
    let mut out = Request::new(boxed(tee));
    *out.method_mut() = method.clone();
    *out.uri_mut() = uri;
    *out.version_mut() = http::Version::HTTP_11;
    *out.headers_mut() = headers;

    let started = tokio::time::Instant::now();
    let sent = if events {
        // Held P-GETs are released at shutdown rather than waited for.
        tokio::select! {
            sent = shared.client.send(out, deadline) => sent,
            _ = shared.shutdown.cancelled() => {
                pending.finish(Some("aborted: proxy shutting down".into()));
                let err = ErrorBody::new(
                    http::StatusCode::SERVICE_UNAVAILABLE,
                    Some("ProxyShuttingDown"),
                    "the recording proxy is shutting down",
                );
                return error_response(&err, repr);
            }
        }
    } else {
        shared.client.send(out, deadline).await
    };
    match sent {
        Ok(resp) => {
            let left = deadline.saturating_sub(started.elapsed());
            relay(resp, pending, &method, &shared.rules, left, repr).await
        }
        Err(failure) => {
            let client_broke = copy.lock().map(|c| c.broken).unwrap_or(false);
            if client_broke {
                // The upload failed on the client's side: nobody is left to answer.
                tracing::debug!("client hung up while sending the request body");
                pending.finish(Some(format!("{} (request body)", record::CLIENT_ABORTED)));
                return failure_response(&failure, repr);
            }
            upstream_failed(failure, pending, repr)
        }
    }
}

fn upstream_failed(
    failure: UpstreamError,
    mut pending: record::Pending,
    repr: Representation,
) -> Response<Body> {
    tracing::warn!(error = %failure, "upstream request failed");
    pending.finish(Some(failure.message.clone()));
    failure_response(&failure, repr)
}
