//! `ucwa-replay record`: proxy to an upstream UCWA server and record the session.
//!
//! stdout: the URL on the first line, the summary at the end. On a terminal, stderr shows
//! one line per exchange as it is stored (method, path, status, ms).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ucwa_replay::anonymize::Anonymizer;
use ucwa_replay::proxy::{
    DEFAULT_MAX_BODY, DEFAULT_MAX_CAPTURE_MEMORY, ExchangeObserver, ProxyConfig, RecordingProxy,
    tls_acceptor,
};
use ucwa_replay::recording::{Exchange, Origin};
use ucwa_replay::store::{NewSession, StoreWriter};
use ucwa_replay::upstream::TrustConfig;

use super::Ctx;
use super::text::{plural, printable};

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
    /// their own `timeout` + 60 s); at least 1.
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = at_least_one_second)]
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
    /// Anonymise what is stored, as `anonymize` does (the client still gets the real
    /// answers): the real people never reach the disk.
    #[arg(long)]
    pub anonymize: bool,
    #[command(flatten)]
    pub anonymize_args: super::anonymize::AnonymizeArgs,
    /// A command to record (its client finds the proxy's URL in UCWA_RECORD_URL): recording
    /// stops when it exits, and its exit status is the recorder's.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<std::ffi::OsString>,
}

/// `--upstream-timeout`: 0 would fail every request at once (it used to become 1 s silently).
fn at_least_one_second(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(0) => Err("a timeout of 0 s would fail every request; give at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{s:?} is not a whole number of seconds")),
    }
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
    config.upstream_timeout = Duration::from_secs(args.upstream_timeout);
    config.max_body = args.max_body;
    config.max_capture_memory = args.max_capture_memory;
    config.limits = args.listener.limits();
    config.redact = args.redact.redact_config();
    config.key_options = args.redact.key_options();
    let anonymizer = anonymizer(&args, &upstream, &also_upstreams)?;
    config.filter = anonymizer
        .clone()
        .map(|a| a as Arc<dyn ucwa_replay::recording::ExchangeFilter>);
    let stored_origin = |o: &Origin| match &anonymizer {
        Some(a) => a.anonymize_text(&o.base()),
        None => o.base(),
    };
    if !ctx.quiet && std::io::stderr().is_terminal() {
        config.on_exchange = Some(ExchangeObserver::new(access_line));
    }
    let proxy = RecordingProxy::new(config)?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(tls_acceptor(cert, key)?),
        _ => None,
    };

    let writer = StoreWriter::create(
        &args.db,
        &NewSession {
            name: args.session.clone(),
            upstream: stored_origin(&upstream),
            also_upstreams: also_upstreams.iter().map(stored_origin).collect(),
            replace: args.replace,
        },
    )?;
    let listener = ucwa_replay::serve::bind(&args.listen).await?;
    let local = listener.local_addr().context("listener address")?;
    let public = proxy.public_url(local, tls.is_some());
    let wrapped = match args.command.is_empty() {
        true => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{public}")?;
            out.flush()?;
            None
        }
        false => Some(super::wrap::Wrapped::spawn(
            &args.command,
            "UCWA_RECORD_URL",
            &public,
            &ctx.shutdown,
        )?),
    };
    let shutdown = wrapped
        .as_ref()
        .map_or_else(|| ctx.shutdown.clone(), |w| w.shutdown.clone());
    let run = proxy.run(listener, tls, writer.sink(), shutdown).await;
    let stats = writer.finish().await?;
    let proxy_stats = run?;
    let lost = if proxy_stats.lost > 0 {
        format!(", {} finished too late to be stored", proxy_stats.lost)
    } else {
        String::new()
    };
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "recorded session {:?} into {}: {}, {}{lost}",
        args.session,
        args.db.display(),
        plural(stats.exchanges, "exchange"),
        plural(stats.events, "event")
    )?;
    out.flush()?;
    if let Some(a) = &anonymizer {
        eprintln!("anonymized (counts only):");
        super::anonymize::write_replaced(&mut std::io::stderr().lock(), &a.replaced())?;
        if let Some(path) = &args.anonymize_args.mapping_out {
            a.write_mapping(path)?;
        }
    }
    match wrapped {
        Some(w) => match w.status().await? {
            status if status.success() => Ok(ExitCode::SUCCESS),
            status => {
                eprintln!("ucwa-replay: the command failed ({status})");
                Ok(super::wrap::exit_code_of(status))
            }
        },
        None => Ok(ExitCode::SUCCESS),
    }
}

/// The anonymiser of `--anonymize`, told the deployment's origins; its options without
/// `--anonymize` are a usage error.
fn anonymizer(
    args: &RecordArgs,
    upstream: &Origin,
    also_upstreams: &[Origin],
) -> anyhow::Result<Option<Arc<Anonymizer>>> {
    let a = &args.anonymize_args;
    if !args.anonymize {
        let given = a.salt.is_some()
            || !a.map.is_empty()
            || a.keep_text
            || a.keep_domains
            || a.mapping_out.is_some();
        anyhow::ensure!(
            !given,
            "--salt, --map, --keep-text, --keep-domains and --mapping-out need --anonymize"
        );
        return Ok(None);
    }
    let anonymizer = a.anonymizer()?;
    for o in std::iter::once(upstream).chain(also_upstreams) {
        anonymizer.add_origin(&o.base());
    }
    Ok(Some(Arc::new(anonymizer)))
}

/// One line per exchange on a terminal, as an access log has it: method, path, status,
/// duration (and why there is no status). Paths are redacted already; control characters
/// are escaped.
fn access_line(ex: &Exchange) {
    let status = ex.status.map_or_else(|| "-".to_string(), |s| s.to_string());
    let why = ex
        .error
        .as_deref()
        .map(|e| format!(" ({})", printable(e)))
        .unwrap_or_default();
    let line = format!(
        "{} {} {status} {} ms{why}",
        printable(&ex.method),
        printable(&ex.path_and_query()),
        ex.duration_us / 1000
    );
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}
