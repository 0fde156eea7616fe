//! Standard Webhooks signatures: `v1,` + base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`
//! under the secret that `whsec_<base64>` spells.

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretSlice};
use serde::{Deserialize, Serialize, Serializer};
use sha2::Sha256;

const PREFIX: &str = "whsec_";
/// Standard Webhooks asks for 24 to 64 random bytes; fewer is refused, more is fine.
const MIN_KEY_BYTES: usize = 24;

/// A webhook signing key, decoded once at start-up. Neither `Debug` nor
/// `Serialize` nor any error shows it.
#[derive(Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct Secret(SecretSlice<u8>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("must start with whsec_ (a Standard Webhooks secret)")]
    Prefix,
    #[error("the part after whsec_ is not base64")]
    Base64,
    #[error("is too short: use at least {MIN_KEY_BYTES} random bytes, e.g. whsec_$(openssl rand -base64 32)")]
    Short,
}

impl FromStr for Secret {
    type Err = SecretError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let encoded = s.trim().strip_prefix(PREFIX).ok_or(SecretError::Prefix)?;
        let key = STANDARD.decode(encoded).map_err(|_| SecretError::Base64)?;
        if key.len() < MIN_KEY_BYTES {
            return Err(SecretError::Short);
        }
        Ok(Self(SecretSlice::from(key)))
    }
}

impl TryFrom<String> for Secret {
    type Error = SecretError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("[redacted]")
    }
}

/// The three headers that authenticate one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `webhook-id`: the same for every attempt of one event.
    pub id: String,
    /// `webhook-timestamp`: Unix seconds of this attempt.
    pub timestamp: i64,
    /// `webhook-signature`: `v1,<base64>`.
    pub signature: String,
}

impl Secret {
    pub fn sign(&self, id: &str, timestamp: i64, body: &str) -> SignedHeaders {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.0.expose_secret()).expect("HMAC takes a key of any length");
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(body.as_bytes());
        let signature = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
        SignedHeaders { id: id.to_owned(), timestamp, signature }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector of the Standard Webhooks reference libraries.
    #[test]
    fn signs_the_reference_vector() {
        let secret: Secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD".parse().unwrap();
        let signed = secret.sign(
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1649367553,
            r#"{"email":"test@example.com","username":"test_user"}"#,
        );
        assert_eq!(signed.signature, "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=");
    }

    #[test]
    fn malformed_secrets_are_refused_without_being_shown() {
        let cases = [
            ("C2FVsBQIhrscChlQIMV+b5sSYspob7oD", SecretError::Prefix),
            ("whsec_not base64!!", SecretError::Base64),
            ("whsec_dGVzdA==", SecretError::Short),
        ];
        for (raw, expected) in cases {
            let error = raw.parse::<Secret>().err();
            assert_eq!(error, Some(expected.clone()), "{raw}");
            assert!(!expected.to_string().contains(raw), "{expected}");
        }
        let secret: Secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD".parse().unwrap();
        assert_eq!(format!("{secret:?}"), "Secret([redacted])");
        assert_eq!(serde_json::to_string(&secret).unwrap(), "\"[redacted]\"");
    }
}
