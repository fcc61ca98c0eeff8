//! The one writer of a recording: a dedicated thread that owns the SQLite connection and
//! drains a bounded channel in batched transactions. The proxy hands finished exchanges to an
//! [`ExchangeSink`] and never waits for the disk.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::mpsc;

use super::watch::Watch;
use super::{StoreError, now_rfc3339, schema};
use crate::recording::Exchange;

/// How many exchanges may wait for the writer before senders queue in spawned tasks.
const CHANNEL_CAPACITY: usize = 1024;
/// Most exchanges written in one transaction.
const MAX_BATCH: usize = 256;

/// What a new session starts with.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub name: String,
    pub upstream: String,
    pub also_upstreams: Vec<String>,
    /// Replace an existing session of the same name instead of refusing.
    pub replace: bool,
}

/// Counters reported when the writer finishes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriterStats {
    pub exchanges: u64,
    pub events: u64,
    pub batches: u64,
}

/// Where finished exchanges go. Cheap to clone; [`ExchangeSink::submit`] never blocks.
#[derive(Debug, Clone)]
pub struct ExchangeSink {
    tx: mpsc::Sender<Exchange>,
    dropped: Arc<AtomicU64>,
}

impl ExchangeSink {
    /// Queue an exchange for writing. When the channel is full the send moves to a task
    /// (needs a tokio runtime), so the caller's client is never held up by the disk.
    pub fn submit(&self, exchange: Exchange) {
        match self.tx.try_send(exchange) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(exchange)) => {
                let tx = self.tx.clone();
                let dropped = self.dropped.clone();
                tokio::spawn(async move {
                    if tx.send(exchange).await.is_err() {
                        dropped.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::error!("recording writer is gone; an exchange was not stored");
            }
        }
    }
}

/// Owns the writer thread of one session.
#[derive(Debug)]
pub struct StoreWriter {
    sink: Option<ExchangeSink>,
    thread: Option<std::thread::JoinHandle<Result<WriterStats, StoreError>>>,
    session_id: i64,
    path: PathBuf,
}

impl StoreWriter {
    /// Open (or create) `path`, start session `session`, and start the writer thread.
    pub fn create(path: &Path, session: &NewSession) -> Result<Self, StoreError> {
        super::check_session_name(&session.name)?;
        let conn = schema::open_for_write(path)?;
        let session_id = start_session(&conn, path, session)?;
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let owned = path.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("ucwa-store-writer".into())
            .spawn(move || write_loop(conn, &owned, session_id, rx))
            .map_err(|source| StoreError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(StoreWriter {
            sink: Some(ExchangeSink {
                tx,
                dropped: Arc::new(AtomicU64::new(0)),
            }),
            thread: Some(thread),
            session_id,
            path: path.to_path_buf(),
        })
    }

    /// A handle for submitting exchanges.
    pub fn sink(&self) -> ExchangeSink {
        self.sink.clone().expect("sink is present until finish")
    }

    /// The session's row id.
    pub fn session_id(&self) -> i64 {
        self.session_id
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
        // Dropped without finish (an error path): still flush what was queued.
        self.sink = None;
        if let Some(thread) = self.thread.take() {
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
    mut rx: mpsc::Receiver<Exchange>,
) -> Result<WriterStats, StoreError> {
    let mut stats = WriterStats::default();
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut failure = Failure::new(path);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(ex) => batch.push(ex),
                Err(_) => break,
            }
        }
        if failure.vanished {
            failure.lose(batch.len());
        } else {
            match write_batch(&mut conn, session_id, &batch) {
                Ok(events) => {
                    stats.exchanges += batch.len() as u64;
                    stats.events += events;
                    stats.batches += 1;
                    failure.check_still_there(stats.exchanges);
                }
                // Keep draining so senders never block, but say so at once.
                Err(e) => failure.write_failed(batch.len(), e),
            }
        }
        batch.clear();
    }
    failure.check_still_there(stats.exchanges);
    if !failure.vanished {
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
    batch: &[Exchange],
) -> rusqlite::Result<u64> {
    // IMMEDIATE: a deferred transaction that reads first cannot upgrade to a write while
    // another process writes the same file (SQLITE_BUSY without waiting for busy_timeout).
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut events = 0;
    {
        let mut count_earlier = tx.prepare_cached(
            "SELECT count(*) FROM exchanges WHERE session_id = ?1 AND match_key = ?2 AND seq < ?3",
        )?;
        // Exchanges finish out of order (a held P-GET finishes after later requests), so an
        // ordinal is the count of earlier `seq`s with the same key, and later ones shift.
        let mut shift_later = tx.prepare_cached(
            "UPDATE exchanges SET ordinal = ordinal + 1
             WHERE session_id = ?1 AND match_key = ?2 AND seq > ?3",
        )?;
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
        for ex in batch {
            let seq = ex.seq as i64;
            let key = ex.match_key.to_string();
            let ordinal: i64 =
                count_earlier.query_row(params![session_id, key, seq], |r| r.get(0))?;
            shift_later.execute(params![session_id, key, seq])?;
            insert.execute(params![
                session_id,
                seq,
                ex.started_us,
                ex.duration_us,
                ex.method,
                ex.path,
                ex.query,
                ex.http_version,
                ex.request_headers.to_json(),
                ex.request_body,
                ex.request_truncated,
                ex.status,
                ex.response_headers.to_json(),
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
