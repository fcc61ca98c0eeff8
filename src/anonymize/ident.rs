//! Identifiers found by their shape in any text — a URL path or query, a header value, a
//! body: e-mail addresses and the addresses of SIP URIs (`alice@contoso.com`, also
//! percent-encoded `alice%40contoso.com`), `tel:` numbers, and host names under the
//! organisation's domains. Each is replaced where it stands; every other byte stays, so a
//! JSON string, an XML attribute or a percent-encoded path segment is still what it was.

use super::table::{Table, is_reserved_domain};

/// Bytes of an address's local part (RFC 5322 atoms as people's addresses use them).
fn local_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'+' | b'-')
}

fn label_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

fn is_hex(b: u8) -> bool {
    b.is_ascii_hexdigit()
}

/// One address found in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    pub start: usize,
    pub end: usize,
    /// Lower-case local part and domain.
    pub local: String,
    pub domain: String,
    /// `%40` rather than `@`.
    pub encoded: bool,
}

/// Every address in `text`, in order.
pub(crate) fn addresses(text: &[u8]) -> Vec<Found> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < text.len() {
        let (at_len, encoded) = if text[i] == b'@' {
            (1, false)
        } else if text[i] == b'%'
            && text.get(i + 1) == Some(&b'4')
            && text.get(i + 2) == Some(&b'0')
        {
            (3, true)
        } else {
            i += 1;
            continue;
        };
        // Left: the local part, not counting a `%3A` (`sip%3Aalice`) that ends before it.
        let mut start = i;
        while start > 0 && local_byte(text[start - 1]) {
            start -= 1;
        }
        if start >= 1 && text[start - 1] == b'%' && start + 2 <= i {
            // `sip%3Aalice`: the expansion took the hex digits of the escape before the name.
            if is_hex(text[start]) && is_hex(text[start + 1]) {
                start += 2;
            }
        }
        while start < i && text[start] == b'.' {
            start += 1;
        }
        // Right: dot-separated labels.
        let mut end = i + at_len;
        let domain_start = end;
        while end < text.len() && (label_byte(text[end]) || text[end] == b'.') {
            end += 1;
        }
        while end > domain_start && matches!(text[end - 1], b'.' | b'-') {
            end -= 1;
        }
        let local = &text[start..i];
        let domain = &text[domain_start..end];
        if !local.is_empty() && valid_domain(domain) {
            out.push(Found {
                start,
                end,
                local: String::from_utf8_lossy(local).to_ascii_lowercase(),
                domain: String::from_utf8_lossy(domain).to_ascii_lowercase(),
                encoded,
            });
            i = end.max(i + 1);
        } else {
            i += at_len;
        }
    }
    out
}

/// A host name with at least two labels and an alphabetic top-level label.
fn valid_domain(domain: &[u8]) -> bool {
    let Ok(d) = std::str::from_utf8(domain) else {
        return false;
    };
    let labels: Vec<&str> = d.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| !l.is_empty())
        && labels
            .last()
            .is_some_and(|t| t.len() >= 2 && t.bytes().all(|b| b.is_ascii_alphabetic()))
}

/// Every `tel:` number (also `tel%3A`): the span of its digits and separators.
pub(crate) fn phones(text: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 4 <= text.len() {
        let prefix = if text[i..].len() >= 4 && text[i..i + 4].eq_ignore_ascii_case(b"tel:") {
            4
        } else if text[i..].len() >= 6 && text[i..i + 6].eq_ignore_ascii_case(b"tel%3a") {
            6
        } else {
            i += 1;
            continue;
        };
        if i > 0 && text[i - 1].is_ascii_alphanumeric() {
            i += 1;
            continue;
        }
        let start = i + prefix;
        let mut end = start;
        while end < text.len() {
            let b = text[end];
            let spaced = b == b' '
                && text
                    .get(end + 1)
                    .is_some_and(|n| n.is_ascii_digit() || *n == b'(');
            if b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'(' | b')') || spaced {
                end += 1;
            } else {
                break;
            }
        }
        while end > start && matches!(text[end - 1], b'.' | b'-' | b'(') {
            end -= 1;
        }
        if text[start..end].iter().any(u8::is_ascii_digit) {
            out.push((start, end));
        }
        i = end.max(i + 1);
    }
    out
}

/// The digits of a phone number replaced, its `+`, dashes and brackets kept.
pub(crate) fn replace_digits(table: &mut Table, spelled: &str) -> String {
    let digits: String = spelled.chars().filter(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return spelled.to_string();
    }
    let pseudo = table.phone(&digits);
    let mut next = pseudo.chars().filter(char::is_ascii_digit);
    spelled
        .chars()
        .map(|c| {
            if c.is_ascii_digit() {
                next.next().unwrap_or('0')
            } else {
                c
            }
        })
        .collect()
}

