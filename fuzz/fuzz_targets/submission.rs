//! Any body, as JSON or form fields, through the submission parser: it must
//! answer (accept or list errors), never panic.
#![no_main]

use inquiryd::fuzzing::{parse_submission, Form, SubmissionRules};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let rules = SubmissionRules {
        honeypot_field: "_gotcha",
        require_consent: data.first() == Some(&b'!'),
        form: Form::standard(),
    };
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(data) {
        let _ = parse_submission(map, rules);
    }
    if let Ok(pairs) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(data) {
        let map = pairs.into_iter().map(|(k, v)| (k, serde_json::Value::String(v))).collect();
        let _ = parse_submission(map, rules);
    }
});
