//! Finding people without replacing them, for `audit --pii`: the same knowledge as the
//! anonymiser (the shapes of `ident`, the places of `fields` read by the same JSON, XML and
//! form passes), so that "anonymised" means the same to both.

use std::cell::RefCell;

use super::fields::Field;
use super::json::Mode;
use super::table::Table;
use super::{form, ident, json, xml};

/// Where a value was found by its place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// A display name (or a people-search term).
    Name,
    /// A title, department, company or office.
    Job,
    /// A phone number field.
    Phone,
    /// A presence note or location.
    Note,
    /// Message text.
    Text,
    /// A subject.
    Subject,
    /// A `data:` URI (message text or an image).
    DataUri,
}

impl From<Field> for Place {
    fn from(f: Field) -> Self {
        match f {
            Field::Name | Field::Search => Place::Name,
            Field::Job(_) => Place::Job,
            Field::Phone => Place::Phone,
            Field::Note => Place::Note,
            Field::Text => Place::Text,
            Field::Subject => Place::Subject,
        }
    }
}

/// A value found by its place, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub place: Place,
    pub value: String,
}

/// An address found by its shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// Lower-case local part and domain.
    pub local: String,
    pub domain: String,
    /// Written as a SIP URI (`sip:` or `sip%3A` before it).
    pub sip: bool,
}

/// Every address in a text (raw or percent-encoded).
pub fn find_addresses(text: &[u8]) -> Vec<Address> {
    ident::addresses(text)
        .into_iter()
        .map(|f| {
            let before = &text[..f.start];
            let lower = |n: usize| {
                before
                    .get(before.len().saturating_sub(n)..)
                    .map(|b| b.to_ascii_lowercase())
                    .unwrap_or_default()
            };
            Address {
                sip: lower(4) == b"sip:" || lower(6) == b"sip%3a",
                local: f.local,
                domain: f.domain,
            }
        })
        .collect()
}

/// The digits of every `tel:` number in a text.
pub fn find_phones(text: &[u8]) -> Vec<String> {
    ident::phones(text)
        .into_iter()
        .map(|(s, e)| {
            text[s..e]
                .iter()
                .filter(|b| b.is_ascii_digit())
                .map(|b| *b as char)
                .collect()
        })
        .collect()
}

/// The values a JSON, XML or form body holds by their place (empty for other bodies).
pub fn placed_values(content_type: Option<&str>, body: &[u8]) -> Vec<Placed> {
    let mode = Mode::Collect(RefCell::new(Vec::new()));
    let mut table = Table::new(Vec::new(), true, true);
    let ct = content_type.unwrap_or("").to_ascii_lowercase();
    let first = crate::ucwa::media::first_significant_byte(body);
    let textual = ct.starts_with("text/");
    if ct.contains("json") || (!textual && matches!(first, Some(b'{' | b'['))) {
        if json::anonymize(&mut table, body, &mode).is_none() {
            json::lenient(&mut table, body, &mode);
        }
    } else if ct.contains("xml") || (!textual && first == Some(b'<')) {
        if xml::anonymize(&mut table, body, &mode).is_none() {
            xml::lenient(&mut table, body, &mode);
        }
    } else if ct.contains("x-www-form-urlencoded") || crate::redact::looks_like_form(body) {
        form::anonymize(&mut table, body, &mode);
    }
    match mode {
        Mode::Collect(found) => found.into_inner(),
        _ => Vec::new(),
    }
}

/// The values a query string holds by their field names.
pub fn placed_in_query(query: &str) -> Vec<Placed> {
    let mode = Mode::Collect(RefCell::new(Vec::new()));
    let mut table = Table::new(Vec::new(), true, true);
    form::anonymize(&mut table, query.as_bytes(), &mode);
    match mode {
        Mode::Collect(found) => found.into_inner(),
        _ => Vec::new(),
    }
}
