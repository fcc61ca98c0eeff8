//! Recorded values are data, never markup. Every byte that came from a recording reaches the
//! page through [`Html::text`] or [`Html::attr`], which escape it; only the renderers' own
//! constant markup goes through [`Html::raw`]. A body holding `<script>` or `</style>`
//! therefore shows as text and runs nothing.

use std::fmt::Write as _;

/// Escape text for an HTML text node or a quoted attribute value (`&`, `<`, `>`, `"`, `'`),
/// appended to `out`. Control characters other than tab, line feed and carriage return become
/// U+FFFD: they are not allowed in HTML and some would be read as the end of the document by
/// tools.
pub fn escape_into(out: &mut String, s: &str) {
    let mut rest = s;
    while let Some(i) = rest.find(needs_escape) {
        out.push_str(&rest[..i]);
        let c = rest[i..].chars().next().unwrap_or('\u{fffd}');
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push('\u{fffd}'),
        }
        rest = &rest[i + c.len_utf8()..];
    }
    out.push_str(rest);
}

fn needs_escape(c: char) -> bool {
    matches!(c, '&' | '<' | '>' | '"' | '\'')
        || (c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
}

/// Bytes as text: valid UTF-8 as is, anything else replaced (recorded headers and bodies may
/// hold any octet).
pub fn lossy(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// A page being written. Markup the renderers write themselves goes in with [`Html::raw`];
/// everything else with [`Html::text`] / [`Html::attr`].
#[derive(Debug, Default)]
pub struct Html {
    buf: String,
}

impl Html {
    pub fn with_capacity(n: usize) -> Self {
        Html {
            buf: String::with_capacity(n),
        }
    }

    /// Constant markup of the renderer itself (never recorded data).
    pub fn raw(&mut self, markup: &str) -> &mut Self {
        self.buf.push_str(markup);
        self
    }

    /// A text node.
    pub fn text(&mut self, s: &str) -> &mut Self {
        escape_into(&mut self.buf, s);
        self
    }

    /// ` name="value"`, the value escaped.
    pub fn attr(&mut self, name: &str, value: &str) -> &mut Self {
        self.buf.push(' ');
        self.buf.push_str(name);
        self.buf.push_str("=\"");
        escape_into(&mut self.buf, value);
        self.buf.push('"');
        self
    }

    /// A number or other `Display` value that cannot hold markup (integers, floats).
    pub fn num(&mut self, n: impl std::fmt::Display) -> &mut Self {
        let _ = write!(self.buf, "{n}");
        self
    }

    pub fn into_string(self) -> String {
        self.buf
    }
}

#[cfg(test)]
impl Html {
    /// What was written so far (tests read the page back).
    pub fn as_str(&self) -> &str {
        &self.buf
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(s: &str) -> String {
        let mut out = String::new();
        escape_into(&mut out, s);
        out
    }

    #[test]
    fn markup_in_recorded_values_is_text() {
        assert_eq!(
            escaped(r#"</style><script>alert("x&y")</script>'"#),
            "&lt;/style&gt;&lt;script&gt;alert(&quot;x&amp;y&quot;)&lt;/script&gt;&#39;"
        );
        assert_eq!(escaped("plain ü text\n\tok"), "plain ü text\n\tok");
        assert_eq!(escaped("nul\0bell\u{7}"), "nul\u{fffd}bell\u{fffd}");
    }

    #[test]
    fn attributes_cannot_be_closed_by_a_value() {
        let mut h = Html::default();
        h.raw("<a").attr("title", "\" onmouseover=\"x()").raw(">");
        assert_eq!(
            h.as_str(),
            "<a title=\"&quot; onmouseover=&quot;x()\">",
            "the quote is escaped, so the attribute never ends early"
        );
    }

    #[test]
    fn bytes_that_are_not_utf8_are_replaced_not_dropped() {
        let mut h = Html::default();
        h.text(&lossy(b"a\xffb<"));
        assert_eq!(h.as_str(), "a\u{fffd}b&lt;");
    }
}
