//! Whether a text holds a secret field's name, in any ASCII case: the question the recorder
//! asks of every JSON and form body on the client's path, before it numbers the secrets in
//! it.
//!
//! An ASCII-case-insensitive Aho-Corasick automaton answers it at about 1.5 ns a byte (a DFA;
//! its start-byte prefilter finds a letter at nearly every byte of a JSON body). Folding the
//! text to lower case, a few KiB at a time into a buffer kept per thread, and looking for
//! the lower-case names with the SIMD "Teddy" searcher answers the same at about a tenth of the
//! cost (70 against 720 ns for a 495-byte UCWA resource). Teddy needs SSSE3 or AVX2 and at
//! most 64 names; without it, or with names longer than the chunks' overlap, the automaton
//! answers.

use std::cell::RefCell;

use aho_corasick::{AhoCorasick, BuildError, packed};

/// How many bytes are folded at a time.
const CHUNK: usize = 4096;
/// Longest name the chunks overlap by enough to find across a chunk's end.
const LONGEST: usize = 64;

thread_local! {
    /// The lower-cased window, kept per thread: a fresh buffer on the stack cost its zeroing
    /// (55 against 30 ns for a 40-byte text).
    static FOLDED: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(CHUNK + LONGEST));
}

/// Looks for any of a set of field names, ASCII case ignored.
#[derive(Debug)]
pub(super) struct FieldNames {
    /// The lower-case names, found in lower-cased text (None: Teddy is not available).
    folded: Option<packed::Searcher>,
    /// The names in any case, found in the text as it is.
    any_case: AhoCorasick,
}

impl FieldNames {
    /// `names` are lower-case ASCII as far as they are ASCII (the redactor lowers them).
    pub fn new(names: &[&String]) -> Result<Self, BuildError> {
        let any_case = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(names)?;
        let fits = names
            .iter()
            .all(|n| !n.is_empty() && n.len() <= LONGEST && **n == n.to_ascii_lowercase());
        let folded = if fits {
            packed::Config::new().builder().extend(names).build()
        } else {
            None
        };
        Ok(FieldNames { folded, any_case })
    }

    /// Whether `text` holds one of the names, in any ASCII case.
    pub fn in_text(&self, text: &[u8]) -> bool {
        let Some(folded) = &self.folded else {
            return self.any_case.is_match(text);
        };
        FOLDED.with_borrow_mut(|window| {
            let mut start = 0;
            while start < text.len() {
                // Each window reaches LONGEST - 1 bytes into the next, so a name that starts
                // in this chunk is wholly inside the window.
                let end = (start + CHUNK + LONGEST - 1).min(text.len());
                window.clear();
                window.extend(text[start..end].iter().map(u8::to_ascii_lowercase));
                if folded.find(&window[..]).is_some() {
                    return true;
                }
                start += CHUNK;
            }
            false
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn built(list: &[String]) -> FieldNames {
        FieldNames::new(&list.iter().collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn a_name_is_found_in_any_case_and_across_a_chunk_end() {
        let list = names(&["access_token", "password", "code"]);
        let f = built(&list);
        assert!(
            f.folded.is_some(),
            "Teddy is available on the machines this runs on"
        );
        assert!(f.in_text(br#"{"Access_Token":"x"}"#));
        assert!(f.in_text(b"user=a&PASSWORD=b"));
        assert!(!f.in_text(br#"{"rel":"participantMessaging","state":"Connected"}"#));
        assert!(!f.in_text(b""));
        assert!(f.in_text(b"CoDe"));
        for at in [0, CHUNK - 7, CHUNK - 1, CHUNK, 3 * CHUNK - 3] {
            let mut text = vec![b'x'; at];
            text.extend_from_slice(b"PassWord");
            text.extend(std::iter::repeat_n(b'y', 5));
            assert!(f.in_text(&text), "at {at}");
            text[at + 3] = b'-';
            assert!(!f.in_text(&text), "broken at {at}");
        }
    }

    #[test]
    fn names_teddy_cannot_take_are_looked_for_as_they_are() {
        let long = "n".repeat(LONGEST + 1);
        let list = vec![long.clone(), "password".to_string()];
        let f = built(&list);
        assert!(f.folded.is_none());
        let mut text = vec![b'x'; CHUNK - 10];
        text.extend_from_slice(long.to_ascii_uppercase().as_bytes());
        assert!(f.in_text(&text));
        assert!(f.in_text(b"PASSWORD"));
        assert!(!f.in_text(b"pass word"));
    }

    proptest! {
        /// The folded search answers as the case-insensitive automaton does, for names put
        /// anywhere (chunk ends included) in any case.
        #[test]
        fn answers_as_the_case_insensitive_automaton(
            filler in proptest::collection::vec(any::<u8>(), 0..(2 * CHUNK + 100)),
            at in any::<prop::sample::Index>(),
            pick in 0usize..4,
            upper in proptest::collection::vec(any::<bool>(), 16),
            put in any::<bool>(),
        ) {
            let list = names(&["access_token", "client_secret", "id_token", "ms_rtc_renew"]);
            let f = built(&list);
            let mut text = filler;
            if put {
                let name: Vec<u8> = list[pick]
                    .bytes()
                    .zip(upper.iter().cycle())
                    .map(|(b, &u)| if u { b.to_ascii_uppercase() } else { b })
                    .collect();
                let at = at.index(text.len() + 1);
                text.splice(at..at, name);
            }
            prop_assert_eq!(f.in_text(&text), f.any_case.is_match(&text));
            prop_assert!(!put || f.in_text(&text));
        }
    }
}
