//! Full-text search for every script the visitors write.
//!
//! SQLite's unicode61 tokenizer splits Latin, Cyrillic, Kazakh or Urdu text on
//! spaces and punctuation, folds case and (with `remove_diacritics`) accents. It
//! keeps a run of Chinese or Japanese characters as one token, so a search for a
//! two-character word inside a sentence would find nothing. Both the indexed text
//! and the query therefore space out every such character: a query is a phrase of
//! single characters, which matches the word wherever it occurs. (The trigram
//! tokenizer needs three characters, so it cannot find two-character words.)

use crate::store::search::spaced;

/// Turns what an admin typed into an FTS5 query: every word must occur (as a
/// whole word; a run of Chinese characters as that exact sequence). Whole words,
/// not prefixes: a prefix query makes SQLite merge every matching term's list
/// before it can return the newest match, which costs tens of milliseconds on a
/// million inquiries. `None` when nothing searchable is left.
pub fn match_query(q: &str) -> Option<String> {
    let phrases: Vec<String> = q
        .split_whitespace()
        .map(|word| {
            let spaced = spaced(word);
            let tokens: Vec<&str> = spaced.split(|c: char| !c.is_alphanumeric()).filter(|t| !t.is_empty()).collect();
            format!("\"{}\"", tokens.join(" "))
        })
        .filter(|phrase| phrase != "\"\"")
        .collect();
    (!phrases.is_empty()).then(|| phrases.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cjk_is_spaced_latin_and_cyrillic_are_not() {
        assert_eq!(spaced("关于合作"), " 关  于  合  作 ");
        assert_eq!(spaced("Иван Petrov"), "Иван Petrov");
    }

    #[test]
    fn queries_are_phrases_of_whole_words() {
        assert_eq!(match_query("合作").unwrap(), "\"合 作\"");
        assert_eq!(match_query("  Иван  petrov ").unwrap(), "\"Иван\" \"petrov\"");
        assert_eq!(match_query("o'brien").unwrap(), "\"o brien\"");
        assert_eq!(match_query(" \"*( ) "), None);
    }
}
