//! The inspect commands (`sessions`, `show`, `events`) on a recording built with the store
//! writer, run through the real binary.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use ucwa_replay::recording::Exchange;
use ucwa_replay::store::{NewSession, StoreWriter};
use ucwa_replay::ucwa::Representation;
use ucwa_replay::ucwa::{ack_of, parse_events};

const APP: &str = "/ucwa/oauth/v1/applications/105";

fn exchange(
    seq: u64,
    method: &str,
    path: &str,
    query: Option<&str>,
    status: Option<u16>,
) -> Exchange {
    Exchange {
        seq,
        started_us: 1_700_000_000_000_000 + seq as i64 * 1000,
        duration_us: 2_500,
        method: method.into(),
        path: path.into(),
        query: query.map(str::to_owned),
        http_version: "HTTP/1.1".into(),
        status,
        kind: "other".into(),
        match_key: ucwa_replay::recording::KeyRequest::new(method, path)
            .key(&ucwa_replay::recording::KeyOptions::default()),
        credential: Some("REDACTED-1".into()),
        upstream: Some("https://fe1.contoso.com".into()),
        ..Default::default()
    }
}

fn events_body() -> String {
    format!(
        r#"{{"_links":{{"self":{{"href":"{APP}/events?ack=3"}},"next":{{"href":"{APP}/events?ack=4"}}}},
  "sender":[{{"rel":"conversation","href":"{APP}/communication/conversations/137",
    "events":[
      {{"link":{{"rel":"participantMessaging","href":"{APP}/communication/conversations/137/participants/lenea@contoso.com/messaging"}},
        "in":{{"rel":"participant","href":"{APP}/communication/conversations/137/participants/lenea@contoso.com"}},"type":"added"}},
      {{"link":{{"rel":"participantMessaging","href":"{APP}/communication/conversations/137/participants/lenea@contoso.com/messaging"}},
        "in":{{"rel":"participant","href":"{APP}/communication/conversations/137/participants/lenea@contoso.com"}},"type":"deleted"}}]}}]}}"#
    )
}

