//! The SQLite recording: one file, many named sessions (DESIGN.md "Recording").
//!
//! - [`schema`]: recognising, creating and migrating the file;
//! - [`writer`]: the one writer thread the recording proxy feeds, with a bound on what waits;
//! - [`read`]: sessions, exchanges and events for replay, diff and the inspect commands.
//!
//! SQL users can query the file directly: `exchanges` holds one row per request/response pair
//! (bodies decoded and redacted), `events` one row per event of the events feed, e.g.
//! `SELECT * FROM events WHERE link_rel = 'participantMessaging' AND type = 'deleted'`.

use std::path::{Path, PathBuf};

pub mod model;
pub mod read;
pub mod schema;
pub mod writer;

pub use model::{EventRow, Exchange, HeaderList, NewSession, SessionInfo};
pub use read::Recording;
pub use writer::{Admission, ExchangeSink, StoreWriter, WriterLimit, WriterStats};

/// Why a recording cannot be used. Every message names the file and says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("{}: no such recording", path.display())]
    Missing { path: PathBuf },

    #[error("{}: not a SQLite database (is it a recording? the file was left untouched)", path.display())]
    NotSqlite { path: PathBuf },

    #[error("{}: not a ucwa-replay recording: {detail} (the file was left untouched)", path.display())]
    NotARecording { path: PathBuf, detail: String },

    #[error(
        "{}: written by a newer ucwa-replay (schema {found}; this version reads up to {supported}): upgrade ucwa-replay",
        path.display()
    )]
    Newer {
        path: PathBuf,
        found: i32,
        supported: i32,
    },

    #[error("{}: damaged recording: {detail}", path.display())]
    Corrupt { path: PathBuf, detail: String },

    #[error("{}: no session named {name:?} (sessions: {})", path.display(), list_or_none(available))]
    NoSession {
        path: PathBuf,
        name: String,
        available: Vec<String>,
    },

    #[error("{}: holds {} sessions; name one as FILE#SESSION or --session ({})", path.display(), available.len(), list_or_none(available))]
    AmbiguousSession {
        path: PathBuf,
        available: Vec<String>,
    },

    #[error("{}: a session named {name:?} already exists (choose another --session name, or --replace it)", path.display())]
    SessionExists { path: PathBuf, name: String },

    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{}: SQLite: {source}", path.display())]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },

    #[error("recording writer stopped: {0}")]
    WriterGone(String),
}

