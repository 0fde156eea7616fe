//! Streaming exports. SQLite renders each row (an NDJSON object or a CSV
//! record) and joins a few hundred of them into one string per query, so moving
//! rows out of SQLite costs next to nothing; pages are taken by keyset, so
//! memory stays flat whatever the size of the log. A test keeps the NDJSON
//! objects equal to the API's inquiry objects.

use bytes::Bytes;
use sqlx::SqlitePool;
use tokio::sync::mpsc;

use super::admin::select_filtered;
use crate::domain::{ExportFormat, InquiryFilter};
use crate::store::model::csv_columns;

/// Rows per query (and per chunk sent to the client).
const ROWS_PER_CHUNK: i64 = 200;

/// `(name, SQL expression)` in the order of the API's inquiry object.
const FIELDS: [(&str, &str); 18] = [
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
    ("form", "i.form"),
    ("fields", "json(i.fields)"),
];

fn ndjson_column() -> String {
    let pairs: Vec<String> = FIELDS.iter().map(|(name, expr)| format!("'{name}', {expr}")).collect();
    format!("json_object({})", pairs.join(", "))
}

/// One RFC 4180 record, every cell quoted, and neutralised against formula
/// injection: a cell a spreadsheet would evaluate (starting with `= + - @`, tab
/// or CR) gets a leading `'`.
fn csv_column(custom: Option<&[String]>) -> String {
    // Text as it is, anything else as its JSON (`true`, `3`), absent as nothing:
    // what `model::csv_value` renders. Names are `[a-z][a-z0-9_]*` (checked at start-up).
    let custom_cells = custom.map(|names| {
        names.iter().map(|name| {
            let path = format!("'$.{name}'");
            let expr = format!(
                "CASE json_type(i.fields, {path}) WHEN 'text' THEN json_extract(i.fields, {path}) \
                 WHEN 'array' THEN (SELECT group_concat(json_extract(f.value, '$.name') || ' (' || \
                     json_extract(f.value, '$.size') || ' bytes)', '; ') FROM json_each(i.fields, {path}) f) \
                 ELSE coalesce(i.fields -> {path}, '') END"
            );
            ((*name).clone(), expr)
        })
    });
    let columns: Vec<(String, String)> = FIELDS
        .iter()
        .filter(|(name, _)| custom.is_none() || *name != "fields")
        .map(|(name, expr)| ((*name).to_owned(), (*expr).to_owned()))
        .chain(custom_cells.into_iter().flatten())
        .collect();
    let cells: Vec<String> = columns
        .iter()
        .map(|(name, expr)| {
            let value = match name.as_str() {
                // An inquiry without flags has none to concatenate: NULL, which would
                // turn the whole record NULL (and drop it) without the coalesce.
                "spam_flags" => "coalesce((SELECT group_concat(value, ' ') FROM json_each(i.spam_flags)), '')".to_owned(),
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
/// With `bom`, CSV starts with a UTF-8 byte-order mark; it has one column per
/// name in `custom`, or (`None`) one `fields` column.
pub async fn export(
    reads: &SqlitePool,
    filter: &InquiryFilter,
    format: ExportFormat,
    bom: bool,
    custom: Option<&[String]>,
    out: mpsc::Sender<Bytes>,
) -> Result<u64, sqlx::Error> {
    let (column, separator) = match format {
        ExportFormat::Csv => {
            let bom = if bom { "\u{feff}" } else { "" };
            if out.send(Bytes::from(format!("{bom}{}\r\n", csv_columns(custom).join(",")))).await.is_err() {
                return Ok(0);
            }
            (csv_column(custom), "char(13, 10)")
        }
        ExportFormat::Ndjson => (ndjson_column(), "char(10)"),
    };
    let prefix = format!("SELECT group_concat(line, {separator} ORDER BY s DESC), min(s), count(*) FROM (");
    let mut before = None;
    let mut count = 0;
    loop {
        let mut query = select_filtered(&prefix, &format!("{column} AS line, i.seq AS s"), filter, before);
        query.push(" LIMIT ").push_bind(ROWS_PER_CHUNK).push(")");
        let (lines, last, rows): (Option<String>, Option<i64>, i64) = query.build_query_as().fetch_one(reads).await?;
        let Some(last) = last else { break };
        // Every cell is coalesced, so no record is NULL; if one ever were, it
        // would vanish from group_concat: fail loudly rather than drop rows.
        let Some(mut lines) = lines else {
            return Err(sqlx::Error::Protocol(format!("{rows} exported rows rendered as NULL")));
        };
        lines.push_str(if format == ExportFormat::Csv { "\r\n" } else { "\n" });
        count += rows as u64;
        if out.send(Bytes::from(lines)).await.is_err() || rows < ROWS_PER_CHUNK {
            break;
        }
        before = Some(last);
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SQLite renders its exports in SQL: its field list is the shared one.
    #[test]
    fn fields_are_the_export_columns() {
        let names: Vec<&str> = FIELDS.iter().map(|(name, _)| *name).collect();
        assert_eq!(names, crate::store::model::EXPORT_COLUMNS);
    }
}
