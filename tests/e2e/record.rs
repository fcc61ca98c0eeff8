//! `ucwa-replay record` end to end: the real binary between a client and small scripted
//! upstreams (echo, origin-bearing bodies, held P-GETs, and broken servers), then the
//! recording read back.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener as StdListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http::{Method, Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use ucwa_replay::body::{Body, full};
use ucwa_replay::demo::{Reply, UcwaClient};
use ucwa_replay::recording::{Exchange, ResourceKind};
use ucwa_replay::serve::{BackgroundServer, ConnInfo, serve};
use ucwa_replay::store::Recording;
use ucwa_replay::ucwa::Representation;

use crate::util::raw::{self, RawResponse};
use crate::util::{ReplyExt, Server, block_on, get, temp_db};

// ---------------------------------------------------------------------------------------
// A scripted upstream.

#[derive(Default)]
struct Seen {
    requests: AtomicUsize,
    /// Request body bytes `/count` has received so far.
    bytes: AtomicUsize,
    /// P-GETs whose handler was dropped before answering (the proxy cancelled them).
    pgets_cancelled: AtomicUsize,
}

struct Upstream {
    server: BackgroundServer,
    seen: Arc<Seen>,
}

impl Upstream {
    fn start(name: &'static str) -> Upstream {
        Self::start_with_tls(name, None)
    }

    fn start_with_tls(name: &'static str, tls: Option<tokio_rustls::TlsAcceptor>) -> Upstream {
        let seen = Arc::new(Seen::default());
        let s = seen.clone();
        let server = BackgroundServer::start(
            name,
            "127.0.0.1:0".parse().unwrap(),
            move |listener, shutdown| async move {
                let scheme = if tls.is_some() { "https" } else { "http" };
                let handler = move |req, conn| {
                    let s = s.clone();
                    async move { upstream_answer(name, scheme, &s, req, conn).await }
                };
                serve(listener, tls, handler, shutdown, Duration::from_secs(1)).await
            },
        )
        .expect("start upstream");
        Upstream { server, seen }
    }

    fn url(&self) -> String {
        self.server.url()
    }

    fn requests(&self) -> usize {
        self.seen.requests.load(Ordering::SeqCst)
    }

    fn bytes(&self) -> usize {
        self.seen.bytes.load(Ordering::SeqCst)
    }
}

/// Counts a P-GET as cancelled unless it answered.
struct HeldGuard<'a>(&'a Seen, bool);

