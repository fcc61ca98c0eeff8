//! What the proxy, the replayer, the differ and the simulator know about UCWA itself:
//! representations, error bodies, the events feed and resource kinds.

pub mod classify;
pub mod error;
pub mod feed;
pub mod media;

pub use error::{ErrorBody, error_response};
pub use media::Representation;

/// The UCWA XML namespace (real traffic uses `http://`).
pub const XML_NS: &str = "http://schemas.microsoft.com/rtc/2012/03/ucwa";
