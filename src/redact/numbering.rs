//! Numbering secrets on the recording proxy's client path, cheaply.
//!
//! Placeholders are numbered in the order the conversation revealed the secrets, so the proxy
//! numbers an exchange's secrets before the client sees its response, and redacts it in full
//! later, off the client's path. Numbering by a full redaction of a copy costs a copy of the
//! heads and bodies, a JSON parse and every text pass, on every request, although almost none
//! reveals a secret that is not numbered yet.
//!
//! [`Redactor::number`] first asks [`Redactor::may_number`] whether a full redaction of these
//! parts could hand out a new number, with passes that only look: the token regex and the
//! user's regexes over the texts, the secret field names over bodies (by the route the body
//! would take: JSON, XML, form), and for header fields that hold a secret (`Authorization`, a
//! cookie, a token anywhere) whether the same field and value was numbered before. Only when
//! it could is a copy redacted in full, exactly as before, so placeholders get exactly the
//! numbers they got before, for a sequential client as for any other.
//!
//! Why the answer "no" is exact: a number is handed out only for a secret that a structure
//! pass (a secret header, a secret form / JSON / XML field) or a text pass (tokens, user
//! regexes) finds, and each check below is implied by that pass finding anything. A header
//! field already numbered numbers nothing new: redaction is a function of the value and of
//! the numbers handed out, which only grow.

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};

use super::fields::{BodyRoute, body_route};
use super::{ExchangeFields, Redactor, header, may_hold_token, token_re};

/// Most header fields remembered as numbered (a bound on memory; past it they are numbered
/// again, which costs time, never a different number).
const MAX_NUMBERED: usize = 4096;

/// The parts of an exchange that can reveal a secret, borrowed as they arrived: what
/// [`Redactor::number`] reads.
#[derive(Debug, Clone, Copy)]
pub struct ExchangeView<'a> {
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub request_headers: &'a [(String, Vec<u8>)],
    pub request_body: &'a [u8],
    pub response_headers: &'a [(String, Vec<u8>)],
    pub response_body: &'a [u8],
}

/// Header fields (name and value) a full redaction has already numbered.
#[derive(Debug, Default)]
pub(super) struct Numbered(Mutex<HashSet<Vec<u8>>>);

fn field_key(name: &str, value: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(name.len() + 1 + value.len());
    key.extend(name.bytes().map(|b| b.to_ascii_lowercase()));
    key.push(0);
    key.extend_from_slice(value);
    key
}

impl Redactor {
    /// Number the secrets of these parts that are not numbered yet, in the order a full
    /// redaction meets them (the redacted copy is dropped). Cheap when there are none.
    pub fn number(&self, view: ExchangeView<'_>) {
        if !self.may_number(&view) {
            return;
        }
        let mut path = view.path.to_string();
        let mut query = view.query.map(str::to_string);
        let mut request_headers = view.request_headers.to_vec();
        let mut request_body = view.request_body.to_vec();
        let mut response_headers = view.response_headers.to_vec();
        let mut response_body = view.response_body.to_vec();
        let mut error = None;
        self.redact(ExchangeFields {
            path: &mut path,
            query: &mut query,
            request_headers: &mut request_headers,
            request_body: &mut request_body,
            response_headers: &mut response_headers,
            response_body: &mut response_body,
            error: &mut error,
        });
        // Only now: a concurrent exchange with the same field must not skip it before its
        // secrets have their numbers.
        let mut numbered = self
            .numbered
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (name, value) in view.request_headers.iter().chain(view.response_headers) {
            if numbered.len() < MAX_NUMBERED && self.field_may_hold(name, value) {
                numbered.insert(field_key(name, value));
            }
        }
    }

    /// Whether redacting these parts could hand out a placeholder number not handed out yet
    /// (false means certainly not).
    pub fn may_number(&self, view: &ExchangeView<'_>) -> bool {
        if self.text_may_hold(view.path.as_bytes()) {
            return true;
        }
        if let Some(q) = view.query
            && (self.text_may_hold(q.as_bytes()) || self.form_may_hold(q.as_bytes()))
        {
            return true;
        }
        // The lock is taken at the first such field (most exchanges have none).
        let mut numbered = None;
        for (name, value) in view.request_headers.iter().chain(view.response_headers) {
            if !self.field_may_hold(name, value) {
                continue;
            }
            let numbered = numbered.get_or_insert_with(|| {
                self.numbered
                    .0
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
            });
            if !numbered.contains(&field_key(name, value)) {
                return true;
            }
        }
        drop(numbered);
        let bodies = [
            (view.request_headers, view.request_body),
            (view.response_headers, view.response_body),
        ];
        bodies.into_iter().any(|(headers, body)| {
            !body.is_empty()
                && (self.text_may_hold(body)
                    || self.body_may_hold(header(headers, "content-type"), body))
        })
    }

    /// A header field a redaction could number from: a secret header, or any value a text
    /// pass could find a token in.
    fn field_may_hold(&self, name: &str, value: &[u8]) -> bool {
        self.is_secret_header(name) || self.text_may_hold(value)
    }

