//! The search document: the same text whatever the backend indexes it with.
//!
//! Chinese, Japanese and other scripts written without spaces are indexed
//! character by character: both the indexed text and the query space out every
//! such character, so that a two-character word is found inside a sentence.

use serde_json::{Map, Value};

use super::InquiryRecord;
use crate::domain::NewInquiry;

/// Scripts written without spaces between words, indexed character by character.
fn unspaced(c: char) -> bool {
    matches!(c as u32,
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
pub fn spaced(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 2);
    for c in text.chars() {
        if unspaced(c) {
            out.push(' ');
            out.push(c);
            out.push(' ');
        } else {
            out.push(c);
        }
    }
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
