//! One exchange: every part that can name a person, each by the pass its shape calls for.
//! The anonymiser holds its table's lock for the whole exchange, so that an exchange's
//! names are bound before they are replaced whatever other connections do meanwhile.

use super::json::Mode;
use super::table::Table;
use super::{Anonymizer, Category, form, ident, json, photo, text, xml};
use crate::recording::{Exchange, ExchangeFilter, HeaderList};
use crate::redact::looks_like_form;
use crate::ucwa::media::first_significant_byte;

impl Anonymizer {
    /// Replace every personal value of an exchange in place (after redaction, before the
    /// events are indexed and the key computed: [`crate::recording::Ingest`] calls it).
    pub fn anonymize(&self, ex: &mut Exchange) {
        let mut table = self.lock();
        let t = &mut *table;
        discover(t, ex);
        substitute_string(t, &mut ex.path);
        if let Some(q) = ex.query.as_mut()
            && let Some(out) = form::anonymize(t, q.as_bytes(), &Mode::Replace)
        {
            *q = String::from_utf8(out)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        }
        headers(t, &mut ex.request_headers);
        headers(t, &mut ex.response_headers);
        let req_ct = ex.request_headers.get("content-type").map(str::to_owned);
        let resp_ct = ex.response_headers.get("content-type").map(str::to_owned);
        let binary = [
            body(t, req_ct.as_deref(), &mut ex.request_body, true),
            body(t, resp_ct.as_deref(), &mut ex.response_body, false),
        ];
        let binary = binary.iter().filter(|b| **b).count() as u64;
        self.binary_kept
            .fetch_add(binary, std::sync::atomic::Ordering::Relaxed);
        if let Some(e) = ex.error.as_mut() {
            substitute_string(t, e);
        }
        if let Some(u) = ex.upstream.as_mut() {
            substitute_string(t, u);
        }
        if !ex.request_truncated {
            fix_length(&mut ex.request_headers, ex.request_body.len());
        }
        if !ex.response_truncated {
            fix_length(&mut ex.response_headers, ex.response_body.len());
        }
    }

    /// Learn from an exchange which display names go with which addresses, without
    /// replacing anything: the pass over a whole recording reads it once this way first, so
    /// that a name met before its address still becomes that person's name.
    pub fn observe(&self, ex: &Exchange) {
        let mut table = self.lock();
        discover(&mut table, ex);
        for (headers, body) in [
            (&ex.request_headers, &ex.request_body),
            (&ex.response_headers, &ex.response_body),
        ] {
            let ct = headers
                .get("content-type")
                .unwrap_or("")
                .to_ascii_lowercase();
            let first = first_significant_byte(body);
            if ct.contains("json") || matches!(first, Some(b'{' | b'[')) {
                json::anonymize(&mut table, body, &Mode::Bind);
            } else if ct.contains("xml") || (first == Some(b'<') && !ct.contains("html")) {
                xml::anonymize(&mut table, body, &Mode::Bind);
            }
        }
    }
}

impl ExchangeFilter for Anonymizer {
    fn apply(&self, ex: &mut Exchange) {
        self.anonymize(ex);
    }
}

/// The organisation's domains an exchange reveals, learned before anything of it is
/// replaced (so its first occurrence is replaced too): addresses, `originalDomain=`, and the
/// front-end's own name (`X-MS-Server-Fqdn`).
fn discover(t: &mut Table, ex: &Exchange) {
    if t.keep_domains() {
        return;
    }
    ident::discover(t, ex.path.as_bytes());
    if let Some(q) = &ex.query {
        ident::discover(t, q.as_bytes());
    }
    for (name, value) in ex.request_headers.iter().chain(ex.response_headers.iter()) {
        ident::discover(t, value);
        if name.eq_ignore_ascii_case("x-ms-server-fqdn")
            && let Ok(host) = std::str::from_utf8(value)
            && let Some(d) = ident::organisation_of(host.trim(), &t.domains())
        {
            t.add_domain(&d);
        }
    }
    ident::discover(t, &ex.request_body);
    ident::discover(t, &ex.response_body);
}

fn substitute_string(t: &mut Table, s: &mut String) {
    if let Some(out) = ident::substitute(t, s.as_bytes()) {
        *s = String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    }
}

fn headers(t: &mut Table, headers: &mut HeaderList) {
    for (_, value) in headers.0.iter_mut() {
        if let Some(out) = ident::substitute(t, value) {
            *value = out;
        }
    }
}

/// A `Content-Length` that no longer matches the stored body is set to its length.
fn fix_length(headers: &mut HeaderList, len: usize) {
    for (name, value) in headers.0.iter_mut() {
        if name.eq_ignore_ascii_case("content-length")
            && value.as_slice() != len.to_string().as_bytes()
        {
            *value = len.to_string().into_bytes();
        }
    }
}

/// One body, by its content type and first byte. Returns true when it is binary and was
/// left as it was.
fn body(t: &mut Table, content_type: Option<&str>, body: &mut Vec<u8>, request: bool) -> bool {
    if body.is_empty() {
        return false;
    }
    let ct = content_type.unwrap_or("").to_ascii_lowercase();
    let essence = ct.split(';').next().unwrap_or("").trim().to_string();
    if photo::is_image(&essence) {
        let placeholder = photo::placeholder(&essence).unwrap_or_default();
        if body.as_slice() != placeholder {
            t.count(Category::Photo, true);
            *body = placeholder.to_vec();
        }
        return false;
    }
    let first = first_significant_byte(body);
    let textual = essence.starts_with("text/");
    let structured = if essence.contains("json") || (!textual && matches!(first, Some(b'{' | b'[')))
    {
        json::anonymize(t, body, &Mode::Replace)
    } else if essence.contains("xml") || (!textual && first == Some(b'<')) {
        xml::anonymize(t, body, &Mode::Replace)
    } else {
        None
    };
    if let Some(result) = structured {
        if let Some(out) = result {
            *body = out;
        }
        return false;
    }
    if essence.contains("json") || (!textual && matches!(first, Some(b'{' | b'['))) {
        if let Some(out) = json::lenient(t, body, &Mode::Replace) {
            *body = out;
        }
        return false;
    }
    if essence.contains("xml") || (!textual && first == Some(b'<')) {
        if let Some(out) = xml::lenient(t, body, &Mode::Replace) {
            *body = out;
        }
        return false;
    }
    let Ok(text) = std::str::from_utf8(body) else {
        return !crate::ucwa::media::is_text_like(content_type);
    };
    // A message: the text of a sendMessage POST (and any plain or HTML request body).
    if request && (essence == "text/plain" || essence == "text/html") {
        let replaced = text::replace(t, Category::Text, text, essence == "text/html");
        if replaced != text {
            *body = replaced.into_bytes();
            return false;
        }
    }
    if essence.contains("x-www-form-urlencoded") || looks_like_form(body) {
        if let Some(out) = form::anonymize(t, body, &Mode::Replace) {
            *body = out;
        }
        return false;
    }
    if let Some(out) = ident::substitute(t, body) {
        *body = out;
    }
    false
}
