//! The session being replayed and where sessions come from: a recording file, or exchanges
//! held in memory (an NDJSON export, a HAR, exchanges built by hand). `POST /_replay/session`
//! switches to another session of the same source.
//!
//! A loaded session keeps its index in memory and reads headers and bodies when a request
//! needs them: from the file through a pool of read-only connections (`store::RowReader`),
//! or from the exchanges held in memory; answers asked for in the recorded order are read
//! several at a time, the next several on tokio's blocking pool while the client is served
//! from the last. Answers that can be asked for again are kept prepared up to a budget
//! (`answers`), so a hot answer is neither read nor rewritten again.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::answers::{Answers, DEFAULT_BUDGET, Prepared};
use super::index::{Entry, Index, IndexBuilder};
use crate::error::{Error, StoreError};
use crate::recording::headers::ResponseRules;
use crate::recording::{Exchange, KeyOptions, OriginRewriter, SessionInfo, Upstreams};
use crate::store::{Recording, RequestParts, ResponseParts, RowReader};
use crate::ucwa::Representation;

/// Where the sessions of a replay come from.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// A recording file, read again when another session is asked for.
    File(PathBuf),
    /// Sessions held in memory; `name` names them in reports.
    Memory {
        name: String,
        sessions: Vec<(SessionInfo, Arc<Vec<Exchange>>)>,
    },
}

impl Source {
    /// How reports name the recording.
    pub fn name(&self) -> String {
        match self {
            Source::File(path) => path.display().to_string(),
            Source::Memory { name, .. } => name.clone(),
        }
    }

    /// Load the session `name` (the only one when `None`): its index, and where its headers
    /// and bodies are. `recompute` computes keys with `key_options` instead of reading the
    /// stored ones (`--ignore-body-field`).
    pub fn load(
        &self,
        name: Option<&str>,
        key_options: &KeyOptions,
        recompute: bool,
    ) -> Result<Loaded, Error> {
        match self {
            Source::File(path) => {
                let recording = Recording::open(path)?;
                let info = recording.session(name)?;
                let expected = usize::try_from(info.exchanges).unwrap_or(0);
                let mut builder = IndexBuilder::new(expected);
                recording.for_each_exchange_head(
                    &info,
                    recompute.then_some(key_options),
                    |head| builder.push(head.id, head),
                )?;
                let parts = Parts::File(RowReader::open(path)?);
                Loaded::new(info, builder.finish(), parts)
            }
            Source::Memory {
                name: source,
                sessions,
            } => {
                let available = || sessions.iter().map(|(s, _)| s.name.clone()).collect();
                let found = match name {
                    Some(n) => sessions.iter().find(|(s, _)| s.name == n),
                    None if sessions.len() == 1 => sessions.first(),
                    None => {
                        return Err(StoreError::AmbiguousSession {
                            path: PathBuf::from(source),
                            available: available(),
                        }
                        .into());
                    }
                };
                let Some((info, exchanges)) = found else {
                    return Err(StoreError::NoSession {
                        path: PathBuf::from(source),
                        name: name.unwrap_or_default().to_string(),
                        available: available(),
                    }
                    .into());
                };
                let index = Index::build(exchanges, key_options, recompute);
                Loaded::new(info.clone(), index, Parts::Memory(exchanges.clone()))
            }
        }
    }
}

/// Where the headers and bodies the index leaves out are read from.
#[derive(Debug)]
enum Parts {
    /// The recording file, one row at a time.
    File(RowReader),
    /// The exchanges held in memory (an entry's `at` is its position).
    Memory(Arc<Vec<Exchange>>),
}

/// One session, indexed and ready to answer.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub session: SessionInfo,
    pub index: Index,
    pub upstreams: Upstreams,
    parts: Parts,
    /// Recorded answers prepared for the base URL last answered at.
    answers: Answers,
    /// Where reading ahead stands.
    ahead: Mutex<Ahead>,
    /// Signalled when a window's read ends.
    read_done: Condvar,
}

