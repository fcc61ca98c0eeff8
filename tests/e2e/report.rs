//! `ucwa-replay report` and `diff --format html`: the pages as a real browser (headless
//! Chromium) builds and draws them, what they hold, that they load nothing from anywhere,
//! that recorded markup stays text, the replay overlay, the refusals, and the scale check.

use std::path::{Path, PathBuf};

use crate::util::{bin, browser, get, large, s};
use ucwa_replay::demo::UcwaClient;
use ucwa_replay::recording::{EventRow, Exchange, HeaderList, MatchKey};
use ucwa_replay::replay::ReplayServer;
use ucwa_replay::store::{NewSession, StoreWriter};
use ucwa_replay::ucwa::Representation;

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/recordings/sample.sqlite");

/// `report ARGS…`, expecting exit 0.
fn report(args: &[&str]) {
    let out = bin(&[&["-q", "report"], args].concat());
    assert_eq!(
        out.status.code(),
        Some(0),
        "report {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Exit 2 and exactly one line on stderr, which contains `needle`.
fn assert_refused(out: &std::process::Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.contains(needle), "{needle:?} not in {err}");
    assert!(!err.contains("panicked"), "{err}");
}

fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

#[test]
fn the_demo_session_in_a_browser_has_its_timeline_tracks_and_every_exchange() {
    let dir = browser::out_dir();
    let page = dir.path().join("demo.html");
    report(&["--db", SAMPLE, "--session", "demo", "-o", s(&page)]);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        browser::off_page(&html).is_empty(),
        "{:?}",
        browser::off_page(&html)
    );

    let (dom, console) = browser::dump_dom_and_console(&page);
    assert!(console.is_empty(), "console messages: {console}");
    // The script ran (under the page's own policy) and showed the filter bar.
    assert!(
        dom.contains("data-ready-ms=\""),
        "the page script did not run"
    );
    assert!(
        dom.contains("<div class=\"filters\" id=\"filters\">"),
        "filters shown"
    );
    // The timeline: one SVG, a lane per part of the session, the feed's held P-GETs and
    // their events, the one failed request (the 401 challenge) marked.
    assert_eq!(count(&dom, "<svg class=\"tl\""), 1);
    for lane in ["signin", "app", "feed", "conv", "msg"] {
        assert!(
            dom.contains(&format!("class=\"lane lane-{lane}\"")),
            "lane {lane}"
        );
    }
    assert_eq!(count(&dom, "class=\"mk s2 hold\""), 11, "one bar per P-GET");
    assert!(count(&dom, "class=\"evt ") >= 11, "event ticks");
    assert_eq!(count(&dom, "class=\"errmark\""), 1, "the 401 is marked");
    // participantMessaging: a track per link, added → (updated →) deleted.
    assert_eq!(count(&dom, "<tr class=\"pm-track\""), 3);
    for who in ["bob@contoso.com", "alice@contoso.com", "carol@contoso.com"] {
        assert!(
            dom.contains(&format!("participants/{who}/messaging\"><td class=\"who\"")),
            "track of {who}"
        );
    }
    let carol = dom
        .split("participants/carol@contoso.com/messaging\"><td class=\"who\"")
        .nth(1)
        .unwrap()
        .split("</tr>")
        .next()
        .unwrap();
    let types: Vec<&str> = carol
        .split("<span class=\"ty ")
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
        .collect();
    assert_eq!(types, ["added", "updated", "deleted"]);
    // The feed's batches by ack, and every exchange with its headers and pretty bodies.
    assert_eq!(count(&dom, "<tbody class=\"batch"), 11);
    for seq in 1..=25 {
        assert!(dom.contains(&format!("id=\"x-{seq}\"")), "exchange {seq}");
    }
    assert!(!dom.contains("id=\"x-26\""));
    assert!(dom.contains("<b>authorization</b>: Bearer cwt=<mark class=\"ph\""));
    assert!(
        dom.contains("\n  \"access_token\": \"cwt=<mark class=\"ph\""),
        "pretty JSON"
    );

    let png = browser::keep_dir().join("report-demo.png");
    browser::screenshot(&page, &png, 1400, 2200);
    let (w, h, colours) = browser::png_colours(&png);
    assert_eq!((w, h), (1400, 2200));
    assert!(
        colours > 200,
        "a drawn page has many colours, got {colours}"
    );
}

