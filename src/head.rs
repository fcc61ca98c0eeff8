//! A request or response head as the recorder copies it on the client's path: every field's
//! name and value back to back in one buffer.
//!
//! A [`crate::recording::HeaderList`] holds a `String` and a `Vec` per field: a UCWA
//! exchange's two heads made about 16 of the proxy worker's 42 allocations per request. The
//! recorder copies each head in one piece instead ([`PackedHead::from_http`], two
//! allocations), numbers its secrets from there ([`HeadView`]), and the finishing thread, off
//! the client's path, turns it into the list that is redacted and stored.

/// A head's fields in their order, repeated names kept, values as bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackedHead {
    /// Name, value, name, value, … with nothing in between.
    bytes: Vec<u8>,
    /// For each field, where its name ends and where its value ends in `bytes`.
    ends: Vec<(usize, usize)>,
}

impl PackedHead {
    /// Copy a `HeaderMap` in its iteration order (names lower-case, as hyper gives them):
    /// the fields [`crate::recording::HeaderList::from_http`] would hold.
    pub fn from_http(map: &http::HeaderMap) -> Self {
        let size = map
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len())
            .sum::<usize>();
        let mut head = PackedHead {
            bytes: Vec::with_capacity(size),
            ends: Vec::with_capacity(map.len()),
        };
        for (name, value) in map {
            head.bytes.extend_from_slice(name.as_str().as_bytes());
            let name_end = head.bytes.len();
            head.bytes.extend_from_slice(value.as_bytes());
            head.ends.push((name_end, head.bytes.len()));
        }
        head
    }

    /// How many fields.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// No fields at all.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Field `i`: its name and value.
    fn field(&self, i: usize) -> Option<(&str, &[u8])> {
        let &(name_end, value_end) = self.ends.get(i)?;
        let start = match i {
            0 => 0,
            _ => self.ends[i - 1].1,
        };
        // Names come from `HeaderName`s, which are ASCII.
        let name = std::str::from_utf8(&self.bytes[start..name_end]).unwrap_or("");
        Some((name, &self.bytes[name_end..value_end]))
    }

    /// The fields as a list of owned pairs.
    pub fn to_list(&self) -> Vec<(String, Vec<u8>)> {
        HeadView::Packed(self).to_list()
    }

    /// What the same fields weigh as a list (the estimate the store's writer bound uses).
    pub fn list_weight(&self) -> usize {
        self.bytes.len() + self.ends.len() * 2 * std::mem::size_of::<Vec<u8>>()
    }
}

/// Header fields to read in order, however they are held.
#[derive(Debug, Clone, Copy)]
pub enum HeadView<'a> {
    List(&'a [(String, Vec<u8>)]),
    Packed(&'a PackedHead),
}

impl<'a> HeadView<'a> {
    /// `(name, value)` pairs in order.
    pub fn iter(self) -> impl Iterator<Item = (&'a str, &'a [u8])> {
        let mut i = 0;
        std::iter::from_fn(move || {
            let field = match self {
                HeadView::List(list) => list.get(i).map(|(n, v)| (n.as_str(), v.as_slice())),
                HeadView::Packed(head) => head.field(i),
            };
            i += 1;
            field
        })
    }

    /// The first value of `name` (case-insensitive) as text.
    pub fn get(self, name: &str) -> Option<&'a str> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// The fields as a list of owned pairs.
    pub fn to_list(self) -> Vec<(String, Vec<u8>)> {
        self.iter()
            .map(|(n, v)| (n.to_string(), v.to_vec()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::HeaderList;
    use http::{HeaderMap, HeaderName, HeaderValue};

    fn map() -> HeaderMap {
        let mut map = HeaderMap::new();
        map.append("content-type", HeaderValue::from_static("application/json"));
        map.append("set-cookie", HeaderValue::from_static("a=1"));
        map.append(
            HeaderName::from_static("x-ms-diagnostics"),
            HeaderValue::from_static(""),
        );
        map.append("set-cookie", HeaderValue::from_static("b=2"));
        // Not UTF-8: stored as bytes.
        map.append(
            HeaderName::from_static("x-raw"),
            HeaderValue::from_bytes(b"caf\xe9").unwrap(),
        );
        map.append("Authorization", HeaderValue::from_static("Bearer cwt=AAEB"));
        map
    }

    #[test]
    fn a_packed_head_reads_back_as_the_list_would_hold_it() {
        let map = map();
        let packed = PackedHead::from_http(&map);
        let list = HeaderList::from_http(&map);
        assert_eq!(packed.len(), 6);
        assert_eq!(packed.to_list(), list.0);
        let view = HeadView::Packed(&packed);
        assert!(view.iter().eq(HeadView::List(&list.0).iter()));
        assert_eq!(view.get("Content-Type"), Some("application/json"));
        assert_eq!(view.get("set-cookie"), Some("a=1"));
        assert_eq!(view.get("x-ms-diagnostics"), Some(""));
        assert_eq!(view.get("x-raw"), None, "not text");
        assert_eq!(view.get("authorization"), Some("Bearer cwt=AAEB"));
        assert_eq!(view.get("absent"), None);
        let weight: usize = list
            .0
            .iter()
            .map(|(n, v)| n.len() + v.len() + 2 * std::mem::size_of::<Vec<u8>>())
            .sum();
        assert_eq!(packed.list_weight(), weight);
    }

    #[test]
    fn an_empty_head_has_no_fields() {
        let packed = PackedHead::from_http(&HeaderMap::new());
        assert!(packed.is_empty());
        assert_eq!(HeadView::Packed(&packed).iter().count(), 0);
        assert!(packed.to_list().is_empty());
        assert_eq!(packed.list_weight(), 0);
    }
}
