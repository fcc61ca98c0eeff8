//! A small UCWA client that behaves like a well-written real one: it starts from
//! autodiscover, follows the links the server gives (absolute or relative), signs in through
//! the 401 challenge, and keeps a transcript of every response. `demo` and the end-to-end
//! tests drive the simulator, the recording proxy and the replayer with it; a test that needs
//! one request shaped otherwise (another `Accept` or none, no token, extra header fields, any
//! body) builds it with [`UcwaClient::request`].

use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, StatusCode, Version, header};
use http_body_util::BodyExt;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::body::{Body, full};
use crate::ucwa::Representation;

/// What went wrong while driving a server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    #[error("{method} {url}: {source}")]
    Http {
        method: Method,
        url: String,
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    #[error("{method} {url}: reading the body: {message}")]
    Body {
        method: Method,
        url: String,
        message: String,
    },
    #[error("{method} {url}: expected {expected}, got {status}: {body}")]
    Status {
        method: Method,
        url: String,
        expected: String,
        status: StatusCode,
        body: String,
    },
    #[error("{context}: {message}")]
    Protocol { context: String, message: String },
    #[error("invalid URL {0:?}")]
    Url(String),
    #[error("invalid header {name:?}: {message}")]
    Header { name: String, message: String },
}

/// One response as the client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    /// The URL requested, with the server's origin replaced by `{base}` so that transcripts
    /// from servers on different ports compare equal.
    pub target: String,
    pub status: u16,
    /// Response headers in order (names lower-case).
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Bytes,
}

/// A response with its parsed body when it is JSON.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    /// The HTTP version the response came in (HTTP/2 only over TLS, when the server offers it).
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON (a UTF-8 BOM tolerated).
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(crate::ucwa::media::strip_bom(&self.body)).ok()
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The first value of header `name`, when it is text (visible ASCII).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Every value of header `name` in the order received (a repeated `WWW-Authenticate`,
    /// `Set-Cookie`); values that are not text are left out.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    }
}

/// A UCWA client bound to one server base URL.
#[derive(Debug, Clone)]
pub struct UcwaClient {
    http: Client<HttpsConnector<HttpConnector>, Body>,
    base: String,
    token: Option<String>,
    representation: Representation,
    transcript: Vec<Seen>,
}

