//! Anonymising 100 000 exchanges (`cargo bench --bench anonymize`).
//!
//! A generated IM session (JSON and XML participants with names and SIP URIs, message POSTs,
//! events with message data URIs, participantMessaging) is written once; then, each run, it
//! is copied into a new recording through the ingest step without anonymisation — the
//! baseline, measured in the same run — and anonymised into another. Prints both medians,
//! exchanges per second and their ratio: absolute numbers on two shared cores mean little.
//! No assertions: a report.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ucwa_replay::anonymize::{AnonymizeConfig, AnonymizeOptions, Anonymizer, anonymize_recording};
use ucwa_replay::recording::{Exchange, HeaderList, Ingest, KeyOptions};
use ucwa_replay::redact::RedactConfig;
use ucwa_replay::store::{NewSession, Recording, StoreWriter};
use ucwa_replay::ucwa::Representation;

const EXCHANGES: u64 = 100_000;
const RUNS: usize = 3;
const APP: &str = "/ucwa/oauth/v1/applications/105";

fn person(n: u64) -> (String, String) {
    (
        format!("person{}@contoso.com", n % 97),
        format!("Person Number{}", n % 97),
    )
}

fn exchange(seq: u64) -> Exchange {
    let conv = format!("{APP}/communication/conversations/c{}", seq / 40);
    let (sip, name) = person(seq);
    let xml = seq.is_multiple_of(5);
    let mut request_headers = HeaderList::default();
    let mut response_headers = HeaderList::default();
    let ct = if xml {
        "application/vnd.microsoft.com.ucwa+xml"
    } else {
        "application/json"
    };
    request_headers.push("accept", ct);
    request_headers.push("authorization", "Bearer cwt=REDACTED-1");
    response_headers.push("content-type", ct);
    response_headers.push("x-ms-server-fqdn", "FE01.contoso.com");
    let mut ex = Exchange {
        seq,
        started_us: 1_700_000_000_000_000 + seq as i64 * 1000,
        duration_us: 900,
        method: "GET".into(),
        http_version: "HTTP/1.1".into(),
        status: Some(200),
        representation: if xml {
            Representation::Xml
        } else {
            Representation::Json
        },
        ..Exchange::default()
    };
    match seq % 4 {
        0 => {
            ex.path = format!("{APP}/events");
            ex.query = Some(format!("ack={}", seq / 4 + 1));
            let text = format!(
                "Message {seq} about the quarterly plan, see you at {}",
                seq % 24
            );
            let data: String = form_urlencoded::byte_serialize(text.as_bytes()).collect();
            ex.response_body = if xml {
                format!(r#"<events href="{APP}/events?ack={a}" xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><link rel="next" href="{APP}/events?ack={b}"/><sender rel="conversation" href="{conv}"><completed rel="message" href="{conv}/messaging/messages/{seq}"><resource rel="message" href="{conv}/messaging/messages/{seq}"><link rel="participant" href="{conv}/participants/{sip}" title="{name}"/><link rel="plainMessage" href="data:text/plain;charset=utf-8,{data}"/><property name="direction">Incoming</property></resource></completed></sender></events>"#, a = seq / 4 + 1, b = seq / 4 + 2)
            } else {
                format!(r#"{{"_links":{{"self":{{"href":"{APP}/events?ack={a}"}},"next":{{"href":"{APP}/events?ack={b}"}}}},"sender":[{{"rel":"conversation","href":"{conv}","events":[{{"link":{{"rel":"message","href":"{conv}/messaging/messages/{seq}"}},"_embedded":{{"message":{{"direction":"Incoming","_links":{{"self":{{"href":"{conv}/messaging/messages/{seq}"}},"participant":{{"href":"{conv}/participants/{sip}","title":"{name}"}},"plainMessage":{{"href":"data:text/plain;charset=utf-8,{data}"}}}},"rel":"message"}}}},"type":"completed"}}]}}]}}"#, a = seq / 4 + 1, b = seq / 4 + 2)
            }
            .into_bytes();
        }
        1 => {
            ex.path = format!("{conv}/participants/{sip}");
            ex.response_body = if xml {
                format!(r#"<resource rel="participant" href="{conv}/participants/{sip}" xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><link rel="self" href="{conv}/participants/{sip}"/><link rel="contact" href="{APP}/people/{sip}"/><property name="name">{name}</property><property name="uri">sip:{sip}</property><property name="sourceNetwork">SameEnterprise</property></resource>"#)
            } else {
                format!(r#"{{"rel":"participant","name":"{name}","uri":"sip:{sip}","sourceNetwork":"SameEnterprise","anonymous":false,"_links":{{"self":{{"href":"{conv}/participants/{sip}"}},"contact":{{"href":"{APP}/people/{sip}"}}}}}}"#)
            }
            .into_bytes();
        }
        2 => {
            ex.method = "POST".into();
            ex.path = format!("{conv}/messaging/messages");
            ex.request_headers.push("content-type", "text/plain");
            ex.request_body = format!("Reply {seq}: thanks, that works for me").into_bytes();
            ex.status = Some(201);
            ex.response_headers
                .push("location", format!("{conv}/messaging/messages/{seq}"));
        }
        _ => {
            ex.path = format!("{conv}/participants/{sip}/messaging");
            ex.response_body = format!(r#"{{"rel":"participantMessaging","_links":{{"self":{{"href":"{conv}/participants/{sip}/messaging"}},"participant":{{"href":"{conv}/participants/{sip}"}}}}}}"#).into_bytes();
        }
    }
    ex.request_headers = {
        let mut h = request_headers;
        for (n, v) in ex.request_headers.iter() {
            h.push(n, v.to_vec());
        }
        h
    };
    ex.response_headers = {
        let mut h = response_headers;
        for (n, v) in ex.response_headers.iter() {
            h.push(n, v.to_vec());
        }
        h
    };
    ex
}

async fn write_input(db: &Path) {
    let writer =
        StoreWriter::create(db, &NewSession::new("big", "https://fe1.contoso.com")).unwrap();
    let ingest = Ingest::new(&RedactConfig::default(), KeyOptions::default()).unwrap();
    let sink = writer.sink();
    for seq in 1..=EXCHANGES {
        let mut ex = exchange(seq);
        ingest.ingest(&mut ex);
        sink.submit(ex);
    }
    drop(sink);
    writer.finish().await.unwrap();
}

/// The baseline: the same read → ingest → write, without the anonymiser.
async fn copy(input: &Path, output: &Path) {
    let rec = Recording::open(input).unwrap();
    let session = rec.session(Some("big")).unwrap();
    let exchanges = rec.exchanges(&session).unwrap();
    let writer = StoreWriter::create(
        output,
        &NewSession {
            name: "big".into(),
            upstream: session.upstream.clone(),
            also_upstreams: vec![],
            replace: false,
        },
    )
    .unwrap();
    let ingest = Ingest::new(&RedactConfig::default(), KeyOptions::default()).unwrap();
    let sink = writer.sink();
    for mut ex in exchanges {
        ex.id = 0;
        ex.events.clear();
        ingest.ingest_classified(&mut ex, false);
        sink.submit(ex);
    }
    drop(sink);
    writer.finish().await.unwrap();
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.sqlite");
    let t = Instant::now();
    rt.block_on(write_input(&input));
    println!(
        "generated {EXCHANGES} exchanges in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let (mut base, mut anon) = (Vec::new(), Vec::new());
    for run in 0..RUNS {
        let out = dir.path().join(format!("copy{run}.sqlite"));
        let t = Instant::now();
        rt.block_on(copy(&input, &out));
        base.push(t.elapsed());
        let out = dir.path().join(format!("anon{run}.sqlite"));
        let anonymizer =
            Arc::new(Anonymizer::new(&AnonymizeConfig::new().with_salt("bench")).unwrap());
        let t = Instant::now();
        let report = rt
            .block_on(anonymize_recording(
                &input,
                &out,
                anonymizer,
                &AnonymizeOptions::new(),
                None,
            ))
            .unwrap();
        anon.push(t.elapsed());
        assert_eq!(report.exchanges, EXCHANGES);
    }
    let (b, a) = (median(base), median(anon));
    let rate = |d: Duration| EXCHANGES as f64 / d.as_secs_f64();
    println!(
        "copy through ingest (baseline): median {:.2} s, {:.0} exchanges/s",
        b.as_secs_f64(),
        rate(b)
    );
    println!(
        "anonymize:                      median {:.2} s, {:.0} exchanges/s",
        a.as_secs_f64(),
        rate(a)
    );
    println!(
        "ratio anonymize / copy: {:.2}",
        a.as_secs_f64() / b.as_secs_f64()
    );
}
