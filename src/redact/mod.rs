//! Redaction: every secret a UCWA session carries (tokens, passwords, cookies, web tickets) is
//! replaced before an exchange is stored.
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

//!
//! # Parts
//! The redactor works on the parts of an exchange ([`ExchangeFields`]), not on the stored row,
//! so that it knows nothing of storage: the recording layer's ingest step calls it.
//! `fields` handles structure (headers, cookies, form, JSON and XML fields), `tokens` the
//! text passes (token regexes, remembered secrets, user regexes), `known` the secrets
//! remembered for the rest of a session.

mod fields;
mod known;
mod names;
mod numbering;
mod tokens;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use regex::bytes::Regex;

pub(crate) use self::fields::looks_like_form;
use self::known::KnownSecrets;
pub use self::numbering::ExchangeView;
use self::numbering::Numbered;
pub(crate) use self::tokens::{may_hold_token, placeholder_re, token_re};

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
    /// Any secret field name, in any ASCII case (the structure passes compare names that
    /// way): a body without one has no secret field to find. Literal search, not a regex:
    /// a case-insensitive alternation ran a DFA over every byte, three times slower, on
    /// every body on the recorder's path.
    field_names: names::FieldNames,
    /// Some field name holds a character JSON may write as a backslash escape.
    escapable_fields: bool,
    user_regexes: Vec<Regex>,
    state: Mutex<State>,
    /// Header fields already numbered on the client's path (`numbering`).
    numbered: Numbered,
}

#[derive(Debug, Default)]
struct State {
    /// Normalised secret value → placeholder number.
    numbers: HashMap<String, u32>,
    /// The last number handed out (or reserved).
    last: u32,
    /// Secrets replaced wherever they appear (copy-on-write: scans run without the lock).
    known: Arc<KnownSecrets>,
    /// Placeholders of the distinct `Authorization` credentials seen.
    credentials: std::collections::BTreeSet<String>,
}

/// Most secrets remembered for replacement in later exchanges (a bound on memory and time).
const MAX_KNOWN: usize = 4096;

/// The parts of one exchange that can carry a secret, borrowed for [`Redactor::redact`].
#[derive(Debug)]
pub struct ExchangeFields<'a> {
    pub path: &'a mut String,
    pub query: &'a mut Option<String>,
    pub request_headers: &'a mut [(String, Vec<u8>)],
    pub request_body: &'a mut Vec<u8>,
    pub response_headers: &'a mut [(String, Vec<u8>)],
    pub response_body: &'a mut Vec<u8>,
    pub error: &'a mut Option<String>,
}

