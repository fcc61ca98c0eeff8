//! The replay library API exactly as a user's crate uses it in its own tests: start a replay
//! server from a recording file on port 0, point a client at it, check misses and unplayed
//! exchanges, drop it. Once from a plain `#[test]`, once from a `#[tokio::test]`.

use http::Method;
use ucwa_replay::demo::UcwaClient;
use ucwa_replay::replay::{Exhausted, FeedEnd, ReplayServer};
use ucwa_replay::ucwa::Representation;

use crate::util::fixture::{APP, AUTH1, FE1, JSON, LYNCWEB, Rec, im_session, write_session};
use crate::util::{block_on, get};

fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn from_a_plain_test() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("recording.sqlite");
    let recs = im_session(FE1, LYNCWEB);
    write_session(&db, "send-im", FE1, &[LYNCWEB], &recs);

    let server = ReplayServer::builder(&db, "send-im")
        .feed_end(FeedEnd::Empty)
        .exhausted(Exhausted::RepeatLast)
        // This test leaves exchanges unplayed and misses on purpose; `drop_checks` below
        // is about the check on drop.
        .verify_on_drop(false)
        .start()
        .unwrap();
    let base = server.url();
    assert!(base.starts_with("http://127.0.0.1:"));

    // The client under test signs in and reads its first batch of events.
    // (A plain test has no runtime: each request of the client gets one of its own.)
    let discover = get(&base, "/autodiscover/autodiscoverservice.svc/root");
    assert_eq!(discover.status, 200);
    assert!(discover.text().contains(&base.replace('/', "\\/")));
    let mut client = UcwaClient::new(&base, Representation::Json);
    client.set_token(AUTH1.strip_prefix("Bearer ").map(str::to_string));
    let events = block_on(client.get(&format!("{APP}/events?ack=1&timeout=180"))).unwrap();
    assert!(events.text().contains("participantMessaging"));

    assert!(server.misses().is_empty());
    let unplayed = server.unplayed();
    assert_eq!(unplayed.len(), recs.len() - 2);
    assert_eq!(unplayed[0].seq, 2);
    let failure =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| server.assert_all_played()));
    assert!(failure.is_err(), "unplayed exchanges fail the assertion");
    // The failure is a readable list: one line per exchange never played.
    let message = panic_text(failure.unwrap_err());
    assert!(message.contains("recorded but never played:"), "{message}");
    for u in &unplayed {
        let line = format!("#{} {} {}", u.seq, u.method, u.path);
        assert!(message.contains(&line), "no {line:?} in {message}");
    }
    // A miss is listed with what was asked.
    let miss = get(&base, &format!("{APP}/nowhere"));
    assert_eq!(miss.status, 404);
    let failure =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| server.assert_no_misses()));
    let message = panic_text(failure.expect_err("a miss fails assert_no_misses"));
    assert!(message.contains(&format!("GET {APP}/nowhere")), "{message}");
    drop(server);
    assert!(
        std::net::TcpStream::connect(base.trim_start_matches("http://")).is_err(),
        "dropping the handle stops the server"
    );
}

#[tokio::test]
async fn from_a_tokio_test() {
    use ucwa_replay::recording::{KeyOptions, KeyRequest};
    use ucwa_replay::store::{NewSession, StoreWriter};

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("recording.sqlite");
    let session = NewSession::new("me", FE1);
    let writer = StoreWriter::create(&db, &session).unwrap();
    let sink = writer.sink();
    let rec = Rec::new("GET", format!("{APP}/me")).auth(1).answer(
        200,
        "application/json",
        r#"{"name":"Alice"}"#,
    );
    let mut exchange = rec.to_exchange(1, FE1);
    let target = format!("{APP}/me");
    exchange.match_key = KeyRequest::new("GET", &target)
        .accept(Some(JSON))
        .key(&KeyOptions::default());
    sink.submit(exchange);
    drop(sink);
    writer.finish().await.unwrap();

    let server = ReplayServer::builder(&db, "me").start().unwrap();
    let mut client = UcwaClient::new(&server.url(), Representation::Json);
    client.set_token(AUTH1.strip_prefix("Bearer ").map(str::to_string));
    let resp = client.get(&format!("{APP}/me")).await.unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), r#"{"name":"Alice"}"#);

    let miss = client
        .request(Method::GET, &format!("{APP}/you"))
        .no_token()
        .send()
        .await
        .unwrap();
    assert_eq!(miss.status, 404);
    assert_eq!(miss.header("x-ucwa-replay"), Some("miss"));
    assert_eq!(server.misses().len(), 1);
    assert!(server.unplayed().is_empty());
    let report = server.stop();
    assert_eq!(report.played, 1);
}

