//! Diff of two 10 000-exchange sessions (`cargo bench --bench diff`).
//!
//! Prints the median time of the diff next to a baseline measured in the same run (loading
//! both sessions from SQLite, which the diff also does), and their ratio: absolute numbers on
//! two shared cores mean little. Target: the diff under 2 s. No assertions: a report.

use std::time::{Duration, Instant};

use ucwa_replay::diff::{DiffOptions, diff_sessions};
use ucwa_replay::store::Recording;

mod common;
use common::{exchange, median, write_session};

const EXCHANGES: u64 = 10_000;
const RUNS: usize = 5;

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (dir.path().join("a.sqlite"), dir.path().join("b.sqlite"));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        write_session(&a, "s", (1..=EXCHANGES).map(|seq| exchange(seq, 105, 0))).await;
        write_session(&b, "s", (1..=EXCHANGES).map(|seq| exchange(seq, 106, 1))).await;
    });

    let mut load = Vec::new();
    let mut diff = Vec::new();
    let mut last = None;
    for _ in 0..RUNS {
        let t = Instant::now();
        let ra = Recording::open(&a).expect("open a");
        let rb = Recording::open(&b).expect("open b");
        let (sa, sb) = (ra.session(None).expect("a"), rb.session(None).expect("b"));
        let xa = ra.exchanges(&sa).expect("load a");
        let xb = rb.exchanges(&sb).expect("load b");
        assert_eq!(xa.len() + xb.len(), 2 * EXCHANGES as usize);
        load.push(t.elapsed());

        let t = Instant::now();
        let report = diff_sessions(&ra, &sa, &rb, &sb, &DiffOptions::default()).expect("diff");
        diff.push(t.elapsed());
        last = Some(report);
    }
    let (load, diff) = (median(load), median(diff));
    let report = last.expect("ran");
    println!("diff of two {EXCHANGES}-exchange sessions ({RUNS} runs, medians)");
    println!(
        "  baseline (load both sessions): {:>8.1} ms",
        load.as_secs_f64() * 1e3
    );
    println!(
        "  diff (load + compare):         {:>8.1} ms",
        diff.as_secs_f64() * 1e3
    );
    println!(
        "  ratio diff / baseline:         {:>8.2}",
        diff.as_secs_f64() / load.as_secs_f64()
    );
    println!(
        "  target: diff under 2 s -> {}",
        if diff < Duration::from_secs(2) {
            "met"
        } else {
            "MISSED"
        }
    );
    println!("  {}", report.summary());
}
