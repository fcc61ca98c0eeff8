//! The recording writer alone (`cargo bench --bench writer`): exchanges/s into SQLite with
//! 2 KB response bodies, from submit to the last row on disk (`StoreWriter::finish`).
//!
//! Baseline measured in the same run: the same rows inserted straight into the same table
//! by one prepared statement in transactions of 256 (what SQLite itself costs, with no
//! channel, ordinals or events). Two shapes of session:
//! - varied keys: 1 000 distinct requests, as a real session has;
//! - one key: every request identical (a client polling one resource), where an ordinal
//!   that is counted in SQL grows with the session;
//! - every key distinct (an events feed, whose every P-GET names its own `ack`): more keys
//!   than the writer holds in memory, so it moves their counts to a temporary table and
//!   looks each new key up there (`src/store/ordinals.rs`).
//!
//! Target (issue 10): the writer alone ≥ 50 000 exchanges/s. Medians of rounds; no
//! assertions beyond the row count: a report.

use std::path::Path;
use std::time::Instant;

use rusqlite::params;
use ucwa_replay::recording::{Exchange, HeaderList, KeyOptions, KeyRequest};
use ucwa_replay::store::{NewSession, Recording, StoreWriter};
use ucwa_replay::ucwa::Representation;

mod common;
use common::{machine, median, new_session, verdict};

const VARIED: u64 = 50_000;
const SAME: u64 = 10_000;
/// Over three times the keys the writer holds before it spills them.
const DISTINCT: u64 = 100_000;
const ROUNDS: usize = 3;
const BODY: usize = 2048;

/// A participantMessaging GET with real-looking headers and a 2 KB JSON body; `distinct`
/// different requests cycle.
fn exchange(seq: u64, distinct: u64) -> Exchange {
    let n = seq % distinct;
    let path = format!(
        "/ucwa/oauth/v1/applications/1/communication/conversations/{}/participants/user{}/messaging",
        n / 10,
        n % 10
    );
    let key = KeyRequest::new("GET", &path)
        .accept(Some("application/json"))
        .key(&KeyOptions::default());
    let mut request_headers = HeaderList::default();
    for (n, v) in [
        ("host", "fe1.contoso.com"),
        ("accept", "application/json"),
        ("authorization", "Bearer cwt=REDACTED-1"),
        ("user-agent", "UCWA Samples/1.0"),
        ("x-ms-requires-min-resource-version", "2"),
        ("x-forwarded-for", "127.0.0.1"),
    ] {
        request_headers.push(n, v);
    }
    let mut response_headers = HeaderList::default();
    for (n, v) in [
        ("content-type", "application/json; charset=utf-8"),
        ("cache-control", "no-cache"),
        ("x-ms-server-fqdn", "FE1.contoso.com"),
        ("x-ms-correlation-id", "2147520912"),
        ("date", "Tue, 27 Sep 2016 00:00:00 GMT"),
    ] {
        response_headers.push(n, v);
    }
    let mut body = format!(
        r#"{{"rel":"participantMessaging","_links":{{"self":{{"href":"{path}"}}}},"text":""#
    );
    while body.len() < BODY - 2 {
        body.push_str("lorem ipsum dolor sit amet ");
    }
    body.truncate(BODY - 2);
    body.push_str("\"}");
    Exchange {
        seq,
        started_us: 1_474_932_027_000_000 + seq as i64,
        duration_us: 800,
        method: "GET".into(),
        path,
        http_version: "HTTP/1.1".into(),
        request_headers,
        status: Some(200),
        response_headers,
        response_body: body.into_bytes(),
        kind: "participantMessaging".into(),
        representation: Representation::Json,
        match_key: key,
        credential: Some("REDACTED-1".into()),
        upstream: Some("https://fe1.contoso.com".into()),
        ..Exchange::default()
    }
}

/// The writer: create, submit every exchange, finish. Exchanges/s.
fn through_writer(rt: &tokio::runtime::Runtime, db: &Path, all: Vec<Exchange>) -> f64 {
    let n = all.len();
    let t = Instant::now();
    rt.block_on(async {
        let writer = StoreWriter::create(db, &new_session("w")).unwrap();
        let sink = writer.sink();
        for ex in all {
            sink.submit(ex);
        }
        drop(sink);
        let stats = writer.finish().await.unwrap();
        assert_eq!(stats.exchanges as usize, n);
    });
    n as f64 / t.elapsed().as_secs_f64()
}

