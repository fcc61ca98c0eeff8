//! Reading a session's exchanges as a stream: export, diff and anything else that walks a
//! whole session hold one page of exchanges at a time instead of every body of the session.
//!
//! The cursor pages by `seq` (keyset pagination on the `(session_id, seq)` unique index): each
//! page is one short query for [`PAGE`] exchanges after the last `seq` read, and one for their
//! events. No statement stays open between pages, so the cursor borrows nothing but the
//! connection, and a page costs the same wherever it is in the session.

use std::collections::VecDeque;

use rusqlite::params;

use super::StoreError;
use super::read::{EVENT_COLUMNS, EXCHANGE_COLUMNS, Recording, event_from_row, exchange_from_row};
use crate::recording::{Exchange, SessionInfo};

/// Exchanges read per query: enough to make the per-query cost vanish, few enough that a
/// page of large bodies stays small.
const PAGE: usize = 256;

/// A session's exchanges in `seq` order, with their events, read a page at a time
/// ([`Recording::stream_exchanges`]).
#[derive(Debug)]
pub struct ExchangeStream<'r> {
    rec: &'r Recording,
    session_id: i64,
    /// The last `seq` read (pages start after it).
    after: i64,
    page: VecDeque<Exchange>,
    /// Exchanges read per query ([`PAGE`], or 1 for a single look-up).
    page_size: usize,
    done: bool,
}

impl<'r> ExchangeStream<'r> {
    pub(super) fn new(rec: &'r Recording, session: &SessionInfo) -> Self {
        ExchangeStream {
            rec,
            session_id: session.id,
            after: i64::MIN,
            page: VecDeque::new(),
            page_size: PAGE,
            done: false,
        }
    }

    /// Read the next page; false when the session holds no more.
    fn fill(&mut self) -> Result<bool, StoreError> {
        let conn = self.rec.conn();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {EXCHANGE_COLUMNS} FROM exchanges
                 WHERE session_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
            ))
            .map_err(|e| self.rec.sql(e))?;
        let rows = stmt
            .query_map(
                params![self.session_id, self.after, self.page_size as i64],
                exchange_from_row,
            )
            .map_err(|e| self.rec.sql(e))?;
        for row in rows {
            self.page
                .push_back(row.map_err(|e| self.rec.corrupt_or_sql(e))?);
        }
        let (Some(first), Some(last)) = (self.page.front(), self.page.back()) else {
            return Ok(false);
        };
        let (from, to) = (first.seq as i64, last.seq as i64);
        self.after = to;
        // The events of the page's events-feed exchanges, by the same index range.
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT x.seq, {EVENT_COLUMNS} FROM exchanges x
                 JOIN events v ON v.session_id = x.session_id AND v.exchange_id = x.id
                 WHERE x.session_id = ?1 AND x.seq BETWEEN ?2 AND ?3
                 ORDER BY x.seq, v.position"
            ))
            .map_err(|e| self.rec.sql(e))?;
        let rows = stmt
            .query_map(params![self.session_id, from, to], |r| {
                Ok((r.get::<_, i64>(0)? as u64, event_from_row(r, 1)?))
            })
            .map_err(|e| self.rec.sql(e))?;
        // Both lists are in seq order: walk them together.
        let mut at = 0;
        for row in rows {
            let (seq, event) = row.map_err(|e| self.rec.sql(e))?;
            while at < self.page.len() && self.page[at].seq < seq {
                at += 1;
            }
            if let Some(ex) = self.page.get_mut(at).filter(|ex| ex.seq == seq) {
                ex.events.push(event);
            }
        }
        Ok(true)
    }
}

impl Iterator for ExchangeStream<'_> {
    type Item = Result<Exchange, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.page.is_empty() && !self.done {
            match self.fill() {
                Ok(true) => {}
                Ok(false) => self.done = true,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        self.page.pop_front().map(Ok)
    }
}

impl Recording {
    /// Every exchange of a session in `seq` order, with its events, read a page at a time:
    /// what [`Recording::exchanges`] returns, without holding the whole session in memory.
    pub fn stream_exchanges(&self, session: &SessionInfo) -> ExchangeStream<'_> {
        ExchangeStream::new(self, session)
    }

    /// One exchange of a session by its `seq`, with its events; None when there is none.
    pub fn exchange_by_seq(
        &self,
        session: &SessionInfo,
        seq: u64,
    ) -> Result<Option<Exchange>, StoreError> {
        let mut stream = ExchangeStream::new(self, session);
        stream.after = seq as i64 - 1;
        stream.page_size = 1;
        match stream.next() {
            Some(Ok(ex)) if ex.seq == seq => Ok(Some(ex)),
            Some(Err(e)) => Err(e),
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::{EventRow, MatchKey};
    use crate::store::{NewSession, StoreWriter};

    fn exchange(seq: u64, events: usize) -> Exchange {
        Exchange {
            seq,
            method: "GET".into(),
            path: format!("/p/{seq}"),
            http_version: "HTTP/1.1".into(),
            status: Some(200),
            response_body: vec![b'x'; seq as usize % 7],
            match_key: MatchKey {
                method: "GET".into(),
                path: format!("/p/{}", seq % 3),
                ..MatchKey::default()
            },
            events: (0..events)
                .map(|i| EventRow {
                    ack: Some(seq as i64),
                    position: i as u32,
                    link_rel: format!("rel{seq}-{i}"),
                    event_type: "added".into(),
                    ..EventRow::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    /// Pages of the stream give exactly what the whole-session read gives, events included,
    /// whatever order the exchanges were written in.
    #[tokio::test]
    async fn the_stream_reads_what_the_whole_session_read_gives() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.sqlite");
        let n = PAGE as u64 * 2 + 17;
        let writer = StoreWriter::create(&path, &NewSession::new("s", "https://fe1")).unwrap();
        let sink = writer.sink();
        // Written out of order, so that row ids and seqs disagree.
        for seq in (1..=n).rev() {
            sink.submit(exchange(seq, (seq % 4) as usize));
        }
        drop(sink);
        writer.finish().await.unwrap();
        // A second session in the same file must not leak into the first.
        let writer = StoreWriter::create(&path, &NewSession::new("t", "https://fe1")).unwrap();
        writer.sink().submit(exchange(1, 3));
        writer.finish().await.unwrap();

        let rec = Recording::open(&path).unwrap();
        let s = rec.session(Some("s")).unwrap();
        let whole = rec.exchanges(&s).unwrap();
        let streamed: Vec<Exchange> = rec.stream_exchanges(&s).map(Result::unwrap).collect();
        assert_eq!(streamed.len(), n as usize);
        assert_eq!(streamed, whole);
        assert_eq!(streamed[2].events.len(), 3);
        assert_eq!(
            rec.exchange_by_seq(&s, 300).unwrap().as_ref(),
            Some(&whole[299])
        );
        assert_eq!(rec.exchange_by_seq(&s, n + 1).unwrap(), None);
        let t = rec.session(Some("t")).unwrap();
        assert_eq!(rec.stream_exchanges(&t).count(), 1);
    }
}
