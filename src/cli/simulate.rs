//! `ucwa-replay simulate` (under construction).

use std::process::ExitCode;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(_args: Args, _ctx: Ctx) -> anyhow::Result<ExitCode> {
    anyhow::bail!("simulate is not built yet")
}
