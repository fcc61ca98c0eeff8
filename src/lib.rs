#![doc = include_str!("../README.md")]
//!
//! # The library
//! The modules follow the path of the data (docs/ARCHITECTURE.md has the whole map):
//! - [`sim`]: a UCWA front-end simulator, the upstream of every test;
//! - [`proxy`] + [`upstream`]: the recording reverse proxy and its trust settings;
//! - [`redact`]: secrets removed before anything is stored; [`audit`]: finding any left;
//! - [`anonymize`]: people replaced by consistent pseudonyms (a shareable copy, or while
//!   recording); `audit --pii` finds any left;
//! - [`ucwa`]: UCWA knowledge (representations, error bodies, the events feed);
//! - [`recording`]: the shared layer — the exchange model, resource kinds, match keys,
//!   origins, and the one ingest step every way into a recording goes through;
//! - [`store`]: the SQLite recording (schema, writer thread, queries);
//! - [`replay`]: deterministic offline replay, also as an in-process test server;
//! - [`diff`]: structural comparison of recordings, and `verify` against a live server;
//! - [`har`]: sessions exported as HAR 1.2 / NDJSON, HAR files (ours, browsers') imported;
//! - [`html`]: self-contained HTML pages of a session (with a replay's findings) and of a
//!   diff;
//! - [`spy`]: spy mode, a replay that forwards what its recording lacks to the live server
//!   (through the proxy's forwarding path) and records it;
//! - [`demo`]: a scripted UCWA client and the demo pipeline;
//! - [`serve`] + [`body`]: the HTTP server loop and body type every listener shares;
//! - [`output`]: writing a file the user named without breaking what is there.
//!
//! The library never installs a logger and never reads argv or the environment: the
//! `ucwa-replay` binary (the default `cli` feature) does.

pub mod anonymize;
pub mod audit;
pub mod body;
pub mod demo;
pub mod diff;
mod error;
pub mod har;
pub mod html;
pub mod output;
mod progress;
pub mod proxy;
pub mod recording;
pub mod redact;
pub mod replay;
pub mod serve;
pub mod sim;
pub mod spy;
pub mod store;
pub mod ucwa;
pub mod upstream;

pub use error::{BoxError, Chain as ErrorChain, Error, Result};
pub use progress::Progress;
