//! JSON or XML: which representation a request asks for and a response carries.

use std::borrow::Cow;
use std::fmt;

/// The representation of a UCWA body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Representation {
    /// UCWA's default.
    #[default]
    Json,
    Xml,
    Other,
}

impl Representation {
    /// The representation a request asks for with its `Accept` header. UCWA defaults to
    /// JSON; XML only when `application/xml` or the UCWA `+xml` type is named (and JSON is not
    /// preferred before it).
    pub fn from_accept(accept: Option<&str>) -> Self {
        let Some(accept) = accept else {
            return Representation::Json;
        };
        for part in accept.split(',') {
            let mime = essence(part);
            if is_xml(&mime) {
                return Representation::Xml;
            }
            if is_json(&mime) {
                return Representation::Json;
            }
        }
        Representation::Json
    }

    /// The representation of a body from its `Content-Type`.
    pub fn from_content_type(content_type: Option<&str>) -> Self {
        let Some(ct) = content_type else {
            return Representation::Other;
        };
        let mime = essence(ct);
        if is_json(&mime) {
            Representation::Json
        } else if is_xml(&mime) {
            Representation::Xml
        } else {
            Representation::Other
        }
    }

    /// Name as stored in recordings: `json`, `xml`, `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            Representation::Json => "json",
            Representation::Xml => "xml",
            Representation::Other => "other",
        }
    }

    /// Parse the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "json" => Some(Representation::Json),
            "xml" => Some(Representation::Xml),
            "other" => Some(Representation::Other),
            _ => None,
        }
    }

    /// The content type to answer with when the request named none we recognise.
    pub fn default_content_type(self) -> &'static str {
        match self {
            Representation::Xml => "application/xml; charset=utf-8",
            _ => "application/json; charset=utf-8",
        }
    }
}

impl fmt::Display for Representation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `Content-Type` a UCWA server answers a request with: the JSON or XML type the
/// client asked for (the vendor types included) echoed back with `; charset=utf-8`, else
/// `application/json` (or `application/xml` when XML was asked in another spelling).
pub fn answer_content_type(accept: Option<&str>) -> String {
    const JSON_TYPES: [&str; 2] = [
        "application/json",
        "application/vnd.microsoft.com.ucwa+json",
    ];
    const XML_TYPES: [&str; 2] = ["application/xml", "application/vnd.microsoft.com.ucwa+xml"];
    let known: &[&str] = if Representation::from_accept(accept) == Representation::Xml {
        &XML_TYPES
    } else {
        &JSON_TYPES
    };
    let asked = accept.and_then(|a| a.split(',').map(essence).find(|m| known.contains(&&**m)));
    let mime = asked.unwrap_or(Cow::Borrowed(known[0]));
    format!("{mime}; charset=utf-8")
}

/// The media type of a `Content-Type` value or an `Accept` entry: without parameters,
/// trimmed, lower-cased (`Application/JSON; charset=utf-8` → `application/json`). Borrowed
/// when it is lower case already, as nearly every one is: it is asked for on every request.
pub fn essence(media_type: &str) -> Cow<'_, str> {
    let mime = media_type.split(';').next().unwrap_or("").trim();
    if mime.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(mime.to_ascii_lowercase())
    } else {
        Cow::Borrowed(mime)
    }
}

/// Whether a body of this `Content-Type` is text that may hold absolute URLs: JSON, XML,
/// HTML, text, forms, UCWA batches (the proxy rewrites and redacts only these).
pub fn is_text_like(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else {
        return false;
    };
    let mime = essence(ct);
    mime.starts_with("text/")
        || mime.starts_with("multipart/")
        || mime.ends_with("+json")
        || mime.ends_with("+xml")
        || matches!(
            &*mime,
            "application/json"
                | "application/xml"
                | "application/javascript"
                | "application/x-www-form-urlencoded"
                | "application/http"
        )
}

/// `body` without a leading UTF-8 BOM (UCWA servers send one before some JSON bodies).
pub fn strip_bom(body: &[u8]) -> &[u8] {
    body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body)
}

/// The first byte of a body that is neither whitespace nor part of a UTF-8 BOM: `{`/`[`
/// suggests JSON, `<` XML, for bodies whose type is not declared.
pub fn first_significant_byte(body: &[u8]) -> Option<u8> {
    body.iter()
        .copied()
        .find(|b| !b.is_ascii_whitespace() && !matches!(b, 0xEF | 0xBB | 0xBF))
}

fn is_json(mime: &str) -> bool {
    mime == "application/json" || mime.ends_with("+json")
}

fn is_xml(mime: &str) -> bool {
    mime == "application/xml" || mime == "text/xml" || mime.ends_with("+xml")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_essence_is_lower_cased_without_parameters_and_borrowed_when_it_can_be() {
        let plain = essence(" application/vnd.microsoft.com.ucwa+json ; charset=utf-8");
        assert!(matches!(
            plain,
            Cow::Borrowed("application/vnd.microsoft.com.ucwa+json")
        ));
        let upper = essence("Application/JSON;charset=UTF-8");
        assert_eq!(upper, "application/json");
        assert!(matches!(upper, Cow::Owned(_)));
        assert_eq!(essence(""), "");
        assert_eq!(
            Representation::from_content_type(Some("TEXT/XML; charset=utf-8")),
            Representation::Xml
        );
        assert_eq!(
            Representation::from_accept(Some("text/html, Application/XML;q=0.9")),
            Representation::Xml
        );
    }

    #[test]
    fn accept_picks_the_first_known_type() {
        use Representation::*;
        assert_eq!(Representation::from_accept(None), Json);
        assert_eq!(Representation::from_accept(Some("application/xml")), Xml);
        assert_eq!(
            Representation::from_accept(Some("application/vnd.microsoft.com.ucwa+xml")),
            Xml
        );
        assert_eq!(
            Representation::from_accept(Some("application/json, application/xml")),
            Json
        );
        assert_eq!(Representation::from_accept(Some("*/*")), Json);
    }

    #[test]
    fn content_type_ignores_parameters() {
        assert_eq!(
            Representation::from_content_type(Some("application/json; charset=utf-8")),
            Representation::Json
        );
        assert_eq!(
            Representation::from_content_type(Some("text/plain")),
            Representation::Other
        );
    }
}
