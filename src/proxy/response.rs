//! The upstream's response on its way back: hop-by-hop fields dropped, upstream origins in
//! headers and text bodies rewritten to the public origin, and the body either streamed
//! through untouched (binary) or read whole, decoded and rewritten (text-like bodies, the
//! only ones that can name an origin).

use std::borrow::Cow;
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response};
use http_body::Body as _;
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::capture::ResponseTap;
use super::decode::{decode, is_encoded};
use super::forward::{retain_in_order, strip_hop_by_hop};
use super::record::Pending;
use super::rewrite::{OriginRewriter, strip_cookie_domain};
use super::rewrite_stream::RewritingBody;
use crate::body::{Body, boxed, full};
use crate::store::HeaderList;
pub use crate::ucwa::media::is_text_like;
use crate::ucwa::{ErrorBody, Representation, error_response};
use crate::upstream::UpstreamError;

/// Largest declared text body read whole for rewriting; larger or unsized ones stream
/// through a [`RewritingBody`].
const MAX_BUFFERED: u64 = 1024 * 1024;
/// Largest decoded body the proxy rewrites; beyond it the body passes untouched.
const MAX_REWRITE: usize = 256 * 1024 * 1024;

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

/// Turn the upstream's response into the client's, handing the record to the body.
pub async fn relay(
    resp: Response<Incoming>,
    mut pending: Pending,
    method: &Method,
    rules: &ResponseRules,
    deadline: Duration,
    repr: Representation,
) -> Response<Body> {
    let (mut parts, body) = resp.into_parts();
    if let Some(ex) = pending.exchange() {
        ex.status = Some(parts.status.as_u16());
        ex.response_headers = HeaderList::from_http(&parts.headers);
    }
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let encoding = parts
        .headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    client_headers(&mut parts.headers, rules);
    // The request and the response head (Set-Cookie) are known: number their secrets now.
    pending.number_secrets();

    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let encoded = is_encoded(encoding.as_deref());
    if *method == Method::HEAD || body.is_end_stream() || !is_text_like(content_type.as_deref()) {
        let tap = ResponseTap::new(boxed(body), pending, true);
        return Response::from_parts(parts, boxed(tap));
    }
    // A large or unsized (chunked, trickling) text body streams: it is rewritten piece by
    // piece, so its new length is unknown and Content-Length goes. The record keeps the
    // upstream's bytes. A compressed one cannot be rewritten without buffering: it passes.
    if declared.is_none_or(|n| n > MAX_BUFFERED) {
        let tap = ResponseTap::new(boxed(body), pending, true);
        if encoded {
            tracing::warn!(
                ?declared,
                "large compressed text body streamed without origin rewriting"
            );
            return Response::from_parts(parts, boxed(tap));
        }
        retain_in_order(&mut parts.headers, |n| n != header::CONTENT_LENGTH);
        let rewriting = RewritingBody::new(boxed(tap), rules.to_public.clone());
        return Response::from_parts(parts, boxed(rewriting));
    }

    // A UCWA resource of known, modest size: read it whole, rewrite it, and send it with its
    // exact new Content-Length (what replay reproduces byte for byte).
    let bytes = match tokio::time::timeout(deadline, body.collect()).await {
        Err(_) => {
            let failure = UpstreamError::timeout(deadline);
            pending.finish(Some(format!("{failure} (mid-body)")));
            return failure_response(&failure, repr);
        }
        Ok(Err(err)) => {
            let failure = UpstreamError::classify(&err);
            tracing::warn!(error = %failure, "upstream response body broke off");
            pending.finish(Some(format!("{failure} (mid-body)")));
            return failure_response(&failure, repr);
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    let plain: Cow<'_, [u8]> = match encoding.as_deref().filter(|_| encoded) {
        None => Cow::Borrowed(&bytes[..]),
        Some(enc) => match decode(enc, &bytes, MAX_REWRITE) {
            Ok(d) if !d.truncated => Cow::Owned(d.bytes),
            Ok(_) | Err(_) => {
                tracing::warn!(
                    encoding = enc,
                    "compressed body passed through without rewriting"
                );
                pending.set_response_body(&bytes, Some(enc.to_string()));
                let tap = ResponseTap::new(full(bytes), pending, false);
                return Response::from_parts(parts, boxed(tap));
            }
        },
    };
    pending.set_response_body(&plain, encoding.clone().filter(|_| encoded));
    // And those of the body (a token response), before the client can use them.
    pending.number_secrets();
    let out = match rules.to_public.rewrite(&plain) {
        Cow::Borrowed(_) => bytes.clone(),
        Cow::Owned(rewritten) => {
            retain_in_order(&mut parts.headers, |n| n != header::CONTENT_ENCODING);
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(rewritten.len()));
            bytes::Bytes::from(rewritten)
        }
    };
    let tap = ResponseTap::new(full(out), pending, false);
    Response::from_parts(parts, boxed(tap))
}

/// The UCWA-shaped 502/504 for an upstream failure.
pub fn failure_response(failure: &UpstreamError, repr: Representation) -> Response<Body> {
    let err = ErrorBody::new(
        failure.status(),
        Some(failure.subcode()),
        failure.message.clone(),
    );
    error_response(&err, repr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::rewrite::Origin;

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
