//! The search document: the same text whatever the backend indexes it with.
//!
//! Chinese, Japanese and other scripts written without spaces are indexed
//! character by character: both the indexed text and the query space out every
//! such character, so that a two-character word is found inside a sentence.

use serde_json::{Map, Value};

use super::InquiryRecord;
use crate::domain::NewInquiry;

/// Scripts written without spaces between words, indexed character by character.
/// Every one lies at U+0E00 or above, so its UTF-8 takes three or four bytes.
fn unspaced(c: u32) -> bool {
    matches!(c,
        0x3040..=0x30FF      // Hiragana, Katakana
        | 0x3400..=0x4DBF    // CJK Extension A
        | 0x4E00..=0x9FFF    // CJK Unified Ideographs
        | 0xF900..=0xFAFF    // CJK Compatibility Ideographs
        | 0x0E00..=0x0EFF    // Thai, Lao
        | 0x1000..=0x109F    // Myanmar
        | 0x1780..=0x17FF    // Khmer
        | 0x20000..=0x2FA1F) // CJK Extensions B-F, Compatibility Supplement
}

/// The text to index (or to search for): unspaced-script characters stand alone.
///
/// Only a lead byte of 0xE0 or more can start such a character; everything
/// between two of them is copied in one piece (decoding and pushing every
/// character was a tenth of the HTTP workers' time).
pub fn spaced(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len() + text.len() / 2);
    let (mut copied, mut at) = (0, 0);
    while at < bytes.len() {
        let lead = bytes[at];
        if lead < 0xE0 {
            at += 1;
            continue;
        }
        // `text` is UTF-8, so the continuation bytes are there.
        let tail = |i: usize| u32::from(bytes[at + i] & 0x3F);
        let (width, c) = if lead < 0xF0 {
            (3, (u32::from(lead & 0x0F) << 12) | (tail(1) << 6) | tail(2))
        } else {
            (4, (u32::from(lead & 0x07) << 18) | (tail(1) << 12) | (tail(2) << 6) | tail(3))
        };
        if unspaced(c) {
            out.push_str(&text[copied..at]);
            out.push(' ');
            out.push_str(&text[at..at + width]);
            out.push(' ');
            copied = at + width;
        }
        at += width;
    }
    out.push_str(&text[copied..]);
    out
}

/// The words of a text as a tokenizer that splits at everything but letters
/// and digits sees them, separated by single spaces (SQLite's unicode61 does
/// this itself; PostgreSQL's parser would keep an address or a host name whole).
pub fn words(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// The fields of an inquiry that are searchable. One definition for indexing
/// and for removal: the contentless index can only forget a row given exactly
/// the document it indexed.
pub struct Searchable<'a> {
    pub name: &'a str,
    pub email: &'a str,
    pub subject: &'a str,
    pub message: &'a str,
    pub organization: Option<&'a str>,
    pub country: Option<&'a str>,
    /// The custom values, by field name: their text is searchable too.
    pub fields: &'a Map<String, Value>,
}

impl<'a> Searchable<'a> {
    /// The searchable fields of a submission about to be stored.
    pub fn of_new(inquiry: &'a NewInquiry) -> Self {
        Searchable {
            name: &inquiry.name,
            email: inquiry.email.as_str(),
            subject: &inquiry.subject,
            message: &inquiry.message,
            organization: inquiry.organization.as_deref(),
            country: inquiry.country.as_deref(),
            fields: &inquiry.fields,
        }
    }

    /// What is indexed for one inquiry.
    pub fn document(&self) -> String {
        let parts = [
            Some(self.name),
            Some(self.email),
            Some(self.subject),
            Some(self.message),
            self.organization,
            self.country,
        ];
        let custom = self.fields.values().filter_map(Value::as_str).map(Some);
        spaced(&parts.into_iter().chain(custom).flatten().collect::<Vec<_>>().join("\n"))
    }
}

pub fn document_of(inquiry: &InquiryRecord) -> String {
    Searchable {
        name: &inquiry.name,
        email: &inquiry.email,
        subject: &inquiry.subject,
        message: &inquiry.message,
        organization: inquiry.organization.as_deref(),
        country: inquiry.country.as_deref(),
        fields: &inquiry.fields,
    }
    .document()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// What `spaced` must give: every unspaced-script character between two spaces.
    fn spaced_char_by_char(text: &str) -> String {
        text.chars().map(|c| if unspaced(c as u32) { format!(" {c} ") } else { c.to_string() }).collect()
    }

    proptest! {
        #[test]
        fn spaced_stands_each_unspaced_character_alone(
            text in "([a-zA-Z0-9 .,\\n]|[а-яё]|[一-龥]|[ぁ-ヿ]|[ก-๛]|[က-႟]|[ក-៿]|[가-힣]|[\u{0800}-\u{0DFF}]|[\u{1F300}-\u{1F64F}]|[\u{20000}-\u{2A6DF}]|[\u{30000}-\u{3134F}]|.){0,80}"
        ) {
            prop_assert_eq!(spaced(&text), spaced_char_by_char(&text));
        }
    }

    #[test]
    fn every_character_is_spaced_as_its_code_point_says() {
        for c in (0..=char::MAX as u32).filter_map(char::from_u32) {
            let text = format!("a{c}b");
            assert_eq!(spaced(&text), spaced_char_by_char(&text), "{c:?}");
        }
    }

    #[test]
    fn spaced_bounds_of_each_range() {
        for (inside, outside) in [
            ('\u{3040}', '\u{303F}'),
            ('\u{30FF}', '\u{3100}'),
            ('\u{0E00}', '\u{0DFF}'),
            ('\u{17FF}', '\u{1800}'),
            ('\u{20000}', '\u{1FFFF}'),
            ('\u{2FA1F}', '\u{2FA20}'),
        ] {
            assert_eq!(spaced(&format!("a{inside}b")), format!("a {inside} b"));
            assert_eq!(spaced(&format!("a{outside}b")), format!("a{outside}b"));
        }
    }
}
