//! `ucwa-replay replay`: serve a recorded session, never touching the network (unless
//! `--fallback` asks for spy mode); with `-- CMD`, run a test command against it and exit by
//! the verdict.

use std::ffi::OsString;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use ucwa_replay::recording::Origin;
use ucwa_replay::replay::{
    Allow, BodyMatch, Exhausted, FaultRule, FeedEnd, Pace, ReplayConfig, ReplayReport, Replayer,
};
use ucwa_replay::spy::SpyConfig;
use ucwa_replay::upstream::TrustConfig;

use super::wrap::{Wrapped, exit_code_of};
use super::{Ctx, OutputFormat};

/// The variable `-- CMD` finds the replay's base URL in.
pub const URL_VAR: &str = "UCWA_REPLAY_URL";

/// Boxed so that the `Command` enum stays small (clippy::large_enum_variant).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub inner: Box<ReplayArgs>,
}

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// The recording file.
    #[arg(value_name = "FILE", long, default_value = "recordings/ucwa.sqlite")]
    pub db: PathBuf,
    /// Session to replay (optional when the file holds one session).
    #[arg(value_name = "NAME", long)]
    pub session: Option<String>,
    /// Address to listen on (port 0 picks a free port).
    #[arg(value_name = "ADDR", long, default_value = "127.0.0.1:4782")]
    pub listen: SocketAddr,
    /// When a repeated request has used up its recorded answers: repeat-last or error.
    #[arg(value_name = "MODE", long, default_value = "repeat-last", value_parser = parse::<Exhausted>)]
    pub exhausted: Exhausted,
    /// An events-feed ack beyond the recording: hold (until the request's timeout, then an
    /// empty batch) or empty (at once).
    #[arg(value_name = "MODE", long, default_value = "hold", value_parser = parse::<FeedEnd>)]
    pub feed_end: FeedEnd,
    /// Timing: instant, recorded, or scaled:F (recorded durations times F).
    #[arg(value_name = "MODE", long, default_value = "instant", value_parser = parse::<Pace>)]
    pub pace: Pace,
    /// A request differing only by its body: lenient (serve the only candidate; a near miss,
    /// reported and failing the verdict) or strict (a miss).
    #[arg(value_name = "MODE", long, default_value = "lenient", value_parser = parse::<BodyMatch>)]
    pub body_match: BodyMatch,
    /// Body field left out of matching, beyond the default client-generated ids (repeatable).
    #[arg(long = "ignore-body-field", value_name = "NAME")]
    pub ignore_body_fields: Vec<String>,
    /// Inject a fault: "METHOD PATH-GLOB [#N] => ACTION", ACTION one of STATUS CODE[/SUBCODE],
    /// delay DURATION, reset, truncate (repeatable; e.g. "GET */participantMessaging #1 =>
    /// 409 Conflict/AlreadyExists").
    #[arg(long = "inject", value_name = "RULE", value_parser = parse::<FaultRule>)]
    pub inject: Vec<FaultRule>,
    /// Write the report (misses, near misses, faults, never-played exchanges) as JSON to this
    /// file on shutdown (and on `GET /_replay/report`).
    #[arg(long, value_name = "FILE.json")]
    pub report: Option<PathBuf>,
    /// On exit, also print the report to stdout (after the URL line): text (default: only the
    /// summary line on stderr) or json.
    #[arg(value_name = "FORMAT", long, value_enum, default_value_t)]
    pub format: OutputFormat,
    /// With `-- CMD`: recorded exchanges never played do not fail the run.
    #[arg(long)]
    pub allow_unplayed: bool,
    /// With `-- CMD`: near misses do not fail the run.
    #[arg(long)]
    pub allow_near_misses: bool,
    /// Spy mode: forward what the recording cannot answer to this live server (the session's
    /// upstream), record it into the session, and serve it. Never the default.
    #[arg(long, value_name = "URL")]
    pub fallback: Option<String>,
    /// Spy mode: record forwarded exchanges into this session (created when missing) instead
    /// of the one being replayed.
    #[arg(long, value_name = "NAME", requires = "fallback")]
    pub fallback_session: Option<String>,
    /// Spy mode: another host of the deployment, published under /_upstream/HOST (repeatable).
    #[arg(long = "also-upstream", value_name = "URL", requires = "fallback")]
    pub also_upstream: Vec<String>,
    /// Spy mode: trust the system's root certificates instead of the Mozilla set.
    #[arg(long, requires = "fallback")]
    pub native_roots: bool,
    /// Spy mode: also trust the CA certificate(s) in this PEM file (repeatable).
    #[arg(long, value_name = "FILE.pem", requires = "fallback")]
    pub upstream_ca: Vec<PathBuf>,
    /// Spy mode: do not verify the live server's certificate (logged as a warning).
    #[arg(long, requires = "fallback")]
    pub insecure_upstream: bool,
    /// Another header whose value is a secret (repeatable): redacted in what is reported and,
    /// in spy mode, recorded.
    #[arg(long, value_name = "NAME")]
    pub redact_header: Vec<String>,
    /// Another JSON / form / XML field whose value is a secret (repeatable).
    #[arg(long, value_name = "NAME")]
    pub redact_field: Vec<String>,
    /// A regex whose matches (group 1 if any) are secrets (repeatable).
    #[arg(long, value_name = "RE")]
    pub redact_regex: Vec<String>,
    /// The test command to run against the replay (its URL in UCWA_REPLAY_URL). The exit
    /// status is the command's when it fails, else 1 if anything missed, nearly missed or
    /// (unless --allow-unplayed) was never played, else 0.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
    #[command(flatten)]
    pub listener: super::ListenerArgs,
}

