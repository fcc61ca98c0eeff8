//! Normalisation of volatile values, so that two runs of the same script compare equal.
//!
//! One [`Normalizer`] per recording, fed every string of the session in `seq` order. Ids
//! inside hrefs (the path segment after `applications/`, `conversations/`, `participants/`,
//! `messages/`, `messagingInvitations/`) and `operationId` values become placeholders numbered
//! in order of first appearance (`{app1}`, `{conv1}`, `{part2}`, `{op1}` …): the same shape
//! with different ids is equal, while a link that points at a *different* participant than
//! before still differs. Per-run id fields (`threadId`, `instanceId`, `EndpointId`,
//! `sessionContext`, …) become `{idN}`, GUID member names (the communication resource has
//! one per application) `{guidN}`, `etag` fields `{etagN}`. Ack numbers become `{ack}`, UCWA dates (`\/Date(…)\/`) and ISO 8601
//! times `{date}`, the session's upstream origins `{origin}`, ETags and correlation/request
//! ids numbered placeholders, the `Date` header `{date}`. Every family can be switched off.

use std::collections::HashMap;
use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, MatchKind};
use regex::{Captures, Regex};
use serde_json::Value;

/// Which families of volatile values are normalised. `Default` switches all of them on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NormalizeOptions {
    /// Ids in hrefs and `operationId` values → `{app1}`, `{conv1}`, `{part1}`, `{msg1}`,
    /// `{inv1}`, `{op1}`; per-run id fields (`threadId`, `instanceId`, …) → `{idN}`;
    /// GUID member names → `{guidN}`.
    pub ids: bool,
    /// `ack=N` → `ack={ack}`.
    pub acks: bool,
    /// `\/Date(…)\/` and ISO 8601 date-times → `{date}`.
    pub dates: bool,
    /// ETags (headers and `etag` fields), correlation / request ids, the `Date` header.
    pub volatile_headers: bool,
    /// The session's upstream origins (`https://fe1.contoso.com`) → `{origin}`.
    pub origins: bool,
}

impl Default for NormalizeOptions {
    fn default() -> Self {
        NormalizeOptions {
            ids: true,
            acks: true,
            dates: true,
            volatile_headers: true,
            origins: true,
        }
    }
}

impl NormalizeOptions {
    /// Everything off (`--no-normalize`).
    pub fn none() -> Self {
        NormalizeOptions {
            ids: false,
            acks: false,
            dates: false,
            volatile_headers: false,
            origins: false,
        }
    }

    /// Whether any family is on.
    pub fn any(&self) -> bool {
        self.ids || self.acks || self.dates || self.volatile_headers || self.origins
    }
}

/// The path segments whose next segment is an id, slashes included.
const ID_SEGMENTS: [&str; 5] = [
    "/applications/",
    "/conversations/",
    "/participants/",
    "/messages/",
    "/messagingInvitations/",
];

/// Finds [`ID_SEGMENTS`]: a literal search (SIMD where the CPU has it), where a regex with
/// capture groups over every string with a `/` was a third of a diff's time.
static ID_SEGMENTS_AC: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostFirst)
        .build(ID_SEGMENTS)
        .expect("static patterns")
});

/// Where the id that starts at `from` ends: at the first `/ ? # & " ' < > { }` or
/// whitespace (Unicode's, as a regex's `\s`).
fn id_end(s: &str, from: usize) -> usize {
    s[from..]
        .char_indices()
        .find(|&(_, c)| {
            matches!(
                c,
                '/' | '?' | '#' | '&' | '"' | '\'' | '<' | '>' | '{' | '}'
            ) || c.is_whitespace()
        })
        .map_or(s.len(), |(i, _)| from + i)
}

/// `s` with each id after an [`ID_SEGMENTS`] segment replaced by `with(segment, id)`
/// (segment without slashes), left to right; None when `s` has no such id.
fn replace_ids(s: &str, mut with: impl FnMut(&str, &str) -> String) -> Option<String> {
    let mut out: Option<String> = None;
    let (mut copied, mut at) = (0, 0);
    while let Some(m) = ID_SEGMENTS_AC.find(aho_corasick::Input::new(s).span(at..s.len())) {
        let end = id_end(s, m.end());
        if end == m.end() {
            // No id here (`/participants//`, `/messages/?`): look on from the next byte.
            at = m.start() + 1;
            continue;
        }
        let segment = &s[m.start() + 1..m.end() - 1];
        let out = out.get_or_insert_with(|| String::with_capacity(s.len() + 16));
        out.push_str(&s[copied..m.end()]);
        out.push_str(&with(segment, &s[m.end()..end]));
        (copied, at) = (end, end);
    }
    let mut out = out?;
    out.push_str(&s[copied..]);
    Some(out)
}