/// A copy of the sample where session `demo-again` answers differently: a status, a body
/// value, an event type, one event fewer.
fn changed_copy(dir: &Path) -> PathBuf {
    let copy = dir.join("changed.sqlite");
    std::fs::copy(SAMPLE, &copy).unwrap();
    let db = rusqlite::Connection::open(&copy).unwrap();
    db.execute_batch(
        "UPDATE exchanges SET status = 500 WHERE seq = 13
           AND session_id = (SELECT id FROM sessions WHERE name = 'demo-again');
         UPDATE exchanges SET response_body = CAST(replace(CAST(response_body AS TEXT), 'Connected', 'Disconnected') AS BLOB)
          WHERE seq = 16 AND session_id = (SELECT id FROM sessions WHERE name = 'demo-again');
         DELETE FROM events WHERE type = 'updated' AND link_rel = 'participantMessaging'
           AND session_id = (SELECT id FROM sessions WHERE name = 'demo-again');",
    )
    .unwrap();
    copy
}

#[test]
fn a_diff_page_sets_the_sessions_side_by_side_and_links_each_difference() {
    let dir = browser::out_dir();
    let changed = changed_copy(dir.path());
    let a = format!("{}#demo", SAMPLE);
    let b = format!("{}#demo-again", s(&changed));
    let page = dir.path().join("diff.html");
    let out = bin(&["diff", &a, &b, "--format", "html", "-o", s(&page)]);
    assert_eq!(out.status.code(), Some(1), "different: exit 1");
    assert!(out.stdout.is_empty(), "the page went to -o");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        browser::off_page(&html).is_empty(),
        "{:?}",
        browser::off_page(&html)
    );

    // The same comparison as the text diff.
    let text = String::from_utf8(bin(&["diff", &a, &b]).stdout).unwrap();
    let summary = text
        .lines()
        .last()
        .unwrap()
        .trim_start_matches("different: ");
    let dom = browser::dump_dom(&page);
    assert!(dom.contains(summary), "{summary}");
    assert!(dom.contains("<p class=\"verdict different\">different</p>"));
    // Each changed exchange links to its two sides, which are on the page.
    assert_eq!(count(&dom, "<div class=\"dx changed\""), 2);
    for side in ["a-13", "b-13", "a-16", "b-16"] {
        assert!(dom.contains(&format!("href=\"#{side}\"")), "link to {side}");
        assert!(dom.contains(&format!("id=\"{side}\"")), "exchange {side}");
    }
    assert!(dom.contains("<td class=\"where\">body /state</td>"));
    assert!(dom.contains("&quot;Disconnected&quot;") || dom.contains("\"Disconnected\""));
    // Events aligned: the removed one has a gap on B's side; equal runs are folded.
    assert_eq!(count(&dom, "<tr class=\"removed\">"), 1);
    assert!(dom.contains("<td class=\"side gap\"></td>"));
    assert!(dom.contains("equal events</summary>"));

    let png = browser::keep_dir().join("diff.png");
    browser::screenshot(&page, &png, 1400, 1600);
    let (_, _, colours) = browser::png_colours(&png);
    assert!(
        colours > 200,
        "a drawn page has many colours, got {colours}"
    );

    // Equal sessions: exit 0, and the page says so; without -o the page goes to stdout.
    let out = bin(&[
        "diff",
        &a,
        &format!("{}#demo-again", SAMPLE),
        "--format",
        "html",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let html = String::from_utf8(out.stdout).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<p class=\"verdict equal\">equal</p>"));
}