/// Learn the organisation's domains a text reveals before anything is replaced: the domain
/// of every address, and autodiscover's `originalDomain=` (the SIP domain by definition).
pub(crate) fn discover(table: &mut Table, text: &[u8]) {
    for f in addresses(text) {
        table.add_domain(&f.domain);
    }
    static KEY: std::sync::OnceLock<aho_corasick::AhoCorasick> = std::sync::OnceLock::new();
    let key = KEY.get_or_init(|| {
        aho_corasick::AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(["originaldomain=", "originaldomain%3d"])
            .expect("static patterns")
    });
    for m in key.find_iter(text) {
        let rest = &text[m.end()..];
        let end = rest
            .iter()
            .position(|b| !(label_byte(*b) || *b == b'.'))
            .unwrap_or(rest.len());
        if valid_domain(&rest[..end]) {
            table.add_domain(&String::from_utf8_lossy(&rest[..end]).to_ascii_lowercase());
        }
    }
}

/// Host names never rewritten whatever the organisation's domains: protocol constants
/// (the UCWA XML namespace lives on `schemas.microsoft.com`).
const PROTECTED_HOSTS: &[&str] = &["schemas.microsoft.com", "www.w3.org"];

/// Replace addresses, `tel:` numbers and host names under the organisation's domains in
/// `text`; `None` when nothing changed.
pub(crate) fn substitute(table: &mut Table, text: &[u8]) -> Option<Vec<u8>> {
    let mut current: Option<Vec<u8>> = None;
    // 1. Addresses.
    let found = addresses(text);
    if !found.is_empty() {
        let mut out = Vec::with_capacity(text.len());
        let mut copied = 0;
        for f in &found {
            if is_reserved_domain(&f.domain) {
                continue;
            }
            let pseudo = table.address(&f.local, &f.domain);
            out.extend_from_slice(&text[copied..f.start]);
            if f.encoded {
                let enc =
                    percent_encoding::utf8_percent_encode(&pseudo, ADDRESS_ENCODE).to_string();
                out.extend_from_slice(enc.as_bytes());
            } else {
                out.extend_from_slice(pseudo.as_bytes());
            }
            copied = f.end;
        }
        if copied > 0 {
            out.extend_from_slice(&text[copied..]);
            current = Some(out);
        }
    }
    // 2. Phone numbers.
    let t = current.as_deref().unwrap_or(text);
    let spans = phones(t);
    if !spans.is_empty() {
        let mut out = Vec::with_capacity(t.len());
        let mut copied = 0;
        for (s, e) in spans {
            out.extend_from_slice(&t[copied..s]);
            let spelled = String::from_utf8_lossy(&t[s..e]).into_owned();
            out.extend_from_slice(replace_digits(table, &spelled).as_bytes());
            copied = e;
        }
        out.extend_from_slice(&t[copied..]);
        current = Some(out);
    }
    // 3. Host names under the organisation's domains.
    if !table.keep_domains()
        && let Some((matcher, domains)) = table.domain_matcher()
    {
        let t = current.as_deref().unwrap_or(text);
        let mut out: Option<Vec<u8>> = None;
        let mut copied = 0;
        for m in matcher.find_iter(t) {
            let (s, e) = (m.start(), m.end());
            // Left: the start of a label; right: the end of the host name.
            if s > 0 && label_byte(t[s - 1]) {
                continue;
            }
            if e < t.len()
                && (label_byte(t[e])
                    || (t[e] == b'.' && t.get(e + 1).is_some_and(|b| label_byte(*b))))
            {
                continue;
            }
            let mut host_start = s;
            while host_start > 0 && (label_byte(t[host_start - 1]) || t[host_start - 1] == b'.') {
                host_start -= 1;
            }
            let host = String::from_utf8_lossy(&t[host_start..e]).to_ascii_lowercase();
            if PROTECTED_HOSTS.contains(&host.as_str()) {
                continue;
            }
            let pseudo = table.domain(&domains[m.pattern().as_usize()]);
            let o = out.get_or_insert_with(|| Vec::with_capacity(t.len()));
            o.extend_from_slice(&t[copied..s]);
            o.extend_from_slice(pseudo.as_bytes());
            copied = e;
        }
        if let Some(mut o) = out {
            o.extend_from_slice(&t[copied..]);
            current = Some(o);
        }
    }
    current
}

/// What a percent-encoded address pseudonym escapes (a pinned one may hold anything).
const ADDRESS_ENCODE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'.')
    .remove(b'-')
    .remove(b'_')
    .remove(b'~');

/// The organisation domain of a host name: a known domain it ends with, else the host
/// without its first label (`fe1.contoso.com` → `contoso.com`) when it has three or more,
/// else the host itself. IP addresses and single labels have none.
pub(crate) fn organisation_of(host: &str, known: &[String]) -> Option<String> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.parse::<std::net::IpAddr>().is_ok()
        || host.starts_with('[')
        || !valid_domain(host.as_bytes())
        || is_reserved_domain(&host)
    {
        return None;
    }
    if let Some(d) = known
        .iter()
        .find(|d| host == **d || host.ends_with(&format!(".{d}")))
    {
        return Some(d.clone());
    }
    let labels: Vec<&str> = host.split('.').collect();
    Some(if labels.len() >= 3 {
        labels[1..].join(".")
    } else {
        host
    })
}

