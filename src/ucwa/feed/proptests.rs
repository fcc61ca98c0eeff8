//! The events parser against every payload under `tests/data` (the UCWA documentation
//! samples and the recordings' exports), each whole, without its header lines, and mutated
//! (cut, bytes flipped, inserted, a slice repeated), read as JSON, XML and unknown: it
//! answers `Ok` or `Err`, never panics, and a complete events body it accepts keeps its
//! events when it is cut anywhere and read again (it fails, or gives no more events).

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use proptest::prelude::*;

use super::*;

/// Every file under `tests/data`, and for the documentation samples (`# ` header lines and
/// a blank line, then the payload; `.http` files: the head, a blank line, the body) the
/// payload alone too.
static PAYLOADS: LazyLock<Vec<(PathBuf, Vec<u8>)>> = LazyLock::new(|| {
    let mut files = Vec::new();
    collect(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data"),
        &mut files,
    );
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if let Some(at) = find(&bytes, b"\n\n").or_else(|| find(&bytes, b"\r\n\r\n")) {
            let body = bytes[at..].trim_ascii_start().to_vec();
            out.push((path.with_extension("payload"), body));
        }
        out.push((path, bytes));
    }
    assert!(
        out.len() > 50,
        "tests/data holds the samples: {}",
        out.len()
    );
    out
});

/// The payloads that are whole events bodies (the events they hold, parsed once).
static EVENTS_BODIES: LazyLock<Vec<(&'static [u8], usize)>> = LazyLock::new(|| {
    PAYLOADS
        .iter()
        .filter_map(|(_, b)| {
            let n = parse_events(Representation::Other, b, None).ok()?.len();
            (n > 0).then_some((b.as_slice(), n))
        })
        .collect()
});

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("tests/data is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            collect(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

const REPRESENTATIONS: [Representation; 3] = [
    Representation::Json,
    Representation::Xml,
    Representation::Other,
];

/// Everything the feed module reads from a body; the results are thrown away.
fn read_every_way(body: &[u8]) {
    for repr in REPRESENTATIONS {
        let _ = parse_events(repr, body, Some(3));
        let _ = parse_events(repr, body, None);
        let _ = feed_links(repr, body);
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Cut(usize),
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Repeat(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let bytes = prop::collection::vec(
        prop_oneof![
            any::<u8>(),
            prop::sample::select(b"{}[]<>\"\\:,/=&;#\x00\xff\xef\xbb\xbf".to_vec())
        ],
        1..8,
    );
    prop_oneof![
        any::<usize>().prop_map(Mutation::Cut),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), bytes).prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<usize>(), 1usize..64).prop_map(|(i, n)| Mutation::Repeat(i, n)),
    ]
}

fn mutate(body: &mut Vec<u8>, m: &Mutation) {
    let at = |i: usize, len: usize| if len == 0 { 0 } else { i % (len + 1) };
    match m {
        Mutation::Cut(i) => body.truncate(at(*i, body.len())),
        Mutation::Flip(i, b) if !body.is_empty() => {
            let i = i % body.len();
            body[i] ^= b | 1;
        }
        Mutation::Flip(..) => {}
        Mutation::Insert(i, bytes) => {
            let i = at(*i, body.len());
            body.splice(i..i, bytes.iter().copied());
        }
        Mutation::Repeat(i, n) => {
            let i = at(*i, body.len());
            let end = (i + n).min(body.len());
            let slice = body[i..end].to_vec();
            body.splice(end..end, slice);
        }
    }
}

#[test]
fn every_payload_under_tests_data_is_read_without_a_panic() {
    for (path, body) in PAYLOADS.iter() {
        let read = std::panic::catch_unwind(|| read_every_way(body));
        assert!(
            read.is_ok(),
            "{} panicked the events parser",
            path.display()
        );
    }
    // And the documentation's events samples are understood, not only survived.
    let events = PAYLOADS
        .iter()
        .filter(|(p, _)| p.extension().is_some_and(|e| e == "payload"))
        .filter(|(p, _)| p.to_string_lossy().contains("events-ack"))
        .filter(|(_, b)| {
            !parse_events(Representation::Json, b, None)
                .unwrap_or_default()
                .is_empty()
        })
        .count();
    assert!(events >= 5, "{events} documentation events samples parsed");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_mutated_payload_is_read_without_a_panic(
        which in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let (_, original) = &PAYLOADS[which.index(PAYLOADS.len())];
        let mut body = original.clone();
        for m in &mutations {
            mutate(&mut body, m);
        }
        read_every_way(&body);
    }

    #[test]
    fn arbitrary_bytes_are_read_without_a_panic(body in prop::collection::vec(any::<u8>(), 0..256)) {
        read_every_way(&body);
    }

    #[test]
    fn a_cut_events_body_gives_no_events_it_did_not_hold(
        which in any::<prop::sample::Index>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let (body, all) = EVENTS_BODIES[which.index(EVENTS_BODIES.len())];
        let part = &body[..cut.index(body.len())];
        if let Ok(events) = parse_events(Representation::Other, part, None) {
            prop_assert!(events.len() <= all);
        }
    }
}
