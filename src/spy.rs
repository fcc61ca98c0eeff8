//! Spy mode (`replay --fallback URL`): a replay that forwards what its recording cannot
//! answer to the live server, records the answer into the session, and serves it.
//!
//! This module is the composition, above both [`crate::replay`] and [`crate::proxy`]: replay
//! never reaches into the proxy, so it only knows a [`Fallback`] to hand its misses to; here
//! that fallback is the recording proxy's own forwarding path ([`crate::proxy::Forwarder`]:
//! routing, origin rewriting both ways, capture, the ingest step) feeding a
//! [`StoreWriter`] that appends to the session. Hits still come from the recording; each
//! forwarded request is logged and listed in the report's `forwarded`; a later plain replay
//! serves what was forwarded.
//!
//! The forwarded request carries what the client sent. A token the replay handed out is a
//! placeholder (`cwt=REDACTED-1`) that the live server refuses: spy mode fills a session best
//! when the client signs in through the live server too (everything the recording lacks is
//! forwarded, sign-in included) or for requests that need no sign-in.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::body::full;
use crate::error::Error;
use crate::proxy::{Forwarder, ProxyConfig, RecordingProxy};
use crate::recording::{Exchange, KeyOptions, Origin};
use crate::redact::{RedactConfig, highest_placeholder};
use crate::replay::{Fallback, Forwarding, ReplayReport, Replayer, run_with};
use crate::serve::{ConnInfo, Limits};
use crate::store::{NewSession, Recording, StoreWriter, WriterStats};
use crate::upstream::TrustConfig;

/// How spy mode reaches the live server and where it records.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SpyConfig {
    /// The live server (`--fallback`): the session's upstream.
    pub fallback: Origin,
    /// Other hosts of the deployment (`--also-upstream`), beyond those the session recorded.
    pub also_upstreams: Vec<Origin>,
    /// Which certificates of the live server are trusted (`--upstream-ca`, …).
    pub trust: TrustConfig,
    /// The session forwarded exchanges are appended to (`--fallback-session`; created when
    /// missing); `None`: the session being replayed.
    pub session: Option<String>,
    pub redact: RedactConfig,
    pub key_options: KeyOptions,
    /// Deadline of ordinary forwarded requests.
    pub upstream_timeout: Duration,
}

impl SpyConfig {
    /// Forward to `fallback`, append to the replayed session, default trust and redaction.
    pub fn new(fallback: Origin) -> Self {
        SpyConfig {
            fallback,
            also_upstreams: Vec::new(),
            trust: TrustConfig::default(),
            session: None,
            redact: RedactConfig::default(),
            key_options: KeyOptions::default(),
            upstream_timeout: crate::proxy::DEFAULT_UPSTREAM_TIMEOUT,
        }
    }
}

/// What a spy run did.
#[derive(Debug, Clone)]
pub struct SpyOutcome {
    pub report: ReplayReport,
    /// The session forwarded exchanges went to.
    pub session: String,
    /// What was written to it.
    pub stored: WriterStats,
}

/// The proxy's forwarding path as a replay's [`Fallback`].
struct ProxyFallback(Arc<Forwarder>);

impl Fallback for ProxyFallback {
    fn forward(&self, req: Request<Bytes>, conn: ConnInfo) -> Forwarding {
        let forwarder = self.0.clone();
        Box::pin(async move { forwarder.forward(req.map(full), conn).await })
    }
}

/// Spy mode checked and ready: the live server's client built, the session to extend open.
pub struct Spy {
    proxy: RecordingProxy,
    writer: StoreWriter,
    after_seq: u64,
    target: String,
    fallback: Origin,
}

impl std::fmt::Debug for Spy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spy")
            .field("target", &self.target)
            .field("fallback", &self.fallback)
            .finish_non_exhaustive()
    }
}

