//! `ucwa-replay record`: proxy to an upstream UCWA server and record the session.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use ucwa_replay::proxy::{
    DEFAULT_MAX_BODY, DEFAULT_MAX_CAPTURE_MEMORY, ProxyConfig, RecordingProxy, tls_acceptor,
};
use ucwa_replay::recording::Origin;
use ucwa_replay::store::{NewSession, StoreWriter};
use ucwa_replay::upstream::TrustConfig;

use super::Ctx;

/// Boxed so that the `Command` enum stays small (clippy::large_enum_variant).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub inner: Box<RecordArgs>,
}

#[derive(Debug, clap::Args)]
pub struct RecordArgs {
    /// The UCWA server to record (e.g. https://fe1.contoso.com or https://lyncdiscover.contoso.com).
    #[arg(long, value_name = "URL")]
    pub upstream: String,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:4781")]
    pub listen: String,
    /// The recording file.
    #[arg(long, value_name = "FILE", default_value = "recordings/ucwa.sqlite")]
    pub db: PathBuf,
    /// Name of the session to record.
    #[arg(long, value_name = "NAME")]
    pub session: String,
    /// Replace an existing session of the same name.
    #[arg(long)]
    pub replace: bool,
    /// The origin clients use to reach the proxy (default: http(s):// + the listen address).
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Another origin of the deployment (lyncdiscover., lyncweb., the pool), published under
    /// /_upstream/HOST on this listener. Repeatable.
    #[arg(long = "also-upstream", value_name = "URL")]
    pub also_upstream: Vec<String>,
    /// Trust the system's root certificates instead of the Mozilla set.
    #[arg(long)]
    pub native_roots: bool,
    /// Also trust the CA certificate(s) in this PEM file (repeatable).
    #[arg(long, value_name = "FILE.pem")]
    pub upstream_ca: Vec<PathBuf>,
    /// Do not verify the upstream's certificate (logged as a warning).
    #[arg(long)]
    pub insecure_upstream: bool,
    /// Serve https with this PEM certificate chain (needs --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Store at most this many bytes of each body (the client still gets every byte).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_BODY)]
    pub max_body: usize,
    /// Seconds to wait for the upstream on ordinary requests (events-feed P-GETs wait for
    /// their own `timeout` + 60 s).
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub upstream_timeout: u64,
    /// Hold at most this many bytes of bodies in memory for the recording, across every
    /// exchange in flight; beyond it stored copies are truncated (the clients still get
    /// every byte).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_CAPTURE_MEMORY)]
    pub max_capture_memory: usize,
    #[command(flatten)]
    pub listener: super::ListenerArgs,
    #[command(flatten)]
    pub redact: super::RedactArgs,
}

pub async fn run(args: Args, ctx: Ctx) -> anyhow::Result<ExitCode> {
    let args = *args.inner;
    let upstream = Origin::parse(&args.upstream)?;
    let also_upstreams = args
        .also_upstream
        .iter()
        .map(|u| Origin::parse(u))
        .collect::<Result<Vec<_>, _>>()?;
    let mut config = ProxyConfig::new(upstream.clone());
    config.also_upstreams = also_upstreams.clone();
    config.public_url = args.public_url.clone();
    config.trust = TrustConfig {
        native_roots: args.native_roots,
        extra_ca: args.upstream_ca.clone(),
        insecure: args.insecure_upstream,
    };
    config.upstream_timeout = Duration::from_secs(args.upstream_timeout.max(1));
    config.max_body = args.max_body;
    config.max_capture_memory = args.max_capture_memory;
    config.limits = args.listener.limits();
    config.redact = args.redact.redact_config();
    config.key_options = args.redact.key_options();
    let proxy = RecordingProxy::new(config)?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(tls_acceptor(cert, key)?),
        _ => None,
    };

    let writer = StoreWriter::create(
        &args.db,
        &NewSession {
            name: args.session.clone(),
            upstream: upstream.base(),
            also_upstreams: also_upstreams.iter().map(Origin::base).collect(),
            replace: args.replace,
        },
    )?;
    let listener = ucwa_replay::serve::bind(&args.listen).await?;
    let local = listener.local_addr().context("listener address")?;
    let public = proxy.public_url(local, tls.is_some());
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{public}")?;
        out.flush()?;
    }
    let run = proxy
        .run(listener, tls, writer.sink(), ctx.shutdown.clone())
        .await;
    let stats = writer.finish().await?;
    let proxy_stats = run?;
    let lost = if proxy_stats.lost > 0 {
        format!(", {} finished too late to be stored", proxy_stats.lost)
    } else {
        String::new()
    };
    eprintln!(
        "recorded session {:?} into {}: {} exchanges, {} events{lost}",
        args.session,
        args.db.display(),
        stats.exchanges,
        stats.events
    );
    Ok(ExitCode::SUCCESS)
}
