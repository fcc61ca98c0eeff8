//! Header rules shared by the recording proxy and the replayer: what a reverse proxy drops
//! (hop-by-hop fields), what it adds (`Via`), and how upstream origins in a response head
//! become the public one. Replay runs the same code on recorded heads, so a replaying
//! client gets the head it got while recording.

use std::borrow::Cow;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use super::origin::{OriginRewriter, strip_cookie_domain};

/// Fields that belong to one connection and are never forwarded (RFC 9110 §7.6.1).
/// A header name is held in lower case, so an exact match is enough; comparing a
/// `HeaderName` with a `&str` ignores case, which costs more, on every field of every
/// exchange.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "te"
            | "transfer-encoding"
            | "upgrade"
            | "proxy-authenticate"
            | "proxy-authorization"
    )
}

/// Whether [`strip_hop_by_hop`] removes this field whatever else the head holds: any
/// hop-by-hop field but a `Connection` that names a field not hop-by-hop itself (that one
/// is needed to find the field it names). A replay leaves these out while it parses a
/// stored head, so that a recorded `Connection: keep-alive` does not make it build the
/// head twice.
pub fn always_stripped(name: &HeaderName, value: &HeaderValue) -> bool {
    is_hop_by_hop(name)
        && (name != header::CONNECTION
            || value.to_str().map_or(true, |v| {
                v.split(',').all(|t| {
                    HeaderName::from_bytes(t.trim().as_bytes()).map_or(true, |n| is_hop_by_hop(&n))
                })
            }))
}

/// Remove hop-by-hop fields, including every field named in a `Connection` header.
/// `TE: trailers` is the one hop-by-hop value that is kept on requests.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_te_trailers: bool) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    let te_trailers = keep_te_trailers
        && headers
            .get_all(header::TE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("trailers"));
    retain_in_order(headers, |name| {
        !is_hop_by_hop(name) && !named.contains(name)
    });
    if te_trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
}

/// Remove the fields whose name fails `keep`, keeping the others in their order.
/// `HeaderMap::remove` swaps the last field into the hole, which would reorder the head the
/// client sees (and that replay must reproduce byte for byte).
pub fn retain_in_order(headers: &mut HeaderMap, keep: impl Fn(&HeaderName) -> bool) {
    if headers.keys().all(&keep) {
        return;
    }
    let old = std::mem::take(headers);
    let mut current: Option<HeaderName> = None;
    for (name, value) in old {
        if let Some(name) = name {
            current = Some(name);
        }
        if let Some(name) = current.as_ref().filter(|n| keep(n)) {
            headers.append(name.clone(), value);
        }
    }
}

/// Headers whose values may name an upstream origin.
const ORIGIN_HEADERS: &[header::HeaderName] = &[
    header::LOCATION,
    header::CONTENT_LOCATION,
    header::WWW_AUTHENTICATE,
    header::ACCESS_CONTROL_ALLOW_ORIGIN,
    header::LINK,
];

/// What the response side needs to know.
#[derive(Debug, Clone)]
pub struct ResponseRules {
    pub to_public: OriginRewriter,
    /// Host names of every upstream (their cookie domains are dropped).
    pub upstream_hosts: Vec<String>,
}