/// A byte range of a body and what it becomes (a whole value found by its place).
pub(crate) type Span = (std::ops::Range<usize>, Vec<u8>);

/// `text` with each span replaced and identifiers replaced in the bytes between spans (a
/// value replaced whole is never searched again); None when nothing changed.
pub(crate) fn apply(table: &mut Table, text: &[u8], mut spans: Vec<Span>) -> Option<Vec<u8>> {
    spans.sort_by_key(|(r, _)| r.start);
    // None while the output is still identical to `text` up to `at`.
    let mut out: Option<Vec<u8>> = None;
    let begin = |out: &mut Option<Vec<u8>>, upto: usize| {
        if out.is_none() {
            let mut v = Vec::with_capacity(text.len() + 64);
            v.extend_from_slice(&text[..upto]);
            *out = Some(v);
        }
    };
    let mut at = 0;
    let mut pieces: Vec<(usize, usize, Option<&[u8]>)> = Vec::new();
    for (range, replacement) in &spans {
        if range.start < at || range.end > text.len() {
            continue;
        }
        pieces.push((at, range.start, None));
        pieces.push((range.start, range.end, Some(replacement.as_slice())));
        at = range.end;
    }
    pieces.push((at, text.len(), None));
    for (from, to, replacement) in pieces {
        let original = &text[from..to];
        let new = match replacement {
            Some(r) if r != original => Some(r.to_vec()),
            Some(_) => None,
            None => substitute(table, original),
        };
        match (new, out.as_mut()) {
            (Some(new), _) => {
                begin(&mut out, from);
                out.as_mut().expect("begun").extend_from_slice(&new);
            }
            (None, Some(o)) => o.extend_from_slice(original),
            (None, None) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(text: &str) -> Vec<String> {
        addresses(text.as_bytes())
            .into_iter()
            .map(|f| {
                format!(
                    "{}|{}@{}|{}",
                    &text[f.start..f.end],
                    f.local,
                    f.domain,
                    f.encoded
                )
            })
            .collect()
    }

    #[test]
    fn finds_addresses_raw_and_percent_encoded() {
        assert_eq!(
            spans("/participants/Bob@Contoso.com/messaging"),
            ["Bob@Contoso.com|bob@contoso.com|false"]
        );
        assert_eq!(
            spans("/people/sip%3Aalice%40contoso.com?x"),
            ["alice%40contoso.com|alice@contoso.com|true"]
        );
        assert_eq!(
            spans("\"sip:a.b@eu.contoso.com\""),
            ["a.b@eu.contoso.com|a.b@eu.contoso.com|false"]
        );
        assert!(spans("user@localhost and x@1.2 and @ alone").is_empty());
        assert_eq!(
            spans("mail bob@contoso.com."),
            ["bob@contoso.com|bob@contoso.com|false"]
        );
    }

    #[test]
    fn substitutes_in_place_and_consistently() {
        let mut t = Table::new(b"k".to_vec(), false, false);
        let text = br#"{"uri":"sip:bob@contoso.com","href":"https:\/\/fe1.contoso.com\/people\/bob%40contoso.com","n":"tel:+1 (425) 555-0100","ns":"http://schemas.microsoft.com/rtc"}"#;
        let out = String::from_utf8(substitute(&mut t, text).unwrap()).unwrap();
        let bob = t.address("bob", "contoso.com");
        let org = t.domain("contoso.com");
        assert!(out.contains(&format!("\"sip:{bob}\"")), "{out}");
        assert!(out.contains(&format!("fe1.{org}\\/people")), "{out}");
        assert!(out.contains(&bob.replace('@', "%40")), "{out}");
        // The digits change (to 999…), the layout stays.
        assert!(out.contains("\"tel:+9 (99"), "{out}");
        assert!(out.contains("schemas.microsoft.com"), "{out}");
        assert!(!out.contains("contoso") && !out.contains("425"), "{out}");
        serde_json::from_str::<serde_json::Value>(&out).unwrap();
    }

    #[test]
    fn organisation_domains_of_hosts() {
        assert_eq!(
            organisation_of("fe1.contoso.com", &[]).as_deref(),
            Some("contoso.com")
        );
        assert_eq!(
            organisation_of("contoso.com", &[]).as_deref(),
            Some("contoso.com")
        );
        assert_eq!(
            organisation_of("a.b.contoso.co.uk", &["contoso.co.uk".into()]).as_deref(),
            Some("contoso.co.uk")
        );
        assert_eq!(organisation_of("127.0.0.1", &[]), None);
        assert_eq!(organisation_of("localhost", &[]), None);
    }
}
