//! The secret audit: tokens, secret headers, cookies and fields left in a recording.

use std::collections::HashSet;

use regex::bytes::Regex;
use serde_json::Value;

use super::{AuditReport, Finding};
use crate::recording::{Exchange, HeaderList};
use crate::redact::{
    DEFAULT_FORM_FIELDS, DEFAULT_HEADERS, DEFAULT_JSON_FIELDS, is_placeholder, looks_like_form,
    token_re,
};
use crate::store::{Recording, StoreError};

/// Cookies that hold a credential (UCWA's `cwt_ucwa`, the ASP.NET / ADFS session cookies).
pub const SECRET_COOKIES: &[&str] = &[
    "cwt_ucwa",
    "msiscookie",
    "msisauth",
    "msisauthenticated",
    ".aspxauth",
    "fedauth",
];

/// The scanner; build once, scan many exchanges.
#[derive(Debug)]
pub struct Auditor {
    password: Regex,
    xml_property: Regex,
    secret_cookie_name: Regex,
    extra: Vec<Regex>,
}

/// A secret with at most its first 4 characters shown (fewer for short ones): `AAEB…`.
pub fn mask(secret: &str) -> String {
    let n = secret.chars().count();
    let shown: String = secret.chars().take((n / 3).min(4)).collect();
    format!("{shown}…")
}

/// Whether a stored value is what the redactor leaves: `REDACTED-n`, `cwt=REDACTED-n`,
/// `jwt:REDACTED-n`, also percent-encoded, or nothing at all.
fn hidden(value: &str) -> bool {
    let v = percent_encoding::percent_decode_str(value.trim()).decode_utf8_lossy();
    let v = v.trim().trim_matches('"');
    if v.is_empty() {
        return true;
    }
    let lower = v.to_ascii_lowercase();
    let v = ["cwt=", "psat="]
        .iter()
        .find(|p| lower.starts_with(*p))
        .map_or(v, |p| &v[p.len()..]);
    is_placeholder(v)
}

