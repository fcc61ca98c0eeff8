//! Anonymisation: a copy of a recording in which every person is replaced by a pseudonym,
//! consistently across the whole file, so that it can be committed or attached to a bug
//! report and still replays.
//!
//! # The pseudonym scheme
//! Every pseudonym is derived from a keyed hash (HMAC-SHA-256) of the real value under a
//! salt: the same salt gives the same recording byte for byte; without one, a random salt
//! is drawn and the pseudonyms cannot be reversed by hashing a list of known names. A
//! *tag* is 6 characters of that hash (`k7qz3m`, lengthened only if two values collide).
//!
//! | real | pseudonym |
//! | --- | --- |
//! | `alice@contoso.com`, `sip:alice@contoso.com`, `alice%40contoso.com` | `user.TAG@org-TAG.example`, with the same `sip:` / encoding around it |
//! | the display name of that person (`Alice Smith`, a link's `title`) | `User TAG`: the name form of the address pseudonym |
//! | an organisation domain (`contoso.com`: a SIP domain, the front-end's) | `org-TAG.example`; host names keep their first labels (`fe1.org-TAG.example`) |
//! | a `title`, `department`, `company`, `office` | `Title TAG`, `Department TAG`, … |
//! | a phone number (`tel:+14255550100`) | as many digits, `+999…` (a country code no one has) |
//! | message text, a subject (plain, HTML, `data:` URIs, `text/plain` POST bodies) | filler of the same length per line (HTML tags kept) |
//! | a presence note or location | filler of the same length |
//! | a photo (`image/*` body, `data:image/…`) | a one-pixel grey image of the same type |
//!
//! Addresses in domains reserved for documentation (`example.org`, `*.example`, `*.test`,
//! `*.invalid`) are already anonymous and stay; so does the local part of a service
//! principal (`00000002-0000-0ff1-ce00-000000000000@…`). Pins (`--map REAL=PSEUDO`) take
//! precedence: an address, a domain, a phone number or any other value (a name, a text).
//!
//! # How values are found
//! By shape anywhere (addresses, `tel:`, host names under the organisation's domains: the
//! domains of every address seen and of the session's upstreams) — path, query, every
//! header, every text body, the error text, the upstream origin; and by place (`fields`):
//! JSON members, XML `<property name>`s and form fields named `name`, `title`, `subject`,
//! `message`, …, a link's `title`, `data:` URIs, `text/plain` and `text/html` request
//! bodies, image bodies. Replacement substitutes bytes in place, like redaction and origin
//! rewriting: key order, white space, `\/` escapes, entities and a BOM stay.
//!
//! Not examined: binary bodies other than images (counted), and the parts of a
//! `multipart/batching` body beyond the identifiers in it.
//!
//! # Parts
//! `table` the pseudonyms; `filler` text of similar length; `ident` identifiers by shape;
//! `fields` personal members by place; `json`, `xml`, `form`, `text` (plain, HTML, data
//! URIs) and `photo` the bodies; `exchange` one exchange; `pass` a recording into another;
//! `find` the same knowledge for `audit --pii`.

mod exchange;
mod fields;
mod filler;
mod find;
mod form;
mod ident;
mod json;
mod pass;
mod photo;
mod table;
mod text;
mod xml;

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

pub use self::filler::{WORDS as FILLER_WORDS, is_filler};
pub use self::find::{
    Address, Place, Placed, find_addresses, find_phones, placed_in_query, placed_values,
};
pub use self::pass::{AnonymizeOptions, AnonymizeReport, anonymize_recording};
pub use self::photo::placeholder as placeholder_image;
pub use self::table::{MappingEntry, Tally, is_reserved_domain, name_of_address};
pub use self::text::{data_uri_text, html_runs};

use self::table::Table;
use crate::error::Error;

/// What a replaced value was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    /// A person's address (e-mail, SIP URI).
    Address,
    /// An organisation domain.
    Domain,
    /// A display name.
    Name,
    /// A title, department, company or office.
    Job,
    /// A phone number.
    Phone,
    /// Message text.
    Text,
    /// A subject.
    Subject,
    /// A presence note or location.
    Note,
    /// A photo.
    Photo,
}

