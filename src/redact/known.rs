//! Secrets remembered for the rest of a session: a password seen in the token request is
//! replaced wherever it shows up again, in one pass over each text.

use std::collections::HashMap;

use serde_json::Value;

use super::MIN_GLOBAL_LEN;

/// The secrets remembered for the rest of a session, indexed by their first
/// [`MIN_GLOBAL_LEN`] bytes so that one pass over a text finds them all (no regex to
/// recompile whenever a secret is added).
#[derive(Debug, Clone, Default)]
pub(super) struct KnownSecrets {
    /// First bytes → (secret, replacement), longest secret first.
    by_prefix: HashMap<[u8; MIN_GLOBAL_LEN], Vec<(Vec<u8>, String)>>,
    /// Bytes that start some secret.
    first: Vec<bool>,
    pub(super) len: usize,
}

impl KnownSecrets {
    fn prefix(raw: &[u8]) -> Option<[u8; MIN_GLOBAL_LEN]> {
        raw.get(..MIN_GLOBAL_LEN)?.try_into().ok()
    }

    /// Whether `raw` is remembered already.
    pub(super) fn contains(&self, raw: &[u8]) -> bool {
        Self::prefix(raw)
            .and_then(|prefix| self.by_prefix.get(&prefix))
            .is_some_and(|bucket| bucket.iter().any(|(k, _)| k == raw))
    }

    pub(super) fn insert(&mut self, raw: &[u8], replacement: &str) {
        let Some(prefix) = Self::prefix(raw) else {
            return;
        };
        let bucket = self.by_prefix.entry(prefix).or_default();
        if bucket.iter().any(|(k, _)| k == raw) {
            return;
        }
        bucket.push((raw.to_vec(), replacement.to_string()));
        bucket.sort_by_key(|k| std::cmp::Reverse(k.0.len()));
        if self.first.is_empty() {
            self.first = vec![false; 256];
        }
        self.first[raw[0] as usize] = true;
        self.len += 1;
    }

    /// `text` with every secret replaced, or None when none occurs.
    pub(super) fn replace(&self, text: &[u8]) -> Option<Vec<u8>> {
        if self.len == 0 {
            return None;
        }
        let mut out: Option<Vec<u8>> = None;
        let mut copied = 0;
        let mut i = 0;
        while i + MIN_GLOBAL_LEN <= text.len() {
            if self.first[text[i] as usize]
                && let Some(prefix) = Self::prefix(&text[i..])
                && let Some(bucket) = self.by_prefix.get(&prefix)
                && let Some((raw, replacement)) =
                    bucket.iter().find(|(raw, _)| text[i..].starts_with(raw))
            {
                let o = out.get_or_insert_with(|| Vec::with_capacity(text.len()));
                o.extend_from_slice(&text[copied..i]);
                o.extend_from_slice(replacement.as_bytes());
                i += raw.len();
                copied = i;
                continue;
            }
            i += 1;
        }
        let mut out = out?;
        out.extend_from_slice(&text[copied..]);
        Some(out)
    }

    /// [`replace`](Self::replace) for a text that may be JSON. A secret holding JSON syntax
    /// (a remembered password with a `"` in it) can match across the end of a string and
    /// break the document; when the plain pass turns valid JSON into invalid JSON, the
    /// secrets are replaced inside its decoded strings instead, and the document written
    /// again (the only case where a body's layout changes).
    pub(super) fn replace_keeping_json(&self, text: &[u8]) -> Option<Vec<u8>> {
        let out = self.replace(text)?;
        if serde_json::from_slice::<serde::de::IgnoredAny>(&out).is_ok() {
            return Some(out);
        }
        let Ok(mut value) = serde_json::from_slice::<Value>(text) else {
            return Some(out);
        };
        self.replace_in_value(&mut value);
        let written = if text.contains(&b'\n') {
            serde_json::to_vec_pretty(&value)
        } else {
            serde_json::to_vec(&value)
        };
        Some(written.unwrap_or(out))
    }

    fn replace_in_value(&self, value: &mut Value) {
        let swap = |s: &str| {
            self.replace(s.as_bytes())
                .map(|b| String::from_utf8_lossy(&b).into_owned())
        };
        match value {
            Value::String(s) => {
                if let Some(new) = swap(s) {
                    *s = new;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.replace_in_value(v)),
            Value::Object(map) => {
                let fields = std::mem::take(map);
                for (k, mut v) in fields {
                    self.replace_in_value(&mut v);
                    map.insert(swap(&k).unwrap_or(k), v);
                }
            }
            _ => {}
        }
    }
}
