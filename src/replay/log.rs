//! The request log (`ReplayServer::received`, `GET /_replay/requests`): every request the
//! replay received, in arrival order, with what answered it. A test in any language reads it
//! to see what its client really sent. What the client sent is logged redacted, like
//! everything else the replay reports.

use std::sync::Arc;

use serde::Serialize;

use super::miss::repr_name;
use crate::ucwa::Representation;

/// Most requests kept in the log; later ones are counted, not kept (`POST /_replay/reset`
/// empties it).
pub const MAX_LOGGED: usize = 100_000;

/// What answered a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// A recorded exchange (`seq`).
    Recorded,
    /// A recorded exchange (`seq`) chosen although the body differed (`--body-match lenient`).
    NearMiss,
    /// The end of the events feed: an empty batch.
    FeedEnd,
    /// Nothing recorded: a UCWA 404 `ReplayMiss` (or `ReplayExhausted`).
    Miss,
    /// An injected fault (`rule`); `seq` is the recorded exchange it stood in for.
    Fault,
    /// Spy mode: forwarded to the live server, answered with its `status`.
    Forwarded,
    /// A held P-GET released with `409 Conflict/PGetReplaced` by a newer one.
    PgetReplaced,
    /// Refused by the HTTP layer before it was read (`414` URI too long, `431` head too large).
    Rejected,
}

/// One request and its answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Received {
    /// Arrival order, from 1 (back to 1 after a reset).
    pub n: u64,
    pub method: String,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    #[serde(serialize_with = "repr_name")]
    pub representation: Representation,
    pub outcome: Outcome,
    /// The recorded exchange that answered (or, for a fault, would have).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// The status the client got (none when the connection was closed instead).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The fault rule that fired on it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

impl std::fmt::Display for Received {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}. {} {}", self.n, self.method, self.path)?;
        if let Some(q) = &self.query {
            write!(f, "?{q}")?;
        }
        let outcome = serde_json::to_value(self.outcome)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        write!(f, " ({}) → {outcome}", self.representation)?;
        if let Some(seq) = self.seq {
            write!(f, " #{seq}")?;
        }
        if let Some(status) = self.status {
            write!(f, " {status}")?;
        }
        if let Some(rule) = &self.rule {
            write!(f, " [{rule}]")?;
        }
        Ok(())
    }
}

/// The requests received, numbered in arrival order; the first [`MAX_LOGGED`] are kept.
///
/// Kept compact: a replay under load logs 100 000 requests in its first second or two, and
/// with a [`Received`] each (two or three strings of its own, 128 bytes in the list) the
/// kernel's zeroing of the log's fresh pages and the list's doubling copies were a tenth of
/// the cost of those requests. An entry shares its texts with recent entries that had the
/// same ones, and is made a `Received` again when read.
#[derive(Debug)]
pub(super) struct RequestLog {
    entries: Vec<Logged>,
    /// Texts of recent entries, shared by the next entries that have them.
    recent: Recent,
    cap: usize,
    /// Requests received beyond the cap.
    dropped: u64,
    next_n: u64,
}

/// A request as the log keeps it: a [`Received`] without its number (its place in the list)
/// and with shared texts.
#[derive(Debug)]
pub(super) struct Logged {
    method: Arc<str>,
    path: Arc<str>,
    query: Option<Arc<str>>,
    representation: Representation,
    pub outcome: Outcome,
    seq: Option<u64>,
    pub status: Option<u16>,
    rule: Option<Box<str>>,
}

impl Logged {
    fn received(&self, n: u64) -> Received {
        Received {
            n,
            method: self.method.to_string(),
            path: self.path.to_string(),
            query: self.query.as_deref().map(str::to_string),
            representation: self.representation,
            outcome: self.outcome,
            seq: self.seq,
            status: self.status,
            rule: self.rule.as_deref().map(str::to_string),
        }
    }
}

/// The last few distinct texts logged: a client under test asks for a handful of resources
/// over and over, so most texts are found here and cost no allocation of their own.
#[derive(Debug, Default)]
struct Recent {
    texts: [Option<Arc<str>>; RECENT],
    /// Where the next text not found goes (the oldest leaves).
    next: usize,
}

/// How many texts [`Recent`] keeps.
const RECENT: usize = 16;

impl Recent {
    fn share(&mut self, text: String) -> Arc<str> {
        if let Some(found) = self.texts.iter().flatten().find(|t| ***t == *text) {
            return found.clone();
        }
        let shared: Arc<str> = Arc::from(text);
        self.texts[self.next] = Some(shared.clone());
        self.next = (self.next + 1) % RECENT;
        shared
    }
}

