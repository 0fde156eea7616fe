//! Full-text search for every script the visitors write.
//!
//! SQLite's unicode61 tokenizer splits Latin, Cyrillic, Kazakh or Urdu text on
//! spaces and punctuation, folds case and (with `remove_diacritics`) accents. It
//! keeps a run of Chinese or Japanese characters as one token, so a search for a
//! two-character word inside a sentence would find nothing. Both the indexed text
//! and the query therefore space out every such character: a query is a phrase of
//! single characters, which matches the word wherever it occurs. (The trigram
//! tokenizer needs three characters, so it cannot find two-character words.)

use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use crate::store::search::{document_of, spaced};
use crate::store::InquiryRecord;

/// Indexes one row: `(seq, document)`.
pub const INSERT: &str = "INSERT INTO inquiries_fts (rowid, body) VALUES (?1, ?2)";

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

/// Indexes freshly inserted rows: `(seq, document)`.
pub async fn index(conn: &mut SqliteConnection, rows: &[(i64, String)]) -> Result<(), sqlx::Error> {
    for chunk in rows.chunks(500) {
        let mut insert = QueryBuilder::<Sqlite>::new("INSERT INTO inquiries_fts (rowid, body) ");
        insert.push_values(chunk, |mut row, (seq, body)| {
            row.push_bind(*seq).push_bind(body.as_str());
        });
        insert.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Removes inquiries from the index. The table is contentless, so the delete
/// command needs the document that was indexed, which is recomputed from the row.
pub async fn unindex(conn: &mut SqliteConnection, inquiries: &[InquiryRecord]) -> Result<(), sqlx::Error> {
    let state: Option<String> =
        sqlx::query_scalar("SELECT value FROM meta WHERE key = 'search_index'").fetch_optional(&mut *conn).await?;
    if state.as_deref() != Some("complete") {
        // Rows may be missing from an incomplete index; it is rebuilt from scratch anyway.
        return Ok(());
    }
    for inquiry in inquiries {
        sqlx::query("INSERT INTO inquiries_fts (inquiries_fts, rowid, body) VALUES ('delete', ?, ?)")
            .bind(inquiry.seq)
            .bind(document_of(inquiry))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Makes the index match `enabled`: when indexing was off for a while (or rows
/// were loaded without it), rebuilds it from the inquiries.
pub async fn ensure_index(conn: &mut SqliteConnection, enabled: bool) -> Result<(), sqlx::Error> {
    let state: Option<String> =
        sqlx::query_scalar("SELECT value FROM meta WHERE key = 'search_index'").fetch_optional(&mut *conn).await?;
    let complete = state.as_deref() == Some("complete");
    if !enabled {
        if complete {
            set_state(conn, "incomplete").await?;
        }
        return Ok(());
    }
    if complete {
        return Ok(());
    }
    tracing::info!("rebuilding the search index");
    sqlx::query("INSERT INTO inquiries_fts (inquiries_fts) VALUES ('delete-all')").execute(&mut *conn).await?;
    let mut after = 0i64;
    loop {
        let rows: Vec<InquiryRecord> = sqlx::query_as(&format!(
            "SELECT {} FROM inquiries i WHERE i.seq > ? ORDER BY i.seq LIMIT 2000",
            crate::store::model::INQUIRY_COLUMNS
        ))
        .bind(after)
        .fetch_all(&mut *conn)
        .await?;
        let Some(last) = rows.last() else { break };
        after = last.seq;
        let documents: Vec<(i64, String)> = rows.iter().map(|i| (i.seq, document_of(i))).collect();
        index(conn, &documents).await?;
    }
    set_state(conn, "complete").await
}

async fn set_state(conn: &mut SqliteConnection, state: &str) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT OR REPLACE INTO meta (key, value) VALUES ('search_index', ?)")
        .bind(state)
        .execute(conn)
        .await?;
    Ok(())
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
