use std::fmt;

use validator::ValidateEmail;

use super::text::FieldError;

/// A syntactically valid address of at most 254 characters, one line, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub const MAX_CHARS: usize = 254;

    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let value = raw.trim();
        if value.is_empty() {
            return Err(FieldError::new(field, "required", format!("{field} is required")));
        }
        if value.chars().count() > Self::MAX_CHARS {
            return Err(FieldError::new(
                field,
                "too_long",
                format!("{field} must be at most {} characters", Self::MAX_CHARS),
            ));
        }
        // The mail composer puts this address in a Reply-To header: besides the
        // validator's rules, nothing that could end or fold a header line may pass.
        let safe = !value.chars().any(|c| c.is_control() || c.is_whitespace() || matches!(c, '<' | '>' | '"' | ','));
        if !safe || !value.validate_email() {
            return Err(FieldError::new(field, "invalid_email", format!("{field} is not a valid email address")));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form used for filters, rate limits and erasure requests.
    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_and_unicode_addresses() {
        assert!(EmailAddress::parse("email", " ada@example.org ").is_ok());
        assert!(EmailAddress::parse("email", "ivan@пример.рф").is_ok());
    }

    #[test]
    fn rejects_header_breaking_input() {
        for bad in
            ["a@b.org\r\nBcc: x@y.org", "a@b.org\nx", "\"a b\"@b.org", "a@b.org, c@d.org", "<a@b.org>", "no-at-sign"]
        {
            assert_eq!(EmailAddress::parse("email", bad).unwrap_err().code, "invalid_email", "{bad:?}");
        }
    }

    #[test]
    fn limits_length() {
        let long = format!("{}@example.org", "a".repeat(250));
        assert_eq!(EmailAddress::parse("email", &long).unwrap_err().code, "too_long");
    }
}
