//! The origin rewriter on any bytes: rewriting twice changes nothing more, and a body that
//! arrives in pieces (cut where the input's first bytes say) is rewritten to exactly the
//! bytes of the whole.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ucwa_replay::proxy::fuzzing::rewriters;

fuzz_target!(|data: &[u8]| {
    let (n, rest) = match data.split_first() {
        Some((n, rest)) => ((*n % 8) as usize, rest),
        None => return,
    };
    let (cut_bytes, input) = rest.split_at((n * 2).min(rest.len()));
    let mut cuts: Vec<usize> = cut_bytes
        .chunks(2)
        .map(|c| c.iter().fold(0usize, |a, b| a * 256 + *b as usize) % (input.len() + 1))
        .collect();
    cuts.sort_unstable();
    let (to_public, to_upstream) = rewriters(
        "https://fe1.contoso.com",
        &["https://lyncweb.contoso.com:8443"],
        "http://127.0.0.1:4781",
    );
    for rw in [&to_public, &to_upstream] {
        let whole = rw.whole(input);
        assert_eq!(rw.whole(&whole), whole, "rewriting twice");
        assert_eq!(rw.streamed(input, &cuts), whole, "streamed at {cuts:?}");
    }
});
