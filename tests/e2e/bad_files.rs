//! Every command that reads a recording refuses a file it cannot trust — a recording from a
//! newer version, a garbage file, a SQLite database that is not a recording — with exit 2,
//! one line on stderr, nothing on stdout, and the file left byte for byte as it was.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use ucwa_replay::demo::{ScriptOptions, record_session};

/// A real recording (session `s`) of the scripted IM session against the simulator.
async fn real_recording(dir: &Path) -> PathBuf {
    let db = dir.join("good.sqlite");
    record_session(&db, "s", 3, &ScriptOptions::default())
        .await
        .expect("record the IM script");
    db
}

fn set_user_version(path: &Path, v: u32) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(&format!("PRAGMA user_version = {v};"))
        .unwrap();
}

/// The argument lists of every command that opens `db`.
fn commands(db: &str, good: &str) -> Vec<Vec<String>> {
    let closed = "http://127.0.0.1:9";
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        v(&[
            "record",
            "--upstream",
            closed,
            "--listen",
            "127.0.0.1:0",
            "--db",
            db,
            "--session",
            "s",
        ]),
        v(&[
            "replay",
            "--db",
            db,
            "--session",
            "s",
            "--listen",
            "127.0.0.1:0",
        ]),
        v(&["diff", db, good]),
        v(&["diff", good, db]),
        v(&["sessions", "--db", db]),
        v(&["show", "--db", db, "--session", "s"]),
        v(&["events", "--db", db, "--session", "s"]),
        v(&[
            "verify",
            "--db",
            db,
            "--session",
            "s",
            "--upstream",
            closed,
            "--token",
            "cwt=abc",
        ]),
    ]
}

/// Run `ucwa-replay ARGS`; assert exit 2 and one stderr line that contains `needle`.
fn assert_exit_2_one_line(args: &[String], needle: &str) -> (Output, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ucwa-replay"))
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{args:?}: {stderr}");
    assert!(lines[0].contains(needle), "{args:?}: {stderr}");
    (out, stderr)
}

fn assert_refused(args: &[String], file: &Path, needle: &str) {
    let before = std::fs::read(file).unwrap();
    let (out, stderr) = assert_exit_2_one_line(args, needle);
    assert!(
        out.stdout.is_empty(),
        "{args:?}: stdout {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        std::fs::read(file).unwrap() == before,
        "{args:?}: file changed; {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_refuses_newer_garbage_and_foreign_files_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let good = real_recording(dir.path()).await;
    let good_arg = good.to_str().unwrap();

    let newer = dir.path().join("newer.sqlite");
    std::fs::copy(&good, &newer).unwrap();
    set_user_version(&newer, 99);

    let garbage = dir.path().join("garbage.sqlite");
    std::fs::write(
        &garbage,
        b"not a database at all, only words, and more words to make it long",
    )
    .unwrap();

    let foreign = dir.path().join("foreign.sqlite");
    {
        let conn = rusqlite::Connection::open(&foreign).unwrap();
        conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
            .unwrap();
    }

    for (file, needle) in [
        (&newer, "newer ucwa-replay"),
        (&garbage, "not a SQLite database"),
        (&foreign, "not a ucwa-replay recording"),
    ] {
        for args in commands(file.to_str().unwrap(), good_arg) {
            assert_refused(&args, file, needle);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_file_or_session_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let good = real_recording(dir.path()).await;
    let good_arg = good.to_str().unwrap();
    let missing = dir.path().join("missing.sqlite");
    for args in commands(missing.to_str().unwrap(), good_arg) {
        if args[0] == "record" {
            continue; // record creates its file
        }
        assert_exit_2_one_line(&args, "no such recording");
        assert!(!missing.exists(), "{args:?} created the file");
    }
    for args in commands(good_arg, good_arg) {
        let mut args: Vec<String> = args
            .into_iter()
            .map(|a| if a == "s" { "nope".to_string() } else { a })
            .collect();
        match args[0].as_str() {
            "record" | "sessions" => continue,
            "diff" => args[1] = format!("{good_arg}#nope"),
            _ => {}
        }
        assert_exit_2_one_line(&args, "no session named \"nope\"");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_recording_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let good = real_recording(dir.path()).await;
    let good_arg = good.to_str().unwrap();
    let corrupt = dir.path().join("corrupt.sqlite");
    let mut bytes = std::fs::read(&good).unwrap();
    assert!(bytes.len() > 3 * 4096, "{}", bytes.len());
    // Keep the header page; scribble over every other page.
    for (i, b) in bytes.iter_mut().enumerate().skip(4096) {
        *b = (i * 7 % 251) as u8;
    }
    std::fs::write(&corrupt, &bytes).unwrap();
    for args in commands(corrupt.to_str().unwrap(), good_arg) {
        assert_refused(&args, &corrupt, "corrupt.sqlite");
    }
}
