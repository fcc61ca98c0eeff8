//! Properties of the redactor: a secret put anywhere a client or server puts one (the
//! `Authorization` header, a cookie, the token form, a token response, a JWT or `cwt=` in a
//! URL or a body, and again later where nothing marks it) survives nowhere in the exchange;
//! a JSON body stays valid JSON, whatever its shape, and keeps every non-secret value.

use proptest::prelude::*;
use serde_json::Value;

use super::*;

type Headers = Vec<(String, Vec<u8>)>;

/// The parts of an exchange the redactor sees.
#[derive(Debug, Clone, Default)]
struct Parts {
    path: String,
    query: Option<String>,
    request_headers: Headers,
    request_body: Vec<u8>,
    response_headers: Headers,
    response_body: Vec<u8>,
    error: Option<String>,
}

impl Parts {
    fn redact(&mut self, r: &Redactor) {
        r.redact(ExchangeFields {
            path: &mut self.path,
            query: &mut self.query,
            request_headers: &mut self.request_headers,
            request_body: &mut self.request_body,
            response_headers: &mut self.response_headers,
            response_body: &mut self.response_body,
            error: &mut self.error,
        });
    }

    /// Every byte of the exchange, for searching.
    fn all_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(self.path.as_bytes());
        out.extend_from_slice(self.query.as_deref().unwrap_or("").as_bytes());
        for (n, v) in self.request_headers.iter().chain(&self.response_headers) {
            out.extend_from_slice(n.as_bytes());
            out.extend_from_slice(v);
        }
        out.extend_from_slice(&self.request_body);
        out.extend_from_slice(&self.response_body);
        out.extend_from_slice(self.error.as_deref().unwrap_or("").as_bytes());
        out
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Where a secret is put.
#[derive(Debug, Clone, Copy)]
enum Place {
    AuthorizationHeader,
    CookieHeader,
    SetCookieHeader,
    WebTicketHeader,
    PasswordForm,
    AccessTokenJson,
    RefreshTokenXml,
    CwtInQuery,
    JwtInBody,
}

const PLACES: &[Place] = &[
    Place::AuthorizationHeader,
    Place::CookieHeader,
    Place::SetCookieHeader,
    Place::WebTicketHeader,
    Place::PasswordForm,
    Place::AccessTokenJson,
    Place::RefreshTokenXml,
    Place::CwtInQuery,
    Place::JwtInBody,
];

/// Put `secret` at `place` of a fresh exchange.
fn exchange_with(place: Place, secret: &str) -> Parts {
    let mut p = Parts {
        path: "/ucwa/oauth/v1/applications/1".into(),
        ..Parts::default()
    };
    let header = |n: &str, v: String| (n.to_string(), v.into_bytes());
    match place {
        Place::AuthorizationHeader => p
            .request_headers
            .push(header("Authorization", format!("Bearer cwt={secret}"))),
        Place::CookieHeader => p
            .request_headers
            .push(header("cookie", format!("cwt_ucwa={secret}; lang=en"))),
        Place::SetCookieHeader => p.response_headers.push(header(
            "set-cookie",
            format!("cwt_ucwa={secret}; path=/ucwa; HttpOnly"),
        )),
        // The whole value is the ticket (docs/UCWA.md).
        Place::WebTicketHeader => p
            .request_headers
            .push(header("X-MS-WebTicket", secret.to_string())),
        Place::PasswordForm => {
            p.request_headers.push(header(
                "content-type",
                "application/x-www-form-urlencoded".into(),
            ));
            p.request_body =
                format!("grant_type=password&username=alice%40contoso.com&password={secret}")
                    .into_bytes();
        }
        Place::AccessTokenJson => {
            p.response_headers
                .push(header("content-type", "application/json".into()));
            p.response_body = format!(
                r#"{{"access_token":"cwt={secret}","expires_in":28799,"ms_rtc_identityscope":"local","token_type":"Bearer"}}"#
            )
            .into_bytes();
        }
        Place::RefreshTokenXml => {
            p.response_headers.push(header(
                "content-type",
                "application/vnd.microsoft.com.ucwa+xml".into(),
            ));
            p.response_body = format!(
                r#"<?xml version="1.0"?><resource rel="token"><property name="refresh_token">{secret}</property></resource>"#
            )
            .into_bytes();
        }
        Place::CwtInQuery => p.query = Some(format!("ack=3&token=cwt={secret}")),
        Place::JwtInBody => {
            p.response_headers
                .push(header("content-type", "text/plain".into()));
            p.response_body = format!("see {} ok", jwt(secret)).into_bytes();
        }
    }
    p
}

/// A JWT around `secret`: the whole token is the secret.
fn jwt(secret: &str) -> String {
    format!("eyJhbGciOiJSUzI1NiJ9.eyJ{secret}.c2lnbmF0dXJl")
}

/// What must not survive of `secret` put at `place`.
fn needle(place: Place, secret: &str) -> String {
    match place {
        Place::JwtInBody => jwt(secret),
        _ => secret.to_string(),
    }
}

/// A JSON document of any shape, with secret-named fields at any depth.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[ -~\u{e9}\u{1F600}\\\\\"]{0,16}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        "[a-z]{1,8}",
                        prop::sample::select(DEFAULT_JSON_FIELDS).prop_map(str::to_string),
                    ],
                    inner
                ),
                0..5
            )
            .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

/// The values under secret-named fields, at any depth (strings as they are, numbers as
/// their text).
fn secret_values(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if DEFAULT_JSON_FIELDS.contains(&k.as_str()) {
                    match v {
                        Value::String(s) if !s.trim().is_empty() => out.push(s.clone()),
                        Value::Number(n) => out.push(n.to_string()),
                        _ => {}
                    }
                }
                secret_values(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| secret_values(v, out)),
        _ => {}
    }
}

