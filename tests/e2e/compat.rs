//! Recordings made before a restructuring still work the same: `tests/data/pre-architecture/`
//! holds a recording written by the version before the recording layer existed, with what
//! `show`, `events`, `export` and `diff` printed for it then. Every output must be
//! byte-identical now, the file must be left untouched, and it must replay cleanly to the
//! scripted client.

use std::path::{Path, PathBuf};

use ucwa_replay::demo::{ScriptOptions, run_im_session};
use ucwa_replay::replay::{FeedEnd, ReplayServer};

use crate::util::block_on;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/pre-architecture")
        .join(name)
}

/// The name the old outputs were made with (diff labels name the file).
const NAME: &str = "pre-architecture.sqlite";

/// A copy of the old recording (a test never changes a file of the repository).
fn copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join(NAME);
    std::fs::copy(data("recording.sqlite"), &db).unwrap();
    (dir, db)
}

/// Run the binary in `dir`; its stdout must be the recorded `expected` file, byte for byte.
fn same_output(dir: &Path, args: &[&str], code: i32, expected: &str) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ucwa-replay"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .output()
        .expect("run ucwa-replay");
    assert_eq!(
        out.status.code(),
        Some(code),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = std::fs::read(data(expected)).unwrap();
    if out.stdout != want {
        let got = String::from_utf8_lossy(&out.stdout);
        let want = String::from_utf8_lossy(&want);
        let line = got
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        panic!(
            "{args:?} differs from {expected} at line {}:\n  now:    {}\n  before: {}",
            line + 1,
            got.lines().nth(line).unwrap_or(""),
            want.lines().nth(line).unwrap_or("")
        );
    }
}

#[test]
fn a_recording_from_before_reads_exports_and_diffs_the_same() {
    let (dir, path) = copy();
    let dir = dir.path();
    let db = NAME;
    let before = std::fs::read(data("recording.sqlite")).unwrap();
    for session in ["demo", "demo-xml"] {
        let show = format!("show-{session}.json");
        same_output(
            dir,
            &["show", "--db", db, "--session", session, "--format", "json"],
            0,
            &show,
        );
        let events = format!("events-{session}.json");
        same_output(
            dir,
            &[
                "events",
                "--db",
                db,
                "--session",
                session,
                "--format",
                "json",
            ],
            0,
            &events,
        );
        let ndjson = format!("export-{session}.ndjson");
        same_output(
            dir,
            &[
                "export",
                "--db",
                db,
                "--session",
                session,
                "--format",
                "ndjson",
            ],
            0,
            &ndjson,
        );
    }
    same_output(
        dir,
        &["export", "--db", db, "--session", "demo", "--format", "har"],
        0,
        "export-demo.har",
    );
    let a = format!("{db}#demo");
    same_output(
        dir,
        &["diff", &a, &format!("{db}#demo-again"), "--format", "json"],
        0,
        "diff-demo-again.json",
    );
    same_output(
        dir,
        &[
            "diff",
            &a,
            &format!("{db}#demo-again"),
            "--no-normalize",
            "--format",
            "json",
        ],
        1,
        "diff-demo-again-raw.json",
    );
    same_output(
        dir,
        &["diff", &a, &format!("{db}#demo-xml"), "--format", "json"],
        1,
        "diff-demo-xml.json",
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "reading changed the file"
    );
}

#[test]
fn a_recording_from_before_replays_cleanly() {
    let (_dir, db) = copy();
    for session in ["demo", "demo-xml"] {
        let server = ReplayServer::builder(&db, session)
            .feed_end(FeedEnd::Empty)
            .start()
            .unwrap();
        // This recording was made when the demo sent the remote side's requests through the
        // proxy: they are in it, and are replayed.
        let mut options = ScriptOptions {
            remote_side: ucwa_replay::demo::RemoteSide::ThroughClientUrl,
            ..ScriptOptions::default()
        };
        if session == "demo-xml" {
            options.representation = ucwa_replay::ucwa::Representation::Xml;
        }
        block_on(run_im_session(&server.url(), &options))
            .unwrap_or_else(|e| panic!("{session}: {e}"));
        let report = server.report();
        assert!(report.is_clean(), "{session}: {report}");
    }
}
