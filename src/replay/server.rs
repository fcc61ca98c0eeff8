//! The replay server: reads a request, asks the [`Replayer`] what answers it, waits as told
//! (pacing, a held P-GET at the end of the feed) and writes the answer — byte for byte what
//! the recording client got, with the recorded origins rewritten to the replay's own.
//! [`run`] serves a replayer on a listener the caller bound (mini-redis style).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::feed;
use super::miss::miss_response;
use super::options::FeedEnd;
use super::pacing;
use super::replayer::{Decision, Replayer};
use super::report::ReplayReport;
use crate::body::{Body, full};
use crate::error::{Chain, Error};
use crate::recording::headers::{ResponseRules, client_headers, retain_in_order};
use crate::recording::{Exchange, MatchKey, OriginRewriter};
use crate::serve::{ConnInfo, DEFAULT_DRAIN, Limits, serve_with};
use crate::ucwa::{ErrorBody, Representation, error_response};

/// Path (on the replay listener) that returns the report so far as JSON and, with
/// `--report`, writes the file: the "on demand" report for scripts.
pub const REPORT_PATH: &str = "/_replay/report";

/// Largest request body the replayer reads (a UCWA request body is a few KiB).
const MAX_REQUEST_BODY: usize = 16 * 1024 * 1024;

impl Replayer {
    /// The origin rewriter for a replay reachable at `public_base` (`http://127.0.0.1:PORT`).
    pub fn rewriter(&self, public_base: &str) -> OriginRewriter {
        OriginRewriter::to_public(&self.upstreams.main, &self.upstreams.also, public_base)
    }

    /// The same head rewriting as the recording proxy (hop-by-hop fields, Via, origins in
    /// Location / WWW-Authenticate / …, cookie domains), so the client gets what it got
    /// while recording; built once per `public_base`.
    fn head_rules(&self, public_base: &str) -> Arc<ResponseRules> {
        let mut cached = self.head_rules.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((base, rules)) = cached.as_ref()
            && base == public_base
        {
            return rules.clone();
        }
        let rules = Arc::new(ResponseRules {
            to_public: self.rewriter(public_base),
            upstream_hosts: self.upstreams.all().map(|o| o.host.clone()).collect(),
        });
        *cached = Some((public_base.to_string(), rules.clone()));
        rules
    }

