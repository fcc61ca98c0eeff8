//! A recording into another: every session (or one) read from IN, each exchange passed
//! through the same ingest step as `record` with the anonymiser as its filter — so match
//! keys, ordinals and the events index are computed again on the anonymised bytes — and
//! written by the store's writer into OUT, a new file. IN is only read.

use std::path::Path;
use std::sync::Arc;

use super::{Anonymizer, Replaced};
use crate::error::Error;
use crate::progress::Progress;
use crate::recording::{Ingest, KeyOptions};
use crate::redact::RedactConfig;
use crate::store::{NewSession, Recording, StoreWriter};

/// What to anonymise beyond the anonymiser's own settings. Start from
/// [`AnonymizeOptions::new`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct AnonymizeOptions {
    /// Only this session (default: every session of IN).
    pub session: Option<String>,
    /// Redaction beyond the defaults (the ingest step redacts again; placeholders stay).
    pub redact: RedactConfig,
    /// The key options the keys are computed with.
    pub key: KeyOptions,
}

impl AnonymizeOptions {
    /// Every session, default redaction and keys.
    pub fn new() -> Self {
        Self::default()
    }
}

/// What a pass wrote.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct AnonymizeReport {
    pub sessions: Vec<String>,
    pub exchanges: u64,
    pub events: u64,
    pub replaced: Replaced,
}

/// Anonymise `input` (every session, or `options.session`) into `output`, which must not
/// exist yet. On failure nothing is left at `output`.
pub async fn anonymize_recording(
    input: &Path,
    output: &Path,
    anonymizer: Arc<Anonymizer>,
    options: &AnonymizeOptions,
    progress: Option<&Progress>,
) -> Result<AnonymizeReport, Error> {
    if output.exists() {
        return Err(Error::invalid(
            "--out",
            format!(
                "{} already exists: anonymize writes a new recording (remove it or choose another path)",
                output.display()
            ),
        ));
    }
    let rec = Recording::open(input)?;
    let sessions = match &options.session {
        Some(name) => vec![rec.session(Some(name))?],
        None => rec.sessions()?,
    };
    if sessions.is_empty() {
        return Err(Error::invalid(
            "--db",
            format!("{} holds no session to anonymize", input.display()),
        ));
    }
    let result = write(&rec, &sessions, output, anonymizer, options, progress).await;
    if result.is_err() {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = output.as_os_str().to_owned();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
    result
}

async fn write(
    rec: &Recording,
    sessions: &[crate::recording::SessionInfo],
    output: &Path,
    anonymizer: Arc<Anonymizer>,
    options: &AnonymizeOptions,
    progress: Option<&Progress>,
) -> Result<AnonymizeReport, Error> {
    let total: u64 = sessions.iter().map(|s| s.exchanges).sum();
    // First the deployment's origins and who is called what, over every session, so that a
    // name met before its address still becomes that person's name.
    let mut held = None;
    for s in sessions {
        anonymizer.add_origin(&s.upstream);
        for a in &s.also_upstreams {
            anonymizer.add_origin(a);
        }
        let exchanges = rec.exchanges(s)?;
        for ex in &exchanges {
            anonymizer.observe(ex);
        }
        if sessions.len() == 1 {
            held = Some(exchanges);
        }
    }
    let mut report = AnonymizeReport::default();
    let mut done = 0;
    for s in sessions {
        let exchanges = match held.take() {
            Some(e) => e,
            None => rec.exchanges(s)?,
        };
        let ingest =
            Ingest::new(&options.redact, options.key.clone())?.with_filter(anonymizer.clone());
        let writer = StoreWriter::create(
            output,
            &NewSession {
                name: s.name.clone(),
                upstream: anonymizer.anonymize_text(&s.upstream),
                also_upstreams: s
                    .also_upstreams
                    .iter()
                    .map(|a| anonymizer.anonymize_text(a))
                    .collect(),
                replace: false,
            },
        )?;
        let sink = writer.sink();
        for mut ex in exchanges {
            ex.id = 0;
            ex.ordinal = 0;
            ex.events.clear();
            ingest.ingest_classified(&mut ex, false);
            sink.submit(ex);
            done += 1;
            if let Some(p) = progress
                && (done % 256 == 0 || done == total)
            {
                p.report(done, total);
            }
        }
        drop(sink);
        let stats = writer.finish().await?;
        report.sessions.push(s.name.clone());
        report.exchanges += stats.exchanges;
        report.events += stats.events;
    }
    report.replaced = anonymizer.replaced();
    Ok(report)
}
