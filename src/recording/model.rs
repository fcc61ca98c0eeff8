//! The rows of a recording, as every way in (the proxy, HAR import, verify) produces them and
//! replay, diff, export and the inspect commands read them back.

use std::borrow::Cow;

use base64::Engine;

use super::key::MatchKey;
use super::kind::ResourceKind;
use crate::ucwa::Representation;
use crate::ucwa::feed::EventRow;

/// Header fields in the order they were sent, repeated names kept. Values are bytes: HTTP
/// allows non-UTF-8 octets, and replay must send back exactly what was recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderList(pub Vec<(String, Vec<u8>)>);

impl HeaderList {
    /// Copy a `HeaderMap` in its iteration order (names lower-case, as hyper gives them).
    pub fn from_http(map: &http::HeaderMap) -> Self {
        HeaderList(
            map.iter()
                .map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec()))
                .collect(),
        )
    }

    /// Rebuild a `HeaderMap`, skipping fields that are no longer valid.
    pub fn to_http(&self) -> http::HeaderMap {
        let mut map = http::HeaderMap::with_capacity(self.0.len());
        for (name, value) in &self.0 {
            if let (Ok(n), Ok(v)) = (
                http::HeaderName::from_bytes(name.as_bytes()),
                http::HeaderValue::from_bytes(value),
            ) {
                map.append(n, v);
            }
        }
        map
    }

    /// The first value of `name` (case-insensitive) as text.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// Every value of `name` that is valid UTF-8, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .filter_map(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// Append a field.
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) {
        self.0.push((name.into(), value.into()));
    }

    /// Remove every field named `name` (case-insensitive).
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// Iterate over `(name, value)` pairs.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
    }

    /// The stored form: a JSON array of `[name, value]`, with `[name, base64, "b64"]` for a
    /// value that is not UTF-8.
    ///
    /// Written straight from the fields (no `Value` tree of copied strings): the recorder
    /// encodes two heads per exchange.
    pub fn to_json(&self) -> String {
        struct Stored<'a>(&'a [(String, Vec<u8>)]);
        impl serde::Serialize for Stored<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeSeq;
                let mut seq = s.serialize_seq(Some(self.0.len()))?;
                for (name, value) in self.0 {
                    match std::str::from_utf8(value) {
                        Ok(text) => seq.serialize_element(&(name, text))?,
                        Err(_) => seq.serialize_element(&(
                            name,
                            base64::engine::general_purpose::STANDARD.encode(value),
                            "b64",
                        ))?,
                    }
                }
                seq.end()
            }
        }
        // Serialising strings into a String cannot fail.
        serde_json::to_string(&Stored(&self.0)).unwrap_or_else(|_| "[]".to_string())
    }

    /// Parse the stored form.
    ///
    /// Read straight into strings (no `Value` tree): a replay reads a row's headers for each
    /// answer, and export and diff read every row's.
    pub fn from_json(text: &str) -> Option<Self> {
        let mut out = Vec::new();
        each_stored_field(text, |name, value| {
            out.push((name.into_owned(), value.into_owned()));
        })?;
        Some(HeaderList(out))
    }

    /// Parse the stored form straight into a `HeaderMap`, skipping fields that are no
    /// longer valid (as [`Self::to_http`] does) and those `skip` names. A replay builds
    /// every answer's head this way: no list of copied strings in between.
    pub fn http_from_json(
        text: &str,
        skip: impl Fn(&http::HeaderName, &http::HeaderValue) -> bool,
    ) -> Option<http::HeaderMap> {
        let mut map = http::HeaderMap::new();
        each_stored_field(text, |name, value| {
            if let (Ok(n), Ok(v)) = (
                http::HeaderName::from_bytes(name.as_bytes()),
                http::HeaderValue::from_bytes(&value),
            ) && !skip(&n, &v)
            {
                map.append(n, v);
            }
        })?;
        Some(map)
    }
}

