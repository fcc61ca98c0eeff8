//! The upstream's response on its way back: hop-by-hop fields dropped, upstream origins in
//! headers and text bodies rewritten to the public origin, and the body either streamed
//! through untouched (binary) or read whole, decoded and rewritten (text-like bodies, the
//! only ones that can name an origin).

use std::borrow::Cow;
use std::time::Duration;

use http::header::{self, HeaderValue};
use http::{Method, Response};
use http_body::Body as _;
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::capture::ResponseTap;
use super::record::Pending;
use super::rewrite_stream::RewritingBody;
use crate::body::{Body, boxed, full};
use crate::recording::HeaderList;
use crate::recording::decode::{decode, is_encoded};
use crate::recording::headers::{ResponseRules, client_headers, retain_in_order};
use crate::ucwa::media::is_text_like;
use crate::ucwa::{ErrorBody, Representation, error_response};
use crate::upstream::UpstreamError;

/// Largest declared text body read whole for rewriting; larger or unsized ones stream
/// through a [`RewritingBody`].
const MAX_BUFFERED: u64 = 1024 * 1024;
/// Largest decoded body the proxy rewrites; beyond it the body passes untouched.
const MAX_REWRITE: usize = 256 * 1024 * 1024;

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
