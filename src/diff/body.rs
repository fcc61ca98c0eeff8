//! A response body parsed for comparison, by its `Content-Type`: JSON ([`super::json`]), XML
//! ([`super::xml`]), `text/*` by lines ([`super::text`]), anything else by SHA-256 digest.

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::json::{self, IgnorePatterns, Side};
use super::normalize::Normalizer;
use super::text::{self, Lines};
use super::xml::{self, Elem};
use super::{Change, ChangeKind, Part};
use crate::ucwa::media::strip_bom;
use crate::ucwa::{Representation, media};

/// A body ready to compare.
#[derive(Debug, Clone)]
pub enum Body {
    Empty,
    Json { norm: Value, raw: Value },
    Xml(Box<Elem>),
    Text(Lines),
    Bytes { sha256: String, len: usize },
}

impl Body {
    /// Parse `bytes` as its content type says, normalising strings in document order.
    pub fn parse(content_type: Option<&str>, bytes: &[u8], norm: &mut Normalizer) -> Body {
        if bytes.is_empty() {
            return Body::Empty;
        }
        let stripped = strip_bom(bytes);
        let mime = content_type.map(media::essence).unwrap_or_default();
        let repr = Representation::from_content_type(content_type);
        let looks_json = matches!(
            stripped.iter().find(|b| !b.is_ascii_whitespace()),
            Some(b'{' | b'[')
        );
        if (repr == Representation::Json || (repr == Representation::Other && looks_json))
            && let Ok(raw) = serde_json::from_slice::<Value>(stripped)
        {
            let n = norm.json(&raw);
            return Body::Json { norm: n, raw };
        }
        let text = std::str::from_utf8(stripped).ok();
        if repr == Representation::Xml
            && let Some(e) = text.and_then(|t| xml::parse(t, norm))
        {
            return Body::Xml(Box::new(e));
        }
        if let Some(t) = text
            && (mime.starts_with("text/") || repr != Representation::Other)
        {
            let raw: Vec<String> = t.lines().map(str::to_string).collect();
            let n = raw.iter().map(|l| norm.text(l)).collect();
            return Body::Text(Lines { norm: n, raw });
        }
        Body::Bytes {
            sha256: hex::encode(Sha256::digest(bytes)),
            len: bytes.len(),
        }
    }

    /// What kind of body this is, for reports.
    pub fn describe(&self) -> String {
        match self {
            Body::Empty => "empty".into(),
            Body::Json { .. } => "JSON".into(),
            Body::Xml(_) => "XML".into(),
            Body::Text(l) => format!("text ({} lines)", l.raw.len()),
            Body::Bytes { sha256, len } => format!("sha256:{} ({len} bytes)", &sha256[..16]),
        }
    }
}

/// Compare two bodies of a paired exchange.
pub fn compare(a: &Body, b: &Body, ignore: &IgnorePatterns, out: &mut Vec<Change>) {
    match (a, b) {
        (Body::Empty, Body::Empty) => {}
        (Body::Json { norm: na, raw: ra }, Body::Json { norm: nb, raw: rb }) => json::compare(
            Side { norm: na, raw: ra },
            Side { norm: nb, raw: rb },
            ignore,
            Part::Body,
            &[],
            out,
        ),
        (Body::Xml(ea), Body::Xml(eb)) => xml::compare(ea, eb, ignore, out),
        (Body::Text(la), Body::Text(lb)) => text::compare(la, lb, out),
        (Body::Bytes { sha256: da, .. }, Body::Bytes { sha256: db, .. }) if da == db => {}
        (Body::Empty, other) => out.push(Change {
            part: Part::Body,
            path: String::new(),
            kind: ChangeKind::Added,
            a: None,
            b: Some(other.describe()),
        }),
        (other, Body::Empty) => out.push(Change {
            part: Part::Body,
            path: String::new(),
            kind: ChangeKind::Removed,
            a: Some(other.describe()),
            b: None,
        }),
        _ => out.push(Change {
            part: Part::Body,
            path: String::new(),
            kind: ChangeKind::Changed,
            a: Some(a.describe()),
            b: Some(b.describe()),
        }),
    }
}
