//! JSON bodies, replaced in place: a small reader finds every string literal with its byte
//! range and the object it sits in (serde_json keeps no positions), the rules of `fields`
//! decide which literals are replaced whole, and identifiers are replaced in the rest. Key
//! order, white space, a BOM and `\/` escapes stay as they were.

use super::fields::{self, Context, Field, PERSON_KEYS};
use super::ident::{self, Span};
use super::table::Table;
use super::text;

/// Deepest nesting read (deeper bodies are left to the identifier pass alone).
const MAX_DEPTH: usize = 128;

#[derive(Debug)]
enum Node {
    Object(Vec<(String, Node)>),
    Array(Vec<Node>),
    /// A string literal: its byte range, quotes included.
    Str(std::ops::Range<usize>),
    Other,
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl Reader<'_> {
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn string(&mut self) -> Option<std::ops::Range<usize>> {
        let start = self.i;
        self.i += 1;
        while self.i < self.b.len() {
            match self.b[self.i] {
                b'"' => {
                    self.i += 1;
                    return Some(start..self.i);
                }
                b'\\' => self.i += 2,
                _ => self.i += 1,
            }
        }
        None
    }

    fn value(&mut self, depth: usize) -> Option<Node> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.ws();
        match *self.b.get(self.i)? {
            b'{' => {
                self.i += 1;
                let mut members = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Some(Node::Object(members));
                }
                loop {
                    self.ws();
                    if self.b.get(self.i) != Some(&b'"') {
                        return None;
                    }
                    let key = self.string()?;
                    let key = decode(&self.b[key])?;
                    self.ws();
                    if self.b.get(self.i) != Some(&b':') {
                        return None;
                    }
                    self.i += 1;
                    let v = self.value(depth + 1)?;
                    members.push((key, v));
                    self.ws();
                    match self.b.get(self.i)? {
                        b',' => self.i += 1,
                        b'}' => {
                            self.i += 1;
                            return Some(Node::Object(members));
                        }
                        _ => return None,
                    }
                }
            }
            b'[' => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Some(Node::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    match self.b.get(self.i)? {
                        b',' => self.i += 1,
                        b']' => {
                            self.i += 1;
                            return Some(Node::Array(items));
                        }
                        _ => return None,
                    }
                }
            }
            b'"' => self.string().map(Node::Str),
            _ => {
                let start = self.i;
                while self.i < self.b.len()
                    && !matches!(
                        self.b[self.i],
                        b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'
                    )
                {
                    self.i += 1;
                }
                (self.i > start).then_some(Node::Other)
            }
        }
    }
}

fn decode(literal: &[u8]) -> Option<String> {
    match literal {
        // Without escapes a literal is its own text (no control characters: JSON forbids them).
        [b'"', inner @ .., b'"'] if !inner.contains(&b'\\') && !inner.iter().any(|b| *b < 0x20) => {
            std::str::from_utf8(inner).ok().map(str::to_owned)
        }
        _ => serde_json::from_slice::<String>(literal).ok(),
    }
}

/// The JSON spelling of `value`, with `/` escaped when the literal it replaces escaped it.
fn encode(value: &str, like: &[u8]) -> Vec<u8> {
    let s = serde_json::to_string(value).unwrap_or_else(|_| "\"\"".into());
    if like.windows(2).any(|w| w == b"\\/") {
        s.replace('/', "\\/").into_bytes()
    } else {
        s.into_bytes()
    }
}

/// What one pass over a body does.
pub(crate) enum Mode {
    /// Only learn which display names go with which addresses.
    Bind,
    /// Replace.
    Replace,
    /// Only list the values found by their place (for `audit --pii`).
    Collect(std::cell::RefCell<Vec<super::Placed>>),
}

/// The body with its people replaced; None when it is not JSON (the caller falls back to
/// the identifier pass) or nothing changed. `Some(None)` = JSON, unchanged.
pub(crate) fn anonymize(table: &mut Table, body: &[u8], mode: &Mode) -> Option<Option<Vec<u8>>> {
    let offset = if body.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    let mut reader = Reader { b: body, i: offset };
    let root = reader.value(0)?;
    reader.ws();
    if reader.i != body.len() {
        return None;
    }
    let mut spans = Vec::new();
    walk(table, body, &root, None, mode, &mut spans);
    match mode {
        Mode::Bind | Mode::Collect(_) => Some(None),
        Mode::Replace => Some(ident::apply(table, body, spans)),
    }
}

