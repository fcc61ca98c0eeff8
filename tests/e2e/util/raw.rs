//! HTTP/1.1 written and read by hand, for the tests whose subject is the wire itself:
//! malformed and hop-by-hop requests, `CONNECT` and absolute-form targets, hang-ups
//! mid-request, responses cut short, and a replayed response exactly as it left the server
//! (header order, no client stack in between). Everything else talks through
//! `ucwa_replay::demo::UcwaClient`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A response as read off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawResponse {
    /// From the status line: `HTTP/1.1`.
    pub version: String,
    pub status: u16,
    /// Header fields in wire order, names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// Without the header the HTTP server adds on its own (`connection`), for transcripts.
    pub fn without_server_headers(&self) -> RawResponse {
        let mut r = self.clone();
        r.headers.retain(|(n, _)| n != "connection");
        r
    }
}

/// A connection to `addr` for a request written piece by piece (a slow sender, a hang-up
/// mid-request) and an answer read as it comes; a read waits at most 30 s.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
}

/// Read from `stream` into `buf` until `needle` is in it (the read timeout fails the test).
pub fn read_until(stream: &mut TcpStream, buf: &mut Vec<u8>, needle: &[u8]) {
    let mut chunk = [0u8; 4096];
    while !buf.windows(needle.len()).any(|w| w == needle) {
        let n = stream
            .read(&mut chunk)
            .unwrap_or_else(|e| panic!("waiting for {needle:?}: {e}"));
        assert!(n > 0, "EOF before {:?}", String::from_utf8_lossy(needle));
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Write `request` as is over a fresh connection (it should say `Connection: close`) and
/// read the whole answer: until EOF, or until a read fails (a reset, the 30 s timeout).
pub fn request(addr: SocketAddr, request: impl AsRef<[u8]>) -> RawResponse {
    let mut stream = connect(addr);
    stream.write_all(request.as_ref()).expect("write request");
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    parse_response(&raw)
}

/// `METHOD TARGET` to the server at `base` (`http://ADDR`) with exactly `headers` (after
/// `host` and `connection: close`) and `body` (with its `content-length` when not empty, and
/// always on a POST): nothing a client stack would add or normalise.
pub fn http(
    base: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> RawResponse {
    let addr: SocketAddr = base
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("an http://ADDR base");
    let mut req = format!("{method} {target} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    request(addr, bytes)
}

/// Parse a response read to EOF (Content-Length or close-delimited; not chunked).
pub fn parse_response(raw: &[u8]) -> RawResponse {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.split(' ');
    let version = parts.next().unwrap_or_default().to_string();
    let status = parts
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    RawResponse {
        version,
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}
