//! A large, realistic session for the scale check of the HTML report: an hour of UCWA traffic
//! in 10 000 exchanges — sign-in, an events feed held up to its timeout with events in most
//! answers, participantMessaging / conversation / messaging requests (some in XML), sent
//! messages, a failed request now and then and an upstream timeout.
#![allow(dead_code)]

use std::path::Path;

use serde_json::json;
use ucwa_replay::recording::{EventRow, Exchange, HeaderList, KeyOptions, KeyRequest};
use ucwa_replay::store::{NewSession, StoreWriter};
use ucwa_replay::ucwa::Representation;

const APP: &str = "/ucwa/oauth/v1/applications/105";
const START_US: i64 = 1_795_728_800_000_000;
/// One hour over the whole session.
const SPAN_US: i64 = 3_600_000_000;

fn headers(pairs: &[(&str, &str)]) -> HeaderList {
    let mut h = HeaderList::default();
    for (n, v) in pairs {
        h.push(*n, *v);
    }
    h
}

fn conv(seq: u64) -> String {
    format!("{APP}/communication/conversations/{}", 100 + seq / 400)
}

fn person(seq: u64) -> &'static str {
    [
        "bob@contoso.com",
        "carol@contoso.com",
        "dave@contoso.com",
        "erin@contoso.com",
    ][(seq / 37 % 4) as usize]
}

