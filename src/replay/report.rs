//! What a replay did not do as recorded: the misses, and the recorded exchanges never played
//! (VCR's `allow_unused_http_interactions = false`). Written as JSON with `--report` on
//! shutdown and on demand (`GET /_replay/report`), and readable as text for test failures.

use std::path::Path;

use serde::Serialize;

use super::miss::{Miss, repr_name};
use super::near_miss::NearMiss;
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

/// An injected fault that fired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FaultFired {
    /// The rule, as written back (`GET */events #2 => reset`).
    pub rule: String,
    pub method: String,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// What the client got: `409 Conflict/AlreadyExists`, `delay 2s`, `reset`, `truncate`.
    pub action: String,
    /// The recorded exchange the fault stood in for (or delayed), if the recording had one.
    pub seq: Option<u64>,
}

impl std::fmt::Display for FaultFired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.path)?;
        if let Some(q) = &self.query {
            write!(f, "?{q}")?;
        }
        write!(f, ": {} [{}]", self.action, self.rule)?;
        if let Some(seq) = self.seq {
            write!(f, " instead of recorded #{seq}")?;
        }
        Ok(())
    }
}

/// A request the HTTP layer refused before the replay could read it (a request line or head
/// beyond hyper's limits): the client got the status, the report gets what could be seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejected {
    /// What the client was answered: `414` (URI too long) or `431` (head too large).
    pub status: u16,
    pub reason: String,
    /// The method, when the start of the request line could be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The start of the request target (redacted, cut at a few hundred bytes).
    pub target: String,
    /// The length of the request line in bytes, when its end was seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_line_bytes: Option<usize>,
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}",
            self.method.as_deref().unwrap_or("?"),
            self.target
        )?;
        if let Some(n) = self.request_line_bytes {
            write!(f, " ({n}-byte request line)")?;
        }
        write!(f, ": {} {}", self.status, self.reason)
    }
}

/// A request spy mode forwarded to the live server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Forwarded {
    pub method: String,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    #[serde(serialize_with = "repr_name")]
    pub representation: Representation,
    /// The status the client got: the live server's, or the `502`/`504` of a live server
    /// that could not be reached.
    pub status: u16,
}

impl std::fmt::Display for Forwarded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.path)?;
        if let Some(q) = &self.query {
            write!(f, "?{q}")?;
        }
        write!(f, " ({}) → {}", self.representation, self.status)
    }
}

/// What a verdict lets pass. `Allow::default()` allows nothing: every miss, near miss,
/// rejected request and unplayed exchange fails.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Allow {
    /// Near misses do not fail (the test knows its client's bodies drift).
    pub near_misses: bool,
    /// Recorded exchanges never played do not fail (`--allow-unplayed`).
    pub unplayed: bool,
}

impl Allow {
    /// Allow nothing (the default).
    pub fn nothing() -> Self {
        Allow::default()
    }

    /// Also allow near misses.
    pub fn near_misses(mut self) -> Self {
        self.near_misses = true;
        self
    }

    /// Also allow unplayed exchanges.
    pub fn unplayed(mut self) -> Self {
        self.unplayed = true;
        self
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
    /// Requests nothing recorded answered (a UCWA 404 `ReplayMiss`).
    pub misses: Vec<Miss>,
    /// Requests answered although their body differed (`--body-match lenient`).
    pub near_misses: Vec<NearMiss>,
    /// Requests the HTTP layer refused before the replay could read them.
    pub rejected: Vec<Rejected>,
    /// Injected faults that fired, in order.
    pub faults: Vec<FaultFired>,
    /// Injected fault rules that never fired.
    pub unfired_rules: Vec<String>,
    /// Requests spy mode forwarded to the live server.
    pub forwarded: Vec<Forwarded>,
    /// Recorded exchanges never served.
    pub unplayed: Vec<Unplayed>,
}

impl ReplayReport {
    /// True when every recorded exchange was played and nothing missed, nearly missed or
    /// was rejected.
    pub fn is_clean(&self) -> bool {
        self.passes(Allow::nothing())
    }

    /// Whether the replay passes with what `allow` lets through.
    pub fn passes(&self, allow: Allow) -> bool {
        self.misses.is_empty()
            && self.rejected.is_empty()
            && (allow.near_misses || self.near_misses.is_empty())
            && (allow.unplayed || self.unplayed.is_empty())
    }

    /// The one-line summary the CLI prints on exit.
    pub fn summary(&self) -> String {
        let mut line = format!(
            "replay of {:?}: played {} of {} recorded exchanges ({} requests served), {} misses, {} near misses, {} unplayed",
            self.session,
            self.played,
            self.recorded,
            self.served,
            self.misses.len(),
            self.near_misses.len(),
            self.unplayed.len()
        );
        if !self.rejected.is_empty() {
            line.push_str(&format!(", {} rejected", self.rejected.len()));
        }
        if !self.faults.is_empty() || !self.unfired_rules.is_empty() {
            line.push_str(&format!(
                ", {} faults injected, {} rules never fired",
                self.faults.len(),
                self.unfired_rules.len()
            ));
        }
        if !self.forwarded.is_empty() {
            line.push_str(&format!(", {} forwarded", self.forwarded.len()));
        }
        line
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
        let mut section = |title: &str, lines: Vec<String>| -> std::fmt::Result {
            if !lines.is_empty() {
                writeln!(f, "  {title}:")?;
                for l in lines {
                    writeln!(f, "    {l}")?;
                }
            }
            Ok(())
        };
        section(
            "near misses (answered, but the client sent another body)",
            self.near_misses.iter().map(ToString::to_string).collect(),
        )?;
        section(
            "rejected by the HTTP layer",
            self.rejected.iter().map(ToString::to_string).collect(),
        )?;
        section(
            "injected faults",
            self.faults.iter().map(ToString::to_string).collect(),
        )?;
        section("fault rules that never fired", self.unfired_rules.clone())?;
        section(
            "forwarded to the live server",
            self.forwarded.iter().map(ToString::to_string).collect(),
        )?;
        if !self.unplayed.is_empty() {
            writeln!(f, "  recorded but never played:")?;
            for u in &self.unplayed {
                writeln!(f, "    {u}")?;
            }
        }
        Ok(())
    }
}
