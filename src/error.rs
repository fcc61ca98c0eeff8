//! Every error the library reports, in one place: each variant says what failed and on which
//! input, so that the binary can print it as one line (`{:#}` walks the `source` chain: a
//! variant never repeats its source in its own message) and choose the exit code.
//!
//! [`Error`] is what the library's entry points return; [`StoreError`] (the recording file)
//! and [`HarError`] (a HAR file) are the detailed reasons for their inputs. They live here,
//! below every other module, so that any layer can name them without importing the layer
//! that raises them.

use std::path::{Path, PathBuf};

/// Result alias used across the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A boxed cause, for sources of several types (TLS: PEM, rustls, I/O).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything the library's entry points can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The recording file could not be used (corrupt, foreign, newer version, missing session).
    #[error(transparent)]
    Store(#[from] StoreError),

    /// A HAR file could not be imported.
    #[error(transparent)]
    Har(#[from] HarError),

    /// A user-supplied value is not valid (a URL, a regex, a JSON pointer, an option).
    #[error("invalid {what}: {message}")]
    Invalid {
        what: &'static str,
        message: String,
        #[source]
        source: Option<BoxError>,
    },

    /// A listener could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },

    /// A file given by the user could not be read.
    #[error("cannot read {}", path.display())]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// An output file (a report, an export) could not be written.
    #[error("cannot write {}", path.display())]
    WriteFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A TLS certificate, key or trust configuration is unusable.
    #[error("TLS: {context}")]
    Tls {
        context: String,
        #[source]
        source: Option<BoxError>,
    },

    /// `verify` could not sign in to the live server, or its credentials were refused.
    #[error("sign-in to {upstream} failed: {detail}")]
    SignIn { upstream: String, detail: String },

    /// `verify` got no answer at all from the live server.
    #[error("no answer from {upstream}: {detail}")]
    NoAnswer { upstream: String, detail: String },

    /// Other I/O failures.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Error {
    /// An [`Error::Invalid`] that is its own cause.
    pub(crate) fn invalid(what: &'static str, message: impl Into<String>) -> Self {
        Error::Invalid {
            what,
            message: message.into(),
            source: None,
        }
    }

    /// An [`Error::Invalid`] caused by `source` (a regex, URL or pointer parser's error).
    pub(crate) fn invalid_because(
        what: &'static str,
        message: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        Error::Invalid {
            what,
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// An [`Error::Invalid`] for a user's regex that does not compile, said on one line.
    ///
    /// regex's own message draws the pattern and a caret under the mistake over four lines,
    /// which breaks the one-line error a user's mistake gets. This says the same thing as
    /// "unclosed group at character 1".
    pub(crate) fn invalid_regex(what: &'static str, pattern: &str, e: regex::Error) -> Self {
        let why = match &e {
            regex::Error::Syntax(_) => match regex_syntax::Parser::new().parse(pattern) {
                Err(regex_syntax::Error::Parse(p)) => {
                    format!("{} at character {}", p.kind(), p.span().start.offset + 1)
                }
                Err(regex_syntax::Error::Translate(t)) => {
                    format!("{} at character {}", t.kind(), t.span().start.offset + 1)
                }
                // regex refused what regex-syntax accepts: keep regex's words, joined.
                _ => e
                    .to_string()
                    .lines()
                    .map(str::trim)
                    .collect::<Vec<_>>()
                    .join(" "),
            },
            other => other.to_string(),
        };
        Error::invalid(what, format!("{pattern:?}: {why}"))
    }

    /// An [`Error::Tls`] caused by `source`.
    pub(crate) fn tls(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Error::Tls {
            context: context.into(),
            source: Some(source.into()),
        }
    }

    /// An [`Error::Bind`] for `addr`.
    pub(crate) fn bind(addr: impl std::fmt::Display, source: std::io::Error) -> Self {
        Error::Bind {
            addr: addr.to_string(),
            source,
        }
    }
}

/// Why a recording cannot be used. Every message names the file and says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("{}: no such recording", path.display())]
    Missing { path: PathBuf },

    #[error("{}: not a SQLite database (is it a recording? the file was left untouched)", path.display())]
    NotSqlite { path: PathBuf },

    #[error("{}: not a ucwa-replay recording: {detail} (the file was left untouched)", path.display())]
    NotARecording { path: PathBuf, detail: String },

    #[error("{}: an empty database, nothing recorded in it yet (record or import a session into it first)", path.display())]
    Empty { path: PathBuf },

    #[error("{}: cannot be written: the file or its directory is read-only", path.display())]
    ReadOnly { path: PathBuf },

    #[error("invalid session name {name:?}: {reason}")]
    BadSessionName { name: String, reason: &'static str },

    #[error(
        "{}: written by a newer ucwa-replay (schema {found}; this version reads up to {supported}): upgrade ucwa-replay",
        path.display()
    )]
    Newer {
        path: PathBuf,
        found: i32,
        supported: i32,
    },

    #[error("{}: damaged recording ({detail}); the file was left untouched (`sqlite3 FILE .recover` may save what is left)", path.display())]
    Corrupt { path: PathBuf, detail: String },

    #[error("{}: no session named {name:?} (sessions: {})", path.display(), list_or_none(available))]
    NoSession {
        path: PathBuf,
        name: String,
        available: Vec<String>,
    },

    #[error("{}: holds {} sessions ({})", path.display(), available.len(), list_or_none(available))]
    AmbiguousSession {
        path: PathBuf,
        available: Vec<String>,
    },

    #[error("{}: a session named {name:?} already exists", path.display())]
    SessionExists { path: PathBuf, name: String },

    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{}: SQLite", path.display())]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },

    #[error("{}: the recording writer stopped unexpectedly", path.display())]
    WriterGone { path: PathBuf },

    #[error("{}: the file was deleted or replaced while recording; none of the session's {} is in it", path.display(), plural(*exchanges, "exchange"))]
    Vanished { path: PathBuf, exchanges: u64 },

    #[error("{}: {lost} of {} could not be written", path.display(), plural(*exchanges, "exchange"))]
    WriteFailed {
        path: PathBuf,
        lost: u64,
        exchanges: u64,
        #[source]
        source: rusqlite::Error,
    },
}

/// An error and its causes on one line (`cannot write r.json: Permission denied (os error
/// 13)`), each cause named once: for log lines, and for the binary's last word.
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut said = self.0.to_string();
        write!(f, "{said}")?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            if !repeats(&said, &text) {
                write!(f, ": {text}")?;
            }
            said = text;
            source = cause.source();
        }
        Ok(())
    }
}

