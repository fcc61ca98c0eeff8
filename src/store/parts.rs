//! Reading a session in two parts, for a replay that keeps only an index in memory: the small
//! columns of every exchange at once ([`Recording::for_each_exchange_head`]), and the large
//! ones — headers and bodies — of one row when a request needs them ([`RowReader`]).
//!
//! A 100 000-exchange recording is about 150 MB, mostly bodies and header text; loading it
//! whole took 2.6× the file in memory and most of a second before the first answer. The
//! heads are a few dozen bytes each, and one row is read by its `rowid` in microseconds.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, Row};

use super::read::Recording;
use super::{StoreError, schema};
use crate::recording::{
    Exchange, HeaderList, KeyOptions, KeyRequest, MatchKey, ResourceKind, SessionInfo,
};
use crate::ucwa::Representation;

/// The request side of a stored exchange: headers and body.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestParts {
    pub headers: HeaderList,
    pub body: Vec<u8>,
}

/// The response side of a stored exchange, as a replay sends it back.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResponseParts {
    pub headers: HeaderList,
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
            headers: exchange.response_headers.clone(),
            body: exchange.response_body.clone(),
            content_encoding: exchange.content_encoding.clone(),
            error: exchange.error.clone(),
        }
    }
}

impl Recording {
    /// Every exchange of a session, without its headers, bodies and events (`error`
    /// included), handed to `each` one at a time so that nothing large is held. The order is
    /// the file's, which is `seq` order unless the writer stored some late: the caller sorts.
    /// With `with_request`, the request headers and body are filled in (to compute match keys
    /// again); a stored key that does not parse is computed again from them either way.
    pub fn for_each_exchange_head(
        &self,
        session: &SessionInfo,
        with_request: bool,
        mut each: impl FnMut(Exchange),
    ) -> Result<(), StoreError> {
        let sql = |e| StoreError::sqlite(self.path(), e);
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
                "SELECT id, seq, started_us, duration_us, method, path, query, http_version,
                        request_truncated, status, response_truncated, content_encoding,
                        error, kind, representation, match_key, ordinal, credential, upstream,
                        request_headers, request_body
                 FROM exchanges {} WHERE session_id = ?1 {}",
                if scan { "NOT INDEXED" } else { "" },
                if scan { "" } else { "ORDER BY seq" }
            ))
            .map_err(sql)?;
        let mut rows = stmt.query([session.id]).map_err(sql)?;
        while let Some(row) = rows.next().map_err(sql)? {
            let exchange = head_from_row(row, with_request).map_err(|e| match e {
                rusqlite::Error::FromSqlConversionFailure(_, _, inner) => StoreError::Corrupt {
                    path: self.path().to_path_buf(),
                    detail: inner.to_string(),
                },
                other => sql(other),
            })?;
            each(exchange);
        }
        Ok(())
    }
}

fn bad(col: usize, what: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        col,
        rusqlite::types::Type::Text,
        format!("unreadable {what}").into(),
    )
}

fn head_from_row(r: &Row<'_>, with_request: bool) -> rusqlite::Result<Exchange> {
    let kind: String = r.get(13)?;
    let repr: String = r.get(14)?;
    let mut ex = Exchange {
        id: r.get(0)?,
        seq: r.get::<_, i64>(1)? as u64,
        started_us: r.get(2)?,
        duration_us: r.get(3)?,
        method: r.get(4)?,
        path: r.get(5)?,
        query: r.get(6)?,
        http_version: r.get(7)?,
        request_truncated: r.get(8)?,
        status: r.get(9)?,
        response_truncated: r.get(10)?,
        content_encoding: r.get(11)?,
        error: r.get(12)?,
        kind: ResourceKind::from_rel(&kind),
        representation: Representation::parse(&repr).ok_or_else(|| bad(14, "representation"))?,
        ordinal: r.get(16)?,
        credential: r.get(17)?,
        upstream: r.get(18)?,
        ..Exchange::default()
    };
    // Borrowed: the large columns are only decoded when they are needed.
    let key = match r.get_ref(15)? {
        ValueRef::Text(t) => std::str::from_utf8(t).ok().and_then(MatchKey::parse),
        _ => None,
    };
    if with_request || key.is_none() {
        let headers = match r.get_ref(19)? {
            ValueRef::Text(t) => std::str::from_utf8(t).ok().and_then(HeaderList::from_json),
            _ => None,
        };
        ex.request_headers = headers.ok_or_else(|| bad(19, "request headers"))?;
        ex.request_body = r.get(20)?;
    }
    // A key written by hand (SQL) that does not parse is computed again, with the defaults.
    ex.match_key = key.unwrap_or_else(|| KeyRequest::of_exchange(&ex).key(&KeyOptions::default()));
    Ok(ex)
}

