//! Any text as an email address: parsing answers (never panics), and an accepted
//! address has one normal form, stable under normalising again and the same
//! for its ASCII (IDNA) spelling.
#![no_main]

use inquiryd::fuzzing::{ascii_address, normalize_email, EmailAddress};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let normal = normalize_email(text);
    assert_eq!(normalize_email(&normal), normal, "normalising is idempotent");
    if let Ok(address) = EmailAddress::parse("email", text) {
        assert_eq!(address.normalized(), normal);
        assert_eq!(normalize_email(&ascii_address(address.as_str())), normal, "both spellings agree");
    }
});
