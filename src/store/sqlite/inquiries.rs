//! Reading inquiries back.

use sqlx::sqlite::SqliteRow;
use sqlx::{FromRow, Row, SqlitePool};

use crate::store::model::typed;
use crate::store::{InquiryRecord, Receipt};

impl InquiryRecord {
    /// Reads the record from a rusqlite row whose [`INQUIRY_COLUMNS`] start at `first`.
    pub fn from_columns(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Self> {
        Ok(inquiry_from_row!(row, get, first, |why| {
            rusqlite::Error::FromSqlConversionFailure(first + 3, rusqlite::types::Type::Text, why.into())
        }))
    }
}

/// sqlx queries select [`INQUIRY_COLUMNS`] first.
impl FromRow<'_, SqliteRow> for InquiryRecord {
    fn from_row(row: &SqliteRow) -> Result<Self, sqlx::Error> {
        Ok(inquiry_from_row!(row, try_get, 0, |why| sqlx::Error::Decode(why.into())))
    }
}

/// The first answer given for an Idempotency-Key within its 24 hours, with the
/// hash of the body it came with.
pub async fn idempotent_answer(reads: &SqlitePool, key: &str) -> Result<Option<([u8; 32], Receipt)>, sqlx::Error> {
    let since = crate::timestamp::now_ms() - 24 * 60 * 60 * 1000;
    let row = sqlx::query(
        "SELECT request_hash, inquiry_id, received_at FROM idempotency_keys WHERE key = ? AND created_at >= ?",
    )
    .bind(key)
    .bind(since)
    .fetch_optional(reads)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let hash: Vec<u8> = row.try_get("request_hash")?;
    let hash = hash.try_into().map_err(|_| sqlx::Error::Decode("stored request hash is not 32 bytes".into()))?;
    Ok(Some((hash, Receipt { id: row.try_get("inquiry_id")?, received_at: row.try_get("received_at")? })))
}
