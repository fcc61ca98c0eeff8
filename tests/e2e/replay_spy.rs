//! Spy mode with the real binary: a session recorded in JSON lacks the XML reads of the
//! sign-in resources; `replay --fallback` forwards them to the live simulator, records them
//! into the session, and a later plain replay serves them from the recording.

use std::time::Duration;

use http::Method;
use serde_json::Value;
use ucwa_replay::demo::UcwaClient;
use ucwa_replay::ucwa::Representation;

use crate::util::raw::http;
use crate::util::{Server, bin, block_on, s};

const ROOT: &str = "/autodiscover/autodiscoverservice.svc/root";
const USER: &str = "/Autodiscover/AutodiscoverService.svc/root/oauth/user";

fn requests(base: &str) -> Vec<Value> {
    let got = http(base, "GET", "/_replay/requests", &[], b"");
    let v: Value = serde_json::from_slice(&got.body).unwrap();
    v["requests"].as_array().unwrap().clone()
}

#[test]
fn spy_mode_fills_a_session_then_a_plain_replay_serves_what_was_forwarded() {
    let (_dir, db) = crate::util::temp_db();
    // The recording: the IM script in JSON, through `record -- CMD`, against the simulator
    // that spy mode will then forward to.
    let sim = crate::replay_wrap::sim();
    let upstream = sim.url();
    // Recorded through the real recording proxy against `sim` (the live server spy mode
    // will forward to), with the wrapped client.
    crate::replay_wrap::record(&sim, &db, "flow", "Hello from the flow", false);

    // Spy mode: the JSON sign-in is in the recording, the XML reads are not.
    let mut spy = Server::replay(
        &db,
        &[
            "--session",
            "flow",
            "--feed-end",
            "empty",
            "--fallback",
            &upstream,
        ],
    );
    let base = spy.url.clone();
    let mut xml = UcwaClient::new(&base, Representation::Xml);
    let root = block_on(xml.get(ROOT)).unwrap();
    assert_eq!(root.status, 200);
    let text = root.text();
    assert!(
        text.starts_with("<?xml") || text.contains("<resource"),
        "{text}"
    );
    assert!(
        text.contains(&base),
        "origins rewritten to the replay's: {text}"
    );
    assert!(!text.contains(&upstream), "{text}");
    let challenge = block_on(xml.request(Method::GET, USER).no_token().send()).unwrap();
    assert_eq!(challenge.status, 401);
    let mut json = UcwaClient::new(&base, Representation::Json);
    let recorded = block_on(json.get(ROOT)).unwrap();
    assert_eq!(recorded.status, 200);
    let log = requests(&base);
    let outcomes: Vec<&str> = log.iter().map(|r| r["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["forwarded", "forwarded", "recorded"], "{log:?}");
    assert_eq!(log[0]["status"], 200);
    assert_eq!(log[1]["status"], 401);
    let report: Value =
        serde_json::from_slice(&http(&base, "GET", "/_replay/report", &[], b"").body).unwrap();
    assert_eq!(report["misses"], serde_json::json!([]));
    assert_eq!(report["forwarded"].as_array().unwrap().len(), 2, "{report}");
    assert!(spy.terminate(Duration::from_secs(20)).success());
    let stderr = spy.stderr();
    assert!(
        stderr.contains("spy mode: 2 forwarded exchanges recorded into session \"flow\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("forwarded to the live server (spy mode)"),
        "{stderr}"
    );

    // A plain replay (no network) now serves the XML reads from the recording.
    drop(sim);
    let plain = Server::replay(&db, &["--session", "flow", "--feed-end", "empty"]);
    let mut xml = UcwaClient::new(&plain.url, Representation::Xml);
    let again = block_on(xml.get(ROOT)).unwrap();
    assert_eq!(again.status, 200);
    assert_eq!(
        again.text().replace(&plain.url, "{base}"),
        text.replace(&base, "{base}"),
        "the recorded answer, byte for byte after the origin"
    );
    let challenge = block_on(xml.request(Method::GET, USER).no_token().send()).unwrap();
    assert_eq!(challenge.status, 401);
    let outcomes: Vec<String> = requests(&plain.url)
        .iter()
        .map(|r| r["outcome"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(outcomes, ["recorded", "recorded"]);
}

#[test]
fn spy_mode_refuses_a_fallback_that_is_not_the_sessions_upstream() {
    let (_dir, db) = crate::util::temp_db();
    crate::util::fixture::write_session(
        &db,
        "s",
        crate::util::fixture::FE1,
        &[],
        &[crate::util::fixture::Rec::new("GET", "/x").answer(200, "text/plain", "x")],
    );
    let out = bin(&[
        "replay",
        "--db",
        s(&db),
        "--listen",
        "127.0.0.1:0",
        "--fallback",
        "http://127.0.0.1:9",
        "--",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "is not the upstream session \"s\" was recorded from (https://fe1.contoso.com)"
        ),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}
