//! A HAR document read as a stream: the `log.entries` array is handed over one entry at a
//! time while the reading moves on, so that a 300 MB file is never held whole, neither as
//! bytes nor as a JSON tree.
//!
//! A HAR file is one JSON document, not a sequence of them, so serde's streaming
//! deserializer does not apply, and serde_json reading from an `io::Read` goes byte by byte
//! (three times slower than from a slice). So the outer structure (the top-level object,
//! `log`, the `entries` array) is walked here by a small scanner over a buffer that is
//! refilled from the file; every value inside it is parsed by serde_json straight from the
//! buffer, which says where the value ended (one that the buffer's end cuts is parsed again
//! once more is read): an entry read straight into the caller's type, with no tree in
//! between (or, when it is JSON but not of that type, checked and handed over as its text
//! for a more lenient reading), `version` and `_ucwa` kept, anything else checked and
//! dropped. Every byte is thus checked as JSON, so a syntax
//! error anywhere is found, as when the whole document was parsed at once; errors name the
//! line and column.
//!
//! What is not the expected shape (an array at the top, `entries` that is not an array) is
//! noted in the [`Outline`], never an error of the walk, so the caller can tell "not JSON"
//! from "not a HAR file".

use std::io::Read;

use serde::de::{DeserializeOwned, Error as _, IgnoredAny};
use serde_json::{Map, Value};

/// Bytes read from the file at a time.
const READ_SIZE: usize = 1 << 20;

/// Where the walk found what, besides the entries.
#[derive(Debug, Default)]
pub(super) struct Outline {
    /// The document is an object with a `log` object.
    pub log: bool,
    /// `log.entries` was there: Some(true) an array (the entries were handed over),
    /// Some(false) something else.
    pub entries: Option<bool>,
    /// `log.version`, when it is a string.
    pub version: Option<String>,
    /// `log._ucwa`, when it is an object.
    pub custom: Option<Map<String, Value>>,
    /// A member the importer reads (`log`, `log.entries`) appears more than once.
    pub duplicate: Option<&'static str>,
}

/// Why a walk stopped.
#[derive(Debug)]
pub(super) enum WalkError {
    /// The file could not be read.
    Io(std::io::Error),
    /// The document is not JSON.
    Json(serde_json::Error),
    /// The callback asked to stop.
    Stopped,
}

/// Why a value was not read.
enum Failed {
    /// The walk cannot go on.
    Walk(WalkError),
    /// The value is JSON (as far as it was read) but not of the type asked for.
    NotThat,
}

impl From<WalkError> for Failed {
    fn from(e: WalkError) -> Self {
        Failed::Walk(e)
    }
}

/// Reads each entry (its index, and the entry read as `T`, or its JSON text, checked as
/// JSON, when it does not read as `T`); returning false stops the walk.
pub(super) type OnEntry<'a, T> = dyn FnMut(usize, Result<T, &[u8]>) -> bool + 'a;

/// Walk the HAR document of `reader` (a UTF-8 BOM skipped), calling `on_entry` for every
/// element of `log.entries` in order.
pub(super) fn walk<R: Read, T: DeserializeOwned>(
    reader: R,
    on_entry: &mut OnEntry<'_, T>,
) -> Result<Outline, WalkError> {
    let mut s = Scanner::new(reader);
    s.fill(3)?;
    if s.buf[s.pos..].starts_with(b"\xEF\xBB\xBF") {
        s.pos += 3;
        s.counted = 3;
    }
    let mut outline = Outline::default();
    match s.peek()? {
        Some(b'{') => {
            s.object(&mut |s, key| {
                if key != "log" {
                    return s.skip_value();
                }
                if outline.log {
                    outline.duplicate.get_or_insert("`log`");
                    return s.skip_value();
                }
                match s.peek()? {
                    Some(b'{') => {
                        outline.log = true;
                        s.object(&mut |s, key| log_member(s, key, &mut outline, on_entry))
                    }
                    _ => s.skip_value(),
                }
            })?;
        }
        _ => s.skip_value()?,
    }
    if s.peek()?.is_some() {
        return Err(s.error("trailing characters"));
    }
    Ok(outline)
}

