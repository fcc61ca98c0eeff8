//! The pseudonym table: one pseudonym per real value for the life of a run, derived from a
//! keyed hash of the value so that the same salt gives the same pseudonyms whatever order
//! the values are met in, and no salt (a random one) gives pseudonyms that cannot be
//! reversed by hashing a list of known names.
//!
//! Values are keyed by category and a canonical form (addresses and domains lower-case), so
//! `Alice@Contoso.com` and `alice@contoso.com` are one person. Pins (`--map`) are entered
//! first and always win.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use aho_corasick::AhoCorasick;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::Category;
use super::filler;

/// Characters of a tag: digits and lower-case letters without `i`, `l`, `o` and `u` (no
/// look-alikes), 32 of them, so each carries 5 bits of the hash.
const TAG_ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
/// Tag length: 30 bits, lengthened only on a collision.
pub(crate) const TAG_LEN: usize = 6;
/// Longest tag: the 256-bit hash has 51 characters of 5 bits.
const MAX_TAG_LEN: usize = 51;

/// Local part given to every person pseudonym: `user.k7qz3m@…`.
pub(crate) const USER_PREFIX: &str = "user.";
/// Label prefix of a domain pseudonym: `org-k7qz3m.example`.
pub(crate) const ORG_PREFIX: &str = "org-";
/// The reserved top-level domain of domain pseudonyms (RFC 2606).
pub(crate) const PSEUDO_TLD: &str = ".example";
/// Country code of phone pseudonyms: `+999` is reserved by the ITU, no real number has it.
pub(crate) const PHONE_PREFIX: &str = "999";

type HmacSha256 = Hmac<Sha256>;

/// How many distinct values of a category were replaced, and how many times.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Tally {
    pub distinct: u64,
    pub occurrences: u64,
}

/// One entry of the real → pseudonym table (for `--mapping-out`, kept private).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MappingEntry {
    pub category: &'static str,
    pub real: String,
    pub pseudonym: String,
    /// Given with `--map` rather than derived.
    pub pinned: bool,
}

/// The table itself; guarded by the anonymiser's lock.
#[derive(Debug)]
pub(crate) struct Table {
    key: Vec<u8>,
    keep_domains: bool,
    keep_text: bool,
    /// (category, canonical real value) → pseudonym.
    map: HashMap<(Category, String), Entry>,
    /// (category, pseudonym) → canonical real value: a pseudonym stands for one value.
    taken: HashMap<(Category, String), String>,
    /// A display name → the address it was first seen with.
    bindings: HashMap<String, String>,
    /// The organisation's domains, lower-case, and a matcher over them (rebuilt on change).
    domains: Vec<String>,
    matcher: Option<Arc<AhoCorasick>>,
    tallies: BTreeMap<Category, Tally>,
}

#[derive(Debug, Clone)]
struct Entry {
    pseudonym: String,
    pinned: bool,
}

impl Table {
    pub(crate) fn new(key: Vec<u8>, keep_domains: bool, keep_text: bool) -> Self {
        Table {
            key,
            keep_domains,
            keep_text,
            map: HashMap::new(),
            taken: HashMap::new(),
            bindings: HashMap::new(),
            domains: Vec::new(),
            matcher: None,
            tallies: BTreeMap::new(),
        }
    }

    pub(crate) fn keep_text(&self) -> bool {
        self.keep_text
    }

    pub(crate) fn keep_domains(&self) -> bool {
        self.keep_domains
    }

