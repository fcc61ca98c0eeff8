//! `ucwa-replay diff A B` and `ucwa-replay verify`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use ucwa_replay::diff::{DiffOptions, DiffReport, diff_sessions, render};
use ucwa_replay::store::Recording;

use super::{Ctx, OutputFormat};

/// Comparison switches shared by `diff` and `verify`.
#[derive(Debug, Clone, clap::Args)]
pub struct CompareArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// Compare raw values: no id placeholders, acks, dates, ETags, correlation ids, origins.
    #[arg(long)]
    pub no_normalize: bool,
    /// Leave a JSON pointer out of body comparison (`*` matches one segment), e.g.
    /// `/_links/*/href`. Repeatable.
    #[arg(long, value_name = "POINTER")]
    pub ignore: Vec<String>,
    /// Do not compare this response header (Content-Type and Location are compared by
    /// default). Repeatable.
    #[arg(long, value_name = "NAME")]
    pub ignore_header: Vec<String>,
    /// Also compare this response header (e.g. ETag). Repeatable.
    #[arg(long, value_name = "NAME")]
    pub header: Vec<String>,
}

impl CompareArgs {
    fn options(&self) -> anyhow::Result<DiffOptions> {
        let mut opts = DiffOptions::from_flags(
            self.no_normalize,
            &self.ignore,
            &self.header,
            &self.ignore_header,
        )?;
        opts.progress = std::io::stderr().is_terminal();
        Ok(opts)
    }
}

#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// First recording: FILE or FILE#SESSION (FILE alone when it holds one session).
    #[arg(value_name = "A")]
    pub a: String,
    /// Second recording: FILE or FILE#SESSION.
    #[arg(value_name = "B")]
    pub b: String,
    #[command(flatten)]
    pub compare: CompareArgs,
}

/// Split `FILE#SESSION`; a path that exists as given (even with a `#`) is a file.
pub fn parse_target(target: &str) -> (PathBuf, Option<String>) {
    if std::path::Path::new(target).exists() {
        return (PathBuf::from(target), None);
    }
    match target.rsplit_once('#') {
        Some((file, session)) if !file.is_empty() => {
            (PathBuf::from(file), Some(session.to_string()))
        }
        _ => (PathBuf::from(target), None),
    }
}

pub(crate) fn print_report(report: &DiffReport, format: OutputFormat) -> anyhow::Result<ExitCode> {
    let mut out = anstream::stdout();
    match format {
        OutputFormat::Json => render::write_json(report, &mut out)?,
        OutputFormat::Text => render::write_text(report, &mut out, true)?,
    }
    out.flush()?;
    Ok(if report.is_equal() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub async fn run_diff(args: DiffArgs, _ctx: Ctx) -> anyhow::Result<ExitCode> {
    let opts = args.compare.options()?;
    let (fa, na) = parse_target(&args.a);
    let (fb, nb) = parse_target(&args.b);
    let report = tokio::task::spawn_blocking(move || -> anyhow::Result<DiffReport> {
        let ra = Recording::open(&fa)?;
        let sa = ra.session(na.as_deref())?;
        let rb = Recording::open(&fb)?;
        let sb = rb.session(nb.as_deref())?;
        Ok(diff_sessions(&ra, &sa, &rb, &sb, &opts)?)
    })
    .await??;
    print_report(&report, args.compare.format)
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {}

pub async fn run_verify(_args: VerifyArgs, _ctx: Ctx) -> anyhow::Result<ExitCode> {
    anyhow::bail!("verify is not built yet")
}