async fn build(dir: &Path) -> PathBuf {
    let path = dir.join("rec.sqlite");
    let writer = StoreWriter::create(
        &path,
        &NewSession::new("im-json", "https://fe1.contoso.com"),
    )
    .unwrap();
    let sink = writer.sink();
    let mut app = exchange(1, "POST", "/ucwa/oauth/v1/applications", None, Some(201));
    app.kind = "applications".into();
    sink.submit(app);
    let mut feed = exchange(
        2,
        "GET",
        &format!("{APP}/events"),
        Some("ack=3&timeout=180"),
        Some(200),
    );
    feed.kind = "events".into();
    feed.response_body = events_body().into_bytes();
    feed.events = parse_events(
        Representation::Json,
        &feed.response_body,
        ack_of(feed.query.as_deref()),
    )
    .unwrap();
    assert_eq!(feed.events.len(), 2);
    sink.submit(feed);
    let mut failed = exchange(3, "GET", &format!("{APP}/me"), None, None);
    failed.kind = "me".into();
    failed.error = Some("upstream refused the connection".into());
    failed.response_truncated = true;
    sink.submit(failed);
    drop(sink);
    writer.finish().await.unwrap();
    path
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ucwa-replay"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test]
async fn sessions_show_events_in_text_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let db = build(dir.path()).await;
    let db = db.to_str().unwrap();

    let (code, out, err) = run(&["sessions", "--db", db]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("SESSION"), "{out}");
    assert!(lines[1].starts_with("im-json"), "{out}");
    assert!(lines[1].contains("https://fe1.contoso.com"), "{out}");
    let cols: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(&cols[cols.len() - 2..], ["3", "2"], "{out}");

    let (code, out, _) = run(&["sessions", "--db", db, "--format", "json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["name"], "im-json");
    assert_eq!(v[0]["exchanges"], 3);
    assert_eq!(v[0]["events"], 2);

    let (code, out, err) = run(&["show", "--db", db, "--session", "im-json"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(
        lines[0].contains("SEQ") && lines[0].contains("KIND"),
        "{out}"
    );
    assert!(
        lines[2].contains(&format!("{APP}/events?ack=3&timeout=180")),
        "{out}"
    );
    assert!(
        lines[2].contains("events") && lines[2].contains("200") && lines[2].contains("2.5"),
        "{out}"
    );
    assert!(
        lines[3].contains("error: upstream refused") && lines[3].contains("response truncated"),
        "{out}"
    );

    // --session is optional with one session.
    let (code, out, _) = run(&["show", "--db", db, "--format", "json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 3);
    assert_eq!(v[1]["kind"], "events");
    assert_eq!(v[1]["duration_ms"], 2.5);
    assert_eq!(v[1]["events"], 2);
    assert_eq!(v[2]["status"], Value::Null);
    assert_eq!(v[2]["response_truncated"], true);

    let (code, out, err) = run(&["events", "--db", db, "--session", "im-json"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[1].contains("participantMessaging")
            && lines[1].contains("added")
            && lines[1].contains("participant"),
        "{out}"
    );
    assert!(lines[2].contains("deleted"), "{out}");

    let (code, out, _) = run(&["events", "--db", db, "--format", "json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["seq"], 2);
    assert_eq!(v[0]["ack"], 3);
    assert_eq!(v[0]["position"], 0);
    assert_eq!(v[1]["position"], 1);
    assert_eq!(v[0]["sender_rel"], "conversation");
    assert_eq!(v[0]["type"], "added");
    assert_eq!(v[1]["type"], "deleted");
    assert_eq!(v[0]["link_rel"], "participantMessaging");
    assert_eq!(v[0]["in_rel"], "participant");
}

fn assert_one_line_error(args: &[&str], file: Option<&Path>, needle: &str) {
    let before = file.and_then(|f| std::fs::read(f).ok());
    let (code, out, err) = run(args);
    assert_eq!(code, 2, "{args:?}: {err}");
    assert_eq!(out, "");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("ucwa-replay: error:"), "{err}");
    assert!(err.contains(needle), "{err}");
    if let Some(f) = file {
        assert_eq!(std::fs::read(f).ok(), before, "file changed");
    }
}

#[tokio::test]
async fn bad_inputs_exit_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.sqlite");
    for cmd in ["sessions", "show", "events"] {
        assert_one_line_error(
            &[cmd, "--db", missing.to_str().unwrap()],
            None,
            "no such recording",
        );
    }
    assert!(!missing.exists());

    let garbage = dir.path().join("garbage.sqlite");
    std::fs::write(
        &garbage,
        b"this is not a database, just some text bytes..........",
    )
    .unwrap();
    for cmd in ["sessions", "show", "events"] {
        assert_one_line_error(
            &[cmd, "--db", garbage.to_str().unwrap()],
            Some(&garbage),
            "not a SQLite database",
        );
    }

    let db = build(dir.path()).await;
    for cmd in ["show", "events"] {
        assert_one_line_error(
            &[cmd, "--db", db.to_str().unwrap(), "--session", "zzz"],
            Some(&db),
            "no session named \"zzz\"",
        );
    }
}

/// Names and methods written by another program (or an older version) with control
/// characters: printed escaped, so an ESC cannot recolour the terminal nor a newline forge a
/// row. JSON keeps the value (escaped by JSON itself).
#[tokio::test]
async fn control_characters_in_recorded_values_are_printed_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let db = build(dir.path()).await;
    let evil = "im\u{1b}[31mred\nEVIL  row";
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute("UPDATE sessions SET name = ?1", [evil])
            .unwrap();
        conn.execute(
            "UPDATE exchanges SET method = 'GE\nT', path = path || char(27) || '[2J' WHERE seq = 1",
            [],
        )
        .unwrap();
    }
    let db = db.to_str().unwrap();
    let (code, out, err) = run(&["sessions", "--db", db]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.contains("im\\u{1b}[31mred\\nEVIL  row"), "{out}");
    let (code, out, err) = run(&["show", "--db", db, "--session", evil]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines().count(),
        4,
        "a header and three exchanges: {out}"
    );
    assert!(out.contains("GE\\nT"), "{out}");
    assert!(out.contains("/applications\\u{1b}[2J"), "{out}");
    assert!(!out.chars().any(|c| c.is_control() && c != '\n'), "{out:?}");
    let (code, out, _) = run(&["show", "--db", db, "--session", evil, "--format", "json"]);
    assert_eq!(code, 0);
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rows[0]["method"], "GE\nT");
}
