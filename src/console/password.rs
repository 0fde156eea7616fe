//! Console passwords: Argon2id, 19 MiB and one lane like the `argon2` crate's
//! defaults (OWASP's minimum) but five passes instead of two, so that one
//! verification costs about 60 ms of CPU on the 2-core EPYC it was measured on
//! (README, "Console"): slow for a guesser, quick for a person. Kept as PHC
//! strings, which carry their parameters: stronger ones can come later without
//! a migration, and every stored hash is verified with its own.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use std::sync::OnceLock;

/// Memory in KiB, passes and lanes of every new hash.
const COST: (u32, u32, u32) = (19_456, 5, 1);

fn hasher() -> Argon2<'static> {
    let params = Params::new(COST.0, COST.1, COST.2, None).expect("valid Argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The fewest characters a chosen password may have.
pub const MIN_LENGTH: usize = 12;

#[derive(Debug, thiserror::Error)]
#[error("cannot hash the password: {0}")]
pub struct HashError(String);

/// The PHC string (`$argon2id$v=19$m=19456,t=5,p=1$…`) of `password` with a fresh salt.
pub fn hash(password: &str) -> Result<String, HashError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| HashError(e.to_string()))?;
    hasher().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| HashError(e.to_string()))
}

/// Whether `password` matches the stored PHC string. A string that does not
/// parse matches nothing, after the same work as one that does.
pub fn verify(stored: &str, password: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => hasher().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => {
            let _ = verify(dummy(), password);
            false
        }
    }
}

/// A hash no password is known for: an unknown, disabled or locked-out
/// account is checked against something costing the same as a real one.
pub fn dummy() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash(&generate()).expect("hashing a generated password"))
}

/// A new random password: 120 bits, 20 URL-safe characters.
pub fn generate() -> String {
    let mut bytes = [0u8; 15];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Refuses a chosen password too short to resist guessing.
pub fn check_strength(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_LENGTH {
        return Err(format!("a password needs at least {MIN_LENGTH} characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_is_argon2id_and_verifies_only_its_password() {
        let stored = hash("correct horse battery").unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=5,p=1$"), "{stored}");
        assert!(verify(&stored, "correct horse battery"));
        assert!(!verify(&stored, "correct horse batterY"));
        assert!(!verify("not a phc string", "correct horse battery"));
    }

    #[test]
    fn generated_passwords_are_long_and_distinct() {
        let (a, b) = (generate(), generate());
        assert_eq!(a.len(), 20);
        assert_ne!(a, b);
        assert!(check_strength(&a).is_ok());
        assert!(check_strength("short").is_err());
    }
}