/// Reads the headers and bodies of single exchanges by row id, from any thread: a small pool
/// of read-only connections, each with its prepared statements cached. A connection is
/// opened when every idle one is in use (so there are about as many as requests answered at
/// once) and kept for the next request.
#[derive(Debug)]
pub struct RowReader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl RowReader {
    /// A reader of the recording at `path`; refuses what [`Recording::open`] refuses.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let first = schema::open_for_read(path)?;
        Ok(RowReader {
            path: path.to_path_buf(),
            idle: Mutex::new(vec![first]),
        })
    }

    /// The file it reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Connection>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Run `f` on an idle connection (opened if none is), then put it back.
    fn with<T>(
        &self,
        id: i64,
        f: impl FnOnce(&Connection) -> rusqlite::Result<Option<T>>,
    ) -> Result<T, StoreError> {
        let taken = self.idle().pop();
        let conn = match taken {
            Some(conn) => conn,
            None => schema::open_for_read(&self.path)?,
        };
        let result = f(&conn);
        self.idle().push(conn);
        match result {
            Ok(Some(value)) => Ok(value),
            Ok(None) => Err(StoreError::Corrupt {
                path: self.path.clone(),
                detail: format!(
                    "exchange row {id} is gone (was the session replaced while it was replayed?)"
                ),
            }),
            Err(rusqlite::Error::FromSqlConversionFailure(_, _, inner)) => {
                Err(StoreError::Corrupt {
                    path: self.path.clone(),
                    detail: inner.to_string(),
                })
            }
            Err(e) => Err(StoreError::sqlite(&self.path, e)),
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
            .query_row([id], |r| {
                let headers: String = r.get(0)?;
                Ok(ResponseParts {
                    headers: HeaderList::from_json(&headers)
                        .ok_or_else(|| bad(0, "response headers"))?,
                    body: r.get(1)?,
                    content_encoding: r.get(2)?,
                    error: r.get(3)?,
                })
            })
            .optional()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{NewSession, StoreWriter};

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
                .key(&KeyOptions::default()),
            credential: Some("REDACTED-1".into()),
            ..Exchange::default()
        }
    }

    #[tokio::test]
    async fn heads_then_parts_by_row_give_back_the_whole_exchange() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rec.sqlite");
        let writer = StoreWriter::create(
            &path,
            &NewSession {
                name: "s".into(),
                upstream: "https://fe1.contoso.com".into(),
                also_upstreams: vec![],
                replace: false,
            },
        )
        .unwrap();
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
        let mut heads = Vec::new();
        rec.for_each_exchange_head(&session, false, |h| heads.push(h))
            .unwrap();
        assert_eq!(heads.len(), 3);
        let reader = RowReader::open(&path).unwrap();
        for (head, full) in heads.iter().zip(&whole) {
            assert_eq!(head.seq, full.seq);
            assert_eq!(head.match_key, full.match_key);
            assert_eq!(head.match_key.representation, Representation::Xml);
            assert_eq!(head.credential, full.credential);
            assert_eq!(head.status, Some(201));
            assert!(head.response_body.is_empty() && head.response_headers.0.is_empty());
            assert_eq!(reader.response(head.id).unwrap(), ResponseParts::of(full));
            assert_eq!(reader.request(head.id).unwrap(), RequestParts::of(full));
        }
        let mut with = Vec::new();
        rec.for_each_exchange_head(&session, true, |h| with.push(h))
            .unwrap();
        assert_eq!(with[0].request_body, b"body 1");

        // Several threads at once each get a connection; a row that is gone is an error.
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for head in &heads {
                        assert_eq!(reader.response(head.id).unwrap().body.len(), 10);
                    }
                });
            }
        });
        let err = reader.response(999).unwrap_err().to_string();
        assert!(err.contains("exchange row 999 is gone"), "{err}");
    }
}