impl Auditor {
    /// The defaults plus user regexes (`--regex`; an invalid one is an input error).
    pub fn new(extra: &[String]) -> crate::Result<Self> {
        let names = DEFAULT_JSON_FIELDS
            .iter()
            .map(|f| regex::escape(f))
            .collect::<Vec<_>>()
            .join("|");
        let extra = extra
            .iter()
            .map(|r| Regex::new(r).map_err(|e| crate::Error::invalid_regex("--regex", r, e)))
            .collect::<crate::Result<_>>()?;
        Ok(Auditor {
            password: Regex::new(r#"(?i)\bpassword(?:=|%3d)([^&\s"'<>;,]+)"#).expect("static"),
            xml_property: Regex::new(&format!(
                r#"(?i)<property\s+name\s*=\s*["']({names})["']\s*>([^<]*)</property>"#
            ))
            .expect("static"),
            secret_cookie_name: Regex::new(r"(?i)token|auth|sess|ticket|secret|jwt")
                .expect("static"),
            extra,
        })
    }

    /// Every finding of one exchange (deduplicated by location and excerpt).
    pub fn scan_exchange(&self, session: &str, ex: &Exchange) -> Vec<Finding> {
        let mut out = Scan {
            session,
            seq: ex.seq,
            found: Vec::new(),
            seen: HashSet::new(),
        };
        self.text(&mut out, "path", ex.path.as_bytes());
        if let Some(q) = &ex.query {
            self.text(&mut out, "query", q.as_bytes());
            self.form(&mut out, "query", q.as_bytes());
        }
        self.headers(&mut out, "request", &ex.request_headers);
        self.headers(&mut out, "response", &ex.response_headers);
        self.body(
            &mut out,
            "request.body",
            &ex.request_headers,
            &ex.request_body,
        );
        self.body(
            &mut out,
            "response.body",
            &ex.response_headers,
            &ex.response_body,
        );
        if let Some(e) = &ex.error {
            self.text(&mut out, "error", e.as_bytes());
        }
        for (i, ev) in ex.events.iter().enumerate() {
            if let Some(embedded) = &ev.embedded {
                let at = format!("events[{i}].embedded");
                self.text(&mut out, &at, embedded.as_bytes());
                if let Ok(v) = serde_json::from_str::<Value>(embedded) {
                    self.json(&mut out, &at, &v, &mut String::new());
                }
            }
        }
        out.found
    }

    /// Tokens, JWTs, `password=` and user regexes in any text.
    fn text(&self, out: &mut Scan<'_>, at: &str, text: &[u8]) {
        for c in token_re().captures_iter(text) {
            if let (Some(kind), Some(sep), Some(tok)) = (c.get(1), c.get(2), c.get(3)) {
                let tok = String::from_utf8_lossy(tok.as_bytes());
                if !hidden(&tok) {
                    let kind = String::from_utf8_lossy(kind.as_bytes()).to_ascii_lowercase();
                    let sep = String::from_utf8_lossy(sep.as_bytes());
                    out.add(
                        at,
                        &format!("{kind} token"),
                        format!("{kind}{sep}{}", mask(&tok)),
                    );
                }
            } else if let Some(jwt) = c.get(4) {
                out.add(at, "JWT", mask(&String::from_utf8_lossy(jwt.as_bytes())));
            }
        }
        for c in self.password.captures_iter(text) {
            let v = String::from_utf8_lossy(c.get(1).map_or(&b""[..], |m| m.as_bytes()));
            if !hidden(&v) {
                out.add(at, "password", format!("password={}", mask(&v)));
            }
        }
        for re in &self.extra {
            for c in re.captures_iter(text) {
                let Some(m) = c.get(1).or_else(|| c.get(0)) else {
                    continue;
                };
                let v = String::from_utf8_lossy(m.as_bytes());
                if !m.as_bytes().is_empty() && !hidden(&v) {
                    out.add(at, "regex", mask(&v));
                }
            }
        }
    }

    fn headers(&self, out: &mut Scan<'_>, side: &str, headers: &HeaderList) {
        for (name, value) in headers.iter() {
            let at = format!("{side}.header {name}");
            self.text(out, &at, value);
            let lname = name.to_ascii_lowercase();
            let text = String::from_utf8_lossy(value);
            if DEFAULT_HEADERS.contains(&lname.as_str()) && !out.has(&at) {
                // `Scheme credentials`: the scheme word is not secret.
                let creds = match text.trim().split_once(char::is_whitespace) {
                    Some((_, c)) if !c.trim().is_empty() => c.trim(),
                    _ => text.trim(),
                };
                let creds = creds.strip_prefix("jwt:").unwrap_or(creds);
                if !hidden(creds) {
                    out.add(&at, "secret header", mask(creds));
                }
            }
            let pairs: Vec<&str> = match lname.as_str() {
                "cookie" => text.split(';').collect(),
                "set-cookie" => text.split(';').take(1).collect(),
                _ => continue,
            };
            for pair in pairs {
                let Some((cname, cvalue)) = pair.split_once('=') else {
                    continue;
                };
                let cname = cname.trim();
                let secret = SECRET_COOKIES.iter().any(|c| c.eq_ignore_ascii_case(cname))
                    || self.secret_cookie_name.is_match(cname.as_bytes());
                if secret && !hidden(cvalue) {
                    out.add(
                        &format!("{at} ({cname})"),
                        "secret cookie",
                        format!("{cname}={}", mask(cvalue.trim())),
                    );
                }
            }
        }
    }

    fn body(&self, out: &mut Scan<'_>, at: &str, headers: &HeaderList, body: &[u8]) {
        if body.is_empty() {
            return;
        }
        self.text(out, at, body);
        let ct = headers
            .get("content-type")
            .unwrap_or("")
            .to_ascii_lowercase();
        let trimmed = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
        let first = trimmed.iter().find(|b| !b.is_ascii_whitespace()).copied();
        if ct.contains("json") || matches!(first, Some(b'{' | b'[')) {
            if let Ok(v) = serde_json::from_slice::<Value>(trimmed) {
                self.json(out, at, &v, &mut String::new());
            }
        } else if ct.contains("xml") || first == Some(b'<') {
            for c in self.xml_property.captures_iter(body) {
                let name = String::from_utf8_lossy(c.get(1).map_or(&b""[..], |m| m.as_bytes()));
                let v = String::from_utf8_lossy(c.get(2).map_or(&b""[..], |m| m.as_bytes()));
                if !hidden(&v) {
                    out.add(
                        &format!("{at} <property name=\"{name}\">"),
                        "secret field",
                        mask(v.trim()),
                    );
                }
            }
        } else if ct.contains("x-www-form-urlencoded") || looks_like_form(body) {
            self.form(out, at, body);
        }
    }

    /// Form fields (`a=1&password=x`; the doc samples' `&amp;` too) by name.
    fn form(&self, out: &mut Scan<'_>, at: &str, text: &[u8]) {
        for (name, value) in form_urlencoded::parse(text) {
            let name = name
                .strip_prefix("amp;")
                .unwrap_or(&name)
                .to_ascii_lowercase();
            if DEFAULT_FORM_FIELDS.contains(&name.as_str()) && !hidden(&value) {
                out.add(&format!("{at} {name}"), "secret field", mask(&value));
            }
        }
    }

    /// Secret JSON fields at any depth; `pointer` is the JSON pointer of `v`.
    fn json(&self, out: &mut Scan<'_>, at: &str, v: &Value, pointer: &mut String) {
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    let len = pointer.len();
                    pointer.push('/');
                    pointer.push_str(&k.replace('~', "~0").replace('/', "~1"));
                    let secret = DEFAULT_JSON_FIELDS
                        .iter()
                        .any(|f| f.eq_ignore_ascii_case(k));
                    match child {
                        Value::String(s) if secret && !hidden(s) => {
                            out.add(&format!("{at} {pointer}"), "secret field", mask(s));
                        }
                        Value::Number(n) if secret => {
                            out.add(
                                &format!("{at} {pointer}"),
                                "secret field",
                                mask(&n.to_string()),
                            );
                        }
                        _ => self.json(out, at, child, pointer),
                    }
                    pointer.truncate(len);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    let len = pointer.len();
                    pointer.push_str(&format!("/{i}"));
                    self.json(out, at, child, pointer);
                    pointer.truncate(len);
                }
            }
            _ => {}
        }
    }

    /// Scan every session of a recording (or only `session`).
    pub fn scan_recording(
        &self,
        rec: &Recording,
        session: Option<&str>,
    ) -> Result<AuditReport, StoreError> {
        let sessions = super::sessions_to_audit(rec, session)?;
        let mut report = AuditReport {
            sessions: sessions.len(),
            ..AuditReport::default()
        };
        for s in &sessions {
            for ex in rec.stream_exchanges(s) {
                report.exchanges += 1;
                report.findings.extend(self.scan_exchange(&s.name, &ex?));
            }
        }
        Ok(report)
    }
}

