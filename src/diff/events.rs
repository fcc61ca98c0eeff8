//! The events feed compared as one flattened sequence of events per session, not batch by
//! batch: the server batches differently from run to run, and acks differ. Each event is
//! reduced to (sender rel+href, link rel+href+title, in rel+href, type, status, reason,
//! embedded resource), normalised, and the two sequences are aligned with similar's Myers
//! diff (longest common subsequence), so one extra event is one insertion rather than a
//! cascade of changes. Every reported event names the ack (and exchange `seq`) that delivered
//! it on each side.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;
use similar::{Algorithm, DiffOp, capture_diff_slices_deadline};

use super::json::{self, IgnorePatterns, Side};
use super::normalize::Normalizer;
use super::{Change, ChangeKind, Part};
use crate::recording::EventRow;

/// The normalised identity of an event: two events are equal when these are.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct EventKey {
    sender_rel: String,
    sender_href: String,
    link_rel: String,
    link_href: String,
    link_title: Option<String>,
    in_rel: Option<String>,
    in_href: Option<String>,
    event_type: String,
    status: Option<String>,
    reason: Option<String>,
    embedded: Option<String>,
}

/// One event of a session, flattened, with what delivered it.
#[derive(Debug, Clone)]
pub struct FlatEvent {
    /// `seq` of the events-feed exchange that delivered it.
    pub seq: u64,
    pub row: EventRow,
    key: EventKey,
    reason: Option<(Value, Value)>,
    embedded: Option<(Value, Value)>,
}

fn parse_json(
    text: Option<&str>,
    norm: &mut Normalizer,
    ignore: &IgnorePatterns,
) -> (Option<String>, Option<(Value, Value)>) {
    let Some(t) = text else {
        return (None, None);
    };
    match serde_json::from_str::<Value>(t) {
        Ok(raw) => {
            let mut n = norm.json(&raw);
            let mut raw = raw;
            ignore.strip(&mut n);
            ignore.strip(&mut raw);
            (Some(n.to_string()), Some((n, raw)))
        }
        Err(_) => (Some(norm.text(t)), None),
    }
}

impl FlatEvent {
    /// Flatten and normalise one stored event row.
    pub fn new(seq: u64, row: &EventRow, norm: &mut Normalizer, ignore: &IgnorePatterns) -> Self {
        let sender_href = norm.text(&row.sender_href);
        let link_href = norm.text(&row.link_href);
        let in_href = row.in_href.as_deref().map(|h| norm.text(h));
        let (reason_text, reason) =
            parse_json(row.reason.as_deref(), norm, &IgnorePatterns::default());
        let (embedded_text, embedded) = parse_json(row.embedded.as_deref(), norm, ignore);
        FlatEvent {
            seq,
            row: row.clone(),
            key: EventKey {
                sender_rel: row.sender_rel.clone(),
                sender_href,
                link_rel: row.link_rel.clone(),
                link_href,
                link_title: row.link_title.clone(),
                in_rel: row.in_rel.clone(),
                in_href,
                event_type: row.event_type.clone(),
                status: row.status.clone(),
                reason: reason_text,
                embedded: embedded_text,
            },
            reason,
            embedded,
        }
    }
}

/// Where an event sits in its session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventRef {
    /// Position in the session's flattened event sequence, from 0.
    pub index: usize,
    /// `seq` of the events-feed exchange that delivered it.
    pub seq: u64,
    /// The ack of that request.
    pub ack: Option<i64>,
    pub sender_rel: String,
    pub link_rel: String,
    pub link_href: String,
    pub in_rel: Option<String>,
    #[serde(rename = "type")]
    pub event_type: String,
    pub status: Option<String>,
}

/// One difference between the event sequences.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventDiff {
    pub kind: ChangeKind,
    pub a: Option<EventRef>,
    pub b: Option<EventRef>,
    /// For `changed`: what differs, as pointers into the event envelope (`/link/href`,
    /// `/type`, `/_embedded/participantMessaging/_links/participant/href`).
    pub changes: Vec<Change>,
}

/// Counts of the events comparison.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EventSummary {
    /// Events in A and in B.
    pub a: usize,
    pub b: usize,
    pub equal: usize,
    pub changed: usize,
    pub added: usize,
    pub removed: usize,
    /// Events-feed answers with an HTTP error status (≥ 400) in A and in B, by status
    /// (`{"409": 1}`); compared as a whole, since how many P-GETs a run needs varies.
    pub feed_errors_a: BTreeMap<u16, usize>,
    pub feed_errors_b: BTreeMap<u16, usize>,
}

