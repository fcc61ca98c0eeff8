//! `ucwa-replay export|import`: a session as HAR 1.2 or NDJSON, and a HAR file (our own
//! export, or a browser's devtools capture) as a new session. The mapping is documented in
//! `ucwa_replay::har`.
//!
//! `export` writes to stdout unless `--output FILE` is given (as `ucwa_replay::output`
//! writes every file: a new file appears whole, an existing one keeps its links, mode and
//! owner, a FIFO or device is written through; a failed export leaves it as it was). `import` reads and checks
//! the whole file before creating the session: a bad file writes nothing (exit 2). Imported
//! exchanges are redacted like recorded ones (`--redact-header/-field/-regex` add to the
//! defaults). `import` prints one summary line (`--format json`: an object with `session`,
//! `upstream`, `also_upstreams`, `exchanges`, `events`, `skipped`, `secrets_redacted`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use ucwa_replay::har::{self, ImportOptions};
use ucwa_replay::store::Recording;

use super::text::plural;
use super::{Ctx, OutputFormat};

const DEFAULT_DB: &str = "recordings/ucwa.sqlite";

/// Interchange formats of `export`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// HTTP Archive 1.2 (one JSON document; `_ucwa` custom fields keep UCWA details).
    #[default]
    Har,
    /// One JSON object per exchange per line, events included.
    Ndjson,
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The recording file.
    #[arg(long, value_name = "FILE", default_value = DEFAULT_DB)]
    pub db: PathBuf,
    /// The session (optional when the file holds one).
    #[arg(long, value_name = "NAME")]
    pub session: Option<String>,
    /// Output format.
    #[arg(value_name = "FORMAT", long, value_enum, default_value_t = ExportFormat::Har)]
    pub format: ExportFormat,
    /// Write to FILE instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The recording file (created if missing).
    #[arg(long, value_name = "FILE", default_value = DEFAULT_DB)]
    pub db: PathBuf,
    /// Name of the new session.
    #[arg(long, value_name = "NAME")]
    pub session: String,
    /// The HAR file to import.
    #[arg(value_name = "FILE.har")]
    pub file: PathBuf,
    /// Replace an existing session of the same name.
    #[arg(long)]
    pub replace: bool,
    #[command(flatten)]
    pub redact: super::RedactArgs,
    /// Output format of the summary.
    #[arg(value_name = "FORMAT", long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

pub async fn export(a: ExportArgs, _ctx: Ctx) -> anyhow::Result<ExitCode> {
    if let Some(path) = &a.output {
        ucwa_replay::output::check(path)?;
    }
    let rec = Recording::open(&a.db)?;
    let session = rec.session(a.session.as_deref())?;
    // Written while the exchanges are read: the session is never held whole.
    let write = |out: &mut dyn Write| -> std::io::Result<()> {
        match a.format {
            ExportFormat::Har => har::export_har(out, &rec, &session),
            ExportFormat::Ndjson => har::export_ndjson(out, &rec, &session),
        }
        .map(drop)
        .map_err(|err| match err {
            // Kept as they are: a closed pipe on stdout is success (main.rs).
            ucwa_replay::Error::Io(io) => io,
            other => std::io::Error::other(other),
        })
    };
    match &a.output {
        None => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            write(&mut out)?;
        }
        Some(path) => {
            ucwa_replay::output::write_with(path, |out| write(out))?;
            tracing::info!(
                exchanges = session.exchanges,
                "exported {}#{} to {}",
                a.db.display(),
                session.name,
                path.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn import(a: ImportArgs, _ctx: Ctx) -> anyhow::Result<ExitCode> {
    let opts = ImportOptions {
        session: a.session.clone(),
        replace: a.replace,
        redact: a.redact.redact_config(),
        key: a.redact.key_options(),
    };
    let stats = har::import_har(&a.db, &a.file, &opts).await?;
    let mut out = std::io::stdout().lock();
    match a.format {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &stats)?;
            writeln!(out)?;
        }
        OutputFormat::Text => {
            writeln!(
                out,
                "imported {} ({}) from {} into {}#{} (upstream {}{}); {} redacted{}",
                plural(stats.exchanges as u64, "exchange"),
                plural(stats.events as u64, "event"),
                a.file.display(),
                a.db.display(),
                stats.session,
                stats.upstream,
                if stats.also_upstreams.is_empty() {
                    String::new()
                } else {
                    format!(", also {}", stats.also_upstreams.join(", "))
                },
                plural(stats.secrets_redacted as u64, "secret"),
                if stats.skipped > 0 {
                    let entries = if stats.skipped == 1 {
                        "entry"
                    } else {
                        "entries"
                    };
                    format!("; {} non-HTTP {entries} skipped", stats.skipped)
                } else {
                    String::new()
                }
            )?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
