//! Structural comparison of two recorded sessions, used by
//! `ucwa-replay diff` and `ucwa-replay verify`.
//!
//! The pipeline: `align::prepare` walks each session once in `seq` order (streamed from the
//! store by [`diff_sessions`]), normalising volatile values (`normalize`) and reducing each
//! parsed body (`body`) to a fingerprint; `align::align` pairs exchanges by (match key,
//! ordinal), the events feed aside; each pair is compared on status, the chosen headers and,
//! when the fingerprints differ, the bodies read and parsed again (`json`, `xml`, `text`,
//! else digest); the two flattened event sequences are aligned by `events`; `render` prints
//! the [`DiffReport`] as text or as JSON (schema documented there).
//!
//! ```no_run
//! use ucwa_replay::diff::{DiffOptions, diff_sessions};
//! use ucwa_replay::store::Recording;
//! # fn main() -> Result<(), ucwa_replay::Error> {
//! let a = Recording::open("before.sqlite".as_ref())?;
//! let b = Recording::open("after.sqlite".as_ref())?;
//! let (sa, sb) = (a.session(None)?, b.session(None)?);
//! let report = diff_sessions(&a, &sa, &b, &sb, &DiffOptions::default())?;
//! println!("{}", report.summary());
//! # Ok(()) }
//! ```

use std::borrow::Cow;

use serde::Serialize;

mod align;
mod body;
mod events;
mod fresh_ids;
mod json;
mod normalize;
mod render;
mod text;
mod verify;
mod xml;

pub use events::{EventDiff, EventRef, EventSummary};
pub use json::IgnorePatterns;
pub use normalize::NormalizeOptions;
use normalize::Normalizer;
pub use render::{write_json, write_text};
pub use verify::{
    Credentials, FailedRequest, VerifyOptions, VerifyOutcome, VerifySummary, default_session_name,
    verify,
};

use crate::error::Error;
use crate::recording::{Exchange, SessionInfo};
use crate::store::Recording;

/// The version tag of the JSON report (`"schema"` member).
pub const SCHEMA: &str = "ucwa-replay.diff/1";

/// Headers compared unless told otherwise.
pub const DEFAULT_HEADERS: &[&str] = &["content-type", "location"];

/// What to compare and how.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DiffOptions {
    pub normalize: NormalizeOptions,
    /// JSON pointers (with `*`) left out of body and embedded-resource comparison.
    pub ignore: IgnorePatterns,
    /// Lower-case names of the compared response headers.
    pub headers: Vec<String>,
    /// Told how many paired exchanges were compared so far (the binary draws a bar).
    pub progress: Option<crate::progress::Progress>,
}

impl Default for DiffOptions {
    fn default() -> Self {
        DiffOptions {
            normalize: NormalizeOptions::default(),
            ignore: IgnorePatterns::default(),
            headers: DEFAULT_HEADERS.iter().map(|h| h.to_string()).collect(),
            progress: None,
        }
    }
}

impl DiffOptions {
    /// Build from command-line style inputs: `--no-normalize`, `--ignore`, `--header`,
    /// `--ignore-header`.
    pub fn from_flags(
        no_normalize: bool,
        ignore: &[String],
        add_headers: &[String],
        ignore_headers: &[String],
    ) -> Result<Self, Error> {
        let ignore = IgnorePatterns::parse(ignore)
            .map_err(|message| Error::invalid("--ignore pointer", message))?;
        let mut headers: Vec<String> = DEFAULT_HEADERS.iter().map(|h| h.to_string()).collect();
        for h in add_headers {
            if http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                return Err(Error::invalid(
                    "--header name",
                    format!("{h:?} is not a header name"),
                ));
            }
            let h = h.to_ascii_lowercase();
            if !headers.contains(&h) {
                headers.push(h);
            }
        }
        headers.retain(|h| !ignore_headers.iter().any(|i| i.eq_ignore_ascii_case(h)));
        Ok(DiffOptions {
            normalize: if no_normalize {
                NormalizeOptions::none()
            } else {
                NormalizeOptions::default()
            },
            ignore,
            headers,
            progress: None,
        })
    }
}

/// Added, removed or changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Changed,
    Added,
    Removed,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Changed => "changed",
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
        }
    }
}

/// Which part of an exchange (or event) a change is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Part {
    Status,
    Header,
    Body,
    Event,
}