/// Whether `cause` only says again what `said` (the message before it) said: some errors
/// print their source in their own message (rusqlite's does, with its error code), and a
/// chain must name each cause once.
fn repeats(said: &str, cause: &str) -> bool {
    !cause.is_empty() && (said.contains(cause) || cause.contains(said))
}

impl StoreError {
    /// Classify a SQLite error: "not a database" and "malformed" are corruption.
    pub(crate) fn sqlite(path: &Path, source: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        if let rusqlite::Error::SqliteFailure(e, msg) = &source {
            match e.code {
                ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt => {
                    return StoreError::Corrupt {
                        path: path.to_path_buf(),
                        detail: msg.clone().unwrap_or_else(|| e.to_string()),
                    };
                }
                ErrorCode::ReadOnly => {
                    return StoreError::ReadOnly {
                        path: path.to_path_buf(),
                    };
                }
                _ => {}
            }
        }
        StoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// `1 exchange`, `2 exchanges`.
pub(crate) fn plural(n: u64, noun: &str) -> String {
    match (n, noun.ends_with('s')) {
        (1, _) => format!("1 {noun}"),
        (_, true) => format!("{n} {noun}es"),
        _ => format!("{n} {noun}s"),
    }
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// Why a HAR file cannot be imported. Every message names the file; nothing is written when
/// one of these is returned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HarError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{}: not JSON, expected a HAR 1.2 file", path.display())]
    NotJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    #[error("{}: not a HAR file: {detail}", path.display())]
    NotHar { path: PathBuf, detail: String },

    #[error("{}: unsupported HAR version {version:?} (supported: 1.1, 1.2)", path.display())]
    UnsupportedVersion { path: PathBuf, version: String },

    #[error("{}: entry {index}: {detail}", path.display())]
    BadEntry {
        path: PathBuf,
        index: usize,
        detail: String,
    },

    #[error("{}: no http(s) entries to import", path.display())]
    Empty { path: PathBuf },

    /// The file read differently the second time (it is read twice, to check it and then to
    /// import it, so that it is never held whole): it changed meanwhile.
    #[error("{}: the file changed while it was being imported; nothing was imported", path.display())]
    Changed { path: PathBuf },
}

#[cfg(test)]
mod tests {
    use super::Error;

    fn said(pattern: &str) -> String {
        let e = regex::Regex::new(pattern).unwrap_err();
        Error::invalid_regex("--regex", pattern, e).to_string()
    }

    #[test]
    fn a_bad_regex_is_said_on_one_line_with_where() {
        // Parse errors, translation errors (valid syntax, not for UTF-8 text) and size.
        assert_eq!(
            said("ab)"),
            r#"invalid --regex: "ab)": unopened group at character 3"#
        );
        assert_eq!(
            said(r"(?-u)\xFF"),
            r#"invalid --regex: "(?-u)\\xFF": pattern can match invalid UTF-8 at character 6"#
        );
        let big = said("a{1000}{1000}{100}");
        assert!(big.contains("exceeds size limit"), "{big}");
        for s in [said("ab)"), said(r"(?-u)\xFF"), big] {
            assert!(!s.contains('\n'), "{s}");
        }
    }
}
