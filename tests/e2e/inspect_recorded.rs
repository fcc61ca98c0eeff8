//! `sessions`, `show` and `events --format json` on a real recording: the scripted IM session
//! recorded through the proxy against the simulator, in JSON and in XML.

use std::process::Command;

use serde_json::Value;
use ucwa_replay::demo::{ScriptOptions, record_session};
use ucwa_replay::store::Recording;
use ucwa_replay::ucwa::Representation;

use crate::util::s;

fn json_of(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_ucwa-replay"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_commands_on_a_recorded_im_session() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rec.sqlite");
    let mut runs = Vec::new();
    for (name, repr) in [("json", Representation::Json), ("xml", Representation::Xml)] {
        let opts = ScriptOptions {
            representation: repr,
            ..ScriptOptions::default()
        };
        let (run, exchanges) = record_session(&db, name, 5, &opts).await.unwrap();
        runs.push((name, run, exchanges));
    }
    let rec = Recording::open(&db).unwrap();

    let sessions = json_of(&["sessions", "--db", s(&db), "--format", "json"]);
    let sessions = sessions.as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    for (name, run, exchanges) in &runs {
        let row = sessions
            .iter()
            .find(|r| r["name"] == *name)
            .unwrap_or_else(|| panic!("no {name} in {sessions:?}"));
        let info = rec.session(Some(name)).unwrap();
        assert_eq!(row["upstream"], info.upstream.as_str());
        assert_eq!(row["exchanges"], *exchanges);
        assert_eq!(row["events"], run.events.len() as u64, "{name}");
        assert!(row["started_at"].is_string(), "{row}");

        let of_session = |command: &str| {
            json_of(&[
                command,
                "--db",
                s(&db),
                "--session",
                name,
                "--format",
                "json",
            ])
        };
        // show: every exchange in arrival order, as the store holds it.
        let shown = of_session("show");
        let shown = shown.as_array().unwrap();
        let stored = rec.exchanges(&info).unwrap();
        assert_eq!(shown.len(), stored.len(), "{name}");
        for (row, ex) in shown.iter().zip(&stored) {
            assert_eq!(row["seq"], ex.seq);
            assert_eq!(row["method"], ex.method.as_str());
            assert_eq!(row["path"], ex.path.as_str());
            assert_eq!(row["status"], serde_json::json!(ex.status));
            assert_eq!(row["kind"], ex.kind.as_str());
            assert_eq!(row["events"], ex.events.len());
            assert!(row["duration_ms"].is_number(), "{row}");
        }
        let seqs: Vec<u64> = shown.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
        assert_eq!(seqs, (1..=shown.len() as u64).collect::<Vec<_>>());
        assert_eq!(shown[0]["method"], "GET");
        assert!(
            shown.iter().any(|r| r["kind"] == "events"),
            "{name}: the feed is classified"
        );

        // events: the flattened timeline in the order the client received it.
        let events = of_session("events");
        let events = events.as_array().unwrap();
        let got: Vec<(String, String)> = events
            .iter()
            .map(|e| {
                (
                    e["link_rel"].as_str().unwrap().to_string(),
                    e["type"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let seen: Vec<(String, String)> = run
            .events
            .iter()
            .map(|e| (e.link_rel.clone(), e.event_type.clone()))
            .collect();
        assert_eq!(got, seen, "{name}: the timeline is what the client saw");
        let order: Vec<(u64, u64)> = events
            .iter()
            .map(|e| (e["seq"].as_u64().unwrap(), e["position"].as_u64().unwrap()))
            .collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(order, sorted, "{name}: in (seq, position) order");
        let pm: Vec<&str> = events
            .iter()
            .filter(|e| e["link_rel"] == "participantMessaging")
            .map(|e| e["type"].as_str().unwrap())
            .collect();
        for kind in ["added", "updated", "deleted"] {
            assert!(pm.contains(&kind), "{name}: {pm:?}");
        }
        for e in events {
            assert!(e["ack"].is_u64(), "{e}");
            assert!(e["sender_rel"].is_string(), "{e}");
            assert!(e["feed_path"].as_str().unwrap().ends_with("/events"), "{e}");
        }
    }
}
