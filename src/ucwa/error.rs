//! UCWA error bodies (docs/UCWA.md, "Errors"): `{"code","subcode","message"}` in JSON or a `<reason>`
//! element in XML. The simulator, the proxy (502/504) and the replayer (ReplayMiss) all
//! answer with these, so a UCWA client parses our errors like the server's.

use http::{HeaderValue, Response, StatusCode, header};
use serde_json::{Map, Value};

use super::{Representation, XML_NS};
use crate::body::{Body, full};

/// A UCWA error, ready to be written as JSON or XML.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorBody {
    pub status: StatusCode,
    pub subcode: Option<String>,
    pub message: String,
    /// Extra JSON members (e.g. `closest` for replay misses); XML renders them as
    /// `<property name>` children holding their JSON text.
    pub extra: Map<String, Value>,
}

impl ErrorBody {
    /// An error with the UCWA code that belongs to `status`.
    pub fn new(status: StatusCode, subcode: Option<&str>, message: impl Into<String>) -> Self {
        ErrorBody {
            status,
            subcode: subcode.map(str::to_string),
            message: message.into(),
            extra: Map::new(),
        }
    }

    /// An error a test asked for (the simulator's `/_sim/errors`, the replayer's
    /// `--inject`): the same body from both, `Simulated 409 (AlreadyExists).`.
    pub fn injected(status: StatusCode, subcode: Option<&str>) -> Self {
        let message = match subcode {
            Some(sub) => format!("Simulated {} ({sub}).", status.as_u16()),
            None => format!("Simulated {}.", status.as_u16()),
        };
        ErrorBody::new(status, subcode, message)
    }

    /// Add an extra JSON member.
    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.to_string(), value);
        self
    }

    /// The UCWA `code` for the status (docs/UCWA.md, "Errors").
    pub fn code(&self) -> &'static str {
        code_for_status(self.status)
    }

    /// The JSON body.
    pub fn to_json(&self) -> String {
        let mut obj = Map::new();
        obj.insert("code".into(), Value::String(self.code().into()));
        if let Some(sub) = &self.subcode {
            obj.insert("subcode".into(), Value::String(sub.clone()));
        }
        obj.insert("message".into(), Value::String(self.message.clone()));
        for (k, v) in &self.extra {
            obj.insert(k.clone(), v.clone());
        }
        Value::Object(obj).to_string()
    }

    /// The XML body (`<reason>`).
    pub fn to_xml(&self) -> String {
        let mut s = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>");
        s.push_str(&format!("<reason xmlns=\"{XML_NS}\">"));
        s.push_str(&format!("<code>{}</code>", self.code()));
        if let Some(sub) = &self.subcode {
            s.push_str(&format!("<subcode>{}</subcode>", xml_escape(sub)));
        }
        s.push_str(&format!("<message>{}</message>", xml_escape(&self.message)));
        for (k, v) in &self.extra {
            s.push_str(&format!(
                "<property name=\"{}\">{}</property>",
                xml_escape(k),
                xml_escape(&v.to_string())
            ));
        }
        s.push_str("<debugInfo/><parameters/></reason>");
        s
    }

    /// The body and content type for a representation (`Other` gets JSON).
    pub fn render(&self, repr: Representation) -> (String, &'static str) {
        match repr {
            Representation::Xml => (self.to_xml(), "application/xml; charset=utf-8"),
            _ => (self.to_json(), "application/json; charset=utf-8"),
        }
    }
}

/// A complete error response in the representation the client asked for.
pub fn error_response(err: &ErrorBody, repr: Representation) -> Response<Body> {
    let (text, content_type) = err.render(repr);
    let mut resp = Response::new(full(text));
    *resp.status_mut() = err.status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// The UCWA `code` for an HTTP status.
pub fn code_for_status(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        406 => "NotAcceptable",
        408 => "Timeout",
        409 => "Conflict",
        410 => "Gone",
        412 => "PreconditionFailed",
        413 => "EntityTooLarge",
        415 => "UnsupportedMediaType",
        428 => "PreconditionRequired",
        429 => "TooManyRequests",
        500 => "ServiceFailure",
        502 => "BadGateway",
        503 => "ServiceUnavailable",
        504 => "GatewayTimeout",
        _ => "ServiceFailure",
    }
}

/// Escape text for XML content and attribute values.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_xml_bodies() {
        let e = ErrorBody::new(StatusCode::CONFLICT, Some("AlreadyExists"), "a & b");
        let v: Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(v["code"], "Conflict");
        assert_eq!(v["subcode"], "AlreadyExists");
        let xml = e.to_xml();
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "reason");
        assert_eq!(root.tag_name().namespace(), Some(XML_NS));
        let msg = root
            .children()
            .find(|n| n.has_tag_name((XML_NS, "message")))
            .unwrap();
        assert_eq!(msg.text(), Some("a & b"));
    }
}
