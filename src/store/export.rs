//! Streaming exports. SQLite renders each row (an NDJSON object or a CSV
//! record) as one string, so a row costs one value to move instead of sixteen;
//! rows are gathered into bounded chunks, so memory stays flat whatever the size
//! of the log. A test keeps the NDJSON objects equal to the API's inquiry objects.

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::TryStreamExt;
use sqlx::SqlitePool;
use tokio::sync::mpsc;

use super::admin::select_filtered;
use crate::domain::{ExportFormat, InquiryFilter};

const CHUNK: usize = 64 * 1024;

/// `(name, SQL expression)` in the order of the API's inquiry object.
const FIELDS: [(&str, &str); 16] = [
    ("id", "i.id"),
    (
        "received_at",
        "strftime('%Y-%m-%dT%H:%M:%S', i.received_at / 1000, 'unixepoch') || printf('.%03dZ', i.received_at % 1000)",
    ),
    ("status", "i.status"),
    ("category", "i.category"),
    ("name", "i.name"),
    ("email", "i.email"),
    ("subject", "i.subject"),
    ("message", "i.message"),
    ("organization", "i.organization"),
    ("country", "i.country"),
    ("phone", "i.phone"),
    ("consent", "CASE WHEN i.consent IS NULL THEN NULL WHEN i.consent THEN json('true') ELSE json('false') END"),
    ("page", "i.page"),
    ("client_ip", "i.client_ip"),
    ("spam_flags", "json(i.spam_flags)"),
    ("note", "i.note"),
];

fn ndjson_column() -> String {
    let pairs: Vec<String> = FIELDS.iter().map(|(name, expr)| format!("'{name}', {expr}")).collect();
    format!("json_object({})", pairs.join(", "))
}

/// One RFC 4180 record, every cell quoted, and neutralised against formula
/// injection: a cell a spreadsheet would evaluate (starting with `= + - @`, tab
/// or CR) gets a leading `'`.
fn csv_column() -> String {
    let cells: Vec<String> = FIELDS
        .iter()
        .map(|(name, expr)| {
            let value = match *name {
                "spam_flags" => "(SELECT group_concat(value, ' ') FROM json_each(i.spam_flags))".to_owned(),
                "consent" => "CASE WHEN i.consent IS NULL THEN '' WHEN i.consent THEN 'true' ELSE 'false' END".to_owned(),
                _ => format!("coalesce({expr}, '')"),
            };
            format!(
                "'\"' || CASE WHEN substr({value}, 1, 1) IN ('=', '+', '-', '@', char(9), char(13)) THEN '''' ELSE '' END \
                 || replace({value}, '\"', '\"\"') || '\"'"
            )
        })
        .collect();
    cells.join(" || ',' || ")
}

/// Writes every matching inquiry to `out`, newest first; returns how many.
/// Stops early (without error) when the receiver goes away.
pub async fn export(
    reads: &SqlitePool,
    filter: &InquiryFilter,
    format: ExportFormat,
    out: mpsc::Sender<Bytes>,
) -> Result<u64, sqlx::Error> {
    let mut buffer = BytesMut::with_capacity(CHUNK * 2);
    let (column, line_end): (String, &[u8]) = match format {
        ExportFormat::Csv => {
            let header: Vec<&str> = FIELDS.iter().map(|(name, _)| *name).collect();
            buffer.put_slice(header.join(",").as_bytes());
            buffer.put_slice(b"\r\n");
            (csv_column(), b"\r\n")
        }
        ExportFormat::Ndjson => (ndjson_column(), b"\n"),
    };
    let mut query = select_filtered(&column, filter, None);
    let mut rows = query.build_query_scalar::<String>().fetch(reads);
    let mut count = 0;
    while let Some(line) = rows.try_next().await? {
        buffer.put_slice(line.as_bytes());
        buffer.put_slice(line_end);
        count += 1;
        if buffer.len() >= CHUNK && out.send(buffer.split().freeze()).await.is_err() {
            return Ok(count);
        }
    }
    if !buffer.is_empty() {
        let _ = out.send(buffer.freeze()).await;
    }
    Ok(count)
}
