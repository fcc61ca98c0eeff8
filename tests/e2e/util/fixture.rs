//! Shared by the replay tests: a synthetic but realistic UCWA IM session written with the
//! public `StoreWriter`, and its requests sent again exactly as recorded (over [`raw`]: the
//! replay tests compare the answers with the recording byte for byte, header order included).

use std::path::Path;

use ucwa_replay::recording::{Exchange, HeaderList, KeyOptions, KeyRequest};
use ucwa_replay::store::{NewSession, StoreWriter};

use super::raw::{self, RawResponse};

pub const FE1: &str = "https://fe1.contoso.com";
pub const LYNCWEB: &str = "https://lyncweb.contoso.com";
pub const APP: &str = "/ucwa/oauth/v1/applications/105";
pub const JSON: &str = "application/json";
pub const XML: &str = "application/vnd.microsoft.com.ucwa+xml";
pub const AUTH1: &str = "Bearer cwt=REDACTED-1";

/// One recorded exchange, written the way the recording proxy writes it.
#[derive(Clone)]
pub struct Rec {
    pub method: &'static str,
    pub target: String,
    pub req_headers: Vec<(&'static str, String)>,
    pub req_body: Vec<u8>,
    pub status: Option<u16>,
    pub resp_headers: Vec<(&'static str, String)>,
    pub resp_body: Vec<u8>,
    pub content_encoding: Option<String>,
    pub duration_us: i64,
    pub error: Option<String>,
    pub credential: Option<String>,
}

impl Rec {
    pub fn new(method: &'static str, target: impl Into<String>) -> Self {
        Rec {
            method,
            target: target.into(),
            req_headers: vec![("accept", JSON.to_string())],
            req_body: vec![],
            status: Some(200),
            resp_headers: vec![],
            resp_body: vec![],
            content_encoding: None,
            duration_us: 1_000,
            error: None,
            credential: None,
        }
    }

    pub fn accept(mut self, accept: &str) -> Self {
        self.req_headers.retain(|(n, _)| *n != "accept");
        self.req_headers.push(("accept", accept.to_string()));
        self
    }

    pub fn auth(mut self, n: u32) -> Self {
        self.req_headers
            .push(("authorization", format!("Bearer cwt=REDACTED-{n}")));
        self.credential = Some(format!("REDACTED-{n}"));
        self
    }

    pub fn body(mut self, content_type: &str, body: &str) -> Self {
        self.req_headers
            .push(("content-type", content_type.to_string()));
        self.req_body = body.as_bytes().to_vec();
        self
    }

    /// A response with realistic headers (Date first, as IIS sends it).
    pub fn answer(mut self, status: u16, content_type: &str, body: &str) -> Self {
        self.status = Some(status);
        self.resp_body = body.as_bytes().to_vec();
        self.resp_headers = vec![
            ("cache-control", "no-cache".to_string()),
            ("content-type", content_type.to_string()),
            ("server", "Microsoft-IIS/8.5".to_string()),
            (
                "x-ms-correlation-id",
                format!("{}", 2_147_483_000 + body.len()),
            ),
            ("x-ms-server-fqdn", "FE1.contoso.com".to_string()),
            ("date", "Thu, 26 Nov 2026 10:00:00 GMT".to_string()),
            ("content-length", body.len().to_string()),
        ];
        self
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        self.resp_headers.push((name, value.to_string()));
        self
    }

    pub fn took_ms(mut self, ms: i64) -> Self {
        self.duration_us = ms * 1_000;
        self
    }

    pub fn failed(mut self, error: &str) -> Self {
        self.status = None;
        self.resp_headers.clear();
        self.resp_body.clear();
        self.error = Some(error.to_string());
        self
    }

    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, q)| q)
    }

    fn req_header(&self, name: &str) -> Option<&str> {
        self.req_headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn to_exchange(&self, seq: u64, upstream: &str) -> Exchange {
        let key = KeyRequest {
            method: self.method,
            path: self.path(),
            query: self.query(),
            accept: self.req_header("accept"),
            content_type: self.req_header("content-type"),
            body: &self.req_body,
        }
        .key(&KeyOptions::default());
        let mut request_headers = HeaderList::default();
        for (n, v) in &self.req_headers {
            request_headers.push(*n, v.as_str());
        }
        let mut response_headers = HeaderList::default();
        for (n, v) in &self.resp_headers {
            response_headers.push(*n, v.as_str());
        }
        Exchange {
            seq,
            started_us: 1_700_000_000_000_000 + seq as i64 * 10_000,
            duration_us: self.duration_us,
            method: self.method.to_string(),
            path: self.path().to_string(),
            query: self.query().map(str::to_string),
            http_version: "HTTP/1.1".into(),
            request_headers,
            request_body: self.req_body.clone(),
            status: self.status,
            response_headers,
            response_body: self.resp_body.clone(),
            content_encoding: self.content_encoding.clone(),
            error: self.error.clone(),
            representation: key.representation,
            match_key: key,
            credential: self.credential.clone(),
            upstream: Some(upstream.to_string()),
            ..Default::default()
        }
    }
}

