//! A response body parsed for comparison, by its `Content-Type`: JSON ([`super::json`]), XML
//! ([`super::xml`]), `text/*` by lines ([`super::text`]), anything else by SHA-256 digest.

use std::hash::{Hash, Hasher};

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

    /// A digest of what [`compare`] looks at: the normalised side of the body (without the
    /// `ignore`d members of a JSON body), in document order. Two bodies with the same
    /// fingerprint compare equal; two with different ones may still compare equal (members
    /// in another order), which only costs a closer look.
    pub fn fingerprint(mut self, ignore: &IgnorePatterns) -> Fingerprint {
        let mut h = Digester(Sha256::new());
        match &mut self {
            Body::Empty => h.write_u8(0),
            Body::Json { norm, .. } => {
                h.write_u8(1);
                ignore.strip(norm);
                hash_json(norm, &mut h);
            }
            Body::Xml(e) => {
                h.write_u8(2);
                hash_xml(e, &mut h);
            }
            Body::Text(lines) => {
                h.write_u8(3);
                lines.norm.hash(&mut h);
            }
            Body::Bytes { sha256, .. } => {
                h.write_u8(4);
                sha256.hash(&mut h);
            }
        }
        let digest = h.0.finalize();
        let mut out = [0u8; 16];
        out.copy_from_slice(&digest[..16]);
        Fingerprint(out)
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

/// A digest of a parsed body ([`Body::fingerprint`]): 128 bits of SHA-256.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint([u8; 16]);

/// `Hasher` over SHA-256, so that `Hash` impls (strings, vectors, with their lengths) feed a
/// digest without collisions to fear.
struct Digester(Sha256);

impl Hasher for Digester {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    fn finish(&self) -> u64 {
        unreachable!("a fingerprint is read with finalize")
    }
}

fn hash_json(v: &Value, h: &mut Digester) {
    match v {
        Value::Null => h.write_u8(0),
        Value::Bool(b) => {
            h.write_u8(1);
            b.hash(h);
        }
        Value::Number(n) => {
            // The variant and its value, as `Number`'s equality sees them.
            if let Some(u) = n.as_u64() {
                h.write_u8(2);
                h.write_u64(u);
            } else if let Some(i) = n.as_i64() {
                h.write_u8(3);
                h.write_i64(i);
            } else {
                h.write_u8(4);
                h.write_u64(n.as_f64().unwrap_or(0.0).to_bits());
            }
        }
        Value::String(s) => {
            h.write_u8(5);
            s.hash(h);
        }
        Value::Array(items) => {
            h.write_u8(6);
            h.write_usize(items.len());
            items.iter().for_each(|i| hash_json(i, h));
        }
        Value::Object(map) => {
            h.write_u8(7);
            h.write_usize(map.len());
            for (k, v) in map {
                k.hash(h);
                hash_json(v, h);
            }
        }
    }
}

fn hash_xml(e: &Elem, h: &mut Digester) {
    e.ns.hash(h);
    e.label.hash(h);
    h.write_usize(e.attrs.len());
    for (k, v) in &e.attrs {
        k.hash(h);
        v.norm.hash(h);
    }
    e.text.as_ref().map(|t| &t.norm).hash(h);
    h.write_usize(e.children.len());
    e.children.iter().for_each(|c| hash_xml(c, h));
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
