//! Helpers shared by the integration tests: the real binary as a server process
//! ([`Server`], [`bin`]), raw HTTP/1.1 for tests about the bytes on the wire ([`raw`]), a
//! synthetic recording ([`fixture`]), and small conveniences around the shared UCWA client
//! (`ucwa_replay::demo::UcwaClient`).

pub mod browser;
pub mod fixture;
pub mod large;
pub mod raw;
mod server;

pub use server::{Server, bin};

use http::Method;
use serde_json::Value;
use ucwa_replay::demo::{Reply, UcwaClient};
use ucwa_replay::ucwa::Representation;

/// A path as a command-line argument.
pub fn s(p: &std::path::Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A field of a `/proc/PID/status` text, without its name; None if it is not there (the
/// kernel does not give it).
pub fn status_field(status: &str, name: &str) -> Option<String> {
    status.lines().find_map(|line| {
        let value = line.strip_prefix(name)?.strip_prefix(':')?;
        Some(value.trim().to_string())
    })
}

/// A fresh temporary directory with a recording path inside.
pub fn temp_db() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("rec.sqlite");
    (dir, path)
}

/// Run `future` to the end on a runtime of its own: the shared UCWA client from a plain
/// `#[test]`, whose servers, threads and signals are blocking code.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(future)
}

/// GET `target` from the server at `base` with the shared UCWA client (asking for JSON),
/// from a plain `#[test]`: any status is an answer, a failed connection a panic.
pub fn get(base: &str, target: &str) -> Reply {
    block_on(
        UcwaClient::new(base, Representation::Json)
            .request(Method::GET, target)
            .send(),
    )
    .unwrap_or_else(|e| panic!("GET {target}: {e}"))
}

/// What the tests ask of a [`Reply`] beyond the client's own API.
pub trait ReplyExt {
    /// The body as JSON; panics with the body when it is not.
    fn expect_json(&self) -> Value;
}

impl ReplyExt for Reply {
    fn expect_json(&self) -> Value {
        self.json()
            .unwrap_or_else(|| panic!("{} not JSON: {}", self.status, self.text()))
    }
}