impl Category {
    /// Every category, in the order they are reported.
    pub const ALL: [Category; 9] = [
        Category::Address,
        Category::Domain,
        Category::Name,
        Category::Job,
        Category::Phone,
        Category::Text,
        Category::Subject,
        Category::Note,
        Category::Photo,
    ];

    /// The stored and printed name.
    pub fn label(self) -> &'static str {
        match self {
            Category::Address => "address",
            Category::Domain => "domain",
            Category::Name => "name",
            Category::Job => "job",
            Category::Phone => "phone",
            Category::Text => "text",
            Category::Subject => "subject",
            Category::Note => "note",
            Category::Photo => "photo",
        }
    }

    /// What a reader calls it.
    pub fn describe(self) -> &'static str {
        match self {
            Category::Address => "people (e-mail / SIP addresses)",
            Category::Domain => "organisation domains",
            Category::Name => "display names",
            Category::Job => "titles, departments, companies, offices",
            Category::Phone => "phone numbers",
            Category::Text => "message texts",
            Category::Subject => "subjects",
            Category::Note => "presence notes and locations",
            Category::Photo => "photos",
        }
    }
}

/// How to anonymise. Start from [`AnonymizeConfig::new`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct AnonymizeConfig {
    /// The salt of the keyed hash (`--salt`); None draws a random one.
    pub salt: Option<String>,
    /// `(real, pseudonym)` pairs that take precedence (`--map REAL=PSEUDO`).
    pub pins: Vec<(String, String)>,
    /// Keep message text and subjects (`--keep-text`).
    pub keep_text: bool,
    /// Keep the organisation's domains (`--keep-domains`).
    pub keep_domains: bool,
}

impl AnonymizeConfig {
    /// Random salt, no pins, everything replaced.
    pub fn new() -> Self {
        Self::default()
    }

    /// A fixed salt: the same input gives the same output.
    pub fn with_salt(mut self, salt: impl Into<String>) -> Self {
        self.salt = Some(salt.into());
        self
    }

    /// Pin a pseudonym.
    pub fn with_pin(mut self, real: impl Into<String>, pseudonym: impl Into<String>) -> Self {
        self.pins.push((real.into(), pseudonym.into()));
        self
    }
}

/// `REAL=PSEUDO` (split at the first `=`), as `--map` takes it.
pub fn parse_pin(text: &str) -> Result<(String, String), Error> {
    match text.split_once('=') {
        Some((real, pseudo)) if !real.trim().is_empty() && !pseudo.trim().is_empty() => {
            Ok((real.trim().to_string(), pseudo.trim().to_string()))
        }
        _ => Err(Error::invalid(
            "--map",
            "expected REAL=PSEUDONYM with both sides non-empty",
        )),
    }
}

/// What was replaced: per category, how many distinct values and how many times; and the
/// bodies left as they were because they are binary.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Replaced {
    pub categories: BTreeMap<&'static str, Tally>,
    pub binary_bodies_kept: u64,
}

/// The anonymiser of a run: its pseudonym table is shared by every exchange (and every
/// session) it sees. Thread-safe; the recording proxy's connections share one.
#[derive(Debug)]
pub struct Anonymizer {
    table: Mutex<Table>,
    binary_kept: std::sync::atomic::AtomicU64,
}

