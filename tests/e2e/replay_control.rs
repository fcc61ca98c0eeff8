//! The replay's control API and injected faults, over real sockets: reset and a second run
//! byte-identical, every error row of the participantMessaging page in JSON and XML, reset /
//! truncate / delay as a client sees them, the request log, a held P-GET replaced, secrets
//! in URLs, and a request too long for the HTTP layer still reported.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use http::Method;
use serde_json::{Value, json};
use ucwa_replay::demo::{ScriptOptions, UcwaClient, normalise_transcript, run_im_session};
use ucwa_replay::replay::{FeedEnd, Outcome, Recorded, ReplayServer};
use ucwa_replay::store::Recording;
use ucwa_replay::ucwa::Representation;

use crate::util::raw::{connect, http};
use crate::util::{Server, block_on, s};

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("recordings/sample.sqlite")
}

fn control(base: &str, method: &str, name: &str, body: Value) -> (u16, Value) {
    let text = body.to_string();
    let got = http(
        base,
        method,
        &format!("/_replay/{name}"),
        &[
            ("content-type", "application/json"),
            ("accept", "application/json"),
        ],
        if body.is_null() { b"" } else { text.as_bytes() },
    );
    let v = serde_json::from_slice(&got.body).unwrap_or(Value::Null);
    (got.status, v)
}

#[test]
fn reset_then_a_second_run_gets_byte_identical_answers() {
    let server = Server::replay(&sample(), &["--session", "demo", "--feed-end", "empty"]);
    let base = server.url.clone();
    let run = || {
        let run = block_on(run_im_session(&base, &ScriptOptions::default())).expect("answered");
        normalise_transcript(&run.transcript, &base)
    };
    let first = run();
    let (_, requests_first) = control(&base, "GET", "requests", Value::Null);
    let (_, report) = control(&base, "GET", "report", Value::Null);
    assert_eq!(report["misses"], json!([]), "{report}");
    assert_eq!(report["unplayed"], json!([]), "{report}");

    let (status, reset) = control(&base, "POST", "reset", Value::Null);
    assert_eq!((status, &reset["session"]), (200, &json!("demo")));
    let (_, after_reset) = control(&base, "GET", "requests", Value::Null);
    assert_eq!(after_reset["requests"], json!([]));

    let second = run();
    assert_eq!(first.len(), second.len());
    for (a, b) in first.iter().zip(&second) {
        assert_eq!(a.status, b.status, "{} {}", a.method, a.target);
        assert_eq!(a.body, b.body, "{} {}", a.method, a.target);
        assert_eq!(a.headers, b.headers, "{} {}", a.method, a.target);
    }
    let (_, requests_second) = control(&base, "GET", "requests", Value::Null);
    assert_eq!(requests_first, requests_second);
    let log = requests_second["requests"].as_array().unwrap();
    assert_eq!(log.len(), first.len());
    assert_eq!(log[0]["n"], 1);
    assert!(
        log.iter().all(|r| r["outcome"] == "recorded"),
        "{requests_second}"
    );
}

/// The participantMessaging GETs of the sample session, JSON first.
fn participant_messaging() -> Vec<(String, Representation)> {
    let rec = Recording::open(&sample()).unwrap();
    let session = rec.session(Some("demo")).unwrap();
    let mut out: Vec<(String, Representation)> = rec
        .exchanges(&session)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind.as_str() == "participantMessaging" && e.method == "GET")
        .map(|e| (e.path_and_query(), e.match_key.representation))
        .collect();
    out.dedup();
    out
}

