//! Ordinals: how many earlier exchanges of the session share a row's match key, worked
//! out by the writer as rows arrive, in memory that stays bounded however long it records.
//!
//! Counting in SQL needs an index on the key, and that index cost a third of the writer's
//! rows/s (schema 2 dropped it). So the writer keeps, per key, the count of its rows and a
//! short window of its latest seqs. Two limits keep that small:
//! - at most [`MAX_KEYS`] keys are held. The events feed gives every P-GET a key of its
//!   own (its `ack`), so a long recording meets keys without end: holding them all grew
//!   record by about 200 bytes per exchange. When the map is full, its counts go to a
//!   temporary table (in a temporary file that SQLite deletes; never in the recording),
//!   and a key that comes back is looked up there. A fixed-size Bloom filter of the moved
//!   keys spares that lookup for a key never seen before, which is most of them;
//! - the window holds a key's last [`WINDOW`] seqs, which is what a row that arrives late
//!   (a held P-GET that finished after later requests of its key) needs to find the rows
//!   it goes before. One later than that asks the file, through its (session, seq) index.

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashMap};
use rusqlite::{Connection, OptionalExtension, params};

/// Keys held in memory before their counts move to the temporary table: 7/8 of a power of
/// two, so the hash table is full when it spills rather than just grown. With events-feed
/// keys of ~80 bytes that is about 5 MB, and the filter and the temporary table's page
/// cache add 3 MB.
const MAX_KEYS: usize = 28_672;
/// Bits of the filter of spilled keys (1 MiB). With 4 probes a key never spilled is looked
/// up in vain for about 1 in 500 after 500 000 spilled keys, 1 in 7 after 2 000 000.
const FILTER_BITS: usize = 1 << 23;
/// Latest seqs kept per key. 32 clients polling one resource finish up to a few dozen
/// exchanges out of order.
const WINDOW: usize = 64;

/// The ordinals of one session being written. The temporary table is the connection's,
/// so an `Ordinals` belongs with one writer connection.
#[derive(Debug)]
pub(super) struct Ordinals {
    keys: HashMap<Box<str>, KeyRows>,
    /// Once counts were moved to the temporary table: which keys may be there.
    spilled: Option<Spilled>,
    max_keys: usize,
    window: usize,
}

/// One key's rows so far.
#[derive(Debug)]
struct KeyRows {
    count: u32,
    /// Every row of the key whose seq is at least `from`, in seq order; rows below `from`
    /// are only counted.
    window: Vec<u64>,
    from: u64,
}

impl KeyRows {
    fn new() -> Self {
        KeyRows {
            count: 0,
            window: Vec::with_capacity(1),
            from: 0,
        }
    }

    /// As read back from the temporary table or the file: counted, seqs unknown.
    fn counted(count: u32, last_seq: u64) -> Self {
        KeyRows {
            count,
            window: Vec::new(),
            from: last_seq + 1,
        }
    }

    fn last_seq(&self) -> u64 {
        self.window
            .last()
            .copied()
            .unwrap_or(self.from.saturating_sub(1))
    }
}

/// A row's place: its ordinal, and the seqs of its key's rows after it, whose ordinals go
/// up by one (none, unless it arrived late).
pub(super) type Taken = (u32, Vec<u64>);

impl Ordinals {
    /// A session with no rows yet. Temporary tables go to a file, not memory (the bundled
    /// SQLite keeps them in memory by default), so the spilled counts are bounded by the
    /// temporary database's page cache; this must run outside a transaction, and it drops
    /// the connection's temporary tables, so one `Ordinals` per connection.
    pub(super) fn new(conn: &Connection) -> rusqlite::Result<Self> {
        Self::with_limits(conn, MAX_KEYS, WINDOW)
    }

    /// With other bounds than the defaults (tests reach the spill and the window's edge
    /// with a few rows).
    pub(super) fn with_limits(
        conn: &Connection,
        max_keys: usize,
        window: usize,
    ) -> rusqlite::Result<Self> {
        conn.execute_batch("PRAGMA temp_store = FILE;")?;
        Ok(Ordinals {
            keys: HashMap::new(),
            spilled: None,
            max_keys,
            window,
        })
    }

