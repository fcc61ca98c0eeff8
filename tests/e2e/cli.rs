//! Command-line rules shared by every server command (README.md, "Command line"): the URL is
//! the first stdout line, port 0 works, Ctrl-C (SIGINT) stops cleanly with exit 0 after
//! in-flight work is finished and the store flushed; usage errors exit 2.

use std::process::Command;
use std::time::Duration;

use http::Method;
use ucwa_replay::demo::{ScriptOptions, UcwaClient, record_session};
use ucwa_replay::store::Recording;
use ucwa_replay::ucwa::Representation;

use crate::util::{self, Server};

fn assert_url(server: &Server) {
    assert!(
        server.url.starts_with("http://127.0.0.1:"),
        "{}",
        server.url
    );
    assert_ne!(server.addr().port(), 0, "the real port, not 0");
}

/// The status of `GET target` from `server`, asked with the shared client.
fn get(server: &Server, target: &str) -> u16 {
    util::get(&server.url, target).status.as_u16()
}

#[test]
fn every_server_command_prints_its_url_first_and_stops_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rec.sqlite");

    let mut sim = Server::start(&["simulate", "--listen", "127.0.0.1:0", "--seed", "4"]);
    assert_url(&sim);
    assert_eq!(get(&sim, "/"), 200);

    let mut rec = Server::record(&sim.url, &db, "s", &[]);
    assert_url(&rec);
    assert_eq!(get(&rec, "/"), 200);
    assert_eq!(get(&rec, "/autodiscover/autodiscoverservice.svc/root"), 200);
    let status = rec.interrupt(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "{}", rec.stderr());
    // Flushed: both exchanges are in the file.
    let r = Recording::open(&db).unwrap();
    assert_eq!(r.session(Some("s")).unwrap().exchanges, 2);
    drop(r);

    let status = sim.interrupt(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "{}", sim.stderr());

    let mut replay = Server::replay(&db, &["--session", "s"]);
    assert_url(&replay);
    assert_eq!(get(&replay, "/"), 200, "served with the simulator gone");
    let status = replay.interrupt(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "{}", replay.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_miss_is_logged_at_warn() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rec.sqlite");
    record_session(&db, "s", 2, &ScriptOptions::default())
        .await
        .unwrap();
    let mut replay = Server::replay(&db, &[]);
    let r = UcwaClient::new(&replay.url, Representation::Json)
        .request(Method::GET, "/nowhere")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status, 404);
    assert_eq!(r.header("x-ucwa-replay"), Some("miss"));
    replay.terminate(Duration::from_secs(20));
    let stderr = replay.stderr();
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("WARN") && l.contains("/nowhere")),
        "{stderr}"
    );
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["diff"][..],
        &["record", "--listen", "127.0.0.1:0"],
        &["replay", "--listen", "not-an-address"],
        &["no-such-command"],
        &["simulate", "--listen", "127.0.0.1:0", "--threads", "0"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_ucwa-replay"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
}

/// A regex that does not compile is a user's mistake: exit 2 and one line that names the
/// flag, the pattern and what is wrong where, not regex's four-line drawing.
#[test]
fn a_bad_regex_is_told_on_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.sqlite");
    let db = db.to_str().unwrap();
    for (args, line) in [
        (
            &[
                "record",
                "--upstream",
                "http://127.0.0.1:9",
                "--session",
                "s",
                "--db",
                db,
                "--redact-regex",
                "token=(\\w+",
            ][..],
            "ucwa-replay: error: invalid --redact-regex: \"token=(\\\\w+\": unclosed group at character 7\n",
        ),
        (
            &["audit", "--db", db, "--regex", "a\\p{Nope}"],
            "ucwa-replay: error: invalid --regex: \"a\\\\p{Nope}\": Unicode property not found at character 2\n",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_ucwa-replay"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), line, "{args:?}");
    }
    assert!(!dir.path().join("r.sqlite").exists(), "nothing was created");
}

