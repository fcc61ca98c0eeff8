//! The text passes, run over every header value, URL and body: `cwt=`/`psat=` tokens and
//! JWTs anywhere, secrets remembered from earlier exchanges, and the user's regexes.

use regex::bytes::{Captures, Regex};

use super::known::KnownSecrets;
use super::{PLACEHOLDER_PREFIX, Redactor, normalise};

/// The token regexes (`cwt=`, `psat=`, JWTs).
pub(crate) fn token_re() -> &'static Regex {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"(?-u)(?i:\b(cwt|psat)(=|%3d))((?:[A-Za-z0-9\-_.~+/%=]|\\/)+)|\b(eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*)",
        )
        .expect("static regex")
    })
}

/// Whether `text` could hold what [`token_re`] finds: a `cwt=`/`psat=` token needs a `=`
/// (or `%3d`), a JWT begins `eyJ`. Most paths, queries and header values have neither, and
/// this look costs a fraction of the regex's (whose prefilter stops at every `cwt`, `psat`
/// or `eyJ` in any case); a replay runs it on every request.
pub(crate) fn may_hold_token(text: &[u8]) -> bool {
    memchr::memchr2(b'=', b'%', text).is_some() || memchr::memmem::find(text, b"eyJ").is_some()
}

pub(crate) fn placeholder_re() -> &'static Regex {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| Regex::new(r"REDACTED-[0-9]+").expect("static regex"))
}

impl Redactor {
    /// The replacement of one token-regex match.
    pub(super) fn token_replacement(&self, c: &Captures<'_>) -> String {
        if let (Some(kind), Some(sep), Some(tok)) = (c.get(1), c.get(2), c.get(3)) {
            let kind = String::from_utf8_lossy(kind.as_bytes());
            let sep = String::from_utf8_lossy(sep.as_bytes());
            let tok = tok.as_bytes();
            if tok.starts_with(PLACEHOLDER_PREFIX.as_bytes()) {
                return format!("{kind}{sep}{}", String::from_utf8_lossy(tok));
            }
            let decoded = normalise(tok);
            let hidden = self.placeholder(&decoded);
            // The token without its `cwt=` is the secret itself: remembered, it is hidden
            // wherever it shows up bare (an error text, a log line in a body).
            self.remember(tok, &hidden);
            self.remember(decoded.as_bytes(), &hidden);
            return format!("{kind}{sep}{hidden}");
        }
        match c.get(4) {
            Some(jwt) => format!("jwt:{}", self.placeholder(&normalise(jwt.as_bytes()))),
            None => String::new(),
        }
    }

    /// Replace `cwt=`/`psat=` tokens and JWTs in `text`.
    pub(super) fn redact_tokens(&self, text: &[u8]) -> Option<Vec<u8>> {
        let re = token_re();
        if !may_hold_token(text) || !re.is_match(text) {
            return None;
        }
        let out = re.replace_all(text, |c: &Captures<'_>| {
            self.token_replacement(c).into_bytes()
        });
        (out.as_ref() != text).then(|| out.into_owned())
    }

    /// Every text pass over a piece of bytes: tokens, `known` secrets, user regexes.
    pub(super) fn redact_text(&self, text: &mut Vec<u8>, known: &KnownSecrets) {
        if let Some(out) = self.redact_tokens(text) {
            *text = out;
        }
        if let Some(out) = known.replace_keeping_json(text) {
            *text = out;
        }
        for re in &self.user_regexes {
            if !re.is_match(text) {
                continue;
            }
            let out = re.replace_all(text, |c: &Captures<'_>| {
                let whole = c.get(0).map_or(&b""[..], |m| m.as_bytes());
                let Some(g) = c.get(1) else {
                    return self.placeholder(&normalise(whole)).into_bytes();
                };
                let start = g.start() - c.get(0).map_or(0, |m| m.start());
                let mut v = whole[..start].to_vec();
                v.extend_from_slice(self.placeholder(&normalise(g.as_bytes())).as_bytes());
                v.extend_from_slice(&whole[start + g.len()..]);
                v
            });
            *text = out.into_owned();
        }
    }

    pub(super) fn redact_string(&self, s: &mut String, known: &KnownSecrets) {
        let mut bytes = std::mem::take(s).into_bytes();
        self.redact_text(&mut bytes, known);
        *s = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        };
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_quick_look_lets_every_token_through() {
        for text in [
            "/ucwa/x?cwt=AAEB",
            "psat%3DZZZ",
            "Bearer cwt=abc",
            "eyJhbGciOi.eyJzdWIi.sig",
            "https://h/x#CWT=q",
        ] {
            assert!(may_hold_token(text.as_bytes()), "{text}");
            assert!(token_re().is_match(text.as_bytes()), "{text}");
        }
        let plain = b"/ucwa/oauth/v1/applications/1/communication/conversations/7/messaging";
        assert!(!may_hold_token(plain));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        /// Whatever the quick look turns away, the regex would not have matched.
        #[test]
        fn the_quick_look_never_hides_a_match(text in "([a-zA-Z0-9._/ =%~+-]|cwt|psat|eyJ|3d|3D){0,40}") {
            if !may_hold_token(text.as_bytes()) {
                prop_assert!(!token_re().is_match(text.as_bytes()));
            }
        }
    }
}
