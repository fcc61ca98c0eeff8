//! INTERFACE STUB (to be replaced): UCWA resource kind of a request.

use crate::ucwa::Representation;

/// Learns which rel points at which href from the responses of a session, so that a
/// resource is classified by the rel that led to it, else by its path.
#[derive(Debug, Default)]
pub struct Classifier {}

impl Classifier {
    pub fn new() -> Self {
        Classifier {}
    }

    /// Remember the rels of the links in a response body.
    pub fn learn(&self, _repr: Representation, _body: &[u8]) {}

    /// The kind of a request (`participantMessaging`, `events`, `application`, `token` …).
    pub fn kind(&self, _method: &str, path: &str) -> String {
        if path.ends_with("/events") {
            "events".into()
        } else {
            "other".into()
        }
    }
}
