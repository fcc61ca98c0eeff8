//! Reading one exchange's headers and bodies by row id, for a replay answering requests.
//!
//! Each read in its own transaction costs SQLite a lock, an unlock, a look for a hot journal
//! and a read of the file's change counter: five system calls for a row that is usually in
//! the page cache already, a tenth of a replayed request's time. So a connection keeps its
//! read transaction (its snapshot and its shared lock) across reads: one in use renews it
//! once it is [`HOLD`] old, and one left idle for [`HOLD`] is released by a small thread. A
//! writer appending to the same file (spy mode, or a `record` run next to the replay) waits
//! at most about twice [`HOLD`] for the lock, a `-wal` is checkpointed past the snapshot
//! soon after, and a replay that stops receiving requests holds nothing.
//!
//! The rows a replay reads were all committed before it loaded its index, so any snapshot
//! taken since holds them.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension};

use super::parts::{RequestParts, ResponseParts, bad};
use super::{StoreError, schema};
use crate::recording::HeaderList;
use crate::recording::headers::always_stripped;

/// How long a connection keeps one read transaction.
pub(crate) const HOLD: Duration = Duration::from_millis(10);

/// Reads the headers and bodies of single exchanges by row id, from any thread: a small pool
/// of read-only connections, each with its prepared statements cached. A connection is
/// opened when every idle one is in use (so there are about as many as requests answered at
/// once) and kept for the next request.
#[derive(Debug)]
pub struct RowReader {
    pool: Arc<Pool>,
}

#[derive(Debug)]
struct Pool {
    path: PathBuf,
    state: Mutex<State>,
    /// Wakes the releasing thread: a transaction was begun, or the reader is dropped.
    wake: Condvar,
}

#[derive(Debug, Default)]
struct State {
    idle: Vec<Held>,
    /// When a connection was last put back: the releasing thread looks again [`HOLD`] after
    /// it (a connection out when it last looked may have come back holding a transaction).
    newest: Option<Instant>,
    closed: bool,
}

/// A connection, when its current read transaction began (None: none is open), and when it
/// was last put back.
#[derive(Debug)]
struct Held {
    conn: Connection,
    since: Option<Instant>,
    used: Instant,
}

impl Held {
    /// End the read transaction, if one is open. A failure leaves the connection in
    /// autocommit mode all the same (a read transaction has nothing to lose).
    fn release(&mut self) {
        if self.since.take().is_some() && !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("COMMIT");
        }
    }

    /// Begin a read transaction unless one younger than [`HOLD`] is open; true when one was
    /// begun. `BEGIN` takes no lock: the first read does, and keeps it.
    fn renew(&mut self) -> bool {
        if self.since.is_some_and(|t| t.elapsed() < HOLD) && !self.conn.is_autocommit() {
            return false;
        }
        self.release();
        if self.conn.execute_batch("BEGIN").is_ok() {
            self.since = Some(Instant::now());
            return true;
        }
        false
    }
}

