//! `ucwa-replay sessions|show|events` (under construction).

use std::process::ExitCode;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct SessionsArgs {}
#[derive(Debug, clap::Args)]
pub struct ShowArgs {}
#[derive(Debug, clap::Args)]
pub struct EventsArgs {}

pub async fn sessions(_a: SessionsArgs, _ctx: Ctx) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not built yet")
}
pub async fn show(_a: ShowArgs, _ctx: Ctx) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not built yet")
}
pub async fn events(_a: EventsArgs, _ctx: Ctx) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not built yet")
}
