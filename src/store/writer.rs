//! The one writer of a recording: a dedicated thread that owns the SQLite connection and
//! drains a queue in batched transactions.
//!
//! What may wait for the disk is bounded ([`WriterLimit`]: exchanges and bytes, counted from
//! the moment an exchange is handed over until its batch is committed). Handing over never
//! blocks and never fails for lack of room — an exchange that was answered is always stored —
//! so the bound is kept by producers waiting *before* they start new work:
//! [`ExchangeSink::room`] (async) or [`ExchangeSink::room_blocking`] wait until the queue is
//! under the bound. The recording proxy awaits `room()` before it forwards a request, and
//! takes an [`Admission`] when an exchange ends (before its record is finished off the
//! client's path), so neither a slow disk nor slow finishing grows memory without bound,
//! and a held P-GET holds no capacity while it is held.
//!
//! Ordinals (how many earlier exchanges of the session share a match key) are counted by
//! [`Ordinals`], in bounded memory, seeded from the file when a session is appended to. SQL
//! is only asked to shift the rows of a key that came after an exchange that arrived late
//! (a held request that finished after later ones), by their seqs.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::{Notify, mpsc};

use super::ordinals::Ordinals;
use super::watch::Watch;
use super::{StoreError, now_rfc3339, schema};
use crate::recording::Exchange;

/// Most exchanges written in one transaction. While the file had an index on the match
/// key, every row went into it at a place of its own and a larger batch shared those page
/// writes among more rows: 2 048 per commit did 1.10–1.18 × the rows/s of a straight INSERT
/// against 0.88–0.96 × at 512. Without that index (schema version 2) 512 and 2 048 do the
/// same (`benches/writer.rs`). What waits for the writer is bounded by [`WriterLimit`] all
/// the same.
const MAX_BATCH: usize = 2048;
/// A batch smaller than this waits [`GATHER_FOR`] for more before it is written.
const GATHER_BELOW: usize = 16;
/// At a sequential client's few thousand exchanges a second, 2 ms gathered about seven per
/// commit, and the commits' page writes (16 KiB pages, several per commit) and checkpoints
/// took half the writer's CPU, on CPUs the client's path shares. 10 ms gathers five times
/// more per commit: 10 % less CPU per exchange in all at one connection. An exchange
/// reaches the file at most this much later; stopping still writes everything at once.
const GATHER_FOR: std::time::Duration = std::time::Duration::from_millis(10);
/// The writer connection's page cache, KiB.
const CACHE_KIB: u32 = 8192;
/// WAL pages between automatic checkpoints (SQLite's default is 1 000). 256 (4 MiB) kept
/// less waiting in memory while a checkpoint ran (record's peak 47–48 MB instead of 52–56
/// under `wrk -c32`, at the same req/s), but `cargo bench --bench pget` recorded 5–7 % fewer
/// req/s with it in 6 alternating runs, so the longer WAL stays.
const CHECKPOINT_PAGES: u32 = 2000;

/// How much may wait for the writer: exchanges handed over and not yet committed. A
/// producer that calls [`ExchangeSink::room`] waits while either figure is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterLimit {
    pub exchanges: usize,
    /// Estimated heap bytes of the queued exchanges (bodies, headers, events).
    pub bytes: usize,
}

impl Default for WriterLimit {
    /// 4 096 exchanges or 16 MiB, whichever comes first.
    fn default() -> Self {
        WriterLimit {
            exchanges: 4096,
            bytes: 16 << 20,
        }
    }
}

/// What a new session starts with.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub name: String,
    pub upstream: String,
    pub also_upstreams: Vec<String>,
    /// Replace an existing session of the same name instead of refusing.
    pub replace: bool,
}

impl NewSession {
    /// A new session `name` recorded against `upstream`, with no other origins.
    pub fn new(name: impl Into<String>, upstream: impl Into<String>) -> Self {
        NewSession {
            name: name.into(),
            upstream: upstream.into(),
            also_upstreams: Vec::new(),
            replace: false,
        }
    }
}

/// Counters reported when the writer finishes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriterStats {
    pub exchanges: u64,
    pub events: u64,
    pub batches: u64,
    /// Most exchanges that were waiting for the writer at once.
    pub peak_queued: u64,
    /// Most estimated bytes that were waiting for the writer at once.
    pub peak_queued_bytes: u64,
}

/// The bound shared by every sink of one writer and the writer thread.
#[derive(Debug)]
struct Budget {
    state: Mutex<Used>,
    /// Wakes async producers waiting in `room()` when the writer frees capacity.
    freed: Notify,
    /// Wakes threads waiting in `room_blocking()`.
    freed_sync: Condvar,
}

#[derive(Debug, Default)]
struct Used {
    limit: WriterLimit,
    exchanges: usize,
    bytes: usize,
    peak_exchanges: usize,
    peak_bytes: usize,
}

impl Used {
    fn has_room(&self) -> bool {
        self.exchanges < self.limit.exchanges && self.bytes < self.limit.bytes
    }
}

