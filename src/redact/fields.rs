//! The structure passes: secrets found by where they sit (an `Authorization` header, a
//! cookie value, a `password` form field, an `access_token` JSON member, an XML
//! `<property name="password">`), replaced with the bytes around them kept.

use std::collections::HashMap;

use regex::bytes::Captures;
use serde_json::Value;

use super::{Redactor, is_personal, is_placeholder, normalise};
use crate::ucwa::media::strip_bom;

impl Redactor {
    pub(super) fn redact_headers(&self, headers: &mut [(String, Vec<u8>)]) {
        for (name, value) in headers.iter_mut() {
            if !self.is_secret_header(name) {
                continue;
            }
            let lname = name.to_ascii_lowercase();
            let Ok(text) = std::str::from_utf8(value) else {
                if self.headers.contains(&lname) || lname == "cookie" || lname == "set-cookie" {
                    let hidden = self.placeholder(&normalise(value));
                    *value = hidden.into_bytes();
                }
                continue;
            };
            let new = match lname.as_str() {
                "authorization" | "proxy-authorization" => self.redact_authorization(text),
                "cookie" => self.redact_cookie(text, false),
                "set-cookie" => self.redact_cookie(text, true),
                _ if self.headers.contains(&lname) => self.redact_value(text),
                _ => continue,
            };
            *value = new.into_bytes();
        }
    }

    /// `Scheme credentials` → `Scheme cwt=REDACTED-1` / `Scheme jwt:REDACTED-3` /
    /// `Scheme REDACTED-4`. Several comma-separated credentials are handled one by one.
    pub(super) fn redact_authorization(&self, text: &str) -> String {
        let trimmed = text.trim();
        match trimmed.split_once(char::is_whitespace) {
            Some((scheme, creds)) if !creds.trim().is_empty() => {
                format!("{scheme} {}", self.redact_value(creds.trim()))
            }
            _ => self.redact_value(trimmed),
        }
    }

    /// Cookie values hidden, names and attributes kept.
    pub(super) fn redact_cookie(&self, text: &str, set_cookie: bool) -> String {
        let mut out = Vec::new();
        for (i, part) in text.split(';').enumerate() {
            if set_cookie && i > 0 {
                out.push(part.to_string());
                continue;
            }
            match part.split_once('=') {
                Some((name, value)) if !value.trim().is_empty() => {
                    out.push(format!("{name}={}", self.redact_value(value.trim())));
                }
                _ => out.push(part.to_string()),
            }
        }
        out.join(";")
    }

    pub(super) fn redact_body(&self, content_type: Option<&str>, body: &mut Vec<u8>) {
        if body.is_empty() {
            return;
        }
        match body_route(content_type, body) {
            // Parsed only when a secret field could be there (`numbering::json_may_hold`).
            BodyRoute::Json if self.json_may_hold(body) => self.redact_json(body),
            BodyRoute::Xml => self.redact_xml(body),
            BodyRoute::Form if self.form_may_hold(body) => {
                if let Some(out) = self.redact_form(body) {
                    *body = out;
                }
            }
            _ => {}
        }
    }

    /// Form fields by name; the raw percent-encoded spelling of the rest is kept. The doc
    /// samples' `&amp;` separators are understood too.
    pub(super) fn redact_form(&self, body: &[u8]) -> Option<Vec<u8>> {
        let mut changed = false;
        let parts: Vec<Vec<u8>> = body
            .split(|b| *b == b'&')
            .map(|pair| {
                let Some(eq) = pair.iter().position(|b| *b == b'=') else {
                    return pair.to_vec();
                };
                let (raw_name, raw_value) = (&pair[..eq], &pair[eq + 1..]);
                let name: String = form_urlencoded::parse(raw_name)
                    .map(|(k, v)| format!("{k}{v}"))
                    .collect();
                let key = name
                    .strip_prefix("amp;")
                    .unwrap_or(&name)
                    .to_ascii_lowercase();
                if raw_value.is_empty() || !self.form_fields.contains(&key) {
                    return pair.to_vec();
                }
                let mut raw = b"x=".to_vec();
                raw.extend_from_slice(raw_value);
                let value: String = form_urlencoded::parse(&raw)
                    .map(|(_, v)| v.into_owned())
                    .collect();
                let remember = !is_personal(&key);
                let hidden = self.redact_value_as(&value, remember);
                // Also remember the raw spelling, so that it goes wherever it appears.
                if remember
                    && let Ok(raw_text) = std::str::from_utf8(raw_value)
                    && raw_text != value
                {
                    self.remember(raw_value, &hidden);
                }
                changed = true;
                let mut out = raw_name.to_vec();
                out.push(b'=');
                out.extend(form_urlencoded::byte_serialize(hidden.as_bytes()).flat_map(str::bytes));
                out
            })
            .collect();
        changed.then(|| parts.join(&b'&'))
    }