/// Where reading ahead stands: what has been claimed, and what is being read.
#[derive(Debug, Default)]
struct Ahead {
    /// The first answer after those claimed by the last read: where the next one would be
    /// asked for if the replay follows the recorded order (None: none asked yet).
    next: Option<usize>,
    /// Whether the answers up to `next` were read ahead in order (not one read alone).
    in_order: bool,
    /// The window being read now, by a request or on the blocking pool.
    reading: Option<Range<usize>>,
}

/// What [`Loaded::claim_read_ahead`] decided.
enum Claim {
    /// Read the window from here; it counts as being read until the guard is dropped.
    Read(ReadingWindow),
    /// A read of the window holding this answer has ended (look for it again).
    WaitedForRead,
    /// Read this answer alone.
    Alone,
}

/// A window claimed for reading: when dropped (read, failed, or never run because the
/// runtime is going away), the window is no longer being read and those waiting for it
/// look again.
struct ReadingWindow(Arc<Loaded>);

impl Drop for ReadingWindow {
    fn drop(&mut self) {
        self.0.lock_ahead().reading = None;
        self.0.read_done.notify_all();
    }
}

/// How many answers are read at once when the replay follows the recorded order.
const READ_AHEAD: usize = 32;
/// How far from [`Ahead::next`] an answer may be asked for and still count as
/// following the recorded order (clients running side by side ask a little out of order).
const IN_ORDER_SLACK: usize = 4;

impl Loaded {
    fn new(session: SessionInfo, index: Index, parts: Parts) -> Result<Self, Error> {
        let upstreams =
            Upstreams::parse(&session.upstream, &session.also_upstreams).map_err(|e| {
                Error::invalid_because(
                    "recording",
                    format!(
                        "session {:?} records an upstream that is not an origin",
                        session.name
                    ),
                    e,
                )
            })?;
        Ok(Loaded {
            session,
            index,
            upstreams,
            parts,
            answers: Answers::new(DEFAULT_BUDGET),
            ahead: Mutex::new(Ahead::default()),
            read_done: Condvar::new(),
        })
    }

    /// The origin rewriter for a replay reachable at `public_base`.
    pub fn rewriter(&self, public_base: &str) -> OriginRewriter {
        OriginRewriter::to_public(&self.upstreams.main, &self.upstreams.also, public_base)
    }

    /// The same head rewriting as the recording proxy (hop-by-hop fields, Via, origins in
    /// Location / WWW-Authenticate / …, cookie domains), built once per `public_base`.
    pub fn head_rules(&self, public_base: &str) -> Arc<ResponseRules> {
        self.answers.rules(public_base, || ResponseRules {
            to_public: self.rewriter(public_base),
            upstream_hosts: self.upstreams.all().map(|o| o.host.clone()).collect(),
        })
    }

    /// The recorded request headers and body of an entry.
    pub fn request(&self, entry: &Entry) -> Result<RequestParts, Error> {
        match &self.parts {
            Parts::File(reader) => Ok(reader.request(entry.at)?),
            Parts::Memory(exchanges) => Ok(RequestParts::of(held(exchanges, entry)?)),
        }
    }

    /// The recorded response headers, body, encoding and error of an entry.
    pub fn response(&self, entry: &Entry) -> Result<ResponseParts, Error> {
        match &self.parts {
            Parts::File(reader) => Ok(reader.response(entry.at)?),
            Parts::Memory(exchanges) => Ok(ResponseParts::of(held(exchanges, entry)?)),
        }
    }

