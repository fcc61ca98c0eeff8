//! The SQLite recording: one file, many named sessions.
//!
//! - `schema`: recognising, creating and migrating the file;
//! - `writer`: the one writer thread the recording proxy feeds with a bound on what waits;
//! - `ordinals`: the writer's count of each match key's rows, in bounded memory;
//! - `read`: sessions, exchanges and events for replay, diff and the inspect commands;
//! - `watch`: noticing that the file being recorded into was deleted or replaced;
//! - `parts`: a session's small columns at once and one row's headers and bodies on demand,
//!   for a replay that keeps only its index in memory;
//! - `cursor`: a session's exchanges as a stream, a page at a time (export, diff).
//!
//! SQL users can query the file directly: `exchanges` holds one row per request/response pair
//! (bodies decoded and redacted), `events` one row per event of the events feed, e.g.
//! `SELECT * FROM events WHERE link_rel = 'participantMessaging' AND type = 'deleted'`.

mod cursor;
mod ordinals;
mod parts;
mod read;
mod rows;
mod schema;
mod watch;
mod writer;

pub use crate::error::StoreError;
pub use cursor::ExchangeStream;
pub(crate) use parts::{ExchangeHead, RequestParts, ResponseParts};
pub use read::Recording;
pub(crate) use rows::RowReader;
pub(crate) use writer::weight;
pub use writer::{Admission, ExchangeSink, NewSession, StoreWriter, WriterLimit, WriterStats};

/// A new session's name must be one every command can address: not empty, no control
/// characters (they would reach terminals raw), and no `#` (which separates `FILE#SESSION`).
/// Sessions named otherwise by older versions or by hand still open and are listed escaped.
pub fn check_session_name(name: &str) -> Result<(), StoreError> {
    let reason = if name.trim().is_empty() {
        "it is empty"
    } else if name.contains('#') {
        "'#' separates FILE#SESSION, so a name with one could not be addressed"
    } else if name.chars().any(char::is_control) {
        "it contains a control character"
    } else {
        return Ok(());
    };
    Err(StoreError::BadSessionName {
        name: name.to_string(),
        reason,
    })
}

/// Delete session `name` of the recording at `path` with everything recorded in it (a run
/// that was abandoned, such as a `verify` whose sign-in failed).
pub fn remove_session(path: &std::path::Path, name: &str) -> Result<(), StoreError> {
    let conn = schema::open_for_write(path)?;
    conn.execute("DELETE FROM sessions WHERE name = ?1", [name])
        .map_err(|e| StoreError::sqlite(path, e))?;
    schema::put_to_rest(&conn);
    Ok(())
}

/// Delete session `id` of the recording at `path` with its exchanges and events: taking back
/// what an import wrote before it failed.
pub(crate) fn remove_session_by_id(path: &std::path::Path, id: i64) -> Result<(), StoreError> {
    let conn = schema::open_for_write(path)?;
    conn.execute("DELETE FROM sessions WHERE id = ?1", [id])
        .map_err(|e| StoreError::sqlite(path, e))?;
    schema::put_to_rest(&conn);
    Ok(())
}

