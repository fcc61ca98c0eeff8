//! Replay, driven over real sockets: byte-identical answers after the origin rewrite, the
//! events feed, cursors, misses, pacing, determinism, reports, no outbound connection, and
//! the CLI.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ucwa_replay::replay::{
    BodyMatch, Exhausted, FeedEnd, MissReason, Pace, ReplayServer, ReplayServerBuilder,
};

use crate::util::fixture::*;
use crate::util::raw::{RawResponse, http};

struct Fixture {
    _dir: tempfile::TempDir,
    db: PathBuf,
    recs: Vec<Rec>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rec.sqlite");
    let recs = im_session(FE1, LYNCWEB);
    write_session(&db, "im", FE1, &[LYNCWEB], &recs);
    Fixture {
        _dir: dir,
        db,
        recs,
    }
}

/// The CLI's matching (lenient bodies) on a server whose findings each test checks itself
/// (these tests leave exchanges unplayed on purpose: no check on drop).
fn builder(f: &Fixture) -> ReplayServerBuilder {
    ReplayServer::builder(&f.db, "im")
        .feed_end(FeedEnd::Empty)
        .body_match(BodyMatch::Lenient)
        .verify_on_drop(false)
}

/// What the client must receive for `rec` from a replay at `base`: the recording with the
/// recorded origins replaced, computed independently of the replayer's code.
fn expected(rec: &Rec, base: &str) -> (Vec<(String, String)>, Vec<u8>) {
    let lync = format!("{base}/_upstream/lyncweb.contoso.com");
    let rewrite = |s: &str| {
        s.replace(LYNCWEB, &lync)
            .replace(&LYNCWEB.replace('/', "\\/"), &lync.replace('/', "\\/"))
            .replace(FE1, base)
            .replace(&FE1.replace('/', "\\/"), &base.replace('/', "\\/"))
    };
    let body = rewrite(&String::from_utf8(rec.resp_body.clone()).unwrap()).into_bytes();
    let mut headers = Vec::new();
    for (name, value) in &rec.resp_headers {
        let value = match *name {
            "content-encoding" if rec.content_encoding.is_some() => continue,
            "content-length" => body.len().to_string(),
            "location" | "www-authenticate" => rewrite(value),
            "set-cookie" => value.replace(" Domain=.contoso.com;", ""),
            _ => value.clone(),
        };
        headers.push((name.to_string(), value));
    }
    // Like the recording proxy, the replayer is an intermediary: it adds itself to Via.
    headers.push(("via".to_string(), "1.1 ucwa-replay".to_string()));
    (headers, body)
}

#[test]
fn serves_every_recorded_response_byte_identical_after_origin_rewrite() {
    let f = fixture();
    let server = builder(&f).start().unwrap();
    let base = server.url();
    let mut all = Vec::new();
    for rec in &f.recs {
        let got = send(&base, rec).without_server_headers();
        all.push(got.clone());
        match rec.status {
            Some(status) => {
                assert_eq!(got.status, status, "{} {}", rec.method, rec.target);
                let (headers, body) = expected(rec, &base);
                assert_eq!(got.headers, headers, "{} {}", rec.method, rec.target);
                assert_eq!(got.text(), String::from_utf8(body).unwrap());
            }
            None if rec.target.contains("/events") => {
                // The client stopped while this P-GET was held: it is the end of the feed.
                assert_eq!(got.status, 200);
                let v = got.json();
                assert_eq!(v["sender"], serde_json::json!([]));
                assert_eq!(
                    v["_links"]["next"]["href"],
                    format!("{APP}/events?ack=5&timeout=180")
                );
            }
            None => {
                assert_eq!(got.status, 502);
                let v = got.json();
                assert_eq!(v["code"], "BadGateway");
                assert!(
                    v["message"].as_str().unwrap().contains("connection reset"),
                    "{v}"
                );
            }
        }
    }
    // Spot checks that the expectation itself is what we mean. (The 401 and the user
    // resource share a key, as auth headers are not compared: the cursor serves them in
    // recorded order.)
    let autodiscover = &all[0];
    assert!(
        autodiscover
            .text()
            .contains(&format!("{}\\/Autodiscover", base.replace('/', "\\/")))
    );
    let challenge = &all[1];
    assert!(
        challenge
            .header("www-authenticate")
            .unwrap()
            .contains(&format!("{base}/_upstream/lyncweb.contoso.com/WebTicket"))
    );
    let gz = &all[12];
    assert_eq!(gz.header("content-encoding"), None);
    assert_eq!(
        gz.header("content-length").unwrap(),
        gz.body.len().to_string()
    );
    let report = server.report();
    assert!(report.misses.is_empty(), "{report}");
    server.assert_all_played();
}

