//! What the proxy, the replayer, the differ and the simulator know about UCWA itself:
//! representations, error bodies, the events feed and resource kinds.

pub(crate) mod error;
pub(crate) mod feed;
pub(crate) mod media;

pub use error::{ErrorBody, error_response};
pub use feed::{
    EventRow, FeedError, FeedLinks, ack_of, feed_links, is_events_request, parse_events,
};
pub use media::Representation;

/// The `path?query` of an href: an absolute URL loses its scheme and authority (`/` when it
/// has no path); a relative href is returned as it is.
pub fn target_of(href: &str) -> &str {
    match href.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => href,
    }
}

/// `path?query` → `(path, Some(query))`; `(path, None)` without `?`.
pub fn split_target(target: &str) -> (&str, Option<&str>) {
    match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    }
}

/// The UCWA XML namespace (real traffic uses `http://`).
pub const XML_NS: &str = "http://schemas.microsoft.com/rtc/2012/03/ucwa";
