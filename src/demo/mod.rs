//! `demo`: the whole product end to end with no network — the simulator, a recording through
//! the proxy, a replay of that recording driven by the same client, and a diff — plus the
//! scripted UCWA client that the end-to-end tests share.

mod client;
mod links;
mod pipeline;
mod script;

pub use client::{ClientError, Reply, Seen, UcwaClient, UcwaRequest};
pub use pipeline::{DemoError, DemoOptions, Step, record_session, run_demo};
pub use script::{
    RemoteScript, RemoteSide, ScriptOptions, ScriptRun, normalise_transcript, run_im_session,
};