/// Hop-by-hop fields in a recorded response head (a front end's `Connection: keep-alive`,
/// or a `Connection` naming a private field) belonged to the recorded connection: a
/// replaying client gets the other fields, in recorded order, and none of those.
#[test]
fn recorded_hop_by_hop_fields_never_reach_a_replaying_client() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rec.sqlite");
    // A GET of `path` answered 200 with `body` and a recorded head of `fields`.
    let answer = |path: &str, fields: &[(&'static str, &str)], body: &[u8]| {
        let mut rec = Rec::new("GET", format!("{APP}{path}"));
        rec.resp_headers = fields.iter().map(|(n, v)| (*n, v.to_string())).collect();
        rec.resp_body = body.to_vec();
        rec
    };
    let keep_alive = answer(
        "/me",
        &[
            ("server", "nginx"),
            ("content-type", JSON),
            ("connection", "keep-alive"),
            ("keep-alive", "timeout=5"),
            ("etag", "\"1\""),
            ("content-length", "2"),
        ],
        b"{}",
    );
    let named = answer(
        "/people",
        &[
            ("x-private", "1"),
            ("content-type", JSON),
            ("Connection", "X-Private, close"),
            ("proxy-authenticate", "Basic"),
            ("x-kept", "2"),
            ("content-length", "2"),
        ],
        b"[]",
    );
    write_session(&db, "hop", FE1, &[], &[keep_alive.clone(), named.clone()]);
    let server = ReplayServer::builder(&db, "hop").start().unwrap();
    let base = server.url();
    for (rec, wanted) in [
        (
            &keep_alive,
            &[
                ("server", "nginx"),
                ("content-type", JSON),
                ("etag", "\"1\""),
            ][..],
        ),
        (&named, &[("content-type", JSON), ("x-kept", "2")]),
    ] {
        let got = send(&base, rec);
        assert_eq!(got.status, 200, "{}", rec.target);
        // hyper's own `Connection: close` answers the test client's; nothing recorded.
        let connection: Vec<_> = got
            .headers
            .iter()
            .filter(|(n, _)| n == "connection")
            .collect();
        assert_eq!(
            connection,
            [&("connection".to_string(), "close".to_string())]
        );
        let mut expected: Vec<(String, String)> = wanted
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        expected.push(("content-length".into(), "2".into()));
        expected.push(("via".into(), "1.1 ucwa-replay".into()));
        let got = got.without_server_headers();
        let got: Vec<_> = got
            .headers
            .iter()
            .filter(|(n, _)| n != "date")
            .cloned()
            .collect();
        assert_eq!(got, expected, "{}", rec.target);
    }
    server.assert_all_played();
}

