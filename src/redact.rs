//! Redaction: every secret of PROTOCOL.md §6 is replaced before an exchange is stored.
//!
//! # Placeholders
//! Each distinct secret value of a session gets a number, allocated in order of first sight,
//! and is replaced by a placeholder that keeps the scheme word and the token kind readable:
//!
//! | secret | stored as |
//! | --- | --- |
//! | `Authorization: Bearer cwt=AAEB…` | `Bearer cwt=REDACTED-1` |
//! | `Authorization: Bearer psat=…` | `Bearer psat=REDACTED-2` |
//! | `Authorization: Bearer eyJ….eyJ….sig` (a JWT) | `Bearer jwt:REDACTED-3` |
//! | `Authorization: Basic dXNlcjpwdw==` (any other scheme / opaque token) | `Basic REDACTED-4` |
//! | `Cookie: cwt_ucwa=AAEB…; other=x` | `Cookie: cwt_ucwa=REDACTED-5; other=REDACTED-6` |
//! | `Set-Cookie: cwt_ucwa=AAEB…; path=/…; secure` | `Set-Cookie: cwt_ucwa=REDACTED-5; path=/…; secure` |
//! | `X-Ms-WebTicket: cwt=…` / opaque | `cwt=REDACTED-1` / `REDACTED-7` |
//! | form / JSON / XML-`<property>` field `password=hunter22` | `password=REDACTED-8` |
//! | `cwt=` / `psat=` (also `cwt%3d`) anywhere (URL, query, any header, any body) | `cwt=REDACTED-1` |
//! | a JWT anywhere | `jwt:REDACTED-3` |
//! | a `--redact-regex` match (capture group 1 if the regex has one, else the whole match) | `REDACTED-9` |
//!
//! The number is the same wherever the same secret appears in the session: the `access_token`
//! `cwt=XYZ` of the token response and the `Bearer cwt=XYZ` of every later request both become
//! `cwt=REDACTED-1`, so at replay the client receives `cwt=REDACTED-1` as its token and then
//! sends `Bearer cwt=REDACTED-1`, which matches the recording. Token values are compared after
//! undoing percent-encoding and JSON `\/` escapes.
//!
//! A secret found by field or header name (a password, an opaque cookie or ticket) is also
//! remembered for the rest of the session and replaced wherever it appears again in later
//! exchanges (when at least [`MIN_GLOBAL_LEN`] bytes long, so that a one-letter value does not
//! wipe out unrelated text). A `username` ([`PERSONAL_FIELDS`]) is personal data, not a
//! secret: it is hidden where it is a field (the token POST) but not searched for elsewhere,
//! so the SIP URIs in hrefs stay as the server wrote them.
//!
//! # Defaults
//! Headers: [`DEFAULT_HEADERS`] (plus `Cookie` and `Set-Cookie`, handled per cookie).
//! Form fields: [`DEFAULT_FORM_FIELDS`]. JSON fields and XML `<property name>`s:
//! [`DEFAULT_JSON_FIELDS`] (`code` is a form field only: UCWA error bodies use `code`).
//! Users add header names, field names (JSON, form and XML alike) and regexes.
//!
//! Bodies are rewritten as byte substitution where possible (JSON key order, whitespace and
//! escapes stay as they were); a JSON body whose escapes defeat substitution is re-serialised.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use regex::bytes::{Captures, Regex};
use serde_json::Value;

use crate::store::{Exchange, HeaderList};
use crate::ucwa::media::strip_bom;

/// Header names whose whole value is a secret (compared case-insensitively).
pub const DEFAULT_HEADERS: &[&str] = &["authorization", "proxy-authorization", "x-ms-webticket"];

/// Form fields redacted by default (the token POST and its variants).
pub const DEFAULT_FORM_FIELDS: &[&str] = &[
    "password",
    "username",
    "client_secret",
    "ms_rtc_renew",
    "code",
    "access_token",
    "refresh_token",
    "id_token",
    "assertion",
    "client_assertion",
];

/// JSON fields (at any depth) and XML `<property name>`s redacted by default.
pub const DEFAULT_JSON_FIELDS: &[&str] = &[
    "access_token",
    "refresh_token",
    "id_token",
    "password",
    "username",
    "client_secret",
    "ms_rtc_renew",
    "assertion",
    "client_assertion",
];

/// Shortest secret (in bytes) that is also replaced wherever it appears later in the session.
pub const MIN_GLOBAL_LEN: usize = 4;

/// The prefix of every placeholder's number (`REDACTED-1`).
pub const PLACEHOLDER_PREFIX: &str = "REDACTED-";

/// What to redact beyond the defaults.
#[derive(Debug, Clone, Default)]
pub struct RedactConfig {
    /// Extra header names (`--redact-header`).
    pub headers: Vec<String>,
    /// Extra JSON / form field names (`--redact-field`).
    pub fields: Vec<String>,
    /// Extra regexes (`--redact-regex`).
    pub regexes: Vec<String>,
}

