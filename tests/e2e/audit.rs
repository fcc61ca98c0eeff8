//! `audit` through the real binary: a session recorded through the proxy is clean (exit 0);
//! exchanges written straight to the store, bypassing the redactor, are reported (exit 1)
//! with session, seq and location, and never with the secret in full.

use std::path::Path;

use serde_json::Value;
use ucwa_replay::demo::{ScriptOptions, record_session};
use ucwa_replay::recording::{EventRow, Exchange};
use ucwa_replay::store::{NewSession, StoreWriter};
use ucwa_replay::ucwa::Representation;

use crate::util::{bin, s};

const TOKEN: &str = "AAEBunredactedToken4242";
const PASSWORD: &str = "correct-horse-battery";
const REFRESH: &str = "RefreshTokenValue777";

fn exchange(seq: u64) -> Exchange {
    Exchange {
        seq,
        started_us: 1_700_000_000_000_000 + seq as i64,
        duration_us: 1_000,
        method: "GET".into(),
        path: "/ucwa/oauth/v1/applications/105".into(),
        http_version: "HTTP/1.1".into(),
        status: Some(200),
        kind: "application".into(),
        representation: Representation::Json,
        match_key: ucwa_replay::recording::MatchKey::parse(&format!("GET /x{seq} json -")).unwrap(),
        upstream: Some("https://fe1.contoso.com".into()),
        ..Default::default()
    }
}

/// A session with secrets in a header, a form body, a JSON body and an event, written
/// without the redactor.
async fn leaky_db(path: &Path) {
    let writer =
        StoreWriter::create(path, &NewSession::new("leaky", "https://fe1.contoso.com")).unwrap();
    let sink = writer.sink();
    // 1: already redacted, as the proxy writes it.
    let mut clean = exchange(1);
    clean
        .request_headers
        .push("authorization", "Bearer cwt=REDACTED-1");
    sink.submit(clean);
    // 2: the token POST and its answer, unredacted.
    let mut token = exchange(2);
    token.method = "POST".into();
    token.path = "/WebTicket/oauthtoken".into();
    token
        .request_headers
        .push("content-type", "application/x-www-form-urlencoded");
    token.request_body = format!("grant_type=password&password={PASSWORD}").into_bytes();
    token
        .response_headers
        .push("content-type", "application/json");
    token.response_body =
        format!(r#"{{"access_token":"cwt={TOKEN}","refresh_token":"{REFRESH}"}}"#).into_bytes();
    sink.submit(token);
    // 3: a bearer token in the header, and an event embedding a secret.
    let mut feed = exchange(3);
    feed.request_headers
        .push("authorization", format!("Bearer cwt={TOKEN}"));
    feed.events = vec![EventRow {
        link_rel: "me".into(),
        event_type: "updated".into(),
        embedded: Some(format!(r#"{{"password":"{PASSWORD}"}}"#)),
        ..EventRow::default()
    }];
    sink.submit(feed);
    drop(sink);
    writer.finish().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_session_is_clean() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rec.sqlite");
    record_session(&db, "s", 3, &ScriptOptions::default())
        .await
        .unwrap();
    let out = bin(&["audit", "--db", s(&db)]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.starts_with("clean: no secret-looking material"),
        "{text}"
    );

    let out = bin(&[
        "audit",
        "--db",
        s(&db),
        "--session",
        "s",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["findings"], Value::Array(vec![]));
    assert!(report["exchanges"].as_u64().unwrap() > 10);

    // A user regex finds what the defaults do not consider secret.
    let out = bin(&["audit", "--db", s(&db), "--regex", "alice@contoso\\.com"]);
    assert_eq!(out.status.code(), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unredacted_exchanges_are_reported_masked() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rec.sqlite");
    leaky_db(&db).await;

    let out = bin(&["audit", "--db", s(&db)]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}");
    for secret in [TOKEN, PASSWORD, REFRESH] {
        assert!(!text.contains(secret), "{secret} printed:\n{text}");
    }
    assert!(!text.contains("leaky#1 "), "seq 1 is clean:\n{text}");
    for line in [
        "leaky#2  request.body password  secret field  corr…",
        "leaky#2  response.body /refresh_token  secret field  Refr…",
        "leaky#2  response.body  cwt token  cwt=AAEB…",
        "leaky#3  request.header authorization  cwt token  cwt=AAEB…",
        "leaky#3  events[0].embedded /password  secret field  corr…",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in:\n{text}"
        );
    }
    assert!(
        text.lines()
            .last()
            .unwrap()
            .contains("in 2 of 3 exchanges (1 session)"),
        "{text}"
    );

    let out = bin(&["audit", "--db", s(&db), "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = report["findings"].as_array().unwrap();
    assert!(findings.iter().all(|f| f["session"] == "leaky"));
    assert!(
        findings
            .iter()
            .any(|f| f["seq"] == 3 && f["location"] == "request.header authorization")
    );
}

#[test]
fn unreadable_input_is_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin(&["audit", "--db", s(&dir.path().join("none.sqlite"))]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("ucwa-replay: error: ") && err.contains("no such recording"),
        "{err}"
    );
    let out = bin(&[
        "audit",
        "--db",
        s(&dir.path().join("none.sqlite")),
        "--regex",
        "(",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid --regex"));
}
