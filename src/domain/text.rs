use serde::Serialize;

/// One failing field, as listed in a 422 problem body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub code: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        Self { field: field.into(), code, message: message.into() }
    }
}

/// Which control characters a text field tolerates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    /// One line: no control characters at all (CR and LF included).
    Single,
    /// Free text: newlines and tabs allowed, other control characters not.
    Multi,
}

/// Trims `raw` and checks it against a length range counted in Unicode characters.
pub fn checked_text(field: &str, raw: &str, min: usize, max: usize, lines: Lines) -> Result<String, FieldError> {
    let value = raw.trim();
    let count = value.chars().count();
    if count < min {
        return Err(FieldError::new(field, "required", format!("{field} is required")));
    }
    if count > max {
        return Err(FieldError::new(
            field,
            "too_long",
            format!("{field} must be at most {max} characters (got {count})"),
        ));
    }
    match lines {
        Lines::Single if value.contains(['\r', '\n']) => {
            Err(FieldError::new(field, "multiline", format!("{field} must be a single line")))
        }
        Lines::Single if value.chars().any(char::is_control) => Err(control(field)),
        Lines::Multi if value.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) => {
            Err(control(field))
        }
        _ => Ok(value.to_owned()),
    }
}

fn control(field: &str) -> FieldError {
    FieldError::new(field, "control_characters", format!("{field} must not contain control characters"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_characters_not_bytes() {
        let ten_k = "Ж".repeat(10_000);
        assert!(checked_text("message", &ten_k, 1, 10_000, Lines::Multi).is_ok());
        let err = checked_text("message", &format!("{ten_k}Ж"), 1, 10_000, Lines::Multi).unwrap_err();
        assert_eq!(err.code, "too_long");
    }

    #[test]
    fn trims_and_requires() {
        assert_eq!(checked_text("name", "  Ада  ", 1, 100, Lines::Single).unwrap(), "Ада");
        assert_eq!(checked_text("name", " \t ", 1, 100, Lines::Single).unwrap_err().code, "required");
    }

    #[test]
    fn single_line_rejects_line_breaks_and_controls() {
        assert_eq!(checked_text("subject", "a\r\nBcc: x", 1, 200, Lines::Single).unwrap_err().code, "multiline");
        assert_eq!(checked_text("subject", "a\u{0}b", 1, 200, Lines::Single).unwrap_err().code, "control_characters");
        assert_eq!(checked_text("subject", "a\tb", 1, 200, Lines::Single).unwrap_err().code, "control_characters");
    }

    #[test]
    fn multi_line_allows_newlines_and_tabs_only() {
        assert!(checked_text("message", "a\r\n\tb\n", 1, 100, Lines::Multi).is_ok());
        assert_eq!(checked_text("message", "a\u{7}b", 1, 100, Lines::Multi).unwrap_err().code, "control_characters");
        assert_eq!(checked_text("message", "a\u{85}b", 1, 100, Lines::Multi).unwrap_err().code, "control_characters");
    }
}
