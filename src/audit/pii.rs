//! `audit --pii`: personal data left in a recording — what the anonymiser would replace
//! and did not. It reads with the anonymiser's own knowledge (`crate::anonymize`: addresses
//! and `tel:` numbers by shape, names, job fields, notes, subjects and message text by their
//! place, `data:` URIs, message bodies, photos) and accepts what the anonymiser writes:
//! addresses in reserved domains or with a `user.TAG` local part, `User TAG`-style names and
//! the name form of an anonymous address of the same recording, `999…` numbers, filler
//! text, placeholder images. A value pinned with `--map` to something that looks real is
//! reported: the audit cannot know it was chosen.
//!
//! Findings never show the value, only its length.

use std::collections::HashSet;

use crate::anonymize::{
    self, Place, Placed, data_uri_text, find_addresses, find_phones, html_runs, is_filler,
    placed_in_query, placed_values,
};
use crate::recording::{Exchange, HeaderList};
use crate::store::{Recording, StoreError};

use super::{AuditReport, Finding};

/// Phone numbers shorter than this (extensions) are not reported.
const MIN_PHONE_DIGITS: usize = 6;

/// The personal-data scanner.
#[derive(Debug, Default)]
pub struct PiiAuditor {
    /// Display names that are the name form of an anonymous address of the recording
    /// (`Peer` for a pinned `peer@example.org`).
    names: HashSet<String>,
}

impl PiiAuditor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Accept as pseudonyms the name forms of the anonymous addresses in `ex`.
    pub fn learn(&mut self, ex: &Exchange) {
        let mut texts: Vec<&[u8]> = vec![ex.path.as_bytes(), &ex.request_body, &ex.response_body];
        if let Some(q) = &ex.query {
            texts.push(q.as_bytes());
        }
        for t in texts {
            for a in find_addresses(t) {
                if anonymize::is_anonymous_address(&a.local, &a.domain) {
                    self.names.insert(anonymize::name_of_address(&format!(
                        "{}@{}",
                        a.local, a.domain
                    )));
                }
            }
        }
    }

    /// Every finding of one exchange.
    pub fn scan_exchange(&self, session: &str, ex: &Exchange) -> Vec<Finding> {
        let mut scan = Scan {
            session,
            seq: ex.seq,
            found: Vec::new(),
            seen: HashSet::new(),
        };
        self.text(&mut scan, "path", ex.path.as_bytes());
        if let Some(q) = &ex.query {
            self.text(&mut scan, "query", q.as_bytes());
            for p in placed_in_query(q) {
                self.placed(&mut scan, "query", &p);
            }
        }
        self.headers(&mut scan, "request", &ex.request_headers);
        self.headers(&mut scan, "response", &ex.response_headers);
        self.body(
            &mut scan,
            "request.body",
            &ex.request_headers,
            &ex.request_body,
            true,
        );
        self.body(
            &mut scan,
            "response.body",
            &ex.response_headers,
            &ex.response_body,
            false,
        );
        if let Some(e) = &ex.error {
            self.text(&mut scan, "error", e.as_bytes());
        }
        if let Some(u) = &ex.upstream {
            self.text(&mut scan, "upstream", u.as_bytes());
        }
        scan.found
    }

    /// Scan every session of a recording (or only `session`).
    pub fn scan_recording(
        mut self,
        rec: &Recording,
        session: Option<&str>,
    ) -> Result<AuditReport, StoreError> {
        let sessions = super::sessions_to_audit(rec, session)?;
        let mut report = AuditReport {
            sessions: sessions.len(),
            ..AuditReport::default()
        };
        // Two readings: what the whole file teaches (the organisation's domains, the names
        // of its people) before any exchange is judged, then the judging; neither holds more
        // than a page of exchanges.
        for s in &sessions {
            for ex in rec.stream_exchanges(s) {
                self.learn(&ex?);
            }
        }
        for s in &sessions {
            for ex in rec.stream_exchanges(s) {
                report.exchanges += 1;
                report.findings.extend(self.scan_exchange(&s.name, &ex?));
            }
        }
        Ok(report)
    }

    /// Addresses and `tel:` numbers by their shape.
    fn text(&self, scan: &mut Scan<'_>, at: &str, text: &[u8]) {
        for a in find_addresses(text) {
            if !anonymize::is_anonymous_address(&a.local, &a.domain) {
                let rule = if a.sip { "SIP URI" } else { "e-mail address" };
                scan.add(at, rule, &format!("{}@{}", a.local, a.domain));
            }
        }
        for digits in find_phones(text) {
            if digits.len() >= MIN_PHONE_DIGITS && !anonymize::is_pseudonym_phone(&digits) {
                scan.add(at, "tel: number", &digits);
            }
        }
    }

    fn headers(&self, scan: &mut Scan<'_>, side: &str, headers: &HeaderList) {
        for (name, value) in headers.iter() {
            self.text(scan, &format!("{side}.header {name}"), value);
        }
    }

    fn body(
        &self,
        scan: &mut Scan<'_>,
        at: &str,
        headers: &HeaderList,
        body: &[u8],
        request: bool,
    ) {
        if body.is_empty() {
            return;
        }
        let ct = headers.get("content-type");
        let essence = ct
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if essence.starts_with("image/") {
            if anonymize::placeholder_image(&essence) != Some(body) {
                scan.add(at, "photo", &format!("{} bytes", body.len()));
            }
            return;
        }
        self.text(scan, at, body);
        for p in placed_values(ct, body) {
            self.placed(scan, at, &p);
        }
        if request && (essence == "text/plain" || essence == "text/html") {
            let text = String::from_utf8_lossy(body);
            if !is_text_anonymous(&text, essence == "text/html") {
                scan.add(at, "message text", &text);
            }
        }
    }

    /// A value found by its place.
    fn placed(&self, scan: &mut Scan<'_>, at: &str, p: &Placed) {
        let v = p.value.trim();
        if v.is_empty() || crate::redact::is_placeholder(v) {
            return;
        }
        let link = v.starts_with('/') || v.starts_with("http://") || v.starts_with("https://");
        let (rule, clean) = match p.place {
            Place::Name => (
                "name",
                anonymize::is_pseudonym_name(v)
                    || self.names.contains(v)
                    || !find_addresses(v.as_bytes()).is_empty(),
            ),
            Place::Job => ("job field", anonymize::is_pseudonym_name(v)),
            Place::Phone => {
                let digits: String = v.chars().filter(char::is_ascii_digit).collect();
                (
                    "phone number",
                    digits.len() < MIN_PHONE_DIGITS || anonymize::is_pseudonym_phone(&digits),
                )
            }
            Place::Note => ("note", link || is_text_anonymous(v, false)),
            Place::Text => ("message text", link || is_text_anonymous(v, looks_html(v))),
            Place::Subject => ("subject", is_text_anonymous(v, looks_html(v))),
            Place::DataUri => match data_uri_text(v) {
                Some((text, html)) => ("message text", is_text_anonymous(&text, html)),
                None => {
                    let media = v[5..]
                        .split([';', ','])
                        .next()
                        .unwrap_or("")
                        .to_ascii_lowercase();
                    if media.starts_with("image/") {
                        let placeholder = anonymize::placeholder_image(&media).map(|img| {
                            use base64::Engine;
                            base64::engine::general_purpose::STANDARD.encode(img)
                        });
                        let clean = placeholder.is_some_and(|b64| v.ends_with(&format!(",{b64}")));
                        ("photo", clean)
                    } else {
                        return;
                    }
                }
            },
        };
        if !clean {
            scan.add(at, rule, v);
        }
    }
}