impl Pool {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The releasing thread's loop: end the transactions of connections left idle for
    /// [`HOLD`] (those in use renew theirs themselves); sleep while none is open.
    fn release_idle(&self) {
        let mut state = self.state();
        loop {
            if state.closed {
                return;
            }
            let now = Instant::now();
            let is_due = |h: &Held| h.since.is_some() && now.duration_since(h.used) >= HOLD;
            if state.idle.iter().any(is_due) {
                // Taken out and committed with the lock let go: a read never waits behind a
                // COMMIT (nor behind this thread, should it lose its CPU meanwhile).
                let (mut due, keep): (Vec<Held>, Vec<Held>) = std::mem::take(&mut state.idle)
                    .into_iter()
                    .partition(is_due);
                state.idle = keep;
                drop(state);
                due.iter_mut().for_each(Held::release);
                state = self.state();
                // Back at the end `with` takes from last: these are the least used.
                due.append(&mut state.idle);
                state.idle = due;
                continue;
            }
            let due = |t: Instant| HOLD.saturating_sub(now.duration_since(t));
            let wait = state
                .idle
                .iter()
                .filter(|h| h.since.is_some())
                .map(|h| h.used)
                .chain(state.newest)
                .map(due)
                .filter(|d| !d.is_zero())
                .min()
                // Nothing open: sleep until a transaction begins (or the reader is dropped).
                .unwrap_or(Duration::from_secs(3600));
            state = self
                .wake
                .wait_timeout(state, wait)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

impl RowReader {
    /// A reader of the recording at `path`; refuses what [`super::Recording::open`] refuses.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let first = schema::open_for_read(path)?;
        let pool = Arc::new(Pool {
            path: path.to_path_buf(),
            state: Mutex::new(State {
                idle: vec![Held {
                    conn: first,
                    since: None,
                    used: Instant::now(),
                }],
                newest: None,
                closed: false,
            }),
            wake: Condvar::new(),
        });
        let releaser = Arc::clone(&pool);
        std::thread::Builder::new()
            .name("ucwa-replay-rows".into())
            .spawn(move || releaser.release_idle())
            .map_err(|source| StoreError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(RowReader { pool })
    }

    /// Run `f` on an idle connection (opened if none is) inside its held read transaction,
    /// then put it back.
    fn with<T>(
        &self,
        id: i64,
        f: impl FnOnce(&Connection) -> rusqlite::Result<Option<T>>,
    ) -> Result<T, StoreError> {
        let taken = self.pool.state().idle.pop();
        let mut held = match taken {
            Some(held) => held,
            None => Held {
                conn: schema::open_for_read(&self.pool.path)?,
                since: None,
                used: Instant::now(),
            },
        };
        let begun = held.renew();
        let result = f(&held.conn);
        if result.is_err() || held.since.is_some_and(|t| t.elapsed() >= HOLD) {
            // Past its time (the releaser may have looked while it was out), or failed:
            // the next read starts afresh.
            held.release();
        }
        held.used = Instant::now();
        {
            let mut state = self.pool.state();
            if held.since.is_some() {
                state.newest = Some(held.used);
            }
            state.idle.push(held);
        }
        if begun {
            // Once per connection per HOLD: a notification is a system call.
            self.pool.wake.notify_one();
        }
        let path = &self.pool.path;
        match result {
            Ok(Some(value)) => Ok(value),
            Ok(None) => Err(StoreError::Corrupt {
                path: path.clone(),
                detail: format!(
                    "exchange row {id} is gone (was the session replaced while it was replayed?)"
                ),
            }),
            Err(rusqlite::Error::FromSqlConversionFailure(_, _, inner)) => {
                Err(StoreError::Corrupt {
                    path: path.clone(),
                    detail: inner.to_string(),
                })
            }
            Err(e) => Err(StoreError::sqlite(path, e)),
        }
    }

    /// The request headers and body of the exchange at row `id`.
    pub fn request(&self, id: i64) -> Result<RequestParts, StoreError> {
        self.with(id, |conn| {
            conn.prepare_cached(
                "SELECT request_headers, request_body FROM exchanges WHERE id = ?1",
            )?
            .query_row([id], |r| {
                let headers: String = r.get(0)?;
                Ok(RequestParts {
                    headers: HeaderList::from_json(&headers)
                        .ok_or_else(|| bad(0, "request headers"))?,
                    body: r.get(1)?,
                })
            })
            .optional()
        })
    }

    /// The response headers, body, original encoding and error of the exchange at row `id`.
    pub fn response(&self, id: i64) -> Result<ResponseParts, StoreError> {
        self.with(id, |conn| {
            conn.prepare_cached(
                "SELECT response_headers, response_body, content_encoding, error
                 FROM exchanges WHERE id = ?1",
            )?
            .query_row([id], response_parts)
            .optional()
        })
    }

    /// The responses of the rows from `first` to `last` (ids, both included) that `wanted`
    /// accepts, in id order: one walk along the table instead of a search from its root per
    /// row, for a replay reading ahead. A row whose parts cannot be read is left out (read
    /// alone, it reports why).
    pub fn responses(
        &self,
        first: i64,
        last: i64,
        wanted: impl Fn(i64) -> bool,
    ) -> Result<Vec<(i64, ResponseParts)>, StoreError> {
        self.with(first, |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, response_headers, response_body, content_encoding, error
                 FROM exchanges WHERE id BETWEEN ?1 AND ?2",
            )?;
            let mut rows = stmt.query([first, last])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                let id: i64 = row.get(0)?;
                if !wanted(id) {
                    continue;
                }
                let parts = (|| {
                    let headers =
                        (row.get_ref(1)?.as_str()).map_err(|_| bad(1, "response headers"))?;
                    Ok::<_, rusqlite::Error>(ResponseParts {
                        headers: HeaderList::http_from_json(headers, always_stripped)
                            .ok_or_else(|| bad(1, "response headers"))?,
                        body: row.get(2)?,
                        content_encoding: row.get(3)?,
                        error: row.get(4)?,
                    })
                })();
                if let Ok(parts) = parts {
                    out.push((id, parts));
                }
            }
            Ok(Some(out))
        })
    }
}

/// A response's parts from a row of `SELECT response_headers, response_body,
/// content_encoding, error`.
fn response_parts(r: &rusqlite::Row<'_>) -> rusqlite::Result<ResponseParts> {
    let headers = (r.get_ref(0)?.as_str()).map_err(|_| bad(0, "response headers"))?;
    Ok(ResponseParts {
        headers: HeaderList::http_from_json(headers, always_stripped)
            .ok_or_else(|| bad(0, "response headers"))?,
        body: r.get(1)?,
        content_encoding: r.get(2)?,
        error: r.get(3)?,
    })
}