/// Walk the stored form of a head ([`HeaderList::to_json`]), field by field, borrowing what
/// needs no unescaping. `None` unless it is a list of fields, each a list of at least two
/// strings (name and value; a third `"b64"` says the value is base64, a valid one).
fn each_stored_field(text: &str, field: impl FnMut(Cow<'_, str>, Cow<'_, [u8]>)) -> Option<()> {
    use serde::Deserializer as _;
    use serde::de::{Error as _, SeqAccess, Visitor};

    /// A string, borrowed from the input when it holds no escapes.
    #[derive(serde::Deserialize)]
    struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

    /// One field: its name and (decoded) value.
    struct Field<'a>(Cow<'a, str>, Cow<'a, [u8]>);
    impl<'de> serde::Deserialize<'de> for Field<'de> {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Field<'de>;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a [name, value] list")
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Field<'de>, A::Error> {
                    let Some(Text(name)) = seq.next_element()? else {
                        return Err(A::Error::invalid_length(0, &self));
                    };
                    let Some(Text(raw)) = seq.next_element()? else {
                        return Err(A::Error::invalid_length(1, &self));
                    };
                    let b64 = matches!(seq.next_element::<Text>()?, Some(Text(t)) if t == "b64");
                    while seq.next_element::<Text>()?.is_some() {}
                    let value = if b64 {
                        Cow::Owned(
                            base64::engine::general_purpose::STANDARD
                                .decode(raw.as_bytes())
                                .map_err(A::Error::custom)?,
                        )
                    } else {
                        match raw {
                            Cow::Borrowed(t) => Cow::Borrowed(t.as_bytes()),
                            Cow::Owned(t) => Cow::Owned(t.into_bytes()),
                        }
                    };
                    Ok(Field(name, value))
                }
            }
            d.deserialize_seq(V)
        }
    }

    struct Fields<F>(F);
    impl<'de, F: FnMut(Cow<'_, str>, Cow<'_, [u8]>)> Visitor<'de> for Fields<F> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a list of header fields")
        }
        fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
            while let Some(Field(name, value)) = seq.next_element()? {
                (self.0)(name, value);
            }
            Ok(())
        }
    }

    let mut de = serde_json::Deserializer::from_str(text);
    de.deserialize_seq(Fields(field)).ok()?;
    de.end().ok()
}

/// One request/response pair of a session. `Default` is an empty exchange (no response,
/// JSON), for filling in field by field.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exchange {
    /// Row id in the recording (0 for an exchange not yet stored).
    pub id: i64,
    /// Request arrival order within the session, from 1.
    pub seq: u64,
    /// Start time, microseconds since the Unix epoch.
    pub started_us: i64,
    /// From the request's arrival to the response's last byte, in microseconds.
    pub duration_us: i64,
    pub method: String,
    /// Path as the client sent it to the proxy (percent-encoding kept). Requests for an
    /// `--also-upstream` origin keep the proxy's `/_upstream/HOST` prefix, so that replay
    /// matches them without knowing the deployment.
    pub path: String,
    /// Query string without `?`, as sent.
    pub query: Option<String>,
    /// `HTTP/1.1`, `HTTP/2.0` …
    pub http_version: String,
    pub request_headers: HeaderList,
    /// Request body after redaction (possibly truncated, see `request_truncated`).
    pub request_body: Vec<u8>,
    pub request_truncated: bool,
    /// None when no response came (upstream failure, client abort before the response).
    pub status: Option<u16>,
    /// Response headers as received from the upstream, after redaction.
    pub response_headers: HeaderList,
    /// Response body, decoded (no Content-Encoding), after redaction.
    pub response_body: Vec<u8>,
    pub response_truncated: bool,
    /// The original `Content-Encoding` of the response, when the stored body was decoded.
    pub content_encoding: Option<String>,
    /// What went wrong (upstream refused / reset / TLS / timeout, client aborted).
    pub error: Option<String>,
    /// UCWA resource kind (`participantMessaging`, `events`, `application`, …).
    pub kind: ResourceKind,
    /// Representation the request asked for.
    pub representation: Representation,
    /// The replay match key.
    pub match_key: MatchKey,
    /// How many earlier exchanges (by `seq`) of the session share `match_key`. The writer
    /// assigns it; any value given to the writer is ignored.
    pub ordinal: u32,
    /// Redaction placeholder of the credential the request carried (`REDACTED-1`).
    pub credential: Option<String>,
    /// The upstream origin the request was forwarded to (`https://fe1.contoso.com`).
    pub upstream: Option<String>,
    /// Events of an events-feed response, in delivery order.
    pub events: Vec<EventRow>,
}

impl Exchange {
    /// Whether this is an events-feed request (a P-GET), by kind or by shape.
    pub fn is_events(&self) -> bool {
        self.kind == ResourceKind::Events
            || crate::ucwa::is_events_request(&self.method, &self.path)
    }

    /// When the response's last byte went out, microseconds since the Unix epoch.
    pub fn ended_us(&self) -> i64 {
        self.started_us + self.duration_us.max(0)
    }

    /// The path and query as the client wrote them.
    pub fn path_and_query(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{q}", self.path),
            None => self.path.clone(),
        }
    }
}

