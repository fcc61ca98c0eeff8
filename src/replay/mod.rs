//! Deterministic offline replay of a recorded session.
//!
//! A [`Replayer`] loads one session of a recording and answers requests from it, never
//! opening a network connection: the request's match key (`key`) finds the recorded
//! exchanges (`index`), a per-key FIFO cursor picks the next one (`cursor`), the events
//! feed is served by `(application, ack)` (`feed`), the answer is paced (`pacing`) and
//! sent back byte-identical except for the origin rewrite (`server`). Requests that match
//! nothing get a UCWA 404 `ReplayMiss` naming the closest recorded requests (`miss`); misses
//! and never-played exchanges are reported at the end (`report`).
//!
//! Two ways in:
//! - [`run`]: serve a bound listener until a `CancellationToken` fires (the CLI does this);
//! - [`ReplayServer`]: an in-process server for tests, on its own thread and runtime, on
//!   port 0, stopped when dropped. It works from a plain `#[test]` and from a
//!   `#[tokio::test]` alike.
//!
//! ```
//! use ucwa_replay::demo::{ScriptOptions, run_im_session};
//! use ucwa_replay::replay::{FeedEnd, ReplayServer};
//!
//! # fn main() -> Result<(), ucwa_replay::Error> {
//! let server = ReplayServer::builder("recordings/sample.sqlite", "demo")
//!     .feed_end(FeedEnd::Empty)
//!     .start()?;
//! let base = server.url(); // http://127.0.0.1:PORT
//! // Point the UCWA client under test at `base` and let it run; here, the crate's own
//! // scripted client.
//! let runtime = tokio::runtime::Runtime::new()?;
//! runtime
//!     .block_on(run_im_session(&base, &ScriptOptions::default()))
//!     .expect("answered from the recording");
//! assert!(server.misses().is_empty());
//! server.assert_all_played(); // panics with a readable list of misses and unplayed exchanges
//! drop(server); // stops the server
//! # Ok(())
//! # }
//! ```
//!
//! In brief (README.md, "Replaying", has the user's view):
//! - a request matches by method, path, canonical query (events tuning parameters left out),
//!   representation (from `Accept`) and canonical body; never by headers such as
//!   `Authorization`, except that a session recorded with several credentials looks up
//!   `Bearer cwt=REDACTED-n` placeholders, so two users stay apart;
//! - a request body that differs only where the recording holds a redaction placeholder
//!   (the real password against `password=REDACTED-2`) matches;
//! - repeated requests get the recorded answers in order, then [`Exhausted`];
//! - the events feed answers the same ack with the same batch every time; an ack beyond the
//!   recording (or one the client was still holding when the recording stopped) is the end of
//!   the feed: [`FeedEnd`];
//! - a miss is a UCWA 404 (`ReplayMiss`, or `ReplayExhausted`) with header
//!   `X-Ucwa-Replay: miss|exhausted` and the closest recorded requests;
//! - a recorded upstream failure (no response) is answered with a UCWA 502 carrying the
//!   recorded error;
//! - `GET /_replay/report` on the replay's own listener returns [`ReplayReport`] as JSON (and
//!   writes the `--report` file), for scripts that cannot call the library.
//!
//! What a replay serves is what was recorded: when a response carries a value the client
//! sent (an `operationId` echoed in an event, an `EndpointId`), the client gets the recorded
//! value, not the one it sent this time. Those client-generated identifiers are left out of
//! the match key (see `key::DEFAULT_IGNORED_BODY_FIELDS`) so that the request still matches.

mod cursor;
mod feed;
mod index;
mod miss;
mod options;
mod pacing;
mod redacted;
mod replayer;
mod report;
mod server;
mod test_server;

pub use miss::{Closest, Miss, MissReason};
pub use options::{BodyMatch, Exhausted, FeedEnd, Pace, ReplayConfig};
pub use replayer::Replayer;
pub use report::{ReplayReport, Unplayed};
pub use server::{run, run_with_limits};
pub use test_server::{ReplayServer, ReplayServerBuilder};
