//! A small UCWA client that behaves like a well-written real one: it starts from
//! autodiscover, follows the links the server gives (absolute or relative), signs in through
//! the 401 challenge, and keeps a transcript of every response. `demo` and the end-to-end
//! tests drive the simulator, the recording proxy and the replayer with it.

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
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
}

/// A UCWA client bound to one server base URL.
#[derive(Debug, Clone)]
pub struct UcwaClient {
    http: Client<HttpConnector, Body>,
    base: String,
    token: Option<String>,
    representation: Representation,
    transcript: Vec<Seen>,
}

impl UcwaClient {
    /// A client for `base` (`http://127.0.0.1:PORT`), asking for `representation`.
    pub fn new(base: &str, representation: Representation) -> Self {
        let http = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(16)
            .build_http();
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
        let url = self.resolve(href);
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(&url)
            .header(header::ACCEPT, self.accept());
        if let Some(token) = &self.token {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let req = match body {
            Some((content_type, bytes)) => builder
                .header(header::CONTENT_TYPE, content_type)
                .body(full(bytes)),
            None => builder.body(crate::body::empty()),
        }
        .map_err(|_| ClientError::Url(url.clone()))?;
        let resp = self
            .http
            .request(req)
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
        let reply = self.send(method.clone(), href, body).await?;
        if !expected.contains(&reply.status.as_u16()) {
            return Err(ClientError::Status {
                method,
                url: self.resolve(href),
                expected: format!("{expected:?}"),
                status: reply.status,
                body: reply.text().chars().take(300).collect(),
            });
        }
        Ok(reply)
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
