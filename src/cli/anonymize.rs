//! `ucwa-replay anonymize`: a shareable copy of a recording, every person replaced by a
//! consistent pseudonym (see `ucwa_replay::anonymize` for the scheme). Prints what it
//! replaced by category — counts only, never a value. Exit 0 when written, 2 on a usage or
//! input error (nothing is left at `--out`).
//!
//! [`AnonymizeArgs`] are shared with `record --anonymize`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use ucwa_replay::anonymize::{
    AnonymizeConfig, AnonymizeOptions, Anonymizer, Category, Replaced, anonymize_recording,
    parse_pin,
};

use super::{Ctx, OutputFormat};

/// How pseudonyms are made: shared by `anonymize` and `record --anonymize`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AnonymizeArgs {
    /// Salt of the pseudonyms: the same input and salt give the same output (default: a
    /// random salt, so pseudonyms cannot be reversed by hashing known names).
    #[arg(long, value_name = "TEXT")]
    pub salt: Option<String>,
    /// Pin a pseudonym: an address (bob@contoso.com=peer@example.org), a domain, a
    /// tel: number, or any other value (a name, a message text). Repeatable.
    #[arg(long = "map", value_name = "REAL=PSEUDO")]
    pub map: Vec<String>,
    /// Keep message text and subjects (people, names, notes and photos are still replaced).
    #[arg(long)]
    pub keep_text: bool,
    /// Keep the organisation's domains and host names.
    #[arg(long)]
    pub keep_domains: bool,
    /// Write the real → pseudonym table to this file (JSON, owner-readable only; keep it
    /// private).
    #[arg(long, value_name = "FILE")]
    pub mapping_out: Option<PathBuf>,
}

impl AnonymizeArgs {
    pub fn anonymizer(&self) -> anyhow::Result<Anonymizer> {
        let mut config = AnonymizeConfig::new();
        config.salt = self.salt.clone();
        config.keep_text = self.keep_text;
        config.keep_domains = self.keep_domains;
        for m in &self.map {
            config.pins.push(parse_pin(m)?);
        }
        Ok(Anonymizer::new(&config)?)
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The recording to anonymise (only read).
    #[arg(long, value_name = "IN", default_value = "recordings/ucwa.sqlite")]
    pub db: PathBuf,
    /// Only this session (default: every session).
    #[arg(long, value_name = "NAME")]
    pub session: Option<String>,
    /// The new recording (must not exist).
    #[arg(long, value_name = "OUT")]
    pub out: PathBuf,
    #[command(flatten)]
    pub anonymize: AnonymizeArgs,
    #[command(flatten)]
    pub redact: super::RedactArgs,
    /// Output format of the summary.
    #[arg(value_name = "FORMAT", long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

pub async fn run(a: Args, _ctx: Ctx) -> anyhow::Result<ExitCode> {
    let anonymizer = Arc::new(a.anonymize.anonymizer()?);
    let mut options = AnonymizeOptions::new();
    options.session = a.session.clone();
    options.redact = a.redact.redact_config();
    options.key = a.redact.key_options();
    let progress = super::diff::progress_bar("anonymizing");
    let report =
        anonymize_recording(&a.db, &a.out, anonymizer.clone(), &options, Some(&progress)).await?;
    if let Some(path) = &a.anonymize.mapping_out {
        anonymizer.write_mapping(path)?;
    }
    let mut out = std::io::stdout().lock();
    match a.format {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        OutputFormat::Text => {
            writeln!(
                out,
                "anonymized {} session{} ({}), {} exchanges, {} events into {}",
                report.sessions.len(),
                if report.sessions.len() == 1 { "" } else { "s" },
                report.sessions.join(", "),
                report.exchanges,
                report.events,
                a.out.display()
            )?;
            write_replaced(&mut out, &report.replaced)?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The replaced values by category: distinct values and occurrences, nothing else.
pub fn write_replaced(out: &mut impl Write, replaced: &Replaced) -> std::io::Result<()> {
    for c in Category::ALL {
        let t = replaced
            .categories
            .get(c.label())
            .copied()
            .unwrap_or_default();
        writeln!(
            out,
            "  {:<42} {:>6} distinct {:>8} replaced",
            c.describe(),
            t.distinct,
            t.occurrences
        )?;
    }
    if replaced.binary_bodies_kept > 0 {
        writeln!(
            out,
            "  {} binary bodies (not images) were kept as they were: not examined",
            replaced.binary_bodies_kept
        )?;
    }
    Ok(())
}