/// Redacts exchanges of one session; shared by all its connections.
#[derive(Debug)]
pub struct Redactor {
    headers: Vec<String>,
    form_fields: Vec<String>,
    json_fields: Vec<String>,
    xml_property: Regex,
    user_regexes: Vec<Regex>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Normalised secret value → placeholder number.
    numbers: HashMap<String, u32>,
    /// Secrets replaced wherever they appear (copy-on-write: scans run without the lock).
    known: Arc<KnownSecrets>,
    /// Placeholders of the distinct `Authorization` credentials seen.
    credentials: std::collections::BTreeSet<String>,
}

/// Most secrets remembered for replacement in later exchanges (a bound on memory and time).
const MAX_KNOWN: usize = 4096;

/// The secrets remembered for the rest of a session, indexed by their first
/// [`MIN_GLOBAL_LEN`] bytes so that one pass over a text finds them all (no regex to
/// recompile whenever a secret is added).
#[derive(Debug, Clone, Default)]
struct KnownSecrets {
    /// First bytes → (secret, replacement), longest secret first.
    by_prefix: HashMap<[u8; MIN_GLOBAL_LEN], Vec<(Vec<u8>, String)>>,
    /// Bytes that start some secret.
    first: Vec<bool>,
    len: usize,
}

impl KnownSecrets {
    fn prefix(raw: &[u8]) -> Option<[u8; MIN_GLOBAL_LEN]> {
        raw.get(..MIN_GLOBAL_LEN)?.try_into().ok()
    }

    fn insert(&mut self, raw: &[u8], replacement: &str) {
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
    fn replace(&self, text: &[u8]) -> Option<Vec<u8>> {
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
}

/// The token regexes (`cwt=`, `psat=`, JWTs).
fn token_re() -> &'static Regex {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"(?-u)(?i:\b(cwt|psat)(=|%3d))((?:[A-Za-z0-9\-_.~+/%=]|\\/)+)|\b(eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*)",
        )
        .expect("static regex")
    })
}

fn placeholder_re() -> &'static Regex {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| Regex::new(r"REDACTED-[0-9]+").expect("static regex"))
}

impl Redactor {
    /// Build from a configuration (an invalid regex is an input error).
    pub fn new(config: &RedactConfig) -> crate::Result<Self> {
        let lower = |v: &[&str]| v.iter().map(|s| s.to_ascii_lowercase()).collect::<Vec<_>>();
        let mut headers = lower(DEFAULT_HEADERS);
        let mut form_fields = lower(DEFAULT_FORM_FIELDS);
        let mut json_fields = lower(DEFAULT_JSON_FIELDS);
        for h in &config.headers {
            let h = h.trim().to_ascii_lowercase();
            if h.is_empty() {
                return Err(crate::Error::invalid(
                    "--redact-header",
                    "empty header name",
                ));
            }
            headers.push(h);
        }
        for f in &config.fields {
            if f.is_empty() {
                return Err(crate::Error::invalid("--redact-field", "empty field name"));
            }
            form_fields.push(f.to_ascii_lowercase());
            json_fields.push(f.to_ascii_lowercase());
        }
        let names = json_fields
            .iter()
            .map(|f| regex::escape(f))
            .collect::<Vec<_>>()
            .join("|");
        let xml_property = Regex::new(&format!(
            r#"(?i)(<property\s+name\s*=\s*["']({names})["']\s*>)([^<]*)(</property>)"#
        ))
        .map_err(|e| crate::Error::invalid("--redact-field", e))?;
        let user_regexes = config
            .regexes
            .iter()
            .map(|r| Regex::new(r).map_err(|e| crate::Error::invalid("--redact-regex", e)))
            .collect::<crate::Result<Vec<_>>>()?;
        Ok(Redactor {
            headers,
            form_fields,
            json_fields,
            xml_property,
            user_regexes,
            state: Mutex::new(State::default()),
        })
    }

    /// How many distinct `Authorization` credentials (users, tokens) this session has seen so
    /// far: more than one means the credential should be part of the match key.
    pub fn credentials_seen(&self) -> usize {
        self.lock().credentials.len()
    }