/// A recording whose session name, header values and bodies carry markup and scripts.
async fn hostile_recording(path: &Path) -> &'static str {
    const NAME: &str =
        "<script>document.documentElement.setAttribute('data-pwned','name')</script>";
    let w = StoreWriter::create(
        path,
        &NewSession::new(
            NAME,
            "https://fe1.contoso.com\"><img src=x onerror=alert(1)>",
        ),
    )
    .unwrap();
    let sink = w.sink();
    let mut req = HeaderList::default();
    req.push("accept", "application/json");
    req.push(
        "x-evil",
        "\"><script>document.documentElement.setAttribute('data-pwned','header')</script>",
    );
    let mut resp = HeaderList::default();
    resp.push("content-type", "text/html");
    resp.push("x-style", "</style><style>body{display:none}</style>");
    sink.submit(Exchange {
        seq: 1,
        started_us: 1_000_000,
        duration_us: 1_000,
        method: "GET".into(),
        path: "/ucwa/<svg onload=alert(1)>".into(),
        query: Some("q=</title><script>alert(1)</script>".into()),
        http_version: "HTTP/1.1".into(),
        request_headers: req,
        status: Some(200),
        response_headers: resp,
        response_body: b"<html><body><script>document.documentElement.setAttribute('data-pwned','body')</script></style></noscript><img src=\"http://evil.example/x.png\" onerror=\"alert(1)\"><a href=\"javascript:alert(1)\">x</a><div style=\"background:url(http://evil.example/bg)\"></div></body></html>".to_vec(),
        kind: "<b>kind</b>".into(),
        match_key: MatchKey {
            method: "GET".into(),
            path: "</code><script>alert(1)</script>".into(),
            ..MatchKey::default()
        },
        credential: Some("REDACTED-1\"><script>alert(1)</script>".into()),
        ..Default::default()
    });
    let mut json_resp = HeaderList::default();
    json_resp.push("content-type", "application/json");
    sink.submit(Exchange {
        seq: 2,
        started_us: 1_002_000,
        duration_us: 1_000,
        method: "GET".into(),
        path: "/ucwa/oauth/v1/applications/1/events".into(),
        query: Some("ack=1".into()),
        http_version: "HTTP/1.1".into(),
        status: Some(200),
        response_headers: json_resp,
        response_body: br#"{"sender":[{"rel":"</td><script>alert(1)</script>","events":[]}],"x":"<\/script><script>document.documentElement.setAttribute('data-pwned','json')</script>"}"#.to_vec(),
        kind: "events".into(),
        events: vec![EventRow {
            ack: Some(1),
            sender_rel: "</td><script>document.documentElement.setAttribute('data-pwned','event')</script>".into(),
            link_rel: "participantMessaging".into(),
            link_href: "/ucwa/x/participants/<b>bob</b>/messaging".into(),
            event_type: "added\"><script>alert(1)</script>".into(),
            ..Default::default()
        }],
        ..Default::default()
    });
    drop(sink);
    w.finish().await.unwrap();
    NAME
}

#[tokio::test]
async fn recorded_markup_and_scripts_show_as_text_and_run_nothing() {
    let dir = browser::out_dir();
    let db = dir.path().join("hostile.sqlite");
    let name = hostile_recording(&db).await;
    let page = dir.path().join("hostile.html");
    report(&["--db", s(&db), "--session", name, "-o", s(&page)]);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        browser::off_page(&html).is_empty(),
        "{:?}",
        browser::off_page(&html)
    );
    assert_eq!(count(&html, "<script"), 1, "only the page's own script");

    let (dom, console) = browser::dump_dom_and_console(&page);
    assert!(!dom.contains(" data-pwned=\""), "a recorded script ran");
    assert!(
        !console.contains("Content Security Policy"),
        "a recorded script or style reached the parser as markup: {console}"
    );
    assert_eq!(
        count(&dom, "<script"),
        1,
        "only the page's own script element"
    );
    assert_eq!(count(&dom, "<img"), 0);
    assert_eq!(
        count(&dom, "<style"),
        1,
        "only the page's own style element"
    );
    assert!(
        dom.contains("data-ready-ms=\""),
        "the page's own script still ran"
    );
    // The payloads are there, as text.
    for text in [
        "&lt;script&gt;document.documentElement.setAttribute('data-pwned','name')&lt;/script&gt;",
        "&lt;/style&gt;&lt;style&gt;body{display:none}&lt;/style&gt;",
        "&lt;img src=\"http://evil.example/x.png\" onerror=\"alert(1)\"&gt;",
        "/ucwa/&lt;svg onload=alert(1)&gt;",
        "&lt;b&gt;kind&lt;/b&gt;",
        "setAttribute('data-pwned','event')&lt;/script&gt;",
    ] {
        assert!(dom.contains(text), "{text} not shown as text");
    }
    assert!(
        dom.contains("<title>&lt;script&gt;"),
        "the session name in the title is text"
    );
}