    /// The keyed hash of a value of a category.
    pub(crate) fn digest(&self, category: Category, canonical: &str) -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(category.label().as_bytes());
        mac.update(&[0]);
        mac.update(canonical.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// A tag of `len` characters from the hash of a value.
    fn tag(&self, category: Category, canonical: &str, len: usize) -> String {
        let digest = self.digest(category, canonical);
        let mut out = String::with_capacity(len);
        let (mut acc, mut bits, mut bytes) = (0u32, 0u32, digest.iter());
        while out.len() < len {
            if bits < 5 {
                let Some(b) = bytes.next() else { break };
                acc = (acc << 8) | u32::from(*b);
                bits += 8;
            }
            bits -= 5;
            out.push(TAG_ALPHABET[((acc >> bits) & 31) as usize] as char);
        }
        out
    }

    /// Enter a pin (`--map`). Returns false when the real value was already pinned to
    /// something else, or the pseudonym already stands for another value.
    pub(crate) fn pin(&mut self, category: Category, canonical: String, pseudonym: String) -> bool {
        if let Some(e) = self.map.get(&(category, canonical.clone())) {
            return e.pseudonym == pseudonym;
        }
        if let Some(owner) = self.taken.get(&(category, pseudonym.clone())) {
            return *owner == canonical;
        }
        self.taken
            .insert((category, pseudonym.clone()), canonical.clone());
        self.map.insert(
            (category, canonical),
            Entry {
                pseudonym,
                pinned: true,
            },
        );
        true
    }

    /// Whether a value of this category is pinned.
    pub(crate) fn pinned(&self, category: Category, canonical: &str) -> Option<&str> {
        self.map
            .get(&(category, canonical.to_string()))
            .filter(|e| e.pinned)
            .map(|e| e.pseudonym.as_str())
    }

    /// The pseudonym of a value, made with `make(tag)` the first time; counts one
    /// occurrence.
    fn get_or_make(
        &mut self,
        category: Category,
        canonical: &str,
        make: impl Fn(&str) -> String,
    ) -> String {
        self.tallies.entry(category).or_default().occurrences += 1;
        self.make(category, canonical, make)
    }

    /// The pseudonym of a value, made with `make(tag)` the first time (with a longer tag
    /// whenever the result already stands for another value).
    fn make(
        &mut self,
        category: Category,
        canonical: &str,
        make: impl Fn(&str) -> String,
    ) -> String {
        if let Some(e) = self.map.get(&(category, canonical.to_string())) {
            return e.pseudonym.clone();
        }
        self.tallies.entry(category).or_default().distinct += 1;
        let mut len = TAG_LEN;
        let pseudonym = loop {
            let candidate = make(&self.tag(category, canonical, len));
            match self.taken.get(&(category, candidate.clone())) {
                Some(owner) if owner != canonical && len < MAX_TAG_LEN => len += 1,
                _ => break candidate,
            }
        };
        self.taken
            .insert((category, pseudonym.clone()), canonical.to_string());
        self.map.insert(
            (category, canonical.to_string()),
            Entry {
                pseudonym: pseudonym.clone(),
                pinned: false,
            },
        );
        pseudonym
    }

    /// Count a replacement made without the table (a photo).
    pub(crate) fn count(&mut self, category: Category, distinct: bool) {
        let tally = self.tallies.entry(category).or_default();
        tally.occurrences += 1;
        if distinct {
            tally.distinct += 1;
        }
    }

    /// `local@domain` (canonical, lower-case) → its pseudonym. A local part that is a GUID
    /// (a service principal, not a person) keeps its value; the domain is mapped anyway.
    pub(crate) fn address(&mut self, local: &str, domain: &str) -> String {
        self.tallies
            .entry(Category::Address)
            .or_default()
            .occurrences += 1;
        self.address_uncounted(local, domain)
    }

    fn address_uncounted(&mut self, local: &str, domain: &str) -> String {
        let canonical = format!("{local}@{domain}");
        if let Some(p) = self.pinned(Category::Address, &canonical) {
            return p.to_string();
        }
        let domain_pseudonym = self.domain(domain);
        if is_guid(local) {
            return format!("{local}@{domain_pseudonym}");
        }
        self.make(Category::Address, &canonical, |tag| {
            format!("{USER_PREFIX}{tag}@{domain_pseudonym}")
        })
    }

    /// An organisation domain (lower-case) → its pseudonym; also registers it.
    pub(crate) fn domain(&mut self, domain: &str) -> String {
        if self.keep_domains || is_reserved_domain(domain) {
            return domain.to_string();
        }
        self.add_domain(domain);
        self.get_or_make(Category::Domain, domain, |tag| {
            format!("{ORG_PREFIX}{tag}{PSEUDO_TLD}")
        })
    }

    /// Make `domain` one of the organisation's domains (replaced as a host-name suffix).
    pub(crate) fn add_domain(&mut self, domain: &str) {
        if self.keep_domains
            || is_reserved_domain(domain)
            || self.domains.iter().any(|d| d == domain)
        {
            return;
        }
        self.domains.push(domain.to_string());
        // Longest first: `eu.contoso.com` before `contoso.com`.
        self.domains
            .sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        self.matcher = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(aho_corasick::MatchKind::LeftmostLongest)
            .build(&self.domains)
            .ok()
            .map(Arc::new);
    }

    /// The organisation's domains known so far.
    pub(crate) fn domains(&self) -> Vec<String> {
        self.domains.clone()
    }

    /// The matcher over the organisation's domains and their list (same order).
    pub(crate) fn domain_matcher(&self) -> Option<(Arc<AhoCorasick>, Vec<String>)> {
        self.matcher.clone().map(|m| (m, self.domains.clone()))
    }

    /// The pseudonym of a display name: the name form of the person's address pseudonym when
    /// the name is bound to an address, else a hash of the name itself.
    pub(crate) fn name(&mut self, real: &str, address: Option<(&str, &str)>) -> String {
        self.tallies.entry(Category::Name).or_default().occurrences += 1;
        if let Some(p) = self.pinned(Category::Name, real) {
            return p.to_string();
        }
        let bound = address
            .map(|(l, d)| format!("{l}@{d}"))
            .or_else(|| self.bindings.get(real).cloned());
        let Some(canonical) = bound.filter(|c| !is_guid(c.split('@').next().unwrap_or(""))) else {
            return self.make(Category::Name, real, |tag| format!("User {}", cap(tag)));
        };
        self.bindings
            .entry(real.to_string())
            .or_insert_with(|| canonical.clone());
        let (local, domain) = canonical.split_once('@').unwrap_or((&canonical, ""));
        let name = name_of_address(&self.address_uncounted(local, domain));
        // Recorded under the person, so the mapping file shows the name too.
        let key = (Category::Name, format!("{real}\u{0}{canonical}"));
        if !self.map.contains_key(&key) {
            self.tallies.entry(Category::Name).or_default().distinct += 1;
            self.map.insert(
                key,
                Entry {
                    pseudonym: name.clone(),
                    pinned: false,
                },
            );
        }
        name
    }

    /// Remember that a display name belongs to an address (first binding wins).
    pub(crate) fn bind(&mut self, name: &str, local: &str, domain: &str) {
        self.bindings
            .entry(name.to_string())
            .or_insert_with(|| format!("{local}@{domain}"));
    }

    /// A job field (title, department, company, office) → `Department k7qz3m`.
    pub(crate) fn job(&mut self, word: &str, real: &str) -> String {
        if let Some(p) = self.pinned(Category::Job, real) {
            let p = p.to_string();
            self.tallies.entry(Category::Job).or_default().occurrences += 1;
            return p;
        }
        let canonical = format!("{word}\u{0}{real}");
        self.get_or_make(Category::Job, &canonical, |tag| {
            format!("{word} {}", cap(tag))
        })
    }

    /// A phone number's digits → as many digits, starting with `999` when there are enough.
    pub(crate) fn phone(&mut self, digits: &str) -> String {
        if let Some(p) = self.pinned(Category::Phone, digits) {
            let p = p.to_string();
            self.tallies.entry(Category::Phone).or_default().occurrences += 1;
            return p;
        }
        let n = digits.len();
        let digest = self.digest(Category::Phone, digits);
        self.get_or_make(Category::Phone, digits, |tag| {
            // The tag lengthens on a collision: mix its length into the digits drawn.
            let extra = tag.len() - TAG_LEN;
            let mut out = String::with_capacity(n);
            if n >= 6 {
                out.push_str(PHONE_PREFIX);
            }
            let mut i = extra;
            while out.len() < n {
                out.push(char::from(b'0' + digest[i % digest.len()] % 10));
                i += 1;
            }
            out
        })
    }

    /// Message text, a subject, a note → text of similar length (unless kept).
    pub(crate) fn text(&mut self, category: Category, real: &str) -> String {
        if let Some(p) = self.pinned(Category::Text, real) {
            let p = p.to_string();
            self.tallies.entry(category).or_default().occurrences += 1;
            return p;
        }
        let tally = self.tallies.entry(category).or_default();
        tally.occurrences += 1;
        let key = (category, real.to_string());
        if let Some(e) = self.map.get(&key) {
            return e.pseudonym.clone();
        }
        tally.distinct += 1;
        let seed = self.digest(Category::Text, real);
        let pseudonym = filler::similar(real, seed);
        self.map.insert(
            key,
            Entry {
                pseudonym: pseudonym.clone(),
                pinned: false,
            },
        );
        pseudonym
    }

    pub(crate) fn tallies(&self) -> BTreeMap<Category, Tally> {
        self.tallies.clone()
    }

    /// The whole table, sorted by category then real value.
    pub(crate) fn entries(&self) -> Vec<MappingEntry> {
        let mut out: Vec<MappingEntry> = self
            .map
            .iter()
            .map(|((category, real), e)| MappingEntry {
                category: category.label(),
                real: match category {
                    Category::Job => real
                        .split_once('\u{0}')
                        .map_or(real.clone(), |(_, r)| r.to_string()),
                    Category::Name => real
                        .split_once('\u{0}')
                        .map_or(real.clone(), |(r, _)| r.to_string()),
                    _ => real.clone(),
                },
                pseudonym: e.pseudonym.clone(),
                pinned: e.pinned,
            })
            .collect();
        out.sort_by(|a, b| (a.category, &a.real).cmp(&(b.category, &b.real)));
        out
    }
}

/// `Abc123` from `abc123`.
pub(crate) fn cap(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// The display name that goes with an address pseudonym: its local part, words split at
/// `.`, `_`, `-` and `+`, each capitalised (`user.k7qz3m` → `User K7qz3m`).
pub fn name_of_address(address: &str) -> String {
    let local = address.split('@').next().unwrap_or(address);
    local
        .split(['.', '_', '-', '+'])
        .filter(|w| !w.is_empty())
        .map(cap)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A GUID (`00000002-0000-0ff1-ce00-000000000000`): the local part of a service principal.
pub(crate) fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Domains reserved for documentation and tests (RFC 2606, RFC 6761): never anyone's.
pub fn is_reserved_domain(domain: &str) -> bool {
    let d = domain.trim_end_matches('.').to_ascii_lowercase();
    let under = |suffix: &str| d == suffix || d.ends_with(&format!(".{suffix}"));
    ["example", "test", "invalid", "localhost"]
        .iter()
        .any(|t| under(t))
        || ["example.com", "example.net", "example.org"]
            .iter()
            .any(|t| under(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_stable_related_and_salted() {
        let mut t = Table::new(b"salt".to_vec(), false, false);
        let a = t.address("alice", "contoso.com");
        assert!(a.starts_with("user.") && a.ends_with(".example"), "{a}");
        assert_eq!(t.address("alice", "contoso.com"), a);
        let name = t.name("Alice Smith", Some(("alice", "contoso.com")));
        assert_eq!(name, name_of_address(&a));
        assert!(name.starts_with("User "), "{name}");
        // Later, the bare name finds the same person.
        assert_eq!(t.name("Alice Smith", None), name);
        let domain = t.domain("contoso.com");
        assert!(a.ends_with(&format!("@{domain}")));
        let mut other = Table::new(b"pepper".to_vec(), false, false);
        assert_ne!(other.address("alice", "contoso.com"), a);
        assert_eq!(t.tallies()[&Category::Address].distinct, 1);
    }

    #[test]
    fn pins_win_and_cannot_merge_two_values() {
        let mut t = Table::new(b"s".to_vec(), false, false);
        assert!(t.pin(
            Category::Address,
            "bob@contoso.com".into(),
            "peer@example.org".into()
        ));
        assert!(!t.pin(
            Category::Address,
            "carol@contoso.com".into(),
            "peer@example.org".into()
        ));
        assert_eq!(t.address("bob", "contoso.com"), "peer@example.org");
        assert_eq!(t.name("Bob", Some(("bob", "contoso.com"))), "Peer");
    }

    #[test]
    fn service_principals_keep_their_guid_and_reserved_domains_stay() {
        let mut t = Table::new(b"s".to_vec(), false, false);
        let p = t.address("00000002-0000-0ff1-ce00-000000000000", "contoso.com");
        assert!(
            p.starts_with("00000002-0000-0ff1-ce00-000000000000@org-"),
            "{p}"
        );
        assert_eq!(
            t.address("x", "example.org"),
            format!(
                "{USER_PREFIX}{}@example.org",
                &t.address("x", "example.org")[5..11]
            )
        );
        assert!(is_reserved_domain("org-abc.example"));
        assert!(!is_reserved_domain("contoso.com"));
    }

    #[test]
    fn phone_numbers_keep_their_length() {
        let mut t = Table::new(b"s".to_vec(), false, false);
        let p = t.phone("14255550100");
        assert_eq!(p.len(), 11);
        assert!(p.starts_with(PHONE_PREFIX));
        assert_eq!(t.phone("14255550100"), p);
        assert_eq!(t.phone("1234").len(), 4);
    }
}
