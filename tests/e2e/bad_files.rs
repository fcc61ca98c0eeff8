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

/// `sqlite3 FILE .dump | sqlite3 NEW` keeps the tables and rows but neither
/// `application_id` nor `user_version`: such a file has the end state made here.
fn as_restored_from_a_dump(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap();
    let conn = rusqlite::Connection::open(to).unwrap();
    conn.execute_batch("PRAGMA application_id = 0; PRAGMA user_version = 0;")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_restored_from_a_dump_is_read_and_recorded_into() {
    let dir = tempfile::tempdir().unwrap();
    let good = real_recording(dir.path()).await;
    let restored = dir.path().join("restored.sqlite");
    as_restored_from_a_dump(&good, &restored);
    let before = std::fs::read(&restored).unwrap();
    let r = s(&restored);
    for args in [
        vec!["sessions", "--db", r],
        vec!["show", "--db", r, "--session", "s"],
        vec!["diff", &format!("{r}#s"), s(&good)],
    ] {
        let out = crate::util::bin(&args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(
        std::fs::read(&restored).unwrap() == before,
        "a reader changed it"
    );
    // A writer gives it its marks back.
    let out = crate::util::bin(&["import", "--db", r, "--session", "more", s(&har(&good))]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let conn = rusqlite::Connection::open(&restored).unwrap();
    let app_id: i32 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .unwrap();
    assert_eq!(app_id, 0x5543_5741);
}

/// `good` exported as HAR beside it.
fn har(good: &Path) -> PathBuf {
    let path = good.with_extension("har");
    let out = crate::util::bin(&["export", "--db", s(good), "-o", s(&path)]);
    assert!(out.status.success());
    path
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_and_foreign_databases_are_named_for_what_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let good = real_recording(dir.path()).await;
    let good_arg = good.to_str().unwrap();

    let zero = dir.path().join("zero.sqlite");
    std::fs::write(&zero, b"").unwrap();
    let empty = dir.path().join("empty.sqlite");
    rusqlite::Connection::open(&empty)
        .unwrap()
        .execute_batch("CREATE TABLE t(x); DROP TABLE t;")
        .unwrap();
    for file in [&zero, &empty] {
        for args in commands(s(file), good_arg) {
            if matches!(args[0].as_str(), "record" | "verify") {
                continue; // they write, so an empty file is where they start
            }
            let (_, stderr) = assert_exit_2_one_line(
                &args,
                "an empty database, nothing recorded in it yet (record or import a session into it first)",
            );
            assert_eq!(stderr.matches("an empty database").count(), 1, "{stderr}");
        }
    }

    let foreign = dir.path().join("foreign.sqlite");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE contacts(x); CREATE TABLE calls(y);")
        .unwrap();
    for args in commands(s(&foreign), good_arg) {
        assert_refused(
            &args,
            &foreign,
            "not a ucwa-replay recording: a SQLite database of another program (tables: calls, contacts)",
        );
    }

    // Our tables, other columns (another version's, restored without its marks): the way
    // to mark it is named.
    let other = dir.path().join("other-version.sqlite");
    as_restored_from_a_dump(&good, &other);
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute_batch("ALTER TABLE exchanges ADD COLUMN later TEXT;")
        .unwrap();
    for args in commands(s(&other), good_arg) {
        assert_refused(&args, &other, "PRAGMA application_id = 1430476609");
    }
}

/// One damaged page (an index `record` writes to) leaves the file readable up to that page:
/// `record` used to print its URL and then lose every exchange. It is refused at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_refuses_a_recording_with_a_damaged_page() {
    let dir = tempfile::tempdir().unwrap();
    let good = real_recording(dir.path()).await;
    let damaged = dir.path().join("damaged.sqlite");
    std::fs::copy(&good, &damaged).unwrap();
    let (root, page_size): (i64, i64) = {
        let conn = rusqlite::Connection::open(&damaged).unwrap();
        let root = conn
            .query_row(
                "SELECT rootpage FROM sqlite_master WHERE name = 'events_rel'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        (
            root,
            conn.query_row("PRAGMA page_size", [], |r| r.get(0))
                .unwrap(),
        )
    };
    let mut bytes = std::fs::read(&damaged).unwrap();
    let at = ((root - 1) * page_size) as usize;
    for (i, b) in bytes[at..at + page_size as usize].iter_mut().enumerate() {
        *b = (i * 7 % 251) as u8;
    }
    std::fs::write(&damaged, &bytes).unwrap();
    // Still readable where it is not damaged.
    assert!(
        crate::util::bin(&["sessions", "--db", s(&damaged)])
            .status
            .success()
    );
    let record = &commands(s(&damaged), s(&good))[0];
    assert_eq!(record[0], "record");
    assert_refused(record, &damaged, "damaged recording (");
}

#[test]
fn session_names_that_could_not_be_addressed_are_refused_at_creation() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rec.sqlite");
    let har = dir.path().join("in.har");
    std::fs::write(
        &har,
        r#"{"log":{"version":"1.2","creator":{"name":"t","version":"1"},"entries":[{"startedDateTime":"2024-01-01T00:00:00.000Z","time":1,"request":{"method":"GET","url":"https://fe1.contoso.com/ucwa","httpVersion":"HTTP/1.1","headers":[],"queryString":[],"cookies":[],"headersSize":-1,"bodySize":0},"response":{"status":200,"statusText":"OK","httpVersion":"HTTP/1.1","headers":[],"cookies":[],"content":{"size":0,"mimeType":"text/plain"},"redirectURL":"","headersSize":-1,"bodySize":0},"cache":{},"timings":{"send":0,"wait":1,"receive":0}}]}}"#,
    )
    .unwrap();
    for (name, why) in [
        ("mon#day", "'#' separates FILE#SESSION"),
        ("a\u{1b}[31mred", "control character"),
        ("two\nlines", "control character"),
        ("", "empty"),
    ] {
        for args in [
            vec!["import", "--db", s(&db), "--session", name, s(&har)],
            vec![
                "record",
                "--upstream",
                "http://127.0.0.1:9",
                "--listen",
                "127.0.0.1:0",
                "--db",
                s(&db),
                "--session",
                name,
            ],
        ] {
            let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            let (_, stderr) = assert_exit_2_one_line(&args, why);
            assert!(stderr.contains("invalid session name"), "{stderr}");
        }
    }
    assert!(!db.exists(), "nothing was created");
}
