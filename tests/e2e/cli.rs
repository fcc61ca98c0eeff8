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
