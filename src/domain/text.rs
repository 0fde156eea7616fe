use std::sync::Arc;

use serde::Serialize;

use super::form::Labels;

/// One failing field, as listed in a 422 problem body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub code: &'static str,
    pub message: String,
    /// The limit a `too_long` value broke, for messages in other languages.
    #[serde(skip)]
    pub max: Option<usize>,
    /// A custom field's labels (a built-in field's come from the catalogues).
    #[serde(skip)]
    pub label: Option<Arc<Labels>>,
    /// The range an `out_of_range` value missed, as `1–10`, `≥ 1` or `≤ 10`.
    #[serde(skip)]
    pub range: Option<String>,
}

impl FieldError {
    pub fn new(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        Self { field: field.into(), code, message: message.into(), max: None, label: None, range: None }
    }

    pub fn with_max(self, max: usize) -> Self {
        Self { max: Some(max), ..self }
    }

    pub fn with_label(self, label: &Arc<Labels>) -> Self {
        Self { label: Some(Arc::clone(label)), ..self }
    }

    pub fn with_range(self, range: String) -> Self {
        Self { range: Some(range), ..self }
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

/// Unicode format characters that reorder the text around them (bidi embeddings,
/// overrides and isolates): in a name or a subject they can disguise what an
/// email header or a console row shows.
fn reorders_text(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Characters that show nothing: white space, zero-width and other default-ignorable
/// format characters, fillers and variation selectors.
fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || reorders_text(c)
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2060}'..='\u{2064}'
                | '\u{206A}'..='\u{206F}'
                | '\u{2800}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{E0000}'..='\u{E0FFF}'
        )
}

/// Empty, or made only of characters that show nothing: counts as not given.
pub fn is_blank(raw: &str) -> bool {
    raw.chars().all(is_invisible)
}

/// Trims `raw` and checks it against a length range counted in Unicode characters.
pub fn checked_text(field: &str, raw: &str, min: usize, max: usize, lines: Lines) -> Result<String, FieldError> {
    let value = raw.trim();
    let count = if is_blank(value) { 0 } else { value.chars().count() };
    if count < min {
        return Err(FieldError::new(field, "required", format!("{field} is required")));
    }
    if count > max {
        return Err(FieldError::new(
            field,
            "too_long",
            format!("{field} must be at most {max} characters (got {count})"),
        )
        .with_max(max));
    }
    match lines {
        Lines::Single if value.contains(['\r', '\n']) => {
            Err(FieldError::new(field, "multiline", format!("{field} must be a single line")))
        }
        Lines::Single if has_control(value, b"") => Err(control(field)),
        Lines::Single if value.chars().any(reorders_text) => Err(FieldError::new(
            field,
            "control_characters",
            format!("{field} must not contain characters that reorder text (bidi overrides or isolates)"),
        )),
        Lines::Multi if has_control(value, b"\n\r\t") => Err(control(field)),
        _ => Ok(value.to_owned()),
    }
}

/// Whether `text` holds a control character (`char::is_control`: U+0000–U+001F
/// and U+007F–U+009F) other than the ASCII ones in `allowed`. Read from the
/// UTF-8 bytes, without decoding characters: those are the bytes below 0x20,
/// 0x7F, and 0xC2 followed by 0x80–0x9F (no other byte below 0x80 is part of a
/// longer character).
fn has_control(text: &str, allowed: &[u8]) -> bool {
    let bytes = text.as_bytes();
    bytes.iter().enumerate().any(|(i, &b)| match b {
        0x00..=0x1F => !allowed.contains(&b),
        0x7F => true,
        0xC2 => bytes.get(i + 1).is_some_and(|&next| next < 0xA0),
        _ => false,
    })
}

fn control(field: &str) -> FieldError {
    FieldError::new(field, "control_characters", format!("{field} must not contain control characters"))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const INVISIBLE: [char; 9] =
        ['\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{FEFF}', '\u{00AD}', '\u{3164}', ' ', '\u{3000}'];
    const REORDERING: [char; 9] =
        ['\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}'];

    proptest! {
        #[test]
        fn control_characters_are_found_in_the_bytes_as_char_is_control_finds_them(
            before in "[a-zа-яё一-龥 ]{0,20}",
            c in "[\\x00-\\x1F]|[\\x7E-\\u{A1}]|[\\u{100}-\\u{17F}]|\\u{2028}|.",
            after in "[a-zа-яё一-龥 ]{0,20}",
        ) {
            let text = format!("{before}{c}{after}");
            for allowed in ["", "\n\r\t"] {
                let expected = text.chars().any(|c| c.is_control() && !allowed.contains(c));
                prop_assert_eq!(has_control(&text, allowed.as_bytes()), expected, "{:?} allowing {:?}", text, allowed);
            }
        }

        #[test]
        fn invisible_only_is_empty(chars in proptest::collection::vec(proptest::sample::select(&INVISIBLE[..]), 1..30)) {
            let value: String = chars.into_iter().collect();
            for lines in [Lines::Single, Lines::Multi] {
                prop_assert_eq!(checked_text("name", &value, 1, 100, lines).unwrap_err().code, "required");
            }
            prop_assert!(is_blank(&value));
        }

        #[test]
        fn single_line_refuses_reordering(
            before in "[a-zA-Zа-яА-Я一-龥 ]{0,20}",
            mark in proptest::sample::select(&REORDERING[..]),
            after in "[a-zA-Zа-яА-Я一-龥 ]{1,20}",
        ) {
            let value = format!("x{before}{mark}{after}");
            let error = checked_text("subject", &value, 1, 200, Lines::Single).unwrap_err();
            prop_assert_eq!(error.code, "control_characters");
            // Free text keeps them: Arabic or Hebrew messages may need an embedding.
            prop_assert!(checked_text("message", &value, 1, 10_000, Lines::Multi).is_ok());
        }

        #[test]
        fn visible_text_with_joiners_is_kept(
            text in "[a-zA-Zа-яА-Я一-龥]{1,20}",
            joiner in proptest::sample::select(&INVISIBLE[..5]),
        ) {
            let value = format!("{text}{joiner}{text}");
            prop_assert_eq!(checked_text("name", &value, 1, 100, Lines::Single).unwrap(), value.trim());
        }
    }

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
    fn every_character_is_found_a_control_character_or_not_as_char_is_control_says() {
        let mut text = String::new();
        for c in (0..=char::MAX as u32).filter_map(char::from_u32) {
            text.clear();
            text.push('a');
            text.push(c);
            for allowed in ["", "\n\r\t"] {
                assert_eq!(has_control(&text, allowed.as_bytes()), c.is_control() && !allowed.contains(c), "{c:?}");
            }
        }
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
