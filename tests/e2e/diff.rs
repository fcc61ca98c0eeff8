//! `ucwa-replay diff` and `verify`: recordings built with the store writer (realistic UCWA
//! exchanges), compared through the library and through the real binary.

use std::path::{Path, PathBuf};
use std::process::Command;

use http::Method;
use serde_json::{Value, json};
use ucwa_replay::demo::UcwaClient;
use ucwa_replay::diff::{ChangeKind, DiffOptions, DiffReport, Part, diff_sessions};
use ucwa_replay::recording::{
    EventRow, Exchange, HeaderList, KeyOptions, KeyRequest, ResourceKind,
};
use ucwa_replay::store::{NewSession, Recording, StoreWriter};
use ucwa_replay::ucwa::Representation;

use crate::util::{ReplyExt, Server, s};

const UCWA_XML: &str = "application/vnd.microsoft.com.ucwa+xml";

/// Knobs of one scripted session: the ids the server handed out, and injected changes.
#[derive(Clone)]
struct Script {
    app: u32,
    conv: u32,
    part: &'static str,
    date_ms: u64,
    /// 500 on the second participantMessaging GET.
    error_pm: bool,
    /// participantMessaging's participant link points at another participant.
    changed_link: bool,
    /// An extra `message completed` event.
    extra_event: bool,
    /// The XML participantMessaging names another participant.
    xml_change: bool,
    /// Deliver every event in one batch instead of three.
    one_batch: bool,
}

impl Script {
    fn base() -> Self {
        Script {
            app: 105,
            conv: 137,
            part: "196",
            date_ms: 1_474_932_027_613,
            error_pm: false,
            changed_link: false,
            extra_event: false,
            xml_change: false,
            one_batch: false,
        }
    }