/// Findings of one exchange being collected.
struct Scan<'a> {
    session: &'a str,
    seq: u64,
    found: Vec<Finding>,
    seen: HashSet<(String, String)>,
}

impl Scan<'_> {
    fn add(&mut self, at: &str, rule: &str, excerpt: String) {
        if self.seen.insert((at.to_string(), excerpt.clone())) {
            self.found.push(Finding {
                session: self.session.to_string(),
                seq: self.seq,
                location: at.to_string(),
                rule: rule.to_string(),
                excerpt,
            });
        }
    }

    fn has(&self, at: &str) -> bool {
        self.found.iter().any(|f| f.location == at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::{Ingest, KeyOptions};
    use crate::redact::RedactConfig;
    use crate::ucwa::Representation;

    const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlc2lnbg";

    fn exchange() -> Exchange {
        let mut request_headers = HeaderList::default();
        request_headers.push("authorization", "Bearer cwt=AAEBsecrettoken1234");
        request_headers.push("cookie", "cwt_ucwa=CookieSecret99; lang=en");
        request_headers.push("x-ms-webticket", "opaqueTicketValue");
        request_headers.push("content-type", "application/x-www-form-urlencoded");
        let mut response_headers = HeaderList::default();
        response_headers.push("content-type", "application/json");
        Exchange {
            id: 0,
            seq: 7,
            started_us: 0,
            duration_us: 0,
            method: "POST".into(),
            path: "/WebTicket/oauthtoken".into(),
            query: Some(format!("token={JWT}")),
            http_version: "HTTP/1.1".into(),
            request_headers,
            request_body: b"grant_type=password&username=alice&password=hunter22".to_vec(),
            request_truncated: false,
            status: Some(200),
            response_headers,
            response_body: br#"{"access_token":"cwt=AAEBsecrettoken1234","nested":{"refresh_token":"R3fr3shT0k3n"},"n":1}"#.to_vec(),
            response_truncated: false,
            content_encoding: None,
            error: None,
            kind: "token".into(),
            representation: Representation::Json,
            match_key: Default::default(),
            ordinal: 0,
            credential: None,
            upstream: None,
            events: vec![],
        }
    }

    #[test]
    fn finds_every_kind_of_secret_and_never_prints_one() {
        let auditor = Auditor::new(&[]).unwrap();
        let found = auditor.scan_exchange("s", &exchange());
        let has = |loc: &str, rule: &str| {
            found
                .iter()
                .any(|f| f.location == loc && f.rule == rule && f.seq == 7)
        };
        assert!(
            has("request.header authorization", "cwt token"),
            "{found:#?}"
        );
        assert!(
            has("request.header cookie (cwt_ucwa)", "secret cookie"),
            "{found:#?}"
        );
        assert!(
            has("request.header x-ms-webticket", "secret header"),
            "{found:#?}"
        );
        assert!(has("query", "JWT"), "{found:#?}");
        assert!(has("request.body password", "secret field"), "{found:#?}");
        assert!(has("request.body username", "secret field"), "{found:#?}");
        assert!(has("request.body", "password"), "{found:#?}");
        assert!(
            has("response.body /nested/refresh_token", "secret field"),
            "{found:#?}"
        );
        assert!(has("response.body", "cwt token"), "{found:#?}");
        let all = format!("{found:?}");
        for secret in [
            "AAEBsecrettoken1234",
            "CookieSecret99",
            "hunter22",
            JWT,
            "R3fr3shT0k3n",
        ] {
            assert!(!all.contains(secret), "{secret} printed: {all}");
        }
        assert_eq!(mask("AAEBsecrettoken1234"), "AAEB…");
        assert_eq!(mask("abc"), "a…");
    }

    #[test]
    fn a_redacted_exchange_is_clean_and_user_regexes_add_findings() {
        let mut ex = exchange();
        Ingest::new(&RedactConfig::default(), KeyOptions::default())
            .unwrap()
            .redact(&mut ex);
        let auditor = Auditor::new(&[]).unwrap();
        assert_eq!(auditor.scan_exchange("s", &ex), vec![]);
        let auditor = Auditor::new(&["lang=([a-z]+)".into()]).unwrap();
        let found = auditor.scan_exchange("s", &ex);
        assert_eq!(found.len(), 0, "cookie values are all redacted: {found:?}");
        ex.path = "/x/customer-42".into();
        let auditor = Auditor::new(&[r"customer-\d+".into()]).unwrap();
        let found = auditor.scan_exchange("s", &ex);
        assert_eq!(found[0].rule, "regex");
        assert_eq!(found[0].location, "path");
        assert!(Auditor::new(&["(".into()]).is_err());
    }
}