impl Drop for RowReader {
    /// Stop the releasing thread; the connections close with the pool.
    fn drop(&mut self) {
        self.pool.state().closed = true;
        self.pool.wake.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::recording::{Exchange, KeyOptions, KeyRequest};
    use crate::store::{NewSession, Recording, StoreWriter};

    /// A recording of three exchanges at rest (rollback journal: a held read lock there
    /// blocks a writer's commit), and their row ids.
    async fn recording(dir: &Path) -> (PathBuf, Vec<i64>) {
        let path = dir.join("rec.sqlite");
        let writer =
            StoreWriter::create(&path, &NewSession::new("s", "https://fe1.contoso.com")).unwrap();
        let sink = writer.sink();
        for seq in 1..=3 {
            sink.submit(Exchange {
                seq,
                method: "GET".into(),
                path: format!("/ucwa/{seq}"),
                status: Some(200),
                response_body: format!("body {seq}").into_bytes(),
                match_key: KeyRequest::new("GET", &format!("/ucwa/{seq}"))
                    .key(&KeyOptions::default()),
                ..Exchange::default()
            });
        }
        drop(sink);
        writer.finish().await.unwrap();
        let rec = Recording::open(&path).unwrap();
        let session = rec.session(None).unwrap();
        let mut ids = Vec::new();
        rec.for_each_exchange_head(&session, None, |h| ids.push(h.id))
            .unwrap();
        (path, ids)
    }

    /// A write to the file that must take its exclusive lock to commit.
    fn write(path: &Path, busy: Duration) -> rusqlite::Result<()> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(busy)?;
        conn.execute_batch("CREATE TABLE scratch (x); DROP TABLE scratch;")
    }

    #[tokio::test]
    async fn a_range_read_leaves_out_what_it_cannot_read_and_a_row_read_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let (path, ids) = recording(dir.path()).await;
        Connection::open(&path)
            .unwrap()
            .execute(
                "UPDATE exchanges SET response_headers = 'not json' WHERE id = ?1",
                [ids[1]],
            )
            .unwrap();
        let reader = RowReader::open(&path).unwrap();
        let read = reader.responses(ids[0], ids[2], |_| true).unwrap();
        let got: Vec<_> = read.iter().map(|(id, p)| (*id, &p.body[..])).collect();
        assert_eq!(got, [(ids[0], &b"body 1"[..]), (ids[2], &b"body 3"[..])]);
        let wanted = reader.responses(ids[0], ids[2], |id| id == ids[2]).unwrap();
        assert_eq!(wanted.len(), 1);
        assert_eq!(wanted[0].0, ids[2]);
        let err = reader.response(ids[1]).unwrap_err().to_string();
        assert!(err.contains("unreadable response headers"), "{err}");
    }

    #[tokio::test]
    async fn an_idle_reader_holds_no_lock_soon_after_its_last_read() {
        let dir = tempfile::tempdir().unwrap();
        let (path, ids) = recording(dir.path()).await;
        let reader = RowReader::open(&path).unwrap();
        assert_eq!(reader.response(ids[1]).unwrap().body, b"body 2");
        // Released by the thread, with no other read to trigger it: a writer that will not
        // wait gets in, HOLD after the read (polled, so that a loaded machine that runs the
        // thread late does not fail the test; without the thread it never gets in).
        let end = Instant::now() + Duration::from_secs(10);
        let mut written = write(&path, Duration::ZERO);
        while written.is_err() && Instant::now() < end {
            std::thread::sleep(HOLD);
            written = write(&path, Duration::ZERO);
        }
        written.expect("the idle reader released its lock");
        // And reads go on as before.
        assert_eq!(reader.response(ids[2]).unwrap().body, b"body 3");
        assert_eq!(reader.request(ids[0]).unwrap().body, b"");
    }

    #[tokio::test]
    async fn a_writer_gets_in_while_reads_never_stop() {
        let dir = tempfile::tempdir().unwrap();
        let (path, ids) = recording(dir.path()).await;
        let reader = Arc::new(RowReader::open(&path).unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (reader, stop, ids) = (Arc::clone(&reader), Arc::clone(&stop), ids.clone());
                std::thread::spawn(move || {
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let id = ids[(n % 3) as usize];
                        // A read may wait for the writer (busy timeout); it must not fail.
                        reader.response(id).expect("a read during the writes");
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(50));
        // Each commit waits for the held snapshots to end (each is held for at most HOLD).
        for _ in 0..5 {
            write(&path, Duration::from_secs(5)).expect("a writer next to busy readers");
        }
        stop.store(true, Ordering::Relaxed);
        let reads: u64 = readers.into_iter().map(|t| t.join().unwrap()).sum();
        assert!(reads > 10, "{reads} reads");
    }

    #[tokio::test]
    async fn dropping_the_reader_stops_its_thread() {
        let dir = tempfile::tempdir().unwrap();
        let (path, ids) = recording(dir.path()).await;
        let reader = RowReader::open(&path).unwrap();
        reader.response(ids[0]).unwrap();
        // The thread holds the pool (and its connections) until it returns.
        let pool = Arc::downgrade(&reader.pool);
        drop(reader);
        let end = Instant::now() + Duration::from_secs(5);
        while pool.upgrade().is_some() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(
            pool.upgrade().is_none(),
            "the releasing thread outlived its reader"
        );
        write(&path, Duration::ZERO).expect("no lock left behind");
    }
}