#[test]
fn every_error_row_of_participant_messaging_in_json_and_xml() {
    let server = Server::replay(&sample(), &["--session", "demo", "--feed-end", "empty"]);
    let base = server.url.clone();
    let targets = participant_messaging();
    assert_eq!(
        targets.iter().map(|t| t.1).collect::<Vec<_>>(),
        [Representation::Json, Representation::Xml]
    );
    let rows = [
        (500, "ServiceFailure", Some("InvalidExchangeServerVersion")),
        (409, "Conflict", Some("AlreadyExists")),
        (409, "Conflict", Some("TooManyGroups")),
        (409, "Conflict", None),
        (410, "Gone", Some("CannotRedirect")),
    ];
    for (status, code, subcode) in rows {
        let action = match subcode {
            Some(sub) => format!("{status} {code}/{sub}"),
            None => format!("{status} {code}"),
        };
        // Written by rel: the sample's path is …/participants/bob@contoso.com/messaging.
        let rule = format!("GET */participantMessaging => {action}");
        let (st, v) = control(&base, "POST", "faults", json!({ "rule": rule }));
        assert_eq!(st, 200, "{v}");
        for (target, repr) in &targets {
            let mut client = UcwaClient::new(&base, *repr);
            let reply = block_on(client.request(Method::GET, target).send()).unwrap();
            assert_eq!(reply.status, status, "{rule} {repr:?}");
            assert_eq!(reply.header("x-ucwa-replay"), Some("fault"));
            let (got_code, got_sub) = match repr {
                Representation::Xml => {
                    // The type the client asked for, echoed (the simulator's rule).
                    assert!(
                        reply
                            .header("content-type")
                            .unwrap()
                            .contains("+xml; charset=utf-8"),
                        "{:?}",
                        reply.header("content-type")
                    );
                    let text = reply.text();
                    let doc = roxmltree::Document::parse(&text).unwrap();
                    let child = |n: &str| {
                        doc.root_element()
                            .children()
                            .find(|c| c.tag_name().name() == n)
                            .and_then(|c| c.text())
                            .map(str::to_string)
                    };
                    assert_eq!(doc.root_element().tag_name().name(), "reason");
                    (child("code"), child("subcode"))
                }
                _ => {
                    let v = reply.json().unwrap();
                    (
                        v["code"].as_str().map(str::to_string),
                        v["subcode"].as_str().map(str::to_string),
                    )
                }
            };
            assert_eq!(got_code.as_deref(), Some(code));
            assert_eq!(got_sub.as_deref(), subcode);
        }
        let (st, v) = control(&base, "DELETE", "faults", Value::Null);
        assert_eq!((st, &v["rules"]), (200, &json!([])));
        // The injected errors consumed nothing: the recorded answers are still there.
        for (target, repr) in &targets {
            let mut client = UcwaClient::new(&base, *repr);
            let reply = block_on(client.request(Method::GET, target).send()).unwrap();
            assert_eq!(reply.status, 200, "{target}");
        }
        control(&base, "POST", "reset", Value::Null);
    }
    // The report of a run with a rule lists the fault with the exchange it stood in for.
    control(
        &base,
        "POST",
        "faults",
        json!({"rules": ["GET */participantMessaging #1 => 409 Conflict/AlreadyExists", "GET */nothing => reset"]}),
    );
    let mut client = UcwaClient::new(&base, Representation::Json);
    block_on(client.request(Method::GET, &targets[0].0).send()).unwrap();
    let (_, report) = control(&base, "GET", "report", Value::Null);
    assert_eq!(report["faults"][0]["action"], "409 Conflict/AlreadyExists");
    assert!(report["faults"][0]["seq"].as_u64().is_some(), "{report}");
    assert_eq!(report["unfired_rules"], json!(["GET */nothing => reset"]));
}

