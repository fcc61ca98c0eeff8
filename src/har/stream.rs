//! A HAR document read as a stream: the `log.entries` array is handed over one entry at a
//! time while the reading moves on, so that a 300 MB file is never held whole, neither as
//! bytes nor as a JSON tree.
//!
//! A HAR file is one JSON document, not a sequence of them, so serde's streaming
//! deserializer does not apply, and serde_json reading from an `io::Read` goes byte by byte
//! (three times slower than from a slice). So the outer structure (the top-level object,
//! `log`, the `entries` array) is walked here by a small scanner over a buffer that is
//! refilled from the file, which finds where each value ends (brackets counted, strings
//! skipped); every value is then parsed by serde_json from its slice of the buffer: an entry
//! as a [`Value`] handed to the callback, `version` and `_ucwa` kept, anything else parsed
//! and dropped. Every byte is thus checked as JSON, so a syntax error anywhere is found, as
//! when the whole document was parsed at once; errors name the line and column.
//!
//! What is not the expected shape (an array at the top, `entries` that is not an array) is
//! noted in the [`Outline`], never an error of the walk, so the caller can tell "not JSON"
//! from "not a HAR file".

use std::io::Read;

use serde::de::{Error as _, IgnoredAny};
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

/// Reads each entry; returning false stops the walk.
pub(super) type OnEntry<'a> = dyn FnMut(usize, Value) -> bool + 'a;

/// Walk the HAR document of `reader` (a UTF-8 BOM skipped), calling `on_entry` for every
/// element of `log.entries` in order.
pub(super) fn walk<R: Read>(reader: R, on_entry: &mut OnEntry<'_>) -> Result<Outline, WalkError> {
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
fn log_member<R: Read>(
    s: &mut Scanner<R>,
    key: &str,
    outline: &mut Outline,
    on_entry: &mut OnEntry<'_>,
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
                let entry: Value = s.parse_value()?;
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

    /// The byte `rel` bytes after `pos`, reading more of the file if needed; None at its
    /// end. Offsets from `pos` survive a refill (the bytes before `pos` are what go).
    fn byte_at(&mut self, rel: usize) -> Result<Option<u8>, WalkError> {
        if self.pos + rel >= self.buf.len() {
            self.fill(rel + 1)?;
        }
        Ok(self.buf.get(self.pos + rel).copied())
    }

    /// The extent of the value at `pos` (after whitespace): its length, all of it in the
    /// buffer from `pos`. Only finds the end (brackets counted, strings skipped); the value
    /// is checked when it is parsed.
    fn extent(&mut self) -> Result<usize, WalkError> {
        let Some(first) = self.peek()? else {
            return Err(self.error("EOF while parsing a value"));
        };
        let eof = |s: &mut Self, rel: usize| s.error_at(s.pos + rel, "EOF while parsing a value");
        let mut i = 0;
        let mut depth = 0usize;
        loop {
            let Some(b) = self.byte_at(i)? else {
                // A number or literal may end the file; anything else is cut short.
                return if depth == 0 && !matches!(first, b'"' | b'{' | b'[') {
                    Ok(i)
                } else {
                    Err(eof(self, i))
                };
            };
            match b {
                b'"' => {
                    i += 1;
                    loop {
                        // Read on when the buffer ends inside the string.
                        if self.byte_at(i)?.is_none() {
                            return Err(eof(self, i));
                        }
                        let rest = &self.buf[self.pos + i..];
                        match rest.iter().position(|b| matches!(b, b'"' | b'\\')) {
                            Some(k) if rest[k] == b'"' => {
                                i += k + 1;
                                break;
                            }
                            // An escape: skip the byte after the backslash too (the check
                            // above reads it in if needed).
                            Some(k) => i += k + 2,
                            None => i += rest.len(),
                        }
                    }
                    if depth == 0 {
                        return Ok(i);
                    }
                    continue;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' if depth > 0 => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(i + 1);
                    }
                }
                // A number or literal ends (or a stray byte, for the parser to refuse).
                b'}' | b']' | b',' | b':' | b' ' | b'\n' | b'\r' | b'\t' if depth == 0 => {
                    return Ok(i.max(1));
                }
                _ => {}
            }
            i += 1;
        }
    }

    /// Parse the value at `pos` and move past it.
    fn parse_value<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, WalkError> {
        // The extent first: reading on may move the window (and `pos`).
        let len = self.extent()?;
        let end = self.pos + len;
        match serde_json::from_slice::<T>(&self.buf[self.pos..end]) {
            Ok(v) => {
                self.pos = end;
                Ok(v)
            }
            Err(e) => {
                // Report the position in the file, not in the value.
                let at = self.offset_of(self.pos, end, e.line(), e.column());
                let message = e.to_string();
                let message = message
                    .rsplit_once(" at line ")
                    .map_or(message.as_str(), |(m, _)| m)
                    .to_string();
                Err(self.error_at(at, &message))
            }
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
        let result = walk(text.as_bytes(), &mut |i, v| {
            seen.push((i, v));
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
        assert_eq!(seen, [(0, serde_json::json!({"n": "a\"]}"})), (1, 2.into())]);
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
    fn shapes_are_noted_and_syntax_errors_fail_with_a_position() {
        assert!(!outline("[1,2]").0.unwrap().log);
        assert!(!outline("\"log\"").0.unwrap().log);
        let o = outline(r#"{"log":{"entries":{"a":1},"version":7}}"#).0.unwrap();
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
            assert!(
                matches!(outline(bad).0, Err(WalkError::Json(_))),
                "{bad:?}"
            );
        }
        let e = json_error("{\n  \"log\": {\n    \"entries\": [1, {\"a\" 2}]\n  }\n}");
        assert!(e.contains("line 3 column"), "{e}");
        // A walk stopped by the callback says so.
        let stopped = walk(&br#"{"log":{"entries":[1,2]}}"#[..], &mut |_, _| false);
        assert!(matches!(stopped, Err(WalkError::Stopped)));
    }
}
