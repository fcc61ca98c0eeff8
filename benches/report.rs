//! The HTML report of a 10 000-exchange session (`cargo bench --bench report`; needs
//! `/usr/bin/chromium`).
//!
//! Prints the page's size, the median time to render it, and the median time headless
//! Chromium takes to open it: the page's own `data-ready-ms` (navigation start to after the
//! load event), the wall time of `chromium --dump-dom` (which also serialises the whole
//! document) and of `chromium --screenshot` (start, load, paint, capture), each next to the
//! same for an empty page measured in the same run (browser start-up). Target: the page ready in under
//! 2 s. No assertions: a report (`tests/report.rs` checks a bound).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ucwa_replay::store::Recording;

#[path = "../tests/e2e/util/large.rs"]
mod large;

const EXCHANGES: u64 = 10_000;
const RUNS: usize = 5;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn chromium(profile: &Path) -> Command {
    let mut c = Command::new("/usr/bin/chromium");
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

/// Wall seconds of `--screenshot` (start, load, paint, capture, exit).
fn shoot(page: &Path, profile: &Path, png: &Path) -> f64 {
    let t = Instant::now();
    chromium(profile)
        .arg("--window-size=1400,1000")
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run /usr/bin/chromium");
    t.elapsed().as_secs_f64()
}

/// `--dump-dom` of a page: (wall seconds, the page's data-ready-ms if any).
fn open(page: &Path, profile: &Path) -> (f64, Option<f64>) {
    let t = Instant::now();
    let out = chromium(profile)
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run /usr/bin/chromium");
    let wall = t.elapsed().as_secs_f64();
    let dom = String::from_utf8_lossy(&out.stdout);
    let ready = dom
        .split("data-ready-ms=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .and_then(|s| s.parse().ok());
    (wall, ready)
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("large.sqlite");
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(large::write(&db, "large", EXCHANGES));
    let rec = Recording::open(&db).expect("open");
    let session = rec.session(None).expect("session");
    let exchanges = rec.exchanges(&session).expect("exchanges");

    let mut render = Vec::new();
    let mut page = String::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        page = ucwa_replay::html::session_page("large.sqlite", &session, &exchanges, None);
        render.push(t.elapsed().as_secs_f64());
    }
    let html = dir.path().join("large.html");
    std::fs::write(&html, &page).expect("write page");
    let empty = dir.path().join("empty.html");
    std::fs::write(&empty, "<!DOCTYPE html><title>empty</title><p>empty").expect("write");

    let (mut base, mut wall, mut ready) = (Vec::new(), Vec::new(), Vec::new());
    let (mut shot_base, mut shot) = (Vec::new(), Vec::new());
    let png = dir.path().join("shot.png");
    for i in 0..RUNS {
        base.push(open(&empty, &dir.path().join(format!("p{i}a"))).0);
        let (w, r) = open(&html, &dir.path().join(format!("p{i}b")));
        wall.push(w);
        ready.push(r.expect("the page's script marks when it is ready"));
        shot_base.push(shoot(&empty, &dir.path().join(format!("p{i}c")), &png));
        shot.push(shoot(&html, &dir.path().join(format!("p{i}d")), &png));
    }
    let ready = median(ready);
    println!("HTML report of a {EXCHANGES}-exchange session ({RUNS} runs, medians)");
    println!(
        "  page size:                         {:>8.1} MiB",
        page.len() as f64 / 1048576.0
    );
    println!(
        "  render (library):                  {:>8.0} ms",
        median(render) * 1e3
    );
    println!("  Chromium: page ready (in-page):    {ready:>8.0} ms");
    println!(
        "  Chromium: --dump-dom wall time:    {:>8.0} ms",
        median(wall) * 1e3
    );
    println!(
        "  Chromium: empty page (baseline):   {:>8.0} ms",
        median(base) * 1e3
    );
    println!(
        "  Chromium: --screenshot wall time:  {:>8.0} ms",
        median(shot) * 1e3
    );
    println!(
        "  Chromium: same, empty page:        {:>8.0} ms",
        median(shot_base) * 1e3
    );
    println!(
        "  target: ready under 2 s -> {}",
        if Duration::from_secs_f64(ready / 1e3) < Duration::from_secs(2) {
            "met"
        } else {
            "MISSED"
        }
    );
}
