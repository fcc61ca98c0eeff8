//! The shared IM script runs against the simulator directly, in JSON and XML, and is
//! deterministic: two simulators with the same seed give byte-identical transcripts.

use ucwa_replay::demo::{ScriptOptions, normalise_transcript, run_im_session};
use ucwa_replay::sim::{SimConfig, SimServer};
use ucwa_replay::ucwa::Representation;

fn sim() -> SimServer {
    SimServer::start(SimConfig {
        seed: 7,
        time_scale: 0.001,
    })
    .expect("simulator starts")
}

#[tokio::test]
async fn script_runs_in_json_and_xml_and_sees_the_seed_events() {
    for repr in [Representation::Json, Representation::Xml] {
        let server = sim();
        let opts = ScriptOptions {
            representation: repr,
            ..ScriptOptions::against_simulator(&server.url())
        };
        let run = run_im_session(&server.url(), &opts)
            .await
            .expect("script runs");
        let pm: Vec<&str> = run
            .events
            .iter()
            .filter(|e| e.link_rel == "participantMessaging")
            .map(|e| e.event_type.as_str())
            .collect();
        assert!(
            pm.contains(&"added") && pm.contains(&"updated") && pm.contains(&"deleted"),
            "{repr}: {pm:?}"
        );
        assert!(run.token.starts_with("cwt="));
        assert!(run.transcript.len() > 20, "{}", run.transcript.len());
    }
}

#[tokio::test]
async fn same_seed_same_bytes() {
    let a = sim();
    let b = sim();
    let ra = run_im_session(&a.url(), &ScriptOptions::against_simulator(&a.url()))
        .await
        .unwrap();
    let rb = run_im_session(&b.url(), &ScriptOptions::against_simulator(&b.url()))
        .await
        .unwrap();
    assert_eq!(
        normalise_transcript(&ra.transcript, &a.url()),
        normalise_transcript(&rb.transcript, &b.url())
    );
}
