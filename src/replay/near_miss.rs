//! Near misses: a request that matched nothing recorded but was served anyway, because its
//! body was the only thing that differed and exactly one recorded request had its method,
//! path, query and representation (`--body-match lenient`). The client got an answer, so
//! only the report can tell the test that the client now sends something else: it names the
//! recorded exchange, both bodies, and where they differ — a JSON pointer, a form field, or a
//! line — compared after the same canonicalisation as the match key (ignored client ids left
//! out, keys sorted).
//!
//! This is not `crate::diff`: that module normalises ids and dates so that two recordings
//! compare equal; a near miss wants the raw values the client sent.

use serde::Serialize;
use serde_json::Value;

use super::miss::repr_name;
use crate::recording::KeyOptions;
use crate::recording::key::{canonical_body, canonical_json};
use crate::ucwa::Representation;

/// Most differences listed for one near miss.
const MAX_DIFFERENCES: usize = 20;
/// Bodies longer than this are cut in the report.
const MAX_BODY_TEXT: usize = 16 * 1024;

/// One place where the received body differs from the recorded one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// A JSON pointer (`/UserAgent`), `form field NAME`, `line N`, or `body`.
    #[serde(rename = "where")]
    pub place: String,
    /// The recorded value there (absent when the received body added it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded: Option<Value>,
    /// The received value there (absent when the received body left it out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received: Option<Value>,
}

/// A request served by a lenient body match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NearMiss {
    /// The recorded exchange that answered.
    pub seq: u64,
    pub method: String,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    #[serde(serialize_with = "repr_name")]
    pub representation: Representation,
    pub differences: Vec<Difference>,
    /// The recorded request body (as stored: redacted), as text.
    pub recorded_body: String,
    /// The body the client sent, redacted, as text.
    pub received_body: String,
}

impl std::fmt::Display for NearMiss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.path)?;
        if let Some(q) = &self.query {
            write!(f, "?{q}")?;
        }
        write!(
            f,
            " ({}): served recorded #{} although the body differs",
            self.representation, self.seq
        )?;
        for d in &self.differences {
            let show = |v: &Option<Value>| match v {
                None => "(absent)".to_string(),
                Some(Value::String(s)) => format!("{s:?}"),
                Some(v) => v.to_string(),
            };
            write!(
                f,
                "\n      {}: recorded {}, received {}",
                d.place,
                show(&d.recorded),
                show(&d.received)
            )?;
        }
        Ok(())
    }
}

/// Body text for the report: UTF-8 (lossy), cut at [`MAX_BODY_TEXT`].
pub fn body_text(body: &[u8]) -> String {
    let cut = &body[..body.len().min(MAX_BODY_TEXT)];
    let mut text = String::from_utf8_lossy(cut).into_owned();
    if body.len() > MAX_BODY_TEXT {
        text.push_str(&format!("… ({} bytes in all)", body.len()));
    }
    text
}

/// Where two request bodies differ.
pub fn differences(
    opts: &KeyOptions,
    recorded_type: Option<&str>,
    recorded: &[u8],
    received_type: Option<&str>,
    received: &[u8],
) -> Vec<Difference> {
    let a = canonical_body(opts, recorded_type, recorded);
    let b = canonical_body(opts, received_type, received);
    let mut out = Vec::new();
    match (&a, &b) {
        (Some(("json", _)), Some(("json", _))) => {
            let parse = |bytes: &[u8]| {
                serde_json::from_slice::<Value>(crate::ucwa::media::strip_bom(bytes))
                    .map(|v| canonical_json(opts, &v))
                    .unwrap_or(Value::Null)
            };
            json(
                &parse(recorded),
                &parse(received),
                &mut String::new(),
                &mut out,
            );
        }
        (Some(("form", x)), Some(("form", y))) => form(x, y, &mut out),
        (Some((kx, x)), Some((ky, y))) if kx == ky && *kx != "bytes" => lines(x, y, &mut out),
        (Some(_), Some(_))
            if std::str::from_utf8(recorded).is_ok() && std::str::from_utf8(received).is_ok() =>
        {
            lines(recorded, received, &mut out)
        }
        _ => out.push(Difference {
            place: "body".into(),
            recorded: Some(Value::String(summary(recorded))),
            received: Some(Value::String(summary(received))),
        }),
    }
    if out.is_empty() {
        // Equal once canonical, but the key still differed (a placeholder's spelling, an
        // ignored field's absence): name the whole body rather than nothing.
        out.push(Difference {
            place: "body".into(),
            recorded: Some(Value::String(body_text(recorded))),
            received: Some(Value::String(body_text(received))),
        });
    }
    out.truncate(MAX_DIFFERENCES);
    out
}

fn summary(body: &[u8]) -> String {
    match std::str::from_utf8(body) {
        Ok("") => "(empty)".into(),
        Ok(text) => body_text(text.as_bytes()),
        Err(_) => format!("{} bytes of binary data", body.len()),
    }
}