/// Found by `a_json_body_stays_valid_and_keeps_what_is_not_secret`: a secret field holding a
/// number came out as `{"access_token":REDACTED-1}`, and the number was then replaced bare
/// in later bodies too.
#[test]
fn a_numeric_secret_becomes_a_string_and_is_not_replaced_elsewhere() {
    let r = Redactor::new(&RedactConfig::default()).unwrap();
    let json = |body: &str| Parts {
        response_headers: vec![("content-type".into(), b"application/json".to_vec())],
        response_body: body.as_bytes().to_vec(),
        ..Parts::default()
    };
    let mut token = json(r#"{"access_token":-100,"expires_in":28799}"#);
    token.redact(&r);
    let out: Value = serde_json::from_slice(&token.response_body).unwrap();
    assert!(
        out["access_token"]
            .as_str()
            .unwrap()
            .starts_with("REDACTED-")
    );
    assert_eq!(out["expires_in"], 28799);
    let mut later = json(r#"{"count":-100}"#);
    later.redact(&r);
    assert_eq!(later.response_body, br#"{"count":-100}"#);
}

/// Found by `a_json_body_stays_valid_and_keeps_what_is_not_secret`: a secret holding a quote
/// (`😀"`) was remembered as it reads, and matched again across the end of a later string,
/// leaving `[{"access_token":"REDACTED-1"},"REDACTED-1]`.
#[test]
fn a_secret_with_a_quote_does_not_match_across_json_strings() {
    let r = Redactor::new(&RedactConfig::default()).unwrap();
    let doc = serde_json::json!([{"access_token": "\u{1F600}\""}, "\u{1F600}", "x\u{1F600}\"y"]);
    let body = serde_json::to_vec(&doc).unwrap();
    let mut p = Parts {
        response_headers: vec![("content-type".into(), b"application/json".to_vec())],
        response_body: body,
        ..Parts::default()
    };
    p.redact(&r);
    let out: Value = serde_json::from_slice(&p.response_body).unwrap();
    assert_eq!(
        out,
        serde_json::json!([{"access_token": "REDACTED-1"}, "\u{1F600}", "xREDACTED-1y"])
    );
}

/// Found by `no_secret_survives_where_it_was_put_nor_where_it_comes_back`: a token was
/// hidden where it had its `cwt=`, and kept where it came back without it.
#[test]
fn a_token_is_hidden_where_it_comes_back_without_its_prefix() {
    let r = Redactor::new(&RedactConfig::default()).unwrap();
    let mut token = exchange_with(Place::AccessTokenJson, "AAEBtokenMaterial0123");
    token.redact(&r);
    let mut later = Parts {
        error: Some("upstream refused AAEBtokenMaterial0123".into()),
        ..Parts::default()
    };
    later.redact(&r);
    assert_eq!(later.error.as_deref(), Some("upstream refused REDACTED-1"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn no_secret_survives_where_it_was_put_nor_where_it_comes_back(
        secret in "[A-Za-z0-9_-]{12,48}",
        place in prop::sample::select(PLACES),
        later in prop::sample::select(PLACES),
    ) {
        let r = Redactor::new(&RedactConfig::default()).unwrap();
        let secret_there = needle(place, &secret);
        let mut first = exchange_with(place, &secret);
        first.redact(&r);
        prop_assert!(!contains(&first.all_bytes(), secret_there.as_bytes()), "{:?}", first);
        // The same secret later, where it is marked, and where nothing marks it.
        let mut again = exchange_with(later, &secret);
        again.error = Some(format!("upstream said {secret_there} was wrong"));
        again.redact(&r);
        let all = again.all_bytes();
        prop_assert!(!contains(&all, secret_there.as_bytes()), "{:?}", again);
        prop_assert!(!contains(&all, needle(later, &secret).as_bytes()), "{:?}", again);
    }

    #[test]
    fn a_json_body_stays_valid_and_keeps_what_is_not_secret(
        doc in json(),
        pretty in any::<bool>(),
    ) {
        let r = Redactor::new(&RedactConfig::default()).unwrap();
        let body = if pretty {
            serde_json::to_vec_pretty(&doc).unwrap()
        } else {
            serde_json::to_vec(&doc).unwrap()
        };
        let mut p = Parts {
            path: "/ucwa/x".into(),
            response_headers: vec![("content-type".into(), b"application/json".to_vec())],
            response_body: body.clone(),
            ..Parts::default()
        };
        p.redact(&r);
        let out: Value = serde_json::from_slice(&p.response_body).map_err(|e| {
            TestCaseError::fail(format!("{e}: {}", String::from_utf8_lossy(&p.response_body)))
        })?;
        let mut secrets = Vec::new();
        secret_values(&doc, &mut secrets);
        if secrets.is_empty() {
            // Nothing to hide: the body's bytes are the same.
            prop_assert_eq!(p.response_body, body);
        } else {
            // No secret value is left under a secret-named field.
            let mut left = Vec::new();
            secret_values(&out, &mut left);
            for s in left {
                prop_assert!(
                    s.trim().starts_with(PLACEHOLDER_PREFIX),
                    "{:?} survives in {}",
                    s,
                    out
                );
            }
        }
    }

    #[test]
    fn redacting_twice_changes_nothing_more(
        secret in "[A-Za-z0-9]{12,32}",
        place in prop::sample::select(PLACES),
    ) {
        let r = Redactor::new(&RedactConfig::default()).unwrap();
        let mut p = exchange_with(place, &secret);
        p.redact(&r);
        let once = p.clone();
        p.redact(&r);
        prop_assert_eq!(p.all_bytes(), once.all_bytes());
    }
}