impl Budget {
    fn new(limit: WriterLimit) -> Self {
        Budget {
            state: Mutex::new(Used {
                limit,
                ..Used::default()
            }),
            freed: Notify::new(),
            freed_sync: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Used> {
        // Nothing panics while holding it; a poisoned lock still holds valid counters.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn charge(&self, exchanges: usize, bytes: usize) {
        let mut used = self.lock();
        used.exchanges += exchanges;
        used.bytes += bytes;
        used.peak_exchanges = used.peak_exchanges.max(used.exchanges);
        used.peak_bytes = used.peak_bytes.max(used.bytes);
    }

    fn release(&self, exchanges: usize, bytes: usize) {
        {
            let mut used = self.lock();
            used.exchanges = used.exchanges.saturating_sub(exchanges);
            used.bytes = used.bytes.saturating_sub(bytes);
        }
        self.freed.notify_waiters();
        self.freed_sync.notify_all();
    }

    fn has_room(&self) -> bool {
        self.lock().has_room()
    }
}

/// An exchange on its way to the writer with the bytes it was charged, and its headers
/// already in their stored form: encoded by the producer, in parallel, not by the one
/// writer thread.
#[derive(Debug)]
struct Queued {
    exchange: Exchange,
    weight: usize,
    request_headers: String,
    response_headers: String,
}

/// Where finished exchanges go. Cheap to clone. [`ExchangeSink::submit`] never blocks;
/// producers that can wait keep memory bounded with [`ExchangeSink::room`].
#[derive(Debug, Clone)]
pub struct ExchangeSink {
    tx: mpsc::UnboundedSender<Queued>,
    budget: Arc<Budget>,
    dropped: Arc<AtomicU64>,
}

impl ExchangeSink {
    /// Wait until the writer is under its [`WriterLimit`]. Holds nothing afterwards (call
    /// it before starting the work whose exchange will be submitted); cancel-safe.
    pub async fn room(&self) {
        loop {
            let freed = self.budget.freed.notified();
            tokio::pin!(freed);
            // Registered before the check, so a release in between still wakes us.
            freed.as_mut().enable();
            if self.budget.has_room() || self.tx.is_closed() {
                return;
            }
            freed.await;
        }
    }

    /// [`ExchangeSink::room`] for a thread outside an async runtime.
    pub fn room_blocking(&self) {
        let mut used = self.budget.lock();
        while !used.has_room() && !self.tx.is_closed() {
            used = self
                .budget
                .freed_sync
                .wait_timeout(used, std::time::Duration::from_millis(100))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Wait for room, then submit: for a loop that produces exchanges faster than the disk
    /// takes them (an import).
    pub async fn send(&self, exchange: Exchange) {
        self.room().await;
        self.submit(exchange);
    }

    /// Count one exchange into the bound now, before it is ready: the proxy takes this
    /// when an exchange ends and submits through it once the record is finished.
    pub fn admit(&self, estimated_bytes: usize) -> Admission {
        self.budget.charge(1, estimated_bytes);
        Admission {
            sink: Some(self.clone()),
            weight: estimated_bytes,
        }
    }

    /// Queue an exchange for writing. Never blocks and never refuses for lack of room
    /// (only a writer that is gone loses it, logged); see [`ExchangeSink::room`].
    pub fn submit(&self, exchange: Exchange) {
        let weight = weight(&exchange);
        self.budget.charge(1, weight);
        self.queue(exchange, weight);
    }

    /// Queue an exchange already charged `weight` bytes (the encoded headers are charged
    /// here).
    fn queue(&self, exchange: Exchange, weight: usize) {
        let request_headers = exchange.request_headers.to_json();
        let response_headers = exchange.response_headers.to_json();
        let encoded = request_headers.len() + response_headers.len();
        self.budget.charge(0, encoded);
        let weight = weight + encoded;
        let queued = Queued {
            request_headers,
            response_headers,
            exchange,
            weight,
        };
        if self.tx.send(queued).is_err() {
            self.budget.release(1, weight);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::error!("recording writer is gone; an exchange was not stored");
        }
    }

    /// Exchanges and estimated bytes handed over and not yet committed.
    pub fn queued(&self) -> (usize, usize) {
        let used = self.budget.lock();
        (used.exchanges, used.bytes)
    }
}

/// One exchange counted into the writer's bound ahead of its submission
/// ([`ExchangeSink::admit`]). Dropping it unused gives the room back.
#[derive(Debug)]
pub struct Admission {
    sink: Option<ExchangeSink>,
    weight: usize,
}

impl Admission {
    /// Queue the exchange (its charge corrected to its actual size). Never blocks.
    pub fn submit(mut self, exchange: Exchange) {
        let Some(sink) = self.sink.take() else {
            return;
        };
        let actual = weight(&exchange);
        if actual > self.weight {
            sink.budget.charge(0, actual - self.weight);
        } else {
            sink.budget.release(0, self.weight - actual);
        }
        sink.queue(exchange, actual);
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        if let Some(sink) = self.sink.take() {
            sink.budget.release(1, self.weight);
        }
    }
}

/// Estimated heap bytes of an exchange (what holding it in the queue costs).
pub fn weight(ex: &Exchange) -> usize {
    let headers = |h: &crate::recording::HeaderList| {
        h.0.iter()
            .map(|(n, v)| n.len() + v.len() + 2 * std::mem::size_of::<Vec<u8>>())
            .sum::<usize>()
    };
    let opt = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    std::mem::size_of::<Exchange>()
        + ex.method.len()
        + ex.path.len()
        + opt(&ex.query)
        + ex.http_version.len()
        + headers(&ex.request_headers)
        + ex.request_body.len()
        + headers(&ex.response_headers)
        + ex.response_body.len()
        + opt(&ex.content_encoding)
        + opt(&ex.error)
        + ex.kind.as_str().len()
        + ex.match_key.path.len()
        + ex.match_key.query.len()
        + 48
        + opt(&ex.credential)
        + opt(&ex.upstream)
        + ex.events
            .iter()
            .map(|e| {
                std::mem::size_of_val(e)
                    + e.sender_rel.len()
                    + e.sender_href.len()
                    + e.link_rel.len()
                    + e.link_href.len()
                    + opt(&e.link_title)
                    + opt(&e.in_rel)
                    + opt(&e.in_href)
                    + e.event_type.len()
                    + opt(&e.status)
                    + opt(&e.reason)
                    + opt(&e.embedded)
            })
            .sum::<usize>()
}

/// Owns the writer thread of one session.
#[derive(Debug)]
pub struct StoreWriter {
    sink: Option<ExchangeSink>,
    thread: Option<std::thread::JoinHandle<Result<WriterStats, StoreError>>>,
    session_id: i64,
    last_seq: u64,
    path: PathBuf,
}

impl StoreWriter {
    /// Open (or create) `path`, start session `session`, and start the writer thread.
    pub fn create(path: &Path, session: &NewSession) -> Result<Self, StoreError> {
        super::check_session_name(&session.name)?;
        let conn = schema::open_for_write(path)?;
        let session_id = start_session(&conn, path, session)?;
        let ordinals = Ordinals::new(&conn).map_err(|e| StoreError::sqlite(path, e))?;
        Self::start(conn, path, session_id, ordinals, 0)
    }

    /// Open `path` and go on writing the existing session `name`: ordinals continue from
    /// what it holds; submit `seq`s after [`StoreWriter::last_seq`].
    pub fn append(path: &Path, name: &str) -> Result<Self, StoreError> {
        let conn = schema::open_for_write(path)?;
        let sql = |e| StoreError::sqlite(path, e);
        let session_id: Option<i64> = conn
            .query_row("SELECT id FROM sessions WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()
            .map_err(sql)?;
        let Some(session_id) = session_id else {
            let mut names = conn
                .prepare("SELECT name FROM sessions ORDER BY id")
                .map_err(sql)?;
            let available = names
                .query_map([], |r| r.get(0))
                .and_then(|rows| rows.collect::<Result<Vec<String>, _>>())
                .map_err(sql)?;
            return Err(StoreError::NoSession {
                path: path.to_path_buf(),
                name: name.to_string(),
                available,
            });
        };
        let (ordinals, last_seq) = Ordinals::load(&conn, session_id).map_err(sql)?;
        Self::start(conn, path, session_id, ordinals, last_seq)
    }

    fn start(
        conn: Connection,
        path: &Path,
        session_id: i64,
        ordinals: Ordinals,
        last_seq: u64,
    ) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let budget = Arc::new(Budget::new(WriterLimit::default()));
        let owned = path.to_path_buf();
        let for_thread = budget.clone();
        let thread = std::thread::Builder::new()
            .name("ucwa-store-writer".into())
            .spawn(move || write_loop(conn, &owned, session_id, ordinals, rx, &for_thread))
            .map_err(|source| StoreError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(StoreWriter {
            sink: Some(ExchangeSink {
                tx,
                budget,
                dropped: Arc::new(AtomicU64::new(0)),
            }),
            thread: Some(thread),
            session_id,
            last_seq,
            path: path.to_path_buf(),
        })
    }

    /// Change the bound on what may wait for the writer (default [`WriterLimit::default`]).
    pub fn set_limit(&self, limit: WriterLimit) {
        if let Some(sink) = &self.sink {
            sink.budget.lock().limit = limit;
            sink.budget.release(0, 0);
        }
    }

    /// A handle for submitting exchanges.
    pub fn sink(&self) -> ExchangeSink {
        self.sink.clone().expect("sink is present until finish")
    }

    /// The session's row id.
    pub fn session_id(&self) -> i64 {
        self.session_id
    }

    /// The highest `seq` the session held when it was opened (0 for a new one).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Stop accepting, write everything queued, stamp the session's end, join the thread.
    /// Sinks cloned earlier must be dropped first, or this waits for them.
    pub async fn finish(mut self) -> Result<WriterStats, StoreError> {
        self.sink = None;
        let thread = self.thread.take().expect("thread is present until finish");
        let gone = || StoreError::WriterGone {
            path: self.path.clone(),
        };
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .map_err(|_| gone())?
            .map_err(|_| gone())?
    }
}

impl Drop for StoreWriter {
    fn drop(&mut self) {
        // Dropped without finish (an error path): still flush what was queued. While the
        // thread unwinds from a panic, a sink cloned elsewhere (a proxy still running) would
        // make the join wait forever and hide the panic: leave the thread to finish alone.
        self.sink = None;
        if let Some(thread) = self.thread.take()
            && !std::thread::panicking()
        {
            let _ = thread.join();
        }
    }
}

fn start_session(conn: &Connection, path: &Path, s: &NewSession) -> Result<i64, StoreError> {
    let sql = |e| StoreError::sqlite(path, e);
    let existing: Option<i64> = conn
        .query_row("SELECT id FROM sessions WHERE name = ?1", [&s.name], |r| {
            r.get(0)
        })
        .optional()
        .map_err(sql)?;
    if let Some(id) = existing {
        if !s.replace {
            return Err(StoreError::SessionExists {
                path: path.to_path_buf(),
                name: s.name.clone(),
            });
        }
        conn.execute("DELETE FROM sessions WHERE id = ?1", [id])
            .map_err(sql)?;
    }
    conn.execute(
        "INSERT INTO sessions (name, upstream, also_upstreams, started_at, tool_version)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            s.name,
            s.upstream,
            serde_json::to_string(&s.also_upstreams).unwrap_or_else(|_| "[]".into()),
            now_rfc3339(),
            env!("CARGO_PKG_VERSION"),
        ],
    )
    .map_err(sql)?;
    Ok(conn.last_insert_rowid())
}

fn write_loop(
    mut conn: Connection,
    path: &Path,
    session_id: i64,
    mut ordinals: Ordinals,
    mut rx: mpsc::UnboundedReceiver<Queued>,
    budget: &Budget,
) -> Result<WriterStats, StoreError> {
    // A larger page cache keeps the (session, seq) index in memory instead of re-reading
    // it from the file, and a larger WAL between checkpoints copies pages that every batch
    // touches (index and table edges) to the file fewer times. Neither changes what is on
    // disk, and a failure here only costs speed.
    let _ = conn.execute_batch(&format!(
        "PRAGMA cache_size = -{CACHE_KIB}; PRAGMA wal_autocheckpoint = {CHECKPOINT_PAGES};"
    ));
    let mut stats = WriterStats::default();
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut failure = Failure::new(path);
    let mut recount = Recount::default();
    while rx.blocking_recv_many(&mut batch, MAX_BATCH) > 0 {
        if batch.len() < GATHER_BELOW {
            // A trickle (a sequential client): gather a little more before committing,
            // so one commit's pages (16 KiB each) carry several exchanges, not one.
            std::thread::sleep(GATHER_FOR);
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(q) => batch.push(q),
                    Err(_) => break,
                }
            }
        }
        let (count, bytes) = (batch.len(), batch.iter().map(|q| q.weight).sum::<usize>());
        if failure.vanished {
            failure.lose(count);
        } else {
            // In seq order: exchanges of one key that finished out of order within a batch
            // (32 clients polling one resource) then need no shifting, and rows follow
            // the recorded order in the file, as the replay reads them. Unstable: seqs are
            // unique, and a stable sort's scratch copy of the batch (a megabyte or two each
            // time) raised record's peak memory under load from 45–51 to 53–71 MB.
            batch.sort_unstable_by_key(|q| q.exchange.seq);
            match write_batch(&mut conn, session_id, &mut ordinals, &mut recount, &batch) {
                Ok(events) => {
                    stats.exchanges += count as u64;
                    stats.events += events;
                    stats.batches += 1;
                    failure.check_still_there(stats.exchanges);
                }
                // Keep draining so producers never wait forever, but say so at once.
                Err(e) => failure.write_failed(count, e),
            }
        }
        batch.clear();
        budget.release(count, bytes);
    }
    {
        let used = budget.lock();
        stats.peak_queued = used.peak_exchanges as u64;
        stats.peak_queued_bytes = used.peak_bytes as u64;
    }
    failure.check_still_there(stats.exchanges);
    if !failure.vanished {
        recount.finish(&conn, session_id);
        let _ = conn.execute(
            "UPDATE sessions SET ended_at = ?1 WHERE id = ?2",
            params![now_rfc3339(), session_id],
        );
        // Fold the WAL back so the file is complete on its own.
        let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
        schema::put_to_rest(&conn);
    }
    failure.into_result(stats)
}

/// What went wrong while recording: said loudly the first time (the proxy keeps answering,
/// so nothing else tells the user), and returned by [`StoreWriter::finish`].
struct Failure {
    watch: Watch,
    path: PathBuf,
    /// The file at the path is no longer the one written: everything is lost.
    vanished: bool,
    /// The first write error, and how many exchanges were lost.
    write_error: Option<rusqlite::Error>,
    lost: u64,
}

impl Failure {
    fn new(path: &Path) -> Self {
        Failure {
            watch: Watch::new(path),
            path: path.to_path_buf(),
            vanished: false,
            write_error: None,
            lost: 0,
        }
    }

    fn check_still_there(&mut self, written: u64) {
        if !self.vanished && !self.watch.still_there() {
            self.vanished = true;
            tracing::error!(
                "{}: the recording file was deleted or replaced: the {written} exchanges \
                 recorded so far are gone with it and no more are stored (the proxy keeps \
                 answering; record will exit with status 2)",
                self.path.display()
            );
        }
    }

    fn lose(&mut self, n: usize) {
        self.lost += n as u64;
    }

    fn write_failed(&mut self, n: usize, e: rusqlite::Error) {
        self.lose(n);
        if self.write_error.is_none() {
            tracing::error!(
                error = %e,
                "{}: cannot write exchanges to the recording: they are being lost (the proxy \
                 keeps answering; record will exit with status 2)",
                self.path.display()
            );
            self.write_error = Some(e);
        } else {
            tracing::warn!(error = %e, lost = self.lost, "{}: still cannot write", self.path.display());
        }
    }

    fn into_result(self, stats: WriterStats) -> Result<WriterStats, StoreError> {
        let exchanges = stats.exchanges + self.lost;
        if self.vanished {
            return Err(StoreError::Vanished {
                path: self.path,
                exchanges,
            });
        }
        match self.write_error {
            Some(source) => Err(StoreError::WriteFailed {
                path: self.path,
                lost: self.lost,
                exchanges,
                source,
            }),
            None => Ok(stats),
        }
    }
}

fn write_batch(
    conn: &mut Connection,
    session_id: i64,
    ordinals: &mut Ordinals,
    recount: &mut Recount,
    batch: &[Queued],
) -> rusqlite::Result<u64> {
    recount.before_batch(conn, session_id, ordinals);
    let result = write_rows(conn, session_id, ordinals, batch);
    if result.is_err() {
        // Rolled back: the counts in memory ran ahead of the file; take them from it again.
        recount.pending = true;
        recount.before_batch(conn, session_id, ordinals);
    }
    result
}

/// Whether the writer's counts may be off the file's. A rolled-back batch leaves the
/// counts in memory ahead of the file, and they are counted again from it; if even that
/// read fails, the next batches try again first, and are written meanwhile with the counts
/// as they are (an exchange is never given up for a count). Rows written meanwhile may
/// hold wrong ordinals, and are numbered again from the file when the session ends.
#[derive(Debug, Default)]
struct Recount {
    /// The counts in memory are not the file's.
    pending: bool,
    /// Counting again failed (said once, not per batch): the session's ordinals need
    /// numbering again at its end.
    renumber: bool,
}

impl Recount {
    /// Count the session's rows from the file again if a rollback left that to do. If that
    /// fails, the session is marked for numbering again at its end (which leaves alone the
    /// rows whose ordinals are right, so marking it early costs nothing).
    fn before_batch(&mut self, conn: &Connection, session_id: i64, ordinals: &mut Ordinals) {
        if !self.pending {
            return;
        }
        match ordinals.reload(conn, session_id) {
            Ok(_) => self.pending = false,
            Err(e) => {
                if !self.renumber {
                    tracing::warn!(
                        error = %e,
                        "cannot count the session's rows again after a failed batch; their \
                         ordinals are numbered again when the session ends"
                    );
                }
                self.renumber = true;
            }
        }
    }

    /// At the session's end, if needed: every row's ordinal becomes its rank among the
    /// session's rows of its key, in seq order, which is what the counts keep.
    fn finish(&self, conn: &Connection, session_id: i64) {
        if !self.renumber {
            return;
        }
        if let Err(e) = renumber(conn, session_id) {
            tracing::error!(
                error = %e,
                "cannot number the session's exchanges again: the replay may match some \
                 repeated requests out of order"
            );
        }
    }
}

/// Set every row's ordinal in `session_id` to its rank among the rows of its match key, in
/// seq order.
fn renumber(conn: &Connection, session_id: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE exchanges SET ordinal = ranked.n
         FROM (SELECT id, row_number() OVER (PARTITION BY match_key ORDER BY seq) - 1 AS n
               FROM exchanges WHERE session_id = ?1) AS ranked
         WHERE exchanges.id = ranked.id AND exchanges.ordinal IS NOT ranked.n",
        [session_id],
    )
}

fn write_rows(
    conn: &mut Connection,
    session_id: i64,
    ordinals: &mut Ordinals,
    batch: &[Queued],
) -> rusqlite::Result<u64> {
    // IMMEDIATE: a deferred transaction that reads first cannot upgrade to a write while
    // another process writes the same file (SQLITE_BUSY without waiting for busy_timeout).
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut events = 0;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO exchanges (session_id, seq, started_us, duration_us, method, path, query,
                http_version, request_headers, request_body, request_truncated, status,
                response_headers, response_body, response_truncated, content_encoding, error,
                kind, representation, match_key, ordinal, credential, upstream)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                ?18, ?19, ?20, ?21, ?22, ?23)",
        )?;
        let mut insert_event = tx.prepare_cached(
            "INSERT INTO events (exchange_id, session_id, ack, position, sender_rel, sender_href,
                link_rel, link_href, link_title, in_rel, in_href, type, status, reason, embedded)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        )?;
        for Queued {
            exchange: ex,
            request_headers,
            response_headers,
            ..
        } in batch
        {
            let seq = ex.seq as i64;
            let key = ex.match_key.to_string();
            let (ordinal, later) = ordinals.take(&tx, session_id, &key, ex.seq)?;
            if !later.is_empty() {
                // Exchanges finish out of order (a held P-GET finishes after later
                // requests): this one goes before the rows of its key that came after it,
                // and those shift.
                let mut shift = tx.prepare_cached(
                    "UPDATE exchanges SET ordinal = ordinal + 1 WHERE session_id = ?1 AND seq = ?2",
                )?;
                for after in later {
                    shift.execute(params![session_id, after as i64])?;
                }
            }
            insert.execute(params![
                session_id,
                seq,
                ex.started_us,
                ex.duration_us,
                ex.method,
                ex.path,
                ex.query,
                ex.http_version,
                request_headers,
                ex.request_body,
                ex.request_truncated,
                ex.status,
                response_headers,
                ex.response_body,
                ex.response_truncated,
                ex.content_encoding,
                ex.error,
                ex.kind.as_str(),
                ex.representation.as_str(),
                key,
                ordinal,
                ex.credential,
                ex.upstream,
            ])?;
            let exchange_id = tx.last_insert_rowid();
            for ev in &ex.events {
                insert_event.execute(params![
                    exchange_id,
                    session_id,
                    ev.ack,
                    ev.position,
                    ev.sender_rel,
                    ev.sender_href,
                    ev.link_rel,
                    ev.link_href,
                    ev.link_title,
                    ev.in_rel,
                    ev.in_href,
                    ev.event_type,
                    ev.status,
                    ev.reason,
                    ev.embedded,
                ])?;
                events += 1;
            }
        }
    }
    tx.commit()?;
    Ok(events)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::recording::{HeaderList, MatchKey};
    use crate::store::Recording;
    use crate::store::ordinals::{assert_ranks, column};

    fn exchange(seq: u64, key: &str) -> Exchange {
        let mut response_headers = HeaderList::default();
        response_headers.push("content-type", "application/json");
        Exchange {
            seq,
            method: "GET".into(),
            path: "/ucwa/oauth/v1/applications/1/me".into(),
            http_version: "HTTP/1.1".into(),
            status: Some(200),
            response_headers,
            response_body: vec![b'x'; 100],
            kind: "me".into(),
            match_key: MatchKey {
                method: "GET".into(),
                path: key.into(),
                ..MatchKey::default()
            },
            ..Default::default()
        }
    }

    /// A test that fails while its proxy still holds a sink: the writer dropped by the
    /// panic must not wait for that sink, or the test hangs instead of failing.
    #[test]
    fn a_writer_dropped_by_a_panic_does_not_wait_for_sinks_held_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rec.sqlite");
        let (tx, rx) = std::sync::mpsc::channel();
        let failing = std::thread::spawn(move || {
            let writer = StoreWriter::create(&path, &session("s")).unwrap();
            tx.send(writer.sink()).unwrap();
            panic!("a test failing while its proxy still runs");
        });
        let held = rx.recv().unwrap();
        let started = std::time::Instant::now();
        while !failing.is_finished() && started.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            failing.is_finished(),
            "the dropped writer waited for a sink held elsewhere"
        );
        assert!(failing.join().is_err(), "the panic reaches the test");
        drop(held);
    }

    fn session(name: &str) -> NewSession {
        NewSession::new(name, "https://fe1.contoso.com")
    }

    /// (seq, key, ordinal) of every stored exchange, in seq order.
    fn stored(path: &Path, name: &str) -> Vec<(u64, String, u32)> {
        let rec = Recording::open(path).unwrap();
        let s = rec.session(Some(name)).unwrap();
        rec.exchanges(&s)
            .unwrap()
            .into_iter()
            .map(|e| (e.seq, e.match_key.path, e.ordinal))
            .collect()
    }

    /// Wait until the writer has committed everything handed to it.
    async fn written(sink: &ExchangeSink) {
        while sink.queued().0 > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn ordinals_continue_across_an_appended_session_with_identical_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rec.sqlite");
        let writer = StoreWriter::create(&path, &session("s")).unwrap();
        let sink = writer.sink();
        for (seq, key) in [(1, "K"), (2, "J"), (3, "K"), (4, "K")] {
            sink.submit(exchange(seq, key));
        }
        drop(sink);
        writer.finish().await.unwrap();

        let writer = StoreWriter::append(&path, "s").unwrap();
        assert_eq!(writer.last_seq(), 4);
        let sink = writer.sink();
        // 7 is written before 6 arrives (a request that finished late, in a later batch);
        // 9 and 8 come out of order within one batch.
        sink.submit(exchange(5, "K"));
        sink.submit(exchange(7, "K"));
        written(&sink).await;
        for (seq, key) in [(6, "K"), (9, "J"), (8, "J"), (10, "K")] {
            sink.submit(exchange(seq, key));
        }
        drop(sink);
        let stats = writer.finish().await.unwrap();
        assert_eq!(stats.exchanges, 6);

        let got = stored(&path, "s");
        let want: Vec<(u64, String, u32)> = [
            (1, "K", 0),
            (2, "J", 0),
            (3, "K", 1),
            (4, "K", 2),
            (5, "K", 3),
            (6, "K", 4),
            (7, "K", 5),
            (8, "J", 1),
            (9, "J", 2),
            (10, "K", 6),
        ]
        .into_iter()
        .map(|(s, k, o)| (s, k.to_string(), o))
        .collect();
        assert_eq!(got, want);

        let conn = rusqlite::Connection::open(&path).unwrap();
        // Each batch is written in seq order: rows follow the recorded order in the file
        // except where a batch came late (6, after 7's batch).
        let by_id: Vec<i64> = column(&conn, "SELECT seq FROM exchanges ORDER BY id");
        assert_eq!(by_id, [1, 2, 3, 4, 5, 7, 6, 8, 9, 10]);
        let page: u32 = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap();
        assert_eq!(page, schema::PAGE_SIZE, "a new file gets the large pages");

        let err = StoreWriter::append(&path, "nope").unwrap_err();
        assert!(matches!(err, StoreError::NoSession { .. }), "{err}");
    }

    /// A new recording file at `path` with session "s": the connection and the session's id.
    fn new_session(path: &Path) -> (Connection, i64) {
        let conn = schema::open_for_write(path).unwrap();
        let session_id = start_session(&conn, path, &session("s")).unwrap();
        (conn, session_id)
    }

    /// A writer of session "s" in a new file at `path`, whose counts `ordinals` makes from
    /// the writer's connection (and may set that connection up first).
    fn writer_with(path: &Path, ordinals: impl FnOnce(&Connection) -> Ordinals) -> StoreWriter {
        let (conn, session_id) = new_session(path);
        let ordinals = ordinals(&conn);
        StoreWriter::start(conn, path, session_id, ordinals, 0).unwrap()
    }

    /// Hand over each batch of (seq, key) and wait until it is written, then finish: one
    /// batch holds a duplicate seq, which must be reported.
    async fn write_in_batches(writer: StoreWriter, batches: &[&[(u64, &str)]]) {
        let sink = writer.sink();
        for batch in batches {
            for &(seq, key) in *batch {
                sink.submit(exchange(seq, key));
            }
            written(&sink).await;
        }
        drop(sink);
        assert!(writer.finish().await.is_err(), "the duplicate is reported");
    }

    /// Past the keys held in memory and the window of seqs, through the writer's batches:
    /// counts come back from the temporary table, late rows are placed by the file, and a
    /// failed batch counts again from the file.
    #[tokio::test]
    async fn ordinals_stay_ranks_when_keys_spill_and_rows_come_late() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rec.sqlite");
        let writer = writer_with(&path, |conn| Ordinals::with_limits(conn, 2, 2).unwrap());
        let batches: [&[(u64, &str)]; 5] = [
            &[(2, "K"), (3, "J"), (4, "K"), (5, "A"), (6, "K")],
            &[(7, "B"), (8, "K"), (9, "C")],
            // 1 started before everything of K and finishes after it.
            &[(1, "K"), (10, "J")],
            // A duplicate seq fails this batch: counted again from the file (4 keys).
            &[(11, "K"), (3, "K")],
            &[(12, "K"), (13, "J"), (11, "A")],
        ];
        write_in_batches(writer, &batches).await;
        let got = stored(&path, "s");
        let seqs: Vec<u64> = got.iter().map(|r| r.0).collect();
        assert_eq!(seqs, (1..=13).collect::<Vec<_>>());
        assert_eq!(assert_ranks(&got)["K"], 6);
    }

    #[tokio::test]
    async fn a_failed_batch_does_not_advance_the_ordinals() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rec.sqlite");
        let writer = StoreWriter::create(&path, &session("s")).unwrap();
        let sink = writer.sink();
        sink.submit(exchange(1, "K"));
        written(&sink).await;
        // A duplicate seq fails its whole batch (and is reported at finish).
        sink.submit(exchange(2, "K"));
        sink.submit(exchange(1, "K"));
        written(&sink).await;
        sink.submit(exchange(3, "K"));
        drop(sink);
        assert!(writer.finish().await.is_err());
        let got: Vec<(u64, u32)> = stored(&path, "s")
            .into_iter()
            .map(|(s, _, o)| (s, o))
            .collect();
        assert_eq!(got, [(1, 0), (3, 1)]);
    }

    /// A temporary view named like the spill table makes counting again from the file fail
    /// (`DROP TABLE` refuses a view) without keeping rows from being written.
    const BLOCK_RECOUNT: &str = "CREATE TEMP VIEW ucwa_ordinals AS SELECT 1;";

    #[tokio::test]
    async fn rows_written_while_counting_again_fails_are_numbered_again_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rec.sqlite");
        let writer = writer_with(&path, |conn| {
            // After the counts are made: setting `temp_store` (as `new` does) drops the
            // connection's temporary schema, the view with it.
            let ordinals = Ordinals::new(conn).unwrap();
            conn.execute_batch(BLOCK_RECOUNT).unwrap();
            ordinals
        });
        let batches: [&[(u64, &str)]; 4] = [
            &[(1, "K"), (2, "J")],
            // A duplicate seq fails this batch, and the counts cannot be taken again.
            &[(3, "K"), (4, "K"), (2, "J")],
            &[(5, "K"), (6, "J")],
            &[(7, "K")],
        ];
        write_in_batches(writer, &batches).await;
        let got: Vec<(u64, u32)> = stored(&path, "s")
            .into_iter()
            .map(|(s, _, o)| (s, o))
            .collect();
        assert_eq!(got, [(1, 0), (2, 0), (5, 1), (6, 1), (7, 2)]);
    }

    /// A bare row of `key`, written past the writer.
    fn insert_row(conn: &Connection, session_id: i64, seq: i64, key: &str, ordinal: u32) {
        conn.execute(
            "INSERT INTO exchanges (session_id, seq, started_us, duration_us, method, path,
                http_version, request_headers, request_body, response_headers, response_body,
                kind, representation, match_key, ordinal)
             VALUES (?1, ?2, 0, 0, 'GET', '/', 'HTTP/1.1', '[]', x'', '[]', x'', 'me', 'json',
                ?3, ?4)",
            params![session_id, seq, key, ordinal],
        )
        .unwrap();
    }

    #[test]
    fn counting_again_is_tried_before_each_batch_until_it_works() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rec.sqlite");
        let (conn, session_id) = new_session(&path);
        let mut ordinals = Ordinals::new(&conn).unwrap();
        for seq in 1..=2 {
            let (ordinal, _) = ordinals.take(&conn, session_id, "K", seq).unwrap();
            insert_row(&conn, session_id, seq as i64, "K", ordinal);
        }
        // A rolled-back row of K ran the count ahead.
        ordinals.take(&conn, session_id, "K", 3).unwrap();
        let mut recount = Recount {
            pending: true,
            ..Recount::default()
        };
        conn.execute_batch(BLOCK_RECOUNT).unwrap();
        recount.before_batch(&conn, session_id, &mut ordinals);
        assert!(recount.pending && recount.renumber);
        conn.execute_batch("DROP VIEW temp.ucwa_ordinals;").unwrap();
        recount.before_batch(&conn, session_id, &mut ordinals);
        assert!(!recount.pending, "counted again once it could be");
        assert_eq!(ordinals.take(&conn, session_id, "K", 3).unwrap().0, 2);
    }

    #[test]
    fn renumbering_gives_each_row_its_rank_among_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rec.sqlite");
        let (conn, session_id) = new_session(&path);
        let other = start_session(&conn, &path, &session("t")).unwrap();
        let rows = [
            (session_id, 1, "K", 0),
            (session_id, 2, "J", 5),
            (session_id, 3, "K", 3),
            (other, 1, "K", 7),
            (session_id, 4, "K", 1),
        ];
        for (sid, seq, key, ordinal) in rows {
            insert_row(&conn, sid, seq, key, ordinal);
        }
        assert_eq!(
            renumber(&conn, session_id).unwrap(),
            3,
            "rows already right stay"
        );
        let got: Vec<(i64, i64, u32)> = conn
            .prepare("SELECT session_id, seq, ordinal FROM exchanges ORDER BY session_id, seq")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            got,
            [
                (session_id, 1, 0),
                (session_id, 2, 0),
                (session_id, 3, 1),
                (session_id, 4, 2),
                (other, 1, 7)
            ]
        );
    }

    #[tokio::test]
    async fn producers_wait_at_the_bound_and_nothing_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rec.sqlite");
        let writer = StoreWriter::create(&path, &session("s")).unwrap();
        writer.set_limit(WriterLimit {
            exchanges: 3,
            bytes: 1 << 30,
        });
        let sink = writer.sink();
        sink.room().await;

        // Another connection holds the write lock: the writer cannot commit.
        let blocker = rusqlite::Connection::open(&path).unwrap();
        blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
        for seq in 1..=3 {
            sink.submit(exchange(seq, "K"));
        }
        // Handing over never blocks, even past the bound (the exchange was answered).
        let late = sink.admit(1000);
        assert_eq!(sink.queued().0, 4);
        let waiting = tokio::time::timeout(Duration::from_millis(300), sink.room()).await;
        assert!(
            waiting.is_err(),
            "room() returned while the writer was full"
        );
        let blocking = {
            let sink = sink.clone();
            tokio::task::spawn_blocking(move || sink.room_blocking())
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            !blocking.is_finished(),
            "room_blocking() returned while full"
        );

        // The lock goes: the writer drains and both kinds of waiter go on.
        blocker.execute_batch("ROLLBACK").unwrap();
        late.submit(exchange(4, "K"));
        tokio::time::timeout(Duration::from_secs(10), sink.room())
            .await
            .expect("room once the writer caught up");
        tokio::time::timeout(Duration::from_secs(10), blocking)
            .await
            .expect("room_blocking once the writer caught up")
            .unwrap();

        // A producer that waits for room keeps the queue at the bound.
        for seq in 5..=200 {
            sink.send(exchange(seq, "K")).await;
        }
        // An admission dropped unused gives its room back.
        drop(sink.admit(10));
        drop(sink);
        let stats = writer.finish().await.unwrap();
        assert_eq!(stats.exchanges, 200);
        assert!(stats.peak_queued <= 4, "{stats:?}");
        let got = stored(&path, "s");
        assert_eq!(got.len(), 200);
        assert!(
            got.iter()
                .enumerate()
                .all(|(i, (seq, _, ord))| *seq == i as u64 + 1 && *ord == i as u32)
        );
    }
}