/// Redaction placeholders: numbered in the order the recorder met the secrets, which can
/// differ between two runs of one script, so they are ids like any other.
static REDACTED_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"REDACTED-[0-9]+").expect("static regex"));
static OPID_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"(?i)(operationId=)([^&"'\s<>{}]+)"#).expect("static regex"));
static ACK_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"([?&]ack=)(\d+)").expect("static regex"));
static UCWA_DATE_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\\?/Date\(-?\d+(?:[+-]\d{4})?\)\\?/").expect("static regex"));
static ISO_DATE_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?")
        .expect("static regex")
});

static GUID_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^\{?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}?$",
    )
    .expect("static regex")
});

/// Fields (JSON members, XML `<property name>`) whose values are ids minted per run:
/// normalised to `{idN}` with `ids` on (`operationId` to `{opN}`).
const ID_FIELDS: &[&str] = &[
    "threadId",
    "instanceId",
    "endpointId",
    "sessionContext",
    "telemetryId",
    "clientRequestId",
    "correlationId",
];

/// Headers whose values identify one request or one version, normalised to numbered
/// placeholders (`{corr1}`) when `volatile_headers` is on.
const CORRELATION_HEADERS: &[&str] = &[
    "x-ms-correlation-id",
    "client-request-id",
    "request-id",
    "x-request-id",
    "x-correlation-id",
];

fn category(segment: &str) -> &'static str {
    match segment {
        "applications" => "app",
        "conversations" => "conv",
        "participants" => "part",
        "messages" => "msg",
        _ => "inv",
    }
}

/// Placeholders of one recording.
#[derive(Debug)]
pub struct Normalizer {
    opts: NormalizeOptions,
    /// Origins to replace, longest first.
    origins: Vec<String>,
    seen: HashMap<(&'static str, String), String>,
    /// Placeholder → the id it stands for (for `verify`'s recorded → live translation).
    ids: HashMap<String, String>,
    counters: HashMap<&'static str, u32>,
}

impl Normalizer {
    /// A normaliser for a recording made against `origins` (session upstream and
    /// `also_upstreams`).
    pub fn new(opts: NormalizeOptions, origins: &[String]) -> Self {
        let mut variants = Vec::new();
        if opts.origins {
            for origin in origins {
                let o = origin.trim_end_matches('/');
                if o.is_empty() {
                    continue;
                }
                variants.push(o.to_string());
                let after_scheme = o.split_once("://").map(|(_, r)| r).unwrap_or(o);
                if !after_scheme.contains(':') {
                    if o.starts_with("https://") {
                        variants.push(format!("{o}:443"));
                    } else if o.starts_with("http://") {
                        variants.push(format!("{o}:80"));
                    }
                }
            }
        }
        variants.sort_by_key(|v| std::cmp::Reverse(v.len()));
        variants.dedup();
        Normalizer {
            opts,
            origins: variants,
            seen: HashMap::new(),
            ids: HashMap::new(),
            counters: HashMap::new(),
        }
    }

    fn placeholder(&mut self, cat: &'static str, id: &str) -> String {
        if let Some(p) = self.seen.get(&(cat, id.to_string())) {
            return p.clone();
        }
        let n = self.counters.entry(cat).or_insert(0);
        *n += 1;
        let p = format!("{{{cat}{n}}}");
        self.seen.insert((cat, id.to_string()), p.clone());
        self.ids.insert(p.clone(), id.to_string());
        p
    }

    /// Rewrite the ids in `s` (an href this normaliser's recording used) to the ids `other`
    /// saw at the same places in order of first appearance: recorded hrefs → live hrefs.
    /// Also says whether an id could not be mapped (not yet seen on either side).
    pub fn translate(&self, s: &str, other: &Normalizer) -> (String, bool) {
        let mut unmapped = false;
        let out = replace_ids(s, |segment, id| {
            match self
                .seen
                .get(&(category(segment), id.to_string()))
                .and_then(|p| other.ids.get(p))
            {
                Some(live) => live.clone(),
                None => {
                    unmapped = true;
                    id.to_string()
                }
            }
        });
        (out.unwrap_or_else(|| s.to_string()), unmapped)
    }

