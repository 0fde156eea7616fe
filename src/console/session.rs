//! Session ids and the CSRF token bound to each.
//!
//! A session id is 256 random bits, sent only in the cookie; the store keeps
//! its SHA-256. The CSRF token is derived from the id under another label, so
//! it needs no storage, differs per session and cannot be computed without
//! the cookie a cross-site page cannot read.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A session id as the cookie carries it.
#[derive(Clone)]
pub struct SessionId(String);

impl SessionId {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The id a cookie presents; `None` for a value no id could be.
    pub fn parse(cookie: &str) -> Option<Self> {
        let ok = cookie.len() == 43 && cookie.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| Self(cookie.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What the store keeps.
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.0.as_bytes()).into()
    }

    /// The CSRF token every form of this session carries.
    pub fn csrf_token(&self) -> String {
        let mut digest = Sha256::new();
        digest.update(b"inquiryd console csrf\0");
        digest.update(self.0.as_bytes());
        URL_SAFE_NO_PAD.encode(digest.finalize())
    }

    /// Whether a form's token is this session's, compared in constant time.
    pub fn csrf_matches(&self, presented: &str) -> bool {
        let expected = self.csrf_token();
        expected.len() == presented.len()
            && expected.bytes().zip(presented.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_back_and_tokens_are_bound_to_their_session() {
        let (a, b) = (SessionId::generate(), SessionId::generate());
        assert!(SessionId::parse(a.as_str()).is_some());
        assert!(SessionId::parse("short").is_none());
        assert!(a.csrf_matches(&a.csrf_token()));
        assert!(!a.csrf_matches(&b.csrf_token()));
        assert!(!a.csrf_matches(""));
        assert_ne!(a.hash(), b.hash());
    }
}
