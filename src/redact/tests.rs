use super::*;

/// The parts of an exchange the redactor sees, as the recording layer lends them.
#[derive(Debug, Clone, Default, PartialEq)]
struct Ex {
    path: String,
    query: Option<String>,
    request_headers: Headers,
    request_body: Vec<u8>,
    response_headers: Headers,
    response_body: Vec<u8>,
    error: Option<String>,
    credential: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Headers(Vec<(String, Vec<u8>)>);

impl Headers {
    fn push(&mut self, name: &str, value: impl Into<Vec<u8>>) {
        self.0.push((name.to_string(), value.into()));
    }

    fn get(&self, name: &str) -> Option<&str> {
        header(&self.0, name)
    }
}

impl Redactor {
    fn redact_exchange(&self, e: &mut Ex) {
        e.credential = self.redact(ExchangeFields {
            path: &mut e.path,
            query: &mut e.query,
            request_headers: &mut e.request_headers.0,
            request_body: &mut e.request_body,
            response_headers: &mut e.response_headers.0,
            response_body: &mut e.response_body,
            error: &mut e.error,
        });
    }
}

fn exchange() -> Ex {
    Ex {
        path: "/ucwa/oauth/v1/applications/105".into(),
        ..Default::default()
    }
}

fn redactor() -> Redactor {
    Redactor::new(&RedactConfig::default()).unwrap()
}

fn text(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap()
}

const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib2IifQ.c2lnbmF0dXJlX2J5dGVz";

#[test]
fn token_response_and_bearer_share_a_placeholder() {
    let r = redactor();
    let mut token = exchange();
    token.path = "/WebTicket/oauthtoken".into();
    token.request_headers.push(
        "content-type",
        "application/x-www-form-urlencoded;charset=UTF-8",
    );
    token.request_body =
        b"grant_type=password&username=johndoe%40contoso.com&password=A3ddj3w%26x".to_vec();
    token
        .response_headers
        .push("content-type", "application/json");
    token.response_body =
        br#"{"access_token":"cwt=AAEB+HAEF\/AAA==","expires_in":28289,"token_type":"Bearer"}"#
            .to_vec();
    r.redact_exchange(&mut token);
    assert_eq!(
        text(&token.request_body),
        "grant_type=password&username=REDACTED-1&password=REDACTED-2"
    );
    assert_eq!(
        text(&token.response_body),
        r#"{"access_token":"cwt=REDACTED-3","expires_in":28289,"token_type":"Bearer"}"#
    );
    assert_eq!(token.credential, None);

    let mut get = exchange();
    get.request_headers
        .push("Authorization", "Bearer cwt=AAEB+HAEF/AAA==");
    r.redact_exchange(&mut get);
    assert_eq!(
        get.request_headers.get("authorization"),
        Some("Bearer cwt=REDACTED-3")
    );
    assert_eq!(get.credential.as_deref(), Some("REDACTED-3"));

    // The same token, percent-encoded in a URL.
    let mut url = exchange();
    url.query = Some("x=1&t=cwt%3dAAEB%2BHAEF%2FAAA%3D%3D".into());
    r.redact_exchange(&mut url);
    assert_eq!(url.query.as_deref(), Some("x=1&t=cwt%3dREDACTED-3"));
    assert_eq!(r.secrets_seen(), 3);
    assert_eq!(r.credentials_seen(), 1);
}

#[test]
fn psat_jwt_and_other_schemes() {
    let r = redactor();
    let mut e = exchange();
    e.request_headers
        .push("authorization", "Bearer psat=ABC.def-1");
    r.redact_exchange(&mut e);
    assert_eq!(
        e.request_headers.get("authorization"),
        Some("Bearer psat=REDACTED-1")
    );
    assert_eq!(e.credential.as_deref(), Some("REDACTED-1"));

    let mut e = exchange();
    e.request_headers
        .push("authorization", format!("Bearer {JWT}"));
    e.response_body = format!(r#"{{"id_token":"{JWT}","note":"see {JWT}"}}"#).into_bytes();
    r.redact_exchange(&mut e);
    assert_eq!(
        e.request_headers.get("authorization"),
        Some("Bearer jwt:REDACTED-2")
    );
    assert_eq!(
        text(&e.response_body),
        r#"{"id_token":"jwt:REDACTED-2","note":"see jwt:REDACTED-2"}"#
    );

    let mut e = exchange();
    e.request_headers
        .push("Authorization", "Basic dXNlcjpwYXNz");
    r.redact_exchange(&mut e);
    assert_eq!(
        e.request_headers.get("authorization"),
        Some("Basic REDACTED-3")
    );
    assert_eq!(e.credential.as_deref(), Some("REDACTED-3"));
}

#[test]
fn cookies_keep_names_and_attributes() {
    let r = redactor();
    let mut e = exchange();
    e.response_headers.push(
        "Set-Cookie",
        "cwt_ucwa=AAEB...G9z; path=/ucwa/oauth/v1/applications/105/photos; secure; HttpOnly",
    );
    e.request_headers
        .push("Cookie", "cwt_ucwa=AAEB...G9z; other=val123");
    r.redact_exchange(&mut e);
    assert_eq!(
        e.response_headers.get("set-cookie"),
        Some("cwt_ucwa=REDACTED-1; path=/ucwa/oauth/v1/applications/105/photos; secure; HttpOnly")
    );
    assert_eq!(
        e.request_headers.get("cookie"),
        Some("cwt_ucwa=REDACTED-1; other=REDACTED-2")
    );
}

#[test]
fn webticket_www_authenticate_and_urls() {
    let r = redactor();
    let mut e = exchange();
    e.request_headers
        .push("X-Ms-WebTicket", "opaque-ticket-value");
    e.response_headers.push(
        "WWW-Authenticate",
        r#"MsRtcOAuth href="https://lyncweb.contoso.com/WebTicket/oauthtoken",grant_type="password", cwt=SECRETTOKEN"#,
    );
    e.path = "/ucwa/x;cwt=PATHTOKEN".into();
    r.redact_exchange(&mut e);
    assert_eq!(e.request_headers.get("x-ms-webticket"), Some("REDACTED-1"));
    let www = e.response_headers.get("www-authenticate").unwrap();
    assert!(www.ends_with("cwt=REDACTED-3"), "{www}");
    assert_eq!(e.path, "/ucwa/x;cwt=REDACTED-2");
}

#[test]
fn anonymous_renew_form_with_doc_amp_separators() {
    let r = redactor();
    let mut e = exchange();
    e.request_body = b"grant_type=urn:microsoft.rtc:anonmeeting&amp;password=5LB7MRBC&amp;ms_rtc_renew=cwt%3dAA...L940".to_vec();
    r.redact_exchange(&mut e);
    let body = text(&e.request_body);
    assert!(
        !body.contains("5LB7MRBC") && !body.contains("L940"),
        "{body}"
    );
    assert!(body.contains("password=REDACTED-1"), "{body}");
}

#[test]
fn json_fields_at_depth_keep_other_bytes_and_bom() {
    let r = Redactor::new(&RedactConfig {
        fields: vec!["pin".into()],
        ..Default::default()
    })
    .unwrap();
    let mut e = exchange();
    e.response_body = "\u{feff}{ \"a\" : {\"Refresh_Token\" : \"rt-secret-1\"},\n \"pin\":\"1234\", \"href\":\"a\\/b\\u0026c\", \"code\":\"NotFound\" }"
        .as_bytes()
        .to_vec();
    r.redact_exchange(&mut e);
    assert_eq!(
        text(&e.response_body),
        "\u{feff}{ \"a\" : {\"Refresh_Token\" : \"REDACTED-1\"},\n \"pin\":\"REDACTED-2\", \"href\":\"a\\/b\\u0026c\", \"code\":\"NotFound\" }"
    );
    // A value written with escapes still goes (re-serialised).
    let mut e = exchange();
    e.response_body = br#"{"password":"p\u0061ss\/word"}"#.to_vec();
    r.redact_exchange(&mut e);
    assert_eq!(text(&e.response_body), r#"{"password":"REDACTED-3"}"#);
}

#[test]
fn pretty_token_response_with_escaped_slash_keeps_its_bytes() {
    let r = redactor();
    let mut e = exchange();
    e.response_body =
        b"{\n  \"access_token\" : \"cwt=AB\\/CD==\",\n  \"refresh_token\" : \"R\\/T\"\n}".to_vec();
    r.redact_exchange(&mut e);
    assert_eq!(
        text(&e.response_body),
        "{\n  \"access_token\" : \"cwt=REDACTED-1\",\n  \"refresh_token\" : \"R\\/T\"\n}"
            .replace("R\\/T", "REDACTED-2")
    );
}

#[test]
fn xml_property_and_custom_header() {
    let r = Redactor::new(&RedactConfig {
        headers: vec!["X-Api-Key".into()],
        ..Default::default()
    })
    .unwrap();
    let mut e = exchange();
    e.request_headers.push("x-api-key", "k-123456");
    e.request_body = br#"<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><property name="password">s&amp;cret</property><property name="x">y</property></input>"#.to_vec();
    r.redact_exchange(&mut e);
    assert_eq!(e.request_headers.get("x-api-key"), Some("REDACTED-1"));
    assert_eq!(
        text(&e.request_body),
        r#"<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><property name="password">REDACTED-2</property><property name="x">y</property></input>"#
    );
}

#[test]
fn known_secrets_are_replaced_in_later_exchanges_and_regexes_apply() {
    let r = Redactor::new(&RedactConfig {
        regexes: vec![r"EMP-\d{4}".into(), r"ssn=(\d+)".into()],
        ..Default::default()
    })
    .unwrap();
    let mut first = exchange();
    first.request_body = b"grant_type=password&username=bob&password=Hunter22".to_vec();
    r.redact_exchange(&mut first);
    let mut later = exchange();
    later.path = "/people/bobby.tables@contoso.com".into();
    later.response_body = b"echo Hunter22 EMP-1234 ssn=9999 EMP-1234".to_vec();
    r.redact_exchange(&mut later);
    assert_eq!(
        text(&later.response_body),
        "echo REDACTED-2 REDACTED-3 ssn=REDACTED-4 REDACTED-3"
    );
    // A username is hidden in the token POST only, not searched for everywhere.
    let mut token = exchange();
    token.request_body = b"username=bobby.tables%40contoso.com&password=x".to_vec();
    r.redact_exchange(&mut token);
    assert_eq!(
        text(&token.request_body),
        "username=REDACTED-5&password=REDACTED-6"
    );
    let mut person = exchange();
    person.path = "/people/bobby.tables@contoso.com".into();
    r.redact_exchange(&mut person);
    assert_eq!(person.path, "/people/bobby.tables@contoso.com");
    assert!(matches!(
        Redactor::new(&RedactConfig {
            regexes: vec!["(".into()],
            ..Default::default()
        }),
        Err(crate::Error::Invalid {
            what: "--redact-regex",
            ..
        })
    ));
}

#[test]
fn idempotent_on_placeholders_and_thread_safe() {
    let r = std::sync::Arc::new(redactor());
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let r = r.clone();
            std::thread::spawn(move || {
                let mut e = exchange();
                e.request_headers.push("authorization", "Bearer cwt=SAME");
                r.redact_exchange(&mut e);
                let again = e.clone();
                r.redact_exchange(&mut e);
                assert_eq!(e, again);
                e.credential
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap().as_deref(), Some("REDACTED-1"));
    }
}

#[test]
fn garbage_never_panics() {
    let r = redactor();
    let mut e = exchange();
    e.request_headers.push("authorization", vec![0xff, 0xfe]);
    e.request_headers.push("cookie", "");
    e.request_headers.push("authorization", "Bearer");
    e.request_body = vec![0xff, b'=', b'&', b'=', 0];
    e.response_body = b"{\"access_token\": ".to_vec();
    r.redact_exchange(&mut e);
}

/// Mutated bodies and headers (a tiny deterministic fuzzer): never a panic.
#[test]
fn mutated_inputs_never_panic() {
    let r = redactor();
    let seeds: [&[u8]; 4] = [
        br#"{"access_token":"cwt=AB\/C","x":[{"password":"p"}]}"#,
        b"grant_type=password&username=a%40b&password=%ZZ&amp;code=1",
        br#"<input><property name="password">x&amp;y</property></input>"#,
        b"Bearer cwt=eyJa.eyJb.c; psat=%",
    ];
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for seed in seeds {
        for _ in 0..300 {
            let mut body = seed.to_vec();
            for _ in 0..(next() % 4 + 1) {
                let at = (next() as usize) % body.len().max(1);
                match next() % 3 {
                    0 if !body.is_empty() => {
                        body.remove(at);
                    }
                    1 => body.insert(at.min(body.len()), next() as u8),
                    _ if !body.is_empty() => body[at] = next() as u8,
                    _ => {}
                }
            }
            let mut e = exchange();
            e.request_headers.push("authorization", body.clone());
            e.request_headers.push("cookie", body.clone());
            e.request_body = body.clone();
            e.response_body = body;
            r.redact_exchange(&mut e);
        }
    }
}