/// The floor: the same rows by one prepared INSERT, 256 to a transaction. Exchanges/s.
fn straight_insert(rt: &tokio::runtime::Runtime, db: &Path, all: Vec<Exchange>) -> f64 {
    let n = all.len();
    // The same file as the writer's (schema, page size), made by the writer with no rows,
    // then written with the same journal settings by hand.
    rt.block_on(async {
        StoreWriter::create(db, &NewSession::new("empty", "https://fe1.contoso.com"))
            .unwrap()
            .finish()
            .await
            .unwrap();
    });
    let t = Instant::now();
    let mut conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
        .unwrap();
    conn.execute(
        "INSERT INTO sessions (name, upstream, started_at, tool_version) VALUES ('raw', 'x', 'now', 'x')",
        [],
    )
    .unwrap();
    let session = conn.last_insert_rowid();
    for chunk in all.chunks(256) {
        let tx = conn.transaction().unwrap();
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO exchanges (session_id, seq, started_us, duration_us, method, path,
                    query, http_version, request_headers, request_body, request_truncated, status,
                    response_headers, response_body, response_truncated, content_encoding, error,
                    kind, representation, match_key, ordinal, credential, upstream)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                    ?17, ?18, ?19, ?20, ?21, ?22, ?23)",
                )
                .unwrap();
            for ex in chunk {
                insert
                    .execute(params![
                        session,
                        ex.seq as i64,
                        ex.started_us,
                        ex.duration_us,
                        ex.method,
                        ex.path,
                        ex.query,
                        ex.http_version,
                        ex.request_headers.to_json(),
                        ex.request_body,
                        ex.request_truncated,
                        ex.status,
                        ex.response_headers.to_json(),
                        ex.response_body,
                        ex.response_truncated,
                        ex.content_encoding,
                        ex.error,
                        ex.kind.as_str(),
                        ex.representation.as_str(),
                        ex.match_key.to_string(),
                        0,
                        ex.credential,
                        ex.upstream,
                    ])
                    .unwrap();
            }
        }
        tx.commit().unwrap();
    }
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    n as f64 / t.elapsed().as_secs_f64()
}

/// Ordinals as stored: for every key, 0, 1, 2 … in seq order.
fn check_ordinals(db: &Path) {
    let rec = Recording::open(db).unwrap();
    let s = rec.session(Some("w")).unwrap();
    let all = rec.exchanges(&s).unwrap();
    let mut seen = std::collections::HashMap::new();
    for ex in &all {
        let next = seen.entry(ex.match_key.to_string()).or_insert(0u32);
        assert_eq!(ex.ordinal, *next, "ordinal of seq {}", ex.seq);
        *next += 1;
    }
}

fn case(rt: &tokio::runtime::Runtime, dir: &Path, name: &str, n: u64, distinct: u64) {
    let mut writer = vec![];
    let mut floor = vec![];
    for round in 0..ROUNDS {
        let make = || {
            (1..=n)
                .map(|seq| exchange(seq, distinct))
                .collect::<Vec<_>>()
        };
        let raw = dir.join(format!("raw-{name}-{round}.sqlite"));
        floor.push(straight_insert(rt, &raw, make()));
        let db = dir.join(format!("writer-{name}-{round}.sqlite"));
        writer.push(through_writer(rt, &db, make()));
        if round == 0 {
            check_ordinals(&db);
        }
        let _ = std::fs::remove_file(&raw);
        let _ = std::fs::remove_file(&db);
    }
    let (writer, floor) = (median(writer), median(floor));
    println!(
        "{name}: {n} exchanges, 2 KB bodies, {distinct} distinct requests ({ROUNDS} rounds, medians)"
    );
    println!("  baseline: straight INSERT         {floor:>10.0} exchanges/s");
    println!(
        "  store writer (submit → finish)    {writer:>10.0} exchanges/s  ratio {:.2}",
        writer / floor
    );
    println!(
        "  target ≥ 50 000 exchanges/s -> {}",
        verdict(writer >= 50_000.0)
    );
}

/// `cargo bench --bench writer [-- WORD]`: the cases whose name contains WORD (all without).
fn main() {
    println!("writer bench on {}", machine());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let only = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_default();
    let t = Instant::now();
    for (name, n, distinct) in [
        ("varied keys", VARIED, 1_000),
        ("one key", SAME, 1),
        ("every key distinct", DISTINCT, DISTINCT),
    ] {
        if name.contains(&only) {
            case(&rt, dir.path(), name, n, distinct);
        }
    }
    println!("({:.0} s in all)", t.elapsed().as_secs_f64());
}
