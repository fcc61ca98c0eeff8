//! The SQLite recording.

/// Errors opening or reading a recording.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("{0}")]
    Other(String),
}