    /// How many distinct secret values of any kind this session has seen so far.
    pub fn secrets_seen(&self) -> usize {
        self.lock().numbers.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the map inconsistent: keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The placeholder (`REDACTED-n`) of a secret value; the same value always gets the same
    /// number. Values that already are placeholders are returned unchanged.
    pub fn placeholder(&self, secret: &str) -> String {
        if is_placeholder(secret) {
            return secret.to_string();
        }
        let mut state = self.lock();
        let next = state.numbers.len() as u32 + 1;
        let n = *state.numbers.entry(secret.to_string()).or_insert(next);
        format!("{PLACEHOLDER_PREFIX}{n}")
    }

    /// The redacted form of a whole secret value: `cwt=REDACTED-1`, `jwt:REDACTED-3`,
    /// `REDACTED-7`. Remembers the value for later exchanges.
    fn redact_value(&self, value: &str) -> String {
        self.redact_value_as(value, true)
    }

    /// [`Self::redact_value`], optionally without remembering the value for later exchanges
    /// (personal data such as a username is hidden where it is a field, not everywhere).
    fn redact_value_as(&self, value: &str, remember: bool) -> String {
        let value = value.trim();
        if value.is_empty() || is_placeholder(value) {
            return value.to_string();
        }
        if let Some(c) = token_re().captures(value.as_bytes())
            && c.get(0)
                .is_some_and(|m| m.start() == 0 && m.end() == value.len())
        {
            let out = self.token_replacement(&c);
            if remember {
                self.remember(value.as_bytes(), &out);
            }
            return out;
        }
        let out = self.placeholder(&normalise(value.as_bytes()));
        if !remember {
            return out;
        }
        self.remember(value.as_bytes(), &out);
        // The percent-encoded and JSON-escaped spellings of the same value.
        let encoded: String = form_urlencoded::byte_serialize(value.as_bytes()).collect();
        if encoded != value {
            self.remember(encoded.as_bytes(), &out);
        }
        if let Ok(json) = serde_json::to_string(value) {
            let inner = &json[1..json.len() - 1];
            if inner != value {
                self.remember(inner.as_bytes(), &out);
            }
        }
        out
    }

    fn remember(&self, raw: &[u8], replacement: &str) {
        if raw.len() < MIN_GLOBAL_LEN || raw == replacement.as_bytes() {
            return;
        }
        let mut state = self.lock();
        if state.known.len >= MAX_KNOWN {
            return;
        }
        Arc::make_mut(&mut state.known).insert(raw, replacement);
    }

    /// The replacement of one token-regex match.
    fn token_replacement(&self, c: &Captures<'_>) -> String {
        if let (Some(kind), Some(sep), Some(tok)) = (c.get(1), c.get(2), c.get(3)) {
            let kind = String::from_utf8_lossy(kind.as_bytes());
            let sep = String::from_utf8_lossy(sep.as_bytes());
            let tok = tok.as_bytes();
            if tok.starts_with(PLACEHOLDER_PREFIX.as_bytes()) {
                return format!("{kind}{sep}{}", String::from_utf8_lossy(tok));
            }
            return format!("{kind}{sep}{}", self.placeholder(&normalise(tok)));
        }
        match c.get(4) {
            Some(jwt) => format!("jwt:{}", self.placeholder(&normalise(jwt.as_bytes()))),
            None => String::new(),
        }
    }

    /// Replace `cwt=`/`psat=` tokens and JWTs in `text`.
    fn redact_tokens(&self, text: &[u8]) -> Option<Vec<u8>> {
        let re = token_re();
        if !re.is_match(text) {
            return None;
        }
        let out = re.replace_all(text, |c: &Captures<'_>| {
            self.token_replacement(c).into_bytes()
        });
        (out.as_ref() != text).then(|| out.into_owned())
    }