/// Write `recs` as session `name` of the recording at `path`.
pub fn write_session(path: &Path, name: &str, upstream: &str, also: &[&str], recs: &[Rec]) {
    let session = NewSession {
        name: name.to_string(),
        upstream: upstream.to_string(),
        also_upstreams: also.iter().map(|s| s.to_string()).collect(),
        replace: false,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let writer = StoreWriter::create(path, &session).unwrap();
        let sink = writer.sink();
        for (i, rec) in recs.iter().enumerate() {
            sink.submit(rec.to_exchange(i as u64 + 1, upstream));
        }
        drop(sink);
        writer.finish().await.unwrap();
    });
}

fn events_json(ack: u32, sender: &str) -> String {
    format!(
        r#"{{"_links":{{"self":{{"href":"{APP}/events?ack={ack}"}},"next":{{"href":"{APP}/events?ack={}"}}}},"sender":[{sender}]}}"#,
        ack + 1
    )
}

fn pm_event(kind: &str) -> String {
    format!(
        r#"{{"rel":"conversation","href":"{APP}/communication/conversations/137","events":[{{"link":{{"rel":"participantMessaging","href":"{APP}/communication/conversations/137/participants/bob@contoso.com/participantMessaging"}},"in":{{"rel":"participant","href":"{APP}/communication/conversations/137/participants/bob@contoso.com"}},"type":"{kind}"}}]}}"#
    )
}