/// `--threads N` is how many threads serve connections; without it, one per CPU but one
/// (at least one), so that a client on the same machine keeps a CPU.
#[test]
fn threads_sets_how_many_workers_serve() {
    // Counted at start: the runtime's workers exist by then, and nothing has asked for a
    // blocking-pool thread (which has the same name). A new thread names itself once it
    // runs, though: until then it has the process's name, which only the main thread keeps.
    let workers = |server: &Server| {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let names = server.thread_names();
            let unnamed = names.iter().filter(|name| *name == "ucwa-replay").count();
            if unnamed == 1 || std::time::Instant::now() > deadline {
                return names.iter().filter(|name| *name == "ucwa-worker").count();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    let mut three = Server::start(&["simulate", "--listen", "127.0.0.1:0", "--threads", "3"]);
    assert_eq!(workers(&three), 3, "{:?}", three.thread_names());
    assert_eq!(get(&three, "/"), 200);
    assert_eq!(three.interrupt(Duration::from_secs(20)).code(), Some(0));

    let cpus = std::thread::available_parallelism().unwrap().get();
    let mut default = Server::start(&["simulate", "--listen", "127.0.0.1:0"]);
    assert_eq!(
        workers(&default),
        cpus.saturating_sub(1).max(1),
        "{cpus} CPUs: {:?}",
        default.thread_names()
    );
    assert_eq!(get(&default, "/"), 200);
    assert_eq!(default.interrupt(Duration::from_secs(20)).code(), Some(0));
}

/// The process refuses transparent huge pages: with them, each thread's heap cost 2 MiB
/// on its first touch, and record held 10 MB more at start.
#[test]
fn the_binary_runs_without_transparent_huge_pages() {
    let mut server = Server::start(&["simulate", "--listen", "127.0.0.1:0"]);
    assert_eq!(get(&server, "/"), 200);
    // Linux 5.0 and later say whether THP is allowed for the process.
    if let Some(enabled) = server.status_field("THP_enabled") {
        assert_eq!(enabled, "0");
    } else {
        eprintln!("this kernel does not report THP_enabled; nothing to check");
    }
    assert_eq!(server.interrupt(Duration::from_secs(20)).code(), Some(0));
}

/// A TCP server that accepts connections, reads what they send, and never answers: an
/// upstream that keeps an exchange in flight. Returns its address and a receiver that gets
/// one message per request read.
fn silent_upstream() -> (std::net::SocketAddr, std::sync::mpsc::Receiver<()>) {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for mut conn in listener.incoming().map_while(Result::ok) {
            let mut buf = [0u8; 4096];
            if conn.read(&mut buf).is_ok_and(|n| n > 0) {
                let _ = tx.send(());
            }
            held.push(conn);
        }
    });
    (addr, rx)
}

/// The first signal drains in-flight exchanges; a second one ends the process at once, as
/// that signal would (a shell shows 143 for SIGTERM, 130 for Ctrl-C), not with an exit code
/// of its own.
#[test]
fn a_second_signal_ends_the_process_as_that_signal_would() {
    use std::os::unix::process::ExitStatusExt;
    for (sig, number) in [("-TERM", 15), ("-INT", 2)] {
        let dir = tempfile::tempdir().unwrap();
        let (upstream, arrived) = silent_upstream();
        let mut rec = Server::record(
            &format!("http://{upstream}"),
            &dir.path().join("rec.sqlite"),
            "s",
            &[],
        );
        let proxy = rec.url.clone();
        std::thread::spawn(move || util::raw::http(&proxy, "GET", "/ucwa", &[], b""));
        arrived
            .recv_timeout(Duration::from_secs(30))
            .expect("the request reached the upstream");
        rec.send(sig);
        rec.wait_for_stderr("shutting down", Duration::from_secs(30));
        rec.send(sig);
        let status = rec.wait_exit(Duration::from_secs(30));
        assert_eq!(status.signal(), Some(number), "{sig}: {status:?}");
    }
}