    /// The recorded answer of the entry at `at` (which has a status), ready to send from
    /// `public_base`: prepared once, then served from memory while the budget keeps it.
    /// Only an answer that can be asked for again is kept: one that [repeats], or any once
    /// the replay has been `rewound` (reset, or switched to another session). Keeping the
    /// others would cost a copy of the head and push out answers that will be asked again.
    ///
    /// [repeats]: Entry::repeats
    ///
    /// A replay usually asks for its answers in the recorded order. When an answer not
    /// prepared yet follows on from the last one read (as a file system detects a file read
    /// front to back), the next [`READ_AHEAD`] are read with it in one walk along the table
    /// and kept until asked for: SQLite's search for a row from the table's root was a third
    /// of the time to answer a request asked for the first time. While the replay goes on in
    /// order, the window after those is read on tokio's blocking pool as soon as the client
    /// reaches the last window read, so that reading and preparing are done off the thread
    /// serving the client, on a CPU the client and the replay leave idle. Asked out of
    /// order, an answer is read alone, so a replay that jumps around reads nothing it does
    /// not use.
    pub fn prepared(
        self: &Arc<Self>,
        at: usize,
        public_base: &str,
        rewound: bool,
    ) -> Result<Arc<Prepared>, Error> {
        let entries = self.index.entries();
        let entry = &entries[at];
        let kept = |e: &Entry| e.repeats() || rewound;
        if let Some(ready) = self.answers.get(public_base, at, !kept(entry)) {
            self.read_further(at, public_base);
            return Ok(ready);
        }
        let rules = self.head_rules(public_base);
        let keep_if_asked_again = |prepared: Arc<Prepared>| {
            if kept(entry) {
                self.answers.keep(public_base, at, prepared.clone());
            }
            prepared
        };
        if let Parts::File(reader) = &self.parts {
            match self.claim_read_ahead(at) {
                Claim::Read(window) => {
                    let mine = self.read_window(reader, at, public_base, &rules, Some(at));
                    drop(window);
                    self.read_further(at, public_base);
                    if let Some(parts) = mine {
                        return Ok(keep_if_asked_again(Arc::new(prepare(entry, parts, &rules))));
                    }
                }
                Claim::WaitedForRead => {
                    if let Some(ready) = self.answers.get(public_base, at, !kept(entry)) {
                        self.read_further(at, public_base);
                        return Ok(ready);
                    }
                }
                Claim::Alone => {}
            }
        }
        let parts = self.response(entry)?;
        Ok(keep_if_asked_again(Arc::new(prepare(entry, parts, &rules))))
    }

    fn lock_ahead(&self) -> MutexGuard<'_, Ahead> {
        self.ahead.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the answer at `at`, not prepared yet, is read with the next ones. It is when
    /// it follows on from the last read: the window from `at` is claimed, and counts as
    /// being read until the [`ReadingWindow`] is dropped. A request that finds a window being
    /// read waits for that read ([`Claim::WaitedForRead`] when its answer was in it: it is
    /// then most likely ready). One elsewhere (out of order) is read alone, and the next one
    /// is expected after it.
    fn claim_read_ahead(self: &Arc<Self>, at: usize) -> Claim {
        let mut ahead = self.lock_ahead();
        let mut waited = false;
        while let Some(window) = &ahead.reading {
            waited |= window.contains(&at);
            ahead = self
                .read_done
                .wait(ahead)
                .unwrap_or_else(|p| p.into_inner());
        }
        if waited {
            return Claim::WaitedForRead;
        }
        let Some(next) = ahead.next else {
            ahead.next = Some(at + 1);
            return Claim::Alone;
        };
        if at + IN_ORDER_SLACK >= next && at <= next.saturating_add(IN_ORDER_SLACK) {
            ahead.next = Some(at + READ_AHEAD);
            ahead.in_order = true;
            ahead.reading = Some(at..at + READ_AHEAD);
            return Claim::Read(ReadingWindow(self.clone()));
        }
        if at < next && at + READ_AHEAD >= next {
            // Read lately, but not kept (a row that could not be read): alone, in order.
            return Claim::Alone;
        }
        ahead.next = Some(at + 1);
        ahead.in_order = false;
        Claim::Alone
    }

