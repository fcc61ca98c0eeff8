//! Helpers shared by the integration tests: the real binary as a server process
//! ([`Server`], [`bin`]), raw HTTP/1.1 for tests about the bytes on the wire ([`raw`]), a
//! synthetic recording ([`fixture`]), and small conveniences.

pub mod fixture;
pub mod raw;
mod server;

pub use server::{Server, bin};

/// A path as a command-line argument.
pub fn s(p: &std::path::Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A fresh temporary directory with a recording path inside.
pub fn temp_db() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("rec.sqlite");
    (dir, path)
}