/// Serve the sample's `demo` session and return the replay's report as `replay --report`
/// writes it, after one request that plays, one that misses, one near miss (another
/// `UserAgent`, served by the lenient match), one injected fault, and a rule that never
/// fires.
fn replay_report(dir: &Path) -> PathBuf {
    let server = ReplayServer::builder(SAMPLE, "demo")
        .body_match(ucwa_replay::replay::BodyMatch::Lenient)
        .inject("GET */events #1 => reset")
        .inject("DELETE */me => 503 ServiceUnavailable")
        .start()
        .unwrap();
    let base = server.url();
    let ok = get(&base, "/autodiscover/autodiscoverservice.svc/root");
    assert_eq!(ok.status, 200);
    let miss = get(&base, "/ucwa/oauth/v1/applications/779/me/nowhere");
    assert_eq!(miss.status, 404);
    let mut client = UcwaClient::new(&base, Representation::Json);
    let near = crate::util::block_on(
        client
            .request(http::Method::POST, "/ucwa/oauth/v1/applications")
            .body(
                "application/json",
                r#"{"UserAgent":"<b>demo/2.0</b>","EndpointId":"x","Culture":"en-US"}"#,
            )
            .send(),
    )
    .unwrap();
    assert_eq!(near.status.as_u16(), 201);
    let reset = crate::util::block_on(
        client
            .request(
                http::Method::GET,
                "/ucwa/oauth/v1/applications/779/events?ack=1",
            )
            .send(),
    );
    assert!(
        reset.is_err(),
        "the connection was closed without an answer"
    );
    let report = server.stop();
    assert_eq!(report.near_misses.len(), 1, "{report}");
    assert_eq!(report.faults.len(), 1, "{report}");
    let path = dir.join("replay.json");
    report.write(&path).unwrap();
    path
}

#[test]
fn a_replay_report_lays_its_misses_and_unplayed_exchanges_over_the_session() {
    let dir = browser::out_dir();
    let json = replay_report(dir.path());
    let page = dir.path().join("replayed.html");
    report(&[
        "--db",
        SAMPLE,
        "--session",
        "demo",
        "--replay-report",
        s(&json),
        "-o",
        s(&page),
    ]);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("<section class=\"card\" id=\"replay\">"));
    assert!(html.contains("<h3 id=\"misses\">Misses</h3>"));
    assert!(html.contains("/me/nowhere"));
    assert_eq!(
        count(&html, "<span class=\"badge unplayed\">never played</span>"),
        23,
        "25 recorded, the autodiscover root and the near-missed POST played"
    );
    assert!(
        !html.contains("id=\"x-1\" data-lane=\"signin\" data-status=\"s2\" data-flag"),
        "#1 played"
    );
    assert!(
        html.contains("class=\"ov-unplayed\""),
        "the timeline shows what never played"
    );

    // What the replayer wrote besides: the near miss with where the bodies differ (the
    // client's text escaped), the fault on the exchange it stood in for, the unfired rule.
    assert!(html.contains("<h3 id=\"near-misses\">Near misses</h3>"));
    assert!(
        html.contains("<td class=\"where\">/UserAgent</td>"),
        "the JSON pointer"
    );
    assert!(html.contains("&lt;b&gt;demo/2.0&lt;/b&gt;"));
    assert!(html.contains("<h3 id=\"faults\">Injected faults</h3>"));
    assert!(html.contains("<span class=\"badge fault\">fault: reset</span>"));
    assert!(
        html.contains("DELETE */me =&gt; 503 ServiceUnavailable"),
        "the rule that never fired"
    );
    assert!(html.contains("class=\"ov-near\"") && html.contains("class=\"ov-fault\""));

    // Not a replay report, or one of another session: one line, exit 2.
    let not_report = dir.path().join("diff.json");
    std::fs::write(
        &not_report,
        r#"{"schema":"ucwa-replay.diff/1","equal":true}"#,
    )
    .unwrap();
    let base = [
        "report",
        "--db",
        SAMPLE,
        "--session",
        "demo",
        "-o",
        s(&page),
    ];
    let out = bin(&[&base[..], &["--replay-report", s(&not_report)]].concat());
    assert_refused(&out, "not a replay report");
    let out = bin(&[&base[..], &["--replay-report", SAMPLE]].concat());
    assert_refused(&out, "not a replay report (not JSON");
    let other = bin(&[
        "report",
        "--db",
        SAMPLE,
        "--session",
        "demo-xml",
        "-o",
        s(&page),
        "--replay-report",
        s(&json),
    ]);
    assert_refused(&other, "a replay of session \"demo\", not of \"demo-xml\"");
}

