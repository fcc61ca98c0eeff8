//! Reading a recording: sessions, exchanges (in `seq` order) and the events timeline.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, Row, params};

use super::{StoreError, schema};
use crate::recording::{
    EventRow, Exchange, HeaderList, KeyOptions, KeyRequest, MatchKey, ResourceKind, SessionInfo,
};
use crate::ucwa::Representation;

/// A recording opened read-only.
#[derive(Debug)]
pub struct Recording {
    conn: Connection,
    path: PathBuf,
}

/// An event together with the exchange that delivered it.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineEvent {
    /// `seq` of the events-feed exchange.
    pub seq: u64,
    /// The feed URL path (`/ucwa/oauth/v1/applications/105/events`).
    pub feed_path: String,
    pub event: EventRow,
}

impl Recording {
    /// Open `path`; refuses missing, foreign, corrupt and newer files without changing them.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = schema::open_for_read(path)?;
        Ok(Recording {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// The file this recording was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(super) fn sql(&self, e: rusqlite::Error) -> StoreError {
        StoreError::sqlite(&self.path, e)
    }

    /// The connection, for the other readers of this module (the streaming cursor).
    pub(super) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Every session, oldest first.
    pub fn sessions(&self) -> Result<Vec<SessionInfo>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT s.id, s.name, s.upstream, s.also_upstreams, s.started_at, s.ended_at,
                        s.tool_version,
                        (SELECT count(*) FROM exchanges e WHERE e.session_id = s.id),
                        (SELECT count(*) FROM events v WHERE v.session_id = s.id)
                 FROM sessions s ORDER BY s.id",
            )
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map([], |r| {
                let also: String = r.get(3)?;
                Ok(SessionInfo {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    upstream: r.get(2)?,
                    also_upstreams: serde_json::from_str(&also).unwrap_or_default(),
                    started_at: r.get(4)?,
                    ended_at: r.get(5)?,
                    tool_version: r.get(6)?,
                    exchanges: r.get::<_, i64>(7)? as u64,
                    events: r.get::<_, i64>(8)? as u64,
                })
            })
            .map_err(|e| self.sql(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sql(e))
    }

    /// The session called `name`; with `None`, the file's only session.
    pub fn session(&self, name: Option<&str>) -> Result<SessionInfo, StoreError> {
        let sessions = self.sessions()?;
        let names = || sessions.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
        match name {
            Some(name) => sessions
                .iter()
                .find(|s| s.name == name)
                .cloned()
                .ok_or_else(|| StoreError::NoSession {
                    path: self.path.clone(),
                    name: name.to_string(),
                    available: names(),
                }),
            None if sessions.len() == 1 => Ok(sessions[0].clone()),
            None if sessions.is_empty() => Err(StoreError::NoSession {
                path: self.path.clone(),
                name: String::new(),
                available: vec![],
            }),
            None => Err(StoreError::AmbiguousSession {
                path: self.path.clone(),
                available: names(),
            }),
        }
    }

    /// Every exchange of a session in `seq` order, with its events.
    pub fn exchanges(&self, session: &SessionInfo) -> Result<Vec<Exchange>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {EXCHANGE_COLUMNS} FROM exchanges WHERE session_id = ?1 ORDER BY seq"
            ))
            .map_err(|e| self.sql(e))?;
        let mut exchanges: Vec<Exchange> = stmt
            .query_map([session.id], exchange_from_row)
            .map_err(|e| self.sql(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.corrupt_or_sql(e))?;
        let by_id: std::collections::HashMap<i64, usize> = exchanges
            .iter()
            .enumerate()
            .map(|(i, e)| (e.id, i))
            .collect();
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT v.exchange_id, {EVENT_COLUMNS} FROM events v WHERE v.session_id = ?1
                 ORDER BY v.exchange_id, v.position"
            ))
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map([session.id], |r| {
                Ok((r.get::<_, i64>(0)?, event_from_row(r, 1)?))
            })
            .map_err(|e| self.sql(e))?;
        for row in rows {
            let (exchange_id, event) = row.map_err(|e| self.sql(e))?;
            if let Some(&i) = by_id.get(&exchange_id) {
                exchanges[i].events.push(event);
            }
        }
        Ok(exchanges)
    }

    /// The flattened events timeline of a session: by exchange `seq`, then position.
    pub fn timeline(&self, session: &SessionInfo) -> Result<Vec<TimelineEvent>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT x.seq, x.path, {EVENT_COLUMNS} FROM events v
                 JOIN exchanges x ON x.id = v.exchange_id
                 WHERE v.session_id = ?1 ORDER BY x.seq, v.position"
            ))
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map(params![session.id], |r| {
                Ok(TimelineEvent {
                    seq: r.get::<_, i64>(0)? as u64,
                    feed_path: r.get(1)?,
                    event: event_from_row(r, 2)?,
                })
            })
            .map_err(|e| self.sql(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sql(e))
    }

    pub(super) fn corrupt_or_sql(&self, e: rusqlite::Error) -> StoreError {
        match e {
            rusqlite::Error::FromSqlConversionFailure(_, _, inner) => StoreError::Corrupt {
                path: self.path.clone(),
                detail: inner.to_string(),
            },
            other => self.sql(other),
        }
    }
}

