//! `ucwa-replay diff` and `verify` (under construction).

use std::process::ExitCode;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct DiffArgs {}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {}

pub async fn run_diff(_args: DiffArgs, _ctx: Ctx) -> anyhow::Result<ExitCode> {
    anyhow::bail!("diff is not built yet")
}

pub async fn run_verify(_args: VerifyArgs, _ctx: Ctx) -> anyhow::Result<ExitCode> {
    anyhow::bail!("verify is not built yet")
}