#[test]
fn same_ack_twice_gets_the_same_batch() {
    let f = fixture();
    let server = builder(&f).exhausted(Exhausted::Error).start().unwrap();
    let base = server.url();
    let ack2 = &f.recs[6];
    let first = send(&base, ack2);
    // Tuning parameters do not matter; the same ack is idempotent even with --exhausted error.
    let again = http(
        &base,
        "GET",
        &format!("{APP}/events?ack=2&timeout=900&priority=1"),
        &[("accept", JSON), ("authorization", AUTH1)],
        b"",
    );
    let third = send(&base, ack2);
    assert_eq!(first.status, 200);
    assert!(first.text().contains(r#""type":"updated""#));
    assert_eq!(first.body, again.body);
    assert_eq!(first.body, third.body);
    assert!(server.misses().is_empty());
}

#[test]
fn a_changed_body_or_accept_is_a_miss_naming_the_closest() {
    let f = fixture();
    let strict = builder(&f).body_match(BodyMatch::Strict).start().unwrap();
    let base = strict.url();
    // A different UserAgent in POST applications (EndpointId alone would still match).
    let post_application = |body: &[u8]| {
        http(
            &base,
            "POST",
            "/ucwa/oauth/v1/applications",
            &[
                ("accept", JSON),
                ("content-type", "application/json"),
                ("authorization", AUTH1),
            ],
            body,
        )
    };
    let miss = post_application(br#"{"UserAgent":"bot/2.0","EndpointId":"new","Culture":"en-US"}"#);
    assert_eq!(miss.status, 404);
    assert_eq!(miss.header("x-ucwa-replay"), Some("miss"));
    let v = miss.json();
    assert_eq!(v["code"], "NotFound");
    assert_eq!(v["subcode"], "ReplayMiss");
    assert_eq!(v["closest"][0]["seq"], 5);
    assert_eq!(v["closest"][0]["method"], "POST");
    assert_eq!(v["closest"][0]["path"], "/ucwa/oauth/v1/applications");
    assert_eq!(v["closest"][0]["differs"], serde_json::json!(["body"]));

    // Only the noise field changed: a match.
    let hit = post_application(
        br#"{ "Culture":"en-US", "UserAgent":"bot/1.0", "EndpointId":"fresh-uuid" }"#,
    );
    assert_eq!(hit.status, 201);

    // XML asked for a resource recorded in JSON.
    let xml = http(
        &base,
        "GET",
        &format!("{APP}/me"),
        &[("accept", XML), ("authorization", AUTH1)],
        b"",
    );
    assert_eq!(xml.status, 404);
    assert_eq!(xml.header("x-ucwa-replay"), Some("miss"));
    let doc_text = xml.text();
    let doc = roxmltree::Document::parse(&doc_text).unwrap();
    assert_eq!(doc.root_element().tag_name().name(), "reason");
    assert!(doc_text.contains("ReplayMiss"), "{doc_text}");
    assert!(doc_text.contains("representation"), "{doc_text}");

    let misses = strict.misses();
    assert_eq!(misses.len(), 2);
    assert_eq!(misses[0].reason, MissReason::NoMatch);
    assert_eq!(misses[1].closest[0].differs, ["representation"]);
    drop(strict);

    // Lenient (the CLI's default): the only POST applications is served, as a near miss
    // that names where the bodies differ.
    let lenient = builder(&f).start().unwrap();
    let served = http(
        &lenient.url(),
        "POST",
        "/ucwa/oauth/v1/applications",
        &[
            ("accept", JSON),
            ("content-type", "application/json"),
            ("authorization", AUTH1),
        ],
        br#"{"UserAgent":"bot/2.0","Culture":"en-US"}"#,
    );
    assert_eq!(served.status, 201);
    assert!(lenient.misses().is_empty());
    let near = lenient.near_misses();
    assert_eq!(near.len(), 1, "{}", lenient.report());
    assert_eq!(near[0].seq, 5);
    let places: Vec<&str> = near[0]
        .differences
        .iter()
        .map(|d| d.place.as_str())
        .collect();
    assert_eq!(
        places,
        ["/UserAgent"],
        "EndpointId is left out, as in the key"
    );
    assert!(!lenient.report().is_clean());
    let failure =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| lenient.assert_all_played()));
    assert!(failure.is_err(), "a near miss fails the assertion");
}

#[test]
fn exhaustion_policies() {
    let f = fixture();
    let me = &f.recs[9];
    let repeat = builder(&f).start().unwrap();
    let bodies: Vec<String> = (0..3).map(|_| send(&repeat.url(), me).text()).collect();
    assert!(bodies[0].contains("first"));
    assert!(bodies[1].contains("second"));
    assert!(bodies[2].contains("second"), "repeat-last");
    drop(repeat);

    let error = builder(&f).exhausted(Exhausted::Error).start().unwrap();
    send(&error.url(), me);
    send(&error.url(), me);
    let third = send(&error.url(), me);
    assert_eq!(third.status, 404);
    assert_eq!(third.header("x-ucwa-replay"), Some("exhausted"));
    assert_eq!(third.json()["subcode"], "ReplayExhausted");
    assert_eq!(error.misses()[0].reason, MissReason::Exhausted);
}

#[test]
fn feed_end_hold_waits_for_the_timeout_and_empty_answers_at_once() {
    let f = fixture();
    let beyond = format!("{APP}/events?ack=9&timeout=1");
    let hdrs = [("accept", JSON), ("authorization", AUTH1)];

    let hold = ReplayServer::builder(&f.db, "im")
        .feed_end(FeedEnd::Hold)
        .verify_on_drop(false)
        .start()
        .unwrap();
    let start = Instant::now();
    let got = http(&hold.url(), "GET", &beyond, &hdrs, b"");
    let took = start.elapsed();
    assert!(took >= Duration::from_secs(1), "{took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(got.status, 200);
    assert_eq!(
        got.text(),
        format!(
            r#"{{"_links":{{"self":{{"href":"{APP}/events?ack=9&timeout=1"}},"next":{{"href":"{APP}/events?ack=10&timeout=1"}}}},"sender":[]}}"#
        )
    );
    assert_eq!(
        got.header("content-type"),
        Some("application/json; charset=utf-8")
    );

    // A held P-GET blocks nothing else, and shutdown releases it at once.
    let base = hold.url();
    let held = std::thread::spawn(move || {
        let start = Instant::now();
        let r = http(
            &base,
            "GET",
            &format!("{APP}/events?ack=9&timeout=60"),
            &[("accept", JSON)],
            b"",
        );
        (r.status, start.elapsed())
    });
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    assert_eq!(send(&hold.url(), &f.recs[9]).status, 200);
    assert!(start.elapsed() < Duration::from_secs(2));
    drop(hold);
    let (status, took) = held.join().unwrap();
    assert_eq!(status, 200);
    assert!(took < Duration::from_secs(10), "{took:?}");

    let empty = builder(&f).start().unwrap();
    let start = Instant::now();
    let got = http(
        &empty.url(),
        "GET",
        &format!("{APP}/events?ack=9&timeout=30"),
        &hdrs,
        b"",
    );
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(got.json()["sender"], serde_json::json!([]));
    // XML in, XML out.
    let xml = http(
        &empty.url(),
        "GET",
        &format!("{APP}/events?ack=9"),
        &[("accept", XML)],
        b"",
    );
    assert!(xml.text().contains("<events"), "{}", xml.text());
    assert!(empty.misses().is_empty());
}

#[test]
fn pace_recorded_holds_about_as_long_as_recorded() {
    let f = fixture();
    let server = builder(&f).pace(Pace::Recorded).start().unwrap();
    let start = Instant::now();
    let got = send(&server.url(), &f.recs[6]); // recorded in 300 ms
    let took = start.elapsed();
    assert_eq!(got.status, 200);
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    drop(server);

    let scaled = builder(&f).pace(Pace::Scaled(0.0)).start().unwrap();
    let start = Instant::now();
    send(&scaled.url(), &f.recs[6]);
    assert!(start.elapsed() < Duration::from_millis(300));
}

/// The client under test: the recorded requests in order. Its transcript names the replay's
/// port as `PORT`, so that two replays on two ports compare.
fn drive(base: &str, recs: &[Rec]) -> Vec<RawResponse> {
    let port = base.rsplit(':').next().unwrap().to_string();
    recs.iter()
        .map(|rec| {
            let mut r = send(base, rec).without_server_headers();
            for (_, v) in r.headers.iter_mut() {
                *v = v.replace(&port, "PORT");
            }
            r.body = String::from_utf8_lossy(&r.body)
                .replace(&port, "PORT")
                .into_bytes();
            r
        })
        .collect()
}

#[test]
fn two_replays_driven_alike_give_identical_transcripts() {
    let f = fixture();
    let a = builder(&f).start().unwrap();
    let b = builder(&f).start().unwrap();
    let mut ta = drive(&a.url(), &f.recs);
    let mut tb = drive(&b.url(), &f.recs);
    // Synthetic answers (502, end of feed) carry the server's current Date.
    for t in [&mut ta, &mut tb] {
        for (r, rec) in t.iter_mut().zip(&f.recs) {
            if rec.status.is_none() {
                r.headers.retain(|(n, _)| n != "date");
            }
        }
    }
    assert_eq!(ta, tb);
    assert_eq!(a.report().misses, b.report().misses);
}

#[test]
fn report_lists_misses_and_unplayed_on_demand_and_on_stop() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out/report.json");
    let server = builder(&f).report_file(&path).start().unwrap();
    let base = server.url();
    send(&base, &f.recs[0]);
    http(&base, "GET", "/ucwa/nowhere", &[], b"");
    let on_demand = http(&base, "GET", "/_replay/report", &[], b"").json();
    assert_eq!(on_demand["played"], 1);
    assert_eq!(on_demand["misses"][0]["path"], "/ucwa/nowhere");
    assert!(path.exists(), "the endpoint also writes --report");
    assert_eq!(server.unplayed().len(), f.recs.len() - 1);
    let panic =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| server.assert_all_played()))
            .unwrap_err();
    let text = panic.downcast_ref::<String>().unwrap();
    assert!(text.contains("1 misses"), "{text}");
    assert!(text.contains("GET /ucwa/nowhere"), "{text}");
    assert!(text.contains("#2 GET /Autodiscover"), "{text}");

    std::fs::remove_file(&path).unwrap();
    let fin = server.stop();
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(written["session"], "im");
    assert_eq!(written["recorded"], f.recs.len());
    assert_eq!(
        written["unplayed"].as_array().unwrap().len(),
        fin.unplayed.len()
    );
    assert_eq!(written["unplayed"][0]["seq"], 2);
}

