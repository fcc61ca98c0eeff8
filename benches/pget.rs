//! 1 000 held P-GETs through `record` (`cargo bench --bench pget`).
//!
//! A small upstream in this process answers participantMessaging GETs at once and holds
//! every events-feed request until released. The release binary runs `record` in front of
//! it as a child. Measured:
//! - req/s of other traffic (32 connections, keep-alive GETs) while 1 000 P-GETs are held,
//!   against the same load with none held (baseline, same run);
//! - resident memory per held P-GET: the child's `VmRSS` with 1 000 held minus before;
//! - every exchange answered is stored (counted in the recording after SIGTERM).
//!
//! A report, no assertions beyond the count.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http::{Response, header};
use tokio::io::AsyncWriteExt;
use ucwa_replay::body::full;
use ucwa_replay::serve::{CancellationToken, serve};
use ucwa_replay::store::Recording;

mod common;
use common::{Server, get_request, load, machine, median, read_response};

const HELD: usize = 1_000;
const CONNS: usize = 32;
/// Seconds of each load round (`BENCH_LOAD_SECS`, default 3).
fn load_time() -> Duration {
    Duration::from_secs(
        std::env::var("BENCH_LOAD_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3),
    )
}
const ROUNDS: usize = 3;
const PM_PATH: &str =
    "/ucwa/oauth/v1/applications/1/communication/conversations/7/participants/bob/messaging";

const PM_BODY: &str = r#"{"rel":"participantMessaging","_links":{"self":{"href":"/ucwa/oauth/v1/applications/1/communication/conversations/7/participants/bob/messaging"},"participant":{"href":"/ucwa/oauth/v1/applications/1/communication/conversations/7/participants/bob"}}}"#;

/// The upstream: held P-GETs are counted in `held` and answered when `release` fires.
async fn upstream(held: Arc<AtomicUsize>, release: CancellationToken) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    let handler = move |req: http::Request<hyper::body::Incoming>, _conn| {
        let held = held.clone();
        let release = release.clone();
        async move {
            if req.uri().path().ends_with("/events") {
                held.fetch_add(1, Ordering::SeqCst);
                tokio::select! {
                    _ = release.cancelled() => {}
                    _ = tokio::time::sleep(Duration::from_secs(170)) => {}
                }
                held.fetch_sub(1, Ordering::SeqCst);
                let next = r#"{"_links":{"self":{"href":"/ucwa/oauth/v1/applications/1/events?ack=2"},"next":{"href":"/ucwa/oauth/v1/applications/1/events?ack=2"}},"sender":[]}"#;
                return Response::builder()
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(full(next))
                    .unwrap();
            }
            Response::builder()
                .header(header::CONTENT_TYPE, "application/json")
                .body(full(PM_BODY))
                .unwrap()
        }
    };
    tokio::spawn(serve(listener, None, handler, stop, Duration::from_secs(1)));
    url
}

fn main() {
    println!("held P-GETs bench on {}", machine());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("pget.sqlite");
    let held = Arc::new(AtomicUsize::new(0));
    let release = CancellationToken::new();
    let up = rt.block_on(upstream(held.clone(), release.clone()));
    let log = dir.path().join("record.log");
    let proxy = Server::start(
        &[
            "record",
            "--upstream",
            &up,
            "--listen",
            "127.0.0.1:0",
            "--db",
            db.to_str().unwrap(),
            "--session",
            "p",
        ],
        Some(&log),
    );
    eprintln!("record listening on {}", proxy.url);
    let request = get_request(proxy.addr, PM_PATH, "application/json");
    let mut answered = 0u64;
    rt.block_on(async {
        // Warm up, then the baseline: no P-GET held.
        answered += load(proxy.addr, request.clone(), CONNS, Duration::from_secs(1))
            .await
            .responses;
    });
    let mut without = vec![];
    for _ in 0..ROUNDS {
        let r = rt.block_on(load(proxy.addr, request.clone(), CONNS, load_time()));
        answered += r.responses;
        without.push(r.rate());
    }
    eprintln!("baseline load done");
    std::thread::sleep(Duration::from_millis(500));
    let rss_before = proxy.rss_mib();

    // Hold HELD P-GETs, each on its own connection.
    let addr = proxy.addr;
    let t = Instant::now();
    let holders: Vec<_> = (0..HELD)
        .map(|i| {
            rt.spawn(async move {
                let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
                let req = format!(
                    "GET /ucwa/oauth/v1/applications/1/events?ack={}&timeout=180 HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\n\r\n",
                    i + 1
                );
                s.write_all(req.as_bytes()).await.ok()?;
                let mut buf = Vec::new();
                tokio::time::timeout(Duration::from_secs(60), read_response(&mut s, &mut buf))
                    .await
                    .ok()
                    .flatten()
            })
        })
        .collect();
    while held.load(Ordering::SeqCst) < HELD && t.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let now_held = held.load(Ordering::SeqCst);
    eprintln!("{now_held} P-GETs held");
    std::thread::sleep(Duration::from_millis(500));
    let rss_held = proxy.rss_mib();
    let mut with = vec![];
    for _ in 0..ROUNDS {
        let r = rt.block_on(load(proxy.addr, request.clone(), CONNS, load_time()));
        eprintln!(
            "load with P-GETs held: {} responses, {} errors",
            r.responses, r.errors
        );
        answered += r.responses;
        with.push(r.rate());
    }
    let still_held = held.load(Ordering::SeqCst);
    release.cancel();
    let released = rt.block_on(async {
        let mut ok = 0u64;
        for h in holders {
            if let Ok(Some(())) = h.await {
                ok += 1;
            }
        }
        ok
    });
    eprintln!("{released} held P-GETs answered after the release");
    answered += released;
    let (without, with) = (median(without), median(with));
    println!(
        "{now_held} P-GETs held (of {HELD}; {still_held} still held after the load), {CONNS}-connection load of {} s × {ROUNDS} rounds (medians)",
        load_time().as_secs()
    );
    println!("  req/s, none held (baseline)   {without:>9.0}");
    println!(
        "  req/s, {HELD} held              {with:>9.0}  ratio {:.2}",
        with / without
    );
    let peak = proxy.peak_mib();
    println!(
        "  resident: {rss_before:.1} MB before, {rss_held:.1} MB held -> {:.1} KB per held P-GET (peak {peak:.1} MB)",
        (rss_held - rss_before) * 1024.0 / now_held.max(1) as f64
    );
    eprintln!("SIGTERM: the writer stores what is queued");
    let (status, exit) = proxy.terminate();
    let rec = Recording::open(&db).unwrap();
    let stored = rec.session(Some("p")).unwrap().exchanges;
    println!(
        "  answered {answered}, stored {stored} ({}), SIGTERM exit {:?} after {:.2} s",
        if stored >= answered {
            "nothing lost"
        } else {
            "LOST SOME"
        },
        status.code(),
        exit.as_secs_f64()
    );
}