    fn other_ids() -> Self {
        Script {
            app: 106,
            conv: 912,
            part: "197",
            date_ms: 1_474_999_999_999,
            one_batch: true,
            ..Script::base()
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn exchange(
    seq: u64,
    method: &str,
    target: &str,
    accept: Option<&str>,
    req: Option<(&str, &str)>,
    status: u16,
    resp: Option<(&str, String)>,
    kind: &str,
) -> Exchange {
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (target.to_string(), None),
    };
    let mut request_headers = HeaderList::default();
    if let Some(a) = accept {
        request_headers.push("accept", a);
    }
    request_headers.push("authorization", "Bearer cwt=REDACTED-1");
    if let Some((ct, _)) = req {
        request_headers.push("content-type", ct);
    }
    let mut response_headers = HeaderList::default();
    response_headers.push(
        "date",
        format!("Thu, 26 Nov 2026 20:{:02}:00 GMT", seq % 60),
    );
    response_headers.push("x-ms-correlation-id", format!("corr-{seq}-{}", status));
    if let Some((ct, _)) = &resp {
        response_headers.push("content-type", *ct);
    }
    let request_body = req.map(|(_, b)| b.as_bytes().to_vec()).unwrap_or_default();
    let key = KeyRequest {
        method,
        path: &path,
        query: query.as_deref(),
        accept,
        content_type: req.map(|(ct, _)| ct),
        body: &request_body,
    }
    .key(&KeyOptions::default());
    Exchange {
        seq,
        started_us: seq as i64 * 1000,
        duration_us: 10,
        method: method.into(),
        path,
        query,
        http_version: "HTTP/1.1".into(),
        request_headers,
        request_body,
        status: Some(status),
        response_headers,
        response_body: resp.map(|(_, b)| b.into_bytes()).unwrap_or_default(),
        kind: kind.into(),
        representation: Representation::from_accept(accept),
        match_key: key,
        credential: Some("REDACTED-1".into()),
        upstream: Some("https://fe1.contoso.com".into()),
        ..Default::default()
    }
}

/// A JSON GET answered with a JSON body.
fn get_json(seq: u64, target: &str, status: u16, body: String, kind: &str) -> Exchange {
    exchange(
        seq,
        "GET",
        target,
        Some("application/json"),
        None,
        status,
        Some(("application/json", body)),
        kind,
    )
}

fn event(
    ack: i64,
    position: u32,
    sender: (&str, &str),
    link: (&str, &str),
    in_: Option<(&str, &str)>,
    ty: &str,
    embedded: Option<Value>,
) -> EventRow {
    EventRow {
        ack: Some(ack),
        position,
        sender_rel: sender.0.into(),
        sender_href: sender.1.into(),
        link_rel: link.0.into(),
        link_href: link.1.into(),
        link_title: None,
        in_rel: in_.map(|i| i.0.into()),
        in_href: in_.map(|i| i.1.into()),
        event_type: ty.into(),
        status: None,
        reason: None,
        embedded: embedded.map(|v| v.to_string()),
    }
}

/// A realistic session: sign-in, application, the events feed and participantMessaging in
/// JSON and XML.
fn script(s: &Script) -> Vec<Exchange> {
    let app = format!("/ucwa/oauth/v1/applications/{}", s.app);
    let conv = format!("{app}/communication/conversations/{}", s.conv);
    let part = format!("{conv}/participants/{}", s.part);
    let other = format!("{conv}/participants/alice");
    let pm = format!("{part}/messaging");
    let linked = if s.changed_link { &other } else { &part };
    let pm_json = |link: &str| json!({"rel":"participantMessaging","_links":{"self":{"href":pm},"participant":{"href":link}}});
    let pm_xml = |link: &str| {
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?><resource rel="participantMessaging" href="{pm}" xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><link rel="participant" href="{link}" /><property name="rel">participantMessaging</property></resource>"#
        )
    };
    let feed = |ack: i64| {
        let body = json!({"_links":{"self":{"href":format!("{app}/events?ack={ack}")},"next":{"href":format!("{app}/events?ack={}", ack + 1)}},"sender":[]});
        (
            format!("{app}/events?ack={ack}&timeout=180"),
            body.to_string(),
        )
    };
    let mut out = Vec::new();
    out.push(exchange(
        1,
        "POST",
        "/WebTicket/oauthtoken",
        None,
        Some(("application/x-www-form-urlencoded", "grant_type=password&username=REDACTED-2&password=REDACTED-3")),
        200,
        Some(("application/json", json!({"access_token":"cwt=REDACTED-1","expires_in":28289,"ms_rtc_identityscope":"local","token_type":"Bearer"}).to_string())),
        "token",
    ));
    let endpoint =
        json!({"UserAgent":"bot","EndpointId":s.date_ms.to_string(),"Culture":"en-US"}).to_string();
    let mut created = exchange(
        2,
        "POST",
        "/ucwa/oauth/v1/applications",
        Some("application/json"),
        Some(("application/json", &endpoint)),
        201,
        Some(("application/json", json!({"rel":"application","culture":"en-US","userAgent":"bot",
            "_links":{"self":{"href":app},"events":{"href":format!("{app}/events?ack=1")},"batch":{"href":format!("{app}/batch")}},
            "_embedded":{"me":{"rel":"me","name":"Tosh","lastSeen":format!("/Date({})/", s.date_ms),"_links":{"self":{"href":format!("{app}/me")}}}}}).to_string())),
        "application",
    );
    created.response_headers.push("location", app.clone());
    out.push(created);

    let sender = ("conversation", conv.as_str());
    let pm_in_participant = Some(("participant", part.as_str()));
    let pm_event = |ack, position, ty, embedded| {
        event(
            ack,
            position,
            sender,
            ("participantMessaging", &pm),
            pm_in_participant,
            ty,
            embedded,
        )
    };
    let mut evs = vec![
        event(1, 0, sender, ("conversation", &conv), None, "added", None),
        event(1, 1, sender, ("participant", &part), None, "added", None),
        pm_event(2, 0, "added", Some(pm_json(linked))),
        pm_event(2, 1, "updated", None),
        pm_event(3, 0, "deleted", None),
    ];
    if s.extra_event {
        evs.insert(
            4,
            event(
                2,
                2,
                sender,
                ("message", &format!("{conv}/messaging/messages/1")),
                None,
                "completed",
                None,
            ),
        );
    }
    if s.one_batch {
        for (i, e) in evs.iter_mut().enumerate() {
            e.ack = Some(1);
            e.position = i as u32;
        }
    }
    let batch = |ack: i64| -> Vec<EventRow> {
        evs.iter().filter(|e| e.ack == Some(ack)).cloned().collect()
    };

    let mut seq = 3;
    let push_feed = |out: &mut Vec<Exchange>, ack: i64, seq: &mut u64| {
        let (target, body) = feed(ack);
        let mut e = get_json(*seq, &target, 200, body, "events");
        e.events = batch(ack);
        out.push(e);
        *seq += 1;
    };
    push_feed(&mut out, 1, &mut seq);
    let pm_get = |seq: u64| {
        get_json(
            seq,
            &pm,
            200,
            pm_json(linked).to_string(),
            "participantMessaging",
        )
    };
    out.push(pm_get(seq));
    seq += 1;
    let xml_link = if s.xml_change { &other } else { &part };
    out.push(exchange(
        seq,
        "GET",
        &pm,
        Some(UCWA_XML),
        None,
        200,
        Some((
            "application/vnd.microsoft.com.ucwa+xml; charset=utf-8",
            pm_xml(xml_link),
        )),
        "participantMessaging",
    ));
    seq += 1;
    push_feed(&mut out, 2, &mut seq);
    if s.error_pm {
        out.push(get_json(seq, &pm, 500,
            json!({"code":"ServiceFailure","subcode":"InvalidExchangeServerVersion","message":"boom"}).to_string(), "participantMessaging"));
    } else {
        out.push(pm_get(seq));
    }
    seq += 1;
    push_feed(&mut out, 3, &mut seq);
    out.push(exchange(
        seq,
        "POST",
        &format!("{conv}/messaging/messages"),
        Some("application/json"),
        Some(("text/plain", "Hi Tosh")),
        201,
        None,
        "sendMessage",
    ));
    // Volatile headers differ from run to run.
    for e in &mut out {
        e.response_headers.remove("date");
        e.response_headers.remove("x-ms-correlation-id");
        e.response_headers.push(
            "date",
            format!("Thu, 26 Nov 2026 20:{:02}:00 GMT", (s.date_ms + e.seq) % 60),
        );
        e.response_headers.push(
            "x-ms-correlation-id",
            format!("corr-{}-{}", s.date_ms, e.seq),
        );
    }
    out
}

async fn write_session(path: &Path, name: &str, exchanges: Vec<Exchange>) {
    let writer =
        StoreWriter::create(path, &NewSession::new(name, "https://fe1.contoso.com")).unwrap();
    let sink = writer.sink();
    for e in exchanges {
        sink.submit(e);
    }
    drop(sink);
    writer.finish().await.unwrap();
}

async fn recording(dir: &Path, file: &str, s: &Script) -> PathBuf {
    let path = dir.join(file);
    write_session(&path, "s", script(s)).await;
    path
}

/// `Script::base()` recorded as `a.sqlite` and `b` as `b.sqlite` in `dir`.
async fn base_and(dir: &Path, b: Script) -> (PathBuf, PathBuf) {
    (
        recording(dir, "a.sqlite", &Script::base()).await,
        recording(dir, "b.sqlite", &b).await,
    )
}

/// `ucwa-replay diff A B EXTRA...`.
fn diff_ab(a: &Path, b: &Path, extra: &[&str]) -> Run {
    run(&[&["diff", s(a), s(b)][..], extra].concat())
}

/// `diff A B` (text): exit `code`, and every needle in the report.
fn diff_says(a: &Path, b: &Path, code: i32, needles: &[&str]) {
    let r = diff_ab(a, b, &[]);
    assert_eq!(r.code, code, "{}{}", r.stdout, r.stderr);
    for needle in needles {
        assert!(r.stdout.contains(needle), "{}", r.stdout);
    }
}

fn lib_diff(a: &Path, b: &Path, opts: &DiffOptions) -> DiffReport {
    let ra = Recording::open(a).unwrap();
    let rb = Recording::open(b).unwrap();
    let sa = ra.session(None).unwrap();
    let sb = rb.session(None).unwrap();
    diff_sessions(&ra, &sa, &rb, &sb, opts).unwrap()
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// stdout parsed as JSON (`--format json`).
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }
}