impl Part {
    pub fn as_str(self) -> &'static str {
        match self {
            Part::Status => "status",
            Part::Header => "header",
            Part::Body => "body",
            Part::Event => "event",
        }
    }
}

/// One difference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub part: Part,
    /// Status: `""`; header: its lower-case name; body: a JSON pointer (`/_links/self/href`),
    /// an XML path (`/resource/link[@rel=participant]/@href`), `/line/N` for text, or `""`
    /// for the whole body; event: a pointer into the event envelope (`/type`).
    pub path: String,
    pub kind: ChangeKind,
    /// The raw value in A (JSON text for JSON values, quoted strings otherwise), absent when
    /// added.
    pub a: Option<String>,
    /// The raw value in B, absent when removed.
    pub b: Option<String>,
}

/// One side of an exchange difference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExchangeRef {
    pub seq: u64,
    /// Path and query as recorded.
    pub target: String,
    pub status: Option<u16>,
}

/// A paired exchange that differs, or an unpaired one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExchangeDiff {
    pub kind: ChangeKind,
    pub method: String,
    /// The UCWA resource kind (`participantMessaging`, …).
    pub resource: String,
    /// `json`, `xml` or `other`: what the request asked for.
    pub representation: String,
    /// The alignment key (normalised unless `--no-normalize`).
    pub key: String,
    /// How many earlier exchanges share the key (0-based; text output shows it 1-based as `#N`).
    pub ordinal: u32,
    pub a: Option<ExchangeRef>,
    pub b: Option<ExchangeRef>,
    /// What differs (empty for added / removed exchanges).
    pub changes: Vec<Change>,
}

/// Counts of the exchange comparison.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub paired: usize,
    pub equal: usize,
    pub changed: usize,
    pub added: usize,
    pub removed: usize,
    pub events: EventSummary,
}

/// A session as the report names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionRef {
    /// `FILE#SESSION`.
    pub label: String,
    /// Exchanges outside the events feed.
    pub exchanges: usize,
    /// Events-feed exchanges.
    pub feed_exchanges: usize,
}

/// The outcome of a diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiffReport {
    /// Always [`SCHEMA`].
    pub schema: &'static str,
    pub a: SessionRef,
    pub b: SessionRef,
    pub normalized: bool,
    pub equal: bool,
    pub summary: Summary,
    /// Changed, added and removed exchanges: A's order, then B-only exchanges in B's order.
    pub exchanges: Vec<ExchangeDiff>,
    pub events: Vec<EventDiff>,
    /// For `verify`: what was sent to the live server and what got no answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifySummary>,
}

impl DiffReport {
    /// Whether the sessions compare equal.
    pub fn is_equal(&self) -> bool {
        self.equal
    }

    /// `paired N, equal N, changed N, added N, removed N; events: A N, B N, equal N, changed N,
    /// added N, removed N`.
    pub fn summary(&self) -> String {
        let s = &self.summary;
        let e = &s.events;
        format!(
            "paired {}, equal {}, changed {}, added {}, removed {}; events: A {}, B {}, equal {}, changed {}, added {}, removed {}",
            s.paired,
            s.equal,
            s.changed,
            s.added,
            s.removed,
            e.a,
            e.b,
            e.equal,
            e.changed,
            e.added,
            e.removed
        )
    }
}

/// One session's input to [`diff_exchanges`].
#[derive(Debug, Clone)]
pub struct SessionInput<'a> {
    /// How the report names it (`FILE#SESSION`).
    pub label: String,
    /// Upstream origins the session was recorded against (normalised to `{origin}`).
    pub origins: Vec<String>,
    /// The exchanges in `seq` order.
    pub exchanges: &'a [Exchange],
}

impl<'a> SessionInput<'a> {
    /// From a session of a recording and its exchanges.
    pub fn new(rec: &Recording, info: &SessionInfo, exchanges: &'a [Exchange]) -> Self {
        SessionInput {
            label: label(rec, info),
            origins: origins(info),
            exchanges,
        }
    }
}

fn label(rec: &Recording, info: &SessionInfo) -> String {
    format!("{}#{}", rec.path().display(), info.name)
}

fn origins(info: &SessionInfo) -> Vec<String> {
    let mut origins = vec![info.upstream.clone()];
    origins.extend(info.also_upstreams.iter().cloned());
    origins
}

