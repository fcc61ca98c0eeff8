//! `POST …/batch`: several UCWA requests in one `multipart/batching` body (docs/UCWA.md, "Representations").
//! Each part is an `application/http; msgtype=request` message; it is answered like a
//! request of its own (same token, same checks) and its response becomes an
//! `application/http; msgtype=response` part, in order. The events feed is not allowed in
//! a batch, as on a real server.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};

use super::Sim;
use super::exchange::{Fail, Handled, Negotiated, Reply, Req};
use super::routes::{Dispatch, dispatch};
use crate::ucwa::{split_target, target_of};

/// The boundary parameter of a `multipart/batching` content type.
fn boundary(content_type: &str) -> Option<String> {
    let (mime, params) = content_type.split_once(';')?;
    if !mime.trim().eq_ignore_ascii_case("multipart/batching") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_string())
            .filter(|b| !b.is_empty())
    })
}

/// Split `text` into lines ending in CRLF or LF; returns (head lines, rest after the
/// first empty line).
fn head_and_body(text: &str) -> (Vec<&str>, &str) {
    let mut lines = Vec::new();
    let mut rest = text;
    loop {
        let (line, after) = match rest.find('\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        let line = line.strip_suffix('\r').unwrap_or(line);
        rest = after;
        if line.is_empty() {
            return (lines, rest);
        }
        lines.push(line);
        if rest.is_empty() {
            return (lines, rest);
        }
    }
}

/// The parts between the boundaries.
fn parts<'a>(body: &'a str, boundary: &str) -> Result<Vec<&'a str>, Fail> {
    let delim = format!("--{boundary}");
    let mut out = Vec::new();
    let mut pieces = body.split(delim.as_str());
    pieces.next(); // preamble
    for piece in pieces {
        if piece.starts_with("--") {
            return Ok(out);
        }
        let piece = piece
            .strip_prefix("\r\n")
            .or(piece.strip_prefix('\n'))
            .unwrap_or(piece);
        let piece = piece
            .strip_suffix("\r\n")
            .or(piece.strip_suffix('\n'))
            .unwrap_or(piece);
        out.push(piece);
    }
    Err(Fail::bad_request("The batch has no closing boundary."))
}

/// One part as a request of its own.
fn inner_request(outer: &Req, part: &str) -> Result<Req, Fail> {
    let (_part_headers, message) = head_and_body(part);
    let (head, body) = head_and_body(message);
    let mut head = head.into_iter();
    let request_line = head
        .next()
        .ok_or_else(|| Fail::bad_request("A batch part has no request line."))?;
    let mut words = request_line.split_whitespace();
    let (Some(method), Some(target)) = (words.next(), words.next()) else {
        return Err(Fail::bad_request(
            "A batch part has a malformed request line.",
        ));
    };
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|_| Fail::bad_request("A batch part has an invalid method."))?;
    let (path, query) = split_target(target_of(target));
    let (path, query) = (path.to_string(), query.map(str::to_string));
    let mut headers = HeaderMap::new();
    for line in head {
        let Some((name, value)) = line.split_once(':') else {
            return Err(Fail::bad_request("A batch part has a malformed header."));
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.trim().as_bytes()),
            HeaderValue::from_str(value.trim()),
        ) else {
            return Err(Fail::bad_request("A batch part has an invalid header."));
        };
        headers.append(name, value);
    }
    // Parts inherit the batch's credentials.
    if !headers.contains_key(header::AUTHORIZATION)
        && let Some(auth) = outer.headers.get(header::AUTHORIZATION)
    {
        headers.insert(header::AUTHORIZATION, auth.clone());
    }
    let neg = Negotiated::from_accept(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    Ok(Req {
        method,
        path,
        query,
        headers,
        body: Bytes::copy_from_slice(body.as_bytes()),
        origin: outer.origin.clone(),
        neg,
    })
}

fn write_part(out: &mut String, boundary: &str, reply: &Reply) {
    out.push_str(&format!(
        "--{boundary}\r\nContent-Type: application/http; msgtype=response\r\n\r\n"
    ));
    let reason = reply.status.canonical_reason().unwrap_or("");
    out.push_str(&format!("HTTP/1.1 {} {reason}\r\n", reply.status.as_u16()));
    if !reply
        .headers
        .iter()
        .any(|(n, _)| n == header::CACHE_CONTROL)
    {
        out.push_str("Cache-Control: no-cache\r\n");
    }
    for (name, value) in &reply.headers {
        out.push_str(&format!("{}: {value}\r\n", canonical(name)));
    }
    out.push_str("\r\n");
    out.push_str(&String::from_utf8_lossy(&reply.body));
    out.push_str("\r\n");
}

/// `content-type` → `Content-Type`, as IIS writes header names.
fn canonical(name: &HeaderName) -> String {
    name.as_str()
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// Answer a batch.
pub fn handle(sim: &Sim, req: &Req) -> Handled {
    let ct = req.header(&header::CONTENT_TYPE).unwrap_or("");
    let Some(boundary_in) = boundary(ct) else {
        return Err(Fail::unsupported_media(req.content_mime().as_deref()));
    };
    let body = std::str::from_utf8(&req.body)
        .map_err(|_| Fail::bad_request("The batch body is not UTF-8."))?;
    let parts = parts(body, &boundary_in)?;
    // Derived from the request body, so that it does not depend on other requests.
    let boundary_out = super::clock::Rng::new(super::state::fnv1a(&req.body)).guid();
    let mut out = String::new();
    for part in parts {
        let reply = match inner_request(req, part) {
            Ok(inner) => match dispatch(sim, &inner, true) {
                Ok(Dispatch::Done(reply)) => reply,
                Ok(Dispatch::Events(_)) => super::fail_reply(
                    &inner,
                    Fail::bad_request("The events feed cannot be part of a batch."),
                ),
                Err(fail) => super::fail_reply(&inner, fail),
            },
            Err(fail) => super::fail_reply(req, fail),
        };
        write_part(&mut out, &boundary_out, &reply);
    }
    out.push_str(&format!("--{boundary_out}--\r\n"));
    Ok(Reply::body(
        StatusCode::OK,
        &format!("multipart/batching; boundary=\"{boundary_out}\""),
        out,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_and_parts() {
        assert_eq!(
            boundary("multipart/batching;boundary=77f2").as_deref(),
            Some("77f2")
        );
        assert_eq!(
            boundary("multipart/batching; boundary=\"ab\"").as_deref(),
            Some("ab")
        );
        assert_eq!(boundary("multipart/mixed; boundary=ab"), None);
        let body = "--b\r\nContent-Type: application/http; msgtype=request\r\n\r\nGET /x HTTP/1.1\r\nAccept: application/json\r\n\r\n--b\nContent-Type: application/http\n\nGET /y HTTP/1.1\n\n--b--\r\n";
        let p = parts(body, "b").unwrap();
        assert_eq!(p.len(), 2);
        let (h, rest) = head_and_body(p[1]);
        assert_eq!(h, ["Content-Type: application/http"]);
        assert_eq!(head_and_body(rest).0, ["GET /y HTTP/1.1"]);
        assert!(parts("--b\r\nx", "b").is_err());
    }
}
