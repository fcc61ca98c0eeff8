//! Text for people: recorded values shown on a terminal never carry control characters
//! (an ESC in a session name would recolour the terminal, a newline would forge a row), and
//! counts agree with their nouns.

use std::borrow::Cow;

/// `text` with control characters escaped as Rust writes them (`\n`, `\u{1b}`); anything
/// printable, non-ASCII included, is kept.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `1 session`, `3 sessions`.
pub fn plural(n: impl Into<u64>, noun: &str) -> String {
    match n.into() {
        1 => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(printable("plain é ü"), "plain é ü");
        assert_eq!(
            printable("a\u{1b}[31mred\nline\t"),
            "a\\u{1b}[31mred\\nline\\t"
        );
        assert_eq!(plural(1u64, "session"), "1 session");
        assert_eq!(plural(0u64, "session"), "0 sessions");
    }
}
