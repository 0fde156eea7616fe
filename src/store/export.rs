//! Streaming exports: rows are written into bounded chunks as they are read, so
//! memory stays flat whatever the size of the log.

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::TryStreamExt;
use sqlx::SqlitePool;
use tokio::sync::mpsc;

use super::admin::select_inquiries;
use super::InquiryRecord;
use crate::domain::{ExportFormat, InquiryFilter};
use crate::timestamp::to_rfc3339;

const CHUNK: usize = 64 * 1024;
const CSV_COLUMNS: [&str; 16] = [
    "id",
    "received_at",
    "status",
    "category",
    "name",
    "email",
    "subject",
    "message",
    "organization",
    "country",
    "phone",
    "consent",
    "page",
    "client_ip",
    "spam_flags",
    "note",
];

/// Writes every matching inquiry to `out`, newest first; returns how many.
/// Stops early (without error) when the receiver goes away.
pub async fn export(
    reads: &SqlitePool,
    filter: &InquiryFilter,
    format: ExportFormat,
    out: mpsc::Sender<Bytes>,
) -> Result<u64, sqlx::Error> {
    let mut buffer = BytesMut::with_capacity(CHUNK * 2);
    if format == ExportFormat::Csv {
        csv_row(&mut buffer, CSV_COLUMNS.iter().map(|c| c.to_string()));
    }
    let mut query = select_inquiries(filter, None);
    let mut rows = query.build_query_as::<InquiryRecord>().fetch(reads);
    let mut count = 0;
    while let Some(inquiry) = rows.try_next().await? {
        match format {
            ExportFormat::Csv => csv_row(&mut buffer, csv_fields(&inquiry)),
            ExportFormat::Ndjson => {
                let _ = serde_json::to_writer((&mut buffer).writer(), &inquiry);
                buffer.put_u8(b'\n');
            }
        }
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

fn csv_fields(i: &InquiryRecord) -> impl Iterator<Item = String> {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    [
        i.id.clone(),
        to_rfc3339(i.received_at),
        i.status.clone(),
        i.category.clone(),
        i.name.clone(),
        i.email.clone(),
        i.subject.clone(),
        i.message.clone(),
        opt(&i.organization),
        opt(&i.country),
        opt(&i.phone),
        i.consent.map(|c| c.to_string()).unwrap_or_default(),
        opt(&i.page),
        opt(&i.client_ip),
        i.spam_flags.join(" "),
        opt(&i.note),
    ]
    .into_iter()
}

/// One RFC 4180 record, CRLF-terminated, every cell neutralised against formula
/// injection: a cell a spreadsheet would evaluate (starting with `= + - @`, tab
/// or CR) is prefixed with `'`.
fn csv_row(out: &mut BytesMut, cells: impl Iterator<Item = String>) {
    for (n, cell) in cells.enumerate() {
        if n > 0 {
            out.put_u8(b',');
        }
        let neutral = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
        let quote = neutral || cell.contains([',', '"', '\r', '\n']);
        if quote {
            out.put_u8(b'"');
        }
        if neutral {
            out.put_u8(b'\'');
        }
        for piece in cell.split('"').enumerate() {
            if piece.0 > 0 {
                out.put_slice(b"\"\"");
            }
            out.put_slice(piece.1.as_bytes());
        }
        if quote {
            out.put_u8(b'"');
        }
    }
    out.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> String {
        let mut out = BytesMut::new();
        csv_row(&mut out, cells.iter().map(|c| c.to_string()));
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn quotes_per_rfc_4180() {
        assert_eq!(
            row(&["a", "b,c", "say \"hi\"", "two\r\nlines"]),
            "a,\"b,c\",\"say \"\"hi\"\"\",\"two\r\nlines\"\r\n"
        );
    }

    #[test]
    fn neutralises_formula_cells() {
        assert_eq!(
            row(&["=HYPERLINK(\"x\")", "+1", "-2", "@SUM(A1)", "\tx", "ok"]),
            "\"'=HYPERLINK(\"\"x\"\")\",\"'+1\",\"'-2\",\"'@SUM(A1)\",\"'\tx\",ok\r\n"
        );
    }
}
