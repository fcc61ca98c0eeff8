//! `anonymize`, `record --anonymize` and `audit --pii`: a session in which alice and two
//! people of distinctive names exchange distinctive messages, recorded through the real
//! proxy from the simulator (JSON and XML), then anonymised by the real binary. No real value
//! may be left anywhere in the new file (database and WAL, byte for byte), the audit must find
//! people in the original and none in the copy, the copy must replay to the same client flow
//! with no miss (strict body matching: no near miss either), and the same salt must give the
//! same bytes.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ucwa_replay::demo::{RemoteScript, ScriptOptions, run_im_session};
use ucwa_replay::proxy::{ProxyConfig, RecordingProxy};
use ucwa_replay::recording::{Exchange, HeaderList, Ingest, KeyOptions, Origin};
use ucwa_replay::redact::RedactConfig;
use ucwa_replay::replay::{BodyMatch, FeedEnd, ReplayServer};
use ucwa_replay::serve::CancellationToken;
use ucwa_replay::sim::{SimConfig, SimServer};
use ucwa_replay::store::{NewSession, Recording, StoreWriter};
use ucwa_replay::ucwa::Representation;

use crate::util::{Server, bin, block_on, s};

const ALICE: &str = "alice@contoso.com";
const PEER: &str = "zebulon.quist@fabrikam-corp.com";
const PEER_NAME: &str = "Zebulon Quist";
const JOINER: &str = "philippa.marchbanks@contoso.com";
const TEXTS: [&str; 3] = [
    "Meet me by the old lighthouse at seven",
    "The parcel code is AZURE-HERON-42",
    "Bringing the blueprints, see you there",
];

fn real_remote() -> RemoteScript {
    RemoteScript {
        peer: PEER.into(),
        peer_name: PEER_NAME.into(),
        joiner: JOINER.into(),
        invitation_text: TEXTS[0].into(),
        peer_text: TEXTS[1].into(),
    }
}

/// Every real value of the session, as it could appear in bytes (the message texts, which
/// are also percent-encoded, are checked through [`text_forms`]).
fn real_values() -> Vec<&'static str> {
    vec![
        ALICE,
        "alice",
        "Alice",
        PEER,
        "zebulon",
        "Zebulon",
        "Quist",
        PEER_NAME,
        JOINER,
        "philippa",
        "Philippa",
        "Marchbanks",
        "contoso",
        "fabrikam",
        "lighthouse",
        "AZURE-HERON",
        "blueprints",
    ]
}

/// Record the script through the recording proxy (the library's, on port 0) from a fresh
/// simulator into `session`.
async fn record(db: &Path, session: &str, repr: Representation, filter: Option<ProxyConfig>) {
    let simulator = SimServer::start(SimConfig {
        seed: 11,
        time_scale: 0.001,
    })
    .expect("simulator");
    let upstream = Origin::parse(&simulator.url()).unwrap();
    let writer = StoreWriter::create(db, &NewSession::new(session, upstream.base())).unwrap();
    let config = filter.unwrap_or_else(|| ProxyConfig::new(upstream));
    let proxy = RecordingProxy::new(config).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    let running = tokio::spawn(proxy.run(listener, None, writer.sink(), stop.clone()));
    let opts = ScriptOptions {
        representation: repr,
        remote: real_remote(),
        message: TEXTS[2].into(),
        ..ScriptOptions::against_simulator(&simulator.url())
    };
    run_im_session(&base, &opts)
        .await
        .expect("the script runs through the proxy");
    stop.cancel();
    running.await.unwrap().unwrap();
    writer.finish().await.unwrap();
}

/// The original recording, made once for the whole module: sessions `json` and `xml`.
fn original() -> &'static Path {
    static REC: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &REC.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("in.sqlite");
        block_on(async {
            record(&db, "json", Representation::Json, None).await;
            record(&db, "xml", Representation::Xml, None).await;
        });
        (dir, db)
    })
    .1
}

/// The bytes of a recording: the database and whatever WAL and shared memory it has.
fn raw_bytes(db: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        if let Ok(b) = std::fs::read(&p) {
            out.extend(b);
        }
    }
    out
}

/// The digest of a recording's database file (readers may touch its `-shm`, never it).
fn digest(db: &Path) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(std::fs::read(db).unwrap()).to_vec()
}

