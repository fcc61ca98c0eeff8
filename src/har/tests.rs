//! Export → import of the fields a recorded IM session does not exercise: bytes that are not
//! UTF-8, an also-upstream host, a missing response, truncation, a decoded gzip body.

use std::path::Path;

use super::*;
use crate::recording::{Exchange, SessionInfo};
use crate::ucwa::Representation;

fn session() -> SessionInfo {
    SessionInfo {
        id: 1,
        name: "odd".into(),
        upstream: "https://fe1.contoso.com".into(),
        also_upstreams: vec!["https://lyncweb.contoso.com:4443".into()],
        started_at: "2026-01-01T00:00:00Z".into(),
        ended_at: None,
        tool_version: "0.1.0".into(),
        exchanges: 2,
        events: 0,
    }
}

fn exchange(seq: u64) -> Exchange {
    Exchange {
        seq,
        started_us: 1_767_225_600_000_000 + seq as i64 * 1_001,
        duration_us: 1_234_567,
        method: "GET".into(),
        path: "/ucwa/oauth/v1/applications/105/photos/x".into(),
        query: Some("size=small&b=%20".into()),
        http_version: "HTTP/1.1".into(),
        status: Some(200),
        kind: "photo".into(),
        representation: Representation::Other,
        upstream: Some("https://fe1.contoso.com".into()),
        ..Default::default()
    }
}

#[test]
fn odd_exchanges_survive_export_and_import() {
    let mut photo = exchange(1);
    photo.request_headers.push("accept", "image/png");
    photo.request_headers.push("x-odd", vec![0xff, b'a', 0xfe]);
    photo.response_headers.push("content-type", "image/png");
    photo.response_headers.push("content-encoding", "gzip");
    photo.response_body = vec![0x89, b'P', b'N', b'G', 0, 0xff, 0xfe];
    photo.response_truncated = true;
    photo.content_encoding = Some("gzip".into());

    let mut token = exchange(2);
    token.method = "POST".into();
    token.path = "/_upstream/lyncweb.contoso.com:4443/WebTicket/oauthtoken".into();
    token.query = None;
    token.kind = "token".into();
    token.representation = Representation::Json;
    token
        .request_headers
        .push("content-type", "application/octet-stream");
    token.request_body = vec![0, 1, 2, 0xff];
    token.request_truncated = true;
    token.status = None;
    token.error = Some("upstream reset the connection".into());
    token.upstream = Some("https://lyncweb.contoso.com:4443".into());

    let doc = to_har(&session(), &[photo.clone(), token.clone()]);
    assert_eq!(
        doc.pointer("/log/entries/1/request/url")
            .and_then(|v| v.as_str()),
        Some("https://lyncweb.contoso.com:4443/WebTicket/oauthtoken")
    );
    assert_eq!(
        doc.pointer("/log/entries/0/response/content/encoding")
            .and_then(|v| v.as_str()),
        Some("base64")
    );
    assert_eq!(
        doc.pointer("/log/entries/1/response/status")
            .and_then(|v| v.as_i64()),
        Some(0)
    );

    let converted = convert_slice(
        Path::new("odd.har"),
        doc.to_string().as_bytes(),
        &ImportOptions {
            session: "back".into(),
            ..ImportOptions::default()
        },
    )
    .unwrap();
    assert_eq!(converted.plan.upstream, "https://fe1.contoso.com");
    assert_eq!(
        converted.plan.also_upstreams,
        ["https://lyncweb.contoso.com:4443"]
    );
    let [a, b] = &converted.exchanges[..] else {
        panic!("two exchanges");
    };
    for (orig, back) in [(&photo, a), (&token, b)] {
        let mut expected = orig.clone();
        // What the importer computes, as the recorder would.
        expected.match_key = back.match_key.clone();
        assert_eq!(*back, expected);
        assert!(!back.match_key.method.is_empty());
    }
}

#[test]
fn ndjson_lines_say_what_the_store_holds() {
    let mut ex = exchange(3);
    ex.response_body = vec![0xff];
    let mut out = Vec::new();
    write_ndjson(&mut out, &session(), &[ex]).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.lines().count(), 1);
    let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(v["response_body_base64"], "/w==");
    assert_eq!(v["request_body"], "");
    assert_eq!(
        v["url"],
        "https://fe1.contoso.com/ucwa/oauth/v1/applications/105/photos/x?size=small&b=%20"
    );
    assert_eq!(v["started"], "2026-01-01T00:00:00.003003Z");
}

/// The HAR written an entry at a time is, byte for byte, the pretty document of the whole
/// session (and still reads as one), for no, one and several exchanges.
#[test]
fn the_streamed_document_is_the_whole_document() {
    let mut events = exchange(2);
    events
        .response_headers
        .push("content-type", "application/json");
    events.response_body =
        br#"{"sender":[{"rel":"conversation","events":[]}],"n":"a\nb"}"#.to_vec();
    events.events.push(crate::recording::EventRow {
        ack: Some(3),
        link_rel: "message".into(),
        event_type: "added".into(),
        ..Default::default()
    });
    let mut odd = exchange(3);
    odd.request_headers.push("x-odd", vec![0xff, b'\n']);
    odd.status = None;
    odd.error = Some("upstream refused".into());
    let all = [exchange(1), events, odd];
    for n in 0..=all.len() {
        let mut streamed = Vec::new();
        write_har(&mut streamed, &session(), &all[..n]).unwrap();
        let mut whole = serde_json::to_vec_pretty(&to_har(&session(), &all[..n])).unwrap();
        whole.push(b'\n');
        assert_eq!(
            String::from_utf8(streamed).unwrap(),
            String::from_utf8(whole).unwrap(),
            "{n} exchanges"
        );
    }
}
