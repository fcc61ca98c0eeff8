//! Preparing a session for comparison and pairing the exchanges of two sessions.
//!
//! Preparation walks a session once in `seq` order (as the store streams it), feeding every
//! string to the session's [`Normalizer`] (so placeholders are numbered in order of first
//! appearance), reduces each response body to a fingerprint of its parsed, normalised form,
//! and computes the alignment key: with normalisation, the match key rebuilt from the
//! normalised path, query and request body (so `/applications/105/…` pairs with
//! `/applications/106/…`) and its ordinal recomputed; without, the stored key and ordinal.
//! Events-feed exchanges are not paired (acks and batching differ between runs): their
//! events go to the flattened sequence instead.
//!
//! Pairing is by (key, ordinal) through a hash map: linear in the number of exchanges.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};

use sha2::{Digest, Sha256};

use super::body::{Body, Fingerprint};
use super::events::FlatEvent;
use super::json::IgnorePatterns;
use super::normalize::{NormalizeOptions, Normalizer};
use crate::error::Error;
use crate::recording::key::{canonical_body, canonical_query};
use crate::recording::{Exchange, KeyOptions, ResourceKind};
use crate::ucwa::Representation;

/// A compared header: normalised value (decides) and raw value (shown).
pub type HeaderValue = Option<(String, String)>;

/// One exchange ready to compare: what pairing and the report need, and its body as a
/// fingerprint. The body itself is not kept (a session's parsed bodies are several times its
/// size): a pair whose fingerprints differ is read and parsed again to say what differs.
#[derive(Debug)]
pub struct Prepared {
    pub seq: u64,
    pub method: String,
    pub kind: ResourceKind,
    pub representation: Representation,
    /// Path and query as recorded.
    pub target: String,
    pub status: Option<u16>,
    /// The status as compared: the code, or "no response (error)".
    pub status_text: String,
    /// Alignment key (normalised match key text, or the stored one).
    pub key: String,
    pub ordinal: u32,
    /// Values of the compared headers, in the order of the compared names.
    pub headers: Vec<HeaderValue>,
    /// The parsed, normalised body (without `--ignore`d members) as a digest.
    pub body: Fingerprint,
}

/// A session after preparation.
#[derive(Debug)]
pub struct PreparedSession {
    pub exchanges: Vec<Prepared>,
    pub events: Vec<FlatEvent>,
    /// Events-feed answers with an HTTP error status (≥ 400), by status.
    pub feed_errors: BTreeMap<u16, usize>,
    /// Exchanges read, events-feed ones included.
    pub total: usize,
    /// The session's normaliser after the whole walk. It has numbered every id the session
    /// holds, so it normalises any of the session's bodies again exactly as the walk did,
    /// without numbering anything new.
    pub norm: Normalizer,
}

/// The status as compared and shown.
pub fn status_text(ex: &Exchange) -> String {
    match (ex.status, &ex.error) {
        (Some(s), _) => s.to_string(),
        (None, Some(e)) => format!("no response ({e})"),
        (None, None) => "no response".into(),
    }
}

/// Prepare a session from its exchanges in `seq` order. `headers` are the lower-case names of
/// the compared headers.
pub fn prepare<X: Borrow<Exchange>>(
    exchanges: impl Iterator<Item = Result<X, Error>>,
    origins: &[String],
    opts: NormalizeOptions,
    headers: &[String],
    ignore: &IgnorePatterns,
) -> Result<PreparedSession, Error> {
    let mut norm = Normalizer::new(opts, origins);
    let normalizing = opts.any();
    let key_opts = KeyOptions::default();
    let mut ordinals: HashMap<String, u32> = HashMap::new();
    let mut out = Vec::new();
    let mut events = Vec::new();
    let mut feed_errors = BTreeMap::new();
    let mut total = 0;
    for ex in exchanges {
        let ex = ex?;
        let ex = ex.borrow();
        total += 1;
        let target = match &ex.query {
            Some(q) => format!("{}?{}", ex.path, canonical_query(q)),
            None => ex.path.clone(),
        };
        let target = norm.text(&target);
        if ex.is_events() {
            for row in &ex.events {
                events.push(FlatEvent::new(ex.seq, row, &mut norm, ignore));
            }
            if let Some(status) = ex.status.filter(|s| *s >= 400) {
                *feed_errors.entry(status).or_insert(0) += 1;
            }
            continue;
        }
        let (key, ordinal) = if normalizing {
            let body_part = match canonical_body(
                &key_opts,
                ex.request_headers.get("content-type"),
                &ex.request_body,
            ) {
                None => "-".to_string(),
                Some((kind, canon)) => {
                    let text = norm.text(&String::from_utf8_lossy(&canon));
                    format!(
                        "{kind}:{}",
                        &hex::encode(Sha256::digest(text.as_bytes()))[..16]
                    )
                }
            };
            let target = target.trim_end_matches('?');
            let key = format!(
                "{} {} {} {}",
                ex.method.to_ascii_uppercase(),
                target,
                ex.representation,
                body_part
            );
            let n = ordinals.entry(key.clone()).or_insert(0);
            let ordinal = *n;
            *n += 1;
            (key, ordinal)
        } else {
            (ex.match_key.to_string(), ex.ordinal)
        };
        let header_values = headers
            .iter()
            .map(|name| {
                let all: Vec<&str> = ex.response_headers.get_all(name).collect();
                if all.is_empty() {
                    None
                } else {
                    let raw = all.join(", ");
                    Some((norm.header(name, &raw), raw))
                }
            })
            .collect();
        let body = body_of(ex, &mut norm).fingerprint(ignore);
        out.push(Prepared {
            seq: ex.seq,
            method: ex.method.clone(),
            kind: ex.kind.clone(),
            representation: ex.representation,
            target: ex.path_and_query(),
            status: ex.status,
            status_text: status_text(ex),
            key,
            ordinal,
            headers: header_values,
            body,
        });
    }
    Ok(PreparedSession {
        exchanges: out,
        events,
        feed_errors,
        total,
        norm,
    })
}

/// An exchange's response body parsed for comparison (strings fed to `norm` in document
/// order).
pub fn body_of(ex: &Exchange, norm: &mut Normalizer) -> Body {
    Body::parse(
        ex.response_headers.get("content-type"),
        &ex.response_body,
        norm,
    )
}

/// The result of pairing: indices into the two prepared lists.
#[derive(Debug, Default)]
pub struct Alignment {
    pub pairs: Vec<(usize, usize)>,
    /// Only in A.
    pub removed: Vec<usize>,
    /// Only in B.
    pub added: Vec<usize>,
}

/// Pair exchanges by (key, ordinal).
pub fn align(a: &[Prepared], b: &[Prepared]) -> Alignment {
    let mut index: HashMap<(&str, u32), usize> = b
        .iter()
        .enumerate()
        .map(|(j, p)| ((p.key.as_str(), p.ordinal), j))
        .collect();
    let mut out = Alignment::default();
    for (i, p) in a.iter().enumerate() {
        match index.remove(&(p.key.as_str(), p.ordinal)) {
            Some(j) => out.pairs.push((i, j)),
            None => out.removed.push(i),
        }
    }
    let mut added: Vec<usize> = index.into_values().collect();
    added.sort_unstable();
    out.added = added;
    out
}