    /// JSON fields by name at any depth: the string literals holding the secret values are
    /// substituted in the text; should that ever miss (a number, say), the document is
    /// re-serialised.
    pub(super) fn redact_json(&self, body: &mut Vec<u8>) {
        let text = strip_bom(body);
        let Ok(mut value) = serde_json::from_slice::<Value>(text) else {
            return;
        };
        let mut secrets = Vec::new();
        self.collect_json(&mut value, &mut secrets);
        if secrets.is_empty() {
            return;
        }
        // Substitute the string literals whose decoded value is a secret, whatever escapes
        // they were written with; every other byte stays.
        let lookup: HashMap<&str, &str> = secrets
            .iter()
            .map(|(raw, hidden)| (raw.as_str(), hidden.as_str()))
            .collect();
        let out = substitute_json_strings(body, &lookup);
        let stripped = strip_bom(&out);
        let complete = serde_json::from_slice::<Value>(stripped).is_ok_and(|v| v == value);
        *body = if complete {
            out
        } else {
            let mut bytes = if body.starts_with(b"\xEF\xBB\xBF") {
                b"\xEF\xBB\xBF".to_vec()
            } else {
                Vec::new()
            };
            bytes.extend(serde_json::to_vec(&value).unwrap_or_default());
            bytes
        };
    }

    pub(super) fn collect_json(&self, value: &mut Value, secrets: &mut Vec<(String, String)>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    let secret = self.json_fields.contains(&k.to_ascii_lowercase());
                    match v {
                        Value::String(s)
                            if secret && !s.trim().is_empty() && !is_placeholder(s) =>
                        {
                            let hidden = self.redact_value_as(s, !is_personal(k));
                            secrets.push((s.clone(), hidden.clone()));
                            *s = hidden;
                        }
                        Value::Number(n) if secret => {
                            // Not remembered for the text pass: a bare number swapped for a
                            // placeholder elsewhere would break JSON (and unrelated digits).
                            // Listed so that the document is re-serialised: the literal
                            // substitution only reaches strings.
                            let raw = n.to_string();
                            let hidden = self.redact_value_as(&raw, false);
                            secrets.push((raw, hidden.clone()));
                            *v = Value::String(hidden);
                        }
                        _ => self.collect_json(v, secrets),
                    }
                }
            }
            Value::Array(items) => {
                for v in items {
                    self.collect_json(v, secrets);
                }
            }
            _ => {}
        }
    }

    /// `<property name="password">…</property>` (and every other secret field name).
    pub(super) fn redact_xml(&self, body: &mut Vec<u8>) {
        if !self.xml_property.is_match(body) {
            return;
        }
        let out = self.xml_property.replace_all(body, |c: &Captures<'_>| {
            let open = c.get(1).map_or(&b""[..], |m| m.as_bytes());
            let name = String::from_utf8_lossy(c.get(2).map_or(&b""[..], |m| m.as_bytes()));
            let value = c.get(3).map_or(&b""[..], |m| m.as_bytes());
            let close = c.get(4).map_or(&b""[..], |m| m.as_bytes());
            let remember = !is_personal(&name);
            let text = String::from_utf8_lossy(value);
            let hidden = if text.trim().is_empty() {
                text.into_owned()
            } else {
                let unescaped = text
                    .replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&quot;", "\"")
                    .replace("&apos;", "'")
                    .replace("&amp;", "&");
                let hidden = self.redact_value_as(&unescaped, remember);
                if remember {
                    self.remember(value, &hidden);
                }
                hidden
            };
            let mut v = open.to_vec();
            v.extend_from_slice(hidden.as_bytes());
            v.extend_from_slice(close);
            v
        });
        *body = out.into_owned();
    }
}

/// Which structure pass a body goes through: by its content type, else by its first byte
/// (JSON, XML), else by its look (a form).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BodyRoute {
    Json,
    Xml,
    Form,
    None,
}

pub(super) fn body_route(content_type: Option<&str>, body: &[u8]) -> BodyRoute {
    let ct = content_type.unwrap_or("");
    let has = |needle: &str| {
        ct.as_bytes()
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
    };
    let first = crate::ucwa::media::first_significant_byte(body);
    if has("json") || matches!(first, Some(b'{') | Some(b'[')) {
        BodyRoute::Json
    } else if has("xml") || first == Some(b'<') {
        BodyRoute::Xml
    } else if has("x-www-form-urlencoded") || looks_like_form(body) {
        BodyRoute::Form
    } else {
        BodyRoute::None
    }
}

pub(crate) fn looks_like_form(body: &[u8]) -> bool {
    body.len() < 64 * 1024
        && body.contains(&b'=')
        && body
            .iter()
            .all(|b| b.is_ascii_graphic() && *b != b'<' && *b != b'{' && *b != b'"')
}

/// Replace every JSON string literal of `raw` whose decoded value is a key of `secrets` by
/// the JSON spelling of its replacement.
fn substitute_json_strings(raw: &[u8], secrets: &HashMap<&str, &str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] != b'"' {
            out.push(raw[i]);
            i += 1;
            continue;
        }
        // Find the closing quote.
        let start = i;
        let mut j = i + 1;
        while j < raw.len() && raw[j] != b'"' {
            j += if raw[j] == b'\\' { 2 } else { 1 };
        }
        let end = (j + 1).min(raw.len());
        let literal = &raw[start..end];
        let replacement = serde_json::from_slice::<String>(literal)
            .ok()
            .and_then(|s| secrets.get(s.as_str()).copied())
            .and_then(|hidden| serde_json::to_string(hidden).ok());
        match replacement {
            Some(r) => out.extend_from_slice(r.as_bytes()),
            None => out.extend_from_slice(literal),
        }
        i = end;
    }
    out
}