/// The first value of a header (case-insensitive) as text.
fn header<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
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
        .map_err(|e| crate::Error::invalid_because("--redact-field", names.clone(), e))?;
        let mut all_fields: Vec<&String> = form_fields.iter().chain(&json_fields).collect();
        all_fields.sort();
        all_fields.dedup();
        let field_names = names::FieldNames::new(&all_fields)
            .map_err(|e| crate::Error::invalid_because("--redact-field", names.clone(), e))?;
        let escapable_fields = all_fields.iter().any(|f| {
            f.bytes()
                .any(|b| matches!(b, b'/' | b'\\' | b'"') || b < 0x20)
        });
        let user_regexes = config
            .regexes
            .iter()
            .map(|r| Regex::new(r).map_err(|e| crate::Error::invalid_regex("--redact-regex", r, e)))
            .collect::<crate::Result<Vec<_>>>()?;
        Ok(Redactor {
            headers,
            form_fields,
            json_fields,
            xml_property,
            field_names,
            escapable_fields,
            user_regexes,
            state: Mutex::new(State::default()),
            numbered: Numbered::default(),
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

    /// A header whose whole value is a secret (or holds cookie values).
    fn is_secret_header(&self, name: &str) -> bool {
        name.eq_ignore_ascii_case("cookie")
            || name.eq_ignore_ascii_case("set-cookie")
            || self.headers.iter().any(|h| h.eq_ignore_ascii_case(name))
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
        let n = match state.numbers.get(secret) {
            Some(n) => *n,
            None => {
                state.last += 1;
                let n = state.last;
                state.numbers.insert(secret.to_string(), n);
                n
            }
        };
        format!("{PLACEHOLDER_PREFIX}{n}")
    }

    /// Make a secret value (`cwt=…`, a JWT, an opaque token) stand for an existing
    /// placeholder (`cwt=REDACTED-3`): `verify` stores the token a live server hands out
    /// under the placeholder the recording used for its token.
    pub fn pin(&self, secret: &str, placeholder: &str) {
        let Some(n) = placeholder_re()
            .find(placeholder.as_bytes())
            .and_then(|m| std::str::from_utf8(&m.as_bytes()[PLACEHOLDER_PREFIX.len()..]).ok())
            .and_then(|digits| digits.parse::<u32>().ok())
        else {
            return;
        };
        let secret = secret.trim();
        let key = match token_re().captures(secret.as_bytes()) {
            Some(c) if c.get(0).is_some_and(|m| m.len() == secret.len()) => {
                match c.get(3).or(c.get(4)) {
                    Some(token) => normalise(token.as_bytes()),
                    None => normalise(secret.as_bytes()),
                }
            }
            _ => normalise(secret.as_bytes()),
        };
        let mut state = self.lock();
        state.numbers.insert(key, n);
        state.last = state.last.max(n);
    }

    /// Number new secrets above `n`: the placeholders up to it are already in use (a session
    /// being extended, or verified against a live server).
    pub fn reserve(&self, n: u32) {
        let mut state = self.lock();
        state.last = state.last.max(n);
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
        // Checked before `make_mut`, which copies the map while a text pass holds it.
        if state.known.len >= MAX_KNOWN || state.known.contains(raw) {
            return;
        }
        Arc::make_mut(&mut state.known).insert(raw, replacement);
    }

    /// Redact the parts of one exchange in place, before it is stored. Returns the
    /// placeholder of the credential its `Authorization` header carried (`REDACTED-1`).
    pub fn redact(&self, exchange: ExchangeFields<'_>) -> Option<String> {
        let ExchangeFields {
            path,
            query,
            request_headers,
            request_body,
            response_headers,
            response_body,
            error,
        } = exchange;
        // 1. Structure: headers, form fields, JSON fields, XML properties.
        self.redact_headers(request_headers);
        self.redact_headers(response_headers);
        let req_ct = header(request_headers, "content-type").map(str::to_owned);
        let resp_ct = header(response_headers, "content-type").map(str::to_owned);
        self.redact_body(req_ct.as_deref(), request_body);
        self.redact_body(resp_ct.as_deref(), response_body);
        if let Some(q) = query.as_ref()
            && self.form_may_hold(q.as_bytes())
            && let Some(out) = self.redact_form(q.as_bytes())
        {
            *query = Some(String::from_utf8_lossy(&out).into_owned());
        }
        // 2. Text: tokens anywhere, secrets seen before, user regexes. The text passes
        // remember nothing, so the secrets known after the structure passes are all of them.
        let known = self.lock().known.clone();
        self.redact_string(path, &known);
        if let Some(q) = query.as_mut() {
            self.redact_string(q, &known);
        }
        for (_, v) in request_headers
            .iter_mut()
            .chain(response_headers.iter_mut())
        {
            self.redact_text(v, &known);
        }
        self.redact_text(request_body, &known);
        self.redact_text(response_body, &known);
        if let Some(err) = error.as_mut() {
            self.redact_string(err, &known);
        }
        let credential = header(request_headers, "authorization")
            .and_then(|v| placeholder_re().find(v.as_bytes()))
            .map(|m| String::from_utf8_lossy(m.as_bytes()).into_owned());
        if let Some(c) = &credential {
            self.lock().credentials.insert(c.clone());
        }
        credential
    }
}

/// The highest placeholder number in `text` (0 when it holds none).
pub fn highest_placeholder(text: &[u8]) -> u32 {
    placeholder_re()
        .find_iter(text)
        .filter_map(|m| std::str::from_utf8(&m.as_bytes()[PLACEHOLDER_PREFIX.len()..]).ok())
        .filter_map(|digits| digits.parse::<u32>().ok())
        .max()
        .unwrap_or(0)
}

/// Fields that are personal data rather than secrets: hidden where they are a field, but
/// not searched for in the rest of the session.
pub const PERSONAL_FIELDS: &[&str] = &["username"];

fn is_personal(field: &str) -> bool {
    PERSONAL_FIELDS
        .iter()
        .any(|f| f.eq_ignore_ascii_case(field))
}

pub(crate) fn is_placeholder(s: &str) -> bool {
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

#[cfg(test)]
mod tests;

#[cfg(test)]
mod proptests;