    /// Whether a text pass could find something to number in `text`.
    pub(super) fn text_may_hold(&self, text: &[u8]) -> bool {
        (may_hold_token(text) && token_re().is_match(text))
            || self.user_regexes.iter().any(|r| r.is_match(text))
    }

    /// Whether the structure pass over a body could find a secret field, by the route the
    /// body takes.
    pub(super) fn body_may_hold(&self, content_type: Option<&str>, body: &[u8]) -> bool {
        match body_route(content_type, body) {
            BodyRoute::Json => self.json_may_hold(body),
            BodyRoute::Xml => self.xml_property.is_match(body),
            BodyRoute::Form => self.form_may_hold(body),
            BodyRoute::None => false,
        }
    }

    /// A JSON member named like a secret field is written with the name's letters (in any
    /// case), or with escapes: `\u` for any letter, a backslash for the few characters a
    /// field name might hold that JSON escapes otherwise.
    pub(super) fn json_may_hold(&self, body: &[u8]) -> bool {
        self.field_names.in_text(body)
            || body.windows(2).any(|w| w == b"\\u")
            || (self.escapable_fields && body.contains(&b'\\'))
    }

    /// A form field name is percent-decoded (`+` is a space): named like a secret field
    /// only if written with the name's letters or with escapes.
    pub(super) fn form_may_hold(&self, form: &[u8]) -> bool {
        self.field_names.in_text(form) || form.iter().any(|b| matches!(b, b'%' | b'+'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::RedactConfig;

    fn view<'a>(
        request_headers: &'a [(String, Vec<u8>)],
        request_body: &'a [u8],
        response_headers: &'a [(String, Vec<u8>)],
        response_body: &'a [u8],
    ) -> ExchangeView<'a> {
        ExchangeView {
            path: "/ucwa/oauth/v1/applications/1/me",
            query: None,
            request_headers,
            request_body,
            response_headers,
            response_body,
        }
    }

    fn h(name: &str, value: &str) -> (String, Vec<u8>) {
        (name.into(), value.as_bytes().to_vec())
    }

    #[test]
    fn only_what_could_hold_a_new_secret_is_redacted_to_number_it() {
        let r = Redactor::new(&RedactConfig::default()).unwrap();
        let json = [h("content-type", "application/json")];
        let plain = br#"{"_links":{"self":{"href":"/x"}},"when":"\/Date(1474932027613)\/"}"#;
        assert!(!r.may_number(&view(&[], b"", &json, plain)));
        // A secret field, an escaped member name, a token, a form field.
        for body in [
            &br#"{"access_token":"abc"}"#[..],
            br#"{"Access_TOKEN":"abc"}"#,
            br#"{"p\u0061ssword":"abc"}"#,
            br#"{"note":"cwt=AAAAbbbb"}"#,
        ] {
            assert!(r.may_number(&view(&[], b"", &json, body)), "{body:?}");
        }
        let form = [h("content-type", "application/x-www-form-urlencoded")];
        assert!(r.may_number(&view(&form, b"grant_type=password&password=x", &[], b"")));
        assert!(r.may_number(&view(&form, b"p%61ssword=x", &[], b"")));
        assert!(r.may_number(&view(&form, b"grant_type=x&PassWord=x", &[], b"")));
        assert!(!r.may_number(&view(&form, b"grant_type=refresh", &[], b"")));
        let xml = [h("content-type", "application/xml")];
        assert!(r.may_number(&view(
            &[],
            b"",
            &xml,
            br#"<property name="password">x</property>"#
        )));

        // A header field is numbered once; the same field again numbers nothing new.
        let auth = [h("authorization", "Bearer cwt=AAEBsecret")];
        assert!(r.may_number(&view(&auth, b"", &[], b"")));
        r.number(view(&auth, b"", &[], b""));
        assert_eq!(r.secrets_seen(), 1);
        assert!(!r.may_number(&view(&auth, b"", &json, plain)));
        let other = [h("authorization", "Bearer cwt=AAEBother")];
        assert!(r.may_number(&view(&other, b"", &[], b"")));
        let cookie = [h("set-cookie", "x=1")];
        assert!(r.may_number(&view(&[], b"", &cookie, b"")));
    }

    #[test]
    fn user_regexes_and_fields_are_looked_for_too() {
        let r = Redactor::new(&RedactConfig {
            fields: vec!["a/b".into()],
            regexes: vec![r"ACME-\d+".into()],
            ..RedactConfig::default()
        })
        .unwrap();
        let json = [h("content-type", "application/json")];
        assert!(r.may_number(&view(&[], b"", &json, b"{\"n\":\"ACME-1\"}")));
        // `a\/b` is the member `a/b`.
        assert!(r.may_number(&view(&[], b"", &json, br#"{"a\/b":"x"}"#)));
        assert!(!r.may_number(&view(&[], b"", &json, br#"{"n":"x"}"#)));
    }
}
