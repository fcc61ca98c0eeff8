//! The CI wrapper, as a suite in any language uses it: `record … -- CMD` captures a session
//! in one command, `replay … -- CMD` runs the test command against the replay and exits by
//! the verdict. The command is this very test binary running [`client`], the scripted UCWA
//! client, so the client under test is a real separate process that only knows the URL in
//! its environment.

use std::path::Path;
use std::process::{Command, Output};

use ucwa_replay::demo::{RemoteSide, ScriptOptions, run_im_session};
use ucwa_replay::sim::{SimConfig, SimServer};
use ucwa_replay::ucwa::Representation;

use crate::util::{block_on, s, status_field};

/// Not a test of its own: the command the wrapper tests run. It signs in at the URL the
/// wrapper gives (`UCWA_REPLAY_URL` or `UCWA_RECORD_URL`), runs the IM script sending
/// `E2E_MESSAGE` (in XML with `E2E_XML`), and fails when the script does. While recording,
/// `E2E_SIM_URL` names the simulator, where the client plays the remote side directly (as
/// a real remote user would act on the server, not through the client's proxy).
#[test]
#[ignore = "the client the wrapper tests run as their command (needs UCWA_REPLAY_URL or UCWA_RECORD_URL)"]
fn client() {
    let url = std::env::var("UCWA_REPLAY_URL")
        .or_else(|_| std::env::var("UCWA_RECORD_URL"))
        .expect("run by `ucwa-replay replay|record … --`, which sets the URL");
    let opts = ScriptOptions {
        message: std::env::var("E2E_MESSAGE").unwrap_or_else(|_| "Hello from the flow".into()),
        representation: if std::env::var_os("E2E_XML").is_some() {
            Representation::Xml
        } else {
            Representation::Json
        },
        remote_side: match std::env::var("E2E_SIM_URL") {
            Ok(sim) => RemoteSide::Simulator(sim),
            Err(_) => RemoteSide::Recorded,
        },
        ..ScriptOptions::default()
    };
    block_on(run_im_session(&url, &opts)).expect("the IM session runs to its end");
}

/// This binary, running only [`client`].
pub fn client_command() -> Vec<String> {
    let me = std::env::current_exe().expect("the test binary");
    vec![
        me.to_string_lossy().into_owned(),
        "--exact".into(),
        "replay_wrap::client".into(),
        "--ignored".into(),
        "--test-threads=1".into(),
    ]
}

/// `ucwa-replay ARGS -- CLIENT` with the message the client sends.
pub fn wrapped(args: &[&str], message: &str, xml: bool) -> Output {
    wrapped_with(args, message, xml, None)
}

/// [`wrapped`], the client playing the remote side on the simulator at `sim` when given.
fn wrapped_with(args: &[&str], message: &str, xml: bool, sim: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ucwa-replay"));
    match sim {
        Some(url) => cmd.env("E2E_SIM_URL", url),
        None => cmd.env_remove("E2E_SIM_URL"),
    };
    cmd.args(args)
        .arg("--")
        .args(client_command())
        .env("E2E_MESSAGE", message)
        .env("RUST_LOG", "ucwa_replay=info,warn");
    if xml {
        cmd.env("E2E_XML", "1");
    } else {
        cmd.env_remove("E2E_XML");
    }
    cmd.output().expect("run ucwa-replay")
}

pub fn sim() -> SimServer {
    SimServer::start(SimConfig {
        seed: 7,
        time_scale: 0.001,
    })
    .expect("simulator starts")
}

/// Record the IM script sending `message` as session `name`, through `record -- CMD`.
pub fn record(sim: &SimServer, db: &Path, name: &str, message: &str, xml: bool) {
    let out = wrapped_with(
        &[
            "record",
            "--upstream",
            &sim.url(),
            "--listen",
            "127.0.0.1:0",
            "--db",
            s(db),
            "--session",
            name,
        ],
        message,
        xml,
        Some(&sim.url()),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains(&format!("recorded session {name:?}")),
        "the summary on stdout: {stdout}"
    );
    assert!(
        !stdout.starts_with("http://"),
        "a wrapped command owns stdout: no URL line"
    );
}

fn replay(db: &Path, report: &Path, message: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "replay",
        "--db",
        s(db),
        "--session",
        "flow",
        "--listen",
        "127.0.0.1:0",
        "--feed-end",
        "empty",
        "--report",
        s(report),
    ];
    args.extend_from_slice(extra);
    wrapped(&args, message, false)
}

