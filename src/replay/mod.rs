//! Deterministic offline replay of a recorded session (DESIGN.md "Replay semantics").

pub mod key;

pub use key::{KeyOptions, MatchKey, match_key};
