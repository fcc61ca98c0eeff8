//! HAR import on any bytes: a clear error or exchanges, never a panic; the exchanges are
//! numbered from 1, as many as the plan counted, have paths, and their match keys read back
//! from their stored text.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use ucwa_replay::har::{ImportOptions, convert_slice};
use ucwa_replay::recording::MatchKey;

fuzz_target!(|data: &[u8]| {
    let opts = ImportOptions {
        session: "fuzz".into(),
        ..ImportOptions::default()
    };
    let Ok(converted) = convert_slice(Path::new("fuzz.har"), data, &opts) else {
        return;
    };
    assert_eq!(converted.exchanges.len(), converted.plan.exchanges);
    for (i, ex) in converted.exchanges.iter().enumerate() {
        assert_eq!(ex.seq, i as u64 + 1);
        assert!(ex.path.starts_with('/'), "{:?}", ex.path);
        let text = ex.match_key.to_string();
        assert_eq!(MatchKey::parse(&text).as_ref(), Some(&ex.match_key), "{text:?}");
    }
});