    /// Normalise one string (an href, a header value, a text line, a JSON string value).
    pub fn text(&mut self, s: &str) -> String {
        // Each pattern needs one of three bytes (an origin and the id and `/Date(` patterns a
        // `/`, placeholders and ISO dates a `-`, `operationId=` and `ack=` a `=`): most
        // strings skip most of the regex scans.
        let has = |b: u8| s.as_bytes().contains(&b);
        let (slash, dash, equals) = (has(b'/'), has(b'-'), has(b'='));
        let mut out = std::borrow::Cow::Borrowed(s);
        if self.opts.origins && slash {
            for origin in &self.origins {
                if out.contains(origin.as_str()) {
                    out = std::borrow::Cow::Owned(out.replace(origin.as_str(), "{origin}"));
                }
            }
        }
        if self.opts.ids {
            if slash
                && let Some(replaced) =
                    replace_ids(&out, |segment, id| self.placeholder(category(segment), id))
            {
                out = std::borrow::Cow::Owned(replaced);
            }
            if dash && REDACTED_RE.is_match(&out) {
                let replaced = REDACTED_RE
                    .replace_all(&out, |c: &Captures<'_>| self.placeholder("secret", &c[0]))
                    .into_owned();
                out = std::borrow::Cow::Owned(replaced);
            }
            if equals && OPID_RE.is_match(&out) {
                let replaced = OPID_RE
                    .replace_all(&out, |c: &Captures<'_>| {
                        format!("{}{}", &c[1], self.placeholder("op", &c[2]))
                    })
                    .into_owned();
                out = std::borrow::Cow::Owned(replaced);
            }
        }
        if self.opts.acks && equals && ACK_RE.is_match(&out) {
            out = std::borrow::Cow::Owned(ACK_RE.replace_all(&out, "${1}{ack}").into_owned());
        }
        if self.opts.dates {
            if slash && UCWA_DATE_RE.is_match(&out) {
                out =
                    std::borrow::Cow::Owned(UCWA_DATE_RE.replace_all(&out, "{date}").into_owned());
            }
            if dash && ISO_DATE_RE.is_match(&out) {
                out = std::borrow::Cow::Owned(ISO_DATE_RE.replace_all(&out, "{date}").into_owned());
            }
        }
        out.into_owned()
    }

    /// The value of a field named `name` (a JSON member or an XML `<property name>`):
    /// `operationId` values become `{opN}`, other values go through [`Normalizer::text`].
    pub fn field(&mut self, name: &str, value: &str) -> String {
        if self.opts.ids {
            if name.eq_ignore_ascii_case("operationId") {
                return self.placeholder("op", value);
            }
            if ID_FIELDS.iter().any(|f| f.eq_ignore_ascii_case(name)) {
                return self.placeholder("id", value);
            }
        }
        if self.opts.volatile_headers && name.eq_ignore_ascii_case("etag") {
            return self.placeholder("etag", value);
        }
        self.text(value)
    }

    /// An object member name or XML `<property name>`: a GUID (UCWA's communication resource
    /// has a GUID-named member per application) becomes `{guidN}` with `ids` on.
    pub fn key(&mut self, name: &str) -> String {
        if self.opts.ids && matches!(name.len(), 36 | 38) && GUID_RE.is_match(name) {
            return self.placeholder("guid", name);
        }
        name.to_string()
    }

    /// A response header value.
    pub fn header(&mut self, name: &str, value: &str) -> String {
        if self.opts.volatile_headers {
            if name.eq_ignore_ascii_case("date") {
                return "{date}".into();
            }
            if name.eq_ignore_ascii_case("etag") {
                return self.placeholder("etag", value);
            }
            if CORRELATION_HEADERS
                .iter()
                .any(|h| h.eq_ignore_ascii_case(name))
            {
                return self.placeholder("corr", value);
            }
        }
        self.text(value)
    }

