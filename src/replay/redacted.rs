//! Requests that differ only where the recording holds a redaction placeholder.
//!
//! The recorder stores requests after redaction (`password=REDACTED-2`,
//! `?anonymousContext=psat=REDACTED-4`), and their match keys with them, while a client
//! replaying the session sends its real secret again. The replayer redacts what it receives
//! with the default rules first, which turns most secrets into placeholders that match; what
//! is left (a secret only a `--redact-field` or `--redact-regex` found when recording) is
//! compared here: a recorded value holding a `REDACTED-n` placeholder matches any value sent
//! in its place, the text around the placeholder included (`cwt=REDACTED-1` matches
//! `cwt=AAEB…`, not `psat=…`). Form and JSON bodies are compared field by field after the
//! same canonicalisation as the match key, queries pair by pair.

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
                    .all(|((na, va), (nb, vb))| na == nb && value_matches(vb, va))
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
        (Value::String(a), Value::String(r)) if r.contains(PLACEHOLDER) => value_matches(r, a),
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

/// True when `incoming` equals `recorded`, a placeholder in `recorded` standing for any
/// non-empty text (`jwt:REDACTED-3` for a whole JWT).
pub fn value_matches(recorded: &str, incoming: &str) -> bool {
    if !recorded.contains(PLACEHOLDER) {
        return recorded == incoming;
    }
    static SPLIT: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"(?:jwt:)?REDACTED-[0-9]+").expect("static regex")
    });
    let pattern: Vec<String> = SPLIT.split(recorded).map(regex::escape).collect();
    regex::Regex::new(&format!("^(?s:{})$", pattern.join(".+")))
        .is_ok_and(|re| re.is_match(incoming))
}

/// True when two queries hold the same parameters (in any order, events-feed tuning
/// parameters left out), values equal except where `recorded` holds a placeholder.
/// Values are compared percent-decoded.
pub fn query_equal_but_secrets(recorded: Option<&str>, incoming: Option<&str>) -> bool {
    let pairs = |q: Option<&str>| -> Vec<(String, String)> {
        let mut p: Vec<(String, String)> = form_urlencoded::parse(q.unwrap_or("").as_bytes())
            .into_owned()
            .filter(|(k, _)| {
                !crate::recording::key::FEED_TUNING_PARAMS
                    .iter()
                    .any(|t| t.eq_ignore_ascii_case(k))
            })
            .collect();
        p.sort();
        p
    };
    let (r, i) = (pairs(recorded), pairs(incoming));
    if r.len() != i.len() || !recorded.is_some_and(|q| q.contains(PLACEHOLDER)) {
        return false;
    }
    // Sorted by name, then value: a placeholder value sorts apart from the real one, so
    // compare by name groups in order.
    let mut used = vec![false; i.len()];
    r.iter().all(|(rn, rv)| {
        let found = i
            .iter()
            .enumerate()
            .find(|(k, (n, v))| !used[*k] && n == rn && value_matches(rv, v))
            .map(|(k, _)| k);
        if let Some(k) = found {
            used[k] = true;
        }
        found.is_some()
    })
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

    #[test]
    fn placeholders_in_urls_match_any_value_in_their_place() {
        assert!(value_matches("cwt=REDACTED-1", "cwt=AAEBxyz"));
        assert!(!value_matches("cwt=REDACTED-1", "psat=AAEBxyz"));
        assert!(value_matches("jwt:REDACTED-3", "eyJ0.eyJ1.sig"));
        assert!(!value_matches("a", "b"));
        assert!(query_equal_but_secrets(
            Some("anonymousContext=psat%3DREDACTED-4&x=1"),
            Some("x=1&anonymousContext=psat%3DAAEBsecret&timeout=900")
        ));
        assert!(query_equal_but_secrets(
            Some("access_token=REDACTED-2"),
            Some("access_token=eyJhbGciOi")
        ));
        assert!(!query_equal_but_secrets(
            Some("access_token=REDACTED-2&x=1"),
            Some("access_token=t&x=2")
        ));
        assert!(
            !query_equal_but_secrets(Some("x=1"), Some("x=1")),
            "no placeholder: not this rule"
        );
    }
}