impl Drop for HeldGuard<'_> {
    fn drop(&mut self) {
        if !self.1 {
            self.0.pgets_cancelled.fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn query_param(query: Option<&str>, name: &str) -> Option<u64> {
    query?
        .split('&')
        .find_map(|p| p.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.parse().ok())
}

fn json(status: u16, body: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8")
        .body(full(body))
        .unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// A body naming the upstream's own origin plainly and `\/`-escaped.
fn links_body(me: &str) -> String {
    let escaped = me.replace('/', "\\/");
    format!(
        r#"{{"_links":{{"self":{{"href":"{me}/ucwa/x"}},"esc":{{"href":"{escaped}\/ucwa\/y"}},"other":{{"href":"http://elsewhere.example/z"}}}}}}"#
    )
}

async fn upstream_answer(
    name: &'static str,
    scheme: &str,
    seen: &Seen,
    req: Request<Incoming>,
    conn: ConnInfo,
) -> Response<Body> {
    seen.requests.fetch_add(1, Ordering::SeqCst);
    let me = format!("{scheme}://{}", conn.local);
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().map(str::to_string);
    match path.as_str() {
        "/echo" => {
            let body = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let headers: Vec<(String, String)> = parts
                .headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_string()))
                .collect();
            let doc = serde_json::json!({
                "server": name,
                "method": parts.method.as_str(),
                "path": path,
                "query": query,
                "headers": headers,
                "body": String::from_utf8_lossy(&body),
            });
            json(200, doc.to_string())
        }
        "/count" => {
            // Counts the body as it streams in: what the proxy has passed on so far.
            let mut body = body;
            let mut total = 0;
            while let Some(Ok(frame)) = body.frame().await {
                if let Some(data) = frame.data_ref() {
                    total += data.len();
                    seen.bytes.fetch_add(data.len(), Ordering::SeqCst);
                }
            }
            json(200, format!(r#"{{"bytes":{total}}}"#))
        }
        "/links" => Response::builder()
            .header("content-type", "application/json")
            .header("location", format!("{me}/ucwa/created/1"))
            .header("content-location", format!("{me}/ucwa/x"))
            .header("www-authenticate", "Bearer trusted_issuers=\"\"")
            .header(
                "www-authenticate",
                format!("MsRtcOAuth href=\"{me}/WebTicket/oauthtoken\",grant_type=\"password\""),
            )
            .header("set-cookie", "cwt_ucwa=abc; Domain=127.0.0.1; path=/ucwa")
            .body(full(links_body(&me)))
            .unwrap(),
        "/gzip" => Response::builder()
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(full(gzip(links_body(&me).as_bytes())))
            .unwrap(),
        "/binary" => Response::builder()
            .header("content-type", "application/octet-stream")
            .body(full(format!("raw {me}/ucwa bytes")))
            .unwrap(),
        "/big" => Response::builder()
            .header("content-type", "application/octet-stream")
            .body(full(vec![b'x'; 100_000]))
            .unwrap(),
        p if p.ends_with("/events") => {
            let mut guard = HeldGuard(seen, false);
            let hold = query_param(query.as_deref(), "hold_ms").unwrap_or(30_000);
            tokio::time::sleep(Duration::from_millis(hold)).await;
            guard.1 = true;
            let ack = query_param(query.as_deref(), "ack").unwrap_or(1);
            json(
                200,
                format!(
                    r#"{{"_links":{{"self":{{"href":"{me}{p}?ack={ack}"}},"next":{{"href":"{me}{p}?ack={}"}}}},"sender":[]}}"#,
                    ack + 1
                ),
            )
        }
        _ => json(
            404,
            r#"{"code":"NotFound","message":"no such resource"}"#.into(),
        ),
    }
}

// ---------------------------------------------------------------------------------------
// Helpers.

fn record(upstream: &str, db: &std::path::Path, extra: &[&str]) -> Server {
    Server::record(upstream, db, "s1", extra)
}

/// The `main` upstream, a temporary recording and `record` in front of it (with `extra`).
fn record_main(extra: &[&str]) -> (Upstream, tempfile::TempDir, std::path::PathBuf, Server) {
    let up = Upstream::start("main");
    let (dir, db) = temp_db();
    let proxy = record(&up.url(), &db, extra);
    (up, dir, db, proxy)
}

fn stop(server: &mut Server) {
    let status = server.terminate(Duration::from_secs(20));
    assert!(
        status.success(),
        "exit {status:?}; stderr:\n{}",
        server.stderr()
    );
}

fn exchanges(db: &std::path::Path) -> Vec<Exchange> {
    exchanges_of(db, "s1")
}

fn exchanges_of(db: &std::path::Path, name: &str) -> Vec<Exchange> {
    let rec = Recording::open(db).expect("open recording");
    let session = rec.session(Some(name)).expect("session");
    rec.exchanges(&session).expect("exchanges")
}

/// GET `target` written by hand: an absolute-form target, or a response cut short.
fn raw_get(addr: SocketAddr, target: &str) -> RawResponse {
    raw::http(&format!("http://{addr}"), "GET", target, &[], b"")
}

/// GET `target` from the proxy at `addr` with the shared client, asking for `representation`.
fn get_as(addr: SocketAddr, target: &str, representation: Representation) -> Reply {
    block_on(
        UcwaClient::new(&format!("http://{addr}"), representation)
            .request(Method::GET, target)
            .send(),
    )
    .unwrap_or_else(|e| panic!("GET {target}: {e}"))
}

/// Poll `done` every 20 ms for at most 10 s; the caller asserts what it waited for.
fn wait_until(done: impl Fn() -> bool) {
    let end = Instant::now() + Duration::from_secs(10);
    while !done() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Connect to the proxy at `addr`, write `raw` and wait (as `wait_until`) for the upstream
/// to see a request. The caller hangs up by dropping the stream.
fn send_until_upstream_has_it(up: &Upstream, addr: SocketAddr, raw: &str) -> TcpStream {
    let mut stream = raw::connect(addr);
    stream.write_all(raw.as_bytes()).unwrap();
    wait_until(|| up.requests() > 0);
    stream
}

fn closed_port() -> u16 {
    let l = StdListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

// ---------------------------------------------------------------------------------------
// Forwarding and rewriting.

#[test]
fn hop_by_hop_headers_go_and_forwarding_headers_come() {
    let (up, _dir, db, mut proxy) = record_main(&[]);
    let addr = proxy.addr();
    let resp = raw::request(
        addr,
        format!(
            "POST /echo?a=1 HTTP/1.1\r\nHost: {addr}\r\nConnection: close, X-Hop\r\nX-Hop: secret\r\n\
             Keep-Alive: timeout=5\r\nProxy-Authorization: Basic eA==\r\nX-Rep: one\r\nX-Rep: two\r\n\
             Referer: {}/ucwa/XFrame.html\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n{{\"a\":\"b\"}} ",
            proxy.url
        ),
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    let doc: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    let headers: Vec<(String, String)> = serde_json::from_value(doc["headers"].clone()).unwrap();
    let find = |n: &str| -> Vec<&str> {
        headers
            .iter()
            .filter(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    for gone in ["connection", "x-hop", "keep-alive", "proxy-authorization"] {
        assert!(find(gone).is_empty(), "{gone} was forwarded: {headers:?}");
    }
    assert_eq!(find("x-rep"), ["one", "two"]);
    assert_eq!(find("host"), [up.server.addr().to_string().as_str()]);
    assert_eq!(find("x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(find("x-forwarded-proto"), ["http"]);
    assert_eq!(find("x-forwarded-host"), [addr.to_string().as_str()]);
    assert_eq!(find("via"), ["1.1 ucwa-replay"]);
    // (The echoed Referer comes back rewritten to the public origin like any body: the
    // forwarded form is checked in the recording below.)
    assert_eq!(doc["body"], "{\"a\":\"b\"} ");
    assert_eq!(doc["query"], "a=1");
    stop(&mut proxy);
    let all = exchanges(&db);
    assert_eq!(all.len(), 1);
    let ex = &all[0];
    assert_eq!((ex.method.as_str(), ex.path.as_str()), ("POST", "/echo"));
    assert_eq!(ex.query.as_deref(), Some("a=1"));
    assert_eq!(ex.status, Some(200));
    assert_eq!(ex.request_body, b"{\"a\":\"b\"} ");
    assert_eq!(ex.upstream.as_deref(), Some(up.url().as_str()));
    assert!(ex.error.is_none(), "{:?}", ex.error);
    assert!(!ex.match_key.method.is_empty());
    assert_eq!(
        ex.request_headers.get("referer"),
        Some(format!("{}/ucwa/XFrame.html", up.url()).as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origins_are_rewritten_and_the_store_keeps_the_upstream_form() {
    let up = Upstream::start("main");
    let also = Upstream::start("also");
    let also_host = also.server.addr().to_string();
    let (_dir, db) = temp_db();
    let mut proxy = record(
        &up.url(),
        &db,
        &["--also-upstream", &also.url(), "--max-body", "4096"],
    );
    let base = proxy.url.clone();
    let mut client = UcwaClient::new(&base, Representation::Json);
    let up_host = up.server.addr().to_string();
    let leaks = |text: &str| text.contains(&up_host) || text.contains(&also_host);

    let get = async |client: &mut UcwaClient, href: &str| {
        client.request(Method::GET, href).send().await.unwrap()
    };
    let r = get(&mut client, "/links").await;
    assert_eq!(r.status, 200);
    let location = r.header("location").unwrap();
    assert_eq!(location, format!("{base}/ucwa/created/1"));
    assert_eq!(
        r.header("content-location"),
        Some(format!("{base}/ucwa/x").as_str())
    );
    let auth = r.header_all("www-authenticate");
    assert_eq!(auth.len(), 2);
    assert!(
        auth[1].contains(&format!("href=\"{base}/WebTicket/oauthtoken\"")),
        "{auth:?}"
    );
    assert_eq!(r.header("set-cookie"), Some("cwt_ucwa=abc; path=/ucwa"));
    let text = r.text();
    assert!(!leaks(&text), "{text}");
    assert!(text.contains(&format!("\"{base}/ucwa/x\"")), "{text}");
    assert!(
        text.contains(&format!("\"{}\\/ucwa\\/y\"", base.replace('/', "\\/"))),
        "{text}"
    );
    assert!(text.contains("http://elsewhere.example/z"));

    // A compressed body that needs rewriting is decoded and sent plain.
    let r = get(&mut client, "/gzip").await;
    assert!(r.header("content-encoding").is_none());
    let len: usize = r.header("content-length").unwrap().parse().unwrap();
    let text = r.text();
    assert_eq!(len, text.len());
    assert!(text.starts_with("{\"_links\""), "{text}");
    assert!(!leaks(&text), "{text}");

    // Binary bodies stream through untouched.
    let r = get(&mut client, "/binary").await;
    assert_eq!(r.text(), format!("raw {}/ucwa bytes", up.url()));

    // Large bodies reach the client whole; only the stored copy is cut.
    let r = get(&mut client, "/big").await;
    assert_eq!(r.body.len(), 100_000);

    // The also-upstream is reached under /_upstream/HOST.
    let r = get(&mut client, &format!("/_upstream/{also_host}/echo?q=1")).await;
    let doc = r.expect_json();
    assert_eq!(doc["server"], "also");
    assert_eq!(doc["path"], "/echo");
    assert_eq!(also.requests(), 1);

    stop(&mut proxy);
    let all = exchanges(&db);
    let paths: Vec<&str> = all.iter().map(|e| e.path.as_str()).collect();
    let also_path = format!("/_upstream/{also_host}/echo");
    assert_eq!(
        paths,
        ["/links", "/gzip", "/binary", "/big", also_path.as_str()]
    );
    // The store keeps the upstream's form, decoded.
    let gz = &all[1];
    assert_eq!(gz.content_encoding.as_deref(), Some("gzip"));
    assert_eq!(gz.response_body, links_body(&up.url()).as_bytes());
    assert_eq!(
        all[0].response_headers.get("location"),
        Some(format!("{}/ucwa/created/1", up.url()).as_str())
    );
    let big = &all[3];
    assert_eq!(big.response_body.len(), 4096);
    assert!(big.response_truncated);
    assert_eq!(all[4].upstream.as_deref(), Some(also.url().as_str()));
    assert!(all.iter().all(|e| e.error.is_none()));
}

#[test]
fn connect_and_absolute_uris_for_other_hosts_are_refused() {
    let (up, _dir, _db, mut proxy) = record_main(&[]);
    let addr = proxy.addr();
    let r = raw::request(
        addr,
        "CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 405, "{}", r.text());
    let r = raw_get(addr, "http://evil.example/echo");
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("NotAProxy"), "{}", r.text());
    let r = raw_get(addr, "/_upstream/evil.example/echo");
    assert_eq!(r.status, 404);
    assert_eq!(up.requests(), 0);
    // The proxy's own origin in absolute form is fine.
    let r = raw_get(addr, &format!("http://{addr}/echo"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(up.requests(), 1);
    stop(&mut proxy);
}

/// Every request-target form (RFC 9112 §3.2) with the client's `Authorization`: only the
/// configured upstream's host and port are ever contacted. A second server on the
/// upstream's host (another port) stands for everything else that must not be reached.
#[test]
fn every_request_target_form_reaches_only_the_configured_upstream() {
    let (up, _dir, db, mut proxy) = record_main(&[]);
    let trap = Upstream::start("trap");
    let addr = proxy.addr();
    let (up_port, trap_port) = (up.server.addr().port(), trap.server.addr().port());
    let auth = [("authorization", "Bearer cwt=AAEBclientSecretToken")];
    let send = |method: &str, target: &str| raw::http(&proxy.url, method, target, &auth, b"");

    // Origin-form, and absolute-form naming the proxy or the upstream: forwarded there.
    for target in [
        "/echo".to_string(),
        format!("http://{addr}/echo"),
        format!("http://127.0.0.1:{up_port}/echo"),
    ] {
        let r = send("GET", &target);
        assert_eq!(r.status, 200, "{target}: {}", r.text());
        assert_eq!(r.json()["server"], "main", "{target}");
    }
    // Absolute-form naming another port of the upstream's host, or its default port.
    for target in [
        format!("http://127.0.0.1:{trap_port}/echo"),
        "http://127.0.0.1/echo".to_string(),
        "https://127.0.0.1/echo".to_string(),
    ] {
        let r = send("GET", &target);
        assert_eq!(r.status, 403, "{target}: {}", r.text());
        assert!(r.text().contains("NotAProxy"), "{}", r.text());
    }
    // Authority-form, whatever it names, for any method but CONNECT; CONNECT itself.
    for (method, target) in [
        ("GET", format!("127.0.0.1:{trap_port}")),
        ("OPTIONS", format!("127.0.0.1:{up_port}")),
        ("GET", addr.to_string()),
    ] {
        let r = send(method, &target);
        assert_eq!(r.status, 400, "{method} {target}: {}", r.text());
    }
    assert_eq!(send("CONNECT", &format!("127.0.0.1:{up_port}")).status, 405);
    // Asterisk-form: the proxy answers `OPTIONS *` itself (it once went to port 80 of the
    // upstream's host with the client's token); nothing else may use it.
    let options = send("OPTIONS", "*");
    assert_eq!(options.status, 200, "{}", options.text());
    assert_eq!(options.header("content-length"), Some("0"));
    assert_eq!(send("GET", "*").status, 400);

    assert_eq!(
        up.requests(),
        3,
        "only the forwarded requests reached the upstream"
    );
    assert_eq!(trap.requests(), 0, "nothing else was contacted");
    stop(&mut proxy);
    let all = exchanges(&db);
    assert_eq!(all.len(), 3, "refused and local answers are not recorded");
    assert!(
        all.iter()
            .all(|e| e.path == "/echo" && e.status == Some(200))
    );
}

// ---------------------------------------------------------------------------------------
// Upstream failures.

fn assert_recorded_error(db: &std::path::Path, needle: &str) {
    let all = exchanges(db);
    assert_eq!(all.len(), 1, "{all:?}");
    let err = all[0].error.as_deref().unwrap_or("");
    assert!(
        err.contains(needle),
        "recorded error {err:?} lacks {needle:?}"
    );
}

#[test]
fn upstream_refused_is_a_ucwa_502_and_recorded() {
    let (_dir, db) = temp_db();
    let upstream = format!("http://127.0.0.1:{}", closed_port());
    let mut proxy = record(&upstream, &db, &[]);
    let r = get_as(proxy.addr(), "/ucwa/x", Representation::Json);
    assert_eq!(r.status, 502);
    let doc = r.expect_json();
    assert_eq!(doc["code"], "BadGateway");
    assert_eq!(doc["subcode"], "UpstreamRefused");
    assert!(
        doc["message"].as_str().unwrap().contains("refused"),
        "{doc}"
    );
    stop(&mut proxy);
    assert_recorded_error(&db, "refused");
}

#[test]
fn upstream_reset_mid_body_is_a_502_and_recorded() {
    // Promises 1000 bytes, sends a few, hangs up.
    let listener = StdListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let n = stream.read(&mut buf).unwrap_or(0);
            let kind = if String::from_utf8_lossy(&buf[..n]).contains("/binary") {
                "application/octet-stream"
            } else {
                "application/json"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: 1000\r\n\r\n{{\"partial\":"
            );
        }
    });
    let (_dir, db) = temp_db();
    let mut proxy = record(&format!("http://127.0.0.1:{port}"), &db, &[]);
    let r = get_as(proxy.addr(), "/ucwa/x", Representation::Xml);
    assert_eq!(r.status, 502);
    let text = r.text();
    assert!(text.contains("<reason"), "{text}");
    assert!(text.contains("<subcode>UpstreamReset</subcode>"), "{text}");
    stop(&mut proxy);
    assert_recorded_error(&db, "reset");

    // A streamed (binary) body has already started: the client sees it cut short, the
    // recording says why.
    let (_dir2, db2) = temp_db();
    let mut proxy = record(&format!("http://127.0.0.1:{port}"), &db2, &[]);
    let r = raw_get(proxy.addr(), "/binary");
    assert_eq!(r.status, 200);
    assert!(r.body.len() < 1000);
    assert_eq!(
        raw_get(proxy.addr(), "/binary").status,
        200,
        "the proxy lives on"
    );
    stop(&mut proxy);
    let all = exchanges(&db2);
    assert_eq!(all.len(), 2);
    for ex in &all {
        let err = ex.error.as_deref().unwrap_or("");
        assert!(err.contains("mid-body"), "{err:?}");
        assert_eq!(ex.response_body, b"{\"partial\":");
    }
}

#[test]
fn upstream_stalled_is_a_504_and_recorded() {
    let listener = StdListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let (_dir, db) = temp_db();
    let mut proxy = record(
        &format!("http://127.0.0.1:{port}"),
        &db,
        &["--upstream-timeout", "1"],
    );
    let started = Instant::now();
    let r = get(&proxy.url, "/ucwa/x");
    assert_eq!(r.status, 504);
    assert!(started.elapsed() < Duration::from_secs(10));
    let doc = r.expect_json();
    assert_eq!(doc["code"], "GatewayTimeout");
    assert!(
        doc["message"].as_str().unwrap().contains("timeout"),
        "{doc}"
    );
    stop(&mut proxy);
    assert_recorded_error(&db, "timeout");
}

/// A CA and a leaf for 127.0.0.1/localhost, as PEM files in `dir`: (ca.pem, cert.pem, key.pem).
fn test_pki(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "ucwa-replay test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf_params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key).unwrap();
    let paths = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, leaf.pem()).unwrap();
    std::fs::write(&paths.2, leaf_key.serialize_pem()).unwrap();
    paths
}

#[test]
fn bad_certificate_is_a_502_and_upstream_ca_fixes_it() {
    let (dir, db) = temp_db();
    let (ca, cert, key) = test_pki(dir.path());
    let acceptor = ucwa_replay::proxy::tls_acceptor(&cert, &key).unwrap();
    let up = Upstream::start_with_tls("tls", Some(acceptor));
    let upstream = format!("https://127.0.0.1:{}", up.server.addr().port());

    let mut proxy = record(&upstream, &db, &[]);
    let r = get(&proxy.url, "/echo");
    assert_eq!(r.status, 502, "{}", r.text());
    let doc = r.expect_json();
    assert_eq!(doc["subcode"], "UpstreamTlsFailure", "{doc}");
    let message = doc["message"].as_str().unwrap();
    assert!(
        message.contains("TLS") && message.contains("certificate"),
        "{message}"
    );
    stop(&mut proxy);
    assert_recorded_error(&db, "TLS");

    let mut proxy = record(
        &upstream,
        &db,
        &["--upstream-ca", ca.to_str().unwrap(), "--replace"],
    );
    let r = get(&proxy.url, "/links");
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    assert!(text.contains(&format!("{}/ucwa/x", proxy.url)), "{text}");
    assert!(!text.contains(&upstream), "{text}");
    stop(&mut proxy);

    // --insecure-upstream: explicit, and said out loud.
    let mut proxy = record(&upstream, &db, &["--insecure-upstream", "--replace"]);
    assert_eq!(get(&proxy.url, "/echo").status, 200);
    stop(&mut proxy);
    assert!(
        proxy.stderr().contains("NOT verified"),
        "{}",
        proxy.stderr()
    );

    // And the proxy's own TLS listener serves with the same certificate.
    let mut proxy = record(
        &upstream,
        &db,
        &[
            "--upstream-ca",
            ca.to_str().unwrap(),
            "--replace",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    assert!(proxy.url.starts_with("https://127.0.0.1:"), "{}", proxy.url);
    // The client speaks h2 when the server offers it (ALPN): end to end through TLS on both
    // sides. (Its runtime ends with the request: a current-thread runtime that is not
    // running cannot answer the server's GOAWAY.)
    let r = block_on(
        UcwaClient::with_tls(&proxy.url, Representation::Json, trusting(&ca))
            .request(Method::GET, "/links")
            .no_accept()
            .send(),
    )
    .expect("h2 request");
    assert_eq!(r.version, http::Version::HTTP_2);
    assert_eq!(r.status, 200);
    let body = r.text();
    assert!(
        body.contains(&format!("\"{}/ucwa/x\"", proxy.url)),
        "{body}"
    );
    stop(&mut proxy);
    let all = exchanges(&db);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].http_version, "HTTP/2.0");
    assert_eq!(all[0].status, Some(200));
}

/// A TLS client configuration that trusts `ca` alone.
fn trusting(ca: &std::path::Path) -> rustls::ClientConfig {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

// ---------------------------------------------------------------------------------------
// The events feed.

#[test]
fn client_disconnect_during_a_held_pget_is_recorded_as_aborted() {
    let (up, _dir, db, mut proxy) = record_main(&[]);
    let addr = proxy.addr();
    {
        let _stream = send_until_upstream_has_it(
            &up,
            addr,
            &format!(
                "GET /ucwa/oauth/v1/applications/1/events?ack=1&hold_ms=30000 HTTP/1.1\r\nHost: {addr}\r\n\r\n"
            ),
        );
        assert_eq!(up.requests(), 1, "the P-GET reached the upstream");
    } // hang up
    wait_until(|| up.seen.pgets_cancelled.load(Ordering::SeqCst) > 0);
    assert_eq!(
        up.seen.pgets_cancelled.load(Ordering::SeqCst),
        1,
        "the upstream request was cancelled"
    );
    // The proxy lives on.
    assert_eq!(get(&proxy.url, "/echo").status, 200);
    stop(&mut proxy);
    let all = exchanges(&db);
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].kind, ResourceKind::Events);
    assert_eq!(all[0].status, None);
    assert_eq!(all[0].error.as_deref(), Some("client aborted"));
    assert_eq!(all[1].status, Some(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_held_pgets_while_other_traffic_flows() {
    let (up, _dir, db, mut proxy) = record_main(&[]);
    let base = proxy.url.clone();
    let mut client = UcwaClient::new(&base, Representation::Json);
    let mut held = Vec::new();
    for app in 0..200 {
        let href =
            format!("/ucwa/oauth/v1/applications/{app}/events?ack=1&timeout=180&hold_ms=4000");
        let mut c = client.clone();
        held.push(tokio::spawn(async move {
            c.request(Method::GET, &href).send().await
        }));
    }
    // Wait until every P-GET is held upstream, then check that other requests flow.
    let end = Instant::now() + Duration::from_secs(20);
    while up.requests() < 200 && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(up.requests(), 200, "all P-GETs forwarded concurrently");
    for _ in 0..20 {
        let started = Instant::now();
        let r = client.request(Method::GET, "/echo").send().await.unwrap();
        assert_eq!(r.status, 200);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
    for h in held {
        let r = h.await.unwrap().unwrap();
        assert_eq!(r.status, 200);
        let text = r.text();
        assert!(
            text.contains(&format!("{base}/ucwa/oauth/v1/applications/")),
            "{text}"
        );
    }
    stop(&mut proxy);
    let all = exchanges(&db);
    assert_eq!(all.len(), 220);
    assert_eq!(
        all.iter()
            .filter(|e| e.kind == ResourceKind::Events)
            .count(),
        200
    );
    assert!(all.iter().all(|e| e.status == Some(200)));
}

// ---------------------------------------------------------------------------------------
// Shutdown.

#[test]
fn sigterm_releases_held_pgets_and_flushes_everything() {
    let (up, _dir, db, mut proxy) = record_main(&[]);
    let base = proxy.url.clone();
    for i in 0..50 {
        assert_eq!(get(&base, &format!("/echo?i={i}")).status, 200);
    }
    let held = std::thread::spawn(move || {
        get(
            &base,
            "/ucwa/oauth/v1/applications/1/events?ack=1&hold_ms=60000",
        )
    });
    wait_until(|| up.requests() >= 51);
    let started = Instant::now();
    stop(&mut proxy);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(held.join().unwrap().status, 503);
    assert!(
        proxy.stdout().contains("51 exchanges"),
        "stdout:\n{}",
        proxy.stdout()
    );
    let conn = rusqlite::Connection::open(&db).unwrap();
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM exchanges", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 51);
    let all = exchanges(&db);
    assert_eq!(
        all[50].error.as_deref(),
        Some("aborted: proxy shutting down")
    );
    let seqs: Vec<u64> = all.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=51).collect::<Vec<u64>>());
}

#[test]
fn the_file_opens_cleanly_after_sigkill() {
    let (_up, _dir, db, mut proxy) = record_main(&[]);
    for _ in 0..10 {
        assert_eq!(get(&proxy.url, "/echo").status, 200);
    }
    std::thread::sleep(Duration::from_millis(500));
    proxy.kill();
    let all = exchanges(&db);
    assert!(all.len() <= 10);
    assert!(!all.is_empty(), "a half second is enough to write");
}

// ---------------------------------------------------------------------------------------
// A whole UCWA session through the proxy, against the simulator.

/// The shared UCWA client through the proxy, following only links (JSON or XML), checking
/// that no response names the upstream, and keeping the events it received.
struct Bot {
    /// Its base is the proxy's public URL: everything goes through it.
    ucwa: UcwaClient,
    /// The simulator's own origin, which must never reach the client.
    hidden: String,
    xml: bool,
    events_href: String,
    /// (link rel, type) of every event received, in order.
    events: Vec<(String, String)>,
}

impl Bot {
    fn abs(&self, href: &str) -> String {
        let base = self.ucwa.base();
        if href.starts_with("http") {
            assert!(href.starts_with(base), "left the proxy: {href}");
            href.to_string()
        } else {
            format!("{base}{href}")
        }
    }

    /// (method, path) of every request sent, in order.
    fn sent(&self) -> Vec<(String, String)> {
        self.ucwa
            .transcript()
            .iter()
            .map(|seen| {
                let path = seen.target.trim_start_matches("{base}");
                let path = path.split('?').next().unwrap();
                (seen.method.clone(), path.to_string())
            })
            .collect()
    }

    async fn send(&mut self, method: Method, href: &str, body: Option<(&str, String)>) -> Reply {
        let url = self.abs(href);
        let body = body.map(|(ct, b)| (ct, b.into_bytes()));
        let r = self
            .ucwa
            .send(method, &url, body)
            .await
            .expect("request through the proxy");
        for (name, value) in &r.headers {
            let v = value.to_str().unwrap_or("");
            assert!(!v.contains(&self.hidden), "upstream origin in {name}: {v}");
        }
        let text = r.text();
        assert!(
            !text.contains(&self.hidden),
            "upstream origin in body: {text}"
        );
        let escaped = self.hidden.replace('/', "\\/");
        assert!(
            !text.contains(&escaped),
            "escaped upstream origin in body: {text}"
        );
        r
    }

    /// Every (rel, href) pair of a JSON or XML body.
    fn links(&self, body: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if self.xml {
            let doc = roxmltree::Document::parse(body).unwrap_or_else(|e| panic!("{e}: {body}"));
            for n in doc.descendants().filter(|n| n.is_element()) {
                if let (Some(rel), Some(href)) = (n.attribute("rel"), n.attribute("href")) {
                    out.push((rel.to_string(), href.to_string()));
                }
            }
        } else {
            fn walk(v: &serde_json::Value, out: &mut Vec<(String, String)>) {
                match v {
                    serde_json::Value::Object(map) => {
                        if let Some(serde_json::Value::Object(links)) = map.get("_links") {
                            for (rel, l) in links {
                                if let Some(h) = l.get("href").and_then(|h| h.as_str()) {
                                    out.push((rel.clone(), h.to_string()));
                                }
                            }
                        }
                        for x in map.values() {
                            walk(x, out);
                        }
                    }
                    serde_json::Value::Array(items) => items.iter().for_each(|x| walk(x, out)),
                    _ => {}
                }
            }
            let v: serde_json::Value =
                serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
            walk(&v, &mut out);
        }
        out
    }

    fn link(&self, body: &str, rel: &str) -> String {
        self.links(body)
            .into_iter()
            .find(|(r, _)| r == rel)
            .map(|(_, h)| h)
            .unwrap_or_else(|| panic!("no {rel} link in {body}"))
    }

    fn batch_events(&self, body: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if self.xml {
            let doc = roxmltree::Document::parse(body).unwrap();
            for sender in doc.descendants().filter(|n| n.has_tag_name("sender")) {
                for e in sender.children().filter(|n| n.is_element()) {
                    out.push((
                        e.attribute("rel").unwrap_or("").to_string(),
                        e.tag_name().name().to_string(),
                    ));
                }
            }
        } else {
            let v: serde_json::Value = serde_json::from_str(body).unwrap();
            for s in v["sender"].as_array().into_iter().flatten() {
                for e in s["events"].as_array().into_iter().flatten() {
                    out.push((
                        e["link"]["rel"].as_str().unwrap_or("").to_string(),
                        e["type"].as_str().unwrap_or("").to_string(),
                    ));
                }
            }
        }
        out
    }

    /// GET the feed until an event `(rel, type)` arrives; returns the batch that held it.
    async fn pump_until(&mut self, rel: &str, kind: &str) -> String {
        for _ in 0..20 {
            let href = self.events_href.clone();
            let r = self.send(Method::GET, &href, None).await;
            let body = r.text();
            assert_eq!(r.status, 200, "{body}");
            self.events_href = self.link(&body, "next");
            let got = self.batch_events(&body);
            let found = got.iter().any(|(r, k)| r == rel && k == kind);
            self.events.extend(got);
            if found {
                return body;
            }
        }
        panic!("no {rel} {kind} event; got {:?}", self.events);
    }
}

/// The simulator's control API, reached directly (not through the proxy).
async fn control(sim: &str, action: &str, body: serde_json::Value) {
    UcwaClient::new(sim, Representation::Json)
        .post_json(&format!("/_sim/{action}"), &body, &[200])
        .await
        .unwrap_or_else(|e| panic!("{action}: {e}"));
}

/// Autodiscover → 401 → token → user → application → makeMeAvailable → first feed batch.
async fn sign_in(base: String, sim: String, xml: bool) -> Bot {
    sign_in_from("/", base, sim, xml).await
}

/// [`sign_in`] starting from the autodiscover document at `root`.
async fn sign_in_from(root: &str, base: String, sim: String, xml: bool) -> Bot {
    let representation = if xml {
        Representation::Xml
    } else {
        Representation::Json
    };
    let mut c = Bot {
        ucwa: UcwaClient::new(&base, representation),
        hidden: sim.clone(),
        xml,
        events_href: String::new(),
        events: Vec::new(),
    };
    let root = c.send(Method::GET, root, None).await;
    assert_eq!(root.status, 200, "{}", root.text());
    let user = c.link(&root.text(), "user");
    let challenge = c.send(Method::GET, &user, None).await;
    assert_eq!(challenge.status, 401);
    let challenge = challenge
        .header_all("www-authenticate")
        .into_iter()
        .find(|v| v.starts_with("MsRtcOAuth"))
        .expect("MsRtcOAuth challenge")
        .to_string();
    let token_href = challenge.split('"').nth(1).unwrap().to_string();
    let form = format!(
        "grant_type=password&username=alice@contoso.com&password={}",
        ucwa_replay::sim::PASSWORD.replace('!', "%21")
    );
    let token = c
        .send(
            Method::POST,
            &token_href,
            Some(("application/x-www-form-urlencoded", form)),
        )
        .await;
    assert_eq!(token.status, 200, "{}", token.text());
    let token = token.expect_json()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    c.ucwa.set_token(Some(token));
    let user_doc = c.send(Method::GET, &user, None).await;
    assert_eq!(user_doc.status, 200, "{}", user_doc.text());
    let apps = c.link(&user_doc.text(), "applications");
    let app = c
        .send(
            Method::POST,
            &apps,
            Some((
                "application/json",
                r#"{"UserAgent":"record-test","EndpointId":"0b5cf6a2-2c2f-4a4c-9d7e-6f1d9a0c1e11","Culture":"en-US"}"#.into(),
            )),
        )
        .await;
    assert_eq!(app.status, 201, "{}", app.text());
    let app = app.text();
    c.events_href = c.link(&app, "events");
    let available = c.link(&app, "makeMeAvailable");
    let available = c
        .send(
            Method::POST,
            &available,
            Some((
                "application/json",
                r#"{"SupportedModalities":["Messaging"]}"#.into(),
            )),
        )
        .await;
    assert_eq!(available.status, 204, "{}", available.text());
    c.pump_until("communication", "updated").await;
    c
}

/// A signed-in client receives an IM with participantMessaging added/updated/deleted and a
/// message.
async fn im_session(base: String, sim: String, xml: bool) -> Bot {
    im_session_from("/", base, sim, xml).await
}

/// [`im_session`] starting from the autodiscover document at `root`.
async fn im_session_from(root: &str, base: String, sim: String, xml: bool) -> Bot {
    let mut c = sign_in_from(root, base, sim.clone(), xml).await;
    control(
        &sim,
        "invite",
        serde_json::json!({"from":"bob@contoso.com","message":"Hi"}),
    )
    .await;
    let batch = c.pump_until("messagingInvitation", "started").await;
    let accept = c.link(&batch, "accept");
    let accepted = c.send(Method::POST, &accept, None).await;
    assert_eq!(accepted.status, 204, "{}", accepted.text());
    c.pump_until("participantMessaging", "added").await;
    let carol = serde_json::json!({"participant":"carol@contoso.com"});
    control(&sim, "join", carol.clone()).await;
    c.pump_until("participant", "added").await;
    control(&sim, "update", carol.clone()).await;
    c.pump_until("participantMessaging", "updated").await;
    control(
        &sim,
        "message",
        serde_json::json!({"from":"bob@contoso.com","text":"How are you?"}),
    )
    .await;
    c.pump_until("message", "completed").await;
    control(&sim, "leave", carol).await;
    c.pump_until("participantMessaging", "deleted").await;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_im_session_from_autodiscover_is_recorded_in_json_and_xml() {
    use ucwa_replay::sim::{SimConfig, SimServer};
    let sims: Vec<SimServer> = (0..2)
        .map(|i| {
            SimServer::start(SimConfig {
                seed: 7 + i,
                time_scale: 0.001,
            })
            .unwrap()
        })
        .collect();
    let (_dir, db) = temp_db();
    // Two record processes write two sessions into one file at the same time.
    let mut json_proxy = Server::record(&sims[0].url(), &db, "json", &[]);
    let mut xml_proxy = Server::record(&sims[1].url(), &db, "xml", &[]);
    let (json_client, xml_client) = tokio::join!(
        im_session(json_proxy.url.clone(), sims[0].url(), false),
        im_session(xml_proxy.url.clone(), sims[1].url(), true),
    );
    stop(&mut json_proxy);
    stop(&mut xml_proxy);

    for (name, client, sim) in [
        ("json", &json_client, &sims[0]),
        ("xml", &xml_client, &sims[1]),
    ] {
        let all = exchanges_of(&db, name);
        let recorded: Vec<(String, String)> = all
            .iter()
            .map(|e| (e.method.clone(), e.path.clone()))
            .collect();
        assert_eq!(recorded, client.sent(), "{name}: every exchange, in order");
        assert!(
            all.iter().all(|e| e.error.is_none() && e.status.is_some()),
            "{name}"
        );
        let seqs: Vec<u64> = all.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=all.len() as u64).collect::<Vec<_>>());
        let feed: Vec<&Exchange> = all.iter().filter(|e| e.path.ends_with("/events")).collect();
        assert!(
            feed.iter().all(|e| e.kind == ResourceKind::Events),
            "{name}"
        );
        // The store keeps the upstream form: the autodiscover body names the simulator.
        let root = String::from_utf8_lossy(&all[0].response_body);
        assert!(root.contains(&sim.url()), "{name}: {root}");
        assert_eq!(all[0].upstream.as_deref(), Some(sim.url().as_str()));
        if name == "xml" {
            assert!(
                all.iter()
                    .skip(1)
                    .all(|e| e.representation.as_str() == "xml")
            );
        }
        // Events as the client saw them, in order.
        let pm: Vec<&str> = client
            .events
            .iter()
            .filter(|(rel, _)| rel == "participantMessaging")
            .map(|(_, kind)| kind.as_str())
            .collect();
        let first = |k: &str| pm.iter().position(|x| *x == k).unwrap();
        assert!(
            first("added") < first("updated") && first("updated") < first("deleted"),
            "{pm:?}"
        );
        // The events index agrees with what the client saw, event for event.
        let indexed: Vec<(String, String)> = all
            .iter()
            .flat_map(|e| e.events.iter())
            .map(|ev| (ev.link_rel.clone(), ev.event_type.clone()))
            .collect();
        assert_eq!(indexed, client.events, "{name}");
    }

    // No secret reaches the disk: not the tokens, not the password.
    let tokens: Vec<String> = [&json_client, &xml_client]
        .iter()
        .map(|c| c.ucwa.token().unwrap().to_string())
        .collect();
    let stored_auth: Vec<String> = ["json", "xml"]
        .iter()
        .flat_map(|n| exchanges_of(&db, n))
        .filter_map(|e| e.request_headers.get("authorization").map(str::to_string))
        .collect();
    assert!(!stored_auth.is_empty());
    assert!(
        stored_auth
            .iter()
            .all(|a| a.starts_with("Bearer cwt=REDACTED-")),
        "{stored_auth:?}"
    );
    {
        let mut raw = std::fs::read(&db).unwrap();
        raw.extend(std::fs::read(db.with_extension("sqlite-wal")).unwrap_or_default());
        let password = ucwa_replay::sim::PASSWORD;
        for secret in tokens
            .iter()
            .map(String::as_str)
            .chain([password, &password.replace('!', "%21")])
        {
            let found = raw.windows(secret.len()).any(|w| w == secret.as_bytes());
            assert!(!found, "{secret:?} is in the recording's bytes");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pget_replaced_upstream_reaches_the_client_as_409() {
    use ucwa_replay::sim::{SimConfig, SimServer};
    let sim = SimServer::start(SimConfig {
        seed: 11,
        time_scale: 0.001,
    })
    .unwrap();
    let (_dir, db) = temp_db();
    let mut proxy = record(&sim.url(), &db, &[]);
    let c = sign_in(proxy.url.clone(), sim.url(), false).await;
    // timeout=1800 simulated seconds: held for 1.8 s of real time.
    let sep = if c.events_href.contains('?') {
        '&'
    } else {
        '?'
    };
    let href = format!("{}{sep}timeout=1800", c.abs(&c.events_href));
    let pget = || {
        let (mut ucwa, href) = (c.ucwa.clone(), href.clone());
        tokio::spawn(async move { ucwa.request(Method::GET, &href).send().await })
    };
    let first = pget();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = pget();
    let first = first.await.unwrap().unwrap();
    assert_eq!(first.status, 409);
    let body = first.expect_json();
    assert_eq!(body["subcode"], "PGetReplaced", "{body}");
    assert_eq!(second.await.unwrap().unwrap().status, 200);
    stop(&mut proxy);
    let feed: Vec<Option<u16>> = exchanges(&db)
        .iter()
        .filter(|e| e.kind == ResourceKind::Events)
        .map(|e| e.status)
        .collect();
    assert!(feed.ends_with(&[Some(409), Some(200)]), "{feed:?}");
}

#[test]
fn bad_input_is_refused_with_one_line_and_exit_2() {
    let (dir, db) = temp_db();
    let db = db.display().to_string();
    let garbage = dir.path().join("garbage.sqlite");
    let junk = b"not a database, not even close to one";
    std::fs::write(&garbage, junk).unwrap();
    let garbage_arg = garbage.display().to_string();
    let up = "http://127.0.0.1:9";
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--upstream", "ftp://x", "--db", &db],
            "http:// or https://",
        ),
        (
            vec![
                "--upstream",
                up,
                "--db",
                &db,
                "--public-url",
                "http://p.example/a/b",
            ],
            "without a path",
        ),
        (
            vec![
                "--upstream",
                up,
                "--db",
                &db,
                "--upstream-ca",
                "/nonexistent/ca.pem",
            ],
            "/nonexistent/ca.pem",
        ),
        (
            vec!["--upstream", up, "--db", &garbage_arg],
            "not a SQLite database",
        ),
    ];
    for (args, needle) in cases {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ucwa-replay"))
            .args(["record", "--session", "s", "--listen", "127.0.0.1:0"])
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "no URL printed for {args:?}");
    }
    assert_eq!(
        std::fs::read(&garbage).unwrap(),
        junk,
        "the file is untouched"
    );
}

#[test]
fn client_hanging_up_mid_upload_is_recorded_as_aborted() {
    let (up, _dir, db, mut proxy) = record_main(&[]);
    let addr = proxy.addr();
    {
        let _stream = send_until_upstream_has_it(
            &up,
            addr,
            &format!(
                "POST /echo HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\nonly a few bytes"
            ),
        );
        std::thread::sleep(Duration::from_millis(100));
    } // hang up with 984 bytes missing
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(get(&proxy.url, "/echo").status, 200, "the proxy lives on");
    stop(&mut proxy);
    let all = exchanges(&db);
    assert_eq!(all.len(), 2);
    let err = all[0].error.as_deref().unwrap_or("");
    assert!(err.starts_with("client aborted"), "{err:?}");
    assert_eq!(all[0].request_body, b"only a few bytes");
}

/// The copies kept for the recording draw on one budget (`--max-capture-memory`), not only a
/// cap per body: while one upload holds 1.5 MB of a 2 MB budget, a second one of 1 MB is
/// stored cut at the 0.5 MB left, and flagged; both clients' bodies reach the upstream whole.
#[test]
fn bodies_held_for_the_recording_share_one_memory_budget() {
    let (up, _dir, db, mut proxy) =
        record_main(&["--max-body", "2000000", "--max-capture-memory", "2000000"]);
    let addr = proxy.addr();
    let mut first = raw::connect(addr);
    first
        .write_all(
            format!(
                "POST /count HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/octet-stream\r\nContent-Length: 2000000\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
    first.write_all(&vec![b'a'; 1_500_000]).unwrap();
    // The proxy copies each piece before passing it on: once the upstream has 1.5 MB, so
    // has the first upload's copy.
    wait_until(|| up.bytes() >= 1_500_000);
    assert_eq!(up.bytes(), 1_500_000);

    let second = raw::http(&proxy.url, "POST", "/count", &[], &vec![b'b'; 1_000_000]);
    assert_eq!(second.status, 200, "{}", second.text());
    assert_eq!(
        second.json()["bytes"],
        1_000_000,
        "the upstream got every byte"
    );

    first.write_all(&vec![b'a'; 500_000]).unwrap();
    let mut answer = Vec::new();
    first.read_to_end(&mut answer).unwrap();
    let answer = raw::parse_response(&answer);
    assert_eq!(
        answer.json()["bytes"],
        2_000_000,
        "the upstream got every byte"
    );
    stop(&mut proxy);

    let all = exchanges(&db);
    assert_eq!(all.len(), 2);
    let (a, b) = (&all[0], &all[1]);
    assert_eq!(a.request_body.first(), Some(&b'a'));
    assert!(a.request_body.len() >= 1_500_000);
    assert!(a.request_body.iter().all(|&c| c == b'a'));
    assert_eq!(b.request_body.len(), 500_000, "cut where the budget ended");
    assert!(b.request_body.iter().all(|&c| c == b'b'));
    assert!(b.request_truncated);
    assert!(b.error.is_none(), "{:?}", b.error);
    let stderr = proxy.stderr();
    assert_eq!(stderr.matches("capture memory full").count(), 1, "{stderr}");
}

// ---------------------------------------------------------------------------------------
// User redaction flags through the real binary; the WAL searched while it exists.

/// The recording file and its WAL (when present), as raw bytes.
fn raw_db_and_wal(db: &std::path::Path) -> (Vec<u8>, Option<Vec<u8>>) {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    (std::fs::read(db).unwrap(), std::fs::read(wal).ok())
}

fn assert_absent(bytes: &[u8], secrets: &[&str], what: &str) {
    for secret in secrets {
        let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
        assert!(!found, "{secret:?} is in the {what}");
    }
}

#[test]
fn redact_flags_keep_user_secrets_out_of_the_file_and_its_wal() {
    let up = Upstream::start("main");
    let (_dir, db) = temp_db();
    let mut proxy = record(
        &up.url(),
        &db,
        &[
            "--redact-header",
            "X-Secret",
            "--redact-field",
            "pin",
            "--redact-regex",
            r"card (\d{4}-\d{4}-\d{4}-\d{4})",
        ],
    );
    let header_secret = "hush-header-9c1e";
    let json_secret = "hush-json-field-7a2b";
    let form_secret = "hush-form-field-3d4f";
    let card = "4111-2222-3333-4444";
    let token = "cwt=AAEBHAEFAAAAAAAFFQAAAGhushTokenValue";
    let secrets = [header_secret, json_secret, form_secret, card, token];

    let json_body = format!(r#"{{"pin":"{json_secret}","note":"card {card}"}}"#);
    let form = format!("pin={form_secret}&x=1");
    let mut client = UcwaClient::new(&proxy.url, Representation::Json);
    client.set_token(Some(token.to_string()));
    block_on(async {
        let r = client
            .request(Method::POST, "/echo")
            .header("X-Secret", header_secret)
            .body("application/json", json_body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status, 200);
        // The client still gets every byte: redaction is for the disk only.
        assert!(r.text().contains(header_secret), "{}", r.text());
        let r = client
            .request(Method::POST, "/echo")
            .no_token()
            .body("application/x-www-form-urlencoded", form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status, 200);
    });

    // While `record` still runs, the exchanges sit in the WAL: search it now.
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, wal) = raw_db_and_wal(&db);
        let written = wal
            .as_ref()
            .is_some_and(|w| w.windows(5).any(|x| x == b"/echo"));
        if written {
            break;
        }
        assert!(
            Instant::now() < end,
            "no exchange reached the WAL; stderr:\n{}",
            proxy.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (main, wal) = raw_db_and_wal(&db);
    let wal = wal.expect("the WAL exists while recording");
    assert_absent(&wal, &secrets, "WAL of a running recording");
    assert_absent(&main, &secrets, "file of a running recording");

    stop(&mut proxy);
    let (main, wal) = raw_db_and_wal(&db);
    assert_absent(&main, &secrets, "recording");
    assert_absent(&wal.unwrap_or_default(), &secrets, "WAL after the stop");

    let all = exchanges(&db);
    assert_eq!(all.len(), 2);
    let stored = all[0].request_headers.get("x-secret").unwrap();
    assert!(stored.starts_with("REDACTED-"), "{stored}");
    assert!(
        all[0]
            .request_headers
            .get("authorization")
            .unwrap()
            .starts_with("Bearer cwt=REDACTED-")
    );
    let body = String::from_utf8_lossy(&all[0].request_body);
    assert!(body.contains(r#""pin":"REDACTED-"#), "{body}");
    assert!(body.contains("card REDACTED-"), "{body}");
    let form = String::from_utf8_lossy(&all[1].request_body);
    assert!(
        form.starts_with("pin=REDACTED-") && form.ends_with("&x=1"),
        "{form}"
    );
}

// ---------------------------------------------------------------------------------------
// Autodiscover on one host, the pool on another: one listener for the whole sign-in.

/// A lyncdiscover-style host: its autodiscover root is the pool's (the simulator's) own root
/// document, so every link in it names the pool, another origin.
fn autodiscover_host(pool: String) -> BackgroundServer {
    BackgroundServer::start(
        "lyncdiscover",
        "127.0.0.1:0".parse().unwrap(),
        move |listener, shutdown| async move {
            let handler = move |req: Request<Incoming>, _conn| {
                let pool = pool.clone();
                async move {
                    let accept = req
                        .headers()
                        .get("accept")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("application/json")
                        .to_string();
                    let r = UcwaClient::new(&pool, Representation::Json)
                        .request(Method::GET, req.uri().path())
                        .accept(&accept)
                        .send()
                        .await
                        .unwrap();
                    Response::builder()
                        .status(r.status)
                        .header("content-type", r.headers["content-type"].clone())
                        .body(full(r.body))
                        .unwrap()
                }
            };
            serve(listener, None, handler, shutdown, Duration::from_secs(1)).await
        },
    )
    .expect("start the autodiscover host")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_sign_in_across_two_hosts_goes_through_one_listener() {
    use ucwa_replay::sim::{SimConfig, SimServer};
    let sim = SimServer::start(SimConfig {
        seed: 13,
        time_scale: 0.001,
    })
    .unwrap();
    let discover = autodiscover_host(sim.url());
    let (_dir, db) = temp_db();
    // The pool is the upstream; the autodiscover host is another origin of the deployment,
    // reached under the proxy's /_upstream/HOST prefix.
    let mut proxy = record(&sim.url(), &db, &["--also-upstream", &discover.url()]);
    let discover_host = discover.addr().to_string();
    let root = format!("/_upstream/{discover_host}/autodiscover/autodiscoverservice.svc/root");
    // The client knows only the proxy; it never sees either real origin.
    let mut c = im_session_from(&root, proxy.url.clone(), sim.url(), false).await;
    c.hidden = discover.url();
    let again = c.send(Method::GET, &root, None).await;
    assert_eq!(again.status, 200);
    stop(&mut proxy);

    let all = exchanges(&db);
    let recorded: Vec<(String, String)> = all
        .iter()
        .map(|e| (e.method.clone(), e.path.clone()))
        .collect();
    assert_eq!(recorded, c.sent(), "every exchange, in order");
    assert!(all.iter().all(|e| e.error.is_none()), "no upstream errors");
    assert_eq!(all[0].upstream.as_deref(), Some(discover.url().as_str()));
    assert_eq!(all[1].upstream.as_deref(), Some(sim.url().as_str()));
    // The stored autodiscover body keeps the upstream form: it names the pool.
    let stored = String::from_utf8_lossy(&all[0].response_body);
    assert!(stored.contains(&sim.url()), "{stored}");
    let kinds: Vec<&str> = all
        .iter()
        .flat_map(|e| e.events.iter())
        .filter(|ev| ev.link_rel == "participantMessaging")
        .map(|ev| ev.event_type.as_str())
        .collect();
    for k in ["added", "updated", "deleted"] {
        assert!(kinds.contains(&k), "{kinds:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Streaming: neither body is buffered whole before it is forwarded. (Text-like response
// bodies are read whole to rewrite origins, with Content-Length following the new length;
// binary ones stream.)

#[test]
fn bodies_stream_both_ways_without_waiting_for_the_end() {
    let listener = StdListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (got_first, first_seen) = std::sync::mpsc::channel::<()>();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let upstream = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut buf = Vec::new();
        // The first part of the request body arrives while the client still holds the rest.
        raw::read_until(&mut s, &mut buf, b"req-first");
        got_first.send(()).unwrap();
        raw::read_until(&mut s, &mut buf, b"req-last");
        raw::read_until(&mut s, &mut buf, b"0\r\n\r\n");
        s.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\na\r\nresp-first\r\n",
        )
        .unwrap();
        s.flush().unwrap();
        // The rest of the response only once the client has the first part.
        released.recv_timeout(Duration::from_secs(20)).unwrap();
        s.write_all(b"9\r\nresp-last\r\n0\r\n\r\n").unwrap();
        String::from_utf8_lossy(&buf).into_owned()
    });
    let (_dir, db) = temp_db();
    let mut proxy = record(&format!("http://127.0.0.1:{port}"), &db, &[]);
    let addr = proxy.addr();
    let mut client = raw::connect(addr);
    write!(
        client,
        "POST /upload HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n9\r\nreq-first\r\n"
    )
    .unwrap();
    client.flush().unwrap();
    first_seen
        .recv_timeout(Duration::from_secs(20))
        .expect("the upstream got the first part before the request body ended");
    client.write_all(b"8\r\nreq-last\r\n0\r\n\r\n").unwrap();
    let mut got = Vec::new();
    raw::read_until(&mut client, &mut got, b"resp-first");
    assert!(
        !got.windows(9).any(|w| w == b"resp-last"),
        "the upstream has not sent it yet"
    );
    release.send(()).unwrap();
    client.read_to_end(&mut got).unwrap();
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("resp-last"), "{text}");
    let seen = upstream.join().unwrap();
    assert!(seen.contains("req-first") && seen.contains("req-last"));
    stop(&mut proxy);
    let all = exchanges(&db);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].request_body, b"req-firstreq-last");
    assert_eq!(all[0].response_body, b"resp-firstresp-last");
    assert!(all[0].error.is_none(), "{:?}", all[0].error);
}

#[test]
fn the_match_key_never_depends_on_a_secret() {
    let up = Upstream::start("main");
    let (_dir, db) = temp_db();
    let mut keys = Vec::new();
    for (session, token, password) in [
        ("a", "cwt=AAEBfirstTokenValue111", "first-Passw0rd"),
        ("b", "cwt=AAEBotherTokenValue222", "other-Passw0rd"),
    ] {
        let mut proxy = Server::record(&up.url(), &db, session, &[]);
        let mut client = UcwaClient::new(&proxy.url, Representation::Json);
        client.set_token(Some(token.to_string()));
        let q = token.replace('=', "%3D");
        block_on(async {
            let r = client
                .request(Method::GET, &format!("/echo?t={q}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status, 200);
            for (ct, body) in [
                (
                    "application/x-www-form-urlencoded",
                    format!("grant_type=password&username=alice&password={password}"),
                ),
                (
                    "application/json",
                    format!(r#"{{"password":"{password}","x":1}}"#),
                ),
            ] {
                let r = client
                    .request(Method::POST, "/echo")
                    .body(ct, body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status, 200);
            }
        });
        stop(&mut proxy);
        let got: Vec<String> = exchanges_of(&db, session)
            .into_iter()
            .map(|e| e.match_key.to_string())
            .collect();
        for k in &got {
            assert!(
                !k.contains(&token[4..]) && !k.contains(password),
                "a secret in the key {k}"
            );
        }
        keys.push(got);
    }
    assert_eq!(keys[0].len(), 3);
    assert_eq!(keys[0], keys[1], "same requests, other secrets: same keys");
}

#[test]
fn malformed_json_and_xml_bodies_are_forwarded_recorded_and_replayed_as_they_came() {
    const BAD_JSON: &str =
        "{\"_links\":{\"next\":{\"href\":\"/x?ack=2\"}},\"sender\":[{\"events\":";
    const BAD_XML: &str = "<?xml version=\"1.0\"?><events href=\"/x\"><sender rel=\"me\"><updated";
    let listener = StdListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let n = stream.read(&mut buf).unwrap_or(0);
            let xml = String::from_utf8_lossy(&buf[..n]).contains("ucwa+xml");
            let (ct, body) = if xml {
                ("application/vnd.microsoft.com.ucwa+xml", BAD_XML)
            } else {
                ("application/json", BAD_JSON)
            };
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let (_dir, db) = temp_db();
    let mut proxy = record(&format!("http://127.0.0.1:{port}"), &db, &[]);
    let events = "/ucwa/oauth/v1/applications/1/events?ack=1";
    let r = get_as(proxy.addr(), events, Representation::Json);
    assert_eq!((r.status.as_u16(), r.text().as_str()), (200, BAD_JSON));
    let r = get_as(proxy.addr(), events, Representation::Xml);
    assert_eq!((r.status.as_u16(), r.text().as_str()), (200, BAD_XML));
    stop(&mut proxy);
    let all = exchanges(&db);
    assert_eq!(all.len(), 2, "nothing lost");
    assert_eq!(all[0].response_body, BAD_JSON.as_bytes());
    assert_eq!(all[1].response_body, BAD_XML.as_bytes());
    assert!(
        all.iter()
            .all(|e| e.kind == ResourceKind::Events && e.events.is_empty())
    );

    // The inspect commands and replay take it as it is.
    for cmd in ["show", "events"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ucwa-replay"))
            .args([cmd, "--db", db.to_str().unwrap(), "--format", "json"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{cmd}");
        let _: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    }
    let replay = Server::replay(&db, &[]);
    let r = get_as(replay.addr(), events, Representation::Json);
    assert_eq!((r.status.as_u16(), r.text().as_str()), (200, BAD_JSON));
    let r = get_as(replay.addr(), events, Representation::Xml);
    assert_eq!((r.status.as_u16(), r.text().as_str()), (200, BAD_XML));
}

#[test]
fn a_pget_outlives_the_ordinary_upstream_timeout() {
    let (_up, _dir, db, mut proxy) = record_main(&["--upstream-timeout", "1"]);
    // The upstream holds this P-GET longer than --upstream-timeout; the client asked for
    // up to 180 s, so the proxy waits.
    let r = get(
        &proxy.url,
        "/ucwa/oauth/v1/applications/1/events?ack=1&timeout=180&hold_ms=1500",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    stop(&mut proxy);
    let all = exchanges(&db);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].status, Some(200));
    assert!(all[0].error.is_none(), "{:?}", all[0].error);
}

#[test]
fn a_chunked_json_body_streams_to_the_client_rewritten_piece_by_piece() {
    let listener = StdListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let upstream_origin = format!("http://127.0.0.1:{port}");
    let (release, released) = std::sync::mpsc::channel::<()>();
    let first = format!("{{\"self\":{{\"href\":\"{upstream_origin}/ucwa/a\"}},");
    let last = format!(
        "\"next\":{{\"href\":\"{}\\/ucwa\\/b\"}}}}",
        upstream_origin.replace('/', "\\/")
    );
    let (first_chunk, last_chunk) = (first.clone(), last.clone());
    let upstream = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut buf = Vec::new();
        raw::read_until(&mut s, &mut buf, b"\r\n\r\n");
        write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{first_chunk}\r\n",
            first_chunk.len()
        )
        .unwrap();
        s.flush().unwrap();
        // The rest only once the client has the first piece, rewritten.
        released.recv_timeout(Duration::from_secs(20)).unwrap();
        write!(s, "{:x}\r\n{last_chunk}\r\n0\r\n\r\n", last_chunk.len()).unwrap();
    });
    let (_dir, db) = temp_db();
    let mut proxy = record(&upstream_origin, &db, &[]);
    let addr = proxy.addr();
    let public = format!("http://{addr}");
    let mut client = raw::connect(addr);
    write!(
        client,
        "GET /ucwa/a HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut got = Vec::new();
    let rewritten_first = format!("{public}/ucwa/a");
    raw::read_until(&mut client, &mut got, rewritten_first.as_bytes());
    release.send(()).unwrap();
    client.read_to_end(&mut got).unwrap();
    upstream.join().unwrap();
    let text = String::from_utf8_lossy(&got).into_owned();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        !text.to_ascii_lowercase().contains("content-length"),
        "{text}"
    );
    assert!(
        text.contains(&format!("{}\\/ucwa\\/b", public.replace('/', "\\/"))),
        "the escaped origin of the second piece is rewritten too: {text}"
    );
    assert!(!text.contains(&upstream_origin), "{text}");
    stop(&mut proxy);
    let all = exchanges(&db);
    assert_eq!(all.len(), 1);
    // The store keeps the upstream's bytes.
    assert_eq!(all[0].response_body, format!("{first}{last}").into_bytes());
    assert!(all[0].error.is_none(), "{:?}", all[0].error);
}

/// Placeholders are numbered in the order the conversation revealed the secrets, not in the
/// order the recorder happened to finish exchanges: two runs of one script store the same
/// `REDACTED-n` everywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placeholder_numbers_are_the_same_in_every_run_of_a_script() {
    use ucwa_replay::demo::{ScriptOptions, record_session};
    let placeholder = regex::bytes::Regex::new(r"REDACTED-[0-9]+").unwrap();
    let numbering = |ex: &ucwa_replay::recording::Exchange| -> Vec<Vec<u8>> {
        let mut all = Vec::new();
        for part in [
            ex.path_and_query().into_bytes(),
            ex.request_headers.to_json().into_bytes(),
            ex.request_body.clone(),
            ex.response_headers.to_json().into_bytes(),
            ex.response_body.clone(),
        ] {
            all.extend(placeholder.find_iter(&part).map(|m| m.as_bytes().to_vec()));
        }
        all
    };
    let (_dir, db) = temp_db();
    let mut first: Option<Vec<Vec<Vec<u8>>>> = None;
    for run in 0..4 {
        let name = format!("run{run}");
        record_session(&db, &name, 5, &ScriptOptions::default())
            .await
            .unwrap();
        let got: Vec<Vec<Vec<u8>>> = exchanges_of(&db, &name).iter().map(numbering).collect();
        assert!(got.iter().flatten().count() > 10, "secrets were redacted");
        match &first {
            None => first = Some(got),
            Some(expected) => assert_eq!(&got, expected, "run {run}"),
        }
    }
}

/// On a terminal, `record` shows each exchange as an access log does (method, path,
/// status, ms) and its summary on stdout at the end; piped, stderr has only the logs.
#[test]
fn on_a_terminal_record_shows_each_exchange_and_its_summary() {
    use std::io::{BufRead, BufReader};
    use std::sync::Mutex;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rec.sqlite");
    let sim = Server::start(&["simulate", "--listen", "127.0.0.1:0", "--seed", "5"]);
    let command = format!(
        "exec '{}' record --upstream {} --listen 127.0.0.1:0 --db '{}' --session s",
        env!("CARGO_BIN_EXE_ucwa-replay"),
        sim.url,
        db.display()
    );
    // `script` runs the command on a pseudo-terminal and copies what it shows to stdout.
    let mut script = match std::process::Command::new("script")
        .args(["-qefc", &command, "/dev/null"])
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => panic!("this test needs `script` (util-linux): {e}"),
    };
    let shown = Arc::new(Mutex::new(String::new()));
    let (url_tx, url_rx) = std::sync::mpsc::channel();
    {
        let shown = shown.clone();
        let stdout = script.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let line = line.trim_end_matches('\r').to_string();
                if line.starts_with("http://") {
                    let _ = url_tx.send(line.clone());
                }
                let mut s = shown.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
    }
    let url = url_rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("the URL line");
    let root = "/autodiscover/autodiscoverservice.svc/root";
    assert_eq!(get(&url, root).status, 200);
    assert_eq!(get(&url, "/nope").status, 404);
    let wait_for = |needle: &str| {
        let end = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !shown.lock().unwrap().contains(needle) {
            assert!(
                std::time::Instant::now() < end,
                "{needle:?} not shown:\n{}",
                shown.lock().unwrap()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    wait_for(&format!("GET {root} 200 "));
    wait_for("GET /nope 404 ");
    // `script`'s child is the recorder: SIGTERM to it alone.
    let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", script.id()))
        .expect("the children of script");
    let recorder = children.split_whitespace().next().expect("record runs");
    std::process::Command::new("kill")
        .args(["-TERM", recorder])
        .status()
        .unwrap();
    assert!(script.wait().unwrap().success());
    wait_for(&format!(
        "recorded session \"s\" into {}: 2 exchanges, 0 events",
        db.display()
    ));

    // Piped: no access lines among the logs, the summary on stdout.
    let mut piped = Server::record(&sim.url, &dir.path().join("piped.sqlite"), "p", &[]);
    assert_eq!(get(&piped.url, "/nope").status, 404);
    piped.terminate(std::time::Duration::from_secs(30));
    assert!(
        !piped.stderr().contains("GET /nope 404 "),
        "{}",
        piped.stderr()
    );
}
