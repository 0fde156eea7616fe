use std::fmt;

use validator::ValidateEmail;

use super::text::FieldError;

/// A syntactically valid address of at most 254 characters, one line, trimmed,
/// with its normal form (see [`normalize_email`]) computed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAddress {
    raw: String,
    normalized: String,
}

/// The one form in which addresses are compared, limited, filtered and erased:
/// the local part lower-cased, the domain in its lower-case ASCII (IDNA) form,
/// so that `Ivan@Пример.РФ` and `ivan@xn--e1afmkfd.xn--p1ai` are one address.
pub fn normalize_email(address: &str) -> String {
    let address = address.trim();
    let normal = match address.rsplit_once('@') {
        Some((local, domain)) => format!("{}@{}", local.to_lowercase(), ascii_domain(domain)),
        None => address.to_lowercase(),
    };
    // IDNA drops the characters it ignores (a soft hyphen, a variation selector),
    // which can bare a space they followed: trim again, so the form is stable.
    match normal.trim() {
        trimmed if trimmed.len() == normal.len() => normal,
        trimmed => trimmed.to_owned(),
    }
}

/// A domain's ASCII form (`пример.рф` → `xn--e1afmkfd.xn--p1ai`), lower-cased;
/// a name IDNA cannot convert is only lower-cased.
pub fn ascii_domain(domain: &str) -> String {
    idna::domain_to_ascii(domain).unwrap_or_else(|_| domain.to_lowercase())
}

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
            )
            .with_max(Self::MAX_CHARS));
        }
        // The mail composer puts this address in a Reply-To header: besides the
        // validator's rules, nothing that could end or fold a header line may pass.
        let safe = !value.chars().any(|c| c.is_control() || c.is_whitespace() || matches!(c, '<' | '>' | '"' | ','));
        // The domain is converted to IDNA once: the conversion both checks it and
        // gives the normal form (no whitespace can pass `safe`, so no trim is due).
        let normalized = value.rsplit_once('@').and_then(|(local, domain)| {
            idna::domain_to_ascii(domain).ok().map(|ascii| format!("{}@{ascii}", local.to_lowercase()))
        });
        match normalized {
            Some(normalized) if safe && value.validate_email() => Ok(Self { raw: value.to_owned(), normalized }),
            _ => Err(FieldError::new(field, "invalid_email", format!("{field} is not a valid email address"))),
        }
    }

    /// The address as the visitor wrote it (stored and shown so).
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The form used for filters, rate limits, double clicks and erasure requests.
    pub fn normalized(&self) -> &str {
        &self.normalized
    }
}

/// The address with its domain in ASCII form and the local part as sent: what
/// goes in a mail header or envelope to a server that may not speak SMTPUTF8.
pub fn ascii_address(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((local, domain)) => format!("{local}@{}", ascii_domain(domain)),
        None => address.to_owned(),
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
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
    fn an_idn_domain_has_one_normal_form() {
        let unicode = EmailAddress::parse("email", "Idn@Пример.РФ").unwrap();
        let ascii = EmailAddress::parse("email", "idn@XN--E1AFMKFD.xn--p1ai").unwrap();
        assert_eq!(unicode.normalized(), "idn@xn--e1afmkfd.xn--p1ai");
        assert_eq!(unicode.normalized(), ascii.normalized());
        assert_eq!(unicode.as_str(), "Idn@Пример.РФ", "stored as sent");
        assert_eq!(ascii_address(unicode.as_str()), "Idn@xn--e1afmkfd.xn--p1ai", "the local part kept as sent");
        assert_eq!(normalize_email(" IDN@пример.рф "), "idn@xn--e1afmkfd.xn--p1ai");
        assert_eq!(normalize_email("Ivan@Example.ORG"), "ivan@example.org");
    }

    #[test]
    fn characters_idna_drops_leave_no_whitespace_behind() {
        // A soft hyphen or a variation selector after a space or tab: the first trim
        // keeps the space, IDNA then maps the ignorable character away.
        for text in ["Ivan@Example.org\t\u{ad}", "ivan@пример.рф \u{fe0f}", "a@b \u{ad}\u{ad}"] {
            let once = normalize_email(text);
            assert_eq!(normalize_email(&once), once, "{text:?}");
        }
        assert_eq!(normalize_email("Ivan@Example.org\t\u{ad}"), "ivan@example.org");
    }

    proptest::proptest! {
        /// Any text at all (the `email` filter takes whatever it is sent), with
        /// spaces and characters IDNA ignores where they are hardest to get right.
        #[test]
        fn normalizing_any_text_is_idempotent(
            local in r"\PC{0,20}",
            domain in r"[a-zA-ZßẞİıΣς\u{307}а-яА-Я一-龥0-9.。＠-]{0,20}|\PC{0,20}",
            space in r"[ \t\u{3000}]{0,2}",
            ignored in r"[\u{ad}\u{fe0f}\u{200b}\u{200d}]{0,2}",
        ) {
            let text = format!("{local}@{domain}{space}{ignored}");
            let once = normalize_email(&text);
            proptest::prop_assert_eq!(normalize_email(&once), once);
        }

        #[test]
        fn normalizing_is_idempotent_and_spelling_blind(
            local in "[a-zA-Z0-9._%+-]{1,20}",
            labels in proptest::collection::vec("[a-zа-яё一-龥0-9]{1,12}", 1..4),
            tld in "(org|рф|中国|kz|қаз)",
        ) {
            let domain = format!("{}.{tld}", labels.join("."));
            let once = normalize_email(&format!("{local}@{domain}"));
            // The parser's own normal form (computed without a second IDNA pass) is the same.
            if let Ok(parsed) = EmailAddress::parse("email", &format!("{local}@{domain}")) {
                proptest::prop_assert_eq!(parsed.normalized(), once.as_str());
            }
            proptest::prop_assert_eq!(normalize_email(&once), once.clone());
            proptest::prop_assert!(once.is_ascii() || idna::domain_to_ascii(&domain).is_err());
            if let Ok(ascii) = idna::domain_to_ascii(&domain) {
                let upper = format!("{}@{}", local.to_uppercase(), domain.to_uppercase());
                proptest::prop_assert_eq!(normalize_email(&format!("{local}@{ascii}")), once.clone());
                proptest::prop_assert_eq!(normalize_email(&upper), once);
            }
        }
    }

    #[test]
    fn limits_length() {
        let long = format!("{}@example.org", "a".repeat(250));
        assert_eq!(EmailAddress::parse("email", &long).unwrap_err().code, "too_long");
    }
}
