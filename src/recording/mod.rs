//! The recording layer: what every part that writes, reads or serves a recording shares.
//!
//! - the row model: [`Exchange`] (with its [`HeaderList`]s and indexed [`EventRow`]s) and
//!   [`SessionInfo`];
//! - what a request *is*: its [`ResourceKind`] (classified by the rel that led to it) and its
//!   [`MatchKey`] (what makes two requests "the same" for replay and diff);
//! - where it went: [`Origin`]s, `Upstreams` with the one parser of `/_upstream/HOST` paths,
//!   and the `OriginRewriter` that swaps recorded origins for public ones;
//! - the one [`Ingest`] step (redact → classify → index events → key) by which the recording
//!   proxy, HAR import and `verify` turn an exchange into a stored row;
//! - body decoding and the response-head rules that the proxy and the replayer both apply, so
//!   that a replaying client gets what the recording client got.
//!
//! It depends on [`crate::ucwa`] (protocol knowledge) and [`crate::redact`] only; storage,
//! proxying, replay, HAR and diff all build on it, never the other way round
//! (`docs/ARCHITECTURE.md`).

mod classify;
pub(crate) mod decode;
pub(crate) mod headers;
mod ingest;
pub(crate) mod key;
mod kind;
mod learned;
mod model;
mod origin;

pub use ingest::{ExchangeFilter, Ingest};
pub use key::{DEFAULT_IGNORED_BODY_FIELDS, KeyOptions, KeyRequest, MatchKey};
pub use kind::ResourceKind;
pub use model::{Exchange, HeaderList, SessionInfo};
pub use origin::Origin;
pub(crate) use origin::{OriginRewriter, Resolved, Upstreams};

pub use crate::ucwa::feed::EventRow;
