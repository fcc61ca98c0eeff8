//! The events-feed parser on any bytes, read as JSON, XML and unknown: `Ok` or `Err`, never
//! a panic; what parses as a feed keeps its positions in order.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ucwa_replay::ucwa::{Representation, feed_links, parse_events};

fuzz_target!(|data: &[u8]| {
    for repr in [
        Representation::Json,
        Representation::Xml,
        Representation::Other,
    ] {
        let _ = feed_links(repr, data);
        if let Ok(events) = parse_events(repr, data, Some(7)) {
            for pair in events.windows(2) {
                assert!(pair[0].position < pair[1].position, "{pair:?}");
            }
            assert!(events.iter().all(|e| e.ack == Some(7)), "{events:?}");
        }
    }
});