/// The ways a message text is written in a recording: as sent (`text/plain` POST bodies)
/// and percent-encoded (the `data:` URIs of message resources and events).
fn text_forms(text: &str) -> [String; 3] {
    [
        text.to_string(),
        text.replace(' ', "%20"),
        text.replace(' ', "+"),
    ]
}

fn contains_text(hay: &[u8], text: &str) -> bool {
    text_forms(text).iter().any(|f| contains(hay, f))
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn run_ok(args: &[&str]) -> String {
    let out = bin(args);
    assert!(
        out.status.success(),
        "{args:?}: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn anonymize(out: &Path, extra: &[&str]) -> String {
    let mut args = vec!["anonymize", "--db", s(original()), "--out", s(out)];
    args.extend_from_slice(extra);
    run_ok(&args)
}

fn export(db: &Path, session: &str) -> Vec<u8> {
    let out = bin(&[
        "export",
        "--db",
        s(db),
        "--session",
        session,
        "--format",
        "ndjson",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn events(db: &Path, session: &str) -> Vec<(String, String, String)> {
    let rec = Recording::open(db).unwrap();
    let info = rec.session(Some(session)).unwrap();
    rec.exchanges(&info)
        .unwrap()
        .into_iter()
        .flat_map(|ex| ex.events)
        .map(|e| (e.sender_rel, e.link_rel, e.event_type))
        .collect()
}

#[test]
fn no_real_value_is_left_and_the_audit_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.sqlite");
    let mapping = dir.path().join("private.json");
    let before = raw_bytes(original());
    let unchanged = digest(original());
    let printed = anonymize(&out, &["--salt", "t1", "--mapping-out", s(&mapping)]);
    // The input is only read.
    assert!(digest(original()) == unchanged, "the input changed");
    let bytes = raw_bytes(&out);
    for real in real_values() {
        assert!(
            contains(&before, real),
            "{real:?} is not even in the original"
        );
        assert!(
            !contains(&bytes, real),
            "{real:?} left in the anonymised file"
        );
        assert!(!printed.contains(real), "{real:?} printed: {printed}");
    }
    for text in TEXTS {
        assert!(
            contains_text(&before, text),
            "{text:?} is not even in the original"
        );
        assert!(
            !contains_text(&bytes, text),
            "{text:?} left in the anonymised file"
        );
        assert!(!printed.contains(text), "{text:?} printed: {printed}");
    }
    assert!(
        printed.contains("people (e-mail / SIP addresses)"),
        "{printed}"
    );
    assert!(printed.contains("message texts"), "{printed}");
    // The private table has them all, related forms together.
    let table: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&mapping).unwrap()).unwrap();
    let entries = table["entries"].as_array().unwrap();
    let pseudo = |real: &str| {
        entries
            .iter()
            .find(|e| e["real"] == real)
            .and_then(|e| e["pseudonym"].as_str())
            .unwrap_or_else(|| panic!("{real} not in the mapping"))
            .to_string()
    };
    let peer = pseudo(PEER);
    assert!(
        peer.starts_with("user.") && peer.ends_with(".example"),
        "{peer}"
    );
    let name = pseudo(PEER_NAME);
    assert_eq!(name, ucwa_replay::anonymize::name_of_address(&peer));
    assert!(contains(&bytes, &format!("sip:{peer}")));
    assert!(contains(&bytes, &name));
    for t in TEXTS {
        assert_eq!(
            pseudo(t).chars().count(),
            t.chars().count(),
            "similar length"
        );
    }
    // The events index the same, in both representations.
    for session in ["json", "xml"] {
        assert_eq!(
            events(original(), session),
            events(&out, session),
            "{session}"
        );
    }
    // audit --pii: people in the original, none in the copy; the secret audit still clean.
    let audit = |db: &Path| bin(&["audit", "--pii", "--db", s(db)]);
    let found = audit(original());
    assert_eq!(found.status.code(), Some(1));
    let report = String::from_utf8_lossy(&found.stdout);
    for rule in ["e-mail address", "SIP URI", "name", "message text"] {
        assert!(report.contains(rule), "{rule} not reported:\n{report}");
    }
    for real in real_values() {
        assert!(!report.contains(real), "audit printed {real:?}");
    }
    let clean = audit(&out);
    assert_eq!(
        clean.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&clean.stdout)
    );
    assert_eq!(bin(&["audit", "--db", s(&out)]).status.code(), Some(0));
}

#[test]
fn the_copy_replays_to_the_same_client_with_pinned_identities() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pinned.sqlite");
    let pins = [
        (PEER, "peer.one@example.org"),
        (JOINER, "peer.two@example.org"),
        (TEXTS[0], "Lorem ipsum dolor"),
        (TEXTS[1], "Sit amet consectetur"),
        (TEXTS[2], "Adipiscing elit sed do"),
    ];
    let maps: Vec<String> = pins.iter().map(|(r, p)| format!("{r}={p}")).collect();
    let mut args = vec!["--salt", "t2"];
    for m in &maps {
        args.extend(["--map", m.as_str()]);
    }
    anonymize(&out, &args);
    let bytes = raw_bytes(&out);
    for real in real_values() {
        assert!(!contains(&bytes, real), "{real:?} left");
    }
    assert_eq!(
        bin(&["audit", "--pii", "--db", s(&out)]).status.code(),
        Some(0)
    );
    let remote = RemoteScript {
        peer: "peer.one@example.org".into(),
        // The display name of a pinned address is its name form.
        peer_name: "Peer One".into(),
        joiner: "peer.two@example.org".into(),
        invitation_text: pins[2].1.into(),
        peer_text: pins[3].1.into(),
    };
    for (session, repr) in [("json", Representation::Json), ("xml", Representation::Xml)] {
        let server = ReplayServer::builder(&out, session)
            .feed_end(FeedEnd::Empty)
            .body_match(BodyMatch::Strict)
            .start()
            .unwrap();
        let opts = ScriptOptions {
            representation: repr,
            remote: remote.clone(),
            message: pins[4].1.into(),
            ..ScriptOptions::default()
        };
        let run = block_on(run_im_session(&server.url(), &opts));
        let report = server.report();
        run.unwrap_or_else(|e| panic!("{session}: {e}\n{}", report.summary()));
        assert!(report.is_clean(), "{session}: {}", report.summary());
        assert!(report.misses.is_empty());
        drop(server);
    }
}