    /// The rows of `session_id` already in the file (a session appended to), and the
    /// highest seq among them (0: none).
    pub(super) fn load(conn: &Connection, session_id: i64) -> rusqlite::Result<(Self, u64)> {
        let mut ordinals = Self::new(conn)?;
        let last_seq = ordinals.reload(conn, session_id)?;
        Ok((ordinals, last_seq))
    }

    /// Forget what is held and count the session's rows in the file again (after a batch
    /// was rolled back, the counts in memory ran ahead of the file). Returns the highest
    /// seq among them (0: none), which the same read finds.
    pub(super) fn reload(&mut self, conn: &Connection, session_id: i64) -> rusqlite::Result<u64> {
        self.keys.clear();
        // Whether or not a rolled-back batch had created it.
        conn.execute_batch("DROP TABLE IF EXISTS temp.ucwa_ordinals;")?;
        self.spilled = None;
        let mut stmt = conn.prepare(
            "SELECT match_key, count(*), max(seq) FROM exchanges WHERE session_id = ?1
             GROUP BY match_key",
        )?;
        let mut rows = stmt.query([session_id])?;
        let mut last_seq = 0;
        while let Some(row) = rows.next()? {
            if self.keys.len() >= self.max_keys {
                self.spill_or_grow(conn);
            }
            let key: Box<str> = row.get_ref(0)?.as_str()?.into();
            let counted = KeyRows::counted(row.get(1)?, row.get::<_, i64>(2)? as u64);
            last_seq = last_seq.max(counted.last_seq());
            self.keys.insert(key, counted);
        }
        Ok(last_seq)
    }

    /// Place a row of `key` at `seq`, to be inserted next through `conn` (inside the
    /// writer's transaction, so a rollback takes the spilled counts back too).
    pub(super) fn take(
        &mut self,
        conn: &Connection,
        session_id: i64,
        key: &str,
        seq: u64,
    ) -> rusqlite::Result<Taken> {
        if !self.keys.contains_key(key) {
            let rows = match &self.spilled {
                Some(filter) if filter.may_hold(key) => spilled(conn, key)?,
                _ => None,
            };
            if self.keys.len() >= self.max_keys {
                self.spill_or_grow(conn);
            }
            self.keys
                .insert(key.into(), rows.unwrap_or_else(KeyRows::new));
        }
        let rows = self.keys.get_mut(key).expect("held just above");
        let later = if seq >= rows.from {
            let at = rows.window.partition_point(|&s| s < seq);
            let later = rows.window[at..].to_vec();
            rows.window.insert(at, seq);
            if rows.window.len() > self.window {
                let drop = rows.window.len() - self.window;
                rows.from = rows.window[drop - 1] + 1;
                rows.window.drain(..drop);
            }
            later
        } else {
            // Later than the window reaches back: the file has the rows after it.
            later_in_file(conn, session_id, key, seq)?
        };
        let ordinal = rows.count.saturating_sub(later.len() as u32);
        rows.count += 1;
        Ok((ordinal, later))
    }