/// A body that looks like JSON but does not parse (cut at `--max-body`, or written by hand
/// like many documentation samples): its `"key": "value"` members are judged one by one,
/// the object around each taken as the text between the nearest braces.
pub(crate) fn lenient(table: &mut Table, body: &[u8], mode: &Mode) -> Option<Vec<u8>> {
    static MEMBER: std::sync::OnceLock<regex::bytes::Regex> = std::sync::OnceLock::new();
    let member = MEMBER.get_or_init(|| {
        regex::bytes::Regex::new(r#""((?:[^"\\]|\\.){1,64})"\s*:\s*("(?:[^"\\]|\\.)*")"#)
            .expect("static regex")
    });
    let mut spans = Vec::new();
    for c in member.captures_iter(body) {
        let (Some(k), Some(v)) = (c.get(1), c.get(2)) else {
            continue;
        };
        let key = String::from_utf8_lossy(k.as_bytes()).into_owned();
        let Some(value) = decode(v.as_bytes()) else {
            continue;
        };
        let from = body[..k.start()]
            .iter()
            .rposition(|b| *b == b'{')
            .unwrap_or(0);
        let to = body[v.end()..]
            .iter()
            .position(|b| *b == b'}')
            .map_or(body.len(), |i| v.end() + i);
        let object = &body[from..to];
        let has = |name: &[u8]| object.windows(name.len()).any(|w| w == name);
        let ctx = Context {
            is_link: has(b"\"href\""),
            is_error: has(b"\"code\""),
            rel: None,
        };
        let who = ident::addresses(object)
            .into_iter()
            .next()
            .map(|f| (f.local, f.domain));
        if let Some(new) = replace_value(table, &key, &value, ctx, who.as_ref(), mode) {
            spans.push((v.range(), encode(&new, v.as_bytes())));
        }
    }
    match mode {
        Mode::Replace => ident::apply(table, body, spans),
        _ => None,
    }
}

fn str_value(body: &[u8], node: &Node) -> Option<String> {
    match node {
        Node::Str(r) => decode(&body[r.clone()]),
        _ => None,
    }
}

fn member<'n>(members: &'n [(String, Node)], key: &str) -> Option<&'n Node> {
    members
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

/// The person an object is about: an address in one of its person members, else in its
/// `href` or its `_links.self.href`.
fn person(body: &[u8], members: &[(String, Node)]) -> Option<(String, String)> {
    for key in PERSON_KEYS {
        let values: Vec<String> = match member(members, key) {
            Some(Node::Array(items)) => items.iter().filter_map(|n| str_value(body, n)).collect(),
            Some(n) => str_value(body, n).into_iter().collect(),
            None => continue,
        };
        for v in values {
            if let Some(f) = ident::addresses(v.as_bytes()).into_iter().next() {
                return Some((f.local, f.domain));
            }
        }
    }
    let href = member(members, "href")
        .and_then(|n| str_value(body, n))
        .or_else(|| match member(members, "_links") {
            Some(Node::Object(links)) => match member(links, "self") {
                Some(Node::Object(s)) => member(s, "href").and_then(|n| str_value(body, n)),
                _ => None,
            },
            _ => None,
        })?;
    fields::person_of_href(&href)
}

fn walk(
    table: &mut Table,
    body: &[u8],
    node: &Node,
    under: Option<&str>,
    mode: &Mode,
    spans: &mut Vec<Span>,
) {
    match node {
        Node::Array(items) => {
            for item in items {
                walk(table, body, item, under, mode, spans);
            }
        }
        Node::Object(members) => {
            let rel = member(members, "rel").and_then(|n| str_value(body, n));
            let ctx = Context {
                is_link: member(members, "href").is_some(),
                is_error: member(members, "code").is_some(),
                rel: rel.as_deref().or(under),
            };
            let who = person(body, members);
            for (key, value) in members {
                match value {
                    Node::Str(range) => {
                        let raw = &body[range.clone()];
                        // Most members are neither personal by name nor a data URI: their
                        // identifiers are the identifier pass's, no need to decode them.
                        let data_uri = raw.len() > 6 && raw[1..6].eq_ignore_ascii_case(b"data:");
                        if !data_uri && fields::field(key, ctx).is_none() {
                            continue;
                        }
                        let Some(v) = decode(raw) else { continue };
                        if let Some(new) = replace_value(table, key, &v, ctx, who.as_ref(), mode) {
                            spans.push((range.clone(), encode(&new, raw)));
                        }
                    }
                    Node::Object(_) | Node::Array(_) => {
                        walk(table, body, value, Some(key), mode, spans)
                    }
                    Node::Other => {}
                }
            }
        }
        Node::Str(_) | Node::Other => {}
    }
}