/// Two exchanges built in code: a test needs no recording file and no match key.
fn two() -> Vec<ucwa_replay::replay::Recorded> {
    use ucwa_replay::replay::Recorded;
    vec![
        Recorded::get(&format!("{APP}/me")).json(200, r#"{"name":"Alice"}"#),
        Recorded::post(&format!("{APP}/communication/messagingInvitations"))
            .body("application/json", r#"{"to":"sip:bob@contoso.com"}"#)
            .respond(201, "application/json", "{}")
            .response_header(
                "Location",
                &format!("{FE1}{APP}/communication/messagingInvitations/1"),
            ),
    ]
}

fn post_invitation(base: &str, to: &str) -> u16 {
    let mut client = UcwaClient::new(base, Representation::Json);
    block_on(
        client
            .request(
                Method::POST,
                &format!("{APP}/communication/messagingInvitations"),
            )
            .body("application/json", format!(r#"{{"to":"{to}"}}"#))
            .send(),
    )
    .unwrap()
    .status
    .as_u16()
}

#[test]
#[should_panic(
    expected = "replay did not go as recorded (checked when the ReplayServer was dropped"
)]
fn dropping_a_server_with_unplayed_exchanges_fails_the_test() {
    let server = ucwa_replay::replay::ReplayServer::from_exchanges(FE1, two())
        .start()
        .unwrap();
    assert_eq!(get(&server.url(), &format!("{APP}/me")).status, 200);
    // The invitation is never sent: the drop at the end of the test panics.
}

#[test]
#[should_panic(
    expected = "POST /ucwa/oauth/v1/applications/105/communication/messagingInvitations (json): no recorded request matches"
)]
fn dropping_a_server_after_a_changed_request_fails_the_test() {
    let server = ReplayServer::from_exchanges(FE1, two()).start().unwrap();
    assert_eq!(get(&server.url(), &format!("{APP}/me")).status, 200);
    // Strict by default in tests: another recipient is a miss.
    assert_eq!(post_invitation(&server.url(), "sip:carol@contoso.com"), 404);
    assert_eq!(post_invitation(&server.url(), "sip:bob@contoso.com"), 201);
}

#[test]
fn a_server_whose_exchanges_were_all_played_drops_quietly() {
    let server = ReplayServer::from_exchanges(FE1, two()).start().unwrap();
    assert_eq!(get(&server.url(), &format!("{APP}/me")).status, 200);
    assert_eq!(post_invitation(&server.url(), "sip:bob@contoso.com"), 201);
    let log = server.received();
    assert_eq!(log.len(), 2);
    assert_eq!(log[1].seq, Some(2));
    drop(server); // no panic: everything was played, nothing missed
}

#[test]
fn near_misses_fail_unless_allowed() {
    use ucwa_replay::replay::BodyMatch;
    let server = ReplayServer::from_exchanges(FE1, two())
        .body_match(BodyMatch::Lenient)
        .allow_near_misses()
        .start()
        .unwrap();
    assert_eq!(get(&server.url(), &format!("{APP}/me")).status, 200);
    assert_eq!(post_invitation(&server.url(), "sip:carol@contoso.com"), 201);
    let near = server.near_misses();
    assert_eq!(near[0].differences[0].place, "/to");
    server.assert_all_played(); // allowed
    drop(server);

    let strict_about_it = ReplayServer::from_exchanges(FE1, two())
        .body_match(BodyMatch::Lenient)
        .verify_on_drop(false)
        .start()
        .unwrap();
    get(&strict_about_it.url(), &format!("{APP}/me"));
    post_invitation(&strict_about_it.url(), "sip:carol@contoso.com");
    let failure = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        strict_about_it.assert_all_played()
    }));
    let message = panic_text(failure.expect_err("a near miss fails"));
    assert!(
        message
            .contains(r#"/to: recorded "sip:bob@contoso.com", received "sip:carol@contoso.com""#),
        "{message}"
    );
}

#[test]
fn a_recording_held_in_memory_as_ndjson_or_har_replays_like_the_file() {
    use ucwa_replay::demo::{ScriptOptions, run_im_session};
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("recordings/sample.sqlite");
    let rec = ucwa_replay::store::Recording::open(&sample).unwrap();
    let session = rec.session(Some("demo")).unwrap();
    let exchanges = rec.exchanges(&session).unwrap();
    let mut ndjson = Vec::new();
    ucwa_replay::har::write_ndjson(&mut ndjson, &session, &exchanges).unwrap();
    let har = ucwa_replay::har::to_har(&session, &exchanges).to_string();
    for server in [
        ReplayServer::from_ndjson(String::from_utf8(ndjson).unwrap())
            .start()
            .unwrap(),
        ReplayServer::from_har(har).start().unwrap(),
    ] {
        let run = block_on(run_im_session(&server.url(), &ScriptOptions::default()));
        run.expect("answered from the recording held in memory");
        assert_eq!(server.report().session, "demo");
        server.assert_all_played();
    }
    let bad = ReplayServer::from_ndjson("{\"seq\":1}\n")
        .start()
        .unwrap_err()
        .to_string();
    assert!(bad.contains("line 1"), "{bad}");
    let bad = ReplayServer::from_exchanges(FE1, two())
        .inject("GET /x => 418")
        .start()
        .unwrap_err()
        .to_string();
    assert!(bad.contains("418"), "{bad}");
}
