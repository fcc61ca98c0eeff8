//! `ucwa-replay audit`: scan a recording for secret-looking material, and with `--pii` for
//! personal data too (see `ucwa_replay::audit` for what counts). Exit 1 when anything is
//! found, 0 when the recording is clean, 2 when it cannot be read. Personal data is never
//! printed: a finding shows only the value's length.
//!
//! Text output: one line per finding (`SESSION#SEQ  WHERE  WHAT  EXCERPT`, the secret masked
//! to its first characters), then a summary line. `--format json`: an object with `sessions`,
//! `exchanges`, `findings` (`session`, `seq`, `location`, `rule`, `excerpt`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use ucwa_replay::audit::{Auditor, PiiAuditor};
use ucwa_replay::store::Recording;

use super::text::{plural, printable};
use super::{Ctx, OutputFormat};

const DEFAULT_DB: &str = "recordings/ucwa.sqlite";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The recording file.
    #[arg(long, value_name = "FILE", default_value = DEFAULT_DB)]
    pub db: PathBuf,
    /// Only this session (default: every session of the file).
    #[arg(long, value_name = "NAME")]
    pub session: Option<String>,
    /// Also report matches of this regex (group 1 if it has one; repeatable).
    #[arg(long, value_name = "RE")]
    pub regex: Vec<String>,
    /// Also report personal data: addresses, SIP URIs, tel: numbers, names, titles,
    /// departments, notes, locations, subjects, message text and photos not anonymised.
    #[arg(long)]
    pub pii: bool,
    /// Output format.
    #[arg(value_name = "FORMAT", long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

pub async fn run(a: Args, _ctx: Ctx) -> anyhow::Result<ExitCode> {
    let auditor = Auditor::new(&a.regex)?;
    let rec = Recording::open(&a.db)?;
    let mut report = auditor.scan_recording(&rec, a.session.as_deref())?;
    if a.pii {
        let pii = PiiAuditor::new().scan_recording(&rec, a.session.as_deref())?;
        report.findings.extend(pii.findings);
        report
            .findings
            .sort_by(|x, y| (&x.session, x.seq).cmp(&(&y.session, y.seq)));
    }
    let what = if a.pii {
        "secret-looking material or personal data"
    } else {
        "secret-looking material"
    };
    let mut out = std::io::stdout().lock();
    match a.format {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        OutputFormat::Text => {
            for f in &report.findings {
                writeln!(
                    out,
                    "{}#{}  {}  {}  {}",
                    printable(&f.session),
                    f.seq,
                    printable(&f.location),
                    f.rule,
                    printable(&f.excerpt)
                )?;
            }
            let exchanges: std::collections::BTreeSet<(&str, u64)> = report
                .findings
                .iter()
                .map(|f| (f.session.as_str(), f.seq))
                .collect();
            if report.is_clean() {
                writeln!(
                    out,
                    "clean: no {what} in {} of {}",
                    plural(report.exchanges, "exchange"),
                    plural(report.sessions as u64, "session")
                )?;
            } else {
                writeln!(
                    out,
                    "{} in {} of {} ({})",
                    plural(report.findings.len() as u64, "finding"),
                    exchanges.len(),
                    plural(report.exchanges, "exchange"),
                    plural(report.sessions as u64, "session")
                )?;
            }
        }
    }
    out.flush()?;
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
