//! Self-contained HTML pages: a session of a recording (optionally with a replay's report
//! laid over it) and a diff of two sessions. One file each, inline CSS and SVG, a small
//! inline script only for filtering and expanding; nothing is ever loaded from anywhere, and
//! every recorded value is escaped text (`escape`).
//!
//! The path of the data: `source` (the one adapter onto the recording model) →
//! `summary`, `timeline`, `feed`, `exchanges` (with `body` for bodies), and
//! `overlay` for a replay report → `session` assembles them inside `page`'s shell;
//! [`diff_page()`] renders a [`crate::diff::DiffReport`] side by side.
//!
//! ```no_run
//! use ucwa_replay::html;
//! use ucwa_replay::store::Recording;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let rec = Recording::open("recordings/sample.sqlite".as_ref())?;
//! let session = rec.session(Some("demo"))?;
//! let exchanges = rec.exchanges(&session)?;
//! let page = html::session_page("recordings/sample.sqlite", &session, &exchanges, None);
//! html::write_page("report.html".as_ref(), &page)?;
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};

mod body;
mod diff_page;
mod escape;
mod exchanges;
mod feed;
mod format;
mod overlay;
mod page;
mod session;
mod summary;
mod timeline;

pub use diff_page::diff_page;
pub use overlay::ReplayOverlay;
pub use session::session_page;

/// Why a page could not be made or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HtmlError {
    /// The replay report given is not one.
    #[error("{}: not a replay report ({detail}); give the file `replay --report` wrote", path.display())]
    NotAReplayReport { path: PathBuf, detail: String },

    /// The replay report is of another session.
    #[error("{}: a replay of session {found:?}, not of {expected:?}", path.display())]
    OtherSession {
        path: PathBuf,
        found: String,
        expected: String,
    },

    /// A file could not be read.
    #[error("cannot read {}: {io}", path.display())]
    Read { path: PathBuf, io: std::io::Error },

    /// The page could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Refuse an output path whose directory does not exist (a typo in `-o` is an error, not a
/// new folder), that is a directory, or that may not be written: checked before any work
/// is done.
pub fn check_output(path: &Path) -> Result<(), HtmlError> {
    crate::output::check(path).map_err(|e| HtmlError::write(path, e))
}

/// Write a page to `path` as [`crate::output`] writes every file the user names: a new file
/// through a temporary file beside it (a reader never sees half a page), an existing one
/// keeping its links, mode and owner.
pub fn write_page(path: &Path, page: &str) -> Result<(), HtmlError> {
    crate::output::write_bytes(path, page.as_bytes()).map_err(|e| HtmlError::write(path, e))
}

impl HtmlError {
    fn write(path: &Path, err: crate::Error) -> Self {
        let source = match err {
            crate::Error::WriteFile { source, .. } => source,
            other => std::io::Error::other(other.to_string()),
        };
        HtmlError::Write {
            path: path.to_path_buf(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_go_only_into_existing_directories() {
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("r.html");
        write_page(&ok, "<p>x</p>").unwrap();
        assert_eq!(std::fs::read_to_string(&ok).unwrap(), "<p>x</p>");
        let err = write_page(&dir.path().join("missing/r.html"), "x").unwrap_err();
        let err = crate::error::Chain(&err).to_string();
        assert!(
            err.contains("cannot write") && err.contains("no directory"),
            "{err}"
        );
        assert!(write_page(dir.path(), "x").is_err());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
    }
}