    /// Move every held count to the temporary table and empty the map (its allocation is
    /// kept: it is the bound). If that fails (no writable temporary directory), say so and
    /// hold more keys instead: memory grows, but no exchange is lost for a count.
    fn spill_or_grow(&mut self, conn: &Connection) {
        match self.spill(conn) {
            Ok(()) => {
                let filter = self.spilled.get_or_insert_with(Spilled::new);
                for key in self.keys.keys() {
                    filter.insert(key);
                }
                self.keys.clear();
            }
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    held = self.keys.len(),
                    "cannot move match-key counts to a temporary table; holding them in memory"
                );
                self.max_keys = self.max_keys.saturating_mul(2);
            }
        }
    }

    /// In key order, so that consecutive rows go to the same pages of the table. Rows
    /// written by a spill that then fails stay in the table, harmlessly: a key held in the
    /// map is never looked up there.
    fn spill(&self, conn: &Connection) -> rusqlite::Result<()> {
        conn.execute_batch(
            "CREATE TEMP TABLE IF NOT EXISTS ucwa_ordinals (
                key TEXT PRIMARY KEY, count INTEGER NOT NULL, last_seq INTEGER NOT NULL
             ) WITHOUT ROWID;",
        )?;
        let mut put = conn.prepare_cached(
            "INSERT OR REPLACE INTO temp.ucwa_ordinals (key, count, last_seq) VALUES (?1, ?2, ?3)",
        )?;
        let mut counted: Vec<(&str, &KeyRows)> = self
            .keys
            .iter()
            .filter(|(_, rows)| rows.count > 0)
            .map(|(key, rows)| (&**key, rows))
            .collect();
        counted.sort_unstable_by_key(|&(key, _)| key);
        for (key, rows) in counted {
            put.execute(params![key, rows.count, rows.last_seq() as i64])?;
        }
        Ok(())
    }
}

/// A Bloom filter of the spilled keys, of fixed size: it answers "maybe" more often as
/// more keys are spilled, never "no" for one that was.
#[derive(Debug)]
struct Spilled {
    bits: Vec<u64>,
    hasher: DefaultHashBuilder,
}

impl Spilled {
    fn new() -> Self {
        Spilled {
            bits: vec![0; FILTER_BITS / 64],
            hasher: DefaultHashBuilder::default(),
        }
    }

    /// Four bit positions from one 64-bit hash (double hashing).
    fn probes(&self, key: &str) -> [usize; 4] {
        let h = self.hasher.hash_one(key);
        let (a, b) = (h as u32, (h >> 32) as u32 | 1);
        std::array::from_fn(|i| a.wrapping_add(b.wrapping_mul(i as u32)) as usize % FILTER_BITS)
    }

    fn insert(&mut self, key: &str) {
        for p in self.probes(key) {
            self.bits[p / 64] |= 1 << (p % 64);
        }
    }

    fn may_hold(&self, key: &str) -> bool {
        self.probes(key)
            .iter()
            .all(|&p| self.bits[p / 64] & (1 << (p % 64)) != 0)
    }
}

/// A key's count from the temporary table, if it was spilled.
fn spilled(conn: &Connection, key: &str) -> rusqlite::Result<Option<KeyRows>> {
    conn.prepare_cached("SELECT count, last_seq FROM temp.ucwa_ordinals WHERE key = ?1")?
        .query_row([key], |r| {
            Ok(KeyRows::counted(r.get(0)?, r.get::<_, i64>(1)? as u64))
        })
        .optional()
}

/// The seqs of `key`'s rows after `seq`, read from the file: the (session, seq) index
/// bounds the scan to the rows recorded since.
fn later_in_file(
    conn: &Connection,
    session_id: i64,
    key: &str,
    seq: u64,
) -> rusqlite::Result<Vec<u64>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq FROM exchanges WHERE session_id = ?1 AND seq > ?2 AND match_key = ?3
         ORDER BY seq",
    )?;
    let seqs = stmt.query_map(params![session_id, seq as i64, key], |r| r.get::<_, i64>(0))?;
    seqs.map(|s| s.map(|s| s as u64)).collect()
}

/// Check every row's ordinal against its rank among the rows of its key, the rows given
/// as (seq, key, ordinal) in seq order; returns how many rows each key has. Shared with the
/// writer's tests.
#[cfg(test)]
pub(super) fn assert_ranks<K: AsRef<str>>(
    rows: &[(u64, K, u32)],
) -> std::collections::HashMap<&str, u32> {
    let mut seen = std::collections::HashMap::<&str, u32>::new();
    for (seq, key, ordinal) in rows {
        let key = key.as_ref();
        let want = seen.entry(key).or_default();
        assert_eq!(ordinal, want, "seq {seq} of key {key}");
        *want += 1;
    }
    seen
}

