//! Reading inquiries back.

use sqlx::sqlite::SqliteRow;
use sqlx::{FromRow, Row, SqlitePool};

use crate::domain::{Category, InquiryStatus};
use crate::store::{InquiryRecord, Receipt};

/// The columns every inquiry query selects, in [`InquiryRecord`]'s order.
pub const INQUIRY_COLUMNS: &str = "i.seq, i.id, i.received_at, i.status, i.category, i.name, i.email, i.subject, \
     i.message, i.organization, i.country, i.phone, i.consent, i.page, i.client_ip, i.spam_flags, i.note";

/// The stored text columns that come back typed: a value this build does not
/// know is an error, never a default.
fn typed(status: &str, category: &str, flags: &str) -> Result<(InquiryStatus, Category, Vec<String>), String> {
    let status = status.parse().map_err(|why| format!("stored status {status:?} {why}"))?;
    let category = category.parse().map_err(|why| format!("stored category {category:?} {why}"))?;
    let flags = serde_json::from_str(flags).map_err(|e| format!("stored spam_flags are not a JSON list: {e}"))?;
    Ok((status, category, flags))
}

/// Reads an inquiry from a row whose [`INQUIRY_COLUMNS`] start at `$first`
/// through `$row.$get(index)` (rusqlite's `get`, sqlx's `try_get`): one field
/// list for both drivers; `$invalid` turns a decoding failure into the driver's error.
macro_rules! inquiry_from_row {
    ($row:expr, $get:ident, $first:expr, $invalid:expr) => {{
        let (row, first) = ($row, $first);
        let (status, category, flags): (String, String, String) =
            (row.$get(first + 3)?, row.$get(first + 4)?, row.$get(first + 15)?);
        let (status, category, spam_flags) = typed(&status, &category, &flags).map_err($invalid)?;
        InquiryRecord {
            seq: row.$get(first)?,
            id: row.$get(first + 1)?,
            received_at: row.$get(first + 2)?,
            status,
            category,
            name: row.$get(first + 5)?,
            email: row.$get(first + 6)?,
            subject: row.$get(first + 7)?,
            message: row.$get(first + 8)?,
            organization: row.$get(first + 9)?,
            country: row.$get(first + 10)?,
            phone: row.$get(first + 11)?,
            consent: row.$get(first + 12)?,
            page: row.$get(first + 13)?,
            client_ip: row.$get(first + 14)?,
            spam_flags,
            note: row.$get(first + 16)?,
        }
    }};
}

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
pub async fn idempotent_answer(reads: &SqlitePool, key: &str) -> Option<([u8; 32], Receipt)> {
    let since = crate::timestamp::now_ms() - 24 * 60 * 60 * 1000;
    let row = sqlx::query(
        "SELECT request_hash, inquiry_id, received_at FROM idempotency_keys WHERE key = ? AND created_at >= ?",
    )
    .bind(key)
    .bind(since)
    .fetch_optional(reads)
    .await
    .ok()??;
    let hash: Vec<u8> = row.try_get("request_hash").ok()?;
    let receipt = Receipt { id: row.try_get("inquiry_id").ok()?, received_at: row.try_get("received_at").ok()? };
    Some((hash.try_into().ok()?, receipt))
}