impl RequestLog {
    pub(super) fn new() -> Self {
        Self::with_cap(MAX_LOGGED)
    }

    fn with_cap(cap: usize) -> Self {
        RequestLog {
            entries: Vec::new(),
            recent: Recent::default(),
            cap,
            dropped: 0,
            next_n: 1,
        }
    }

    /// Log a request and return its number. The entry is made only when the log has room
    /// for it: past the cap, copying a request's path for nothing cost every request of a
    /// long run.
    pub(super) fn push(&mut self, entry: impl FnOnce() -> Received) -> u64 {
        let n = self.next_n;
        self.next_n += 1;
        if self.entries.len() < self.cap {
            let r = entry();
            let logged = Logged {
                method: self.recent.share(r.method),
                path: self.recent.share(r.path),
                query: r.query.map(|q| self.recent.share(q)),
                representation: r.representation,
                outcome: r.outcome,
                seq: r.seq,
                status: r.status,
                rule: r.rule.map(String::into_boxed_str),
            };
            self.entries.push(logged);
        } else {
            self.dropped += 1;
        }
        n
    }

    /// The entry of request `n`, if it was kept.
    pub(super) fn get_mut(&mut self, n: u64) -> Option<&mut Logged> {
        self.entries.get_mut(place(n)?)
    }

    /// Request `n` as received, if it was kept.
    pub(super) fn get(&self, n: u64) -> Option<Received> {
        Some(self.entries.get(place(n)?)?.received(n))
    }

    /// Every request kept, as received.
    pub(super) fn entries(&self) -> Vec<Received> {
        (1..)
            .zip(&self.entries)
            .map(|(n, e)| e.received(n))
            .collect()
    }

    pub(super) fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// Where request `n` is in the log's list (requests are numbered from 1).
fn place(n: u64) -> Option<usize> {
    usize::try_from(n.checked_sub(1)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str) -> Received {
        Received {
            n: 0,
            method: "GET".into(),
            path: path.into(),
            query: None,
            representation: Representation::Json,
            outcome: Outcome::Recorded,
            seq: Some(1),
            status: Some(200),
            rule: None,
        }
    }

    #[test]
    fn requests_are_numbered_in_order_and_past_the_cap_counted_not_made() {
        let mut log = RequestLog::with_cap(2);
        assert_eq!(log.push(|| get("/a")), 1);
        assert_eq!(log.push(|| get("/b")), 2);
        assert_eq!(
            log.push(|| unreachable!("no room: the entry is not made")),
            3
        );
        assert_eq!(
            log.push(|| unreachable!("no room: the entry is not made")),
            4
        );
        let kept: Vec<_> = log.entries().into_iter().map(|r| (r.n, r.path)).collect();
        assert_eq!(kept, [(1, "/a".to_string()), (2, "/b".to_string())]);
        assert_eq!(log.dropped(), 2);
        log.get_mut(2).unwrap().status = Some(409);
        assert_eq!(log.entries()[1].status, Some(409));
        assert_eq!(
            log.get(2).unwrap(),
            Received {
                n: 2,
                status: Some(409),
                ..get("/b")
            }
        );
        assert!(log.get_mut(0).is_none());
        assert!(log.get_mut(3).is_none(), "past the cap: not kept");
        assert_eq!(RequestLog::new().cap, MAX_LOGGED);
    }

    #[test]
    fn entries_share_recent_texts_and_read_back_as_received() {
        let mut log = RequestLog::new();
        let full = Received {
            query: Some("ack=3".into()),
            rule: Some("fault 500".into()),
            outcome: Outcome::Fault,
            ..get("/ucwa/events")
        };
        log.push(|| full.clone());
        log.push(|| full.clone());
        assert_eq!(
            log.entries(),
            [
                Received {
                    n: 1,
                    ..full.clone()
                },
                Received {
                    n: 2,
                    ..full.clone()
                }
            ]
        );
        let [a, b] = &log.entries[..] else { panic!() };
        assert!(Arc::ptr_eq(&a.path, &b.path) && Arc::ptr_eq(&a.method, &b.method));
        assert!(Arc::ptr_eq(
            a.query.as_ref().unwrap(),
            b.query.as_ref().unwrap()
        ));
        let first_path = a.path.clone();
        // Past the RECENT texts kept, a text is made again.
        for i in 0..RECENT {
            log.push(|| get(&format!("/ucwa/{i}")));
        }
        log.push(|| full.clone());
        let last = log.entries.last().unwrap();
        assert!(!Arc::ptr_eq(&first_path, &last.path));
        assert_eq!(
            log.get(RECENT as u64 + 3).unwrap(),
            Received {
                n: RECENT as u64 + 3,
                ..full
            }
        );
    }
}
