//! One request and its reply as the simulator's handlers see them: the request already read
//! into memory (UCWA bodies are small) with its negotiated representation, and a reply that
//! is still plain data, so that [`super::Sim::finish`] can stamp the deterministic `Date` and
//! correlation headers on every response in one place.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, Method, StatusCode, header};

use crate::ucwa::{ErrorBody, Representation, media};

/// The representation a request asked for, and the content type to echo back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub repr: Representation,
    /// What the response's `Content-Type` says (the asked type + `; charset=utf-8`).
    pub content_type: String,
}

impl Negotiated {
    /// Pick JSON or XML from `Accept` and echo the exact type that was asked for.
    pub fn from_accept(accept: Option<&str>) -> Self {
        Negotiated {
            repr: Representation::from_accept(accept),
            content_type: media::answer_content_type(accept),
        }
    }

    pub fn is_xml(&self) -> bool {
        self.repr == Representation::Xml
    }
}

/// A request read whole.
#[derive(Debug)]
pub struct Req {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// `http://host[:port]` as the client addressed us (from `Host`), for absolute hrefs.
    pub origin: String,
    pub neg: Negotiated,
}

impl Req {
    pub fn header(&self, name: &HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The media type of the body, lowercased, without parameters.
    pub fn content_mime(&self) -> Option<String> {
        self.header(&header::CONTENT_TYPE)
            .map(|ct| media::essence(ct).into_owned())
    }

    /// One query parameter (first occurrence), decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        let q = self.query.as_deref()?;
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.into_owned())
    }
}

/// A response before the common headers are added.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: Vec<(HeaderName, String)>,
    pub body: Bytes,
}

impl Reply {
    pub fn new(status: StatusCode) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    pub fn no_content() -> Self {
        Reply::new(StatusCode::NO_CONTENT)
    }

    /// A body with its content type.
    pub fn body(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Self {
        Reply::new(status)
            .header(header::CONTENT_TYPE, content_type)
            .with_body(body)
    }

    pub fn header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// A resource in the representation the request asked for.
    pub fn resource(neg: &Negotiated, value: &serde_json::Value, fallback_rel: &str) -> Self {
        let body = if neg.is_xml() {
            super::render::resource_xml(value, fallback_rel)
        } else {
            super::render::to_json(value)
        };
        Reply::body(StatusCode::OK, &neg.content_type, body)
    }

    /// A UCWA error body in the representation the request asked for.
    pub fn error(neg: &Negotiated, err: &ErrorBody) -> Self {
        let text = match neg.repr {
            Representation::Xml => err.to_xml(),
            _ => err.to_json(),
        };
        Reply::body(err.status, &neg.content_type, text)
    }
}

/// Why a request failed; every variant becomes a UCWA-shaped response.
#[derive(Debug, thiserror::Error)]
pub enum Fail {
    /// A UCWA error (`code`/`subcode`/`message`).
    #[error("{} {}: {}", .0.status, .0.subcode.as_deref().unwrap_or("-"), .0.message)]
    Ucwa(Box<ErrorBody>),
    /// No valid bearer token: 401 with both `WWW-Authenticate` challenges.
    #[error("no valid bearer token")]
    Unauthorized,
    /// The path exists but not with this method.
    #[error("method not allowed (allowed: {})", .0.join(", "))]
    Method(&'static [&'static str]),
}

impl Fail {
    pub fn new(status: StatusCode, subcode: Option<&str>, message: impl Into<String>) -> Self {
        Fail::Ucwa(Box::new(ErrorBody::new(status, subcode, message)))
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Fail::new(StatusCode::NOT_FOUND, None, message)
    }

    pub fn app_not_found() -> Self {
        Fail::new(
            StatusCode::NOT_FOUND,
            Some("ApplicationNotFound"),
            "The application resource does not exist.",
        )
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Fail::new(StatusCode::BAD_REQUEST, None, message)
    }

    pub fn unsupported_media(mime: Option<&str>) -> Self {
        Fail::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            None,
            format!(
                "The content type {} is not supported by this resource.",
                mime.unwrap_or("(none)")
            ),
        )
    }

    pub fn conflict(subcode: Option<&str>, message: impl Into<String>) -> Self {
        Fail::new(StatusCode::CONFLICT, subcode, message)
    }
}

pub type Handled = Result<Reply, Fail>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_echoes_the_asked_type() {
        let n = Negotiated::from_accept(Some("application/vnd.microsoft.com.ucwa+xml"));
        assert!(n.is_xml());
        assert_eq!(
            n.content_type,
            "application/vnd.microsoft.com.ucwa+xml; charset=utf-8"
        );
        let n = Negotiated::from_accept(None);
        assert_eq!(n.content_type, "application/json; charset=utf-8");
        let n = Negotiated::from_accept(Some("text/xml"));
        assert_eq!(n.content_type, "application/xml; charset=utf-8");
    }
}