/// Current time as RFC 3339 (seconds), for session start and end stamps.
pub(crate) fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::{EventRow, Exchange, HeaderList, Ingest, KeyOptions, MatchKey};
    use crate::redact::RedactConfig;

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
            match_key: MatchKey {
                method: "GET".into(),
                path: key.into(),
                ..MatchKey::default()
            },
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
        NewSession::new(name, "https://fe1.contoso.com")
    }

    /// Hand `exchanges` to `writer` in this order, and finish it.
    async fn write_all(
        writer: StoreWriter,
        exchanges: impl IntoIterator<Item = Exchange>,
    ) -> WriterStats {
        let sink = writer.sink();
        for exchange in exchanges {
            sink.submit(exchange);
        }
        drop(sink);
        writer.finish().await.unwrap()
    }

    #[tokio::test]
    async fn writes_and_reads_back_with_ordinals_in_seq_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/rec.sqlite");
        let writer = StoreWriter::create(&path, &new_session("s1")).unwrap();
        // Finished out of order: seq 3 first, then 1, then 2; 1 and 3 share a key.
        let stats = write_all(
            writer,
            [exchange(3, "K"), exchange(1, "K"), exchange(2, "J")],
        )
        .await;
        assert_eq!(stats.exchanges, 3);
        assert_eq!(stats.events, 3);

        let rec = Recording::open(&path).unwrap();
        let session = rec.session(None).unwrap();
        assert_eq!(session.exchanges, 3);
        assert!(session.ended_at.is_some());
        let all = rec.exchanges(&session).unwrap();
        let got: Vec<(u64, &str, u32)> = all
            .iter()
            .map(|e| (e.seq, e.match_key.path.as_str(), e.ordinal))
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

    /// A recording of schema version 1 (with the index on the match key that version 2
    /// dropped) is read as it is, without a byte written, and a writer takes it to version
    /// 2 and goes on with its ordinals.
    #[tokio::test]
    async fn a_version_1_recording_is_read_untouched_and_migrated_by_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.sqlite");
        let writer = StoreWriter::create(&path, &new_session("s")).unwrap();
        write_all(writer, [exchange(1, "K"), exchange(2, "K")]).await;
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE INDEX exchanges_key ON exchanges (session_id, match_key, seq);
             PRAGMA user_version = 1;",
        )
        .unwrap();
        drop(conn);
        let index_and_version = || {
            let conn = rusqlite::Connection::open(&path).unwrap();
            let index: i64 = conn
                .query_row(
                    "SELECT count(*) FROM sqlite_master WHERE name = 'exchanges_key'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            let version: i32 = conn
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap();
            (index, version)
        };

        let before = std::fs::read(&path).unwrap();
        let rec = Recording::open(&path).unwrap();
        let s = rec.session(Some("s")).unwrap();
        assert_eq!(rec.exchanges(&s).unwrap().len(), 2);
        drop(rec);
        assert_eq!(
            std::fs::read(&path).unwrap(),
            before,
            "reading wrote to the file"
        );
        assert_eq!(index_and_version(), (1, 1));

        let writer = StoreWriter::append(&path, "s").unwrap();
        assert_eq!(index_and_version(), (0, schema::SCHEMA_VERSION));
        write_all(writer, [exchange(3, "K")]).await;
        let rec = Recording::open(&path).unwrap();
        let s = rec.session(Some("s")).unwrap();
        let ordinals: Vec<u32> = rec
            .exchanges(&s)
            .unwrap()
            .iter()
            .map(|e| e.ordinal)
            .collect();
        assert_eq!(ordinals, [0, 1, 2]);
    }

    /// `sqlite3 OLD .dump | sqlite3 NEW` of a version-1 recording brings back its tables,
    /// its match-key index and no marks: the first writer marks it version 2 and drops the
    /// index, as a migration would.
    #[tokio::test]
    async fn a_restored_version_1_dump_loses_the_index_when_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("restored.sqlite");
        write_all(
            StoreWriter::create(&path, &new_session("s")).unwrap(),
            [exchange(1, "K")],
        )
        .await;
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute_batch(
                "CREATE INDEX exchanges_key ON exchanges (session_id, match_key, seq);
                 PRAGMA application_id = 0; PRAGMA user_version = 0;",
            )
            .unwrap();
        write_all(StoreWriter::append(&path, "s").unwrap(), [exchange(2, "K")]).await;
        let conn = rusqlite::Connection::open(&path).unwrap();
        let (app, version, index): (i32, i32, i64) = conn
            .query_row(
                "SELECT (SELECT application_id FROM pragma_application_id),
                        (SELECT user_version FROM pragma_user_version),
                        (SELECT count(*) FROM sqlite_master WHERE name = 'exchanges_key')",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(
            (app, version, index),
            (schema::APPLICATION_ID, schema::SCHEMA_VERSION, 0)
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

    const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib2IifQ.c2lnbmF0dXJlX2J5dGVz";

    fn plain_exchange() -> Exchange {
        Exchange {
            method: "GET".into(),
            http_version: "HTTP/1.1".into(),
            status: Some(200),
            ..Default::default()
        }
    }

    fn contains(hay: &[u8], needle: &str) -> bool {
        hay.windows(needle.len()).any(|w| w == needle.as_bytes())
    }

    /// The end-to-end guarantee: known secrets never reach the database file or its WAL.
    #[tokio::test]
    async fn secrets_never_reach_the_database_or_wal() {
        const PASSWORD: &str = "Sup3rSecretPassw0rd";
        const TOKEN: &str = "AAEBHAEFAAAAAAAFFQAAAIxVppb2z4Dxaju2058FAACBEPoG3Xyftj";
        const COOKIE: &str = "CookieValueZZ9911";
        const CUSTOM: &str = "ACME-77331199";
        let secrets = [
            PASSWORD,
            TOKEN,
            COOKIE,
            CUSTOM,
            JWT,
            "alice.secret@contoso.com",
        ];

        let ingest = Ingest::new(
            &RedactConfig {
                regexes: vec![r"ACME-\d+".into()],
                ..Default::default()
            },
            KeyOptions::default(),
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rec.sqlite");
        let writer =
            StoreWriter::create(&path, &NewSession::new("s", "https://fe1.contoso.com")).unwrap();
        let sink = writer.sink();

        let mut token = plain_exchange();
        token.seq = 1;
        token.method = "POST".into();
        token.path = "/WebTicket/oauthtoken".into();
        token
            .request_headers
            .push("content-type", "application/x-www-form-urlencoded");
        token.request_body =
            format!("grant_type=password&username=alice.secret%40contoso.com&password={PASSWORD}")
                .into_bytes();
        token.response_body =
            format!(r#"{{"access_token":"cwt={TOKEN}","id_token":"{JWT}","note":"{CUSTOM}"}}"#)
                .into_bytes();
        ingest.ingest(&mut token);
        sink.submit(token);

        let mut app = plain_exchange();
        app.seq = 2;
        app.path = "/ucwa/oauth/v1/applications/105".into();
        app.request_headers
            .push("authorization", format!("Bearer cwt={TOKEN}"));
        app.request_headers
            .push("cookie", format!("cwt_ucwa={COOKIE}"));
        app.response_headers
            .push("set-cookie", format!("cwt_ucwa={COOKIE}; path=/; secure"));
        app.query = Some(format!("token=cwt={TOKEN}"));
        ingest.ingest(&mut app);
        assert_eq!(app.credential.as_deref(), Some("REDACTED-3"));
        sink.submit(app);
        drop(sink);

        // While the WAL exists (the writer is still running and has written both exchanges).
        let wal = dir.path().join("rec.sqlite-wal");
        for _ in 0..100 {
            let written = rusqlite::Connection::open(&path)
                .and_then(|c| {
                    c.query_row("SELECT count(*) FROM exchanges", [], |r| r.get::<_, i64>(0))
                })
                .unwrap_or(0);
            if written == 2 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(
            std::fs::metadata(&wal)
                .map(|m| m.len() > 0)
                .unwrap_or(false),
            "no WAL yet"
        );
        for file in [&path, &wal] {
            if let Ok(bytes) = std::fs::read(file) {
                for s in secrets {
                    assert!(!contains(&bytes, s), "{s} found in {}", file.display());
                }
            }
        }
        writer.finish().await.unwrap();
        for file in [&path, &wal] {
            if let Ok(bytes) = std::fs::read(file) {
                for s in secrets {
                    assert!(!contains(&bytes, s), "{s} found in {}", file.display());
                }
            }
        }
        // And the placeholders are there.
        let rec = Recording::open(&path).unwrap();
        let session = rec.session(None).unwrap();
        let all = rec.exchanges(&session).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(
            all[1].request_headers.get("authorization"),
            Some("Bearer cwt=REDACTED-3")
        );
        assert!(contains(&all[0].response_body, "cwt=REDACTED-3"));
    }
}
