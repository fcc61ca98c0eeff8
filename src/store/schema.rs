//! Opening a recording file safely: recognise ours, refuse foreign, corrupt or newer files
//! without touching them, create or migrate ours (`PRAGMA user_version`, by hand: the
//! migration crates pin another rusqlite: docs/ARCHITECTURE.md, "Traps").

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::StoreError;

/// `PRAGMA application_id` of a ucwa-replay recording: "UCWA".
pub const APPLICATION_ID: i32 = 0x5543_5741;

/// The schema version this build writes.
pub const SCHEMA_VERSION: i32 = 2;

/// The oldest schema version this build reads as it is, without migrating the file first.
/// Version 2 only dropped an index that no reader uses, so a version-1 recording in a
/// read-only checkout still replays and diffs.
const OLDEST_READABLE: i32 = 1;

/// Page size of a new recording file.
pub const PAGE_SIZE: u32 = 16384;

/// Schema migrations: `MIGRATIONS[n]` takes version `n` to `n + 1`.
const MIGRATIONS: &[&str] = &[V1, V2];

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

/// Version 2: no index on the match key. Every row written went into it at a place of its
/// own, and that cost the writer about a third of its rows/s; the writer now keeps what
/// it needed the index for (the rows of each key so far) in memory (`store/writer.rs`).
/// `IF EXISTS`: a version-1 file restored from a dump may or may not have brought it back.
const V2: &str = "DROP INDEX IF EXISTS exchanges_key;";

/// Open (creating it if missing) a recording for writing. An existing file must be ours
/// and sound (`PRAGMA quick_check`): recording into a damaged file would answer every
/// request and store nothing.
pub fn open_for_write(path: &Path) -> Result<Connection, StoreError> {
    let existed = path.exists();
    if existed {
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
    if identify(&conn, path)? != Found::Empty {
        quick_check(&conn, path)?;
    }
    // Initialise or migrate under a write lock, re-checking inside: another `record`
    // process may be doing the same to the same file.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| StoreError::sqlite(path, e))?;
    match identify(&tx, path)? {
        Found::Empty => migrate(&tx, path, 0)?,
        Found::Ours(version) if version < SCHEMA_VERSION => migrate(&tx, path, version)?,
        // A current file is not written here (a damaged one must stay as it was).
        Found::Ours(_) => {}
        Found::Restored => {
            // Its tables are the current ones; a dump of a version-1 file also brings
            // back the index that version 2 dropped.
            tx.execute_batch(V2)
                .map_err(|e| StoreError::sqlite(path, e))?;
            stamp(&tx, path)?;
            tracing::info!(path = %path.display(), "recording restored from an SQL dump: its application_id and user_version are set again");
        }
    }
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
    stamp(tx, path)
}

/// Mark a file as a recording of the current schema.
fn stamp(tx: &Connection, path: &Path) -> Result<(), StoreError> {
    tx.execute_batch(&format!(
        "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {SCHEMA_VERSION};"
    ))
    .map_err(|e| StoreError::sqlite(path, e))
}

/// Leave a finished recording in rollback-journal mode, so that reading it later (from a
/// read-only checkout, a CI cache) needs no `-wal`/`-shm` beside it and creates none. Best
/// effort: while another connection has the file open it stays in WAL mode, which readers
/// handle too.
pub fn put_to_rest(conn: &Connection) {
    let _ = conn.busy_timeout(Duration::ZERO);
    let _ = conn.query_row("PRAGMA journal_mode = DELETE", [], |_| Ok(()));
}

/// Open an existing recording for reading only. Nothing is written, and nothing is created
/// beside the file unless a writer's `-wal` is already there: a read-only file in a
/// read-only directory opens.
pub fn open_for_read(path: &Path) -> Result<Connection, StoreError> {
    if !path.exists() {
        return Err(StoreError::Missing {
            path: path.to_path_buf(),
        });
    }
    let wal_mode = check_header(path)? == Header::Wal;
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = if wal_mode && !sidecar(path, "-wal").exists() {
        // A WAL-mode file nobody is writing (a writer keeps its `-wal` beside it): every
        // page is in the file. An ordinary open would create `-wal` and `-shm` (and fail
        // where it cannot); `immutable` reads the file as it is.
        Connection::open_with_flags(immutable_uri(path), flags | OpenFlags::SQLITE_OPEN_URI)
    } else {
        Connection::open_with_flags(path, flags)
    }
    .map_err(|e| StoreError::sqlite(path, e))?;
    configure(&conn, path)?;
    match identify(&conn, path)? {
        Found::Empty => Err(StoreError::Empty {
            path: path.to_path_buf(),
        }),
        Found::Ours(version) if version < OLDEST_READABLE => {
            // Too old to read as it is (none is yet): migrated by a writer first.
            drop(conn);
            drop(open_for_write(path)?);
            open_for_read(path)
        }
        Found::Ours(_) | Found::Restored => Ok(conn),
    }
}

/// `PATH-wal`, `PATH-shm`: SQLite's files beside a database.
fn sidecar(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

/// `file:PATH?immutable=1`, with the characters a URI gives meaning to escaped.
fn immutable_uri(path: &Path) -> String {
    use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
    const URI_PATH: &AsciiSet = &CONTROLS.add(b'%').add(b'?').add(b'#').add(b' ');
    let text = path.to_string_lossy();
    format!("file:{}?immutable=1", utf8_percent_encode(&text, URI_PATH))
}

fn configure(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(|e| StoreError::sqlite(path, e))?;
    conn.execute_batch("PRAGMA foreign_keys = ON;")
        .map_err(|e| StoreError::sqlite(path, e))
}

/// `PRAGMA quick_check`: every page readable, every record well formed (indexes are not
/// compared with their tables; that is `integrity_check`, much slower).
fn quick_check(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare("PRAGMA quick_check(20)")
        .map_err(|e| StoreError::sqlite(path, e))?;
    let problems: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| StoreError::sqlite(path, e))?;
    if problems.len() == 1 && problems[0] == "ok" {
        return Ok(());
    }
    // A row may hold several lines, and a heading (`*** in database main ***`).
    let lines: Vec<&str> = problems
        .iter()
        .flat_map(|p| p.lines())
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("***"))
        .collect();
    let more = match lines.len() {
        0 | 1 => String::new(),
        2 => " and 1 more problem".to_string(),
        n => format!(" and {} more problems", n - 1),
    };
    Err(StoreError::Corrupt {
        path: path.to_path_buf(),
        detail: format!(
            "{}{more}",
            lines.first().copied().unwrap_or("quick_check failed")
        ),
    })
}