/// Check `config` against the recording at `db` that `replayer` replays (the fallback must
/// be the session's upstream), and open the session forwarded exchanges go to. Nothing
/// listens yet: a bad option fails here, before any command is started.
pub fn prepare(db: &Path, replayer: &Replayer, config: SpyConfig) -> Result<Spy, Error> {
    let replayed = replayer.session();
    let target = config
        .session
        .clone()
        .unwrap_or_else(|| replayed.name.clone());
    let recording = Recording::open(db)?;
    let names = recording.sessions()?;
    let mut learned_from: Vec<Exchange> = recording.exchanges(&replayed)?;
    let (writer, after_seq, also) = if names.iter().any(|s| s.name == target) {
        let info = recording.session(Some(&target))?;
        let recorded = Origin::parse(&info.upstream)?;
        if recorded != config.fallback {
            return Err(Error::invalid(
                "--fallback",
                format!(
                    "{} is not the upstream session {:?} was recorded from ({}): its answers would carry origins the replay does not rewrite; give that URL, or --fallback-session NEW to collect them in a session of their own",
                    config.fallback.base(),
                    info.name,
                    recorded.base()
                ),
            ));
        }
        let mut also: Vec<Origin> = info
            .also_upstreams
            .iter()
            .map(|o| Origin::parse(o))
            .collect::<Result<_, _>>()?;
        for extra in &config.also_upstreams {
            if !also.contains(extra) {
                return Err(Error::invalid(
                    "--also-upstream",
                    format!(
                        "{} is not an upstream of session {:?} (it has: {}); give --fallback-session NEW to record with other hosts",
                        extra.base(),
                        info.name,
                        if info.also_upstreams.is_empty() {
                            "none".to_string()
                        } else {
                            info.also_upstreams.join(", ")
                        }
                    ),
                ));
            }
        }
        also.dedup();
        let (existing, last) = if info.name == replayed.name {
            (
                Vec::new(),
                learned_from.iter().map(|e| e.seq).max().unwrap_or(0),
            )
        } else {
            let existing = recording.exchanges(&info)?;
            let last = existing.iter().map(|e| e.seq).max().unwrap_or(0);
            (existing, last)
        };
        learned_from.extend(existing);
        (StoreWriter::append(db, &target)?, last, also)
    } else {
        let mut also: Vec<Origin> = replayed
            .also_upstreams
            .iter()
            .map(|o| Origin::parse(o))
            .collect::<Result<_, _>>()?;
        for extra in &config.also_upstreams {
            if !also.contains(extra) {
                also.push(extra.clone());
            }
        }
        let writer = StoreWriter::create(
            db,
            &NewSession {
                name: target.clone(),
                upstream: config.fallback.base(),
                also_upstreams: also.iter().map(Origin::base).collect(),
                replace: false,
            },
        )?;
        (writer, 0, also)
    };
    drop(recording);

    let mut proxy_config = ProxyConfig::new(config.fallback.clone());
    proxy_config.also_upstreams = also;
    proxy_config.trust = config.trust.clone();
    proxy_config.redact = config.redact.clone();
    proxy_config.key_options = config.key_options.clone();
    proxy_config.upstream_timeout = config.upstream_timeout;
    let proxy = RecordingProxy::new(proxy_config)?;
    // Forwarded requests follow links the recording handed out: the classifier learns them,
    // and new secrets are numbered after the placeholders the session already uses.
    let mut highest = 0;
    for ex in &learned_from {
        proxy.ingest().learn(ex);
        for text in [&ex.request_body, &ex.response_body] {
            highest = highest.max(highest_placeholder(text));
        }
        for (_, v) in ex.request_headers.iter().chain(ex.response_headers.iter()) {
            highest = highest.max(highest_placeholder(v));
        }
        if let Some(q) = &ex.query {
            highest = highest.max(highest_placeholder(q.as_bytes()));
        }
    }
    proxy.ingest().redactor().reserve(highest);
    Ok(Spy {
        proxy,
        writer,
        after_seq,
        target,
        fallback: config.fallback,
    })
}

/// Serve `replayer` on `listener` until `shutdown` fires, forwarding what it cannot answer
/// as `spy` says and appending it to the session.
pub async fn run(
    listener: TcpListener,
    replayer: Arc<Replayer>,
    spy: Spy,
    limits: Limits,
    shutdown: CancellationToken,
) -> Result<SpyOutcome, Error> {
    let Spy {
        proxy,
        writer,
        after_seq,
        target,
        fallback,
    } = spy;
    let local = listener.local_addr()?;
    let public = crate::proxy::default_public_url(local, false);
    let forwarder =
        Arc::new(proxy.forwarder(&public, local, writer.sink(), shutdown.clone(), after_seq)?);
    tracing::info!(
        fallback = %fallback,
        session = %target,
        "spy mode: what the recording cannot answer is forwarded to the live server and recorded"
    );
    let fallback: Arc<dyn Fallback> = Arc::new(ProxyFallback(forwarder.clone()));
    let served = run_with(listener, replayer, Some(fallback), limits, shutdown).await;
    let proxied = forwarder.close().await;
    drop(forwarder);
    let stored = writer.finish().await?;
    if proxied.lost > 0 {
        tracing::warn!(
            lost = proxied.lost,
            "forwarded exchanges finished too late to be stored"
        );
    }
    Ok(SpyOutcome {
        report: served?,
        session: target,
        stored,
    })
}