fn push(
    out: &mut Vec<Difference>,
    place: String,
    recorded: Option<Value>,
    received: Option<Value>,
) {
    if out.len() < MAX_DIFFERENCES {
        out.push(Difference {
            place,
            recorded,
            received,
        });
    }
}

fn json(a: &Value, b: &Value, at: &mut String, out: &mut Vec<Difference>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let len = at.len();
                at.push('/');
                at.push_str(&k.replace('~', "~0").replace('/', "~1"));
                match (x.get(k), y.get(k)) {
                    (Some(p), Some(q)) => json(p, q, at, out),
                    (p, q) => push(out, at.clone(), p.cloned(), q.cloned()),
                }
                at.truncate(len);
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            for i in 0..x.len().max(y.len()) {
                let len = at.len();
                at.push_str(&format!("/{i}"));
                match (x.get(i), y.get(i)) {
                    (Some(p), Some(q)) => json(p, q, at, out),
                    (p, q) => push(out, at.clone(), p.cloned(), q.cloned()),
                }
                at.truncate(len);
            }
        }
        (p, q) if p == q => {}
        (p, q) => {
            let place = if at.is_empty() {
                "/".to_string()
            } else {
                at.clone()
            };
            push(out, place, Some(p.clone()), Some(q.clone()));
        }
    }
}

fn form(a: &[u8], b: &[u8], out: &mut Vec<Difference>) {
    let pairs = |bytes: &[u8]| -> Vec<(String, String)> {
        form_urlencoded::parse(bytes).into_owned().collect()
    };
    let (x, y) = (pairs(a), pairs(b));
    let names: std::collections::BTreeSet<&String> =
        x.iter().chain(y.iter()).map(|(n, _)| n).collect();
    for name in names {
        fn values<'a>(p: &'a [(String, String)], name: &str) -> Vec<&'a String> {
            p.iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| v)
                .collect()
        }
        let (vx, vy) = (values(&x, name), values(&y, name));
        if vx != vy {
            let as_value = |v: Vec<&String>| match v.len() {
                0 => None,
                1 => Some(Value::String(v[0].clone())),
                _ => Some(Value::Array(
                    v.into_iter().map(|s| Value::String(s.clone())).collect(),
                )),
            };
            push(
                out,
                format!("form field {name}"),
                as_value(vx),
                as_value(vy),
            );
        }
    }
}

fn lines(a: &[u8], b: &[u8], out: &mut Vec<Difference>) {
    let (x, y) = (String::from_utf8_lossy(a), String::from_utf8_lossy(b));
    let diff = similar::TextDiff::from_lines(x.as_ref(), y.as_ref());
    for op in diff.ops() {
        let (old, new) = (op.old_range(), op.new_range());
        if matches!(op.tag(), similar::DiffTag::Equal) {
            continue;
        }
        let pick = |text: &str, range: std::ops::Range<usize>| -> Option<Value> {
            let picked: Vec<&str> = text.lines().skip(range.start).take(range.len()).collect();
            (!picked.is_empty()).then(|| Value::String(picked.join("\n")))
        };
        let line = if new.is_empty() {
            old.start + 1
        } else {
            new.start + 1
        };
        push(out, format!("line {line}"), pick(&x, old), pick(&y, new));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: Option<&str> = Some("application/json");
    const FORM: Option<&str> = Some("application/x-www-form-urlencoded");
    const TEXT: Option<&str> = Some("text/plain");

    #[test]
    fn json_differences_are_pointers_and_ignored_ids_are_left_out() {
        let got = differences(
            &KeyOptions::default(),
            JSON,
            br#"{"UserAgent":"bot/1.0","EndpointId":"a","Culture":"en-US","x":{"a/b":[1,2]}}"#,
            JSON,
            br#"{"UserAgent":"bot/2.0","EndpointId":"b","x":{"a/b":[1]}}"#,
        );
        let places: Vec<&str> = got.iter().map(|d| d.place.as_str()).collect();
        assert_eq!(places, ["/Culture", "/UserAgent", "/x/a~1b/1"]);
        assert_eq!(got[0].received, None);
        assert_eq!(got[1].received, Some(Value::String("bot/2.0".into())));
    }

    #[test]
    fn form_fields_and_lines() {
        let got = differences(&KeyOptions::default(), FORM, b"a=1&b=2", FORM, b"b=3&a=1");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].place, "form field b");
        let got = differences(
            &KeyOptions::default(),
            TEXT,
            b"Hello from the flow",
            TEXT,
            b"Something else entirely",
        );
        assert_eq!(got[0].place, "line 1");
        assert_eq!(
            got[0].recorded,
            Some(Value::String("Hello from the flow".into()))
        );
        assert_eq!(
            got[0].received,
            Some(Value::String("Something else entirely".into()))
        );
    }
}