impl UcwaClient {
    /// A client for `base` (`http://127.0.0.1:PORT`), asking for `representation`. An
    /// `https` base is trusted on the Mozilla roots.
    pub fn new(base: &str, representation: Representation) -> Self {
        // Built once per process: a test makes many clients, and the root store is the
        // costly part (cloning the config shares it).
        static DEFAULT_TLS: std::sync::OnceLock<rustls::ClientConfig> = std::sync::OnceLock::new();
        let tls = DEFAULT_TLS.get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth()
        });
        Self::with_tls(base, representation, tls.clone())
    }

    /// Like [`new`](Self::new), with `tls` deciding which `https` servers are trusted (a
    /// test CA, say). Over TLS the client speaks HTTP/2 when the server offers it (ALPN).
    pub fn with_tls(base: &str, representation: Representation, tls: rustls::ClientConfig) -> Self {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_all_versions()
            .build();
        let http = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(16)
            .build(connector);
        UcwaClient {
            http,
            base: base.trim_end_matches('/').to_string(),
            token: None,
            representation,
            transcript: Vec::new(),
        }
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Switch JSON/XML for the following requests.
    pub fn set_representation(&mut self, repr: Representation) {
        self.representation = repr;
    }

    /// Use `token` (`cwt=…`) as the bearer credential from now on.
    pub fn set_token(&mut self, token: Option<String>) {
        self.token = token;
    }

    /// The bearer credential in use (`cwt=…`), if any.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Everything seen so far.
    pub fn transcript(&self) -> &[Seen] {
        &self.transcript
    }

    /// Resolve an href from a response (absolute, or relative to the server).
    pub fn resolve(&self, href: &str) -> String {
        if href.starts_with("http://") || href.starts_with("https://") {
            href.to_string()
        } else if href.starts_with('/') {
            format!("{}{href}", self.base)
        } else {
            format!("{}/{href}", self.base)
        }
    }

    fn accept(&self) -> &'static str {
        match self.representation {
            Representation::Xml => "application/vnd.microsoft.com.ucwa+xml",
            _ => "application/json",
        }
    }

    /// Send a request; `body` is `(content type, bytes)`.
    pub async fn send(
        &mut self,
        method: Method,
        href: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Reply, ClientError> {
        let request = self.request(method, href);
        match body {
            Some((content_type, bytes)) => request.body(content_type, bytes),
            None => request,
        }
        .send()
        .await
    }

    /// A request to `href` that the caller shapes before sending it: by default the one
    /// [`send`](Self::send) makes (the client's `Accept` and bearer token, no body); each
    /// method of [`UcwaRequest`] changes one thing. Its response joins the transcript.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), ucwa_replay::demo::ClientError> {
    /// use http::Method;
    /// use ucwa_replay::demo::UcwaClient;
    /// use ucwa_replay::ucwa::Representation;
    ///
    /// let mut client = UcwaClient::new("http://127.0.0.1:4781", Representation::Json);
    /// // A batch: its own Accept and content type, an extra header, no bearer token.
    /// let reply = client
    ///     .request(Method::POST, "/ucwa/oauth/v1/applications/105/batch")
    ///     .accept("multipart/batching")
    ///     .header("X-Ms-RequestId", "7")
    ///     .no_token()
    ///     .body("multipart/batching;boundary=b", "--b--\r\n")
    ///     .send()
    ///     .await?;
    /// let challenges = reply.header_all("www-authenticate");
    /// # let _ = challenges;
    /// # Ok(())
    /// # }
    /// ```
    pub fn request(&mut self, method: Method, href: &str) -> UcwaRequest<'_> {
        UcwaRequest {
            accept: Some(self.accept().to_string()),
            url: self.resolve(href),
            client: self,
            method,
            with_token: true,
            headers: Vec::new(),
            body: None,
        }
    }

    /// Send `request` (to `url`, as resolved) and keep its response in the transcript.
    async fn execute(&mut self, url: String, request: Request<Body>) -> Result<Reply, ClientError> {
        let method = request.method().clone();
        let resp = self
            .http
            .request(request)
            .await
            .map_err(|source| ClientError::Http {
                method: method.clone(),
                url: url.clone(),
                source,
            })?;
        let (parts, incoming) = resp.into_parts();
        let body = incoming
            .collect()
            .await
            .map_err(|e| ClientError::Body {
                method: method.clone(),
                url: url.clone(),
                message: e.to_string(),
            })?
            .to_bytes();
        self.transcript.push(Seen {
            method: method.to_string(),
            target: url.replacen(&self.base, "{base}", 1),
            status: parts.status.as_u16(),
            headers: parts
                .headers
                .iter()
                .map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec()))
                .collect(),
            body: body.clone(),
        });
        Ok(Reply {
            status: parts.status,
            version: parts.version,
            headers: parts.headers,
            body,
        })
    }

    /// Send and insist on a status.
    pub async fn expect(
        &mut self,
        method: Method,
        href: &str,
        body: Option<(&str, Vec<u8>)>,
        expected: &[u16],
    ) -> Result<Reply, ClientError> {
        let request = self.request(method, href);
        match body {
            Some((content_type, bytes)) => request.body(content_type, bytes),
            None => request,
        }
        .expect(expected)
        .await
    }

    /// GET expecting 200.
    pub async fn get(&mut self, href: &str) -> Result<Reply, ClientError> {
        self.expect(Method::GET, href, None, &[200]).await
    }

    /// POST a JSON body.
    pub async fn post_json(
        &mut self,
        href: &str,
        value: &Value,
        expected: &[u16],
    ) -> Result<Reply, ClientError> {
        let body = value.to_string().into_bytes();
        self.expect(
            Method::POST,
            href,
            Some(("application/json", body)),
            expected,
        )
        .await
    }
}

