//! Properties of the origin rewriter: it substitutes origin bytes in place and changes no
//! other byte (whatever surrounds the URLs: quotes, `\/` escapes, non-UTF-8 bytes, near
//! misses such as `https://fe1.contoso.com.evil`), it is idempotent, and rewriting to the
//! public origin and back gives the input again.

use proptest::prelude::*;

use super::*;

const PUBLIC: &str = "http://127.0.0.1:4781";

fn origins() -> (Origin, Vec<Origin>) {
    (
        Origin::parse("https://fe1.contoso.com").unwrap(),
        vec![Origin::parse("https://lyncweb.contoso.com:8443").unwrap()],
    )
}

fn to_public() -> OriginRewriter {
    let (main, also) = origins();
    OriginRewriter::to_public(&main, &also, PUBLIC)
}

/// Each upstream spelling and what it must become.
fn spellings() -> Vec<(&'static str, String)> {
    let web = format!("{PUBLIC}/_upstream/lyncweb.contoso.com:8443");
    vec![
        ("https://fe1.contoso.com", PUBLIC.to_string()),
        ("https://fe1.contoso.com:443", PUBLIC.to_string()),
        (r"https:\/\/fe1.contoso.com", PUBLIC.replace('/', r"\/")),
        ("https://lyncweb.contoso.com:8443", web.clone()),
        (
            r"https:\/\/lyncweb.contoso.com:8443",
            web.replace('/', r"\/"),
        ),
    ]
}

/// Bytes that can never start an origin (no `h`), including the ones that sit around URLs
/// in bodies and headers, and bytes that are not UTF-8.
fn filler() -> impl Strategy<Value = Vec<u8>> {
    let alphabet: Vec<u8> = (0u8..=255).filter(|b| !matches!(b, b'h' | b'H')).collect();
    prop::collection::vec(prop::sample::select(alphabet), 0..24)
}

#[derive(Debug, Clone)]
enum Piece {
    Filler(Vec<u8>),
    /// Index into [`spellings`], upper-cased or not, and the path after it.
    Origin(usize, bool, String),
}

fn pieces() -> impl Strategy<Value = Vec<Piece>> {
    let piece = prop_oneof![
        filler().prop_map(Piece::Filler),
        (
            0..spellings().len(),
            any::<bool>(),
            "(/[a-z0-9]{0,6}){0,3}[\"'<> ]?"
        )
            .prop_map(|(i, upper, path)| Piece::Origin(i, upper, path)),
    ];
    prop::collection::vec(piece, 0..12)
}

/// The input, and what rewriting it must give.
fn build(pieces: &[Piece]) -> (Vec<u8>, Vec<u8>) {
    let spellings = spellings();
    let (mut input, mut expected) = (Vec::new(), Vec::new());
    for piece in pieces {
        match piece {
            Piece::Filler(bytes) => {
                input.extend_from_slice(bytes);
                expected.extend_from_slice(bytes);
            }
            Piece::Origin(i, upper, path) => {
                let (from, to) = &spellings[*i];
                let from = if *upper {
                    from.to_ascii_uppercase()
                } else {
                    from.to_string()
                };
                // An origin ends at a boundary: a path, a quote, or the end of the input.
                let after = if path.is_empty() { "/" } else { path.as_str() };
                input.extend_from_slice(from.as_bytes());
                input.extend_from_slice(after.as_bytes());
                expected.extend_from_slice(to.as_bytes());
                expected.extend_from_slice(after.as_bytes());
            }
        }
    }
    (input, expected)
}

/// Fragments that make near misses likely: origins glued to host or port characters.
fn near_misses() -> impl Strategy<Value = Vec<u8>> {
    let fragments = vec![
        "https://fe1.contoso.com",
        "HTTPS://FE1.contoso.COM",
        "https://lyncweb.contoso.com:8443",
        "https://lyncweb.contoso.com",
        r"https:\/\/fe1.contoso.com",
        "http://127.0.0.1:4781",
        ".evil",
        ":8443",
        ":443",
        "@",
        "-",
        "/",
        "\"",
        r"\/",
        "h",
        "x",
        " ",
        "\u{e9}",
    ];
    prop::collection::vec(prop::sample::select(fragments), 0..16)
        .prop_map(|parts| parts.concat().into_bytes())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn only_origin_bytes_change(pieces in pieces()) {
        let (input, expected) = build(&pieces);
        let out = to_public().rewrite(&input);
        prop_assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&expected)
        );
        prop_assert_eq!(out.as_ref(), expected.as_slice());
        // Nothing to substitute: the very same bytes, not even copied.
        if input == expected {
            prop_assert!(matches!(out, Cow::Borrowed(_)));
        }
    }

    #[test]
    fn bytes_without_an_origin_come_back_untouched(bytes in filler()) {
        prop_assert!(matches!(to_public().rewrite(&bytes), Cow::Borrowed(b) if b == bytes.as_slice()));
    }

    #[test]
    fn rewriting_is_idempotent(input in near_misses()) {
        let rw = to_public();
        let once = rw.rewrite(&input).into_owned();
        let twice = rw.rewrite(&once).into_owned();
        prop_assert_eq!(twice, once);
    }

    #[test]
    fn to_the_public_origin_and_back_is_the_input(pieces in pieces()) {
        // The round trip holds for the canonical spellings (no default port written, lower
        // case): the way back writes each origin the canonical way.
        let canonical: Vec<Piece> = pieces
            .into_iter()
            .map(|p| match p {
                Piece::Origin(1, _, path) => Piece::Origin(0, false, path),
                Piece::Origin(i, _, path) => Piece::Origin(i, false, path),
                other => other,
            })
            .collect();
        let (input, _) = build(&canonical);
        let (main, also) = origins();
        let there = to_public().rewrite(&input).into_owned();
        let back = OriginRewriter::to_upstream(&main, &also, PUBLIC).rewrite(&there).into_owned();
        prop_assert_eq!(back, input);
    }
}
