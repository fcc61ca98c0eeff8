//! The recording reverse proxy (DESIGN.md "The data path").

pub mod rewrite;

pub use rewrite::{Origin, OriginRewriter};