/// The columns [`exchange_from_row`] reads, in its order.
pub(super) const EXCHANGE_COLUMNS: &str = "id, seq, started_us, duration_us, method, path, \
     query, http_version, request_headers, request_body, request_truncated, status, \
     response_headers, response_body, response_truncated, content_encoding, error, kind, \
     representation, match_key, ordinal, credential, upstream";

pub(super) const EVENT_COLUMNS: &str = "v.ack, v.position, v.sender_rel, v.sender_href, v.link_rel, \
     v.link_href, v.link_title, v.in_rel, v.in_href, v.type, v.status, v.reason, v.embedded";

pub(super) fn event_from_row(r: &Row<'_>, at: usize) -> rusqlite::Result<EventRow> {
    Ok(EventRow {
        ack: r.get(at)?,
        position: r.get(at + 1)?,
        sender_rel: r.get(at + 2)?,
        sender_href: r.get(at + 3)?,
        link_rel: r.get(at + 4)?,
        link_href: r.get(at + 5)?,
        link_title: r.get(at + 6)?,
        in_rel: r.get(at + 7)?,
        in_href: r.get(at + 8)?,
        event_type: r.get(at + 9)?,
        status: r.get(at + 10)?,
        reason: r.get(at + 11)?,
        embedded: r.get(at + 12)?,
    })
}

fn bad(col: usize, what: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        col,
        rusqlite::types::Type::Text,
        format!("unreadable {what}").into(),
    )
}

pub(super) fn exchange_from_row(r: &Row<'_>) -> rusqlite::Result<Exchange> {
    let req_headers: String = r.get(8)?;
    let resp_headers: String = r.get(12)?;
    let repr: String = r.get(18)?;
    let kind: String = r.get(17)?;
    let key: String = r.get(19)?;
    let mut ex = Exchange {
        id: r.get(0)?,
        seq: r.get::<_, i64>(1)? as u64,
        started_us: r.get(2)?,
        duration_us: r.get(3)?,
        method: r.get(4)?,
        path: r.get(5)?,
        query: r.get(6)?,
        http_version: r.get(7)?,
        request_headers: HeaderList::from_json(&req_headers)
            .ok_or_else(|| bad(8, "request headers"))?,
        request_body: r.get(9)?,
        request_truncated: r.get(10)?,
        status: r.get(11)?,
        response_headers: HeaderList::from_json(&resp_headers)
            .ok_or_else(|| bad(12, "response headers"))?,
        response_body: r.get(13)?,
        response_truncated: r.get(14)?,
        content_encoding: r.get(15)?,
        error: r.get(16)?,
        kind: ResourceKind::from_rel(&kind),
        representation: Representation::parse(&repr).ok_or_else(|| bad(18, "representation"))?,
        match_key: MatchKey::default(),
        ordinal: r.get(20)?,
        credential: r.get(21)?,
        upstream: r.get(22)?,
        events: Vec::new(),
    };
    // A key written by hand (SQL) that does not parse is computed again, with the defaults.
    ex.match_key = MatchKey::parse(&key)
        .unwrap_or_else(|| KeyRequest::of_exchange(&ex).key(&KeyOptions::default()));
    Ok(ex)
}