/// A request from [`UcwaClient::request`], sent by [`send`](Self::send) or
/// [`expect`](Self::expect). Tests use it to put exactly what they mean on the wire: another
/// `Accept` or none, no bearer token (the simulator's control API, another origin), extra
/// header fields, a body of any content type or none.
#[derive(Debug)]
#[must_use = "a request does nothing until it is sent"]
pub struct UcwaRequest<'a> {
    client: &'a mut UcwaClient,
    method: Method,
    url: String,
    accept: Option<String>,
    with_token: bool,
    headers: Vec<(String, String)>,
    /// `(content type, bytes)`; no content type sends the bytes without one.
    body: Option<(Option<String>, Bytes)>,
}

impl UcwaRequest<'_> {
    /// `Accept: value` instead of the client's representation.
    pub fn accept(mut self, value: &str) -> Self {
        self.accept = Some(value.to_string());
        self
    }

    /// No `Accept` header at all.
    pub fn no_accept(mut self) -> Self {
        self.accept = None;
        self
    }

    /// No `Authorization` header, whatever token the client holds.
    pub fn no_token(mut self) -> Self {
        self.with_token = false;
        self
    }

    /// One more header field, written after the client's own; a name given twice is sent
    /// twice, in order. `Accept`, `Authorization` or `Content-Type` given here replace the
    /// client's own (the representation's `Accept`, the bearer token, the body's type).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// `bytes` as the body, with `Content-Type: content_type`.
    pub fn body(mut self, content_type: &str, bytes: impl Into<Bytes>) -> Self {
        self.body = Some((Some(content_type.to_string()), bytes.into()));
        self
    }

    /// `bytes` as the body, with no `Content-Type`.
    pub fn untyped_body(mut self, bytes: impl Into<Bytes>) -> Self {
        self.body = Some((None, bytes.into()));
        self
    }

    /// Send it and read the whole response, whatever its status.
    pub async fn send(self) -> Result<Reply, ClientError> {
        let UcwaRequest {
            client,
            method,
            url,
            accept,
            with_token,
            headers,
            body,
        } = self;
        let mut fields = Vec::with_capacity(headers.len());
        for (name, value) in &headers {
            let field =
                HeaderName::from_bytes(name.as_bytes()).map_err(|e| ClientError::Header {
                    name: name.clone(),
                    message: e.to_string(),
                })?;
            fields.push((field, field_value(name, value)?));
        }
        let given = |name: &HeaderName| fields.iter().any(|(field, _)| field == name);
        let mut builder = Request::builder().method(method).uri(&url);
        if let Some(accept) = accept.as_deref().filter(|_| !given(&header::ACCEPT)) {
            builder = builder.header(
                header::ACCEPT,
                field_value(header::ACCEPT.as_str(), accept)?,
            );
        }
        let bearer = with_token && !given(&header::AUTHORIZATION);
        if let Some(token) = client.token.as_deref().filter(|_| bearer) {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let typed = given(&header::CONTENT_TYPE);
        for (field, value) in fields {
            builder = builder.header(field, value);
        }
        let request = match body {
            Some((content_type, bytes)) => {
                if let Some(content_type) = content_type.as_deref().filter(|_| !typed) {
                    builder = builder.header(
                        header::CONTENT_TYPE,
                        field_value(header::CONTENT_TYPE.as_str(), content_type)?,
                    );
                }
                builder.body(full(bytes))
            }
            None => builder.body(crate::body::empty()),
        }
        .map_err(|_| ClientError::Url(url.clone()))?;
        client.execute(url, request).await
    }

    /// Send it and insist on one of the `expected` statuses.
    pub async fn expect(self, expected: &[u16]) -> Result<Reply, ClientError> {
        let (method, url) = (self.method.clone(), self.url.clone());
        let reply = self.send().await?;
        if !expected.contains(&reply.status.as_u16()) {
            return Err(ClientError::Status {
                method,
                url,
                expected: format!("{expected:?}"),
                status: reply.status,
                body: reply.text().chars().take(300).collect(),
            });
        }
        Ok(reply)
    }
}