/// Alice and Bob sign in and each GET their own `me`: two credentials in one recording.
fn two_credential_recs() -> Vec<Rec> {
    let token = |user: &str, n: u32| {
        Rec::new("POST", "/WebTicket/oauthtoken")
            .body(
                "application/x-www-form-urlencoded",
                &format!(
                    "grant_type=password&username={user}%40contoso.com&password=REDACTED-{}",
                    n + 2
                ),
            )
            .answer(
                200,
                "application/json",
                &format!(r#"{{"access_token":"cwt=REDACTED-{n}","token_type":"Bearer"}}"#),
            )
    };
    vec![
        token("alice", 1),
        token("bob", 2),
        Rec::new("GET", format!("{APP}/me")).auth(1).answer(
            200,
            "application/json",
            r#"{"name":"Alice"}"#,
        ),
        Rec::new("GET", format!("{APP}/me")).auth(2).answer(
            200,
            "application/json",
            r#"{"name":"Bob"}"#,
        ),
    ]
}

/// Bob and Alice sign in with the real password (the recording holds placeholders) and
/// each gets the placeholder token recorded for them.
fn sign_in_bob_and_alice(base: &str) {
    for (user, token) in [("bob", "cwt=REDACTED-2"), ("alice", "cwt=REDACTED-1")] {
        let got = http(
            base,
            "POST",
            "/WebTicket/oauthtoken",
            &[("content-type", "application/x-www-form-urlencoded")],
            format!("grant_type=password&username={user}%40contoso.com&password=real%21")
                .as_bytes(),
        );
        assert_eq!(got.status, 200, "{}", got.text());
        assert_eq!(got.json()["access_token"], token);
    }
}

/// GET the application's `me` with `authorization: AUTH`.
fn get_me(base: &str, auth: &str) -> RawResponse {
    http(
        base,
        "GET",
        &format!("{APP}/me"),
        &[("authorization", auth)],
        b"",
    )
}

#[test]
fn two_credentials_each_get_their_own_answers() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("two.sqlite");
    let recs = two_credential_recs();
    write_session(&db, "two", FE1, &[], &recs);
    let server = ReplayServer::builder_only_session(&db)
        .body_match(BodyMatch::Strict)
        .verify_on_drop(false)
        .start()
        .unwrap();
    sign_in_bob_and_alice(&server.url());
    let me = |auth: &str| get_me(&server.url(), auth);
    assert!(me("Bearer cwt=REDACTED-2").text().contains("Bob"));
    assert!(me("Bearer cwt=REDACTED-1").text().contains("Alice"));
    let stranger = me("Bearer cwt=somethingelse");
    assert_eq!(stranger.status, 404);
    assert!(
        stranger.text().contains("credential"),
        "{}",
        stranger.text()
    );
    assert_eq!(server.misses().len(), 1, "{}", server.report());
}

#[test]
fn many_clients_at_once_see_consistent_cursors() {
    let f = fixture();
    let server = builder(&f).exhausted(Exhausted::Error).start().unwrap();
    let me = f.recs[9].clone();
    let base = server.url();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (base, me) = (base.clone(), me.clone());
            std::thread::spawn(move || send(&base, &me))
        })
        .collect();
    let mut bodies: Vec<String> = threads
        .into_iter()
        .map(|t| t.join().unwrap())
        .filter(|r| r.status == 200)
        .map(|r| r.text())
        .collect();
    bodies.sort();
    // Exactly the two recorded answers, each once; the other six were told they exhausted.
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    assert!(bodies[0].contains("first") && bodies[1].contains("second"));
    assert_eq!(server.misses().len(), 6);
}

/// A replay of `session` that answers a request whose recorded answers are used up with a
/// 404, and whose tests check what was played themselves.
fn used_up_is_an_error(db: &std::path::Path, session: &str) -> ReplayServer {
    ReplayServer::builder(db, session)
        .exhausted(Exhausted::Error)
        .verify_on_drop(false)
        .start()
        .unwrap()
}

