//! What hyper and tokio alone do on this machine: the floor under the record and replay rows
//! of `benches/load.sh`, which runs it. Two servers built from the crates and settings
//! ucwa-replay uses (hyper 1 HTTP/1.1, the multi-threaded tokio runtime, hyper-util's
//! pooled client with `TCP_NODELAY`, mimalloc without transparent huge pages) and doing
//! nothing else:
//!
//! - `static FILE`: answers every request with FILE's bytes (replay's floor);
//! - `served FILE`: the same answer through ucwa-replay's own HTTP serving layer
//!   (`ucwa_replay::serve`: HTTP/1.1 and h2 told apart, the TLS sniff, the header-read
//!   timer, graceful shutdown), so the replay row splits into hyper's share, that layer's
//!   and the replayer's;
//! - `proxy URL`: forwards every request to URL over kept-alive connections and answers
//!   with the whole response (record's floor, without recording).
//!
//! It prints its URL on the first line and serves until killed. Comparing a row against
//! nginx and against this floor tells the framework's share of a gap from ours.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

enum Mode {
    Static(Bytes),
    Served(Bytes),
    Proxy {
        client: Box<Client<HttpConnector, Full<Bytes>>>,
        authority: String,
    },
}

fn main() {
    // As the binary does (src/cli/huge_pages.rs).
    #[cfg(target_os = "linux")]
    // SAFETY: a prctl that takes no memory.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["static", file] => Mode::Static(Bytes::from(
            std::fs::read(file).unwrap_or_else(|e| fail(&format!("{file}: {e}"))),
        )),
        ["served", file] => Mode::Served(Bytes::from(
            std::fs::read(file).unwrap_or_else(|e| fail(&format!("{file}: {e}"))),
        )),
        ["proxy", url] => {
            let uri: Uri = url.parse().unwrap_or_else(|e| fail(&format!("{url}: {e}")));
            let Some(authority) = uri.authority() else {
                fail(&format!("{url}: no host"));
            };
            let mut connector = HttpConnector::new();
            connector.set_nodelay(true);
            Mode::Proxy {
                client: Box::new(Client::builder(TokioExecutor::new()).build(connector)),
                authority: authority.to_string(),
            }
        }
        // `cargo bench` runs every bench with `--bench`; this one only serves when asked.
        _ => {
            eprintln!(
                "usage: floor static FILE | floor served FILE | floor proxy URL (benches/load.sh runs it)"
            );
            return;
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(&e.to_string()));
    runtime.block_on(serve(std::sync::Arc::new(mode)));
}

fn fail(message: &str) -> ! {
    eprintln!("floor: {message}");
    std::process::exit(2)
}

async fn serve(mode: std::sync::Arc<Mode>) {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap_or_else(|e| fail(&e.to_string()));
    let local = listener
        .local_addr()
        .unwrap_or_else(|e| fail(&e.to_string()));
    println!("http://{local}");
    if let Mode::Served(bytes) = &*mode {
        let bytes = bytes.clone();
        let handler = move |_req: Request<hyper::body::Incoming>, _info| {
            let mut resp = Response::new(ucwa_replay::body::full(bytes.clone()));
            resp.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("application/json"),
            );
            std::future::ready(resp)
        };
        let forever = ucwa_replay::serve::CancellationToken::new();
        ucwa_replay::serve::serve(listener, None, handler, forever, std::time::Duration::ZERO)
            .await;
        return;
    }
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of descriptors, say: wait instead of spinning on the error.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let mode = mode.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| answer(mode.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(
    mode: std::sync::Arc<Mode>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (mut parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    match &*mode {
        Mode::Static(bytes) | Mode::Served(bytes) => {
            let mut resp = Response::new(Full::new(bytes.clone()));
            resp.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("application/json"),
            );
            Ok(resp)
        }
        Mode::Proxy { client, authority } => {
            let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            let Ok(uri) = format!("http://{authority}{target}").parse() else {
                return Ok(status(StatusCode::BAD_REQUEST));
            };
            parts.uri = uri;
            match client
                .request(Request::from_parts(parts, Full::new(body)))
                .await
            {
                Ok(resp) => {
                    let (parts, body) = resp.into_parts();
                    match body.collect().await {
                        Ok(c) => Ok(Response::from_parts(parts, Full::new(c.to_bytes()))),
                        Err(_) => Ok(status(StatusCode::BAD_GATEWAY)),
                    }
                }
                Err(_) => Ok(status(StatusCode::BAD_GATEWAY)),
            }
        }
    }
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = code;
    resp
}