/// What the first bytes of a file say.
#[derive(Debug, PartialEq, Eq)]
enum Header {
    /// An empty file (SQLite makes it a database).
    Empty,
    /// A database in rollback-journal mode.
    Rollback,
    /// A database in WAL mode.
    Wal,
}

/// A non-empty file that does not start with the SQLite magic is refused before SQLite
/// sees it, so nothing can write to it.
fn check_header(path: &Path) -> Result<Header, StoreError> {
    use std::io::Read;
    let io = |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut header = [0u8; 20];
    let mut n = 0;
    while n < header.len() {
        match file.read(&mut header[n..]).map_err(io)? {
            0 => break,
            read => n += read,
        }
    }
    if n == 0 {
        return Ok(Header::Empty);
    }
    if n < 20 || &header[..16] != b"SQLite format 3\0" {
        return Err(StoreError::NotSqlite {
            path: path.to_path_buf(),
        });
    }
    // Bytes 18 and 19: the file format's write and read versions, 2 in WAL mode.
    Ok(if header[18] == 2 || header[19] == 2 {
        Header::Wal
    } else {
        Header::Rollback
    })
}

/// What a database holds, as far as recordings go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    /// No table at all: a new file.
    Empty,
    /// A recording of this schema version.
    Ours(i32),
    /// The tables of the current schema without the marks (`sqlite3 FILE .dump` keeps
    /// neither `application_id` nor `user_version`): a recording restored from a dump.
    Restored,
}

/// Recognise a recording; an error for anything else, naming what it is instead.
fn identify(conn: &Connection, path: &Path) -> Result<Found, StoreError> {
    let sql = |e| StoreError::sqlite(path, e);
    let app_id: i32 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(sql)?;
    let version: i32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sql)?;
    let not_ours = |detail: String| StoreError::NotARecording {
        path: path.to_path_buf(),
        detail,
    };
    if app_id == 0 {
        let tables = tables_and_columns(conn).map_err(sql)?;
        if tables.is_empty() {
            return Ok(Found::Empty);
        }
        if &tables == current_tables() {
            return Ok(Found::Restored);
        }
        let names: Vec<&str> = tables.keys().map(String::as_str).collect();
        if ["sessions", "exchanges", "events"]
            .iter()
            .all(|t| tables.contains_key(*t))
        {
            return Err(not_ours(format!(
                "it has the tables of a recording ({}) but not the columns of schema {SCHEMA_VERSION}, \
                 and no application_id; if another version of ucwa-replay wrote it and it was \
                 restored from a dump, set PRAGMA application_id = {APPLICATION_ID} and \
                 PRAGMA user_version = <that version's schema> with sqlite3",
                names.join(", ")
            )));
        }
        return Err(not_ours(format!(
            "a SQLite database of another program (tables: {})",
            names.join(", ")
        )));
    }
    if app_id != APPLICATION_ID {
        return Err(not_ours(format!(
            "a SQLite database of another program (application_id {app_id:#x}; a recording's is \
             {APPLICATION_ID:#x}, \"UCWA\")"
        )));
    }
    if version > SCHEMA_VERSION {
        return Err(StoreError::Newer {
            path: path.to_path_buf(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(Found::Ours(version))
}

/// Table name → its columns, for every table of a database (SQLite's own left out).
type Tables = std::collections::BTreeMap<String, Vec<String>>;

fn tables_and_columns(conn: &Connection) -> rusqlite::Result<Tables> {
    let mut stmt = conn.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
    )?;
    let names: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut tables = Tables::new();
    for name in names {
        let mut cols = conn.prepare("SELECT name FROM pragma_table_info(?1)")?;
        let columns = cols
            .query_map([&name], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        tables.insert(name, columns);
    }
    Ok(tables)
}

/// The tables and columns of the current schema, read from a database made with it (the
/// schema is written once, in `MIGRATIONS`).
fn current_tables() -> &'static Tables {
    static TABLES: std::sync::OnceLock<Tables> = std::sync::OnceLock::new();
    TABLES.get_or_init(|| {
        let conn = Connection::open_in_memory().expect("an in-memory database");
        for sql in MIGRATIONS {
            conn.execute_batch(sql).expect("the schema is valid SQL");
        }
        tables_and_columns(&conn).expect("an in-memory database answers")
    })
}
