//! Reading a session in two parts, for a replay that keeps only an index in memory: the small
//! columns of every exchange at once ([`Recording::for_each_exchange_head`]), and the large
//! ones — headers and bodies — of one row when a request needs them ([`super::RowReader`],
//! in `rows.rs`).
//!
//! A 100 000-exchange recording is about 150 MB, mostly bodies and header text; loading it
//! whole took 2.6× the file in memory and most of a second before the first answer. The
//! heads are a few dozen bytes each, and one row is read by its `rowid` in microseconds.

use std::sync::Arc;

use rusqlite::Row;
use rusqlite::types::ValueRef;

use super::StoreError;
use super::read::Recording;
use crate::recording::{Exchange, HeaderList, KeyOptions, KeyRequest, MatchKey, SessionInfo};

/// The request side of a stored exchange: headers and body.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestParts {
    pub headers: HeaderList,
    pub body: Vec<u8>,
}

/// The response side of a stored exchange, as a replay sends it back.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResponseParts {
    /// As a client is sent them (fields no longer valid left out), in recorded order.
    /// Read from a file, the fields no client is ever sent are left out too
    /// ([`crate::recording::headers::always_stripped`]).
    pub headers: http::HeaderMap,
    /// Decoded (no `Content-Encoding`), redacted.
    pub body: Vec<u8>,
    /// The original `Content-Encoding`, when the stored body was decoded.
    pub content_encoding: Option<String>,
    /// What went wrong when no response was recorded.
    pub error: Option<String>,
}

impl RequestParts {
    /// The request parts of an exchange held in memory.
    pub fn of(exchange: &Exchange) -> Self {
        RequestParts {
            headers: exchange.request_headers.clone(),
            body: exchange.request_body.clone(),
        }
    }
}

impl ResponseParts {
    /// The response parts of an exchange held in memory.
    pub fn of(exchange: &Exchange) -> Self {
        ResponseParts {
            headers: exchange.response_headers.to_http(),
            body: exchange.response_body.clone(),
            content_encoding: exchange.content_encoding.clone(),
            error: exchange.error.clone(),
        }
    }
}

/// One exchange as an index needs it, borrowed from the row being read: no headers, no
/// bodies, no events, and no copy of what the row holds.
#[derive(Debug)]
pub struct ExchangeHead<'a> {
    /// The row id ([`super::RowReader`] reads the rest by it).
    pub id: i64,
    pub seq: u64,
    pub duration_us: i64,
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    /// None when no response was recorded.
    pub status: Option<u16>,
    /// The resource kind's rel (`ResourceKind::from_rel`).
    pub kind: &'a str,
    pub credential: Option<&'a str>,
    /// The match key: the stored one (shared by every row that stores the same text), or
    /// one computed again from the request.
    pub key: Arc<MatchKey>,
}

impl<'a> ExchangeHead<'a> {
    /// The head of an exchange held in memory, with its key.
    pub fn of(exchange: &'a Exchange, key: Arc<MatchKey>) -> Self {
        ExchangeHead {
            id: exchange.id,
            seq: exchange.seq,
            duration_us: exchange.duration_us,
            method: &exchange.method,
            path: &exchange.path,
            query: exchange.query.as_deref(),
            status: exchange.status,
            kind: exchange.kind.as_str(),
            credential: exchange.credential.as_deref(),
            key,
        }
    }
}