#[test]
fn control_api_bad_input_is_a_ucwa_error() {
    let server = Server::replay(&sample(), &["--session", "demo", "--feed-end", "empty"]);
    let base = server.url.clone();
    let (st, v) = control(&base, "POST", "faults", json!({"rule": "GET /x => 418"}));
    assert_eq!(st, 400);
    assert_eq!(
        (v["code"].as_str(), v["subcode"].as_str()),
        (Some("BadRequest"), Some("BadFaultRule"))
    );
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("no error code for status 418"),
        "{v}"
    );
    let (st, v) = control(&base, "POST", "faults", json!({"rulez": []}));
    assert_eq!((st, v["subcode"].as_str()), (400, Some("MalformedControl")));
    let (st, v) = control(&base, "GET", "faults", Value::Null);
    assert_eq!(
        (st, &v["rules"]),
        (200, &json!([])),
        "a bad rule adds nothing"
    );
    let (st, v) = control(&base, "POST", "session", json!({"session": "nope"}));
    assert_eq!((st, v["subcode"].as_str()), (404, Some("NoSuchSession")));
    assert!(
        v["message"].as_str().unwrap().contains("demo"),
        "names the sessions: {v}"
    );
    let (st, v) = control(&base, "POST", "session", json!({"session": "demo"}));
    assert_eq!((st, &v["session"]), (200, &json!("demo")));
    let got = http(&base, "GET", "/_replay/reset", &[], b"");
    assert_eq!(got.status, 405);
    assert_eq!(got.header("allow"), Some("POST"));
    let (st, v) = control(&base, "GET", "nothing", Value::Null);
    assert_eq!((st, v["subcode"].as_str()), (404, Some("NoSuchControl")));
}

