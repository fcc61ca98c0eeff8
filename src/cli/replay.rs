//! `ucwa-replay replay`: serve a recorded session, never touching the network.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use ucwa_replay::replay::{BodyMatch, Exhausted, FeedEnd, Pace, ReplayConfig, Replayer};

use super::{Ctx, OutputFormat};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The recording file.
    #[arg(long, default_value = "recordings/ucwa.sqlite")]
    pub db: PathBuf,
    /// Session to replay (optional when the file holds one session).
    #[arg(long)]
    pub session: Option<String>,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:4782")]
    pub listen: SocketAddr,
    /// When a repeated request has used up its recorded answers: repeat-last or error.
    #[arg(long, default_value = "repeat-last", value_parser = parse::<Exhausted>)]
    pub exhausted: Exhausted,
    /// An events-feed ack beyond the recording: hold (until the request's timeout, then an
    /// empty batch) or empty (at once).
    #[arg(long, default_value = "hold", value_parser = parse::<FeedEnd>)]
    pub feed_end: FeedEnd,
    /// Timing: instant, recorded, or scaled:F (recorded durations times F).
    #[arg(long, default_value = "instant", value_parser = parse::<Pace>)]
    pub pace: Pace,
    /// A request differing only by its body: lenient (serve the only candidate, with a
    /// warning) or strict (a miss).
    #[arg(long, default_value = "lenient", value_parser = parse::<BodyMatch>)]
    pub body_match: BodyMatch,
    /// Body field left out of matching, beyond the default client-generated ids (repeatable).
    #[arg(long = "ignore-body-field", value_name = "NAME")]
    pub ignore_body_fields: Vec<String>,
    /// Write the misses and never-played exchanges as JSON to this file on shutdown (and on
    /// `GET /_replay/report`).
    #[arg(long, value_name = "FILE.json")]
    pub report: Option<PathBuf>,
    /// On exit, also print the report to stdout (after the URL line): text (default: only the
    /// summary line on stderr) or json.
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
    #[command(flatten)]
    pub listener: super::ListenerArgs,
}

fn parse<T: std::str::FromStr<Err = ucwa_replay::Error>>(s: &str) -> Result<T, String> {
    s.parse::<T>().map_err(|e| e.to_string())
}

pub async fn run(args: Args, ctx: Ctx) -> anyhow::Result<ExitCode> {
    let format = args.format;
    let config = ReplayConfig {
        exhausted: args.exhausted,
        feed_end: args.feed_end,
        pace: args.pace,
        body_match: args.body_match,
        ignore_body_fields: args.ignore_body_fields,
        report_path: args.report,
    };
    let replayer = Arc::new(Replayer::load(&args.db, args.session.as_deref(), config)?);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "http://{addr}")?;
        out.flush()?;
    }
    tracing::info!(
        session = %replayer.session().name,
        upstream = %replayer.session().upstream,
        "replaying on http://{addr}"
    );
    let limits = args.listener.limits();
    let report =
        ucwa_replay::replay::run_with_limits(listener, replayer, limits, ctx.shutdown).await?;
    if format == OutputFormat::Json {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
        out.flush()?;
    }
    eprintln!("{}", report.summary());
    Ok(ExitCode::SUCCESS)
}