#[test]
fn a_changed_message_fails_the_run_and_is_named_an_unchanged_one_passes() {
    let sim = sim();
    let (_dir, db) = crate::util::temp_db();
    record(&sim, &db, "flow", "Hello from the flow", false);
    drop(sim);
    let report = db.with_file_name("report.json");

    // The same client: every answer from the recording, everything played: exit 0.
    let same = replay(&db, &report, "Hello from the flow", &[]);
    let stderr = String::from_utf8_lossy(&same.stderr);
    assert_eq!(same.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("0 misses, 0 near misses, 0 unplayed"),
        "{stderr}"
    );

    // The client now sends another text. It still gets every answer (lenient body
    // matching, the CLI's default), but the run fails and says why.
    let changed = replay(&db, &report, "Something else entirely", &[]);
    let stderr = String::from_utf8_lossy(&changed.stderr);
    assert_eq!(changed.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("1 near misses"), "{stderr}");
    assert!(
        stderr.contains(
            r#"line 1: recorded "Hello from the flow", received "Something else entirely""#
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("the replay did not go as recorded"),
        "{stderr}"
    );
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let near = &written["near_misses"][0];
    assert_eq!(near["method"], "POST");
    assert!(
        near["path"]
            .as_str()
            .unwrap()
            .ends_with("/messaging/messages"),
        "{near}"
    );
    assert_eq!(near["differences"][0]["where"], "line 1");
    assert_eq!(near["recorded_body"], "Hello from the flow");
    assert_eq!(near["received_body"], "Something else entirely");

    // Allowed explicitly: exit 0.
    let allowed = replay(
        &db,
        &report,
        "Something else entirely",
        &["--allow-near-misses"],
    );
    assert_eq!(
        allowed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&allowed.stderr)
    );

    // Strict matching: the message is a miss, the client fails, and its status wins.
    let strict = replay(
        &db,
        &report,
        "Something else entirely",
        &["--body-match", "strict"],
    );
    let stderr = String::from_utf8_lossy(&strict.stderr);
    assert_eq!(
        strict.status.code(),
        Some(101),
        "the client's own failure: {stderr}"
    );
    assert!(stderr.contains("the command failed"), "{stderr}");
}

/// A recording of one exchange, `GET /x`, in session "flow".
fn one_exchange() -> (tempfile::TempDir, std::path::PathBuf) {
    let (dir, db) = crate::util::temp_db();
    crate::util::fixture::write_session(
        &db,
        "flow",
        crate::util::fixture::FE1,
        &[],
        &[crate::util::fixture::Rec::new("GET", "/x").answer(200, "text/plain", "x")],
    );
    (dir, db)
}

#[test]
fn the_commands_status_and_a_command_that_cannot_start() {
    let (_dir, db) = one_exchange();
    let run = |cmd: &[&str], extra: &[&str]| {
        let mut args = vec!["replay", "--db", s(&db), "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        args.push("--");
        args.extend_from_slice(cmd);
        Command::new(env!("CARGO_BIN_EXE_ucwa-replay"))
            .args(&args)
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    };
    // The command fails: its status.
    let out = run(&["sh", "-c", "exit 3"], &[]);
    assert_eq!(out.status.code(), Some(3));
    // It passes but played nothing: 1 (unplayed), unless allowed.
    let out = run(&["sh", "-c", "test -n \"$UCWA_REPLAY_URL\""], &[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("#1 GET /x"));
    let out = run(&["sh", "-c", "true"], &["--allow-unplayed"]);
    assert_eq!(out.status.code(), Some(0));
    // A command that does not exist: one line, exit 2.
    let out = run(&["/nonexistent/ucwa-test-client"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("cannot run \"/nonexistent/ucwa-test-client\""),
        "{stderr}"
    );
}

/// The binary runs without transparent huge pages, but the command it runs gets back what
/// the binary was started with (the kernel's setting would otherwise pass to it).
#[test]
fn the_command_keeps_the_huge_pages_setting_the_wrapper_was_started_with() {
    let mine = std::fs::read_to_string("/proc/self/status").unwrap();
    let Some(mine) = status_field(&mine, "THP_enabled") else {
        eprintln!("this kernel does not report THP_enabled; nothing to check");
        return;
    };
    let (_dir, db) = one_exchange();
    let out = Command::new(env!("CARGO_BIN_EXE_ucwa-replay"))
        .args(["replay", "--db", s(&db), "--listen", "127.0.0.1:0"])
        .args(["--allow-unplayed", "--", "cat", "/proc/self/status"])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let child = status_field(&String::from_utf8_lossy(&out.stdout), "THP_enabled");
    assert_eq!(child.as_deref(), Some(mine.as_str()));
}