impl Anonymizer {
    /// Check the pins and draw the salt.
    pub fn new(config: &AnonymizeConfig) -> Result<Self, Error> {
        let key = match &config.salt {
            Some(s) if s.is_empty() => return Err(Error::invalid("--salt", "empty salt")),
            Some(s) => s.as_bytes().to_vec(),
            None => {
                let mut key = vec![0u8; 32];
                getrandom::getrandom(&mut key).map_err(|e| Error::Invalid {
                    what: "salt",
                    message: "no random salt could be drawn".into(),
                    source: Some(Box::new(std::io::Error::other(e.to_string()))),
                })?;
                key
            }
        };
        let mut table = Table::new(key, config.keep_domains, config.keep_text);
        for (i, (real, pseudo)) in config.pins.iter().enumerate() {
            pin(&mut table, i + 1, real, pseudo)?;
        }
        Ok(Anonymizer {
            table: Mutex::new(table),
            binary_kept: Default::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // A panic while holding the lock leaves at worst a value without a pseudonym yet.
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Declare an origin of the deployment (`https://fe1.contoso.com`): its organisation
    /// domain is replaced wherever it appears.
    pub fn add_origin(&self, origin: &str) {
        let host = origin
            .split("://")
            .nth(1)
            .unwrap_or(origin)
            .split(['/', '?'])
            .next()
            .unwrap_or("");
        let host = match host.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => host,
        };
        let mut table = self.lock();
        let known: Vec<String> = table.domain_matcher().map(|(_, d)| d).unwrap_or_default();
        if let Some(domain) = ident::organisation_of(host, &known) {
            table.add_domain(&domain);
        }
    }

    /// A piece of text (an origin, a session's upstream) with its identifiers replaced.
    pub fn anonymize_text(&self, text: &str) -> String {
        let mut table = self.lock();
        match ident::substitute(&mut table, text.as_bytes()) {
            Some(out) => String::from_utf8(out).unwrap_or_else(|_| text.to_string()),
            None => text.to_string(),
        }
    }

    /// What was replaced so far.
    pub fn replaced(&self) -> Replaced {
        let tallies = self.lock().tallies();
        Replaced {
            categories: Category::ALL
                .iter()
                .map(|c| (c.label(), tallies.get(c).copied().unwrap_or_default()))
                .collect(),
            binary_bodies_kept: self.binary_kept.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// The real → pseudonym table (private: it undoes the anonymisation).
    pub fn mapping(&self) -> Vec<MappingEntry> {
        self.lock().entries()
    }

    /// Write the table as JSON (`ucwa-replay.pseudonyms/1`) to `path`, readable by its
    /// owner only where the platform says so.
    pub fn write_mapping(&self, path: &std::path::Path) -> Result<(), Error> {
        let doc = serde_json::json!({
            "format": "ucwa-replay.pseudonyms/1",
            "note": "real values: keep this file private",
            "entries": self.mapping(),
        });
        let text = serde_json::to_vec_pretty(&doc).map_err(std::io::Error::from)?;
        let write = || -> std::io::Result<()> {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(path)?;
            std::io::Write::write_all(&mut file, &text)?;
            std::io::Write::write_all(&mut file, b"\n")?;
            file.sync_all()
        };
        write().map_err(|source| Error::WriteFile {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// Enter one `--map` pair (the `n`th) in the table. Error messages name the pair by its
/// position, never by its values.
fn pin(table: &mut Table, n: usize, real: &str, pseudo: &str) -> Result<(), Error> {
    let bad = |message: String| Error::invalid("--map", message);
    let strip = |s: &str| -> String {
        let lower = s.to_ascii_lowercase();
        ["sip:", "mailto:"]
            .iter()
            .find(|p| lower.starts_with(*p))
            .map_or(s.to_string(), |p| s[p.len()..].to_string())
    };
    let whole_address = |s: &str| -> Option<ident::Found> {
        let found = ident::addresses(s.as_bytes());
        match found.as_slice() {
            [f] if f.start == 0 && f.end == s.len() && !f.encoded => Some(f.clone()),
            _ => None,
        }
    };
    let (real_s, pseudo_s) = (strip(real), strip(pseudo));
    let ok = if let Some(f) = whole_address(&real_s) {
        if whole_address(&pseudo_s).is_none() {
            return Err(bad(format!(
                "pair {n} maps an address to something that is not one"
            )));
        }
        table.pin(
            Category::Address,
            format!("{}@{}", f.local, f.domain),
            pseudo_s.to_ascii_lowercase(),
        )
    } else if let Some(digits) = phone_digits(real) {
        let Some(p) = phone_digits(pseudo) else {
            return Err(bad(format!(
                "pair {n} maps a phone number to something that is not one"
            )));
        };
        let _ = p;
        table.pin(
            Category::Phone,
            digits,
            pseudo.trim_start_matches("tel:").to_string(),
        )
    } else if is_domain(real) {
        if !is_domain(pseudo) {
            return Err(bad(format!(
                "pair {n} maps a domain to something that is not one"
            )));
        }
        let d = real.to_ascii_lowercase();
        table.add_domain(&d);
        table.pin(Category::Domain, d, pseudo.to_ascii_lowercase())
    } else {
        [Category::Name, Category::Job, Category::Text]
            .iter()
            .all(|c| table.pin(*c, real.to_string(), pseudo.to_string()))
    };
    if ok {
        Ok(())
    } else {
        Err(bad(format!(
            "pair {n} pins a value or a pseudonym that an earlier --map already pins differently"
        )))
    }
}

/// The digits of a phone number written as `tel:…` or `+1 (425) …`.
fn phone_digits(s: &str) -> Option<String> {
    let body = s.strip_prefix("tel:").unwrap_or(s);
    let ok = body
        .chars()
        .all(|c| c.is_ascii_digit() || " +-.()".contains(c));
    let digits: String = body.chars().filter(char::is_ascii_digit).collect();
    (ok && digits.len() >= 3
        && (s.starts_with("tel:") || body.starts_with('+') || digits.len() >= 6))
        .then_some(digits)
}

fn is_domain(s: &str) -> bool {
    !s.contains(char::is_whitespace)
        && !s.contains('@')
        && s.contains('.')
        && s.split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        && s.rsplit('.')
            .next()
            .is_some_and(|t| t.len() >= 2 && t.bytes().all(|b| b.is_ascii_alphabetic()))
}

/// Recognising pseudonyms (for `audit --pii`): whether an address is anonymous — in a
/// reserved domain, a `user.TAG` local part, or a service principal's GUID.
pub fn is_anonymous_address(local: &str, domain: &str) -> bool {
    is_reserved_domain(domain)
        || table::is_guid(local)
        || local.strip_prefix(table::USER_PREFIX).is_some_and(is_tag)
}

/// Whether a value of a name or job field is one of the pseudonyms made here
/// (`User K7qz3m`, `Department K7qz3m`).
pub fn is_pseudonym_name(value: &str) -> bool {
    match value.split_once(' ') {
        Some((word, tag)) => {
            ["User", "Title", "Department", "Company", "Office"].contains(&word)
                && is_tag(&tag.to_ascii_lowercase())
        }
        None => false,
    }
}

/// Whether a phone number's digits are a pseudonym (`999…`).
pub fn is_pseudonym_phone(digits: &str) -> bool {
    digits.starts_with(table::PHONE_PREFIX)
}

fn is_tag(s: &str) -> bool {
    s.len() >= table::TAG_LEN
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b.is_ascii_lowercase() && !b"ilou".contains(&b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_checked_and_named_by_position() {
        let ok = AnonymizeConfig::new()
            .with_salt("s")
            .with_pin("sip:bob@contoso.com", "peer@example.org")
            .with_pin("contoso.com", "corp.example")
            .with_pin("tel:+14255550100", "tel:+19995550100")
            .with_pin("Fine, thanks!", "Lorem ipsum.");
        Anonymizer::new(&ok).unwrap();
        let bad = AnonymizeConfig::new().with_pin("bob@contoso.com", "Bob");
        let err = Anonymizer::new(&bad).unwrap_err().to_string();
        assert!(err.contains("pair 1") && !err.contains("bob"), "{err}");
        let twice = AnonymizeConfig::new()
            .with_pin("bob@contoso.com", "peer@example.org")
            .with_pin("carol@contoso.com", "peer@example.org");
        assert!(
            Anonymizer::new(&twice)
                .unwrap_err()
                .to_string()
                .contains("pair 2")
        );
        assert!(parse_pin("novalue=").is_err() && parse_pin("a=b=c").unwrap().1 == "b=c");
        assert!(Anonymizer::new(&AnonymizeConfig::new().with_salt("")).is_err());
    }

    #[test]
    fn pseudonyms_are_recognised() {
        assert!(is_anonymous_address("user.k7qz3m", "contoso.com"));
        assert!(is_anonymous_address("bob", "example.org"));
        assert!(!is_anonymous_address("bob", "contoso.com"));
        assert!(is_pseudonym_name("User K7qz3m"));
        assert!(!is_pseudonym_name("User Bob"));
        assert!(!is_pseudonym_name("Alice Smith"));
    }
}
