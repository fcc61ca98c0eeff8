//! `ucwa-replay simulate`: the built-in UCWA front-end, for developing clients with no
//! Skype for Business server (credentials and control API: see `ucwa_replay::sim`).

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use ucwa_replay::sim::{self, SimConfig};

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(value_name = "ADDR", long, default_value = "127.0.0.1:4780")]
    pub listen: SocketAddr,
    /// Seed of every id, token and etag: same seed + same requests = same bytes.
    #[arg(value_name = "N", long, default_value_t = 1)]
    pub seed: u64,
    /// Real seconds per simulated second of waiting. A P-GET's `timeout` is clamped to
    /// 180–1800 s as on a real server (`timeout=10` waits 180 s), then multiplied by this:
    /// 0.01 makes that 180 s last 1.8 s.
    #[arg(value_name = "FACTOR", long, default_value_t = 1.0, value_parser = parse_scale)]
    pub time_scale: f64,
    #[command(flatten)]
    pub listener: super::ListenerArgs,
}

fn parse_scale(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a non-negative number")),
    }
}

pub async fn run(args: Args, ctx: Ctx) -> anyhow::Result<ExitCode> {
    let listener = ucwa_replay::serve::bind(&args.listen.to_string()).await?;
    let addr = listener.local_addr().context("listener has no address")?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "http://{addr}")?;
    out.flush()?;
    drop(out);
    tracing::info!(%addr, seed = args.seed, time_scale = args.time_scale, "simulator listening (user alice@contoso.com, password {})", sim::PASSWORD);
    let config = SimConfig {
        seed: args.seed,
        time_scale: args.time_scale,
    };
    sim::run_with_limits(listener, config, args.listener.limits(), ctx.shutdown).await;
    Ok(ExitCode::SUCCESS)
}
