//! The library's error type. Each variant says what failed and on which input, so that the
//! binary can print it as one line and choose the exit code (see [`Error::is_input_error`]).

use std::path::PathBuf;

/// Result alias used across the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything the library can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The recording file could not be used (corrupt, foreign, newer version, missing session).
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),

    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },

    /// A file given by the user could not be read.
    #[error("cannot read {}: {source}", path.display())]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A TLS certificate, key or trust configuration is unusable.
    #[error("TLS: {0}")]
    Tls(String),

    /// A user-supplied value is not valid (a URL, a regex, a JSON pointer, an option).
    #[error("invalid {what}: {message}")]
    Invalid { what: &'static str, message: String },

    /// Other I/O failures.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// Build an [`Error::Invalid`].
    pub fn invalid(what: &'static str, message: impl std::fmt::Display) -> Self {
        Error::Invalid {
            what,
            message: message.to_string(),
        }
    }

    /// True when the error comes from the user's input (exit code 2) rather than from the
    /// environment. Every error the library reports today is one of those, but I/O failures
    /// while serving are kept apart so that the binary can tell them apart later.
    pub fn is_input_error(&self) -> bool {
        !matches!(self, Error::Io(_))
    }
}