/// One member of `log`: `entries` streamed, `version` and `_ucwa` kept.
fn log_member<R: Read, T: DeserializeOwned>(
    s: &mut Scanner<R>,
    key: &str,
    outline: &mut Outline,
    on_entry: &mut OnEntry<'_, T>,
) -> Result<(), WalkError> {
    match key {
        "entries" if outline.entries.is_some() => {
            outline.duplicate.get_or_insert("`log.entries`");
            s.skip_value()
        }
        "entries" if s.peek()? != Some(b'[') => {
            outline.entries = Some(false);
            s.skip_value()
        }
        "entries" => {
            outline.entries = Some(true);
            let mut index = 0;
            s.array(&mut |s| {
                // The text handed over starts at the value, not at the whitespace before.
                s.peek()?;
                let read = match s.parse_span::<T>() {
                    Ok((entry, _)) => Ok(entry),
                    // JSON, but not a `T`: checked as JSON and handed over as text.
                    Err(Failed::NotThat) => Err(s.skip_span()?),
                    Err(Failed::Walk(e)) => return Err(e),
                };
                let entry = read.map_err(|span| &s.buf[span]);
                if !on_entry(index, entry) {
                    return Err(WalkError::Stopped);
                }
                index += 1;
                Ok(())
            })
        }
        // The last one wins, as in a parsed document.
        "version" => {
            outline.version = match s.parse_value::<Value>()? {
                Value::String(v) => Some(v),
                _ => None,
            };
            Ok(())
        }
        super::CUSTOM => {
            outline.custom = match s.parse_value::<Value>()? {
                Value::Object(o) => Some(o),
                _ => None,
            };
            Ok(())
        }
        _ => s.skip_value(),
    }
}

/// A window on the file: `buf[pos..]` is what is not read yet. Bytes before `pos` are
/// dropped when more are read; `line` and `col` say where `pos` is, for errors.
struct Scanner<R> {
    reader: R,
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
    /// Line (from 1) and column (from 0: bytes since the line began) of `buf[pos]`, once the
    /// bytes before it are counted (`counted` of them are).
    line: usize,
    col: usize,
    counted: usize,
}

impl<R: Read> Scanner<R> {
    fn new(reader: R) -> Self {
        Scanner {
            reader,
            buf: Vec::with_capacity(READ_SIZE),
            pos: 0,
            eof: false,
            line: 1,
            col: 0,
            counted: 0,
        }
    }

    /// Count the lines of `buf[counted..upto]` into `line` and `col`.
    fn count(&mut self, upto: usize) {
        let part = &self.buf[self.counted..upto];
        // A plain count of one byte value: the compiler makes it wide.
        let lines = part.iter().filter(|b| **b == b'\n').count();
        if lines > 0 {
            self.line += lines;
            self.col = part.len() - 1 - part.iter().rposition(|b| *b == b'\n').unwrap_or(0);
        } else {
            self.col += part.len();
        }
        self.counted = upto;
    }