#[test]
fn same_salt_same_bytes_other_salt_other_pseudonyms_keep_text_keeps_only_text() {
    let dir = tempfile::tempdir().unwrap();
    let [a, b, c, k] = ["a", "b", "c", "k"].map(|n| dir.path().join(format!("{n}.sqlite")));
    let maps = ["a", "b", "c"].map(|n| dir.path().join(format!("{n}.json")));
    anonymize(&a, &["--salt", "same", "--mapping-out", s(&maps[0])]);
    anonymize(&b, &["--salt", "same", "--mapping-out", s(&maps[1])]);
    anonymize(&c, &["--salt", "other", "--mapping-out", s(&maps[2])]);
    for session in ["json", "xml"] {
        let (ea, eb, ec) = (
            export(&a, session),
            export(&b, session),
            export(&c, session),
        );
        assert!(!ea.is_empty());
        assert_eq!(ea, eb, "{session}: same salt, same NDJSON");
        assert_ne!(ea, ec, "{session}: other salt, other bytes");
        let har = bin(&[
            "export",
            "--db",
            s(&a),
            "--session",
            session,
            "--format",
            "har",
        ])
        .stdout;
        for real in real_values() {
            assert!(
                !contains(&ea, real) && !contains(&har, real),
                "{real:?} exported"
            );
        }
    }
    let peer_in = |map: &Path| -> String {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(map).unwrap()).unwrap();
        v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["real"] == PEER)
            .unwrap()["pseudonym"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(peer_in(&maps[0]), peer_in(&maps[1]));
    assert_ne!(peer_in(&maps[0]), peer_in(&maps[2]));
    // Without a salt: a random one, so two runs differ.
    let r1 = dir.path().join("r1.sqlite");
    let r2 = dir.path().join("r2.sqlite");
    anonymize(&r1, &[]);
    anonymize(&r2, &[]);
    assert_ne!(export(&r1, "json"), export(&r2, "json"));

    anonymize(&k, &["--salt", "same", "--keep-text"]);
    let bytes = raw_bytes(&k);
    for t in TEXTS {
        assert!(contains_text(&bytes, t), "--keep-text lost {t:?}");
    }
    for real in [
        ALICE,
        PEER,
        PEER_NAME,
        JOINER,
        "Marchbanks",
        "contoso",
        "fabrikam",
    ] {
        assert!(!contains(&bytes, real), "--keep-text kept {real:?}");
    }
    // Message text is personal data: the audit still reports it.
    let audit = bin(&["audit", "--pii", "--db", s(&k)]);
    assert_eq!(audit.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&audit.stdout).contains("message text"));
}

