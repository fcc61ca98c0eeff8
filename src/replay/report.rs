//! What a replay did not do as recorded: the misses, and the recorded exchanges never played
//! (VCR's `allow_unused_http_interactions = false`). Written as JSON with `--report` on
//! shutdown and on demand (`GET /_replay/report`), and readable as text for test failures.

use std::path::Path;

use serde::Serialize;

use super::miss::{Miss, repr_name};
use crate::error::Error;
use crate::ucwa::Representation;

/// A recorded exchange the replay never served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unplayed {
    pub seq: u64,
    pub method: String,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    #[serde(serialize_with = "repr_name")]
    pub representation: Representation,
    pub status: Option<u16>,
    pub match_key: String,
}

impl std::fmt::Display for Unplayed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{} {} {}", self.seq, self.method, self.path)?;
        if let Some(q) = &self.query {
            write!(f, "?{q}")?;
        }
        match self.status {
            Some(s) => write!(f, " ({}, recorded {s})", self.representation),
            None => write!(f, " ({}, recorded without response)", self.representation),
        }
    }
}

/// The state of a replay so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplayReport {
    pub recording: String,
    pub session: String,
    /// Exchanges in the session.
    pub recorded: usize,
    /// Requests answered from the recording (repeats included).
    pub served: u64,
    /// Distinct recorded exchanges served at least once.
    pub played: usize,
    pub misses: Vec<Miss>,
    pub unplayed: Vec<Unplayed>,
}

impl ReplayReport {
    /// True when every recorded exchange was played and nothing missed.
    pub fn is_clean(&self) -> bool {
        self.misses.is_empty() && self.unplayed.is_empty()
    }

    /// The one-line summary the CLI prints on exit.
    pub fn summary(&self) -> String {
        format!(
            "replay of {:?}: played {} of {} recorded exchanges ({} requests served), {} misses, {} unplayed",
            self.session,
            self.played,
            self.recorded,
            self.served,
            self.misses.len(),
            self.unplayed.len()
        )
    }

    /// Write the JSON report to `path` (a new file appears whole, an existing one keeps its
    /// links and mode: `crate::output`).
    pub fn write(&self, path: &Path) -> Result<(), Error> {
        let err = |source| Error::WriteFile {
            path: path.to_path_buf(),
            source,
        };
        let text = serde_json::to_vec_pretty(self).map_err(|e| err(std::io::Error::other(e)))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        // A new file appears whole; an existing one keeps its links and mode (crate::output).
        crate::output::write_bytes(path, &text)
    }
}

impl std::fmt::Display for ReplayReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}", self.summary())?;
        if !self.misses.is_empty() {
            writeln!(f, "  misses:")?;
            for m in &self.misses {
                writeln!(f, "    {m}")?;
            }
        }
        if !self.unplayed.is_empty() {
            writeln!(f, "  recorded but never played:")?;
            for u in &self.unplayed {
                writeln!(f, "    {u}")?;
            }
        }
        Ok(())
    }
}
