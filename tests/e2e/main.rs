//! The integration tests, linked into one binary: the real `ucwa-replay` binary, the
//! simulator, the recording proxy and the replayer on port 0, driven by the scripted UCWA
//! client (`ucwa_replay::demo::UcwaClient`) or, where the bytes on the wire are the point, by
//! the raw HTTP/1.1 helper in `util::raw`.
//!
//! `cargo test --test e2e MODULE::` runs one module.

mod util;

mod architecture;

mod anonymize;
mod audit;
mod bad_files;
mod cli;
mod compat;
mod connections;
mod demo;
mod demo_script;
mod diff;
mod files;
mod inspect;
mod inspect_recorded;
mod interchange;
mod record;
mod replay;
mod replay_api;
mod replay_control;
mod replay_spy;
mod replay_wrap;
mod report;
mod sim;
mod two_users;