fn reference(index: usize, e: &FlatEvent) -> EventRef {
    EventRef {
        index,
        seq: e.seq,
        ack: e.row.ack,
        sender_rel: e.row.sender_rel.clone(),
        link_rel: e.row.link_rel.clone(),
        link_href: e.row.link_href.clone(),
        in_rel: e.row.in_rel.clone(),
        event_type: e.row.event_type.clone(),
        status: e.row.status.clone(),
    }
}

fn field(
    out: &mut Vec<Change>,
    path: &str,
    na: Option<&str>,
    nb: Option<&str>,
    ra: Option<&str>,
    rb: Option<&str>,
) {
    if na == nb {
        return;
    }
    let kind = match (na, nb) {
        (None, _) => ChangeKind::Added,
        (_, None) => ChangeKind::Removed,
        _ => ChangeKind::Changed,
    };
    out.push(Change {
        part: Part::Event,
        path: path.into(),
        kind,
        a: ra.map(|s| format!("{s:?}")),
        b: rb.map(|s| format!("{s:?}")),
    });
}

fn nested(
    out: &mut Vec<Change>,
    prefix: &[String],
    a: &Option<(Value, Value)>,
    b: &Option<(Value, Value)>,
    ka: Option<&str>,
    kb: Option<&str>,
) {
    match (a, b) {
        (Some((na, ra)), Some((nb, rb))) => json::compare(
            Side { norm: na, raw: ra },
            Side { norm: nb, raw: rb },
            &IgnorePatterns::default(),
            Part::Event,
            prefix,
            out,
        ),
        _ => field(out, &json::pointer(prefix), ka, kb, ka, kb),
    }
}

fn field_changes(a: &FlatEvent, b: &FlatEvent) -> Vec<Change> {
    let (ka, kb) = (&a.key, &b.key);
    let (ra, rb) = (&a.row, &b.row);
    let mut out = Vec::new();
    field(
        &mut out,
        "/sender/rel",
        Some(&ka.sender_rel),
        Some(&kb.sender_rel),
        Some(&ra.sender_rel),
        Some(&rb.sender_rel),
    );
    field(
        &mut out,
        "/sender/href",
        Some(&ka.sender_href),
        Some(&kb.sender_href),
        Some(&ra.sender_href),
        Some(&rb.sender_href),
    );
    field(
        &mut out,
        "/link/rel",
        Some(&ka.link_rel),
        Some(&kb.link_rel),
        Some(&ra.link_rel),
        Some(&rb.link_rel),
    );
    field(
        &mut out,
        "/link/href",
        Some(&ka.link_href),
        Some(&kb.link_href),
        Some(&ra.link_href),
        Some(&rb.link_href),
    );
    field(
        &mut out,
        "/link/title",
        ka.link_title.as_deref(),
        kb.link_title.as_deref(),
        ra.link_title.as_deref(),
        rb.link_title.as_deref(),
    );
    field(
        &mut out,
        "/in/rel",
        ka.in_rel.as_deref(),
        kb.in_rel.as_deref(),
        ra.in_rel.as_deref(),
        rb.in_rel.as_deref(),
    );
    field(
        &mut out,
        "/in/href",
        ka.in_href.as_deref(),
        kb.in_href.as_deref(),
        ra.in_href.as_deref(),
        rb.in_href.as_deref(),
    );
    field(
        &mut out,
        "/type",
        Some(&ka.event_type),
        Some(&kb.event_type),
        Some(&ra.event_type),
        Some(&rb.event_type),
    );
    field(
        &mut out,
        "/status",
        ka.status.as_deref(),
        kb.status.as_deref(),
        ra.status.as_deref(),
        rb.status.as_deref(),
    );
    if ka.reason != kb.reason {
        nested(
            &mut out,
            &["reason".to_string()],
            &a.reason,
            &b.reason,
            ka.reason.as_deref(),
            kb.reason.as_deref(),
        );
    }
    if ka.embedded != kb.embedded {
        let prefix = ["_embedded".to_string(), ra.link_rel.clone()];
        nested(
            &mut out,
            &prefix,
            &a.embedded,
            &b.embedded,
            ka.embedded.as_deref(),
            kb.embedded.as_deref(),
        );
    }
    out
}

/// How long the sequence alignment may search before settling for a coarser (still
/// correct) answer.
const ALIGN_DEADLINE: Duration = Duration::from_secs(10);