/// The recorded bodies, sorted: what clients asking at once get between them.
fn sorted_bodies(recs: &[Rec]) -> Vec<String> {
    let mut bodies: Vec<String> = recs
        .iter()
        .map(|r| String::from_utf8(r.resp_body.clone()).unwrap())
        .collect();
    bodies.sort();
    bodies
}

#[test]
fn clients_at_once_through_read_ahead_get_every_recorded_answer_once() {
    // Enough answers to one request for many read-ahead windows, asked for by clients on
    // several connections at once (so a little out of order), and a second request's
    // answers interleaved with them in the recording.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("many.sqlite");
    let poll = format!("{APP}/communication/conversations/7/messaging");
    let other = format!("{APP}/me");
    let recs: Vec<Rec> = (0..400)
        .map(|n| {
            if n % 5 == 4 {
                Rec::new("GET", other.clone()).answer(200, JSON, &format!(r#"{{"me":{n}}}"#))
            } else {
                Rec::new("GET", poll.clone()).answer(200, JSON, &format!(r#"{{"n":{n}}}"#))
            }
        })
        .collect();
    write_session(&db, "many", FE1, &[], &recs);
    let server = used_up_is_an_error(&db, "many");
    let base = server.url();
    let ask_until_exhausted = |rec: Rec| {
        let base = base.clone();
        std::thread::spawn(move || {
            let mut bodies = Vec::new();
            loop {
                let got = send(&base, &rec);
                if got.status != 200 {
                    assert_eq!(got.status, 404, "{}", got.text());
                    return bodies;
                }
                bodies.push(got.text());
            }
        })
    };
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let target = if i < 6 { &poll } else { &other };
            ask_until_exhausted(Rec::new("GET", target.clone()))
        })
        .collect();
    let mut got: Vec<String> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    got.sort();
    assert_eq!(got, sorted_bodies(&recs));
    assert!(server.unplayed().is_empty(), "{}", server.report());
}

#[test]
fn replay_opens_no_outbound_connection() {
    // The recorded upstream and token service are local ports we keep listening on.
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let tokens = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    upstream.set_nonblocking(true).unwrap();
    tokens.set_nonblocking(true).unwrap();
    let up = format!("http://{}", upstream.local_addr().unwrap());
    let tok = format!("http://{}", tokens.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("local.sqlite");
    let recs = im_session(&up, &tok);
    write_session(&db, "local", &up, &[&tok], &recs);
    let server = ReplayServer::builder(&db, "local")
        .verify_on_drop(false)
        .start()
        .unwrap();
    for rec in &recs {
        let got = send(&server.url(), rec);
        assert!(!got.text().contains(&up), "{}", got.text());
    }
    http(
        &server.url(),
        "GET",
        &format!("{APP}/events?ack=7"),
        &[],
        b"",
    );
    http(&server.url(), "GET", "/not/recorded", &[], b"");
    server.assert_no_misses_except(1);
    drop(server);
    for l in [&upstream, &tokens] {
        match l.accept() {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            other => panic!("the replay connected to a recorded upstream: {other:?}"),
        }
    }
}

trait MissCount {
    fn assert_no_misses_except(&self, n: usize);
}

impl MissCount for ReplayServer {
    fn assert_no_misses_except(&self, n: usize) {
        assert_eq!(self.misses().len(), n, "{}", self.report());
    }
}

// ---- the command line ----

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ucwa-replay"))
}

fn run_replay(args: &[&str]) -> std::process::Output {
    bin()
        .arg("replay")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn cli_prints_its_url_first_serves_and_exits_0_on_sigterm() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    let mut child = bin()
        .args(["replay", "--db"])
        .arg(&f.db)
        .args([
            "--session",
            "im",
            "--listen",
            "127.0.0.1:0",
            "--feed-end",
            "empty",
            "--exhausted",
            "error",
            "--pace",
            "scaled:0.1",
            "--body-match",
            "strict",
            "--ignore-body-field",
            "UserAgent",
            "--format",
            "json",
            "--report",
        ])
        .arg(&report)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let url = line.trim().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{line:?}");
    // --ignore-body-field UserAgent: a different UserAgent now matches.
    let got = http(
        &url,
        "POST",
        "/ucwa/oauth/v1/applications",
        &[
            ("accept", JSON),
            ("content-type", "application/json"),
            ("authorization", AUTH1),
        ],
        br#"{"UserAgent":"other","Culture":"en-US"}"#,
    );
    assert_eq!(got.status, 201);
    assert_eq!(got.header("location"), Some(format!("{url}{APP}").as_str()));
    let miss = http(&url, "GET", "/missing", &[], b"");
    assert_eq!(miss.status, 404);

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    // --format json: the final report follows the URL line.
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let final_report: serde_json::Value = serde_json::from_str(&rest).unwrap();
    assert_eq!(final_report["misses"].as_array().unwrap().len(), 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("1 misses"), "{stderr}");
    assert!(
        stderr.contains(&format!("{} unplayed", f.recs.len() - 1)),
        "{stderr}"
    );
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(written["misses"][0]["path"], "/missing");
}

fn assert_one_line_exit_2(out: &std::process::Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing on stdout");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains(needle), "{stderr}");
}

#[test]
fn cli_bad_input_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.sqlite");
    let out = run_replay(&["--db", missing.to_str().unwrap(), "--listen", "127.0.0.1:0"]);
    assert_one_line_exit_2(&out, "no such recording");

    let garbage = dir.path().join("garbage.sqlite");
    std::fs::write(&garbage, b"not a database, just some words to fill a page").unwrap();
    let out = run_replay(&["--db", garbage.to_str().unwrap(), "--listen", "127.0.0.1:0"]);
    assert_one_line_exit_2(&out, "not a SQLite database");

    let f = fixture();
    let db = f.db.to_str().unwrap();
    let out = run_replay(&["--db", db, "--session", "nope", "--listen", "127.0.0.1:0"]);
    assert_one_line_exit_2(&out, "no session named \"nope\" (sessions: im)");

    let out = run_replay(&["--db", db, "--pace", "warp"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--pace"));
}

#[test]
fn cli_two_credentials_and_exhausted_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("two.sqlite");
    write_session(&db, "two", FE1, &[], &two_credential_recs());
    // One session in the file: no --session needed.
    let mut server = crate::util::Server::replay(&db, &["--exhausted", "error"]);
    let url = server.url.clone();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert_ne!(server.addr().port(), 0);
    sign_in_bob_and_alice(&url);
    let me = |auth: &str| get_me(&url, auth);
    assert_eq!(me("Bearer cwt=REDACTED-2").json()["name"], "Bob");
    assert_eq!(me("Bearer cwt=REDACTED-1").json()["name"], "Alice");
    // Alice's one recorded `me` is used up: --exhausted error.
    let again = me("Bearer cwt=REDACTED-1");
    assert_eq!(again.status, 404);
    assert_eq!(again.header("x-ucwa-replay"), Some("exhausted"));
    assert_eq!(again.json()["subcode"], "ReplayExhausted");
    // Bob's is untouched by Alice's cursor... and now used up too.
    assert_eq!(me("Bearer cwt=REDACTED-2").status, 404);
    let status = server.terminate(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{}", server.stderr());
    assert!(server.stderr().contains("2 misses"), "{}", server.stderr());
}

#[test]
fn cli_feed_end_hold_keeps_the_pget_until_shutdown_releases_it() {
    let f = fixture();
    let mut server = crate::util::Server::replay(&f.db, &["--session", "im", "--feed-end", "hold"]);
    let url = server.url.clone();
    let base = url.clone();
    let held = std::thread::spawn(move || {
        http(
            &base,
            "GET",
            &format!("{APP}/events?ack=9&timeout=600"),
            &[("accept", JSON), ("authorization", AUTH1)],
            b"",
        )
    });
    // Let the P-GET arrive; other requests are answered while it is held.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(send(&url, &f.recs[9]).status, 200);
    assert!(!held.is_finished(), "a 600 s P-GET beyond the feed is held");
    let status = server.terminate(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{}", server.stderr());
    let got = held.join().unwrap();
    assert_eq!(got.status, 200);
    assert_eq!(got.json()["sender"], serde_json::json!([]));
    assert_eq!(
        got.json()["_links"]["next"]["href"],
        format!("{APP}/events?ack=10&timeout=600")
    );
}

// ---- end to end: record against the simulator through the proxy, replay offline ----

mod end_to_end {
    use super::*;
    use http::Method;
    use serde_json::{Value, json};
    use ucwa_replay::demo::{Reply, Seen, UcwaClient, normalise_transcript};
    use ucwa_replay::proxy::{ProxyConfig, RecordingProxy};
    use ucwa_replay::recording::Origin;
    use ucwa_replay::serve::BackgroundServer;
    use ucwa_replay::sim::{SimConfig, SimServer};
    use ucwa_replay::store::{NewSession, StoreWriter};
    use ucwa_replay::ucwa::Representation;

    use crate::util::{ReplyExt, block_on};

    /// The shared UCWA client following links, as a bot would, and the simulator's control
    /// API while recording (`None` on replay: the recording already holds what the other
    /// side did).
    struct Bot {
        ucwa: UcwaClient,
        control: Option<String>,
        events: String,
    }

    impl Bot {
        async fn send(
            &mut self,
            method: Method,
            href: &str,
            accept: &str,
            body: Option<(&str, &[u8])>,
        ) -> Reply {
            let mut request = self.ucwa.request(method, href).accept(accept);
            if let Some((content_type, bytes)) = body {
                request = request.body(content_type, bytes.to_vec());
            }
            request.send().await.expect("request sent")
        }

        fn link(v: &Value, rel: &str) -> String {
            v["_links"][rel]["href"]
                .as_str()
                .unwrap_or_else(|| panic!("no {rel} link in {v}"))
                .to_string()
        }

        async fn control(&self, action: &str, body: Value) {
            if let Some(ctl) = &self.control {
                UcwaClient::new(ctl, Representation::Json)
                    .post_json(&format!("/_sim/{action}"), &body, &[200])
                    .await
                    .unwrap_or_else(|e| panic!("{action}: {e}"));
            }
        }

        async fn next_events(&mut self) -> Value {
            let href = self.events.clone();
            let r = self.send(Method::GET, &href, JSON, None).await;
            assert_eq!(r.status, 200, "{}", r.text());
            let v = r.expect_json();
            self.events = Self::link(&v, "next");
            v
        }

        /// Poll the feed until an event of `rel`/`kind` comes (at most 6 batches).
        async fn events_until(&mut self, rel: &str, kind: &str) -> Value {
            for _ in 0..6 {
                let batch = self.next_events().await;
                for sender in batch["sender"].as_array().into_iter().flatten() {
                    for e in sender["events"].as_array().into_iter().flatten() {
                        if e["link"]["rel"] == rel && e["type"] == kind {
                            return e.clone();
                        }
                    }
                }
            }
            panic!("no {rel} {kind} event");
        }

        /// Sign in from autodiscover, create an application, receive an IM, look at the
        /// participantMessaging resource in XML, see the remote participant leave. Returns
        /// the transcript with the server's own base URL written as `{base}`.
        async fn run(base: &str, control: Option<String>, endpoint_id: &str) -> Vec<Seen> {
            let mut c = Bot {
                ucwa: UcwaClient::new(base, Representation::Json),
                control,
                events: String::new(),
            };
            let root = c
                .send(
                    Method::GET,
                    "/autodiscover/autodiscoverservice.svc/root",
                    JSON,
                    None,
                )
                .await
                .expect_json();
            let user = Self::link(&root, "user");
            let challenge = c.send(Method::GET, &user, JSON, None).await;
            assert_eq!(challenge.status, 401);
            let www = challenge
                .header_all("www-authenticate")
                .into_iter()
                .find(|v| v.starts_with("MsRtcOAuth"))
                .unwrap()
                .to_string();
            let token_href = www.split('"').nth(1).unwrap().to_string();
            let token = c
                .send(
                    Method::POST,
                    &token_href,
                    JSON,
                    Some((
                        "application/x-www-form-urlencoded",
                        b"grant_type=password&username=alice%40contoso.com&password=Pa55w0rd%21",
                    )),
                )
                .await;
            assert_eq!(token.status, 200, "{}", token.text());
            let token = token.expect_json()["access_token"]
                .as_str()
                .unwrap()
                .to_string();
            c.ucwa.set_token(Some(token));
            let user = c.send(Method::GET, &user, JSON, None).await.expect_json();
            let apps = Self::link(&user, "applications");
            let body = json!({"UserAgent":"replay-e2e","EndpointId":endpoint_id,"Culture":"en-US"})
                .to_string();
            let app = c
                .send(
                    Method::POST,
                    &apps,
                    JSON,
                    Some(("application/json", body.as_bytes())),
                )
                .await;
            assert_eq!(app.status, 201, "{}", app.text());
            let app = app.expect_json();
            let app_href = Self::link(&app, "self");
            c.events = Self::link(&app, "events");
            let available = c
                .send(
                    Method::POST,
                    &format!("{app_href}/me/makeMeAvailable"),
                    JSON,
                    Some((
                        "application/json",
                        br#"{"SupportedModalities":["Messaging"]}"#,
                    )),
                )
                .await;
            assert_eq!(available.status, 204, "{}", available.text());
            c.next_events().await;
            c.control(
                "invite",
                json!({"from":"sip:lene.aaling@contoso.com","message":"Hi Tosh\r\n"}),
            )
            .await;
            let started = c.events_until("messagingInvitation", "started").await;
            let accept = started["_embedded"]["messagingInvitation"]["_links"]["accept"]["href"]
                .as_str()
                .unwrap()
                .to_string();
            assert_eq!(c.send(Method::POST, &accept, JSON, None).await.status, 204);
            let added = c.events_until("participantMessaging", "added").await;
            let pm = added["link"]["href"].as_str().unwrap().to_string();
            let xml = c.send(Method::GET, &pm, XML, None).await;
            assert_eq!(xml.status, 200, "{}", xml.text());
            assert!(xml.text().contains("participantMessaging"));
            c.control("leave", json!({"participant":"lene.aaling@contoso.com"}))
                .await;
            c.events_until("participantMessaging", "deleted").await;
            let mut transcript = normalise_transcript(c.ucwa.transcript(), c.ucwa.base());
            for seen in &mut transcript {
                // `connection` is the HTTP server's own. The recording proxy moves the
                // header fields it rewrites to the end of the head (the store keeps the
                // upstream's order, which replay serves): compare each name's values in
                // order, not the interleaving of names.
                seen.headers.retain(|(n, _)| n != "connection");
                seen.headers.sort_by(|a, b| a.0.cmp(&b.0));
            }
            transcript
        }
    }

    /// Token and cookie values masked (and Content-Length with them, which follows the body).
    fn mask_secrets(r: &Seen) -> Seen {
        let re = regex::Regex::new(r"(cwt=|cwt_ucwa=)[A-Za-z0-9_\-.%]+").unwrap();
        let body = re
            .replace_all(&String::from_utf8_lossy(&r.body), "${1}SECRET")
            .into_owned();
        Seen {
            headers: r
                .headers
                .iter()
                .filter(|(n, _)| n != "content-length")
                .map(|(n, v)| {
                    let v = String::from_utf8_lossy(v);
                    (
                        n.clone(),
                        re.replace_all(&v, "${1}SECRET").into_owned().into_bytes(),
                    )
                })
                .collect(),
            body: body.into(),
            ..r.clone()
        }
    }

    #[test]
    fn a_recorded_im_session_replays_byte_identical_with_nothing_missed_or_unplayed() {
        let sim = SimServer::start(SimConfig {
            seed: 11,
            time_scale: 0.001,
        })
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("e2e.sqlite");
        let session = NewSession {
            name: "im".into(),
            upstream: sim.url(),
            also_upstreams: vec![],
            replace: false,
        };
        let writer = StoreWriter::create(&db, &session).unwrap();
        let sink = writer.sink();
        let proxy =
            RecordingProxy::new(ProxyConfig::new(Origin::parse(&sim.url()).unwrap())).unwrap();
        let recorder = BackgroundServer::start(
            "recording-proxy",
            "127.0.0.1:0".parse().unwrap(),
            move |listener, token| async move {
                proxy.run(listener, None, sink, token).await.unwrap();
            },
        )
        .unwrap();
        let recorded = block_on(Bot::run(
            &recorder.url(),
            Some(sim.url()),
            "0f8fad5b-first-run",
        ));
        recorder.stop();
        block_on(writer.finish()).unwrap();
        let sim_addr = sim.addr();
        sim.stop();
        // Listen where the simulator was: the replay must never come knocking.
        let watch = std::net::TcpListener::bind(sim_addr).ok();
        if let Some(w) = &watch {
            w.set_nonblocking(true).unwrap();
        }

        let server = ReplayServer::builder(&db, "im")
            .feed_end(FeedEnd::Empty)
            .start()
            .unwrap();
        let replayed = block_on(Bot::run(&server.url(), None, "7c9e6679-second-run"));
        assert_eq!(recorded.len(), replayed.len());
        // The replay hands out the recorded placeholders (`cwt=REDACTED-n`), never the
        // secrets the client saw while recording: compare with secrets masked on both sides.
        let placeholders = replayed
            .iter()
            .filter(|r| String::from_utf8_lossy(&r.body).contains("cwt=REDACTED-"))
            .count();
        assert!(placeholders > 0, "the token response carries a placeholder");
        for (a, b) in recorded.iter().zip(&replayed) {
            assert_eq!(
                mask_secrets(a),
                mask_secrets(b),
                "{} {}",
                a.method,
                a.target
            );
        }
        server.assert_all_played();

        // Driven again, a second replay gives the same transcript.
        let again = ReplayServer::builder(&db, "im")
            .feed_end(FeedEnd::Empty)
            .start()
            .unwrap();
        assert_eq!(block_on(Bot::run(&again.url(), None, "x")), replayed);
        drop((server, again));
        if let Some(w) = watch {
            match w.accept() {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                other => panic!("the replay connected to the recorded upstream: {other:?}"),
            }
        }
    }
}

#[test]
fn startup_is_fast_enough_for_a_server_per_test() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("big.sqlite");
    let body = format!(
        r#"{{"_links":{{"self":{{"href":"{FE1}{APP}/me"}}}},"pad":"{}"}}"#,
        "x".repeat(2000)
    );
    let recs: Vec<Rec> = (0..3000)
        .map(|i| {
            Rec::new("POST", format!("{APP}/things/{}", i % 100))
                .auth(1)
                .body("application/json", &format!(r#"{{"n":{i}}}"#))
                .answer(200, "application/json", &body)
        })
        .collect();
    write_session(&db, "big", FE1, &[], &recs);
    let start = Instant::now();
    let server = ReplayServer::builder(&db, "big")
        .verify_on_drop(false)
        .start()
        .unwrap();
    let took = start.elapsed();
    assert!(took < Duration::from_secs(3), "{took:?}");
    let got = send(&server.url(), &recs[2999]);
    assert_eq!(got.status, 200);
    assert!(server.misses().is_empty());
}

/// An h2 client (prior knowledge, as over plain TCP) sends its requests as streams of one
/// connection, many at once. The replay answers the ones it must read from the file on the
/// streams' own tasks, not on the connection's, and every stream gets its recorded answer
/// once.
#[test]
fn an_h2_client_gets_every_recorded_answer_once_over_one_connection() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h2.sqlite");
    let poll = format!("{APP}/communication/conversations/7/messaging");
    let recs: Vec<Rec> = (0..120)
        .map(|n| Rec::new("GET", poll.clone()).answer(200, JSON, &format!(r#"{{"n":{n}}}"#)))
        .collect();
    write_session(&db, "h2", FE1, &[], &recs);
    let server = used_up_is_an_error(&db, "h2");
    let addr = server.url().trim_start_matches("http://").to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (versions, mut got, after) = rt.block_on(async {
        use http_body_util::{BodyExt, Empty};
        let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let (sender, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(tcp),
        )
        .await
        .unwrap();
        tokio::spawn(conn);
        let ask = |sender: hyper::client::conn::http2::SendRequest<Empty<bytes::Bytes>>| {
            let uri = format!("http://{addr}{poll}");
            async move {
                let req = http::Request::get(uri)
                    .header("accept", "application/json")
                    .body(Empty::new())
                    .unwrap();
                let resp = sender.clone().send_request(req).await.unwrap();
                let (version, status) = (resp.version(), resp.status());
                let body = resp.into_body().collect().await.unwrap().to_bytes();
                (version, status, String::from_utf8(body.to_vec()).unwrap())
            }
        };
        let all =
            futures_util::future::join_all((0..recs.len()).map(|_| ask(sender.clone()))).await;
        let after = ask(sender.clone()).await;
        let versions: Vec<_> = all.iter().map(|(v, s, _)| (*v, *s)).collect();
        let bodies: Vec<String> = all.into_iter().map(|(_, _, b)| b).collect();
        (versions, bodies, after)
    });
    assert!(
        versions
            .iter()
            .all(|v| *v == (http::Version::HTTP_2, http::StatusCode::OK)),
        "{versions:?}"
    );
    got.sort();
    assert_eq!(got, sorted_bodies(&recs));
    assert_eq!(after.1, http::StatusCode::NOT_FOUND, "{}", after.2);
    assert!(server.unplayed().is_empty(), "{}", server.report());
}