/// The replacement of a string member found by its place (None: left to the identifier
/// pass). Shared by the JSON, XML and form passes.
pub(crate) fn replace_value(
    table: &mut Table,
    key: &str,
    value: &str,
    ctx: Context<'_>,
    who: Option<&(String, String)>,
    mode: &Mode,
) -> Option<String> {
    match mode {
        Mode::Bind => {
            if let (Some(Field::Name), Some((l, d))) = (fields::field(key, ctx), who)
                && !value.trim().is_empty()
            {
                table.bind(value, l, d);
            }
            return None;
        }
        Mode::Collect(found) => {
            let place = if text::is_data_uri(value) {
                Some(super::Place::DataUri)
            } else {
                fields::field(key, ctx).map(super::Place::from)
            };
            if let Some(place) = place
                && !value.trim().is_empty()
            {
                found.borrow_mut().push(super::Placed {
                    place,
                    value: value.to_string(),
                });
            }
            return None;
        }
        Mode::Replace => {}
    }
    if text::is_data_uri(value) {
        return text::data_uri(table, value);
    }
    let field = fields::field(key, ctx)?;
    if value.trim().is_empty() || crate::redact::is_placeholder(value) {
        return None;
    }
    let new = match field {
        Field::Name => {
            // A name that is itself an address is left to the identifier pass.
            if !ident::addresses(value.as_bytes()).is_empty() {
                return None;
            }
            table.name(value, who.map(|(l, d)| (l.as_str(), d.as_str())))
        }
        Field::Search => {
            if !ident::addresses(value.as_bytes()).is_empty() {
                return None;
            }
            table.name(value, None)
        }
        Field::Job(word) => table.job(word, value),
        Field::Phone => ident::replace_digits(table, value),
        Field::Note | Field::Text | Field::Subject => {
            // A link that happens to sit under a text-like name (`"message": "/ucwa/…"`).
            if value.starts_with('/')
                || value.starts_with("http://")
                || value.starts_with("https://")
            {
                return None;
            }
            let html = value.trim_start().starts_with('<') && value.contains('>');
            text::replace(table, field.category(), value, html)
        }
    };
    (new != value).then_some(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anonymize::filler::is_filler;

    #[test]
    fn replaces_in_place_keeping_every_other_byte() {
        let mut t = Table::new(b"k".to_vec(), false, false);
        let body = "\u{feff}{ \"rel\" : \"participant\",\"name\":\"Lene Aaling\", \"uri\":\"sip:lenea@contoso.com\",\n \"_links\":{\"self\":{\"href\":\"https:\\/\\/fe1.contoso.com\\/participants\\/lenea@contoso.com\",\"title\":\"Lene Aaling\"},\"msg\":{\"href\":\"data:text\\/plain;charset=utf-8,Hi+Tosh%0d%0a\"}},\"n\":[1, 2.5e3,null], \"code\":null}";
        let out = anonymize(&mut t, body.as_bytes(), &Mode::Replace)
            .unwrap()
            .unwrap();
        let out = String::from_utf8(out).unwrap();
        let person = t.address("lenea", "contoso.com");
        let name = crate::anonymize::table::name_of_address(&person);
        assert!(
            out.starts_with("\u{feff}{ \"rel\" : \"participant\","),
            "{out}"
        );
        assert!(out.contains(&format!("\"name\":\"{name}\"")), "{out}");
        assert!(out.contains(&format!("\"title\":\"{name}\"")), "{out}");
        assert!(out.contains(&format!("\"uri\":\"sip:{person}\"")), "{out}");
        assert!(out.contains("\"data:text\\/plain;charset=utf-8,"), "{out}");
        assert!(out.contains("\"n\":[1, 2.5e3,null]"), "{out}");
        for real in ["Lene", "Aaling", "lenea", "contoso", "Tosh"] {
            assert!(!out.contains(real), "{real} in {out}");
        }
        let v: serde_json::Value =
            serde_json::from_str(out.trim_start_matches('\u{feff}')).unwrap();
        let msg = v["_links"]["msg"]["href"].as_str().unwrap();
        assert!(is_filler(&text::data_uri_text(msg).unwrap().0));
    }

    #[test]
    fn bodies_that_do_not_parse_are_read_member_by_member() {
        let mut t = Table::new(b"k".to_vec(), false, false);
        let body = br#"{"from":{"name":"Lene Aaling","uri":"sip:lenea@contoso.com", type":"added"}, "subject":"Budget", "x":"cut her"#;
        let out = lenient(&mut t, body, &Mode::Replace).unwrap();
        let out = String::from_utf8(out).unwrap();
        let name = crate::anonymize::table::name_of_address(&t.address("lenea", "contoso.com"));
        assert!(out.contains(&format!("\"name\":\"{name}\"")), "{out}");
        assert!(
            out.contains(" type\":\"added\"}") && !out.contains("Budget"),
            "{out}"
        );
    }

    #[test]
    fn error_messages_and_placeholders_stay() {
        let mut t = Table::new(b"k".to_vec(), false, false);
        let body = br#"{"code":"Conflict","message":"Already exists","username":"REDACTED-2"}"#;
        assert_eq!(anonymize(&mut t, body, &Mode::Replace), Some(None));
        assert_eq!(anonymize(&mut t, b"{not json", &Mode::Replace), None);
    }

    #[test]
    fn names_seen_with_their_address_first_keep_that_binding() {
        let mut t = Table::new(b"k".to_vec(), false, false);
        let later = br#"{"_links":{"participant":{"href":"/p/196","title":"Bob"}}}"#;
        let first = br#"{"name":"Bob","uri":"sip:bob@contoso.com"}"#;
        anonymize(&mut t, first, &Mode::Bind);
        let out = anonymize(&mut t, later, &Mode::Replace).unwrap().unwrap();
        let bob = crate::anonymize::table::name_of_address(&t.address("bob", "contoso.com"));
        assert!(String::from_utf8(out).unwrap().contains(&bob));
    }
}
