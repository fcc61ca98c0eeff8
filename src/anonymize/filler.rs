//! Text of similar length: message text, subjects and notes become deterministic "lorem
//! ipsum" of the same number of characters on each line (line breaks, leading and trailing
//! white space kept), so a client that lays out, truncates or wraps text still meets the
//! shapes it met while recording. The words come from a fixed list, which is also how
//! `audit --pii` recognises text that was already replaced.
//!
//! The generator is a SplitMix64 stream seeded from the value's keyed hash, written out
//! here rather than taken from `rand`: its output must never change between versions, or
//! the same salt would stop giving the same recording.

/// The vocabulary of replaced text.
pub const WORDS: &[&str] = &[
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "ut",
    "labore",
    "et",
    "dolore",
    "magna",
    "aliqua",
    "enim",
    "ad",
    "minim",
    "veniam",
    "quis",
    "nostrud",
    "exercitation",
    "ullamco",
    "laboris",
    "nisi",
    "aliquip",
    "ex",
    "ea",
    "commodo",
    "consequat",
    "duis",
    "aute",
    "irure",
    "in",
    "reprehenderit",
    "voluptate",
    "velit",
    "esse",
    "cillum",
    "fugiat",
    "nulla",
    "pariatur",
    "excepteur",
    "sint",
    "occaecat",
    "cupidatat",
    "non",
    "proident",
    "sunt",
    "culpa",
    "qui",
    "officia",
    "deserunt",
    "mollit",
    "anim",
    "id",
    "est",
    "laborum",
];

struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// `original` with the content of each line replaced by filler of as many characters.
pub(crate) fn similar(original: &str, seed: [u8; 32]) -> String {
    let mut rng = SplitMix(u64::from_le_bytes(seed[..8].try_into().expect("8 bytes")));
    let mut out = String::with_capacity(original.len());
    for line in original.split_inclusive('\n') {
        let content = line.trim_end_matches(['\r', '\n']);
        let ending = &line[content.len()..];
        let body = content.trim_start();
        let lead = &content[..content.len() - body.len()];
        let core = body.trim_end();
        let trail = &body[core.len()..];
        out.push_str(lead);
        out.push_str(&fill(core.chars().count(), &mut rng));
        out.push_str(trail);
        out.push_str(ending);
    }
    out
}

/// `n` characters of filler: capitalised words separated by single spaces, the last one
/// cut to fit (a cut that would end on a space ends on a full stop instead).
fn fill(n: usize, rng: &mut SplitMix) -> String {
    let mut s = String::with_capacity(n + 16);
    while s.len() < n {
        if !s.is_empty() {
            s.push(' ');
        }
        let word = WORDS[(rng.next() % WORDS.len() as u64) as usize];
        if s.is_empty() {
            s.push_str(&super::table::cap(word));
        } else {
            s.push_str(word);
        }
    }
    s.truncate(n);
    if s.ends_with(' ') {
        s.pop();
        s.push('.');
    }
    s
}

/// Whether a text is filler (or empty): every line's words are from [`WORDS`], the last
/// word of a line possibly cut and followed by a full stop.
pub fn is_filler(text: &str) -> bool {
    text.lines().all(|line| {
        let line = line.trim();
        let line = line.strip_suffix('.').unwrap_or(line);
        let words: Vec<&str> = line.split(' ').collect();
        let Some((last, rest)) = words.split_last() else {
            return true;
        };
        let known = |w: &str| WORDS.iter().any(|v| v.eq_ignore_ascii_case(w));
        rest.iter().all(|w| known(w))
            && (last.is_empty()
                || WORDS
                    .iter()
                    .any(|v| v.len() >= last.len() && v[..last.len()].eq_ignore_ascii_case(last)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_each_line_length_and_layout() {
        let text = "  Hi Bob, the deploy is at 5pm!\r\n\r\nCall me: ext 42 ";
        let out = similar(text, [7; 32]);
        assert_eq!(out.lines().count(), text.lines().count());
        for (a, b) in text.split('\n').zip(out.split('\n')) {
            assert_eq!(a.chars().count(), b.chars().count(), "{a:?} / {b:?}");
        }
        assert!(out.starts_with("  ") && out.ends_with(' ') && out.contains("\r\n\r\n"));
        assert!(!out.contains("Bob") && !out.contains("deploy"));
        assert!(is_filler(&out), "{out:?}");
        assert_eq!(similar(text, [7; 32]), out);
        assert_ne!(similar(text, [8; 32]), out);
    }

    #[test]
    fn recognises_filler_and_not_real_text() {
        for n in 0..40 {
            let s = fill(n, &mut SplitMix(n as u64));
            assert_eq!(s.chars().count(), n);
            assert!(is_filler(&s), "{s:?}");
        }
        assert!(!is_filler("How are you?"));
        assert!(!is_filler("Hi Alice"));
        assert!(is_filler(""));
    }
}
