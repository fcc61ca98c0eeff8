//! The `demo` command end to end (the README's first command), and the committed sample
//! recording: it must stay replayable by this version.

use std::process::Command;

use ucwa_replay::demo::{ScriptOptions, run_im_session};
use ucwa_replay::replay::{FeedEnd, ReplayServer};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ucwa-replay"))
}

#[test]
fn demo_runs_every_step_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.sqlite");
    let out = bin()
        .args(["-q", "demo", "--format", "json", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], true, "{report:#}");
    let steps: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "record demo (JSON)",
            "record demo-xml (XML)",
            "record demo-again",
            "replay demo",
            "diff demo demo-again"
        ]
    );
    // The recording is there for the user to inspect.
    let sessions = bin()
        .args(["sessions", "--format", "json", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let sessions: serde_json::Value = serde_json::from_slice(&sessions.stdout).unwrap();
    assert_eq!(sessions.as_array().unwrap().len(), 3);
    // Nothing secret-looking was left in it.
    let audit = bin().args(["audit", "--db"]).arg(&db).output().unwrap();
    assert_eq!(
        audit.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&audit.stdout)
    );

    // Text output: a table and a verdict line; running again replaces the sessions.
    let out = bin()
        .args(["-q", "demo", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("replay demo") && text.contains("demo passed"),
        "{text}"
    );
}

#[test]
fn demo_refuses_a_file_that_is_not_a_recording() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("notes.sqlite");
    std::fs::write(&db, b"not a database").unwrap();
    let out = bin().args(["demo", "--db"]).arg(&db).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("ucwa-replay: error:"), "{stderr}");
    assert_eq!(std::fs::read(&db).unwrap(), b"not a database");
}

#[tokio::test]
async fn the_committed_sample_replays_cleanly() {
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/recordings/sample.sqlite");
    // Work on a copy: the repository's file must never change under a test.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sample.sqlite");
    std::fs::copy(sample, &db).unwrap();
    let server = ReplayServer::builder(&db, "demo")
        .feed_end(FeedEnd::Empty)
        .start()
        .unwrap();
    let run = run_im_session(&server.url(), &ScriptOptions::default())
        .await
        .expect("the scripted client completes against the sample");
    assert!(run.token.starts_with("cwt=REDACTED-"), "{}", run.token);
    let report = server.report();
    assert!(report.is_clean(), "{report:?}");
    tokio::task::spawn_blocking(move || drop(server))
        .await
        .unwrap();
}

/// Piped, the table stays within 100 columns and nothing else is interleaved with it: the
/// internal servers' INFO lines are quiet at the default level.
#[test]
fn demo_text_fits_100_columns_and_nothing_interleaves() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.sqlite");
    let out = bin()
        .args(["demo", "--db"])
        .arg(&db)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(stderr, "", "nothing on stderr at the default level");
    let lines: Vec<&str> = stdout.lines().collect();
    let table = &lines[..lines.len() - 1];
    for line in table {
        assert!(
            line.chars().count() <= 100,
            "{} columns: {line}",
            line.chars().count()
        );
    }
    assert!(
        table[0].starts_with('┌') && table[table.len() - 1].starts_with('└'),
        "{stdout}"
    );
    assert!(
        lines.last().unwrap().starts_with("demo passed: "),
        "{stdout}"
    );
}

/// The remote side of the conversation is played on the simulator itself, not through the
/// recording proxy: the demo's recordings (and the committed sample) hold only requests a
/// real client sends.
#[test]
fn recordings_hold_only_what_a_client_sends() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.sqlite");
    let out = bin()
        .args(["-q", "demo", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let sample = std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/recordings/sample.sqlite"
    ));
    for file in [db, sample] {
        let rec = ucwa_replay::store::Recording::open(&file).unwrap();
        for session in rec.sessions().unwrap() {
            let paths: Vec<String> = rec
                .exchanges(&session)
                .unwrap()
                .into_iter()
                .map(|e| e.path)
                .filter(|p| p.starts_with("/_sim/"))
                .collect();
            assert!(
                paths.is_empty(),
                "{}#{}: {paths:?}",
                file.display(),
                session.name
            );
        }
    }
}