    /// Answer one request whose body has been read. `public_base` is this replay's own
    /// URL (recorded origins are rewritten to it); `shutdown` releases held P-GETs.
    pub async fn respond(
        &self,
        req: Request<Bytes>,
        public_base: &str,
        shutdown: &CancellationToken,
    ) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let path = parts.uri.path();
        let query = parts.uri.query();
        if path == REPORT_PATH && parts.method == http::Method::GET {
            return self.report_response();
        }
        let (key, decision) = self.decide(&parts, &body);
        match decision {
            Decision::Serve(entry) => {
                let exchange = &self.index.entries()[entry].exchange;
                let delay = self.config.pace.delay(exchange.duration_us);
                pacing::wait(delay, shutdown).await;
                self.recorded_response(exchange, &key, public_base)
            }
            Decision::FeedEnd { ack } => {
                if self.config.feed_end == FeedEnd::Hold {
                    pacing::wait(feed::request_timeout(query), shutdown).await;
                }
                let repr = key.representation;
                let body = feed::empty_batch(path, query, ack, repr);
                let content_type = self
                    .index
                    .feed_content_type(path, repr)
                    .unwrap_or(repr.default_content_type())
                    .to_string();
                let mut resp = Response::new(full(body));
                if let Ok(v) = HeaderValue::from_str(&content_type) {
                    resp.headers_mut().insert(header::CONTENT_TYPE, v);
                }
                resp
            }
            Decision::Miss(miss) => {
                tracing::warn!(
                    method = %miss.method,
                    target = %miss.path,
                    query = miss.query.as_deref().unwrap_or(""),
                    closest = ?miss.closest.iter().map(|c| (c.seq, c.differs.join("+"))).collect::<Vec<_>>(),
                    "replay miss: {}",
                    miss.message
                );
                miss_response(&miss)
            }
        }
    }

    /// The recorded response, byte for byte, with the recorded origins rewritten to ours.
    fn recorded_response(
        &self,
        exchange: &Exchange,
        key: &MatchKey,
        public_base: &str,
    ) -> Response<Body> {
        let Some(status) = exchange.status else {
            // The client got no response from upstream while recording: the recording
            // proxy answered with its own 502, which is what we answer with too.
            let message = exchange
                .error
                .clone()
                .unwrap_or_else(|| "no response was recorded".to_string());
            let err = ErrorBody::new(StatusCode::BAD_GATEWAY, Some("UpstreamFailed"), message);
            return error_response(&err, key.representation);
        };
        let rules = self.head_rules(public_base);
        let body = rules
            .to_public
            .rewrite(&exchange.response_body)
            .into_owned();
        let mut headers = exchange.response_headers.to_http();
        if exchange.content_encoding.is_some() {
            // The body is stored decoded and sent whole.
            retain_in_order(&mut headers, |n| n != header::CONTENT_ENCODING);
        }
        client_headers(&mut headers, &rules);
        if let Some(length) = headers.get_mut(header::CONTENT_LENGTH) {
            *length = HeaderValue::from(body.len());
        }
        let keeps_length = !body.is_empty() || !headers.contains_key(header::CONTENT_LENGTH);
        let body = if keeps_length {
            full(body)
        } else {
            // hyper moves the `Content-Length: 0` of a known-empty body to the end of the
            // head; a body of unknown size keeps the recorded field where it was.
            empty_of_unknown_size()
        };
        let mut resp = Response::new(body);
        *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
        *resp.headers_mut() = headers;
        resp
    }

    fn report_response(&self) -> Response<Body> {
        let report = self.report();
        if let Err(err) = self.write_report() {
            tracing::error!(error = %Chain(&err), "cannot write the replay report");
        }
        let text = serde_json::to_vec_pretty(&report).unwrap_or_default();
        let mut resp = Response::new(full(text));
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        resp
    }

    /// Read the body of a hyper request and answer it.
    async fn handle(
        &self,
        req: Request<hyper::body::Incoming>,
        info: ConnInfo,
        shutdown: &CancellationToken,
    ) -> Response<Body> {
        let public_base = public_base(info.local, req.headers());
        let repr = Representation::from_accept(
            req.headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok()),
        );
        let (parts, body) = req.into_parts();
        let limited = http_body_util::Limited::new(body, MAX_REQUEST_BODY);
        let bytes = match limited.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(err) => {
                let err = ErrorBody::new(
                    StatusCode::BAD_REQUEST,
                    None,
                    format!("request body could not be read: {err}"),
                );
                return error_response(&err, repr);
            }
        };
        self.respond(Request::from_parts(parts, bytes), &public_base, shutdown)
            .await
    }
}

/// An empty body that does not announce its size.
fn empty_of_unknown_size() -> Body {
    let frames =
        futures_util::stream::empty::<Result<http_body::Frame<Bytes>, std::convert::Infallible>>();
    crate::body::boxed(http_body_util::StreamBody::new(frames))
}

/// This replay's own URL as the client reached it: the listener's address, or the `Host`
/// the client used when listening on all interfaces.
fn public_base(local: SocketAddr, headers: &HeaderMap) -> String {
    if local.ip().is_unspecified()
        && let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok())
    {
        return format!("http://{host}");
    }
    format!("http://{local}")
}

/// Serve `replayer` on `listener` until `shutdown` fires, then write the `--report` file (if
/// configured) and return the final report. Held P-GETs are released at once on shutdown.
pub async fn run(
    listener: TcpListener,
    replayer: Arc<Replayer>,
    shutdown: CancellationToken,
) -> Result<ReplayReport, Error> {
    run_with_limits(listener, replayer, Limits::new(), shutdown).await
}

