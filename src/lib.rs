//! ucwa-replay: a record-and-replay reverse proxy for Microsoft UCWA (the REST and long-poll
//! API of Skype for Business front-end servers), with a built-in UCWA simulator.
//!
//! The modules follow the path of the data:
//! - [`sim`]: a UCWA front-end simulator, the upstream of every test;
//! - [`proxy`] + [`upstream`]: the recording reverse proxy and its HTTP(S) client;
//! - [`redact`]: secrets removed before anything is stored;
//! - [`ucwa`]: UCWA knowledge (representations, error bodies, the events feed, resource kinds);
//! - [`store`]: the SQLite recording (schema, writer task, queries);
//! - [`replay`]: deterministic offline replay, also as an in-process test server;
//! - [`diff`]: structural comparison of recordings;
//! - [`har`]: sessions exported as HAR 1.2 / NDJSON, HAR files (ours, browsers') imported;
//! - [`html`]: self-contained HTML pages of a session (with a replay's findings) and of a diff.
//!
//! The library never installs a logger and never reads argv or the environment: the
//! `ucwa-replay` binary does.

pub mod body;
pub mod demo;
pub mod diff;
pub mod error;
pub mod har;
pub mod html;
pub mod proxy;
pub mod redact;
pub mod replay;
pub mod serve;
pub mod sim;
pub mod store;
pub mod ucwa;
pub mod upstream;

pub use error::{Error, Result};