#[test]
fn record_anonymize_stores_pseudonyms_while_the_client_sees_the_real_answers() {
    let simulator = SimServer::start(SimConfig {
        seed: 5,
        time_scale: 0.001,
    })
    .unwrap();
    let (_dir, db) = crate::util::temp_db();
    let mapping = db.with_extension("json");
    let mut server = Server::record(
        &simulator.url(),
        &db,
        "live",
        &["--anonymize", "--salt", "r", "--mapping-out", s(&mapping)],
    );
    let opts = ScriptOptions {
        remote: real_remote(),
        message: TEXTS[2].into(),
        ..ScriptOptions::against_simulator(&simulator.url())
    };
    let run = block_on(run_im_session(&server.url, &opts)).expect("the client is served");
    let seen: Vec<u8> = run
        .transcript
        .iter()
        .flat_map(|t| t.body.to_vec())
        .collect();
    assert!(
        contains(&seen, PEER) && contains(&seen, PEER_NAME),
        "the client saw the real people"
    );
    assert!(
        server
            .terminate(std::time::Duration::from_secs(20))
            .success()
    );
    let stderr = server.stderr();
    let bytes = raw_bytes(&db);
    for real in real_values() {
        assert!(!contains(&bytes, real), "{real:?} reached the disk");
        assert!(!stderr.contains(real), "{real:?} logged");
    }
    assert!(stderr.contains("message texts"), "{stderr}");
    assert!(std::fs::read_to_string(&mapping).unwrap().contains(PEER));
    assert_eq!(
        bin(&["audit", "--pii", "--db", s(&db)]).status.code(),
        Some(0)
    );
    // The options need --anonymize.
    let (_d2, db2) = crate::util::temp_db();
    let refused = bin(&[
        "record",
        "--upstream",
        &simulator.url(),
        "--listen",
        "127.0.0.1:0",
        "--db",
        s(&db2),
        "--session",
        "x",
        "--salt",
        "r",
    ]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("need --anonymize"));
    assert!(!db2.exists());
}

#[test]
fn bad_inputs_are_refused_with_one_line_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let existing = dir.path().join("existing.sqlite");
    std::fs::write(&existing, b"keep me").unwrap();
    let before = digest(original());
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--out".into(), s(&existing).into()], "already exists"),
        (
            vec![
                "--out".into(),
                s(&dir.path().join("x.sqlite")).into(),
                "--map".into(),
                format!("{PEER}=Bob"),
            ],
            "pair 1",
        ),
        (
            vec![
                "--out".into(),
                s(&dir.path().join("y.sqlite")).into(),
                "--map".into(),
                "=x".into(),
            ],
            "REAL=PSEUDONYM",
        ),
        (
            vec![
                "--out".into(),
                s(&dir.path().join("z.sqlite")).into(),
                "--session".into(),
                "nope".into(),
            ],
            "nope",
        ),
    ];
    for (extra, says) in cases {
        let mut args = vec!["anonymize", "--db", s(original())];
        args.extend(extra.iter().map(String::as_str));
        let out = bin(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
        for real in real_values() {
            assert!(!stderr.contains(real), "{real:?} in {stderr}");
        }
    }
    assert_eq!(std::fs::read(&existing).unwrap(), b"keep me");
    for n in ["x", "y", "z"] {
        assert!(
            !dir.path().join(format!("{n}.sqlite")).exists(),
            "{n} left behind"
        );
    }
    assert!(digest(original()) == before, "the input changed");
    let missing = bin(&[
        "anonymize",
        "--db",
        s(&dir.path().join("none.sqlite")),
        "--out",
        s(&dir.path().join("o.sqlite")),
    ]);
    assert_eq!(missing.status.code(), Some(2));
}