    /// Every text pass over a piece of bytes: tokens, known secrets, user regexes.
    fn redact_text(&self, text: &mut Vec<u8>) {
        if let Some(out) = self.redact_tokens(text) {
            *text = out;
        }
        let known = self.lock().known.clone();
        if let Some(out) = known.replace(text) {
            *text = out;
        }
        for re in &self.user_regexes {
            if !re.is_match(text) {
                continue;
            }
            let out = re.replace_all(text, |c: &Captures<'_>| {
                let whole = c.get(0).map_or(&b""[..], |m| m.as_bytes());
                let Some(g) = c.get(1) else {
                    return self.placeholder(&normalise(whole)).into_bytes();
                };
                let start = g.start() - c.get(0).map_or(0, |m| m.start());
                let mut v = whole[..start].to_vec();
                v.extend_from_slice(self.placeholder(&normalise(g.as_bytes())).as_bytes());
                v.extend_from_slice(&whole[start + g.len()..]);
                v
            });
            *text = out.into_owned();
        }
    }

    fn redact_string(&self, s: &mut String) {
        let mut bytes = std::mem::take(s).into_bytes();
        self.redact_text(&mut bytes);
        *s = String::from_utf8_lossy(&bytes).into_owned();
    }

    /// Redact an exchange in place, before it is stored; sets `credential`.
    pub fn redact_exchange(&self, exchange: &mut Exchange) {
        // 1. Structure: headers, form fields, JSON fields, XML properties.
        self.redact_headers(&mut exchange.request_headers);
        self.redact_headers(&mut exchange.response_headers);
        let req_ct = exchange
            .request_headers
            .get("content-type")
            .map(str::to_owned);
        let resp_ct = exchange
            .response_headers
            .get("content-type")
            .map(str::to_owned);
        self.redact_body(req_ct.as_deref(), &mut exchange.request_body);
        self.redact_body(resp_ct.as_deref(), &mut exchange.response_body);
        if let Some(q) = &exchange.query
            && let Some(out) = self.redact_form(q.as_bytes())
        {
            exchange.query = Some(String::from_utf8_lossy(&out).into_owned());
        }
        // 2. Text: tokens anywhere, secrets seen before, user regexes.
        self.redact_string(&mut exchange.path);
        if let Some(q) = exchange.query.as_mut() {
            self.redact_string(q);
        }
        for (_, v) in exchange.request_headers.0.iter_mut() {
            self.redact_text(v);
        }
        for (_, v) in exchange.response_headers.0.iter_mut() {
            self.redact_text(v);
        }
        self.redact_text(&mut exchange.request_body);
        self.redact_text(&mut exchange.response_body);
        if let Some(err) = exchange.error.as_mut() {
            self.redact_string(err);
        }
        exchange.credential = exchange
            .request_headers
            .get("authorization")
            .and_then(|v| placeholder_re().find(v.as_bytes()))
            .map(|m| String::from_utf8_lossy(m.as_bytes()).into_owned());
        if let Some(c) = &exchange.credential {
            self.lock().credentials.insert(c.clone());
        }
    }

    fn redact_headers(&self, headers: &mut HeaderList) {
        for (name, value) in headers.0.iter_mut() {
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
    fn redact_authorization(&self, text: &str) -> String {
        let trimmed = text.trim();
        match trimmed.split_once(char::is_whitespace) {
            Some((scheme, creds)) if !creds.trim().is_empty() => {
                format!("{scheme} {}", self.redact_value(creds.trim()))
            }
            _ => self.redact_value(trimmed),
        }
    }

    /// Cookie values hidden, names and attributes kept.
    fn redact_cookie(&self, text: &str, set_cookie: bool) -> String {
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

    fn redact_body(&self, content_type: Option<&str>, body: &mut Vec<u8>) {
        if body.is_empty() {
            return;
        }
        let ct = content_type.unwrap_or("").to_ascii_lowercase();
        let first = crate::ucwa::media::first_significant_byte(body);
        if ct.contains("json") || matches!(first, Some(b'{') | Some(b'[')) {
            self.redact_json(body);
        } else if ct.contains("xml") || first == Some(b'<') {
            self.redact_xml(body);
        } else if (ct.contains("x-www-form-urlencoded") || looks_like_form(body))
            && let Some(out) = self.redact_form(body)
        {
            *body = out;
        }
    }

    /// Form fields by name; the raw percent-encoded spelling of the rest is kept. The doc
    /// samples' `&amp;` separators are understood too.
    fn redact_form(&self, body: &[u8]) -> Option<Vec<u8>> {
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
    fn redact_json(&self, body: &mut Vec<u8>) {
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

    fn collect_json(&self, value: &mut Value, secrets: &mut Vec<(String, String)>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    let secret = self.json_fields.contains(&k.to_ascii_lowercase());
                    match v {
                        Value::String(s) if secret && !s.is_empty() && !is_placeholder(s) => {
                            let hidden = self.redact_value_as(s, !is_personal(k));
                            secrets.push((s.clone(), hidden.clone()));
                            *s = hidden;
                        }
                        Value::Number(n) if secret => {
                            let hidden = self.redact_value(&n.to_string());
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
    fn redact_xml(&self, body: &mut Vec<u8>) {
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

/// Fields that are personal data rather than secrets: hidden where they are a field, but
/// not searched for in the rest of the session.
pub const PERSONAL_FIELDS: &[&str] = &["username"];

fn is_personal(field: &str) -> bool {
    PERSONAL_FIELDS
        .iter()
        .any(|f| f.eq_ignore_ascii_case(field))
}

fn is_placeholder(s: &str) -> bool {
    let s = s.trim();
    let s = s.strip_prefix("jwt:").unwrap_or(s);
    s.strip_prefix(PLACEHOLDER_PREFIX)
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The comparison form of a secret: percent-encoding and JSON `\/` undone.
fn normalise(raw: &[u8]) -> String {
    let unescaped = String::from_utf8_lossy(raw).replace("\\/", "/");
    percent_encoding::percent_decode_str(&unescaped)
        .decode_utf8_lossy()
        .into_owned()
}

fn looks_like_form(body: &[u8]) -> bool {
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

pub mod audit;

#[cfg(test)]
mod tests;
