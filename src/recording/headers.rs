//! Header rules shared by the recording proxy and the replayer: what a reverse proxy drops
//! (hop-by-hop fields), what it adds (`Via`), and how upstream origins in a response head
//! become the public one. Replay runs the same code on recorded heads, so a replaying
//! client gets the head it got while recording.

use std::borrow::Cow;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use super::origin::{OriginRewriter, strip_cookie_domain};

/// Fields that belong to one connection and are never forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "transfer-encoding",
    "upgrade",
    "proxy-authenticate",
    "proxy-authorization",
];

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
        !named.contains(name) && !HOP_BY_HOP.iter().any(|h| h == name)
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
    for name in ORIGIN_HEADERS {
        map_values(headers, name, |v| match rules.to_public.rewrite(v) {
            Cow::Borrowed(_) => None,
            Cow::Owned(b) => Some(b),
        });
    }
    map_values(headers, &header::SET_COOKIE, |v| {
        let text = std::str::from_utf8(v).ok()?;
        match strip_cookie_domain(text, &rules.upstream_hosts) {
            Cow::Borrowed(_) => None,
            Cow::Owned(s) => Some(s.into_bytes()),
        }
    });
}

/// Replace the values of `name` for which `f` returns a new value, keeping their order.
fn map_values(
    headers: &mut HeaderMap,
    name: &header::HeaderName,
    f: impl Fn(&[u8]) -> Option<Vec<u8>>,
) {
    // In place: a rewritten field keeps its position among the others, so the client sees
    // the upstream's order (and replay, which stores that order, can reproduce it).
    for (n, v) in headers.iter_mut() {
        if n == name
            && let Some(new) = f(v.as_bytes()).and_then(|b| HeaderValue::from_bytes(&b).ok())
        {
            *v = new;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::Origin;
    use crate::ucwa::media::is_text_like;

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