fn field_value(name: &str, value: &str) -> Result<HeaderValue, ClientError> {
    HeaderValue::from_str(value).map_err(|e| ClientError::Header {
        name: name.to_string(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Answer one request on a fresh listener with `response`; return the request's head
    /// and body as text.
    async fn one_exchange(
        send: impl AsyncFnOnce(String) -> Reply,
        response: &'static str,
    ) -> (String, Reply) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            // The head, then as many body bytes as it announces.
            loop {
                let n = stream.read(&mut buf).await.unwrap();
                seen.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&seen).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text[..end]
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length: "))
                        .map_or(0, |v| v.parse::<usize>().unwrap());
                    if seen.len() >= end + 4 + length {
                        break;
                    }
                }
            }
            stream.write_all(response.as_bytes()).await.unwrap();
            String::from_utf8(seen).unwrap()
        });
        let reply = send(base).await;
        (server.await.unwrap(), reply)
    }

    const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

    #[tokio::test]
    async fn send_writes_accept_token_and_body_type() {
        let (request, _) = one_exchange(
            async |base| {
                let mut c = UcwaClient::new(&base, Representation::Xml);
                c.set_token(Some("cwt=abc".into()));
                c.send(Method::POST, "/x", Some(("text/plain", b"hi".to_vec())))
                    .await
                    .unwrap()
            },
            OK,
        )
        .await;
        assert!(request.starts_with("POST /x HTTP/1.1\r\n"), "{request}");
        assert!(request.contains("accept: application/vnd.microsoft.com.ucwa+xml\r\n"));
        assert!(request.contains("authorization: Bearer cwt=abc\r\n"));
        assert!(request.contains("content-type: text/plain\r\n"));
        assert!(request.ends_with("\r\n\r\nhi"), "{request}");
    }

    #[tokio::test]
    async fn a_request_drops_or_replaces_what_the_client_would_send() {
        let (request, reply) = one_exchange(
            async |base| {
                let mut c = UcwaClient::new(&base, Representation::Json);
                c.set_token(Some("cwt=abc".into()));
                c.request(Method::POST, "/x")
                    .no_accept()
                    .header("Authorization", "Bearer other")
                    .header("X-Rep", "1")
                    .header("X-Rep", "2")
                    .untyped_body("raw")
                    .send()
                    .await
                    .unwrap()
            },
            "HTTP/1.1 401 Unauthorized\r\nwww-authenticate: Bearer a\r\n\
             www-authenticate: MsRtcOAuth b\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        )
        .await;
        let lower = request.to_ascii_lowercase();
        assert!(!lower.contains("accept:"), "{request}");
        assert!(!lower.contains("content-type:"), "{request}");
        assert_eq!(lower.matches("authorization:").count(), 1, "{request}");
        assert!(
            lower.contains("authorization: bearer other\r\n"),
            "{request}"
        );
        assert!(lower.contains("x-rep: 1\r\nx-rep: 2\r\n"), "{request}");
        assert!(request.ends_with("\r\n\r\nraw"), "{request}");
        assert_eq!(reply.status, 401);
        assert_eq!(reply.header("www-authenticate"), Some("Bearer a"));
        assert_eq!(
            reply.header_all("www-authenticate"),
            ["Bearer a", "MsRtcOAuth b"]
        );
    }

    #[tokio::test]
    async fn no_token_and_a_chosen_accept() {
        let (request, _) = one_exchange(
            async |base| {
                let mut c = UcwaClient::new(&base, Representation::Json);
                c.set_token(Some("cwt=abc".into()));
                c.request(Method::GET, "/x")
                    .no_token()
                    .accept("multipart/batching")
                    .expect(&[200])
                    .await
                    .unwrap()
            },
            OK,
        )
        .await;
        let lower = request.to_ascii_lowercase();
        assert!(!lower.contains("authorization:"), "{request}");
        assert!(
            lower.contains("accept: multipart/batching\r\n"),
            "{request}"
        );
    }
}
