//! Request bodies that differ only where the recording holds a redaction placeholder.
//!
//! The recorder stores request bodies after redaction (`password=REDACTED-2`), and their
//! match keys with them, while a client replaying the session sends its real secret again.
//! Such a request is the recorded one: a recorded value holding a `REDACTED-n` placeholder
//! matches any value sent in its place. Only form and JSON bodies are compared this way
//! (field by field, after the same canonicalisation as the match key).

use serde_json::Value;

use crate::recording::KeyOptions;
use crate::recording::key::canonical_body;

/// The marker every redaction placeholder carries.
const PLACEHOLDER: &str = "REDACTED-";

/// True when `incoming` equals `recorded` except where `recorded` holds a placeholder.
pub fn equal_but_secrets(
    opts: &KeyOptions,
    incoming_type: Option<&str>,
    incoming: &[u8],
    recorded_type: Option<&str>,
    recorded: &[u8],
) -> bool {
    let (Some((kind_a, a)), Some((kind_b, b))) = (
        canonical_body(opts, incoming_type, incoming),
        canonical_body(opts, recorded_type, recorded),
    ) else {
        return false;
    };
    if kind_a != kind_b {
        return false;
    }
    match kind_a {
        "form" => {
            let a: Vec<(String, String)> = form_urlencoded::parse(&a).into_owned().collect();
            let b: Vec<(String, String)> = form_urlencoded::parse(&b).into_owned().collect();
            a.len() == b.len()
                && a.iter()
                    .zip(&b)
                    .all(|((na, va), (nb, vb))| na == nb && (va == vb || vb.contains(PLACEHOLDER)))
        }
        "json" => match (
            serde_json::from_slice::<Value>(&a),
            serde_json::from_slice::<Value>(&b),
        ) {
            (Ok(a), Ok(b)) => json_equal(&a, &b),
            _ => false,
        },
        _ => false,
    }
}

fn json_equal(incoming: &Value, recorded: &Value) -> bool {
    match (incoming, recorded) {
        (_, Value::String(r)) if r.contains(PLACEHOLDER) => true,
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(k, v)| b.get(k).is_some_and(|r| json_equal(v, r)))
        }
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| json_equal(x, y))
        }
        (a, b) => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORM: Option<&str> = Some("application/x-www-form-urlencoded");
    const JSON: Option<&str> = Some("application/json");

    #[test]
    fn placeholders_match_any_value_and_nothing_else_does() {
        let opts = KeyOptions::default();
        let recorded = b"grant_type=password&username=alice%40contoso.com&password=REDACTED-2";
        assert!(equal_but_secrets(
            &opts,
            FORM,
            b"password=Pa55w0rd%21&grant_type=password&username=alice%40contoso.com",
            FORM,
            recorded
        ));
        assert!(!equal_but_secrets(
            &opts,
            FORM,
            b"grant_type=password&username=bob%40contoso.com&password=x",
            FORM,
            recorded
        ));
        assert!(equal_but_secrets(
            &opts,
            JSON,
            br#"{"user":"a","secret":{"v":"s3cret"}}"#,
            JSON,
            br#"{"user":"a","secret":{"v":"REDACTED-4"}}"#
        ));
        assert!(!equal_but_secrets(
            &opts,
            JSON,
            br#"{"user":"b","secret":"x"}"#,
            JSON,
            br#"{"user":"a","secret":"REDACTED-4"}"#
        ));
        assert!(!equal_but_secrets(&opts, None, b"", None, b""));
    }
}