/// The first column of every row `sql` returns. Shared with the writer's tests.
#[cfg(test)]
pub(super) fn column<T: rusqlite::types::FromSql>(conn: &Connection, sql: &str) -> Vec<T> {
    conn.prepare(sql)
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The columns ordinals read, in a database of their own.
    fn table() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE exchanges (session_id INTEGER NOT NULL, seq INTEGER NOT NULL,
                match_key TEXT NOT NULL, ordinal INTEGER NOT NULL, UNIQUE (session_id, seq));",
        )
        .unwrap();
        conn
    }

    /// What the writer does with a row: place it, shift the rows after it, insert it.
    fn write(conn: &Connection, ords: &mut Ordinals, session: i64, key: &str, seq: u64) {
        let (ordinal, later) = ords.take(conn, session, key, seq).unwrap();
        for after in later {
            conn.execute(
                "UPDATE exchanges SET ordinal = ordinal + 1 WHERE session_id = ?1 AND seq = ?2",
                params![session, after as i64],
            )
            .unwrap();
        }
        conn.execute(
            "INSERT INTO exchanges (session_id, seq, match_key, ordinal) VALUES (?1, ?2, ?3, ?4)",
            params![session, seq as i64, key, ordinal],
        )
        .unwrap();
    }

    /// Every row's ordinal against its rank among the rows of its key, and the rows.
    fn check(conn: &Connection, session: i64) -> usize {
        let rows: Vec<(u64, String, u32)> = conn
            .prepare(
                "SELECT seq, match_key, ordinal FROM exchanges WHERE session_id = ?1 ORDER BY seq",
            )
            .unwrap()
            .query_map([session], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get(1)?, r.get(2)?))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_ranks(&rows);
        rows.len()
    }

    #[test]
    fn counts_survive_a_spill_and_a_late_row_beyond_the_window_asks_the_file() {
        let conn = table();
        let mut ords = Ordinals::with_limits(&conn, 2, 2).unwrap();
        // Key a at 2, 3, 4, 5: the window keeps 4 and 5.
        for seq in 2..=5 {
            write(&conn, &mut ords, 1, "a", seq);
        }
        // Two new keys: the map (2 keys) spills when the second arrives.
        write(&conn, &mut ords, 1, "b", 6);
        write(&conn, &mut ords, 1, "c", 7);
        assert!(ords.spilled.is_some());
        assert!(!ords.keys.contains_key("a"));
        // a comes back from the temporary table, counted: 4 rows, the last at 5.
        write(&conn, &mut ords, 1, "a", 8);
        // A row of a that started before all of them finishes now: below the window, so
        // the file says which rows it goes before.
        write(&conn, &mut ords, 1, "a", 1);
        // c stayed held: its next row is counted in memory.
        write(&conn, &mut ords, 1, "c", 9);
        assert_eq!(check(&conn, 1), 9);
        let a: Vec<u32> = column(
            &conn,
            "SELECT ordinal FROM exchanges WHERE match_key = 'a' ORDER BY seq",
        );
        assert_eq!(a, [0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn a_reload_counts_from_the_file_and_forgets_the_spilled_table() {
        let conn = table();
        let mut ords = Ordinals::with_limits(&conn, 1, 4).unwrap();
        for (seq, key) in [(1, "a"), (2, "b"), (3, "a"), (4, "c")] {
            write(&conn, &mut ords, 1, key, seq);
        }
        assert!(ords.spilled.is_some());
        // Another session's rows do not count.
        let mut other = Ordinals::with_limits(&conn, 10, 4).unwrap();
        write(&conn, &mut other, 2, "a", 1);
        let mut ords = Ordinals::with_limits(&conn, 2, 4).unwrap();
        assert_eq!(
            ords.reload(&conn, 1).unwrap(),
            4,
            "the session's highest seq"
        );
        assert!(ords.spilled.is_some(), "three keys do not fit in two");
        for (seq, key) in [(6, "a"), (5, "c"), (7, "b"), (8, "d")] {
            write(&conn, &mut ords, 1, key, seq);
        }
        assert_eq!(check(&conn, 1), 8);
        assert_eq!(check(&conn, 2), 1);
        // Last: a new `Ordinals` drops the connection's temporary schema (`temp_store`).
        assert_eq!(Ordinals::load(&conn, 2).unwrap().1, 1);
        assert_eq!(Ordinals::load(&conn, 3).unwrap().1, 0, "no rows");
    }

    #[test]
    fn held_keys_stay_within_the_bound() {
        let conn = table();
        let mut ords = Ordinals::with_limits(&conn, 100, 4).unwrap();
        for seq in 1..=1_000 {
            write(&conn, &mut ords, 1, &format!("GET /events?ack={seq}"), seq);
            assert!(ords.keys.len() <= 100);
        }
        for seq in 1_001..=1_100 {
            write(&conn, &mut ords, 1, "GET /me", seq);
            assert!(ords.keys["GET /me"].window.len() <= 4);
        }
        assert_eq!(check(&conn, 1), 1_100);
        let spilled: i64 = conn
            .query_row("SELECT count(*) FROM temp.ucwa_ordinals", [], |r| r.get(0))
            .unwrap();
        assert!(spilled >= 900, "{spilled}");
    }

    #[test]
    fn a_spill_that_cannot_be_written_holds_the_keys_instead() {
        let conn = table();
        let mut ords = Ordinals::with_limits(&conn, 2, 4).unwrap();
        // Something else took the table's name: the spill's INSERT fails.
        conn.execute_batch("CREATE TEMP VIEW ucwa_ordinals AS SELECT 1 AS key")
            .unwrap();
        for (seq, key) in [(1, "a"), (2, "b"), (3, "c"), (4, "a"), (5, "d"), (6, "b")] {
            write(&conn, &mut ords, 1, key, seq);
        }
        assert!(ords.spilled.is_none());
        assert_eq!(ords.keys.len(), 4);
        assert_eq!(ords.max_keys, 4);
        assert_eq!(check(&conn, 1), 6);
    }

    #[test]
    fn the_filter_holds_every_spilled_key_and_few_others() {
        let mut filter = Spilled::new();
        for n in 0..100_000 {
            filter.insert(&format!("GET /events?ack={n}"));
        }
        assert!((0..100_000).all(|n| filter.may_hold(&format!("GET /events?ack={n}"))));
        let false_hits = (100_000..200_000)
            .filter(|n| filter.may_hold(&format!("GET /events?ack={n}")))
            .count();
        // Expected about 1 in 200 000 at this load (4 probes, 8 Mi bits).
        assert!(false_hits < 100, "{false_hits}");
    }

    proptest! {
        /// Rows of a few keys arriving in any order, through a map of 1–3 keys and windows
        /// of 1–3 seqs: every ordinal ends as the row's rank among its key's rows.
        #[test]
        fn ordinals_are_ranks_whatever_the_order_and_limits(
            keys in proptest::collection::vec(0u8..5, 1..60),
            order in any::<proptest::sample::Index>(),
            swaps in proptest::collection::vec((any::<proptest::sample::Index>(), any::<proptest::sample::Index>()), 0..40),
            max_keys in 1usize..4,
            window in 1usize..4,
        ) {
            let conn = table();
            let mut ords = Ordinals::with_limits(&conn, max_keys, window).unwrap();
            let n = keys.len();
            let mut seqs: Vec<u64> = (1..=n as u64).collect();
            seqs.rotate_left(order.index(n));
            for (i, j) in swaps {
                seqs.swap(i.index(n), j.index(n));
            }
            for seq in seqs {
                let key = format!("k{}", keys[seq as usize - 1]);
                write(&conn, &mut ords, 1, &key, seq);
                prop_assert!(ords.keys.len() <= max_keys);
            }
            prop_assert_eq!(check(&conn, 1), n);
        }
    }
}