impl StoreError {
    /// Classify a SQLite error: "not a database" and "malformed" are corruption.
    pub(crate) fn sqlite(path: &Path, source: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        if let rusqlite::Error::SqliteFailure(e, msg) = &source
            && matches!(e.code, ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt)
        {
            return StoreError::Corrupt {
                path: path.to_path_buf(),
                detail: msg.clone().unwrap_or_else(|| e.to_string()),
            };
        }
        StoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        }
    }
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// Current time as RFC 3339 (seconds), for session start and end stamps.
pub(crate) fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(seq: u64, key: &str) -> Exchange {
        let mut request_headers = HeaderList::default();
        request_headers.push("accept", "application/json");
        Exchange {
            seq,
            started_us: 1_000 + seq as i64,
            duration_us: 5,
            method: "GET".into(),
            path: "/ucwa/oauth/v1/applications/1/events".into(),
            query: Some(format!("ack={seq}")),
            http_version: "HTTP/1.1".into(),
            request_headers,
            status: Some(200),
            response_body: b"{}".to_vec(),
            kind: "events".into(),
            match_key: key.into(),
            ordinal: 99,
            credential: Some("REDACTED-1".into()),
            upstream: Some("https://fe1.contoso.com".into()),
            events: vec![EventRow {
                ack: Some(seq as i64),
                link_rel: "participantMessaging".into(),
                event_type: "added".into(),
                ..EventRow::default()
            }],
            ..Default::default()
        }
    }

    fn new_session(name: &str) -> NewSession {
        NewSession {
            name: name.into(),
            upstream: "https://fe1.contoso.com".into(),
            also_upstreams: vec![],
            replace: false,
        }
    }

    #[tokio::test]
    async fn writes_and_reads_back_with_ordinals_in_seq_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/rec.sqlite");
        let writer = StoreWriter::create(&path, &new_session("s1")).unwrap();
        let sink = writer.sink();
        // Finished out of order: seq 3 first, then 1, then 2; 1 and 3 share a key.
        sink.submit(exchange(3, "K"));
        sink.submit(exchange(1, "K"));
        sink.submit(exchange(2, "J"));
        drop(sink);
        let stats = writer.finish().await.unwrap();
        assert_eq!(stats.exchanges, 3);
        assert_eq!(stats.events, 3);

        let rec = Recording::open(&path).unwrap();
        let session = rec.session(None).unwrap();
        assert_eq!(session.exchanges, 3);
        assert!(session.ended_at.is_some());
        let all = rec.exchanges(&session).unwrap();
        let got: Vec<(u64, &str, u32)> = all
            .iter()
            .map(|e| (e.seq, e.match_key.as_str(), e.ordinal))
            .collect();
        assert_eq!(got, [(1, "K", 0), (2, "J", 0), (3, "K", 1)]);
        assert_eq!(all[0].events[0].link_rel, "participantMessaging");
        assert_eq!(
            all[0].request_headers.get("Accept"),
            Some("application/json")
        );
        assert_eq!(rec.timeline(&session).unwrap().len(), 3);
    }

    #[tokio::test]
    async fn session_names_are_unique_unless_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rec.sqlite");
        StoreWriter::create(&path, &new_session("a"))
            .unwrap()
            .finish()
            .await
            .unwrap();
        let err = StoreWriter::create(&path, &new_session("a")).unwrap_err();
        assert!(matches!(err, StoreError::SessionExists { .. }), "{err}");
        let mut again = new_session("a");
        again.replace = true;
        StoreWriter::create(&path, &again)
            .unwrap()
            .finish()
            .await
            .unwrap();
        StoreWriter::create(&path, &new_session("b"))
            .unwrap()
            .finish()
            .await
            .unwrap();
        let rec = Recording::open(&path).unwrap();
        assert!(matches!(
            rec.session(None).unwrap_err(),
            StoreError::AmbiguousSession { .. }
        ));
        let err = rec.session(Some("zzz")).unwrap_err().to_string();
        assert!(
            err.contains("no session named \"zzz\" (sessions: a, b)"),
            "{err}"
        );
    }

    #[test]
    fn foreign_garbage_and_newer_files_are_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("garbage.sqlite");
        std::fs::write(&garbage, b"this is not a database at all, not even close").unwrap();
        let before = std::fs::read(&garbage).unwrap();
        assert!(matches!(
            schema::open_for_write(&garbage).unwrap_err(),
            StoreError::NotSqlite { .. }
        ));
        assert!(matches!(
            Recording::open(&garbage).unwrap_err(),
            StoreError::NotSqlite { .. }
        ));
        assert_eq!(std::fs::read(&garbage).unwrap(), before);

        let foreign = dir.path().join("foreign.sqlite");
        let conn = rusqlite::Connection::open(&foreign).unwrap();
        conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
            .unwrap();
        drop(conn);
        let before = std::fs::read(&foreign).unwrap();
        let err = schema::open_for_write(&foreign).unwrap_err();
        assert!(matches!(err, StoreError::NotARecording { .. }), "{err}");
        assert_eq!(std::fs::read(&foreign).unwrap(), before);

        let newer = dir.path().join("newer.sqlite");
        drop(schema::open_for_write(&newer).unwrap());
        let conn = rusqlite::Connection::open(&newer).unwrap();
        conn.execute_batch("PRAGMA user_version = 99;").unwrap();
        drop(conn);
        let before = std::fs::read(&newer).unwrap();
        let err = Recording::open(&newer).unwrap_err();
        assert!(
            err.to_string().contains("newer ucwa-replay (schema 99"),
            "{err}"
        );
        assert!(matches!(
            schema::open_for_write(&newer).unwrap_err(),
            StoreError::Newer { .. }
        ));
        assert_eq!(std::fs::read(&newer).unwrap(), before);

        assert!(matches!(
            Recording::open(&dir.path().join("missing.sqlite")).unwrap_err(),
            StoreError::Missing { .. }
        ));
    }
}