/// [`run`] with the listener's [`Limits`] (`--header-timeout`, `--max-connections`).
pub async fn run_with_limits(
    listener: TcpListener,
    replayer: Arc<Replayer>,
    limits: Limits,
    shutdown: CancellationToken,
) -> Result<ReplayReport, Error> {
    let token = shutdown.clone();
    let served = replayer.clone();
    let handler = move |req: Request<hyper::body::Incoming>, info: ConnInfo| {
        let replayer = served.clone();
        let token = token.clone();
        async move { replayer.handle(req, info, &token).await }
    };
    serve_with(listener, None, handler, shutdown, DEFAULT_DRAIN, limits).await;
    Ok(match replayer.write_report()? {
        Some(report) => report,
        None => replayer.report(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::{HeaderList, KeyOptions, KeyRequest, SessionInfo};
    use crate::replay::ReplayConfig;

    fn session() -> SessionInfo {
        SessionInfo {
            id: 1,
            name: "s".into(),
            upstream: "https://fe1.contoso.com".into(),
            also_upstreams: vec![],
            started_at: String::new(),
            ended_at: None,
            tool_version: String::new(),
            exchanges: 2,
            events: 0,
        }
    }

    fn exchange(seq: u64, method: &str, path: &str, query: Option<&str>, body: &str) -> Exchange {
        let target = match query {
            Some(q) => format!("{path}?{q}"),
            None => path.to_string(),
        };
        let key = KeyRequest::new(method, &target).key(&KeyOptions::default());
        let mut response_headers = HeaderList::default();
        response_headers.push("Content-Type", "application/json");
        response_headers.push("Location", "https://fe1.contoso.com/ucwa/x");
        response_headers.push("Content-Length", body.len().to_string());
        Exchange {
            id: seq as i64,
            seq,
            method: method.into(),
            path: path.into(),
            query: query.map(str::to_string),
            http_version: "HTTP/1.1".into(),
            status: Some(200),
            response_headers,
            response_body: body.as_bytes().to_vec(),
            match_key: key,
            ..Default::default()
        }
    }

    async fn ask(r: &Replayer, method: &str, target: &str) -> (u16, HeaderMap, String) {
        let req = Request::builder()
            .method(method)
            .uri(target)
            .body(Bytes::new())
            .unwrap();
        let resp = r
            .respond(req, "http://127.0.0.1:9", &CancellationToken::new())
            .await;
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        (
            parts.status.as_u16(),
            parts.headers,
            String::from_utf8(bytes.to_vec()).unwrap(),
        )
    }

    #[tokio::test]
    async fn answers_rewritten_feed_end_and_misses_without_a_network() {
        let config = ReplayConfig {
            feed_end: FeedEnd::Empty,
            ..ReplayConfig::default()
        };
        let r = Replayer::from_exchanges(
            "mem",
            session(),
            vec![
                exchange(
                    1,
                    "GET",
                    "/ucwa/x",
                    None,
                    r#"{"href":"https:\/\/fe1.contoso.com\/ucwa"}"#,
                ),
                exchange(2, "GET", "/app/events", Some("ack=1"), "{}"),
            ],
            config,
        )
        .unwrap();
        let (status, headers, body) = ask(&r, "GET", "/ucwa/x").await;
        assert_eq!(status, 200);
        assert_eq!(body, r#"{"href":"http:\/\/127.0.0.1:9\/ucwa"}"#);
        assert_eq!(headers["location"], "http://127.0.0.1:9/ucwa/x");
        assert_eq!(headers["content-length"], body.len().to_string().as_str());

        let (status, _, body) = ask(&r, "GET", "/app/events?ack=2&timeout=1").await;
        assert_eq!(status, 200);
        assert!(body.contains(r#""sender":[]"#), "{body}");

        let (status, headers, body) = ask(&r, "GET", "/ucwa/y").await;
        assert_eq!(status, 404);
        assert_eq!(headers["x-ucwa-replay"], "miss");
        assert!(body.contains(r#""subcode":"ReplayMiss""#), "{body}");
        assert!(body.contains(r#""differs":["path"]"#), "{body}");
        assert_eq!(r.report().played, 1);
        assert_eq!(r.unplayed()[0].seq, 2);
    }
}