impl Recording {
    /// The head of every exchange of a session, handed to `each` one at a time. The order
    /// is the file's, which is `seq` order unless the writer stored some late: the caller
    /// sorts. With `recompute`, every key is computed again from the stored request with
    /// those options (`--ignore-body-field`); a stored key that does not parse is computed
    /// again (with the defaults) either way.
    pub(crate) fn for_each_exchange_head(
        &self,
        session: &SessionInfo,
        recompute: Option<&KeyOptions>,
        mut each: impl FnMut(&ExchangeHead<'_>),
    ) -> Result<(), StoreError> {
        let sql = |e| StoreError::sqlite(self.path(), e);
        let corrupt_or_sql = |e| match e {
            rusqlite::Error::FromSqlConversionFailure(_, _, inner) => StoreError::Corrupt {
                path: self.path().to_path_buf(),
                detail: inner.to_string(),
            },
            other => sql(other),
        };
        // Reading the table front to back is 2–3× faster than following the (session, seq)
        // index, which looks every row up by its id; it pays when the session is a good part
        // of the file (rows ever written: the highest id).
        let rows_in_file: i64 = self
            .conn()
            .query_row("SELECT coalesce(max(id), 0) FROM exchanges", [], |r| {
                r.get(0)
            })
            .map_err(sql)?;
        let scan = (session.exchanges as i64).saturating_mul(4) >= rows_in_file;
        let mut stmt = self
            .conn()
            .prepare(&format!(
                "SELECT id, seq, duration_us, method, path, query, status, kind, match_key,
                        credential, request_headers, request_body
                 FROM exchanges {} WHERE session_id = ?1 {}",
                if scan { "NOT INDEXED" } else { "" },
                if scan { "" } else { "ORDER BY seq" }
            ))
            .map_err(sql)?;
        // Most rows repeat a key another row stored: parsed once per distinct text.
        let mut keys: hashbrown::HashMap<Box<str>, Arc<MatchKey>> = hashbrown::HashMap::new();
        let mut rows = stmt.query([session.id]).map_err(sql)?;
        while let Some(row) = rows.next().map_err(sql)? {
            let stored = text(row, 8).map_err(corrupt_or_sql)?.unwrap_or("");
            let key = match recompute {
                Some(opts) => Arc::new(request_key(row, opts).map_err(corrupt_or_sql)?),
                None => match keys.get(stored) {
                    Some(key) => key.clone(),
                    None => {
                        let key = Arc::new(match MatchKey::parse(stored) {
                            Some(key) => key,
                            None => {
                                request_key(row, &KeyOptions::default()).map_err(corrupt_or_sql)?
                            }
                        });
                        keys.insert(stored.into(), key.clone());
                        key
                    }
                },
            };
            let head = ExchangeHead {
                id: row.get(0).map_err(sql)?,
                seq: row.get::<_, i64>(1).map_err(sql)? as u64,
                duration_us: row.get(2).map_err(sql)?,
                method: text(row, 3).map_err(corrupt_or_sql)?.unwrap_or(""),
                path: text(row, 4).map_err(corrupt_or_sql)?.unwrap_or(""),
                query: text(row, 5).map_err(corrupt_or_sql)?,
                status: row.get(6).map_err(sql)?,
                kind: text(row, 7).map_err(corrupt_or_sql)?.unwrap_or(""),
                credential: text(row, 9).map_err(corrupt_or_sql)?,
                key,
            };
            each(&head);
        }
        Ok(())
    }
}

/// A text column of the row, borrowed (None for NULL).
fn text<'r>(row: &'r Row<'_>, col: usize) -> rusqlite::Result<Option<&'r str>> {
    match row.get_ref(col)? {
        ValueRef::Text(t) => std::str::from_utf8(t)
            .map(Some)
            .map_err(|_| bad(col, "text")),
        ValueRef::Null => Ok(None),
        _ => Err(bad(col, "text")),
    }
}

/// The key of the row's request (columns 3–5 and 10–11), computed with `opts`.
fn request_key(row: &Row<'_>, opts: &KeyOptions) -> rusqlite::Result<MatchKey> {
    let headers = match row.get_ref(10)? {
        ValueRef::Text(t) => std::str::from_utf8(t).ok().and_then(HeaderList::from_json),
        _ => None,
    }
    .ok_or_else(|| bad(10, "request headers"))?;
    let method: String = row.get(3)?;
    let path: String = row.get(4)?;
    let query: Option<String> = row.get(5)?;
    let body = match row.get_ref(11)? {
        ValueRef::Blob(b) | ValueRef::Text(b) => b,
        _ => &[],
    };
    Ok(KeyRequest {
        method: &method,
        path: &path,
        query: query.as_deref(),
        accept: headers.get("accept"),
        content_type: headers.get("content-type"),
        body,
    }
    .key(opts))
}

pub(super) fn bad(col: usize, what: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        col,
        rusqlite::types::Type::Text,
        format!("unreadable {what}").into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::ResourceKind;
    use crate::store::{NewSession, RowReader, StoreWriter};
    use crate::ucwa::Representation;

    fn exchange(seq: u64) -> Exchange {
        let mut request_headers = HeaderList::default();
        request_headers.push("accept", "application/xml");
        let mut response_headers = HeaderList::default();
        response_headers.push("content-type", "application/xml");
        response_headers.push("x-odd", vec![0xe9]);
        Exchange {
            seq,
            method: "POST".into(),
            path: format!("/ucwa/{seq}"),
            http_version: "HTTP/1.1".into(),
            request_headers,
            request_body: format!("body {seq}").into_bytes(),
            status: Some(201),
            response_headers,
            response_body: format!("<r n=\"{seq}\"/>").into_bytes(),
            content_encoding: Some("gzip".into()),
            kind: ResourceKind::from_rel("participantMessaging"),
            representation: Representation::Xml,
            match_key: KeyRequest::new("POST", &format!("/ucwa/{seq}"))
                .accept(Some("application/xml"))
                .body(None, format!("body {seq}").as_bytes())
                .key(&KeyOptions::default()),
            credential: Some("REDACTED-1".into()),
            ..Exchange::default()
        }
    }

    #[tokio::test]
    async fn heads_then_parts_by_row_give_back_the_whole_exchange() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rec.sqlite");
        let writer =
            StoreWriter::create(&path, &NewSession::new("s", "https://fe1.contoso.com")).unwrap();
        let sink = writer.sink();
        for seq in 1..=3 {
            sink.submit(exchange(seq));
        }
        drop(sink);
        writer.finish().await.unwrap();
        // A key written by hand that does not parse is computed from the request.
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute(
                "UPDATE exchanges SET match_key = 'garbage' WHERE seq = 2",
                [],
            )
            .unwrap();

        let rec = Recording::open(&path).unwrap();
        let session = rec.session(None).unwrap();
        let whole = rec.exchanges(&session).unwrap();
        // (id, seq, key, credential, status, kind, path)
        type Seen = (
            i64,
            u64,
            MatchKey,
            Option<String>,
            Option<u16>,
            String,
            String,
        );
        let heads_with = |recompute: Option<&KeyOptions>| {
            let mut heads: Vec<Seen> = Vec::new();
            rec.for_each_exchange_head(&session, recompute, |h| {
                heads.push((
                    h.id,
                    h.seq,
                    (*h.key).clone(),
                    h.credential.map(str::to_string),
                    h.status,
                    h.kind.to_string(),
                    h.path.to_string(),
                ))
            })
            .unwrap();
            heads
        };
        let heads = heads_with(None);
        assert_eq!(heads.len(), 3);
        let reader = RowReader::open(&path).unwrap();
        for (head, full) in heads.iter().zip(&whole) {
            let (id, seq, key, credential, status, kind, path) = head;
            assert_eq!(*seq, full.seq);
            assert_eq!(*key, full.match_key);
            assert_eq!(key.representation, Representation::Xml);
            assert_eq!(*credential, full.credential);
            assert_eq!(*status, Some(201));
            assert_eq!(*kind, "participantMessaging");
            assert_eq!(*path, full.path);
            assert_eq!(reader.response(*id).unwrap(), ResponseParts::of(full));
            assert_eq!(reader.request(*id).unwrap(), RequestParts::of(full));
        }
        // Computed again from the request: the same keys (no ignored field in these).
        let again = heads_with(Some(&KeyOptions::with_extra_fields(["x".to_string()])));
        assert_eq!(
            again.iter().map(|h| &h.2).collect::<Vec<_>>(),
            heads.iter().map(|h| &h.2).collect::<Vec<_>>()
        );

        // Several threads at once each get a connection; a row that is gone is an error.
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for head in &heads {
                        assert_eq!(reader.response(head.0).unwrap().body.len(), 10);
                    }
                });
            }
        });
        let err = reader.response(999).unwrap_err().to_string();
        assert!(err.contains("exchange row 999 is gone"), "{err}");
    }

    /// A session that is a small part of its file is read through the (session, seq) index,
    /// one that is most of it by a scan: the same heads either way.
    #[tokio::test]
    async fn small_and_large_sessions_give_the_same_heads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rec.sqlite");
        for (name, n) in [("small", 2), ("large", 20)] {
            let writer =
                StoreWriter::create(&path, &NewSession::new(name, "https://fe1.contoso.com"))
                    .unwrap();
            let sink = writer.sink();
            for seq in 1..=n {
                sink.submit(exchange(seq));
            }
            drop(sink);
            writer.finish().await.unwrap();
        }
        let rec = Recording::open(&path).unwrap();
        for name in ["small", "large"] {
            let session = rec.session(Some(name)).unwrap();
            let whole = rec.exchanges(&session).unwrap();
            let mut heads = Vec::new();
            rec.for_each_exchange_head(&session, None, |h| {
                heads.push((h.id, h.seq, (*h.key).clone()))
            })
            .unwrap();
            heads.sort_by_key(|h| h.1);
            let expected: Vec<_> = whole
                .iter()
                .map(|e| (e.id, e.seq, e.match_key.clone()))
                .collect();
            assert_eq!(heads, expected, "{name}");
        }
    }
}
