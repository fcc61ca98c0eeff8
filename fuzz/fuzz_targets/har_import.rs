//! HAR import on any bytes: a clear error or a plan, never a panic; a plan's exchanges are
//! numbered from 1, have paths, and their match keys read back from their stored text.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use ucwa_replay::har::{ImportOptions, plan_from_slice};
use ucwa_replay::recording::MatchKey;

fuzz_target!(|data: &[u8]| {
    let opts = ImportOptions {
        session: "fuzz".into(),
        ..ImportOptions::default()
    };
    let Ok(plan) = plan_from_slice(Path::new("fuzz.har"), data, &opts) else {
        return;
    };
    for (i, ex) in plan.exchanges.iter().enumerate() {
        assert_eq!(ex.seq, i as u64 + 1);
        assert!(ex.path.starts_with('/'), "{:?}", ex.path);
        let text = ex.match_key.to_string();
        assert_eq!(MatchKey::parse(&text).as_ref(), Some(&ex.match_key), "{text:?}");
    }
});
