//! `ucwa-replay report --db FILE --session NAME -o report.html [--replay-report REPORT.json]`:
//! a self-contained HTML page of a session (see `ucwa_replay::html`), optionally with a
//! replay's findings laid over it.

use std::path::PathBuf;
use std::process::ExitCode;

use ucwa_replay::html::{self, HtmlError, ReplayOverlay};
use ucwa_replay::store::Recording;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The recording file.
    #[arg(long, value_name = "FILE", default_value = "recordings/ucwa.sqlite")]
    pub db: PathBuf,
    /// The session (optional when the file holds one).
    #[arg(long, value_name = "NAME")]
    pub session: Option<String>,
    /// Where to write the page (its directory must exist).
    #[arg(short = 'o', long = "output", value_name = "FILE.html")]
    pub output: PathBuf,
    /// A replay's JSON report (`replay --report`) to lay over the session: misses, near
    /// misses, injected faults, exchanges never played.
    #[arg(long, value_name = "REPORT.json")]
    pub replay_report: Option<PathBuf>,
}

pub async fn run(args: Args, _ctx: Ctx) -> anyhow::Result<ExitCode> {
    html::check_output(&args.output)?;
    let (written, exchanges) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let rec = Recording::open(&args.db)?;
        let session = rec.session(args.session.as_deref())?;
        let overlay = match &args.replay_report {
            Some(path) => {
                let overlay = ReplayOverlay::load(path)?;
                if overlay.session != session.name {
                    return Err(HtmlError::OtherSession {
                        path: path.clone(),
                        found: overlay.session,
                        expected: session.name,
                    }
                    .into());
                }
                Some(overlay)
            }
            None => None,
        };
        let exchanges = rec.exchanges(&session)?;
        let page = html::session_page(
            &args.db.display().to_string(),
            &session,
            &exchanges,
            overlay.as_ref(),
        );
        html::write_page(&args.output, &page)?;
        Ok((args.output, exchanges.len()))
    })
    .await??;
    tracing::info!(path = %written.display(), exchanges, "report written");
    Ok(ExitCode::SUCCESS)
}