fn parse<T: std::str::FromStr<Err = ucwa_replay::Error>>(s: &str) -> Result<T, String> {
    s.parse::<T>().map_err(|e| e.to_string())
}

pub async fn run(args: Args, ctx: Ctx) -> anyhow::Result<ExitCode> {
    let args = *args.inner;
    let format = args.format;
    let mut config = ReplayConfig::new();
    config.exhausted = args.exhausted;
    config.feed_end = args.feed_end;
    config.pace = args.pace;
    config.body_match = args.body_match;
    config.ignore_body_fields = args.ignore_body_fields.clone();
    config.report_path = args.report.clone();
    config.faults = args.inject.clone();
    config.redact.headers = args.redact_header.clone();
    config.redact.fields = args.redact_field.clone();
    config.redact.regexes = args.redact_regex.clone();
    let spy = match &args.fallback {
        None => None,
        Some(url) => {
            let mut spy = SpyConfig::new(Origin::parse(url)?);
            spy.also_upstreams = args
                .also_upstream
                .iter()
                .map(|u| Origin::parse(u))
                .collect::<Result<_, _>>()?;
            spy.trust = TrustConfig {
                native_roots: args.native_roots,
                extra_ca: args.upstream_ca.clone(),
                insecure: args.insecure_upstream,
            };
            spy.session = args.fallback_session.clone();
            spy.redact = config.redact.clone();
            spy.key_options = config.key_options();
            Some(spy)
        }
    };
    let replayer = Arc::new(Replayer::load(&args.db, args.session.as_deref(), config)?);
    let spy = match spy {
        Some(spy) => Some(ucwa_replay::spy::prepare(&args.db, &replayer, spy)?),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let url = format!("http://{addr}");
    let (wrapped, shutdown) = if args.command.is_empty() {
        // A server command's first stdout line is its URL; a wrapped command owns stdout.
        let mut out = std::io::stdout().lock();
        writeln!(out, "{url}")?;
        out.flush()?;
        (None, ctx.shutdown.clone())
    } else {
        let wrapped = Wrapped::spawn(&args.command, URL_VAR, &url, &ctx.shutdown)?;
        let shutdown = wrapped.shutdown.clone();
        (Some(wrapped), shutdown)
    };
    let session = replayer.session();
    tracing::info!(session = %session.name, upstream = %session.upstream, "replaying on {url}");
    let limits = args.listener.limits();
    let report: ReplayReport = match spy {
        None => ucwa_replay::replay::run_with(listener, replayer, None, limits, shutdown).await?,
        Some(spy) => {
            let outcome = ucwa_replay::spy::run(listener, replayer, spy, limits, shutdown).await?;
            eprintln!(
                "spy mode: {} forwarded exchanges recorded into session {:?} of {}",
                outcome.stored.exchanges,
                outcome.session,
                args.db.display()
            );
            outcome.report
        }
    };
    let status = match wrapped {
        Some(w) => Some(w.status().await?),
        None => None,
    };
    if format == OutputFormat::Json {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
        out.flush()?;
    }
    let mut allow = Allow::nothing();
    if args.allow_unplayed {
        allow = allow.unplayed();
    }
    if args.allow_near_misses {
        allow = allow.near_misses();
    }
    match status {
        None => {
            eprintln!("{}", report.summary());
            Ok(ExitCode::SUCCESS)
        }
        Some(status) if !status.success() => {
            eprintln!("{}", report.summary());
            eprintln!("ucwa-replay: the command failed ({status})");
            Ok(exit_code_of(status))
        }
        Some(_) if report.passes(allow) => {
            eprintln!("{}", report.summary());
            Ok(ExitCode::SUCCESS)
        }
        Some(_) => {
            // The command passed, but the replay says its client no longer does what was
            // recorded: the whole report, so the log names each finding.
            eprint!("{report}");
            eprintln!("ucwa-replay: the command passed, but the replay did not go as recorded");
            Ok(ExitCode::from(1))
        }
    }
}
