//! Opening a recording file safely: recognise ours, refuse foreign, corrupt or newer files
//! without touching them, create or migrate ours (`PRAGMA user_version`, by hand: the
//! migration crates pin another rusqlite: docs/ARCHITECTURE.md, "Traps").

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::StoreError;

/// `PRAGMA application_id` of a ucwa-replay recording: "UCWA".
pub const APPLICATION_ID: i32 = 0x5543_5741;

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i32 = 1;

/// Page size of a new recording file.
pub const PAGE_SIZE: u32 = 16384;

/// Schema migrations: `MIGRATIONS[n]` takes version `n` to `n + 1`.
const MIGRATIONS: &[&str] = &[V1];

const V1: &str = r#"
CREATE TABLE sessions (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    upstream       TEXT NOT NULL,
    also_upstreams TEXT NOT NULL DEFAULT '[]',
    started_at     TEXT NOT NULL,
    ended_at       TEXT,
    tool_version   TEXT NOT NULL
);
CREATE TABLE exchanges (
    id                 INTEGER PRIMARY KEY,
    session_id         INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    seq                INTEGER NOT NULL,
    started_us         INTEGER NOT NULL,
    duration_us        INTEGER NOT NULL,
    method             TEXT NOT NULL,
    path               TEXT NOT NULL,
    query              TEXT,
    http_version       TEXT NOT NULL,
    request_headers    TEXT NOT NULL,
    request_body       BLOB NOT NULL,
    request_truncated  INTEGER NOT NULL DEFAULT 0,
    status             INTEGER,
    response_headers   TEXT NOT NULL,
    response_body      BLOB NOT NULL,
    response_truncated INTEGER NOT NULL DEFAULT 0,
    content_encoding   TEXT,
    error              TEXT,
    kind               TEXT NOT NULL,
    representation     TEXT NOT NULL,
    match_key          TEXT NOT NULL,
    ordinal            INTEGER NOT NULL,
    credential         TEXT,
    upstream           TEXT,
    UNIQUE (session_id, seq)
);
CREATE INDEX exchanges_key ON exchanges (session_id, match_key, seq);
CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    exchange_id INTEGER NOT NULL REFERENCES exchanges(id) ON DELETE CASCADE,
    session_id  INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    ack         INTEGER,
    position    INTEGER NOT NULL,
    sender_rel  TEXT NOT NULL,
    sender_href TEXT NOT NULL,
    link_rel    TEXT NOT NULL,
    link_href   TEXT NOT NULL,
    link_title  TEXT,
    in_rel      TEXT,
    in_href     TEXT,
    type        TEXT NOT NULL,
    status      TEXT,
    reason      TEXT,
    embedded    TEXT
);
CREATE INDEX events_session ON events (session_id, exchange_id, position);
CREATE INDEX events_rel ON events (link_rel, type);
"#;

/// Open (creating it if missing) a recording for writing.
pub fn open_for_write(path: &Path) -> Result<Connection, StoreError> {
    if path.exists() {
        check_header(path)?;
    } else if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    }
    let mut conn = Connection::open(path).map_err(|e| StoreError::sqlite(path, e))?;
    // Pages of 16 KiB instead of 4: an exchange (a few KB) no longer fills a page alone, so
    // the writer moves far fewer pages through the WAL (2–3× the rows/s). Takes effect
    // only on a new, empty file; an existing one keeps its page size.
    conn.execute_batch(&format!("PRAGMA page_size = {PAGE_SIZE};"))
        .map_err(|e| StoreError::sqlite(path, e))?;
    configure(&conn, path)?;
    identify(&conn, path)?;
    // Initialise or migrate under a write lock, re-checking inside: another `record`
    // process may be doing the same to the same file.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| StoreError::sqlite(path, e))?;
    let version = identify(&tx, path)?;
    if version < SCHEMA_VERSION {
        migrate(&tx, path, version)?;
    }
    // A current file is not written here (a damaged one must stay as it was).
    tx.commit().map_err(|e| StoreError::sqlite(path, e))?;
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
        .map_err(|e| StoreError::sqlite(path, e))?;
    Ok(conn)
}

/// Take a file at `version` (0: fresh) to [`SCHEMA_VERSION`] inside the caller's transaction.
fn migrate(tx: &Connection, path: &Path, version: i32) -> Result<(), StoreError> {
    for (from, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.execute_batch(sql)
            .map_err(|e| StoreError::sqlite(path, e))?;
        tracing::debug!(path = %path.display(), from, to = from + 1, "migrated recording");
    }
    tx.execute_batch(&format!(
        "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {SCHEMA_VERSION};"
    ))
    .map_err(|e| StoreError::sqlite(path, e))?;
    Ok(())
}

/// Open an existing recording for reading only; older schemas are migrated first.
pub fn open_for_read(path: &Path) -> Result<Connection, StoreError> {
    if !path.exists() {
        return Err(StoreError::Missing {
            path: path.to_path_buf(),
        });
    }
    check_header(path)?;
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| StoreError::sqlite(path, e))?;
    configure(&conn, path)?;
    let version = identify(&conn, path)?;
    if version == 0 {
        return Err(StoreError::NotARecording {
            path: path.to_path_buf(),
            detail: "an empty SQLite database".into(),
        });
    }
    if version < SCHEMA_VERSION {
        drop(conn);
        drop(open_for_write(path)?);
        return open_for_read(path);
    }
    Ok(conn)
}

fn configure(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(|e| StoreError::sqlite(path, e))?;
    conn.execute_batch("PRAGMA foreign_keys = ON;")
        .map_err(|e| StoreError::sqlite(path, e))
}

/// A non-empty file that does not start with the SQLite magic is refused before SQLite
/// sees it, so nothing can write to it.
fn check_header(path: &Path) -> Result<(), StoreError> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut magic = [0u8; 16];
    let n = file.read(&mut magic).map_err(|source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if n == 0 {
        return Ok(());
    }
    if n < 16 || &magic != b"SQLite format 3\0" {
        return Err(StoreError::NotSqlite {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

/// The schema version of a file that is ours (0 for a fresh, empty database); an error for
/// anything else.
fn identify(conn: &Connection, path: &Path) -> Result<i32, StoreError> {
    let app_id: i32 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(|e| StoreError::sqlite(path, e))?;
    let version: i32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| StoreError::sqlite(path, e))?;
    if app_id == 0 {
        let objects: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(|e| StoreError::sqlite(path, e))?;
        if objects == 0 {
            return Ok(0);
        }
        return Err(StoreError::NotARecording {
            path: path.to_path_buf(),
            detail: format!(
                "a SQLite database with {objects} tables or indexes of another program"
            ),
        });
    }
    if app_id != APPLICATION_ID {
        return Err(StoreError::NotARecording {
            path: path.to_path_buf(),
            detail: format!("a SQLite database of another program (application id {app_id:#x})"),
        });
    }
    if version > SCHEMA_VERSION {
        return Err(StoreError::Newer {
            path: path.to_path_buf(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(version)
}
