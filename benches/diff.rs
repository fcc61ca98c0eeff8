//! Diff of two 10 000-exchange sessions (`cargo bench --bench diff`).
//!
//! Prints the median time of the diff next to a baseline measured in the same run (loading
//! both sessions from SQLite, which the diff also does), and their ratio: absolute numbers on
//! two shared cores mean little. Target: the diff under 2 s. No assertions: a report.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use ucwa_replay::diff::{DiffOptions, diff_sessions};
use ucwa_replay::recording::{EventRow, Exchange, HeaderList, KeyOptions, KeyRequest};
use ucwa_replay::store::{NewSession, Recording, StoreWriter};
use ucwa_replay::ucwa::Representation;

const EXCHANGES: u64 = 10_000;
const RUNS: usize = 5;

fn exchange(seq: u64, app: u32, variant: u32) -> Exchange {
    let conv = seq / 50;
    let base = format!(
        "/ucwa/oauth/v1/applications/{app}/communication/conversations/{}",
        conv + variant as u64 * 1000
    );
    let feed = seq.is_multiple_of(10);
    let xml = seq.is_multiple_of(7);
    let (path, query, kind) = if feed {
        (
            format!("/ucwa/oauth/v1/applications/{app}/events"),
            Some(format!("ack={}", seq / 10 + 1)),
            "events",
        )
    } else {
        (
            format!("{base}/participants/user{}/messaging", seq % 13),
            None,
            "participantMessaging",
        )
    };
    let accept = if xml {
        "application/xml"
    } else {
        "application/json"
    };
    let key = KeyRequest {
        method: "GET",
        path: &path,
        query: query.as_deref(),
        accept: Some(accept),
        ..KeyRequest::default()
    }
    .key(&KeyOptions::default());
    let body = if xml {
        format!(
            r#"<resource rel="participantMessaging" href="{path}" xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><link rel="participant" href="{base}/participants/user{}" /><property name="rel">participantMessaging</property></resource>"#,
            seq % 13
        )
    } else {
        json!({"rel":"participantMessaging","_links":{"self":{"href":path},"participant":{"href":format!("{base}/participants/user{}", seq % 13)}},
               "when": format!("/Date({})/", 1_474_932_027_613u64 + seq + variant as u64)}).to_string()
    };
    let mut response_headers = HeaderList::default();
    response_headers.push(
        "content-type",
        if xml {
            "application/xml"
        } else {
            "application/json"
        },
    );
    let mut request_headers = HeaderList::default();
    request_headers.push("accept", accept);
    let events = if feed {
        (0..3)
            .map(|i| EventRow {
                ack: Some((seq / 10 + 1) as i64),
                position: i,
                sender_rel: "conversation".into(),
                sender_href: base.clone(),
                link_rel: "participantMessaging".into(),
                link_href: format!("{base}/participants/user{i}/messaging"),
                in_rel: Some("participant".into()),
                in_href: Some(format!("{base}/participants/user{i}")),
                event_type: ["added", "updated", "deleted"][i as usize].into(),
                ..EventRow::default()
            })
            .collect()
    } else {
        vec![]
    };
    Exchange {
        id: 0,
        seq,
        started_us: 0,
        duration_us: 0,
        method: "GET".into(),
        path,
        query,
        http_version: "HTTP/1.1".into(),
        request_headers,
        request_body: vec![],
        request_truncated: false,
        status: Some(200),
        response_headers,
        response_body: body.into_bytes(),
        response_truncated: false,
        content_encoding: None,
        error: None,
        kind: kind.into(),
        representation: if xml {
            Representation::Xml
        } else {
            Representation::Json
        },
        match_key: key,
        ordinal: 0,
        credential: None,
        upstream: None,
        events,
    }
}

async fn write(path: &Path, app: u32, variant: u32) {
    let w = StoreWriter::create(
        path,
        &NewSession {
            name: "s".into(),
            upstream: "https://fe1.contoso.com".into(),
            also_upstreams: vec![],
            replace: false,
        },
    )
    .expect("create recording");
    let sink = w.sink();
    for seq in 1..=EXCHANGES {
        sink.submit(exchange(seq, app, variant));
    }
    drop(sink);
    w.finish().await.expect("finish recording");
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (dir.path().join("a.sqlite"), dir.path().join("b.sqlite"));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        write(&a, 105, 0).await;
        write(&b, 106, 1).await;
    });

    let mut load = Vec::new();
    let mut diff = Vec::new();
    let mut last = None;
    for _ in 0..RUNS {
        let t = Instant::now();
        let ra = Recording::open(&a).expect("open a");
        let rb = Recording::open(&b).expect("open b");
        let (sa, sb) = (ra.session(None).expect("a"), rb.session(None).expect("b"));
        let xa = ra.exchanges(&sa).expect("load a");
        let xb = rb.exchanges(&sb).expect("load b");
        assert_eq!(xa.len() + xb.len(), 2 * EXCHANGES as usize);
        load.push(t.elapsed());

        let t = Instant::now();
        let report = diff_sessions(&ra, &sa, &rb, &sb, &DiffOptions::default()).expect("diff");
        diff.push(t.elapsed());
        last = Some(report);
    }
    let (load, diff) = (median(load), median(diff));
    let report = last.expect("ran");
    println!("diff of two {EXCHANGES}-exchange sessions ({RUNS} runs, medians)");
    println!(
        "  baseline (load both sessions): {:>8.1} ms",
        load.as_secs_f64() * 1e3
    );
    println!(
        "  diff (load + compare):         {:>8.1} ms",
        diff.as_secs_f64() * 1e3
    );
    println!(
        "  ratio diff / baseline:         {:>8.2}",
        diff.as_secs_f64() / load.as_secs_f64()
    );
    println!(
        "  target: diff under 2 s -> {}",
        if diff < Duration::from_secs(2) {
            "met"
        } else {
            "MISSED"
        }
    );
    println!("  {}", report.summary());
}