/// Rewrite the response head for the client.
pub fn client_headers(headers: &mut HeaderMap, rules: &ResponseRules) {
    strip_hop_by_hop(headers, false);
    // RFC 9110 §7.6.3: an intermediary adds itself to Via in both directions.
    let via = match headers.get(header::VIA).and_then(|v| v.to_str().ok()) {
        Some(existing) if !existing.is_empty() => format!("{existing}, 1.1 ucwa-replay"),
        _ => "1.1 ucwa-replay".to_string(),
    };
    if let Ok(v) = HeaderValue::from_str(&via) {
        headers.insert(header::VIA, v);
    }
    // In place, in one pass: a rewritten field keeps its position among the others, so the
    // client sees the upstream's order (and replay, which stores that order, can reproduce
    // it).
    for (name, value) in headers.iter_mut() {
        let new = if ORIGIN_HEADERS.contains(name) {
            match rules.to_public.rewrite(value.as_bytes()) {
                Cow::Borrowed(_) => None,
                Cow::Owned(b) => Some(b),
            }
        } else if name == header::SET_COOKIE {
            std::str::from_utf8(value.as_bytes()).ok().and_then(|text| {
                match strip_cookie_domain(text, &rules.upstream_hosts) {
                    Cow::Borrowed(_) => None,
                    Cow::Owned(s) => Some(s.into_bytes()),
                }
            })
        } else {
            None
        };
        if let Some(new) = new.and_then(|b| HeaderValue::from_bytes(&b).ok()) {
            *value = new;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::Origin;
    use crate::ucwa::media::is_text_like;

    #[test]
    fn hop_by_hop_fields_go_and_the_rest_keep_their_order() {
        let mut h = HeaderMap::new();
        for (name, value) in [
            ("content-type", "application/json"),
            ("Connection", "keep-alive, X-Private"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("te", "trailers, deflate"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
            ("proxy-authenticate", "Basic"),
            ("proxy-authorization", "Basic eA=="),
            ("x-private", "1"),
            ("x-kept", "2"),
            ("content-length", "3"),
        ] {
            h.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_static(value),
            );
        }
        let mut response = h.clone();
        strip_hop_by_hop(&mut response, false);
        let names: Vec<_> = response.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["content-type", "x-kept", "content-length"]);
        strip_hop_by_hop(&mut h, true);
        let names: Vec<_> = h.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["content-type", "x-kept", "content-length", "te"]);
        assert_eq!(h["te"], "trailers");
    }

    /// Leaving out the `always_stripped` fields first changes nothing a stripped head holds,
    /// and leaves nothing for the strip to rebuild unless a `Connection` names a field.
    #[test]
    fn fields_always_stripped_can_be_left_out_before_the_strip() {
        let head = |fields: &[(&str, &str)]| {
            let mut h = HeaderMap::new();
            for (name, value) in fields {
                h.append(
                    HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    HeaderValue::from_str(value).unwrap(),
                );
            }
            h
        };
        let order = |h: &HeaderMap| {
            h.iter()
                .map(|(n, v)| format!("{n}: {}", v.to_str().unwrap()))
                .collect::<Vec<_>>()
        };
        for (fields, left_for_the_strip) in [
            (
                &[("server", "x"), ("connection", "keep-alive"), ("etag", "1")][..],
                &[][..],
            ),
            (
                &[
                    ("Connection", "Keep-Alive, TE, ,"),
                    ("keep-alive", "timeout=5"),
                ],
                &[],
            ),
            (
                &[
                    ("transfer-encoding", "chunked"),
                    ("upgrade", "h2c"),
                    ("a", "1"),
                ],
                &[],
            ),
            // A named field, and `close` (a field could be called that): the strip's job.
            (
                &[("x-private", "1"), ("connection", "x-private"), ("b", "2")],
                &["connection"],
            ),
            (&[("connection", "close"), ("close", "?")], &["connection"]),
        ] {
            let mut all = head(fields);
            strip_hop_by_hop(&mut all, false);
            let mut parsed = HeaderMap::new();
            for (n, v) in head(fields).iter() {
                if !always_stripped(n, v) {
                    parsed.append(n.clone(), v.clone());
                }
            }
            let hop: Vec<_> = parsed.keys().filter(|n| is_hop_by_hop(n)).collect();
            assert_eq!(hop, left_for_the_strip, "{fields:?}");
            strip_hop_by_hop(&mut parsed, false);
            assert_eq!(order(&parsed), order(&all), "{fields:?}");
        }
    }

    #[test]
    fn header_origins_and_cookie_domains_are_rewritten() {
        let up = Origin::parse("https://fe1.contoso.com").unwrap();
        let rules = ResponseRules {
            to_public: OriginRewriter::to_public(&up, &[], "http://127.0.0.1:9"),
            upstream_hosts: vec!["fe1.contoso.com".into()],
        };
        let mut h = HeaderMap::new();
        h.insert(
            "location",
            HeaderValue::from_static("https://fe1.contoso.com/ucwa/x"),
        );
        h.append(
            "www-authenticate",
            HeaderValue::from_static("Bearer trusted_issuers=\"\""),
        );
        h.append(
            "www-authenticate",
            HeaderValue::from_static(
                "MsRtcOAuth href=\"https://fe1.contoso.com/WebTicket/oauthtoken\"",
            ),
        );
        h.insert(
            "set-cookie",
            HeaderValue::from_static("a=1; Domain=.contoso.com; path=/"),
        );
        h.insert("connection", HeaderValue::from_static("close"));
        client_headers(&mut h, &rules);
        assert_eq!(h["location"], "http://127.0.0.1:9/ucwa/x");
        let auth: Vec<_> = h.get_all("www-authenticate").iter().collect();
        assert_eq!(auth[0], "Bearer trusted_issuers=\"\"");
        assert_eq!(
            auth[1],
            "MsRtcOAuth href=\"http://127.0.0.1:9/WebTicket/oauthtoken\""
        );
        assert_eq!(h["set-cookie"], "a=1; path=/");
        assert!(h.get("connection").is_none());
        assert_eq!(h["via"], "1.1 ucwa-replay");
        assert!(is_text_like(Some(
            "application/vnd.microsoft.com.ucwa+json; charset=utf-8"
        )));
        assert!(!is_text_like(Some("image/png")));
    }
}