/// `sessions | head` and friends: a reader that stops reading is not an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stdout_ends_quietly_with_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rec.sqlite");
    record_session(&db, "s", 2, &ScriptOptions::default())
        .await
        .unwrap();
    let db = util::s(&db);
    let at = format!("{db}#s");
    let commands: Vec<Vec<&str>> = vec![
        vec!["sessions", "--db", db],
        vec!["show", "--db", db],
        vec!["events", "--db", db],
        vec!["export", "--db", db],
        vec!["export", "--db", db, "--format", "ndjson"],
        vec!["diff", &at, &at],
        vec!["audit", "--db", db],
    ];
    for args in commands {
        for format in [None, Some("json")] {
            let mut args = args.clone();
            if let Some(f) = format
                && args[0] != "export"
            {
                args.extend(["--format", f]);
            }
            // The reading end is closed before the command starts: its first write fails.
            let (reader, writer) = std::io::pipe().unwrap();
            drop(reader);
            let out = Command::new(env!("CARGO_BIN_EXE_ucwa-replay"))
                .args(&args)
                .env_remove("RUST_LOG")
                .stdout(writer)
                .output()
                .unwrap();
            assert_eq!(
                (
                    out.status.code(),
                    String::from_utf8_lossy(&out.stderr).as_ref()
                ),
                (Some(0), ""),
                "{args:?}"
            );
        }
    }
}

#[test]
fn an_upstream_timeout_of_zero_is_refused() {
    let out = util::bin(&[
        "record",
        "--upstream",
        "http://127.0.0.1:9",
        "--upstream-timeout",
        "0",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("'--upstream-timeout <SECONDS>': a timeout of 0 s would fail every request; give at least 1"),
        "{stderr}"
    );
}

/// With `--format json` a script reads stdout: a failure is a JSON object there too, and the
/// usual one line on stderr.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_format_json_an_error_is_json_on_stdout_too() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.sqlite");
    let missing = util::s(&missing);
    for args in [
        vec!["sessions", "--db", missing, "--format", "json"],
        vec!["show", "--db", missing, "--format", "json"],
        vec!["audit", "--db", missing, "--format", "json"],
        vec!["diff", missing, missing, "--format", "json"],
        vec![
            "sessions",
            "--db",
            missing,
            "--format",
            "json",
            "--no-such-flag",
        ],
    ] {
        let out = util::bin(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let value: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {:?}", out.stdout));
        assert_eq!(value["exit_code"], 2, "{args:?}");
        let message = value["error"].as_str().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        if !args.contains(&"--no-such-flag") {
            assert_eq!(message, format!("{missing}: no such recording"), "{args:?}");
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
        }
    }
    // Without it, stdout stays empty.
    let out = util::bin(&["sessions", "--db", missing]);
    assert!(out.stdout.is_empty());
}

/// A file with several sessions: the error says how this command names one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_errors_name_the_way_this_command_names_a_session() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rec.sqlite");
    for name in ["a", "b"] {
        record_session(&db, name, 2, &ScriptOptions::default())
            .await
            .unwrap();
    }
    let f = util::s(&db);
    let one_line = |args: &[&str]| {
        let out = util::bin(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        stderr
    };
    let listed = format!("{f}: holds 2 sessions (a, b)");
    assert!(
        one_line(&["diff", f, f]).contains(&format!("{listed}; name one as {f}#SESSION")),
        "diff"
    );
    for cmd in ["show", "events", "export", "report"] {
        let mut args = vec![cmd, "--db", f];
        if cmd == "report" {
            args.extend(["-o", "/dev/null"]);
        }
        let stderr = one_line(&args);
        assert!(
            stderr.contains(&format!("{listed}; name one with --session NAME")),
            "{cmd}: {stderr}"
        );
        assert!(!stderr.contains("FILE#SESSION"), "{cmd}: {stderr}");
    }
    let stderr = one_line(&[
        "verify",
        "--db",
        f,
        "--session",
        "a",
        "--new-session",
        "b",
        "--upstream",
        "http://127.0.0.1:9",
    ]);
    assert!(
        stderr.contains("a session named \"b\" already exists; choose another --new-session NAME, or add --replace"),
        "{stderr}"
    );
}