/// Compare two sessions (possibly of the same file), reading each from the store as a
/// stream: memory holds a digest of every exchange, never every body (a pair whose bodies
/// differ is read again to say how).
pub fn diff_sessions(
    rec_a: &Recording,
    a: &SessionInfo,
    rec_b: &Recording,
    b: &SessionInfo,
    opts: &DiffOptions,
) -> Result<DiffReport, Error> {
    let prepare = |rec: &Recording, info: &SessionInfo| {
        align::prepare(
            rec.stream_exchanges(info).map(|r| r.map_err(Error::from)),
            &origins(info),
            opts.normalize,
            &opts.headers,
            &opts.ignore,
        )
    };
    // The two walks are independent: B's runs on a second thread, on a connection of its
    // own (a connection is not shared between threads).
    let path_b = rec_b.path();
    let (pa, pb) = std::thread::scope(|scope| {
        let side_b = scope.spawn(|| prepare(&Recording::open(path_b)?, b));
        let pa = prepare(rec_a, a);
        let pb = side_b
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (pa, pb)
    });
    let (mut pa, mut pb) = (pa?, pb?);
    let fetch = |rec: &Recording, info: &SessionInfo, seq: u64| -> Result<Exchange, Error> {
        rec.exchange_by_seq(info, seq)?.ok_or_else(|| {
            // Rows do not vanish from a recording that is being read: only a file changed
            // under the diff gets here.
            crate::store::StoreError::Corrupt {
                path: rec.path().to_path_buf(),
                detail: format!("exchange {seq} of session {:?} is gone", info.name),
            }
            .into()
        })
    };
    compare_prepared(
        (label(rec_a, a), &mut pa),
        (label(rec_b, b), &mut pb),
        opts,
        &mut |side, seq| match side {
            Which::A => fetch(rec_a, a, seq).map(Cow::Owned),
            Which::B => fetch(rec_b, b, seq).map(Cow::Owned),
        },
    )
}

/// Compare two sessions already loaded.
pub fn diff_exchanges(
    a: &SessionInput<'_>,
    b: &SessionInput<'_>,
    opts: &DiffOptions,
) -> DiffReport {
    let prepare = |input: &SessionInput<'_>| {
        align::prepare(
            input.exchanges.iter().map(Ok),
            &input.origins,
            opts.normalize,
            &opts.headers,
            &opts.ignore,
        )
        .expect("exchanges in memory always read")
    };
    let (mut pa, mut pb) = (prepare(a), prepare(b));
    fn find(exchanges: &[Exchange], seq: u64) -> Result<Cow<'_, Exchange>, Error> {
        // In seq order: one binary search (a linear scan should seqs ever repeat).
        let at = exchanges
            .binary_search_by_key(&seq, |e| e.seq)
            .ok()
            .or_else(|| exchanges.iter().position(|e| e.seq == seq))
            .expect("a prepared exchange is one of the session's");
        Ok(Cow::Borrowed(&exchanges[at]))
    }
    compare_prepared(
        (a.label.clone(), &mut pa),
        (b.label.clone(), &mut pb),
        opts,
        &mut |side, seq| match side {
            Which::A => find(a.exchanges, seq),
            Which::B => find(b.exchanges, seq),
        },
    )
    .expect("exchanges in memory always read")
}

/// Which session of the two.
#[derive(Debug, Clone, Copy)]
enum Which {
    A,
    B,
}

/// Reads one exchange of a session again, by `seq`.
type Fetch<'s, 'x> = dyn FnMut(Which, u64) -> Result<Cow<'x, Exchange>, Error> + 's;

fn exchange_ref(p: &align::Prepared) -> ExchangeRef {
    ExchangeRef {
        seq: p.seq,
        target: p.target.clone(),
        status: p.status,
    }
}

fn compare_pair(
    a: &align::Prepared,
    b: &align::Prepared,
    sides: (&mut Normalizer, &mut Normalizer),
    opts: &DiffOptions,
    fetch: &mut Fetch<'_, '_>,
) -> Result<Vec<Change>, Error> {
    let mut changes = Vec::new();
    if a.status_text != b.status_text {
        changes.push(Change {
            part: Part::Status,
            path: String::new(),
            kind: ChangeKind::Changed,
            a: Some(a.status_text.clone()),
            b: Some(b.status_text.clone()),
        });
    }
    for (name, (ha, hb)) in opts.headers.iter().zip(a.headers.iter().zip(&b.headers)) {
        let kind = match (ha, hb) {
            (Some((na, _)), Some((nb, _))) if na == nb => continue,
            (None, None) => continue,
            (Some(_), Some(_)) => ChangeKind::Changed,
            (Some(_), None) => ChangeKind::Removed,
            (None, Some(_)) => ChangeKind::Added,
        };
        changes.push(Change {
            part: Part::Header,
            path: name.clone(),
            kind,
            a: ha.as_ref().map(|(_, raw)| format!("{raw:?}")),
            b: hb.as_ref().map(|(_, raw)| format!("{raw:?}")),
        });
    }
    if a.body != b.body {
        // Parsed again with each session's normaliser, which gives what the walk gave.
        let body_a = align::body_of(&*fetch(Which::A, a.seq)?, sides.0);
        let body_b = align::body_of(&*fetch(Which::B, b.seq)?, sides.1);
        body::compare(&body_a, &body_b, &opts.ignore, &mut changes);
    }
    Ok(changes)
}