/// The UCWA documentation's sample payloads, as the events responses of a session: they
/// anonymise without losing their structure (what parsed still parses, the events index
/// the same) and their people are gone.
#[test]
fn microsoft_samples_keep_their_structure() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/ucwa-samples");
    let mut files = Vec::new();
    collect(&root, &mut files);
    files.sort();
    let (_dir, db) = crate::util::temp_db();
    let writer =
        StoreWriter::create(&db, &NewSession::new("samples", "https://fe1.contoso.com")).unwrap();
    let ingest = Ingest::new(&RedactConfig::default(), KeyOptions::default()).unwrap();
    let sink = writer.sink();
    let mut bodies = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let body = payload(file);
        let xml = file.extension().is_some_and(|e| e == "xml");
        let mut response_headers = HeaderList::default();
        response_headers.push(
            "content-type",
            if xml {
                "application/vnd.microsoft.com.ucwa+xml"
            } else {
                "application/json"
            },
        );
        let mut ex = Exchange {
            seq: i as u64 + 1,
            started_us: 1_700_000_000_000_000 + i as i64,
            method: "GET".into(),
            path: "/ucwa/oauth/v1/applications/104/events".into(),
            query: Some(format!("ack={}", i + 1)),
            http_version: "HTTP/1.1".into(),
            status: Some(200),
            response_headers,
            response_body: body.clone(),
            representation: if xml {
                Representation::Xml
            } else {
                Representation::Json
            },
            ..Exchange::default()
        };
        ingest.ingest(&mut ex);
        bodies.push((file.clone(), body));
        sink.submit(ex);
    }
    drop(sink);
    block_on(writer.finish()).unwrap();
    let out = tempfile::tempdir().unwrap();
    let anon = out.path().join("samples.sqlite");
    run_ok(&[
        "anonymize",
        "--db",
        s(&db),
        "--out",
        s(&anon),
        "--salt",
        "ms",
    ]);
    let rec = Recording::open(&anon).unwrap();
    let info = rec.session(Some("samples")).unwrap();
    let exchanges = rec.exchanges(&info).unwrap();
    assert_eq!(exchanges.len(), bodies.len());
    let original = Recording::open(&db).unwrap();
    let original = original
        .exchanges(&original.session(Some("samples")).unwrap())
        .unwrap();
    let mut parsed = 0;
    for ((file, before), (ex, orig)) in bodies.iter().zip(exchanges.iter().zip(&original)) {
        let after = &ex.response_body;
        let name = file.display();
        if file.extension().is_some_and(|e| e == "xml") {
            let a = roxmltree_parses(before);
            assert_eq!(a, roxmltree_parses(after), "{name}");
            parsed += usize::from(a);
        } else {
            let a = serde_json::from_slice::<serde_json::Value>(before).is_ok();
            assert_eq!(
                a,
                serde_json::from_slice::<serde_json::Value>(after).is_ok(),
                "{name}"
            );
            parsed += usize::from(a);
        }
        let shape = |x: &Exchange| {
            x.events
                .iter()
                .map(|e| {
                    (
                        e.sender_rel.clone(),
                        e.link_rel.clone(),
                        e.event_type.clone(),
                        e.embedded.is_some(),
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(shape(orig), shape(ex), "{name}");
    }
    assert!(parsed >= 20, "only {parsed} samples parse");
    let bytes = raw_bytes(&anon);
    for real in [
        "contoso",
        "Lene",
        "Aaling",
        "lenea",
        "toshm",
        "Tosh Meston",
        "Hi+Tosh",
        "Task Sample",
    ] {
        assert!(
            contains(&raw_bytes(&db), real) || real == "Task Sample",
            "{real} not in the samples"
        );
        assert!(!contains(&bytes, real), "{real:?} left");
    }
    assert_eq!(
        bin(&["audit", "--pii", "--db", s(&anon)]).status.code(),
        Some(0)
    );
}

fn roxmltree_parses(body: &[u8]) -> bool {
    std::str::from_utf8(body)
        .ok()
        .is_some_and(|t| roxmltree::Document::parse(t.trim_start_matches('\u{feff}')).is_ok())
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "json" || e == "xml") {
            out.push(path);
        }
    }
}

/// A sample file's payload: its `# ` header lines and the blank line after them dropped.
fn payload(file: &Path) -> Vec<u8> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut lines = text.lines().peekable();
    while lines
        .peek()
        .is_some_and(|l| l.starts_with("# ") || *l == "#")
    {
        lines.next();
    }
    if lines.peek().is_some_and(|l| l.is_empty()) {
        lines.next();
    }
    lines.collect::<Vec<_>>().join("\n").into_bytes()
}
