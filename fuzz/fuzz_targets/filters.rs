//! Any query string through the filter parser shared by the API and the CLI.
#![no_main]

use inquiryd::fuzzing::{parse_query, Purpose};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(pairs) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(data) {
        for purpose in [Purpose::List, Purpose::Export, Purpose::Pages] {
            let _ = parse_query(&pairs, purpose);
        }
        if let Some(q) = pairs.iter().find(|(k, _)| k == "q") {
            let _ = inquiryd::fuzzing::match_query(&q.1);
        }
    }
});