fn looks_html(v: &str) -> bool {
    v.trim_start().starts_with('<') && v.contains('>')
}

/// Empty, or filler (for HTML: every run of text between tags).
fn is_text_anonymous(text: &str, html: bool) -> bool {
    if html {
        html_runs(text).iter().all(|r| is_filler(r))
    } else {
        is_filler(text)
    }
}

/// Findings of one exchange being collected; each value reported once per place.
struct Scan<'a> {
    session: &'a str,
    seq: u64,
    found: Vec<Finding>,
    seen: HashSet<(String, &'static str, String)>,
}

impl Scan<'_> {
    fn add(&mut self, at: &str, rule: &'static str, value: &str) {
        if self.seen.insert((at.to_string(), rule, value.to_string())) {
            self.found.push(Finding {
                session: self.session.to_string(),
                seq: self.seq,
                location: at.to_string(),
                rule: rule.to_string(),
                excerpt: format!("{} characters", value.chars().count()),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anonymize::{AnonymizeConfig, Anonymizer};

    fn exchange() -> Exchange {
        let mut req = HeaderList::default();
        req.push("content-type", "text/plain");
        let mut resp = HeaderList::default();
        resp.push("content-type", "application/json");
        resp.push("x-ms-server-fqdn", "FE01.contoso.com");
        Exchange {
            seq: 3,
            method: "POST".into(),
            path: "/ucwa/v1/applications/1/communication/conversations/c/participants/bob@contoso.com/messaging/messages".into(),
            request_headers: req,
            request_body: b"Lunch at noon?".to_vec(),
            status: Some(200),
            response_headers: resp,
            response_body: br#"{"name":"Bob Jones","title":"Engineer","workPhoneNumber":"tel:+14255550100","subject":"Plans","_links":{"plainMessage":{"href":"data:text/plain,Lunch%20at%20noon%3F"},"photo":{"href":"data:image/png;base64,AAAA"}}}"#.to_vec(),
            ..Exchange::default()
        }
    }

    #[test]
    fn finds_people_and_never_shows_them() {
        let found = PiiAuditor::new().scan_exchange("s", &exchange());
        let rules: HashSet<&str> = found.iter().map(|f| f.rule.as_str()).collect();
        for rule in [
            "e-mail address",
            "tel: number",
            "name",
            "job field",
            "message text",
            "subject",
            "photo",
        ] {
            assert!(rules.contains(rule), "{rule} not in {found:#?}");
        }
        let all = format!("{found:?}");
        for real in ["bob", "Bob", "Engineer", "Lunch", "4255550100", "Plans"] {
            assert!(!all.contains(real), "{real} shown: {all}");
        }
    }

    #[test]
    fn an_anonymised_exchange_is_clean() {
        let a = Anonymizer::new(&AnonymizeConfig::new().with_salt("s")).unwrap();
        let mut ex = exchange();
        a.anonymize(&mut ex);
        let mut auditor = PiiAuditor::new();
        auditor.learn(&ex);
        assert_eq!(auditor.scan_exchange("s", &ex), vec![]);
    }
}