/// Compare two flattened event sequences.
pub fn compare(a: &[FlatEvent], b: &[FlatEvent]) -> (Vec<EventDiff>, EventSummary) {
    // Intern the keys so the LCS works on integers.
    let mut ids: HashMap<&EventKey, u32> = HashMap::new();
    let mut ia = Vec::with_capacity(a.len());
    for e in a {
        let next = ids.len() as u32;
        ia.push(*ids.entry(&e.key).or_insert(next));
    }
    let mut ib = Vec::with_capacity(b.len());
    for e in b {
        let next = ids.len() as u32;
        ib.push(*ids.entry(&e.key).or_insert(next));
    }
    let ops = capture_diff_slices_deadline(
        Algorithm::Myers,
        &ia,
        &ib,
        Some(Instant::now() + ALIGN_DEADLINE),
    );
    let mut diffs = Vec::new();
    let mut summary = EventSummary {
        a: a.len(),
        b: b.len(),
        ..EventSummary::default()
    };
    let removed = |i: usize| EventDiff {
        kind: ChangeKind::Removed,
        a: Some(reference(i, &a[i])),
        b: None,
        changes: Vec::new(),
    };
    let added = |j: usize| EventDiff {
        kind: ChangeKind::Added,
        a: None,
        b: Some(reference(j, &b[j])),
        changes: Vec::new(),
    };
    for op in ops {
        match op {
            DiffOp::Equal { len, .. } => summary.equal += len,
            DiffOp::Delete {
                old_index, old_len, ..
            } => {
                summary.removed += old_len;
                diffs.extend((old_index..old_index + old_len).map(removed));
            }
            DiffOp::Insert {
                new_index, new_len, ..
            } => {
                summary.added += new_len;
                diffs.extend((new_index..new_index + new_len).map(added));
            }
            DiffOp::Replace {
                old_index,
                old_len,
                new_index,
                new_len,
            } => {
                let common = old_len.min(new_len);
                for k in 0..common {
                    let (i, j) = (old_index + k, new_index + k);
                    summary.changed += 1;
                    diffs.push(EventDiff {
                        kind: ChangeKind::Changed,
                        a: Some(reference(i, &a[i])),
                        b: Some(reference(j, &b[j])),
                        changes: field_changes(&a[i], &b[j]),
                    });
                }
                summary.removed += old_len - common;
                diffs.extend((old_index + common..old_index + old_len).map(removed));
                summary.added += new_len - common;
                diffs.extend((new_index + common..new_index + new_len).map(added));
            }
        }
    }
    (diffs, summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::normalize::NormalizeOptions;

    fn ev(ack: i64, link_rel: &str, ty: &str, href: &str) -> EventRow {
        EventRow {
            ack: Some(ack),
            sender_rel: "conversation".into(),
            sender_href: "/c/conversations/1".into(),
            link_rel: link_rel.into(),
            link_href: href.into(),
            in_rel: Some("participant".into()),
            in_href: Some("/c/conversations/1/participants/x".into()),
            event_type: ty.into(),
            ..EventRow::default()
        }
    }

    fn flat(rows: &[EventRow]) -> Vec<FlatEvent> {
        let mut n = Normalizer::new(NormalizeOptions::default(), &[]);
        rows.iter()
            .map(|r| {
                FlatEvent::new(
                    r.ack.unwrap_or(0) as u64,
                    r,
                    &mut n,
                    &IgnorePatterns::default(),
                )
            })
            .collect()
    }

    #[test]
    fn an_extra_event_is_one_insertion_whatever_the_batching() {
        let a = flat(&[
            ev(1, "participantMessaging", "added", "/pm/1"),
            ev(1, "participantMessaging", "updated", "/pm/1"),
            ev(2, "participantMessaging", "deleted", "/pm/1"),
        ]);
        let b = flat(&[
            ev(1, "participantMessaging", "added", "/pm/1"),
            ev(2, "message", "completed", "/m/1"),
            ev(2, "participantMessaging", "updated", "/pm/1"),
            ev(3, "participantMessaging", "deleted", "/pm/1"),
        ]);
        let (diffs, s) = compare(&a, &b);
        assert_eq!(s.equal, 3);
        assert_eq!(s.added, 1);
        assert_eq!(diffs.len(), 1);
        assert_eq!(diffs[0].kind, ChangeKind::Added);
        assert_eq!(diffs[0].b.as_ref().unwrap().ack, Some(2));
        assert_eq!(diffs[0].b.as_ref().unwrap().index, 1);
    }

    #[test]
    fn a_changed_event_names_its_fields() {
        let a = flat(&[ev(1, "participantMessaging", "added", "/pm/1")]);
        let b = flat(&[ev(1, "participantMessaging", "deleted", "/pm/1")]);
        let (diffs, s) = compare(&a, &b);
        assert_eq!(s.changed, 1);
        assert_eq!(diffs[0].changes[0].path, "/type");
    }
}
