//! Deterministic offline replay of a recorded session.
//!
//! A [`Replayer`] loads one session of a recording (`session`: a file, or exchanges held in
//! memory) and answers requests from it, never opening a network connection. Only an index
//! of the session is held; each answer's headers and body are read when it is first asked
//! for, and kept prepared while a budget allows (`answers`). What the client
//! sent is redacted, its match key finds the recorded exchanges (`index`), a per-key FIFO
//! cursor picks the next one (`cursor`), the events feed is served by `(application, ack)`
//! (`feed`, `hold` for P-GETs replaced by newer ones), injected faults stand in for answers
//! (`fault`), the answer is paced (`pacing`) and sent back byte-identical except for the
//! origin rewrite (`server`). The decisions live in `replayer` (no HTTP); the HTTP side in
//! `server`, and the `/_replay/` control API in `control`. Requests that match nothing get a
//! UCWA 404 `ReplayMiss` naming the closest recorded requests (`miss`); requests served
//! although their body differed are near misses (`near_miss`); every request goes to the log
//! (`log`), and the findings to the report (`report`), whose verdict fails a test.
//!
//! Two ways in:
//! - [`run`]: serve a bound listener until a `CancellationToken` fires (the CLI does this;
//!   [`run_with`] also hands what the recording cannot answer to a [`Fallback`]: spy mode,
//!   composed in `crate::spy`);
//! - [`ReplayServer`]: an in-process server for tests, on its own thread and runtime, on
//!   port 0, stopped — and checked, like wiremock's `MockServer` — when dropped. It works
//!   from a plain `#[test]` and from a `#[tokio::test]` alike, from a file, an NDJSON or HAR
//!   text, or [`Recorded`] exchanges built in code.
//!
//! ```
//! use ucwa_replay::demo::{ScriptOptions, run_im_session};
//! use ucwa_replay::replay::{Outcome, ReplayServer};
//!
//! # fn main() -> Result<(), ucwa_replay::Error> {
//! // Test defaults: strict body matching, the events feed ends at once.
//! let server = ReplayServer::builder("recordings/sample.sqlite", "demo").start()?;
//! let base = server.url(); // http://127.0.0.1:PORT
//! // Point the UCWA client under test at `base` and let it run; here, the crate's own
//! // scripted client.
//! let runtime = tokio::runtime::Runtime::new()?;
//! runtime
//!     .block_on(run_im_session(&base, &ScriptOptions::default()))
//!     .expect("answered from the recording");
//! assert!(server.misses().is_empty());
//! assert!(server.received().iter().all(|r| r.outcome == Outcome::Recorded));
//! server.assert_all_played(); // panics with a readable list of what went otherwise
//! drop(server); // stops the server, and would panic had anything gone otherwise
//! # Ok(())
//! # }
//! ```
//!
//! In brief (README.md, "Replaying", has the user's view):
//! - a request matches by method, path, canonical query (events tuning parameters left out),
//!   representation (from `Accept`) and canonical body; never by headers such as
//!   `Authorization`, except that a session recorded with several credentials looks up
//!   `Bearer cwt=REDACTED-n` placeholders, so two users stay apart;
//! - a request that differs only where the recording holds a redaction placeholder (the real
//!   password against `password=REDACTED-2`, a token in a URL) matches; one served although
//!   its body differs (`--body-match lenient`) is a near miss, which fails the verdict
//!   ([`ReplayReport::passes`]) unless [`Allow`]ed;
//! - repeated requests get the recorded answers in order, then [`Exhausted`];
//! - the events feed answers the same ack with the same batch every time; an ack beyond the
//!   recording (or one the client was still holding when the recording stopped) is the end of
//!   the feed: [`FeedEnd`];
//! - a miss is a UCWA 404 (`ReplayMiss`, or `ReplayExhausted`) with header
//!   `X-Ucwa-Replay: miss|exhausted` and the closest recorded requests;
//! - a recorded upstream failure (no response) is answered with a UCWA 502 carrying the
//!   recorded error;
//! - the control API under `/_replay/` (report, requests, reset, session, faults) serves
//!   test suites in any language (`control` documents it);
//! - a request the HTTP layer refuses before it is read (`414`, `431`) is still reported.
//!
//! What a replay serves is what was recorded: when a response carries a value the client
//! sent (an `operationId` echoed in an event, an `EndpointId`), the client gets the recorded
//! value, not the one it sent this time. Those client-generated identifiers are left out of
//! the match key (see `key::DEFAULT_IGNORED_BODY_FIELDS`) so that the request still matches.

mod answers;
mod control;
mod cursor;
mod fault;
mod feed;
mod hold;
mod index;
mod log;
mod miss;
mod near_miss;
mod options;
mod pacing;
mod recorded;
mod redacted;
mod replayer;
mod report;
mod server;
mod session;
mod test_server;

pub use fault::{FaultAction, FaultRule, RuleStatus};
pub use log::{Outcome, Received};
pub use miss::{Closest, Miss, MissReason};
pub use near_miss::{Difference, NearMiss};
pub use options::{BodyMatch, Exhausted, FeedEnd, Pace, ReplayConfig};
pub use recorded::Recorded;
pub use replayer::{Replayer, credential_placeholder};
pub use report::{Allow, FaultFired, Forwarded, Rejected, ReplayReport, Unplayed};
pub use server::{Fallback, Forwarding, run, run_with};
pub use test_server::{ReplayServer, ReplayServerBuilder};