    /// A JSON value with every string (and `operationId` member) normalised, in document
    /// order.
    pub fn json(&mut self, value: &Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.text(s)),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.json(v)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| {
                        let v = match v {
                            Value::String(s) => Value::String(self.field(k, s)),
                            other => self.json(other),
                        };
                        (self.key(k), v)
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_become_placeholders_in_order_of_first_appearance() {
        let mut a = Normalizer::new(NormalizeOptions::default(), &[]);
        let mut b = Normalizer::new(NormalizeOptions::default(), &[]);
        let pa = "/ucwa/oauth/v1/applications/105/communication/conversations/137/participants/196/messaging";
        let pb = "/ucwa/oauth/v1/applications/106/communication/conversations/999/participants/197/messaging";
        assert_eq!(a.text(pa), b.text(pb));
        assert_eq!(
            a.text(pa),
            "/ucwa/oauth/v1/applications/{app1}/communication/conversations/{conv1}/participants/{part1}/messaging"
        );
        // A second participant gets a new number.
        assert!(a.text("/x/participants/200").ends_with("{part2}"));
        assert!(a.text("/x/participants/196").ends_with("{part1}"));
    }

    #[test]
    fn acks_dates_origins_and_operation_ids() {
        let mut n = Normalizer::new(
            NormalizeOptions::default(),
            &["https://fe1.contoso.com".to_string()],
        );
        assert_eq!(
            n.text(
                "https://fe1.contoso.com:443/ucwa/oauth/v1/applications/1/events?ack=17&timeout=5"
            ),
            "{origin}/ucwa/oauth/v1/applications/{app1}/events?ack={ack}&timeout=5"
        );
        assert_eq!(n.text("/Date(1474932027613)/"), "{date}");
        assert_eq!(n.text(r"\/Date(1474932027613+0200)\/"), "{date}");
        assert_eq!(n.text("at 2016-09-26T23:20:27.613Z."), "at {date}.");
        assert_eq!(n.field("operationId", "abc"), "{op1}");
        assert_eq!(n.text("/x?operationId=abc&a=1"), "/x?operationId={op1}&a=1");
        assert_eq!(n.header("ETag", "\"7\""), "{etag1}");
        assert_eq!(n.field("threadId", "f849"), "{id1}");
        assert_eq!(n.field("etag", "3730155560"), "{etag2}");
        assert_eq!(n.key("95f170ea-b0b4-4f5c-aa12-0ff582f8b913"), "{guid1}");
        assert_eq!(n.key("subject"), "subject");
        assert_eq!(n.header("Date", "Thu, 01 Jan 2026 00:00:00 GMT"), "{date}");
    }

    #[test]
    fn translation_follows_first_appearance() {
        let opts = NormalizeOptions::default();
        let (mut rec, mut live) = (Normalizer::new(opts, &[]), Normalizer::new(opts, &[]));
        rec.text("/a/applications/105/communication/conversations/7");
        live.text("/a/applications/900/communication/conversations/42");
        let (t, unmapped) = rec.translate(
            "/a/applications/105/communication/conversations/7/participants/x",
            &live,
        );
        assert_eq!(
            t,
            "/a/applications/900/communication/conversations/42/participants/x"
        );
        assert!(unmapped);
    }

    proptest::proptest! {
        /// The literal search finds the ids the regex it replaced found, and only those.
        #[test]
        fn ids_are_found_where_the_old_regex_found_them(
            pieces in proptest::collection::vec(proptest::sample::select(vec![
                "/applications/", "/conversations/", "/participants/", "/messages/",
                "/messagingInvitations/", "/messaging", "applications", "/", "//", "?", "#",
                "&", "\"", "'", "<", ">", "{", "}", " ", "\u{a0}", "\u{2003}", "é", "a1", "x",
            ]), 0..24),
        ) {
            let s = pieces.concat();
            let old = Regex::new(
                r#"/(applications|conversations|participants|messages|messagingInvitations)/([^/?#&"'\s<>{}]+)"#,
            )
            .unwrap();
            let want = old.replace_all(&s, |c: &Captures<'_>| format!("/{}/[{}:{}]", &c[1], &c[1], &c[2]));
            let got = replace_ids(&s, |segment, id| format!("[{segment}:{id}]"));
            proptest::prop_assert_eq!(got.is_some(), old.is_match(&s));
            proptest::prop_assert_eq!(got.unwrap_or_else(|| s.clone()), want.into_owned());
        }
    }

    #[test]
    fn off_means_untouched() {
        let mut n = Normalizer::new(NormalizeOptions::none(), &["https://a".into()]);
        let s = "https://a/applications/1/events?ack=2 /Date(5)/";
        assert_eq!(n.text(s), s);
        assert_eq!(n.header("ETag", "x"), "x");
    }
}