/// Exchange `seq` of `total`.
pub fn exchange(seq: u64, total: u64) -> Exchange {
    let step = SPAN_US / total as i64;
    let started_us = START_US + (seq as i64 - 1) * step;
    let xml = seq.is_multiple_of(7);
    let accept = if xml {
        "application/xml"
    } else {
        "application/json"
    };
    let req = headers(&[
        ("accept", accept),
        ("authorization", "Bearer cwt=REDACTED-1"),
        ("host", "fe1.contoso.com"),
        ("user-agent", "ucwa-bot/2.3"),
        (
            "x-ms-correlation-id",
            &format!("{:08x}", seq * 2_654_435_761 % 4_294_967_291),
        ),
        ("via", "1.1 ucwa-replay"),
        ("x-forwarded-for", "10.1.2.3"),
    ]);
    let mut resp = headers(&[
        ("date", "Mon, 01 Jan 2024 00:00:00 GMT"),
        (
            "content-type",
            if xml {
                "application/xml; charset=utf-8"
            } else {
                "application/json; charset=utf-8"
            },
        ),
        ("cache-control", "no-cache"),
        ("x-ms-server-fqdn", "FE01.contoso.com"),
        (
            "x-ms-correlation-id",
            &format!("{:08x}", seq * 40_503 % 4_294_967_291),
        ),
    ]);
    let conv = conv(seq);
    let who = person(seq);
    let pm = format!("{conv}/participants/{who}/messaging");
    let mut ex = Exchange {
        seq,
        started_us,
        duration_us: 300 + (seq as i64 * 7919 % 4000),
        method: "GET".into(),
        http_version: "HTTP/1.1".into(),
        request_headers: req,
        status: Some(200),
        representation: if xml {
            Representation::Xml
        } else {
            Representation::Json
        },
        credential: Some("REDACTED-1".into()),
        upstream: Some("https://fe1.contoso.com".into()),
        ..Default::default()
    };
    if seq.is_multiple_of(10) {
        // The events feed: held until the next P-GET, answered with a batch.
        let ack = (seq / 10) as i64;
        ex.path = format!("{APP}/events");
        ex.query = Some(format!("ack={ack}&timeout=180"));
        ex.kind = "events".into();
        ex.representation = Representation::Json;
        ex.duration_us = step * 10 - 2_000;
        let types = ["added", "updated", "deleted"];
        let n = (seq / 10 % 5) as u32;
        ex.events = (0..n)
            .map(|i| EventRow {
                ack: Some(ack),
                position: i,
                sender_rel: "conversation".into(),
                sender_href: conv.clone(),
                link_rel: if i % 2 == 0 {
                    "participantMessaging"
                } else {
                    "message"
                }
                .into(),
                link_href: if i % 2 == 0 {
                    format!(
                        "{conv}/participants/{}/messaging",
                        person(seq + i as u64 * 37)
                    )
                } else {
                    format!("{conv}/messaging/messages/{}", seq + i as u64)
                },
                in_rel: (i % 2 == 0).then(|| "participant".into()),
                in_href: (i % 2 == 0)
                    .then(|| format!("{conv}/participants/{}", person(seq + i as u64 * 37))),
                event_type: if i % 2 == 0 {
                    types[((seq / 10 + i as u64) % 3) as usize].into()
                } else {
                    "completed".into()
                },
                ..EventRow::default()
            })
            .collect();
        let events: Vec<_> = ex
            .events
            .iter()
            .map(|e| {
                json!({"link": {"rel": e.link_rel, "href": e.link_href},
                       "_embedded": {e.link_rel.clone(): {"rel": e.link_rel, "_links": {"self": {"href": e.link_href}}}},
                       "type": e.event_type})
            })
            .collect();
        ex.response_body = json!({
            "_links": {"self": {"href": format!("{APP}/events?ack={ack}")},
                       "next": {"href": format!("{APP}/events?ack={}", ack + 1)}},
            "sender": if events.is_empty() { json!([]) } else { json!([{"rel": "conversation", "href": conv, "events": events}]) }
        })
        .to_string()
        .into_bytes();
    } else if seq.is_multiple_of(13) {
        ex.method = "POST".into();
        ex.path = format!("{conv}/messaging/messages");
        ex.kind = "sendMessage".into();
        ex.request_headers.push("content-type", "text/plain");
        ex.request_body = format!("Message {seq}: the build is green again").into_bytes();
        ex.status = Some(201);
        resp.push("location", format!("{conv}/messaging/messages/{seq}"));
    } else {
        let (path, kind) = match seq % 3 {
            0 => (pm.clone(), "participantMessaging"),
            1 => (conv.clone(), "conversation"),
            _ => (format!("{conv}/messaging"), "messaging"),
        };
        ex.path = path.clone();
        ex.kind = kind.into();
        ex.response_body = if xml {
            format!(
                r#"<?xml version="1.0" encoding="utf-8"?><resource rel="{kind}" href="{path}" xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><link rel="participant" href="{conv}/participants/{who}" /><link rel="conversation" href="{conv}" /><property name="rel">{kind}</property><property name="state">Connected</property></resource>"#
            )
            .into_bytes()
        } else {
            json!({"rel": kind, "state": "Connected", "subject": "Weekly sync",
                   "_links": {"self": {"href": path}, "participant": {"href": format!("{conv}/participants/{who}")},
                              "conversation": {"href": conv}, "messages": {"href": format!("{conv}/messaging/messages")}}})
            .to_string()
            .into_bytes()
        };
    }
    if seq.is_multiple_of(97) {
        ex.status = Some(500);
        ex.response_body = br#"{"code":"ServiceFailure","subcode":"InvalidExchangeServerVersion","message":"The server encountered an error."}"#.to_vec();
    }
    if seq.is_multiple_of(211) {
        ex.status = None;
        ex.response_body.clear();
        ex.error = Some("upstream timed out after 60 s".into());
    }
    if ex.status.is_some() {
        ex.response_headers = resp;
    }
    ex.match_key = KeyRequest::new(&ex.method, &ex.path).key(&KeyOptions::default());
    ex
}

/// Write a session of `total` exchanges (plus the sign-in) to `path`.
pub async fn write(path: &Path, name: &str, total: u64) {
    let w = StoreWriter::create(path, &NewSession::new(name, "https://fe1.contoso.com"))
        .expect("create recording");
    let sink = w.sink();
    for seq in 1..=total {
        sink.submit(exchange(seq, total));
    }
    drop(sink);
    w.finish().await.expect("finish recording");
}