fn run(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_ucwa-replay"))
        .args(args)
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test]
async fn same_script_with_other_ids_and_batching_is_equal_when_normalised() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = base_and(dir.path(), Script::other_ids()).await;
    let report = lib_diff(&a, &b, &DiffOptions::default());
    assert!(
        report.is_equal(),
        "{}",
        serde_json::to_string_pretty(&report).unwrap()
    );
    assert_eq!(report.summary.paired, 6);
    assert_eq!(report.summary.events.equal, 5);

    diff_says(
        &a,
        &b,
        0,
        &["paired 6, equal 6, changed 0, added 0, removed 0; events: A 5, B 5, equal 5"],
    );

    // Without normalisation the ids show (and pairing by raw key fails for the id'd paths).
    let r = diff_ab(&a, &b, &["--no-normalize", "--format", "json"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let v = r.json();
    assert_eq!(v["schema"], "ucwa-replay.diff/1");
    assert_eq!(v["normalized"], false);
    let removed: Vec<&str> = v["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "removed")
        .map(|e| e["a"]["target"].as_str().unwrap())
        .collect();
    assert!(
        removed.iter().any(|t| t.contains(
            "/applications/105/communication/conversations/137/participants/196/messaging"
        )),
        "{removed:?}"
    );
    // The application POST pairs (same key), and its body differs by ids.
    let app = v["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["resource"] == "application")
        .unwrap();
    let paths: Vec<&str> = app["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&"/_links/self/href"), "{paths:?}");
    assert!(paths.contains(&"location"), "{paths:?}");
    assert!(v["summary"]["events"]["changed"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn error_status_on_participant_messaging() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = base_and(
        dir.path(),
        Script {
            error_pm: true,
            ..Script::other_ids()
        },
    )
    .await;
    let report = lib_diff(&a, &b, &DiffOptions::default());
    assert_eq!(report.summary.changed, 1);
    let ex = &report.exchanges[0];
    assert_eq!(
        (ex.method.as_str(), ex.resource.as_str(), ex.ordinal),
        ("GET", "participantMessaging", 1)
    );
    assert_eq!(ex.changes[0].part, Part::Status);
    assert_eq!(ex.changes[0].kind, ChangeKind::Changed);
    assert_eq!(
        (ex.changes[0].a.as_deref(), ex.changes[0].b.as_deref()),
        (Some("200"), Some("500"))
    );
    assert!(
        ex.changes
            .iter()
            .any(|c| c.path == "/code" && c.kind == ChangeKind::Added)
    );

    diff_says(&a, &b, 1, &["GET …/196/messaging #2: status: 200 → 500"]);
    let r = diff_ab(&a, &b, &["--format", "json"]);
    assert_eq!(r.code, 1);
    let v = r.json();
    assert_eq!(
        v["exchanges"][0]["changes"][0],
        json!({"part":"status","path":"","kind":"changed","a":"200","b":"500"})
    );
    assert_eq!(v["exchanges"][0]["a"]["seq"], 7);
}

#[tokio::test]
async fn changed_participant_link_is_reported_by_pointer() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = base_and(
        dir.path(),
        Script {
            changed_link: true,
            ..Script::base()
        },
    )
    .await;
    let report = lib_diff(&a, &b, &DiffOptions::default());
    // Both participantMessaging JSON GETs and the embedded resource of the `added` event.
    assert_eq!(report.summary.changed, 2, "{}", report.summary());
    for ex in &report.exchanges {
        assert_eq!(ex.changes.len(), 1);
        let c = &ex.changes[0];
        assert_eq!(
            (c.part, c.path.as_str(), c.kind),
            (Part::Body, "/_links/participant/href", ChangeKind::Changed)
        );
    }
    assert_eq!(report.summary.events.changed, 1);
    let ev = &report.events[0];
    assert_eq!(
        ev.changes[0].path,
        "/_embedded/participantMessaging/_links/participant/href"
    );
    assert_eq!(ev.a.as_ref().unwrap().ack, Some(2));

    diff_says(
        &a,
        &b,
        1,
        &[
            r#"GET …/196/messaging #1: body /_links/participant/href: "…/participants/196" → "…/participants/alice""#,
            "event 3 (ack 2 → ack 2): conversation participantMessaging added: /_embedded/participantMessaging/_links/participant/href",
        ],
    );
    let r = diff_ab(&a, &b, &["--format", "json"]);
    let v = r.json();
    assert_eq!(
        v["exchanges"][0]["changes"][0]["path"],
        "/_links/participant/href"
    );
    assert_eq!(v["exchanges"][0]["changes"][0]["kind"], "changed");

    // --ignore silences it (also inside embedded resources of events).
    let r = diff_ab(&a, &b, &["--ignore", "/_links/*/href"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
}

#[tokio::test]
async fn an_extra_event_is_one_insertion_naming_its_ack() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = base_and(
        dir.path(),
        Script {
            extra_event: true,
            ..Script::other_ids()
        },
    )
    .await;
    let report = lib_diff(&a, &b, &DiffOptions::default());
    assert_eq!(report.summary.changed, 0);
    assert_eq!(report.summary.events.added, 1, "{}", report.summary());
    assert_eq!(report.events.len(), 1);
    let e = &report.events[0];
    assert_eq!(e.kind, ChangeKind::Added);
    let b_ref = e.b.as_ref().unwrap();
    assert_eq!(
        (
            b_ref.link_rel.as_str(),
            b_ref.event_type.as_str(),
            b_ref.ack,
            b_ref.index
        ),
        ("message", "completed", Some(1), 4)
    );

    diff_says(
        &a,
        &b,
        1,
        &["event +5 (B ack 1, seq 3): conversation message completed"],
    );
    let r = diff_ab(&a, &b, &["--format", "json"]);
    let v = r.json();
    assert_eq!(v["events"][0]["kind"], "added");
    assert_eq!(v["events"][0]["b"]["type"], "completed");
    assert_eq!(v["summary"]["events"]["added"], 1);
}

#[tokio::test]
async fn changed_xml_body_is_compared_with_its_xml_counterpart_only() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = base_and(
        dir.path(),
        Script {
            xml_change: true,
            ..Script::other_ids()
        },
    )
    .await;
    let report = lib_diff(&a, &b, &DiffOptions::default());
    assert_eq!(report.summary.changed, 1, "{}", report.summary());
    let ex = &report.exchanges[0];
    assert_eq!(ex.representation, "xml");
    assert_eq!(ex.changes.len(), 1);
    assert_eq!(ex.changes[0].path, "/resource/link[@rel=participant]/@href");

    diff_says(
        &a,
        &b,
        1,
        &[
            r#"GET …/196/messaging #1: body /resource/link[@rel=participant]/@href: "…/participants/196" → "…/participants/alice""#,
        ],
    );
    let r = diff_ab(&a, &b, &["--format", "json"]);
    let v = r.json();
    assert_eq!(
        v["exchanges"][0]["changes"][0]["path"],
        "/resource/link[@rel=participant]/@href"
    );
    assert_eq!(v["exchanges"][0]["representation"], "xml");
}

#[tokio::test]
async fn two_sessions_of_one_file_and_header_switches() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("both.sqlite");
    write_session(&path, "before", script(&Script::base())).await;
    write_session(&path, "after", script(&Script::other_ids())).await;
    let a = format!("{}#before", s(&path));
    let b = format!("{}#after", s(&path));
    let r = run(&["diff", &a, &b]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    // A file with two sessions needs #SESSION.
    let r = run(&["diff", s(&path), &b]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("holds 2 sessions"), "{}", r.stderr);
    // Correlation ids differ per exchange, but are normalised when compared…
    let r = run(&["diff", &a, &b, "--header", "X-MS-Correlation-Id"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    // …and show without normalisation; --ignore-header takes Location out.
    let r = run(&[
        "diff",
        &a,
        &b,
        "--header",
        "date",
        "--no-normalize",
        "--ignore-header",
        "location",
        "--format",
        "json",
    ]);
    let v = r.json();
    let headers: Vec<&str> = v["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["changes"].as_array().unwrap())
        .filter(|c| c["part"] == "header")
        .map(|c| c["path"].as_str().unwrap())
        .collect();
    assert!(headers.contains(&"date"), "{headers:?}");
    assert!(!headers.contains(&"location"), "{headers:?}");
    // --raw keeps one family raw: the application's lastSeen date shows, nothing else.
    let r = run(&["diff", &a, &b, "--raw", "dates", "--format", "json"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let v = r.json();
    assert_eq!(v["summary"]["changed"], 1, "{v:#}");
    assert_eq!(
        v["exchanges"][0]["changes"][0]["path"],
        "/_embedded/me/lastSeen"
    );
    assert_eq!(
        v["exchanges"][0]["changes"][0]["a"],
        "\"/Date(1474932027613)/\""
    );
    // A bad pointer is a usage error.
    let r = run(&["diff", &a, &b, "--ignore", "_links"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--ignore pointer"), "{}", r.stderr);
}

#[tokio::test]
async fn bad_input_is_exit_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = recording(dir.path(), "good.sqlite", &Script::base()).await;
    let garbage = dir.path().join("garbage.sqlite");
    std::fs::write(
        &garbage,
        b"definitely not sqlite, just some bytes of text here",
    )
    .unwrap();
    let foreign = dir.path().join("foreign.sqlite");
    write_foreign_sqlite(&foreign);
    let newer = dir.path().join("newer.sqlite");
    std::fs::copy(&good, &newer).unwrap();
    set_user_version(&newer, 99);

    let missing = dir.path().join("missing.sqlite");
    let cases: Vec<(String, &str)> = vec![
        (s(&missing).to_string(), "no such recording"),
        (format!("{}#nope", s(&good)), "no session named \"nope\""),
        (s(&garbage).to_string(), "not a SQLite database"),
        (s(&foreign).to_string(), "not a ucwa-replay recording"),
        (s(&newer).to_string(), "newer ucwa-replay"),
    ];
    for (target, expect) in cases {
        let r = run(&["diff", s(&good), &target]);
        assert_eq!(r.code, 2, "{target}: {}{}", r.stdout, r.stderr);
        assert!(r.stdout.is_empty(), "{}", r.stdout);
        let lines: Vec<&str> = r.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{target}: {}", r.stderr);
        assert!(lines[0].starts_with("ucwa-replay: error: "), "{}", lines[0]);
        assert!(lines[0].contains(expect), "{target}: {}", lines[0]);
    }
}

/// A SQLite database that is not a recording: made with the `sqlite3` shell when present,
/// else written by hand as the one-page empty database (header + empty schema page).
fn write_foreign_sqlite(path: &Path) {
    // An empty database made by `sqlite3 x.db 'create table t(x)'` is simplest to produce
    // through the store itself: create a recording, then rename its tables away.
    let status = Command::new("sqlite3")
        .arg(path)
        .arg("CREATE TABLE t(x);")
        .status();
    if status.map(|s| s.success()).unwrap_or(false) {
        return;
    }
    // Fallback: the minimal valid empty database file (one page, no schema) is not "a
    // recording" either.
    let mut page = vec![0u8; 4096];
    page[..16].copy_from_slice(b"SQLite format 3\0");
    page[16] = 0x10; // page size 4096
    page[17] = 0x00;
    page[18] = 1;
    page[19] = 1;
    page[21] = 64;
    page[22] = 32;
    page[23] = 32;
    page[27] = 1; // change counter
    page[31] = 1; // database size in pages
    page[47] = 4; // schema format
    page[59] = 1; // text encoding utf-8 (offset 56..60)
    page[95] = 1; // version-valid-for
    page[100] = 0x0d; // leaf table b-tree page, no cells
    page[105] = 0x10; // cell content area starts at 4096
    std::fs::write(path, page).unwrap();
}

fn set_user_version(path: &Path, v: u32) {
    // user_version lives at byte offset 60 of the database header (big-endian).
    let mut bytes = std::fs::read(path).unwrap();
    bytes[60..64].copy_from_slice(&v.to_be_bytes());
    std::fs::write(path, bytes).unwrap();
}

// ---------------------------------------------------------------------------------------
// End to end: the simulator, the recording proxy, diff and verify through the real binary.

const PASSWORD: &str = "Pa55w0rd!";
/// `verify`'s sign-in arguments for the simulator's alice.
const ALICE: [&str; 4] = ["--username", "alice@contoso.com", "--password", PASSWORD];

fn simulator(seed: u64) -> Server {
    Server::start(&[
        "simulate",
        "--listen",
        "127.0.0.1:0",
        "--seed",
        &seed.to_string(),
        "--time-scale",
        "0.001",
    ])
}

/// A JSON client of `base` holding alice's token.
async fn signed_in(base: &str) -> UcwaClient {
    let mut c = UcwaClient::new(base, Representation::Json);
    let token = c
        .request(Method::POST, "/WebTicket/oauthtoken")
        .body(
            "application/x-www-form-urlencoded",
            "grant_type=password&username=alice@contoso.com&password=Pa55w0rd%21",
        )
        .send()
        .await
        .unwrap()
        .expect_json();
    c.set_token(Some(token["access_token"].as_str().unwrap().to_string()));
    c
}

/// A UCWA client script: sign in, application, outgoing IM, then the conversation's
/// resources and participantMessaging in JSON and XML. Client-generated ids (EndpointId,
/// operationId) are fresh on every run, as real clients make them.
async fn drive(base: &str, run: u32) {
    let mut c = signed_in(base).await;
    let app = c
        .post_json(
            "/ucwa/oauth/v1/applications",
            &json!({"UserAgent":"diff-test","EndpointId":format!("e-{run}"),"Culture":"en-US"}),
            &[201],
        )
        .await
        .unwrap()
        .expect_json();
    let app_href = app["_links"]["self"]["href"].as_str().unwrap().to_string();
    let mut events = app["_links"]["events"]["href"]
        .as_str()
        .unwrap()
        .to_string();
    c.post_json(
        &format!("{app_href}/me/makeMeAvailable"),
        &json!({"SupportedModalities":["Messaging"]}),
        &[204],
    )
    .await
    .unwrap();
    async fn next_events(c: &mut UcwaClient, events: &mut String) -> Value {
        let v = c.get(events).await.unwrap().expect_json();
        *events = v["_links"]["next"]["href"].as_str().unwrap().to_string();
        v
    }
    next_events(&mut c, &mut events).await;
    let comm = c
        .get(&format!("{app_href}/communication"))
        .await
        .unwrap()
        .expect_json();
    let start = comm["_links"]["startMessaging"]["href"]
        .as_str()
        .unwrap()
        .to_string();
    c.post_json(
        &start,
        &json!({"importance":"Normal","subject":"diff","to":"sip:lenea@contoso.com","operationId":format!("op-{run}")}),
        &[201],
    )
    .await
    .unwrap();
    let mut conv_href = None;
    for _ in 0..4 {
        let batch = next_events(&mut c, &mut events).await;
        for sender in batch["sender"].as_array().into_iter().flatten() {
            for e in sender["events"].as_array().into_iter().flatten() {
                if let Some(h) =
                    e["_embedded"]["messaging"]["_links"]["conversation"]["href"].as_str()
                {
                    conv_href = Some(h.to_string());
                }
            }
        }
        if conv_href.is_some() {
            break;
        }
    }
    let conv_href = conv_href.expect("the conversation started");
    let conv = c.get(&conv_href).await.unwrap().expect_json();
    let parts = c
        .get(conv["_links"]["participants"]["href"].as_str().unwrap())
        .await
        .unwrap()
        .expect_json();
    let remote_href = parts["_links"]["participant"][0]["href"]
        .as_str()
        .unwrap()
        .to_string();
    let remote = c.get(&remote_href).await.unwrap().expect_json();
    let pm = remote["_links"]["participantMessaging"]["href"]
        .as_str()
        .unwrap()
        .to_string();
    c.get(&pm).await.unwrap();
    c.request(Method::GET, &pm)
        .accept(UCWA_XML)
        .expect(&[200])
        .await
        .unwrap();
}

/// Record one run of the script against a fresh simulator as session `name` of `db`.
async fn record_run(db: &Path, name: &str, seed: u64, run: u32) {
    let sim = simulator(seed);
    let mut proxy = Server::record(&sim.url, db, name, &[]);
    drive(&proxy.url, run).await;
    let status = proxy.terminate(std::time::Duration::from_secs(20));
    assert!(status.success(), "{}", proxy.stderr());
}

/// `ucwa-replay verify` of session `one` of `db` against `upstream`, then `rest`.
fn verify_one(db: &Path, upstream: &str, rest: &[&str]) -> Run {
    let head = [
        "verify",
        "--db",
        s(db),
        "--session",
        "one",
        "--upstream",
        upstream,
    ];
    run(&[&head[..], rest].concat())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_recordings_diff_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sim.sqlite");
    record_run(&db, "one", 7, 1).await;
    record_run(&db, "same-seed", 7, 2).await;
    record_run(&db, "other-seed", 8, 3).await;
    let one = format!("{}#one", s(&db));
    // Until redaction lands, the token answer carries the real token: leave it out.
    let ignore = ["--ignore", "/access_token"];
    for other in ["same-seed", "other-seed"] {
        let other = format!("{}#{other}", s(&db));
        let r = run(&[&["diff", &one, &other][..], &ignore].concat());
        assert_eq!(r.code, 0, "{other}:\n{}{}", r.stdout, r.stderr);
    }
    // Different seeds hand out different ids: raw, they show.
    let r = run(&[
        &[
            "diff",
            &one,
            &format!("{}#other-seed", s(&db)),
            "--no-normalize",
            "--format",
            "json",
        ][..],
        &ignore,
    ]
    .concat());
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stdout.contains("/applications/"), "{}", r.stdout);

    // verify against a fresh simulator (other seed): no differences.
    let live = simulator(9);
    let r = verify_one(
        &db,
        &live.url,
        &[
            &ALICE[..],
            &["--new-session", "live", "--events-timeout", "2s"],
        ]
        .concat(),
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("paired 10, equal 10, changed 0, added 0, removed 0"),
        "{}",
        r.stdout
    );
    // The password was never stored.
    let raw = std::fs::read(&db).unwrap();
    let wal = std::fs::read(dir.path().join("sim.sqlite-wal")).unwrap_or_default();
    for bytes in [&raw, &wal] {
        assert!(
            !bytes
                .windows(PASSWORD.len())
                .any(|w| w == PASSWORD.as_bytes())
        );
    }

    // verify against a simulator with an injected error on participantMessaging.
    let broken = simulator(10);
    let ctl = UcwaClient::new(&broken.url, Representation::Json)
        .request(Method::POST, "/_sim/errors")
        .body("application/json", json!({"method":"GET","rel":"participantMessaging","status":500,"subcode":"InvalidExchangeServerVersion","times":1}).to_string())
        .send()
        .await
        .unwrap();
    assert!(ctl.status.is_success());
    let r = verify_one(
        &db,
        &broken.url,
        &[&ALICE[..], &["--new-session", "broken", "--format", "json"]].concat(),
    );
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let v = r.json();
    assert_eq!(v["summary"]["paired"], 10, "{v:#}");
    assert_eq!(v["summary"]["changed"], 1, "{v:#}");
    let ex = &v["exchanges"][0];
    assert_eq!(ex["kind"], "changed", "{v:#}");
    assert!(
        ex["a"]["target"].as_str().unwrap().ends_with("/messaging"),
        "{v:#}"
    );
    assert_eq!(
        ex["changes"][0],
        json!({"part":"status","path":"","kind":"changed","a":"200","b":"500"})
    );
}

#[tokio::test]
async fn an_error_on_the_events_feed_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let a = recording(dir.path(), "a.sqlite", &Script::base()).await;
    let mut exchanges = script(&Script::other_ids());
    let last = exchanges.last().unwrap().seq;
    let mut gone = exchanges
        .iter()
        .find(|e| e.kind == ResourceKind::Events)
        .unwrap()
        .clone();
    gone.seq = last + 1;
    gone.query = Some("ack=4".into());
    gone.status = Some(404);
    gone.events.clear();
    gone.response_body =
        br#"{"code":"NotFound","subcode":"ApplicationNotFound","message":"gone"}"#.to_vec();
    exchanges.push(gone);
    let b = dir.path().join("b.sqlite");
    write_session(&b, "s", exchanges).await;
    let report = lib_diff(&a, &b, &DiffOptions::default());
    assert!(!report.is_equal());
    assert_eq!(report.summary.events.feed_errors_b.get(&404), Some(&1));
    diff_says(&a, &b, 1, &["events feed: error answers: none → 404 ×1"]);
}

// ---------------------------------------------------------------------------------------
// Malformed bodies, the JSON report's member names, and colour.

/// GET /me and a participantMessaging GET, JSON and XML, with the given bodies.
fn malformed_script(me_json: &str, me_xml: &str, pm_json: &str) -> Vec<Exchange> {
    let app = "/ucwa/oauth/v1/applications/105";
    vec![
        get_json(1, &format!("{app}/me"), 200, me_json.to_string(), "me"),
        exchange(
            2,
            "GET",
            &format!("{app}/me"),
            Some(UCWA_XML),
            None,
            200,
            Some((UCWA_XML, me_xml.to_string())),
            "me",
        ),
        get_json(
            3,
            &format!("{app}/communication/conversations/137/participants/196/messaging"),
            200,
            pm_json.to_string(),
            "participantMessaging",
        ),
    ]
}

const ME_JSON: &str =
    r#"{"_links":{"self":{"href":"/ucwa/oauth/v1/applications/105/me"}},"name":"Alice"}"#;
const ME_XML: &str = r#"<?xml version="1.0" encoding="utf-8"?><resource rel="me" href="/ucwa/oauth/v1/applications/105/me" xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><property name="name">Alice</property></resource>"#;
const PM_JSON: &str = r#"{"_links":{"self":{"href":"/ucwa/oauth/v1/applications/105/communication/conversations/137/participants/196/messaging"}},"rel":"participantMessaging"}"#;

#[tokio::test]
async fn malformed_json_and_xml_bodies_are_compared_as_text_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.sqlite");
    let b = dir.path().join("b.sqlite");
    write_session(
        &a,
        "s",
        malformed_script(ME_JSON, ME_XML, "{\"_links\":{\n\"self\":"),
    )
    .await;
    write_session(
        &b,
        "s",
        malformed_script(
            r#"{"_links":{"self":{"href":"/ucwa/oauth/v1/applications/105/me"}},"name":"Alice""#,
            r#"<?xml version="1.0"?><resource rel="me"><property name="name">Alice</resource>"#,
            "{\"_links\":{\n\"other\":",
        ),
    )
    .await;
    // A against itself: malformed bodies equal to themselves are equal.
    let r = diff_ab(&a, &a, &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);

    let r = diff_ab(&a, &b, &["--format", "json"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let v = r.json();
    assert_eq!(v["summary"]["paired"], 3);
    assert_eq!(v["summary"]["changed"], 3);
    let changes = |resource: &str, repr: &str| -> Vec<Value> {
        v["exchanges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["resource"] == resource && e["representation"] == repr)
            .unwrap_or_else(|| panic!("no {resource} {repr} in {v}"))["changes"]
            .as_array()
            .unwrap()
            .clone()
    };
    // Valid JSON against broken JSON: a whole-body difference naming the kinds.
    let me = changes("me", "json");
    assert_eq!(me.len(), 1, "{me:?}");
    assert_eq!(me[0]["part"], "body");
    assert_eq!(me[0]["path"], "");
    assert_eq!(me[0]["a"], "JSON");
    assert!(me[0]["b"].as_str().unwrap().starts_with("text"), "{me:?}");
    // Valid XML against broken XML: the same.
    let me = changes("me", "xml");
    assert_eq!(me.len(), 1, "{me:?}");
    assert_eq!(me[0]["a"], "XML");
    assert!(me[0]["b"].as_str().unwrap().starts_with("text"), "{me:?}");
    // Both broken: compared line by line.
    let pm = changes("participantMessaging", "json");
    assert_eq!(pm.len(), 1, "{pm:?}");
    assert_eq!(pm[0]["path"], "/line/2");
    assert_eq!(pm[0]["kind"], "changed");
    assert_eq!(pm[0]["a"], "\"\\\"self\\\":\"");

    diff_says(
        &a,
        &b,
        1,
        &["paired 3, equal 0, changed 3, added 0, removed 0"],
    );
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect();
    k.sort();
    k
}

#[tokio::test]
async fn json_report_members_are_the_documented_schema() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = base_and(
        dir.path(),
        Script {
            error_pm: true,
            extra_event: true,
            ..Script::base()
        },
    )
    .await;
    let r = diff_ab(&a, &b, &["--format", "json"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let v = r.json();
    // Members may be added in later versions of the schema, never renamed or removed.
    let has = |v: &Value, want: &[&str]| {
        let got = keys(v);
        for w in want {
            assert!(got.contains(w), "no {w:?} in {got:?}");
        }
    };
    assert_eq!(v["schema"], "ucwa-replay.diff/1");
    has(
        &v,
        &[
            "schema",
            "a",
            "b",
            "normalized",
            "equal",
            "summary",
            "exchanges",
            "events",
        ],
    );
    assert_eq!(v["equal"], false);
    has(&v["a"], &["label", "exchanges", "feed_exchanges"]);
    has(&v["b"], &["label", "exchanges", "feed_exchanges"]);
    has(
        &v["summary"],
        &["paired", "equal", "changed", "added", "removed", "events"],
    );
    has(
        &v["summary"]["events"],
        &[
            "a",
            "b",
            "equal",
            "changed",
            "added",
            "removed",
            "feed_errors_a",
            "feed_errors_b",
        ],
    );
    let ex = &v["exchanges"].as_array().unwrap()[0];
    has(
        ex,
        &[
            "kind",
            "method",
            "resource",
            "representation",
            "key",
            "ordinal",
            "a",
            "b",
            "changes",
        ],
    );
    has(&ex["a"], &["seq", "target", "status"]);
    has(&ex["changes"][0], &["part", "path", "kind", "a", "b"]);
    let ev = &v["events"].as_array().unwrap()[0];
    has(ev, &["kind", "a", "b", "changes"]);
    assert_eq!(ev["kind"], "added");
    assert!(ev["a"].is_null());
    has(
        &ev["b"],
        &[
            "index",
            "seq",
            "ack",
            "sender_rel",
            "link_rel",
            "link_href",
            "in_rel",
            "type",
            "status",
        ],
    );
}

#[tokio::test]
async fn colour_only_when_asked_and_never_with_no_color() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = base_and(
        dir.path(),
        Script {
            changed_link: true,
            ..Script::base()
        },
    )
    .await;
    let diff = |env: &[(&str, &str)]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ucwa-replay"));
        cmd.args(["diff", s(&a), s(&b)])
            .env_remove("NO_COLOR")
            .env_remove("CLICOLOR_FORCE")
            .env_remove("CLICOLOR")
            .env("RUST_LOG", "off");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        String::from_utf8(out.stdout).unwrap()
    };
    // Not a terminal: plain.
    let plain = diff(&[]);
    assert!(!plain.contains('\x1b'), "{plain:?}");
    assert!(plain.contains("/_links/participant/href"), "{plain}");
    // Forced: coloured.
    let forced = diff(&[("CLICOLOR_FORCE", "1")]);
    assert!(forced.contains("\x1b["), "{forced:?}");
    // NO_COLOR wins over everything.
    let none = diff(&[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]);
    assert_eq!(none, plain);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_with_a_token_reports_no_difference_and_never_stores_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sim.sqlite");
    record_run(&db, "one", 7, 1).await;
    let live = simulator(9);
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "password")
        .append_pair("username", "alice@contoso.com")
        .append_pair("password", PASSWORD)
        .finish();
    let answer = UcwaClient::new(&live.url, Representation::Json)
        .request(Method::POST, "/WebTicket/oauthtoken")
        .body("application/x-www-form-urlencoded", form)
        .send()
        .await
        .unwrap()
        .expect_json();
    let token = answer["access_token"].as_str().unwrap().to_string();
    assert!(token.starts_with("cwt="), "{answer}");
    let r = verify_one(
        &db,
        &live.url,
        &[
            "--token",
            &token,
            "--new-session",
            "live",
            "--events-timeout",
            "2s",
            "--format",
            "json",
        ],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let v = r.json();
    assert_eq!(v["equal"], true, "{v:#}");
    assert!(v["summary"]["paired"].as_u64().unwrap() >= 8, "{v:#}");
    // The live session was recorded, and the token never reached the disk.
    let rec = Recording::open(&db).unwrap();
    assert!(rec.session(Some("live")).unwrap().exchanges > 0);
    drop(rec);
    let value = token.trim_start_matches("cwt=");
    let mut raw = std::fs::read(&db).unwrap();
    raw.extend(std::fs::read(dir.path().join("sim.sqlite-wal")).unwrap_or_default());
    assert!(
        !raw.windows(value.len()).any(|w| w == value.as_bytes()),
        "the --token value is in the recording"
    );
}

#[tokio::test]
async fn etag_is_off_by_default_and_normalised_when_compared() {
    let dir = tempfile::tempdir().unwrap();
    let with_etag = |etag: &str| {
        let mut ex = malformed_script(ME_JSON, ME_XML, PM_JSON);
        for e in &mut ex {
            e.response_headers.push("etag", format!("\"{etag}\""));
        }
        ex
    };
    let a = dir.path().join("a.sqlite");
    let b = dir.path().join("b.sqlite");
    write_session(&a, "s", with_etag("1447513271")).await;
    write_session(&b, "s", with_etag("3735928559")).await;
    let r = diff_ab(&a, &b, &[]);
    assert_eq!(r.code, 0, "ETag is not compared by default: {}", r.stdout);
    let r = diff_ab(&a, &b, &["--header", "ETag"]);
    assert_eq!(r.code, 0, "compared, but normalised: {}", r.stdout);
    let r = diff_ab(
        &a,
        &b,
        &["--header", "ETag", "--no-normalize", "--format", "json"],
    );
    assert_eq!(r.code, 1, "{}", r.stdout);
    let v = r.json();
    assert_eq!(v["summary"]["changed"], 3, "{v:#}");
    assert_eq!(
        v["exchanges"][0]["changes"][0],
        json!({"part":"header","path":"etag","kind":"changed","a":"\"\\\"1447513271\\\"\"","b":"\"\\\"3735928559\\\"\""})
    );
}

/// Sign in to `base` as alice and create an application with `endpoint_id`: the live
/// server then knows that client.
async fn create_application(base: &str, endpoint_id: &str) {
    let mut c = signed_in(base).await;
    c.post_json(
        "/ucwa/oauth/v1/applications",
        &json!({"UserAgent":"other","EndpointId":endpoint_id,"Culture":"en-US"}),
        &[201],
    )
    .await
    .unwrap();
}

/// A real client sends a fresh EndpointId: re-sending the recorded one got `200` (the
/// server's existing application) where the recording has `201`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_sends_fresh_client_ids() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sim.sqlite");
    record_run(&db, "one", 7, 1).await;
    let live = simulator(9);
    create_application(&live.url, "e-1").await;
    let r = verify_one(
        &db,
        &live.url,
        &[&ALICE[..], &["--new-session", "live"]].concat(),
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let rec = Recording::open(&db).unwrap();
    let live_session = rec.session(Some("live")).unwrap();
    let created = rec
        .exchanges(&live_session)
        .unwrap()
        .into_iter()
        .find(|e| e.method == "POST" && e.path.ends_with("/applications"))
        .unwrap();
    assert_eq!(created.status, Some(201));
    // The stored request is the recorded one (its EndpointId), the key unchanged.
    assert!(String::from_utf8_lossy(&created.request_body).contains("\"e-1\""));
}

/// A wrong password stops verify at the token request with one line (no 401 diff of every
/// request), and leaves no half session; so does a refused token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_stops_at_a_failed_sign_in_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sim.sqlite");
    record_run(&db, "one", 7, 1).await;
    let live = simulator(9);
    for (creds, expected) in [
        (
            &["--username", "alice@contoso.com", "--password", "wrong"][..],
            "failed: the token request (POST /WebTicket/oauthtoken) was answered 400 (invalid_grant); check --username and --password",
        ),
        (
            &["--token", "cwt=not-a-token"][..],
            "was answered 401 where the recording was answered 201; the token given with --token was refused (expired?)",
        ),
    ] {
        let r = verify_one(
            &db,
            &live.url,
            &[creds, &["--new-session", "live"]].concat(),
        );
        assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
        assert!(r.stdout.is_empty(), "{}", r.stdout);
        assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
        assert!(
            r.stderr
                .starts_with(&format!("ucwa-replay: error: sign-in to {} ", live.url))
                && r.stderr.contains(expected),
            "{}",
            r.stderr
        );
        let sessions: Vec<String> = Recording::open(&db)
            .unwrap()
            .sessions()
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(sessions, ["one"]);
    }
    // Nothing listening: one line, at the first request.
    let r = verify_one(&db, "http://127.0.0.1:9", &["--token", "cwt=x"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(
        r.stderr
            .starts_with("ucwa-replay: error: no answer from http://127.0.0.1:9: POST "),
        "{}",
        r.stderr
    );
}

/// An upstream in front of the simulator that breaks the answer to every request whose
/// path ends with `/participants` (the body fails after the head).
fn breaking_upstream(sim: &str) -> ucwa_replay::serve::BackgroundServer {
    use http_body_util::BodyExt;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let sim = sim.to_string();
    ucwa_replay::serve::BackgroundServer::start(
        "breaking",
        "127.0.0.1:0".parse().unwrap(),
        move |listener, shutdown| async move {
            let client: Client<_, ucwa_replay::body::Body> =
                Client::builder(TokioExecutor::new()).build_http();
            let handler = move |req: http::Request<hyper::body::Incoming>, _conn| {
                let client = client.clone();
                let sim = sim.clone();
                async move {
                    if req.uri().path().ends_with("/participants") {
                        let broken = futures_util::stream::once(async {
                            Err::<hyper::body::Frame<bytes::Bytes>, ucwa_replay::BoxError>(
                                "broken on purpose".into(),
                            )
                        });
                        return http::Response::new(ucwa_replay::body::boxed(
                            http_body_util::StreamBody::new(broken),
                        ));
                    }
                    let (mut parts, body) = req.into_parts();
                    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
                    parts.uri = format!("{sim}{target}").parse().unwrap();
                    let body = body.collect().await.unwrap().to_bytes();
                    let req = http::Request::from_parts(parts, ucwa_replay::body::full(body));
                    let resp = client.request(req).await.unwrap();
                    resp.map(ucwa_replay::body::boxed)
                }
            };
            ucwa_replay::serve::serve(
                listener,
                None,
                handler,
                shutdown,
                std::time::Duration::from_secs(1),
            )
            .await
        },
    )
    .unwrap()
}

/// Requests without an answer are in the summary and the exit status, not only in a log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_reports_requests_without_an_answer() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sim.sqlite");
    record_run(&db, "one", 7, 1).await;
    let live = simulator(9);
    let breaking = breaking_upstream(&live.url);
    let r = verify_one(
        &db,
        &breaking.url(),
        &[&ALICE[..], &["--new-session", "live"]].concat(),
    );
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let line = r
        .stdout
        .lines()
        .find(|l| l.starts_with("verify: "))
        .unwrap_or_else(|| panic!("{}", r.stdout));
    assert!(line.contains(", 1 FAILED (#"), "{line}");
    assert!(line.contains("/participants: "), "{line}");
    assert!(
        r.stdout.lines().last().unwrap().starts_with("different: "),
        "{}",
        r.stdout
    );

    let r = verify_one(
        &db,
        &breaking.url(),
        &[&ALICE[..], &["--new-session", "json", "--format", "json"]].concat(),
    );
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let v = r.json();
    assert_eq!(v["verify"]["failed"].as_array().unwrap().len(), 1, "{v:#}");
    assert_eq!(v["verify"]["failed"][0]["method"], "GET");
    assert!(v["verify"]["sent"].as_u64().unwrap() > 5);
    assert_eq!(v["equal"], false);
}

/// "paired 6" of a 9-exchange session read like 3 went missing: the text says the
/// events-feed requests are compared as events instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_text_says_events_feed_requests_are_compared_as_events() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sim.sqlite");
    record_run(&db, "one", 7, 1).await;
    let rec = Recording::open(&db).unwrap();
    let session = rec.session(Some("one")).unwrap();
    let feed = rec
        .exchanges(&session)
        .unwrap()
        .iter()
        .filter(|e| e.is_events())
        .count();
    assert!(feed > 0);
    let one = format!("{}#one", s(&db));
    let r = run(&["diff", &one, &one]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains(&format!(
            "events feed: A's {feed} and B's {feed} requests compared as one event sequence, not paired\n"
        )),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(&format!(
            "equal: paired {}, ",
            session.exchanges as usize - feed
        )),
        "{}",
        r.stdout
    );
}
