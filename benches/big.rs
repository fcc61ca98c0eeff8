//! The 100 000-exchange cases of issue 10 (`cargo bench --bench big`), each run as the
//! release binary in a child process whose peak resident memory (`VmHWM`) is polled from
//! `/proc/PID/status`:
//! - `replay` of a 100 000-exchange recording: time from start to the first response, and
//!   resident memory after it;
//! - `export --format har` of it, and `import` of the HAR that export wrote;
//! - `diff` of two 100 000-exchange sessions.
//!
//! Baselines measured in the same run: the same command on a 1 000-exchange recording
//! (for replay start-up and memory: the floor of starting the binary; for import, export
//! and diff time: ×100, so a ratio above 1 is worse than linear). The recordings are
//! generated once into `target/ucwa-bench/` and kept (delete it to regenerate).
//! `BENCH_ROUNDS=N` changes the number of rounds (default 3); `BENCH_ONLY=replay` runs only
//! the replay row; `UCWA_REPLAY_BIN=PATH` measures another build. A report, no assertions.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ucwa_replay::recording::Exchange;

mod common;
use common::{Server, exchange, get_status, machine, median, run_measured, verdict, write_session};

const BIG: u64 = 100_000;
const SMALL: u64 = 1_000;
/// Bump when the generated data changes.
const DATA_VERSION: u32 = 2;

