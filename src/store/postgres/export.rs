//! Streaming exports on PostgreSQL: keyset pages of inquiries rendered here,
//! as the API renders them (NDJSON objects are the API's inquiry objects; CSV
//! follows SQLite's rendering cell for cell, which a test holds both to).

use bytes::Bytes;
use sqlx::PgPool;
use tokio::sync::mpsc;

use super::admin::select_filtered;
use crate::domain::{ExportFormat, InquiryFilter};
use crate::store::model::{csv_columns, csv_value, INQUIRY_COLUMNS};
use crate::store::InquiryRecord;
use crate::timestamp::to_rfc3339;

/// Rows per query (and per chunk sent to the client).
const ROWS_PER_CHUNK: i64 = 200;

/// One RFC 4180 record, every cell quoted; a cell a spreadsheet would evaluate
/// (starting with `= + - @`, tab or CR) gets a leading `'`.
fn csv_record(out: &mut String, inquiry: &InquiryRecord, custom: Option<&[String]>) {
    let consent = inquiry.consent.map(|c| if c { "true" } else { "false" });
    let custom: Vec<String> = match custom {
        Some(names) => names.iter().map(|name| csv_value(inquiry.fields.get(name))).collect(),
        None => vec![serde_json::Value::Object(inquiry.fields.clone()).to_string()],
    };
    let built_in: [&str; 17] = [
        &inquiry.id,
        &to_rfc3339(inquiry.received_at),
        inquiry.status.as_str(),
        inquiry.category.as_str(),
        &inquiry.name,
        &inquiry.email,
        &inquiry.subject,
        &inquiry.message,
        inquiry.organization.as_deref().unwrap_or(""),
        inquiry.country.as_deref().unwrap_or(""),
        inquiry.phone.as_deref().unwrap_or(""),
        consent.unwrap_or(""),
        inquiry.page.as_deref().unwrap_or(""),
        inquiry.client_ip.as_deref().unwrap_or(""),
        &inquiry.spam_flags.join(" "),
        inquiry.note.as_deref().unwrap_or(""),
        &inquiry.form,
    ];
    let cells = built_in.into_iter().chain(custom.iter().map(String::as_str));
    for (n, cell) in cells.enumerate() {
        if n > 0 {
            out.push(',');
        }
        out.push('"');
        if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            out.push('\'');
        }
        out.push_str(&cell.replace('"', "\"\""));
        out.push('"');
    }
    out.push_str("\r\n");
}

/// Writes every matching inquiry to `out`, newest first; returns how many.
/// Stops early (without error) when the receiver goes away. CSV has one column
/// per name in `custom`, or (`None`) one `fields` column.
pub async fn export(
    pool: &PgPool,
    filter: &InquiryFilter,
    format: ExportFormat,
    bom: bool,
    custom: Option<&[String]>,
    out: mpsc::Sender<Bytes>,
) -> Result<u64, sqlx::Error> {
    if format == ExportFormat::Csv {
        let bom = if bom { "\u{feff}" } else { "" };
        if out.send(Bytes::from(format!("{bom}{}\r\n", csv_columns(custom).join(",")))).await.is_err() {
            return Ok(0);
        }
    }
    let mut before = None;
    let mut count = 0;
    loop {
        let mut query = select_filtered(INQUIRY_COLUMNS, filter, before);
        query.push(" LIMIT ").push_bind(ROWS_PER_CHUNK);
        let rows: Vec<InquiryRecord> = query.build_query_as().fetch_all(pool).await?;
        let Some(last) = rows.last() else { break };
        let mut chunk = String::with_capacity(rows.len() * 2048);
        for inquiry in &rows {
            match format {
                ExportFormat::Csv => csv_record(&mut chunk, inquiry, custom),
                ExportFormat::Ndjson => {
                    chunk.push_str(&serde_json::to_string(inquiry).map_err(|e| sqlx::Error::Decode(Box::new(e)))?);
                    chunk.push('\n');
                }
            }
        }
        count += rows.len() as u64;
        before = Some(last.seq);
        if out.send(Bytes::from(chunk)).await.is_err() || (rows.len() as i64) < ROWS_PER_CHUNK {
            break;
        }
    }
    Ok(count)
}