#[test]
fn bad_inputs_are_refused_with_one_line() {
    let dir = browser::out_dir();
    let page = dir.path().join("r.html");
    let garbage = dir.path().join("garbage.sqlite");
    std::fs::write(&garbage, "not a database, not at all, really not").unwrap();
    let missing_dir = dir.path().join("no/such/dir/r.html");
    let (demo, nope) = (format!("{SAMPLE}#demo"), format!("{SAMPLE}#nope"));
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "report",
                "--db",
                SAMPLE,
                "--session",
                "nope",
                "-o",
                s(&page),
            ],
            "no session named \"nope\"",
        ),
        (
            vec!["report", "--db", s(&garbage), "-o", s(&page)],
            "not a SQLite database",
        ),
        (
            vec!["report", "--db", "/nonexistent/x.sqlite", "-o", s(&page)],
            "no such recording",
        ),
        (
            vec![
                "report",
                "--db",
                SAMPLE,
                "--session",
                "demo",
                "-o",
                s(&missing_dir),
            ],
            "no directory",
        ),
        (
            vec!["report", "--db", SAMPLE, "-o", s(&page)],
            "holds 3 sessions",
        ),
        (
            vec!["diff", &demo, &nope, "--format", "html", "-o", s(&page)],
            "no session named \"nope\"",
        ),
        (
            vec![
                "diff",
                &demo,
                &demo,
                "--format",
                "html",
                "-o",
                s(&missing_dir),
            ],
            "no directory",
        ),
    ];
    for (args, needle) in cases {
        assert_refused(&bin(&args), needle);
    }
    assert!(!page.exists(), "nothing written");
    assert!(!missing_dir.parent().unwrap().exists(), "no directory made");
}

#[tokio::test]
async fn without_javascript_a_large_page_shows_every_exchange_and_body() {
    let dir = browser::out_dir();
    let db = dir.path().join("medium.sqlite");
    large::write(&db, "medium", 1_200).await;
    let page = dir.path().join("medium.html");
    report(&["--db", s(&db), "-o", s(&page)]);
    // With script, lines past 500 and every body wait folded; without, all are there.
    let counts = browser::count_without_script(
        &page,
        &[
            "details.x",
            "details.x div.xd",
            "#filters:not([hidden])",
            ".lazy-note:not([hidden])",
        ],
    );
    assert_eq!(
        counts,
        [1_200, 1_200, 0, 0],
        "lines, bodies, filter bar, fold notes"
    );
}

/// A 10 000-exchange session folds all but its first 500 lines and still loads in a real
/// browser. How fast is a benchmark's question (`cargo bench --bench report` prints the
/// median load time against an empty page's), not a test's.
#[tokio::test]
async fn ten_thousand_exchanges_fold_and_load_in_a_browser() {
    let dir = browser::out_dir();
    let db = dir.path().join("large.sqlite");
    large::write(&db, "large", 10_000).await;
    let page = dir.path().join("large.html");
    report(&["--db", s(&db), "-o", s(&page)]);
    // The first 500 lines are built with the page, the rest folded.
    let html = std::fs::read_to_string(&page).unwrap();
    assert_eq!(
        count(&html, "<div class=\"lazy\" data-lazy"),
        20,
        "19 folded pages of lines, 1 of batches"
    );
    assert_eq!(count(&html, "<noscript class=\"xd-lazy\">"), 500);
    // The probe page sees the large page's load event (it panics when it does not).
    let ms = browser::load_time_ms(&page);
    assert!(ms > 0.0);
}