fn unpaired(p: &align::Prepared, kind: ChangeKind) -> ExchangeDiff {
    let r = exchange_ref(p);
    ExchangeDiff {
        kind,
        method: p.method.clone(),
        resource: p.kind.to_string(),
        representation: p.representation.to_string(),
        key: p.key.clone(),
        ordinal: p.ordinal,
        a: (kind == ChangeKind::Removed).then(|| r.clone()),
        b: (kind == ChangeKind::Added).then_some(r),
        changes: Vec::new(),
    }
}

/// Pair and compare two prepared sessions (labelled as the report names them).
fn compare_prepared(
    (label_a, pa): (String, &mut align::PreparedSession),
    (label_b, pb): (String, &mut align::PreparedSession),
    opts: &DiffOptions,
    fetch: &mut Fetch<'_, '_>,
) -> Result<DiffReport, Error> {
    let alignment = align::align(&pa.exchanges, &pb.exchanges);

    let total = alignment.pairs.len() as u64;

    let mut summary = Summary {
        paired: alignment.pairs.len(),
        added: alignment.added.len(),
        removed: alignment.removed.len(),
        ..Summary::default()
    };
    // Removed exchanges sit in A's order among the changed ones.
    let mut in_a_order: Vec<(usize, ExchangeDiff)> = Vec::new();
    for (n, &(i, j)) in alignment.pairs.iter().enumerate() {
        if let Some(progress) = &opts.progress
            && n % 256 == 0
        {
            progress.report(n as u64, total);
        }
        let (x, y) = (&pa.exchanges[i], &pb.exchanges[j]);
        let changes = compare_pair(x, y, (&mut pa.norm, &mut pb.norm), opts, fetch)?;
        if changes.is_empty() {
            summary.equal += 1;
            continue;
        }
        summary.changed += 1;
        in_a_order.push((
            i,
            ExchangeDiff {
                kind: ChangeKind::Changed,
                method: x.method.clone(),
                resource: x.kind.to_string(),
                representation: x.representation.to_string(),
                key: x.key.clone(),
                ordinal: x.ordinal,
                a: Some(exchange_ref(x)),
                b: Some(exchange_ref(y)),
                changes,
            },
        ));
    }
    if let Some(progress) = &opts.progress {
        progress.report(total, total);
    }
    for &i in &alignment.removed {
        in_a_order.push((i, unpaired(&pa.exchanges[i], ChangeKind::Removed)));
    }
    in_a_order.sort_by_key(|(i, _)| *i);
    let mut exchanges: Vec<ExchangeDiff> = in_a_order.into_iter().map(|(_, d)| d).collect();
    exchanges.extend(
        alignment
            .added
            .iter()
            .map(|&j| unpaired(&pb.exchanges[j], ChangeKind::Added)),
    );

    let (event_diffs, mut event_summary) = events::compare(&pa.events, &pb.events);
    event_summary.feed_errors_a = pa.feed_errors.clone();
    event_summary.feed_errors_b = pb.feed_errors.clone();
    let feed_equal = event_summary.feed_errors_a == event_summary.feed_errors_b;
    summary.events = event_summary;
    let equal = exchanges.is_empty() && event_diffs.is_empty() && feed_equal;
    let side = |label: String, p: &align::PreparedSession| SessionRef {
        label,
        exchanges: p.exchanges.len(),
        feed_exchanges: p.total - p.exchanges.len(),
    };
    Ok(DiffReport {
        schema: SCHEMA,
        a: side(label_a, pa),
        b: side(label_b, pb),
        normalized: opts.normalize.any(),
        equal,
        summary,
        exchanges,
        events: event_diffs,
        verify: None,
    })
}