    /// Make at least `n` bytes available after `pos` (fewer at the end of the file).
    fn fill(&mut self, n: usize) -> Result<(), WalkError> {
        while self.buf.len() - self.pos < n && !self.eof {
            if self.pos > 0 {
                // What was read is dropped (counted first, for positions).
                self.count(self.pos);
                self.buf.drain(..self.pos);
                self.counted = 0;
                self.pos = 0;
            }
            let len = self.buf.len();
            self.buf.resize(len + READ_SIZE.max(n), 0);
            let got = loop {
                match self.reader.read(&mut self.buf[len..]) {
                    Ok(got) => break got,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        self.buf.truncate(len);
                        return Err(WalkError::Io(e));
                    }
                }
            };
            self.buf.truncate(len + got);
            self.eof = got == 0;
        }
        Ok(())
    }

    /// A JSON error at `buf[at]`.
    fn error_at(&mut self, at: usize, what: &str) -> WalkError {
        self.count(self.pos);
        let (mut line, mut col) = (self.line, self.col);
        for &b in &self.buf[self.pos.min(at)..at.min(self.buf.len())] {
            if b == b'\n' {
                line += 1;
                col = 0;
            } else {
                col += 1;
            }
        }
        WalkError::Json(serde_json::Error::custom(format!(
            "{what} at line {line} column {}",
            col + 1
        )))
    }

    fn error(&mut self, what: &str) -> WalkError {
        self.error_at(self.pos, what)
    }

    /// The next byte that is not whitespace (not consumed); None at the end.
    fn peek(&mut self) -> Result<Option<u8>, WalkError> {
        loop {
            while let Some(&b) = self.buf.get(self.pos) {
                if !matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
                    return Ok(Some(b));
                }
                self.pos += 1;
            }
            if self.eof {
                return Ok(None);
            }
            self.fill(1)?;
        }
    }

    /// Consume `byte` (after whitespace), or fail saying what was expected.
    fn expect(&mut self, byte: u8, what: &str) -> Result<(), WalkError> {
        match self.peek()? {
            Some(b) if b == byte => {
                self.pos += 1;
                Ok(())
            }
            Some(_) => Err(self.error(&format!("expected {what}"))),
            None => Err(self.error(&format!("EOF while parsing, expected {what}"))),
        }
    }

    /// Parse the value at `pos` and move past it. serde_json parses from the buffer and says
    /// where the value ended; a value cut by the end of the buffer (an EOF error, or a
    /// number or literal that reaches the very end) is parsed again after reading on, the
    /// window at least doubled each time so that a huge value costs at most twice its parse.
    fn parse_value<T: DeserializeOwned>(&mut self) -> Result<T, WalkError> {
        match self.parse_span() {
            Ok((value, _)) => Ok(value),
            Err(Failed::Walk(e)) => Err(e),
            Err(Failed::NotThat) => Err(self.error("unexpected value")),
        }
    }

    /// [`Self::parse_value`], also saying where in `buf` the value's text is; JSON that is
    /// not a `T` is left unread (`pos` at its start).
    fn parse_span<T: DeserializeOwned>(&mut self) -> Result<(T, std::ops::Range<usize>), Failed> {
        loop {
            let mut values =
                serde_json::Deserializer::from_slice(&self.buf[self.pos..]).into_iter();
            let (parsed, cut) = match values.next() {
                // Only whitespace up to the end of the buffer.
                None => (
                    Err(serde_json::Error::custom("EOF while parsing a value")),
                    true,
                ),
                Some(Err(e)) => {
                    // Skipping a value, serde_json reads the end of the input inside a
                    // number (`-`, `1.`, `1e`) as an invalid number, not as the end: an
                    // error found at the last byte may be a cut too.
                    let at = self.offset_of(self.pos, self.buf.len(), e.line(), e.column());
                    let cut = e.is_eof() || at + 1 >= self.buf.len();
                    (Err(e), cut)
                }
                Some(Ok(v)) => (Ok(v), self.pos + values.byte_offset() == self.buf.len()),
            };
            let used = values.byte_offset();
            if cut && !self.eof {
                let have = self.buf.len() - self.pos;
                self.fill(have + have.max(READ_SIZE))?;
                continue;
            }
            return match parsed {
                Ok(v) => {
                    let start = self.pos;
                    self.pos += used;
                    Ok((v, start..self.pos))
                }
                // Well-formed so far, but not a `T` (a missing field, a wrong type).
                Err(e) if e.classify() == serde_json::error::Category::Data => Err(Failed::NotThat),
                Err(e) => {
                    // Report the position in the file, not in the value.
                    let end = self.buf.len();
                    let at = self.offset_of(self.pos, end, e.line(), e.column());
                    let message = e.to_string();
                    let message = message
                        .rsplit_once(" at line ")
                        .map_or(message.as_str(), |(m, _)| m)
                        .to_string();
                    Err(Failed::Walk(self.error_at(at, &message)))
                }
            };
        }
    }

    /// The buffer index of (line, column) of serde_json inside `buf[start..end]`.
    fn offset_of(&self, start: usize, end: usize, line: usize, column: usize) -> usize {
        let mut at = start;
        for _ in 1..line {
            match self.buf[at..end].iter().position(|b| *b == b'\n') {
                Some(k) => at += k + 1,
                None => break,
            }
        }
        (at + column.saturating_sub(1)).min(end)
    }

    /// Check and skip the value at `pos`.
    fn skip_value(&mut self) -> Result<(), WalkError> {
        self.parse_value::<IgnoredAny>().map(drop)
    }

    /// [`Self::skip_value`], saying where in `buf` its text is.
    fn skip_span(&mut self) -> Result<std::ops::Range<usize>, WalkError> {
        match self.parse_span::<IgnoredAny>() {
            Ok((IgnoredAny, span)) => Ok(span),
            Err(Failed::Walk(e)) => Err(e),
            // Any JSON is an `IgnoredAny`.
            Err(Failed::NotThat) => Err(self.error("unexpected value")),
        }
    }

    /// Walk the object at `pos`, handing each member's key to `member`, which must consume
    /// the value.
    fn object(
        &mut self,
        member: &mut dyn FnMut(&mut Self, &str) -> Result<(), WalkError>,
    ) -> Result<(), WalkError> {
        self.expect(b'{', "`{`")?;
        if self.peek()? == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            if self.peek()? != Some(b'"') {
                return Err(self.error("key must be a string"));
            }
            let key: String = self.parse_value()?;
            self.expect(b':', "`:`")?;
            member(self, &key)?;
            match self.peek()? {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.error("expected `,` or `}`")),
            }
        }
    }

    /// Walk the array at `pos`, `element` consuming each element.
    fn array(
        &mut self,
        element: &mut dyn FnMut(&mut Self) -> Result<(), WalkError>,
    ) -> Result<(), WalkError> {
        self.expect(b'[', "`[`")?;
        if self.peek()? == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            element(self)?;
            match self.peek()? {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.error("expected `,` or `]`")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outline(text: &str) -> (Result<Outline, WalkError>, Vec<(usize, Value)>) {
        let mut seen = Vec::new();
        let result = walk(text.as_bytes(), &mut |i, v: Result<Value, &[u8]>| {
            seen.push((i, v.expect("any JSON is a Value")));
            true
        });
        (result, seen)
    }

    fn json_error(text: &str) -> String {
        match outline(text).0 {
            Err(WalkError::Json(e)) => e.to_string(),
            other => panic!("{text:?}: {other:?}"),
        }
    }

    #[test]
    fn entries_are_handed_over_in_order_and_the_rest_is_kept_or_skipped() {
        let (o, seen) = outline(
            "\u{feff}{\"x\":[1,{\"a\":null}],\"log\":{\"entries\":[{\"n\":\"a\\\"]}\"},2],\"version\":\"1.2\",\
             \"pages\":[],\"_ucwa\":{\"upstream\":\"https://a\"}},\"z\":true}\n",
        );
        let o = o.unwrap();
        assert!(o.log && o.entries == Some(true) && o.duplicate.is_none());
        assert_eq!(o.version.as_deref(), Some("1.2"));
        assert_eq!(o.custom.unwrap()["upstream"], "https://a");
        assert_eq!(
            seen,
            [(0, serde_json::json!({"n": "a\"]}"})), (1, 2.into())]
        );
    }

    #[test]
    fn values_that_straddle_reads_are_whole() {
        // Entries and strings longer than one read, with escapes at the edges.
        let long = "x\\\"".repeat(READ_SIZE / 2);
        let doc = format!(
            r#"{{"log":{{"version":"1.2","entries":[{{"a":"{long}"}},{{"b":[{{"c":"{long}"}}]}},-12.5e3]}}}}"#
        );
        let (o, seen) = outline(&doc);
        assert_eq!(o.unwrap().entries, Some(true));
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[0].1["a"].as_str().unwrap().len(), READ_SIZE);
        assert_eq!(seen[2].1, serde_json::json!(-12500.0));
    }

    #[test]
    fn numbers_cut_by_the_end_of_a_read_are_read_whole() {
        // serde_json skipping a number says "invalid number", not "EOF", when the input
        // ends after `-`, `.` or `e`: put each byte of a number at the end of the first read,
        // in a member that is skipped and in an entry.
        let number = "-12.5e-3";
        for cut in 0..number.len() {
            for skipped in [true, false] {
                let head = if skipped {
                    r#"{"log":{"pages":[""#
                } else {
                    r#"{"log":{"entries":[""#
                };
                let pad = READ_SIZE - 1 - head.len() - 3 - cut;
                let doc = format!(
                    r#"{head}{}", {number}],"version":"1.2","_ucwa":{{"upstream":"https://a"}}}}}}"#,
                    "p".repeat(pad)
                );
                assert_eq!(doc.as_bytes()[READ_SIZE - 1], number.as_bytes()[cut]);
                let (o, seen) = outline(&doc);
                let o = o.unwrap_or_else(|e| panic!("cut after {cut} bytes: {e:?}"));
                assert_eq!(o.version.as_deref(), Some("1.2"));
                if !skipped {
                    assert_eq!(seen[1], (1, serde_json::json!(-0.0125)));
                }
            }
        }
    }

    #[test]
    fn entries_that_are_not_the_type_asked_for_are_handed_over_as_their_text() {
        #[derive(Debug, PartialEq, serde::Deserialize)]
        struct Named {
            n: i64,
        }
        // The second entry is found not to be a `Named` at its first member, long before
        // the end of the first read, and its text reaches beyond it.
        let long = "x".repeat(READ_SIZE);
        let doc = format!(
            r#"{{"log":{{"entries":[{{"n":1}}, {{"n":"no","s":"{long}"}} ,{{"m":2}},"s",{{"n":2,"n":3}}]}}}}"#
        );
        let mut seen: Vec<Result<Named, String>> = Vec::new();
        let o = walk(doc.as_bytes(), &mut |_, v: Result<Named, &[u8]>| {
            seen.push(v.map_err(|text| String::from_utf8(text.to_vec()).unwrap()));
            true
        })
        .unwrap();
        assert_eq!(o.entries, Some(true));
        // The long text compared apart, so that a failure prints a readable line.
        let whole = format!(r#"{{"n":"no","s":"{long}"}}"#);
        assert!(
            seen[1].as_ref().err() == Some(&whole),
            "entry 1 not handed whole"
        );
        seen[1] = Err("long".into());
        assert_eq!(
            seen,
            [
                Ok(Named { n: 1 }),
                Err("long".into()),
                Err(r#"{"m":2}"#.into()),
                Err(r#""s""#.into()),
                Err(r#"{"n":2,"n":3}"#.into()),
            ]
        );
        // Not the type, and further on not JSON either: a syntax error, with its place.
        let bad = walk(
            &b"{\"log\":{\"entries\":[\n{\"n\":\"no\", \"x\" 1}]}}"[..],
            &mut |_, _: Result<Named, _>| true,
        );
        match bad {
            Err(WalkError::Json(e)) => assert!(e.to_string().contains("line 2 column"), "{e}"),
            other => panic!("{other:?}"),
        }
    }

    /// A reader that hands over a few bytes at a time: every value is cut somewhere.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            self.1 = self.1 % 5 + 1;
            let n = self.1.min(self.0.len()).min(out.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn values_cut_by_short_reads_are_read_whole() {
        let doc = br#"{"log":{"version":"1.2","pages":[-1,-2.5e-3,3.25E+2],"entries":[ {"a":[1,2.5,"x\"y"]} ,-12, true,{"b":null},
        "s", 1234567, {"n":-1.5e-7} ],"_ucwa":{"upstream":"https://a"}}}"#;
        let mut seen = Vec::new();
        let o = walk(Trickle(doc, 0), &mut |_, v: Result<Value, &[u8]>| {
            seen.push(v.expect("any JSON is a Value"));
            true
        })
        .unwrap();
        assert_eq!(o.custom.unwrap()["upstream"], "https://a");
        assert_eq!(
            seen,
            [
                serde_json::json!({"a": [1, 2.5, "x\"y"]}),
                (-12).into(),
                true.into(),
                serde_json::json!({"b": null}),
                "s".into(),
                1234567.into(),
                serde_json::json!({"n": -1.5e-7})
            ]
        );
        let cut = walk(
            Trickle(br#"{"log":{"entries":[{"a":1"#, 0),
            &mut |_, _: Result<Value, _>| true,
        );
        assert!(matches!(cut, Err(WalkError::Json(_))), "{cut:?}");
    }

    #[test]
    fn shapes_are_noted_and_syntax_errors_fail_with_a_position() {
        assert!(!outline("[1,2]").0.unwrap().log);
        assert!(!outline("\"log\"").0.unwrap().log);
        let o = outline(r#"{"log":{"entries":{"a":1},"version":7}}"#)
            .0
            .unwrap();
        assert!(o.log && o.entries == Some(false) && o.version.is_none());
        let o = outline(r#"{"log":{"entries":[],"entries":[]}}"#).0.unwrap();
        assert_eq!(o.duplicate, Some("`log.entries`"));
        let o = outline(r#"{"log":{"entries":[]},"log":{}}"#).0.unwrap();
        assert_eq!(o.duplicate, Some("`log`"));
        for bad in [
            "[1,2",
            "",
            "{\"log\":{}} x",
            "{\"log\":{\"entries\":[{]}}",
            "{\"log\" {}}",
            "{\"log\":{\"entries\":[1 2]}}",
            "{\"a\":tru}",
            "{\"a\":\"unterminated",
        ] {
            assert!(matches!(outline(bad).0, Err(WalkError::Json(_))), "{bad:?}");
        }
        let e = json_error("{\n  \"log\": {\n    \"entries\": [1, {\"a\" 2}]\n  }\n}");
        assert!(e.contains("line 3 column"), "{e}");
        // A walk stopped by the callback says so.
        let stopped = walk(&br#"{"log":{"entries":[1,2]}}"#[..], &mut |_,
                                                                       _: Result<
            Value,
            _,
        >| {
            false
        });
        assert!(matches!(stopped, Err(WalkError::Stopped)));
    }
}