/// A sign-in and IM session, in the order a client makes the requests. `upstream` is the
/// recorded origin used inside bodies and headers (the fixture's own upstream).
pub fn im_session(upstream: &str, token_service: &str) -> Vec<Rec> {
    let up = upstream;
    let tok = token_service;
    let json_ct = "application/json; charset=utf-8";
    let xml_ct = "application/vnd.microsoft.com.ucwa+xml; charset=utf-8";
    let token_path = format!(
        "/_upstream/{}/WebTicket/oauthtoken",
        tok.split("://").nth(1).unwrap()
    );
    vec![
        // 1 autodiscover (note the escaped `\/` spelling, kept byte for byte)
        Rec::new("GET", "/autodiscover/autodiscoverservice.svc/root").answer(
            200,
            json_ct,
            &format!(
                r#"{{"_links":{{"self":{{"href":"{up}/Autodiscover/AutodiscoverService.svc/root?originalDomain=contoso.com"}},"user":{{"href":"{}\/Autodiscover\/AutodiscoverService.svc\/root\/oauth\/user"}},"xframe":{{"href":"{up}/Autodiscover/XFrame/XFrame.html"}}}}}}"#,
                up.replace('/', "\\/")
            ),
        ),
        // 2 the 401 challenge naming the token service
        Rec::new("GET", "/Autodiscover/AutodiscoverService.svc/root/oauth/user")
            .answer(401, "text/html", "")
            .header(
                "www-authenticate",
                &format!(
                    r#"MsRtcOAuth href="{tok}/WebTicket/oauthtoken",grant_type="urn:microsoft.rtc:windows,urn:microsoft.rtc:anonmeeting,password""#
                ),
            )
            .header("www-authenticate", r#"Bearer trusted_issuers="", client_id="00000004-0000-0ff1-ce00-000000000000""#),
        // 3 the token (form body with a redacted password)
        Rec::new("POST", token_path)
            .body(
                "application/x-www-form-urlencoded",
                "grant_type=password&username=alice%40contoso.com&password=REDACTED-2",
            )
            .answer(
                200,
                json_ct,
                r#"{"access_token":"cwt=REDACTED-1","expires_in":28799,"ms_rtc_identityscope":"local","token_type":"Bearer"}"#,
            )
            .header("set-cookie", "cwt_ucwa=REDACTED-1; Domain=.contoso.com; path=/; HttpOnly"),
        // 4 the user resource
        Rec::new("GET", "/Autodiscover/AutodiscoverService.svc/root/oauth/user")
            .auth(1)
            .answer(
                200,
                json_ct,
                &format!(
                    r#"{{"_links":{{"self":{{"href":"{up}/Autodiscover/AutodiscoverService.svc/root/oauth/user"}},"applications":{{"href":"{up}/ucwa/oauth/v1/applications"}}}}}}"#
                ),
            ),
        // 5 create the application (EndpointId is client noise)
        Rec::new("POST", "/ucwa/oauth/v1/applications")
            .auth(1)
            .body(
                "application/json",
                r#"{"UserAgent":"bot/1.0","EndpointId":"8f2b-recorded","Culture":"en-US"}"#,
            )
            .answer(
                201,
                json_ct,
                &format!(
                    r#"{{"id":"105","userAgent":"bot/1.0","_links":{{"self":{{"href":"{APP}"}},"events":{{"href":"{APP}/events?ack=1"}}}},"_embedded":{{"me":{{"name":"Alice","_links":{{"self":{{"href":"{APP}/me"}}}}}}}}}}"#
                ),
            )
            .header("location", &format!("{up}{APP}")),
        // 6..8 the events feed: participantMessaging added, updated, deleted
        Rec::new("GET", format!("{APP}/events?ack=1&timeout=180"))
            .auth(1)
            .answer(200, json_ct, &events_json(1, &pm_event("added"))),
        Rec::new("GET", format!("{APP}/events?ack=2&timeout=180"))
            .auth(1)
            .took_ms(300)
            .answer(200, json_ct, &events_json(2, &pm_event("updated"))),
        Rec::new("GET", format!("{APP}/events?ack=3&timeout=180"))
            .auth(1)
            .answer(200, json_ct, &events_json(3, &pm_event("deleted"))),
        // 9 XML representation of a participantMessaging resource
        Rec::new(
            "GET",
            format!("{APP}/communication/conversations/137/participants/bob@contoso.com/participantMessaging"),
        )
        .accept(XML)
        .auth(1)
        .answer(
            200,
            xml_ct,
            &format!(
                r#"<?xml version="1.0" encoding="utf-8"?><resource rel="participantMessaging" href="{up}{APP}/communication/conversations/137/participants/bob@contoso.com/participantMessaging" xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><link rel="participant" href="{APP}/communication/conversations/137/participants/bob@contoso.com" /></resource>"#
            ),
        ),
        // 10, 11 the same resource polled twice, changing in between
        Rec::new("GET", format!("{APP}/me"))
            .auth(1)
            .answer(200, json_ct, r#"{"name":"Alice","title":"first"}"#),
        Rec::new("GET", format!("{APP}/me"))
            .auth(1)
            .answer(200, json_ct, r#"{"name":"Alice","title":"second"}"#),
        // 12 send a message (text/plain body)
        Rec::new("POST", format!("{APP}/communication/conversations/137/messaging/messages"))
            .auth(1)
            .body("text/plain; charset=utf-8", "Hello Bob")
            .answer(201, json_ct, "")
            .header(
                "location",
                &format!("{up}{APP}/communication/conversations/137/messaging/messages/1"),
            ),
        // 13 a response recorded gzip-encoded (stored decoded)
        {
            let mut r = Rec::new("GET", format!("{APP}/people/contacts"))
                .auth(1)
                .answer(200, json_ct, &format!(r#"{{"_links":{{"self":{{"href":"{up}{APP}/people/contacts"}}}},"contacts":[]}}"#));
            r.content_encoding = Some("gzip".into());
            r.resp_headers
                .insert(2, ("content-encoding", "gzip".to_string()));
            // the recorded Content-Length was that of the gzip bytes
            r.resp_headers
                .retain(|(n, _)| *n != "content-length");
            r.resp_headers.push(("content-length", "61".to_string()));
            r
        },
        // 14 the upstream failed: the client got the proxy's 502
        Rec::new("GET", format!("{APP}/people/search?query=bob"))
            .auth(1)
            .failed("upstream: connection reset by peer"),
        // 15 the client stopped while this P-GET was held: no response
        Rec::new("GET", format!("{APP}/events?ack=4&timeout=180"))
            .auth(1)
            .failed("client aborted the request"),
    ]
}

/// Send a recorded request again, as the client would.
pub fn send(base: &str, rec: &Rec) -> RawResponse {
    let headers: Vec<(&str, &str)> = rec
        .req_headers
        .iter()
        .map(|(n, v)| (*n, v.as_str()))
        .collect();
    raw::http(base, rec.method, &rec.target, &headers, &rec.req_body)
}