/// [`exchange`] with the headers of a real client and server and a body padded to about
/// 0.5 KB (about the issue's recording: 153 MB for 100 000 exchanges).
fn padded(seq: u64, app: u32, variant: u32) -> Exchange {
    let mut ex = exchange(seq, app, variant);
    for (n, v) in [
        ("host", "fe1.contoso.com"),
        ("authorization", "Bearer cwt=REDACTED-1"),
        ("user-agent", "UCWA Samples/1.0 (Windows NT 10.0)"),
        ("x-ms-requires-min-resource-version", "2"),
        (
            "referer",
            "https://fe1.contoso.com/Autodiscover/XFrame/XFrame.html",
        ),
    ] {
        ex.request_headers.push(n, v);
    }
    for (n, v) in [
        ("cache-control", "no-cache"),
        ("x-ms-server-fqdn", "FE1.contoso.com"),
        ("x-ms-correlation-id", "2147520912"),
        ("client-request-id", "4f5d0c2a-1c9b-4d0e-9a53-0b0f6ad2c1e7"),
        ("date", "Tue, 27 Sep 2016 00:00:00 GMT"),
    ] {
        ex.response_headers.push(n, v);
    }
    let text = "Hello from the other side, this is a recorded instant message. ".repeat(3);
    let body = String::from_utf8(std::mem::take(&mut ex.response_body)).unwrap();
    ex.response_body = if let Some(head) = body.strip_suffix("</resource>") {
        format!(r#"{head}<property name="text">{text}</property></resource>"#)
    } else {
        let head = body.strip_suffix('}').unwrap();
        format!(r#"{head},"text":"{text}"}}"#)
    }
    .into_bytes();
    ex.credential = Some("REDACTED-1".into());
    ex.upstream = Some("https://fe1.contoso.com".into());
    ex
}

/// The generated recordings: `a` (replayed, exported, diffed) and `b` (diffed against
/// `a`), for `n` exchanges each.
fn recordings(rt: &tokio::runtime::Runtime, dir: &Path, n: u64) -> (PathBuf, PathBuf) {
    let a = dir.join(format!("a-{n}.sqlite"));
    let b = dir.join(format!("b-{n}.sqlite"));
    let done = dir.join(format!("done-{n}"));
    if !done.exists() {
        let t = Instant::now();
        for p in [&a, &b] {
            let _ = std::fs::remove_file(p);
        }
        rt.block_on(async {
            write_session(&a, "s", (1..=n).map(|seq| padded(seq, 105, 0))).await;
            write_session(&b, "s", (1..=n).map(|seq| padded(seq, 106, 1))).await;
        });
        std::fs::write(&done, b"").unwrap();
        eprintln!(
            "generated two {n}-exchange recordings in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    (a, b)
}

fn mib(path: &Path) -> f64 {
    std::fs::metadata(path).map_or(0.0, |m| m.len() as f64 / (1 << 20) as f64)
}

/// Start a replay of `db`; time to the first response of a recorded GET, and peak
/// resident memory after it.
fn replay_start(db: &Path) -> (Duration, f64) {
    let db = db.to_str().unwrap();
    let t = Instant::now();
    let server = Server::start(
        &[
            "replay",
            "--db",
            db,
            "--session",
            "s",
            "--listen",
            "127.0.0.1:0",
        ],
        None,
    );
    let path = "/ucwa/oauth/v1/applications/105/communication/conversations/0/participants/user1/messaging";
    let status = loop {
        if let Some(s) = get_status(server.addr, path, "application/json") {
            break s;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let first = t.elapsed();
    assert_eq!(status, 200, "the replay answers a recorded GET");
    let peak = server.peak_mib();
    let _ = server.terminate();
    (first, peak)
}

struct Row {
    name: &'static str,
    big_time: Duration,
    small_time: Duration,
    /// Multiply the small time by this for the baseline.
    scale: f64,
    big_peak: f64,
    small_peak: f64,
    input_mib: f64,
    time_target: Option<Duration>,
    peak_target: f64,
}

fn print(row: &Row) {
    let baseline = row.small_time.mul_f64(row.scale);
    println!("{}:", row.name);
    println!(
        "  time   {:>8.2} s   baseline {:>7.3} s{}  ratio {:>6.2}   {}",
        row.big_time.as_secs_f64(),
        baseline.as_secs_f64(),
        if row.scale == 1.0 {
            "       "
        } else {
            " (×100)"
        },
        row.big_time.as_secs_f64() / baseline.as_secs_f64(),
        match row.time_target {
            Some(t) => format!(
                "target ≤ {:.1} s -> {}",
                t.as_secs_f64(),
                verdict(row.big_time <= t)
            ),
            None => "no time target".to_string(),
        }
    );
    println!(
        "  memory {:>8.0} MB  baseline {:>7.0} MB          ratio {:>6.2}   target ≤ {:.0} MB -> {}   ({:.2} × the {:.0} MB input)",
        row.big_peak,
        row.small_peak,
        row.big_peak / row.small_peak,
        row.peak_target,
        verdict(row.big_peak <= row.peak_target),
        row.big_peak / row.input_mib,
        row.input_mib
    );
}

fn main() {
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let only_replay = std::env::var("BENCH_ONLY").is_ok_and(|o| o == "replay");
    println!("100 000-exchange cases on {}", machine());
    let data = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("target/ucwa-bench/big-v{DATA_VERSION}"));
    std::fs::create_dir_all(&data).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (big_a, big_b) = recordings(&rt, &data, BIG);
    let (small_a, small_b) = recordings(&rt, &data, SMALL);
    drop(rt);
    let work = tempfile::tempdir().unwrap();
    println!(
        "recording: {BIG} exchanges, {:.0} MB ({rounds} rounds, medians; memory is the child's VmHWM)",
        mib(&big_a)
    );

    // (first response or command time, peak) per round, for the big and the small input.
    let mut replay = (vec![], vec![], vec![], vec![]);
    let mut export = (vec![], vec![], vec![], vec![]);
    let mut import = (vec![], vec![], vec![], vec![]);
    let mut diff = (vec![], vec![], vec![], vec![]);
    let mut har_mib = 0.0;
    for round in 0..rounds {
        for (big, db) in [(true, &big_a), (false, &small_a)] {
            let (t, peak) = replay_start(db);
            let (times, peaks) = if big {
                (&mut replay.0, &mut replay.1)
            } else {
                (&mut replay.2, &mut replay.3)
            };
            times.push(t);
            peaks.push(peak);
        }
        if only_replay {
            continue;
        }
        for (big, db, other) in [(true, &big_a, &big_b), (false, &small_a, &small_b)] {
            let har = work.path().join(format!("{big}.har"));
            let imported = work.path().join(format!("imported-{big}-{round}.sqlite"));
            let m = run_measured(&[
                "export",
                "--db",
                db.to_str().unwrap(),
                "--format",
                "har",
                "-o",
                har.to_str().unwrap(),
            ]);
            assert!(m.status.success(), "export failed");
            if big {
                har_mib = mib(&har);
            }
            let e = m;
            let i = run_measured(&[
                "import",
                "--db",
                imported.to_str().unwrap(),
                "--session",
                "i",
                har.to_str().unwrap(),
            ]);
            assert!(i.status.success(), "import failed");
            let _ = std::fs::remove_file(&imported);
            let a = format!("{}#s", db.display());
            let b = format!("{}#s", other.display());
            let d = run_measured(&["diff", &a, &b]);
            // Equal once ids and dates are normalised (exit 0); 1 would be differences.
            assert!(matches!(d.status.code(), Some(0 | 1)), "diff failed");
            for (acc, m) in [(&mut export, &e), (&mut import, &i), (&mut diff, &d)] {
                if big {
                    acc.0.push(m.elapsed);
                    acc.1.push(m.peak_mib);
                } else {
                    acc.2.push(m.elapsed);
                    acc.3.push(m.peak_mib);
                }
            }
        }
    }
    let row = |name,
               r: (Vec<Duration>, Vec<f64>, Vec<Duration>, Vec<f64>),
               scale,
               input_mib,
               time_target: Option<f64>,
               peak_target| Row {
        name,
        big_time: median(r.0),
        big_peak: median(r.1),
        small_time: median(r.2),
        small_peak: median(r.3),
        scale,
        input_mib,
        time_target: time_target.map(Duration::from_secs_f64),
        peak_target,
    };
    let rec = mib(&big_a);
    print(&row(
        "replay: start to first response",
        replay,
        1.0,
        rec,
        Some(0.3),
        120.0,
    ));
    if only_replay {
        return;
    }
    print(&row("export --format har", export, 100.0, rec, None, 100.0));
    print(&row(
        "import of the exported HAR",
        import,
        100.0,
        har_mib,
        Some(5.0),
        200.0,
    ));
    print(&row(
        "diff of two sessions",
        diff,
        100.0,
        rec + mib(&big_b),
        Some(3.0),
        400.0,
    ));
}
