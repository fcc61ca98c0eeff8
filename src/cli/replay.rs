//! `ucwa-replay replay` (under construction).

use std::process::ExitCode;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(_args: Args, _ctx: Ctx) -> anyhow::Result<ExitCode> {
    anyhow::bail!("replay is not built yet")
}
