//! The one step every way into a recording goes through — the recording proxy, HAR import,
//! `verify` and spy mode alike: **redact → classify → index the events feed → compute the
//! match key**. Whatever the source, the stored row is the same: the same placeholders, the
//! same kinds, the same keys under the user's key options.
//!
//! With a filter ([`Ingest::with_filter`], the anonymiser) the step is redact → classify →
//! filter → index → key: the kind is decided on the real request, everything after it on the
//! stored copy.
//!
//! Order matters twice:
//! - secrets are numbered in the order the conversation revealed them
//!   ([`Ingest::number_secrets`] lets the proxy do that before the client sees a response);
//! - a resource's kind is the rel of the link that led to it, so the classifier must learn a
//!   response's links before the client can follow them. The proxy classifies a request when
//!   it arrives ([`Ingest::classify`]) and teaches the classifier a response before its last
//!   byte goes out ([`Ingest::learn`]); offline sources take exchanges in `seq` order, which is
//!   the same order.

use std::sync::Arc;

use super::classify::Classifier;
use super::key::{KeyOptions, KeyRequest};
use super::kind::ResourceKind;
use super::model::Exchange;
use super::origin::strip_published;
use crate::error::{Chain, Error};
use crate::redact::{ExchangeFields, ExchangeView, RedactConfig, Redactor};
use crate::ucwa::{Representation, feed};

/// A rewrite of the copy that is stored, applied by [`Ingest`] after redaction (and after
/// the classifier has learned from the response), before the events are indexed and the key
/// computed: the anonymiser of `record --anonymize` and `anonymize`. The recording layer only
/// knows that such a step exists; what it does lives above it.
pub trait ExchangeFilter: Send + Sync + std::fmt::Debug {
    fn apply(&self, ex: &mut Exchange);
}

/// Session-wide state of the ingest step: the redactor's placeholder numbering and the
/// classifier's learned rels. One per session being written.
#[derive(Debug)]
pub struct Ingest {
    redactor: Redactor,
    classifier: Classifier,
    key_options: KeyOptions,
    filter: Option<Arc<dyn ExchangeFilter>>,
}

impl Ingest {
    /// Check the redaction options (an invalid `--redact-regex` is an input error).
    pub fn new(redact: &RedactConfig, key_options: KeyOptions) -> Result<Self, Error> {
        Ok(Ingest {
            redactor: Redactor::new(redact)?,
            classifier: Classifier::new(),
            key_options,
            filter: None,
        })
    }

    /// Apply `filter` to every exchange after redaction (the stored copy only: the proxy's
    /// client still gets the real answers).
    pub fn with_filter(mut self, filter: Arc<dyn ExchangeFilter>) -> Self {
        self.filter = Some(filter);
        self
    }

    /// The key options the stored keys are computed with.
    pub fn key_options(&self) -> &KeyOptions {
        &self.key_options
    }

    /// The session's redactor (its placeholder numbering is shared by every exchange).
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// The whole step for an exchange from an offline source (HAR import, verify), taken in
    /// `seq` order: redact, classify by what earlier responses taught, learn from this one,
    /// index its events, key it.
    pub fn ingest(&self, ex: &mut Exchange) {
        self.redact(ex);
        ex.kind = self.classify(&ex.method, &ex.path);
        self.learn(ex);
        self.filter(ex);
        self.index(ex);
    }

    /// The step for an exchange whose kind is already decided (the proxy classified it on
    /// arrival; an import carried it) and whose links were learned (`learned`) or not.
    pub fn ingest_classified(&self, ex: &mut Exchange, learned: bool) {
        self.redact(ex);
        if !learned {
            self.learn(ex);
        }
        self.filter(ex);
        self.index(ex);
    }

    /// Redact an exchange in place and note the credential placeholder it carried.
    pub fn redact(&self, ex: &mut Exchange) {
        ex.credential = self.redactor.redact(ExchangeFields {
            path: &mut ex.path,
            query: &mut ex.query,
            request_headers: &mut ex.request_headers.0,
            request_body: &mut ex.request_body,
            response_headers: &mut ex.response_headers.0,
            response_body: &mut ex.response_body,
            error: &mut ex.error,
        });
    }

    /// Number the secrets an exchange shows so far without redacting it: the proxy calls it
    /// before the client sees a response, so that placeholders follow the order the
    /// conversation revealed the secrets whatever order exchanges finish in. Cheap unless
    /// the parts may hold a secret not numbered yet ([`Redactor::number`]).
    pub fn number_secrets(&self, parts: ExchangeView<'_>) {
        self.redactor.number(parts);
    }

    /// The kind of a request, from its path (the `/_upstream/HOST` prefix ignored) and the
    /// rels learned so far.
    pub fn classify(&self, method: &str, path: &str) -> ResourceKind {
        self.classifier.kind(method, strip_published(path))
    }

    /// Learn the rels of the links in an exchange's response body.
    pub fn learn(&self, ex: &Exchange) {
        if !ex.response_body.is_empty() {
            self.classifier
                .learn(body_representation(ex), &ex.response_body);
        }
    }

    fn filter(&self, ex: &mut Exchange) {
        if let Some(f) = &self.filter {
            f.apply(ex);
        }
    }

    /// Index the events of an events-feed response and compute the match key.
    fn index(&self, ex: &mut Exchange) {
        let upstream_path = strip_published(&ex.path);
        if feed::is_events_request(&ex.method, upstream_path)
            && ex.status == Some(200)
            && !ex.response_body.is_empty()
        {
            match feed::parse_events(
                body_representation(ex),
                &ex.response_body,
                feed::ack_of(ex.query.as_deref()),
            ) {
                Ok(events) => ex.events = events,
                Err(err) => {
                    tracing::warn!(seq = ex.seq, error = %Chain(&err), "events response not indexed")
                }
            }
        }
        ex.match_key = KeyRequest::of_exchange(ex).key(&self.key_options);
    }
}

/// The representation of a response body: its `Content-Type`, else what the request asked
/// for.
fn body_representation(ex: &Exchange) -> Representation {
    match Representation::from_content_type(ex.response_headers.get("content-type")) {
        Representation::Other => ex.representation,
        known => known,
    }
}