/// A small recording built in code: three resources and a feed.
fn built() -> Vec<Recorded> {
    let app = "/ucwa/oauth/v1/applications/1";
    vec![
        Recorded::get(&format!("{app}/a")).json(200, r#"{"a":1}"#),
        Recorded::get(&format!("{app}/b")).json(200, &format!(r#"{{"b":"{}"}}"#, "x".repeat(400))),
        Recorded::get(&format!("{app}/c")).json(200, r#"{"c":3}"#),
        Recorded::get(&format!("{app}/events?ack=1")).event(
            "conversation",
            "/c/1",
            "participantMessaging",
            "/c/1/pm",
            "added",
        ),
    ]
}

#[test]
fn reset_truncate_and_delay_are_seen_as_such_and_consume_nothing() {
    let app = "/ucwa/oauth/v1/applications/1";
    let server = ReplayServer::from_exchanges("https://fe1.contoso.com", built())
        .inject("GET */a #1 => reset")
        .inject("GET */b #1 => truncate")
        .inject("GET */c #1 => delay 300ms")
        .inject("DELETE */a => 500")
        .verify_on_drop(false)
        .start()
        .unwrap();
    let base = server.url();
    let mut client = UcwaClient::new(&base, Representation::Json);

    // reset: the connection closes without a response.
    let mut stream = connect(server.addr());
    write!(stream, "GET {app}/a HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    let mut got = Vec::new();
    let _ = stream.read_to_end(&mut got);
    assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
    // The retry gets the recorded answer.
    assert_eq!(
        block_on(client.get(&format!("{app}/a"))).unwrap().text(),
        r#"{"a":1}"#
    );

    // truncate: the full Content-Length, half the body, then the connection closes.
    let mut stream = connect(server.addr());
    write!(stream, "GET {app}/b HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    let mut got = Vec::new();
    let _ = stream.read_to_end(&mut got);
    let text = String::from_utf8_lossy(&got).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a head was sent");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(body.len(), length / 2, "{head}");
    assert!(
        block_on(client.get(&format!("{app}/b")))
            .unwrap()
            .text()
            .ends_with("x\"}")
    );

    // delay: the recorded answer, late.
    let start = Instant::now();
    let reply = block_on(client.get(&format!("{app}/c"))).unwrap();
    assert!(start.elapsed() >= Duration::from_millis(300));
    assert_eq!(reply.text(), r#"{"c":3}"#);

    let report = server.report();
    let actions: Vec<&str> = report.faults.iter().map(|f| f.action.as_str()).collect();
    assert_eq!(actions, ["reset", "truncate", "delay 300ms"]);
    assert_eq!(report.unfired_rules, ["DELETE */a => 500 ServiceFailure"]);
    let outcomes: Vec<(Outcome, Option<u16>)> = server
        .received()
        .iter()
        .map(|r| (r.outcome, r.status))
        .collect();
    assert_eq!(
        outcomes,
        [
            (Outcome::Fault, None),
            (Outcome::Recorded, Some(200)),
            (Outcome::Fault, Some(200)),
            (Outcome::Recorded, Some(200)),
            (Outcome::Recorded, Some(200)),
        ]
    );
    assert_eq!(
        server.received()[4].rule.as_deref(),
        Some("GET */c #1 => delay 300ms"),
        "a delay serves the recorded answer, and says which rule slowed it"
    );
    assert_eq!(
        report.played, 3,
        "faults consumed nothing; the delayed answer was served"
    );
}

/// A replay of [`built`] that holds an events P-GET beyond the recording until its timeout.
fn holding_replay() -> ReplayServer {
    ReplayServer::from_exchanges("https://fe1.contoso.com", built())
        .feed_end(FeedEnd::Hold)
        .verify_on_drop(false)
        .start()
        .unwrap()
}

/// Wait until the first request is held: it is logged when it arrives.
fn wait_held(server: &ReplayServer) {
    let start = Instant::now();
    while server.received().is_empty() {
        assert!(start.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_second_pget_releases_the_held_one_with_pget_replaced() {
    let app = "/ucwa/oauth/v1/applications/1";
    let server = holding_replay();
    let base = server.url();
    let first = std::thread::spawn({
        let base = base.clone();
        move || {
            http(
                &base,
                "GET",
                &format!("{app}/events?ack=2&timeout=60"),
                &[("accept", "application/xml")],
                b"",
            )
        }
    });
    wait_held(&server);
    let second = http(
        &base,
        "GET",
        &format!("{app}/events?ack=2&timeout=0.2"),
        &[],
        b"",
    );
    assert_eq!(second.status, 200);
    let first = first.join().unwrap();
    assert_eq!(first.status, 409);
    let text = first.text();
    assert!(
        text.contains("<code>Conflict</code><subcode>PGetReplaced</subcode>"),
        "{text}"
    );
    let log = server.received();
    assert_eq!(log[0].outcome, Outcome::PgetReplaced);
    assert_eq!(log[0].status, Some(409));
    assert_eq!(log[1].outcome, Outcome::FeedEnd);
}

#[test]
fn a_client_that_hangs_up_during_a_held_pget_leaves_the_feed_to_the_next_one() {
    let app = "/ucwa/oauth/v1/applications/1";
    let server = holding_replay();
    let base = server.url();
    let addr = base.trim_start_matches("http://").trim_end_matches('/');
    let mut held = connect(addr.parse().unwrap());
    write!(
        held,
        "GET {app}/events?ack=2&timeout=60 HTTP/1.1\r\nhost: {addr}\r\naccept: application/json\r\n\r\n"
    )
    .unwrap();
    wait_held(&server);
    drop(held); // hangs up while held
    // The server sees the hang-up as soon as its connection task runs; a busy machine
    // may take a moment to run it.
    std::thread::sleep(Duration::from_millis(500));
    // The next P-GET on that feed is held for its own timeout and answered, not refused.
    let started = Instant::now();
    let next = http(
        &base,
        "GET",
        &format!("{app}/events?ack=2&timeout=0.3"),
        &[("accept", "application/json")],
        b"",
    );
    assert_eq!(next.status, 200, "{}", next.text());
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert!(started.elapsed() < Duration::from_secs(10));
    let log = server.received();
    assert_eq!(log.len(), 2);
    assert_ne!(log[0].outcome, Outcome::PgetReplaced, "{log:?}");
    assert_eq!(log[1].outcome, Outcome::FeedEnd);
    // Nothing is left waiting on the hung-up request: the server stops at once.
    let stopping = Instant::now();
    drop(server);
    assert!(stopping.elapsed() < Duration::from_secs(5));
}

#[test]
fn secrets_in_urls_match_placeholders_and_never_reach_the_report() {
    let server = ReplayServer::from_exchanges(
        "https://fe1.contoso.com",
        [
            Recorded::get(
                "/ucwa/psanon/v1/applications?anonymousContext=psat%3DAAEBsecretPsat&x=1",
            )
            .json(200, r#"{"ok":1}"#),
            Recorded::get("/ucwa/oauth/v1/photo?access_token=REDACTED-7").json(200, r#"{"ok":2}"#),
        ],
    )
    .verify_on_drop(false)
    .start()
    .unwrap();
    let base = server.url();
    // The recording holds placeholders; the client sends other real values in their place.
    let a = http(
        &base,
        "GET",
        "/ucwa/psanon/v1/applications?x=1&anonymousContext=psat%3DAAEBotherPsat",
        &[],
        b"",
    );
    assert_eq!(a.status, 200, "{}", a.text());
    let b = http(
        &base,
        "GET",
        "/ucwa/oauth/v1/photo?access_token=eyJrealtoken",
        &[],
        b"",
    );
    assert_eq!(b.status, 200, "{}", b.text());
    // A miss carrying a secret: reported, redacted.
    let miss = http(
        &base,
        "GET",
        "/ucwa/oauth/v1/nowhere?access_token=SuperSecretValue1",
        &[],
        b"",
    );
    assert_eq!(miss.status, 404);
    assert!(
        !miss.text().contains("SuperSecretValue1"),
        "{}",
        miss.text()
    );
    let report = serde_json::to_string(&server.report()).unwrap();
    let log = serde_json::to_string(&server.received()).unwrap();
    for text in [&report, &log] {
        assert!(!text.contains("SuperSecretValue1"), "{text}");
        assert!(!text.contains("AAEBotherPsat"), "{text}");
        assert!(!text.contains("eyJrealtoken"), "{text}");
    }
    assert!(report.contains("access_token=REDACTED-"), "{report}");
    assert_eq!(server.misses().len(), 1);
    assert!(server.report().unplayed.is_empty());
}

#[test]
fn a_150_kb_request_uri_is_refused_and_reported() {
    let (_dir, report) = crate::util::temp_db();
    let report = report.with_file_name("r.json");
    let mut server = Server::replay(
        &sample(),
        &[
            "--session",
            "demo",
            "--feed-end",
            "empty",
            "--report",
            s(&report),
        ],
    );
    let long = format!(
        "/ucwa/oauth/v1/applications/105/people/search?query={}",
        "a".repeat(150 * 1024)
    );
    let mut stream = connect(server.addr());
    write!(
        stream,
        "GET {long} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut got = Vec::new();
    let _ = stream.read_to_end(&mut got);
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("HTTP/1.1 414"),
        "the client gets a clear status: {text}"
    );

    // The HTTP layer reports the refusal when the connection ends: wait for it.
    let start = Instant::now();
    let requests = loop {
        let (_, requests) = control(&server.url, "GET", "requests", Value::Null);
        if requests["requests"][0].is_object() || start.elapsed() > Duration::from_secs(10) {
            break requests;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let entry = &requests["requests"][0];
    assert_eq!(entry["outcome"], "rejected", "{requests}");
    assert_eq!(entry["status"], 414);
    assert_eq!(entry["method"], "GET");
    let (_, r) = control(&server.url, "GET", "report", Value::Null);
    let rejected = &r["rejected"][0];
    assert_eq!(rejected["status"], 414);
    assert!(
        rejected["target"]
            .as_str()
            .unwrap()
            .starts_with("/ucwa/oauth/v1/applications/105/people/search?query=aaa"),
        "{rejected}"
    );
    assert!(rejected["request_line_bytes"].as_u64().unwrap() > 150 * 1024);
    let status = server.terminate(Duration::from_secs(10));
    assert!(status.success());
    assert!(
        server.stderr().contains("1 rejected"),
        "{}",
        server.stderr()
    );
    let written: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(written["rejected"][0]["status"], 414);
}
