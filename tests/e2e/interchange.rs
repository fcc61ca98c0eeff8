//! `export` and `import` through the real binary, on a session recorded through the real
//! proxy against the simulator: HAR and NDJSON shapes, a lossless round trip (diff equal,
//! every stored field equal, the import replays cleanly), browser HARs with real secrets
//! (none reaches the file), and bad input (exit 2, nothing written).

use std::path::PathBuf;
use std::process::Output;

use serde_json::{Value, json};
use ucwa_replay::demo::{ScriptOptions, record_session, run_im_session};
use ucwa_replay::diff::{DiffOptions, diff_sessions};
use ucwa_replay::replay::{FeedEnd, ReplayServer};
use ucwa_replay::store::Recording;

use crate::util::{bin, s};

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

async fn recorded() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rec.sqlite");
    record_session(&db, "s", 7, &ScriptOptions::default())
        .await
        .expect("record the scripted session");
    (dir, db)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn har_round_trip_is_lossless_and_replays() {
    let (dir, db) = recorded().await;
    let har_path = dir.path().join("s.har");
    let out = bin(&[
        "export",
        "--db",
        s(&db),
        "--session",
        "s",
        "--format",
        "har",
        "--output",
        s(&har_path),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).is_empty(), "--output keeps stdout empty");

    let doc: Value = serde_json::from_slice(&std::fs::read(&har_path).unwrap()).unwrap();
    let rec = Recording::open(&db).unwrap();
    let original = rec.session(Some("s")).unwrap();
    let exchanges = rec.exchanges(&original).unwrap();
    assert_eq!(doc["log"]["version"], "1.2");
    assert_eq!(doc["log"]["creator"]["name"], "ucwa-replay");
    assert_eq!(doc["log"]["creator"]["version"], env!("CARGO_PKG_VERSION"));
    let entries = doc["log"]["entries"].as_array().unwrap();
    assert_eq!(entries.len(), exchanges.len());
    let first = &entries[0];
    assert!(
        first["request"]["url"]
            .as_str()
            .unwrap()
            .starts_with(&original.upstream),
        "{first}"
    );
    assert!(first["_ucwa"]["matchKey"].is_string());
    assert!(
        entries.iter().any(|e| e["_ucwa"]["kind"] == "events"),
        "the feed is exported"
    );

    // Stdout export is the same document.
    let out = bin(&["export", "--db", s(&db), "--session", "s"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap(), doc);

    // `import --db DB --session imported EXTRA... HAR`.
    let import_as_imported = |extra: &[&str]| {
        bin(&[
            &["import", "--db", s(&db), "--session", "imported"][..],
            extra,
            &[s(&har_path)],
        ]
        .concat())
    };
    let out = import_as_imported(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with(&format!("imported {} exchanges", exchanges.len())),
        "{}",
        stdout(&out)
    );

    let rec = Recording::open(&db).unwrap();
    let imported = rec.session(Some("imported")).unwrap();
    assert_eq!(imported.upstream, original.upstream);
    assert_eq!(imported.events, original.events);
    let report = diff_sessions(&rec, &original, &rec, &imported, &DiffOptions::default()).unwrap();
    assert!(report.is_equal(), "{}", report.summary());
    // Every stored field survives, not only what diff compares.
    let again = rec.exchanges(&imported).unwrap();
    for (a, b) in exchanges.iter().zip(&again) {
        let mut b = b.clone();
        b.id = a.id;
        assert_eq!(*a, b, "exchange {} differs after the round trip", a.seq);
    }

    // The imported session replays the same client script without a miss.
    let server = ReplayServer::builder(&db, "imported")
        .feed_end(FeedEnd::Empty)
        .start()
        .unwrap();
    let run = run_im_session(&server.url(), &ScriptOptions::default()).await;
    let report = server.report();
    tokio::task::spawn_blocking(move || drop(server))
        .await
        .unwrap();
    run.expect("the script runs against the imported session");
    assert!(report.is_clean(), "{report:?}");

    // Importing again under the same name is refused, unless --replace.
    let out = import_as_imported(&[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    let out = import_as_imported(&["--replace", "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["exchanges"], exchanges.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ndjson_has_one_line_per_exchange_with_events() {
    let (_dir, db) = recorded().await;
    let out = bin(&["export", "--db", s(&db), "--format", "ndjson"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rec = Recording::open(&db).unwrap();
    let session = rec.session(None).unwrap();
    let exchanges = rec.exchanges(&session).unwrap();
    let text = stdout(&out);
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), exchanges.len());
    for (line, ex) in lines.iter().zip(&exchanges) {
        assert_eq!(line["seq"], ex.seq);
        assert_eq!(line["session"], "s");
        assert_eq!(line["method"], ex.method.as_str());
        assert_eq!(line["match_key"], ex.match_key.to_string().as_str());
        assert_eq!(line["events"].as_array().unwrap().len(), ex.events.len());
    }
    let events: usize = lines
        .iter()
        .map(|l| l["events"].as_array().unwrap().len())
        .sum();
    assert_eq!(events as u64, session.events);
    assert!(
        lines
            .iter()
            .flat_map(|l| l["events"].as_array().unwrap())
            .any(|e| e["link_rel"] == "participantMessaging" && e["type"] == "added"),
        "events carry their rels and types"
    );
}

const TOKEN: &str = "AAEBrealBrowserToken0123456789";
const PASSWORD: &str = "Hunter2-very-secret";
const COOKIE: &str = "CookieValueFromBrowser987654";
const JWT: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJ1Y3dhIn0.U2lnbmF0dXJlQnl0ZXM";

/// A HAR as Chrome saves it from a UCWA web app: a token POST on another host, then UCWA.
fn browser_har() -> Value {
    let entry = |t: &str, method: &str, url: &str, headers: Value, post: Value, body: &str| {
        let mut e = json!({
            "_initiator": {"type": "script"}, "_priority": "High", "_resourceType": "xhr",
            "cache": {}, "connection": "443",
            "startedDateTime": t, "time": 31.2,
            "request": {"method": method, "url": url, "httpVersion": "http/2.0",
                "headers": headers, "queryString": [], "cookies": [],
                "headersSize": -1, "bodySize": 0},
            "response": {"status": 200, "statusText": "", "httpVersion": "http/2.0",
                "headers": [{"name": "content-type", "value": "application/json"},
                            {"name": "content-encoding", "value": "gzip"},
                            {"name": "set-cookie", "value": format!("cwt_ucwa={COOKIE}; path=/; secure")}],
                "cookies": [], "content": {"size": body.len(), "mimeType": "application/json", "text": body},
                "redirectURL": "", "headersSize": -1, "bodySize": -1, "_transferSize": 300, "_error": null},
            "serverIPAddress": "10.0.0.1",
            "timings": {"blocked": 1.0, "dns": -1, "ssl": -1, "connect": -1, "send": 0.1, "wait": 30.0, "receive": 1.1}
        });
        if !post.is_null() {
            e["request"]["postData"] = post;
        }
        e
    };
    json!({"log": {"version": "1.2", "creator": {"name": "WebInspector", "version": "537.36"},
    "pages": [],
    "entries": [
        entry("2026-01-05T09:00:00.100Z", "POST", "https://lyncweb.contoso.com/WebTicket/oauthtoken",
            json!([{"name": ":authority", "value": "lyncweb.contoso.com"},
                   {"name": "Content-Type", "value": "application/x-www-form-urlencoded"}]),
            json!({"mimeType": "application/x-www-form-urlencoded",
                   "text": format!("grant_type=password&username=alice%40contoso.com&password={PASSWORD}")}),
            &format!(r#"{{"access_token":"cwt={TOKEN}","id_token":"{JWT}","expires_in":28799,"token_type":"Bearer"}}"#)),
        entry("2026-01-05T10:00:00.300+01:00", "GET", &format!("https://fe1.contoso.com/ucwa/oauth/v1/applications/105?cwt={TOKEN}"),
            json!([{"name": "Authorization", "value": format!("Bearer cwt={TOKEN}")},
                   {"name": "Cookie", "value": format!("cwt_ucwa={COOKIE}; lang=en")},
                   {"name": "Accept", "value": "application/json"}]),
            Value::Null, r#"{"_links":{"self":{"href":"/ucwa/oauth/v1/applications/105"}}}"#),
    ]}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_har_secrets_never_reach_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rec.sqlite");
    let har_path = dir.path().join("chrome.har");
    std::fs::write(&har_path, browser_har().to_string()).unwrap();
    let out = bin(&["import", "--db", s(&db), "--session", "web", s(&har_path)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("also https://lyncweb.contoso.com"),
        "{}",
        stdout(&out)
    );

    let mut raw = std::fs::read(&db).unwrap();
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    if let Ok(bytes) = std::fs::read(&wal) {
        raw.extend(bytes);
    }
    for secret in [TOKEN, PASSWORD, COOKIE, JWT] {
        assert!(
            !raw.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} reached the recording"
        );
    }

    let rec = Recording::open(&db).unwrap();
    let session = rec.session(Some("web")).unwrap();
    assert_eq!(session.upstream, "https://fe1.contoso.com");
    assert_eq!(session.also_upstreams, ["https://lyncweb.contoso.com"]);
    let ex = rec.exchanges(&session).unwrap();
    assert_eq!(ex.len(), 2);
    assert_eq!(
        ex[0].path,
        "/_upstream/lyncweb.contoso.com/WebTicket/oauthtoken"
    );
    assert_eq!(ex[0].kind, ucwa_replay::recording::ResourceKind::Token);
    assert_eq!(ex[1].path, "/ucwa/oauth/v1/applications/105");
    assert_eq!(
        ex[1].started_us - ex[0].started_us,
        200_000,
        "offsets are honoured"
    );
    assert_eq!(ex[1].content_encoding.as_deref(), Some("gzip"));
    let credential = ex[1].credential.clone().expect("a credential placeholder");
    assert!(credential.starts_with("REDACTED-"), "{credential}");
    assert_eq!(
        ex[1].request_headers.get("authorization"),
        Some(format!("Bearer cwt={credential}").as_str()),
    );
    let token_response = String::from_utf8_lossy(&ex[0].response_body);
    assert!(
        token_response.contains(&format!("\"cwt={credential}\"")),
        "the token response and the Authorization header share a placeholder: {token_response}"
    );

    let out = bin(&["audit", "--db", s(&db)]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn bad_input_is_one_line_exit_2_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rec.sqlite");
    let cases: [(&str, Option<&str>, &str); 5] = [
        ("notjson.har", Some("this is not json"), "not JSON"),
        (
            "nothar.har",
            Some(r#"{"hello": "world"}"#),
            "not a HAR file",
        ),
        (
            "noentries.har",
            Some(r#"{"log": {"version": "1.2"}}"#),
            "`log.entries`",
        ),
        (
            "version.har",
            Some(r#"{"log": {"version": "0.9", "entries": []}}"#),
            "unsupported HAR version",
        ),
        ("missing.har", None, "cannot read"),
    ];
    for (name, content, expected) in cases {
        let path = dir.path().join(name);
        if let Some(c) = content {
            std::fs::write(&path, c).unwrap();
        }
        let out = bin(&["import", "--db", s(&db), "--session", "x", s(&path)]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
        assert!(err.starts_with("ucwa-replay: error: "), "{name}: {err}");
        assert!(
            err.contains(name) && err.contains(expected),
            "{name}: {err}"
        );
        assert!(!db.exists(), "{name}: the recording was created");
    }

    // With an existing recording: the session is not created.
    let good = dir.path().join("good.har");
    std::fs::write(&good, browser_har().to_string()).unwrap();
    assert!(
        bin(&["import", "--db", s(&db), "--session", "ok", s(&good)])
            .status
            .success()
    );
    let out = bin(&[
        "import",
        "--db",
        s(&db),
        "--session",
        "bad",
        s(&dir.path().join("nothar.har")),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let names: Vec<String> = Recording::open(&db)
        .unwrap()
        .sessions()
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["ok"]);

    // Exporting an unknown session or a missing file is an input error too.
    let out = bin(&["export", "--db", s(&db), "--session", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no session named \"nope\""),
        "{}",
        stderr(&out)
    );
    let out = bin(&["export", "--db", s(&dir.path().join("none.sqlite"))]);
    assert_eq!(out.status.code(), Some(2));
}

/// A HAR with impossible numbers: a status that is not HTTP's is refused naming the entry,
/// nothing written; a `time` beyond any exchange (1e308 ms became i64::MAX µs, and
/// `replay --pace recorded` then waited forever) is cut to an hour with one warning.
#[test]
fn impossible_statuses_are_refused_and_endless_times_clamped() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rec.sqlite");
    for status in [99999, -1, 42, 1000] {
        let mut har = browser_har();
        har["log"]["entries"][1]["response"]["status"] = json!(status);
        let path = dir.path().join(format!("status{status}.har"));
        std::fs::write(&path, har.to_string()).unwrap();
        let out = bin(&["import", "--db", s(&db), "--session", "x", s(&path)]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{status}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains(&format!(
                "entry 1: response.status {status} is not an HTTP status (100 to 999, or 0 for no response)"
            )),
            "{err}"
        );
        assert!(!db.exists());
    }
    // 0 is how browsers say "no response": accepted.
    let mut har = browser_har();
    har["log"]["entries"][1]["response"]["status"] = json!(0);
    har["log"]["entries"][0]["time"] = json!(1e308);
    har["log"]["entries"][1]["time"] = json!(-1);
    let path = dir.path().join("times.har");
    std::fs::write(&path, har.to_string()).unwrap();
    let out = bin(&["import", "--db", s(&db), "--session", "t", s(&path)]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(
        warnings[0].contains(
            "HAR entry 0: time 1e308 ms is longer than any exchange; stored as 3600000 ms"
        ),
        "{err}"
    );
    let rec = Recording::open(&db).unwrap();
    let exchanges = rec.exchanges(&rec.session(Some("t")).unwrap()).unwrap();
    let durations: Vec<i64> = exchanges.iter().map(|e| e.duration_us).collect();
    assert_eq!(durations, [3_600_000_000, 0]);
    assert_eq!(exchanges[1].status, None);
}

/// Tools other than browsers leave out what HAR 1.2 calls required (`cache`, `timings`,
/// sizes, empty lists), and a hand-edited file may give a member twice. Such a file imports
/// as if the defaults were written out, and the last of two members wins, whichever way the
/// importer reads each entry; its secrets are redacted all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sparse_and_hand_edited_hars_import_as_if_complete() {
    let mut sparse = browser_har();
    let mut filled = browser_har();
    for (s, f) in sparse["log"]["entries"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .zip(filled["log"]["entries"].as_array_mut().unwrap())
    {
        for (key, default) in [
            ("cache", json!({})),
            ("timings", json!({"send": 0, "wait": 0, "receive": 0})),
            ("time", json!(0)),
        ] {
            s.as_object_mut().unwrap().remove(key);
            f[key] = default;
        }
        for side in ["request", "response"] {
            for (key, default) in [
                ("httpVersion", json!("")),
                ("cookies", json!([])),
                ("headersSize", json!(-1)),
                ("bodySize", json!(-1)),
            ] {
                s[side].as_object_mut().unwrap().remove(key);
                f[side][key] = default;
            }
        }
        s["request"].as_object_mut().unwrap().remove("queryString");
        f["request"]["queryString"] = json!([]);
        s["response"].as_object_mut().unwrap().remove("statusText");
        f["response"]["statusText"] = json!("");
    }
    // The second entry gives its start twice, a wrong one first: the last one counts, as
    // in any JSON reader that keeps one.
    let mut sparse = sparse.to_string();
    let second = sparse.match_indices(r#"{"_initiator""#).nth(1).unwrap().0;
    sparse.insert_str(second + 1, r#""startedDateTime":"2000-01-01T00:00:00Z","#);

    let dir = tempfile::tempdir().unwrap();
    let mut imported = Vec::new();
    for (name, text) in [("sparse", sparse), ("filled", filled.to_string())] {
        let har = dir.path().join(format!("{name}.har"));
        let db = dir.path().join(format!("{name}.sqlite"));
        std::fs::write(&har, text).unwrap();
        let out = bin(&["import", "--db", s(&db), "--session", "web", s(&har)]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        let rec = Recording::open(&db).unwrap();
        let session = rec.session(Some("web")).unwrap();
        imported.push(rec.exchanges(&session).unwrap());
        let mut raw = std::fs::read(&db).unwrap();
        if let Ok(bytes) = std::fs::read(format!("{}-wal", db.display())) {
            raw.extend(bytes);
        }
        for secret in [TOKEN, PASSWORD, COOKIE, JWT] {
            assert!(
                !raw.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{name}: {secret} reached the recording"
            );
        }
    }
    assert_eq!(imported[0].len(), 2);
    assert_eq!(imported[0], imported[1]);
    assert_eq!(imported[0][1].http_version, "HTTP/1.1");
    assert_eq!(imported[0][1].duration_us, 0);
}

/// More distinct requests than the recording writer holds keys for (every events-feed
/// P-GET has its own `ack`), with one request repeated across them: the repeated one's
/// ordinals still count 0, 1, 2 … once its count has been moved out of memory and back,
/// and every distinct one is the first of its key.
#[test]
fn ordinals_hold_past_the_keys_the_writer_keeps_in_memory() {
    const N: usize = 32_000;
    const EVERY: usize = 1_000;
    let base = "https://fe1.contoso.com/ucwa/oauth/v1/applications/103";
    let entries: Vec<Value> = (0..N)
        .map(|i| {
            let url = if i % EVERY == 0 {
                format!("{base}/me")
            } else {
                format!("{base}/events?ack={i}")
            };
            json!({
                "startedDateTime": "2016-09-27T00:00:00.000Z",
                "request": {"method": "GET", "url": url, "headers": [
                    {"name": "Accept", "value": "application/json"}]},
                "response": {"status": 200, "headers": [
                    {"name": "Content-Type", "value": "application/json"}],
                    "content": {"mimeType": "application/json", "text": "{}"}}
            })
        })
        .collect();
    let har = json!({"log": {"version": "1.2", "creator": {"name": "t", "version": "1"},
        "entries": entries}});
    let dir = tempfile::tempdir().unwrap();
    let (path, db) = (dir.path().join("long.har"), dir.path().join("long.sqlite"));
    std::fs::write(&path, har.to_string()).unwrap();
    let out = bin(&["import", "--db", s(&db), "--session", "long", s(&path)]);
    assert!(out.status.success(), "{}", stderr(&out));

    let conn = rusqlite::Connection::open(&db).unwrap();
    let ordinals = |like: &str| -> Vec<u32> {
        conn.prepare("SELECT ordinal FROM exchanges WHERE path LIKE ?1 ORDER BY seq")
            .unwrap()
            .query_map([like], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let me = ordinals("%/me");
    assert_eq!(me, (0..(N / EVERY) as u32).collect::<Vec<_>>());
    let events = ordinals("%/events");
    assert_eq!(events.len(), N - N / EVERY);
    assert!(events.iter().all(|&o| o == 0));
}