/// A session as listed by `sessions`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SessionInfo {
    #[serde(skip)]
    pub id: i64,
    pub name: String,
    /// The upstream origin recorded against (`https://fe1.contoso.com`).
    pub upstream: String,
    /// Further upstream origins of the same deployment (`--also-upstream`).
    pub also_upstreams: Vec<String>,
    /// RFC 3339 start time.
    pub started_at: String,
    pub ended_at: Option<String>,
    /// Version of ucwa-replay that wrote the session.
    pub tool_version: String,
    pub exchanges: u64,
    pub events: u64,
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    #[test]
    fn the_stored_form_is_byte_for_byte_what_it_was() {
        // What every recording so far holds: written through a `Value` tree.
        let through_values = |h: &HeaderList| {
            let arr: Vec<Value> =
                h.0.iter()
                    .map(|(n, v)| match std::str::from_utf8(v) {
                        Ok(s) => Value::Array(vec![n.clone().into(), s.into()]),
                        Err(_) => Value::Array(vec![
                            n.clone().into(),
                            base64::engine::general_purpose::STANDARD.encode(v).into(),
                            "b64".into(),
                        ]),
                    })
                    .collect();
            Value::Array(arr).to_string()
        };
        let mut h = HeaderList::default();
        assert_eq!(h.to_json(), "[]");
        h.push("content-type", "application/json; charset=utf-8");
        h.push(
            "www-authenticate",
            "Bearer trusted_issuers=\"\", x=\"a\\b\"",
        );
        h.push("x-control", "tab\there\u{1}\u{7f}é😀");
        h.push("x-odd", vec![0xe9, b'a', 0xff]);
        h.push("", "");
        assert_eq!(h.to_json(), through_values(&h));
    }

    #[test]
    fn headers_round_trip_with_non_utf8_values() {
        let mut h = HeaderList::default();
        h.push("content-type", "application/json");
        h.push("x-odd", vec![0xe9, b'a']);
        h.push("Set-Cookie", "a=1");
        h.push("set-cookie", "b=2");
        let back = HeaderList::from_json(&h.to_json()).unwrap();
        assert_eq!(back, h);
        assert_eq!(
            back.get_all("SET-COOKIE").collect::<Vec<_>>(),
            ["a=1", "b=2"]
        );
        assert_eq!(back.to_http().get_all("set-cookie").iter().count(), 2);
    }

    #[test]
    fn a_head_parsed_straight_into_a_header_map_is_the_list_made_into_one() {
        for text in [
            r#"[]"#,
            r#"[["server","nginx"],["set-cookie","a=1"],["Set-Cookie","b=2"],["date","x"]]"#,
            r#"[["x-esc","a\"b\\c\u00e9"],["x-odd","6WH/","b64"],["bad name","v"],["ok","\u0001"]]"#,
            r#"[["a","1","y","z"],["b","AAE=","b64"]]"#,
        ] {
            let list = HeaderList::from_json(text).expect(text);
            let map = HeaderList::http_from_json(text, |_, _| false).expect(text);
            assert_eq!(map, list.to_http(), "{text}");
            let order = |m: &http::HeaderMap| {
                m.iter()
                    .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                    .collect::<Vec<_>>()
            };
            assert_eq!(order(&map), order(&list.to_http()), "{text}");
        }
        let list = HeaderList::from_json(r#"[["x-esc","a\"b"],["x-odd","6WH/","b64"]]"#).unwrap();
        assert_eq!(list.0[0].1, b"a\"b".to_vec());
        assert_eq!(list.0[1].1, vec![0xe9, 0x61, 0xff]);
        assert_eq!(
            HeaderList::http_from_json(r#"[["n","!!","b64"]]"#, |_, _| false),
            None
        );
        assert_eq!(
            HeaderList::http_from_json(r#"[["n","v"]] x"#, |_, _| false),
            None
        );
        // Borrowed from the stored text unless an escape or base64 had to be decoded.
        let mut borrowed = Vec::new();
        each_stored_field(
            r#"[["server","nginx"],["x-esc","a\"b"],["x-odd","6WH/","b64"]]"#,
            |n, v| borrowed.push((matches!(n, Cow::Borrowed(_)), matches!(v, Cow::Borrowed(_)))),
        )
        .unwrap();
        assert_eq!(borrowed, [(true, true), (true, false), (true, false)]);
    }

    #[test]
    fn stored_headers_that_are_not_name_value_lists_are_refused() {
        for bad in [
            "",
            "{}",
            "[1]",
            "[[]]",
            r#"[["only-a-name"]]"#,
            r#"[["n", 5]]"#,
            r#"[["n", "!!", "b64"]]"#,
        ] {
            assert_eq!(HeaderList::from_json(bad), None, "{bad}");
        }
        let read = HeaderList::from_json(r#"[["a", "1"], ["b", "AAE=", "b64"], ["c", "x", "y"]]"#);
        assert_eq!(
            read.map(|h| h.0),
            Some(vec![
                ("a".to_string(), b"1".to_vec()),
                ("b".to_string(), vec![0, 1]),
                ("c".to_string(), b"x".to_vec()),
            ])
        );
    }
}
