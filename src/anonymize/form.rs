//! Form bodies and query strings (`subject=…&to=sip%3Abob%40contoso.com`): a value whose
//! field name says it is personal is replaced whole (form-encoded again); identifiers are
//! replaced in the raw bytes of everything else, percent-encoded or not.

use super::fields::Context;
use super::ident::{self, Span};
use super::json::{Mode, replace_value};
use super::table::Table;

/// `text` (a form body or a query) with its people replaced; None when nothing changed.
pub(crate) fn anonymize(table: &mut Table, text: &[u8], mode: &Mode) -> Option<Vec<u8>> {
    let mut spans: Vec<Span> = Vec::new();
    let mut at = 0;
    for pair in text.split(|b| *b == b'&') {
        let start = at;
        at += pair.len() + 1;
        let Some(eq) = pair.iter().position(|b| *b == b'=') else {
            continue;
        };
        let (raw_key, raw_value) = (&pair[..eq], &pair[eq + 1..]);
        let decode = |raw: &[u8]| -> String {
            let mut field = b"x=".to_vec();
            field.extend_from_slice(raw);
            form_urlencoded::parse(&field)
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let key = decode(raw_key);
        let key = key.strip_prefix("amp;").unwrap_or(&key);
        let value = decode(raw_value);
        if let Some(new) = replace_value(table, key, &value, Context::default(), None, mode) {
            let from = start + eq + 1;
            let encoded: String = form_urlencoded::byte_serialize(new.as_bytes()).collect();
            spans.push((from..from + raw_value.len(), encoded.into_bytes()));
        }
    }
    match mode {
        Mode::Bind | Mode::Collect(_) => None,
        Mode::Replace => ident::apply(table, text, spans),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_whole_and_identifiers_in_place() {
        let mut t = Table::new(b"k".to_vec(), false, false);
        let q = b"subject=Quarterly+numbers&to=sip%3Abob%40contoso.com&limit=10";
        let out = String::from_utf8(anonymize(&mut t, q, &Mode::Replace).unwrap()).unwrap();
        let bob = t.address("bob", "contoso.com").replace('@', "%40");
        assert!(out.ends_with(&format!("&to=sip%3A{bob}&limit=10")), "{out}");
        assert!(
            out.starts_with("subject=") && !out.contains("Quarterly"),
            "{out}"
        );
    }
}