    /// After the answer at `at` was served in order: when it is in the last window read
    /// ahead, read the window after it on the blocking pool (one window at a time, and only
    /// in a tokio runtime).
    fn read_further(self: &Arc<Self>, at: usize, public_base: &str) {
        if !matches!(self.parts, Parts::File(_)) {
            return;
        }
        let mut ahead = self.lock_ahead();
        let next = match ahead.next {
            Some(next)
                if ahead.in_order
                    && ahead.reading.is_none()
                    && at < next
                    && at + READ_AHEAD >= next
                    && next < self.index.entries().len() =>
            {
                next
            }
            _ => return,
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        ahead.next = Some(next + READ_AHEAD);
        ahead.reading = Some(next..next + READ_AHEAD);
        drop(ahead);
        let window = ReadingWindow(self.clone());
        // The rules of this base, taken now: the answers are kept only while it is the one.
        let rules = self.head_rules(public_base);
        let public_base = public_base.to_string();
        runtime.spawn_blocking(move || {
            let loaded = &window.0;
            if let Parts::File(reader) = &loaded.parts {
                loaded.read_window(reader, next, &public_base, &rules, None);
            }
            drop(window);
        });
    }

    /// Wait until no window is being read (tests: reads on the blocking pool have ended).
    #[cfg(test)]
    pub(crate) fn settle_reads(&self) {
        let mut ahead = self.lock_ahead();
        while ahead.reading.is_some() {
            ahead = self
                .read_done
                .wait(ahead)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Read the window from `from` and keep its answers prepared, except the one at `mine`,
    /// which is returned unprepared (the caller decides whether it is kept).
    fn read_window(
        &self,
        reader: &RowReader,
        from: usize,
        public_base: &str,
        rules: &ResponseRules,
        mine: Option<usize>,
    ) -> Option<ResponseParts> {
        let entries = self.index.entries();
        let mut read = self.read_ahead(reader, from).unwrap_or_default();
        let mine = mine.and_then(|at| {
            let p = read.iter().position(|(i, _)| *i == at)?;
            Some(read.swap_remove(p).1)
        });
        for (i, parts) in read {
            let prepared = Arc::new(prepare(&entries[i], parts, rules));
            self.answers.keep(public_base, i, prepared);
        }
        mine
    }

    /// The responses of the entries from `at` on (up to [`READ_AHEAD`] of them, those with
    /// a status), read in one walk, by entry; None when their rows are too far apart to be
    /// worth one walk (sessions recorded into one file at once), or on a read error (the
    /// answer is then read alone, which reports it).
    fn read_ahead(&self, reader: &RowReader, at: usize) -> Option<Vec<(usize, ResponseParts)>> {
        let entries = self.index.entries();
        let ahead: Vec<usize> = (at..entries.len())
            .take(READ_AHEAD)
            .filter(|&i| entries[i].status.is_some())
            .collect();
        let first = ahead.iter().map(|&i| entries[i].at).min()?;
        let last = ahead.iter().map(|&i| entries[i].at).max()?;
        if last - first >= 2 * READ_AHEAD as i64 {
            return None;
        }
        let rows: hashbrown::HashMap<i64, usize> =
            ahead.iter().map(|&i| (entries[i].at, i)).collect();
        let read = reader
            .responses(first, last, |id| rows.contains_key(&id))
            .ok()?;
        Some(
            read.into_iter()
                .filter_map(|(id, parts)| Some((*rows.get(&id)?, parts)))
                .collect(),
        )
    }

    /// The content type the recording answered an events path with in `repr`, for the
    /// synthetic empty batch at the end of the feed.
    pub fn feed_content_type(&self, path: &str, repr: Representation) -> Option<String> {
        self.index.feed_answers(path, repr).find_map(|entry| {
            let parts = self
                .response(entry)
                .inspect_err(|e| tracing::warn!("replay: {}", crate::error::Chain(e)))
                .ok()?;
            parts
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        })
    }
}

/// The recorded answer of `entry` with the replay's head rules applied.
fn prepare(entry: &Entry, parts: ResponseParts, rules: &ResponseRules) -> Prepared {
    Prepared::new(entry.status.unwrap_or(502), parts, rules)
}

/// An exchange held in memory, by its entry.
fn held<'a>(exchanges: &'a [Exchange], entry: &Entry) -> Result<&'a Exchange, Error> {
    usize::try_from(entry.at)
        .ok()
        .and_then(|i| exchanges.get(i))
        .ok_or_else(|| {
            Error::from(StoreError::Corrupt {
                path: PathBuf::from("(memory)"),
                detail: format!("no exchange at {}", entry.at),
            })
        })
}
