//! INTERFACE STUB (to be replaced): parsing events-feed responses into event rows.

use crate::store::EventRow;
use crate::ucwa::Representation;

/// Why an events body could not be indexed (the exchange is stored anyway).
#[derive(Debug, thiserror::Error)]
#[error("events body not understood: {0}")]
pub struct FeedError(pub String);

/// Whether a request is for the events feed (P-GET).
pub fn is_events_request(method: &str, path: &str) -> bool {
    method.eq_ignore_ascii_case("GET") && path.ends_with("/events")
}

/// The `ack` of an events request's query.
pub fn ack_of(query: Option<&str>) -> Option<i64> {
    query?
        .split('&')
        .find_map(|p| p.strip_prefix("ack="))
        .and_then(|v| v.parse().ok())
}

/// Flatten an events response body.
pub fn parse_events(
    _repr: Representation,
    _body: &[u8],
    _ack: Option<i64>,
) -> Result<Vec<EventRow>, FeedError> {
    Ok(Vec::new())
}
