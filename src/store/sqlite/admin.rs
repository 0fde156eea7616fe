//! The inquiry log for admins: listing, triage, erasure, statistics, audit.

use serde_json::Value;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqlitePool};

use super::index::Index;
use super::search;
use crate::domain::{InquiryFilter, InquiryStatus, Page};
use crate::store::model::{keyset_page, StoredAudit, StoredNotification, INQUIRY_COLUMNS};
use crate::store::search::document_of;
use crate::store::{AuditEntry, Erase, InquiryRecord, NotificationStatus, NotificationView, Requeue};
use crate::timestamp::now_ms;

/// `SELECT <columns> FROM … WHERE <filter>` for inquiries (aliased `i`), newest
/// first, before `before` (a `seq`). The caller adds `LIMIT`.
pub fn select_inquiries(filter: &InquiryFilter, before: Option<i64>) -> QueryBuilder<'static, Sqlite> {
    select_filtered("", INQUIRY_COLUMNS, filter, before)
}

/// The same, selecting `columns`, with `prefix` before the `SELECT` (to nest it).
pub fn select_filtered(
    prefix: &str,
    columns: &str,
    filter: &InquiryFilter,
    before: Option<i64>,
) -> QueryBuilder<'static, Sqlite> {
    let search = filter.q.as_deref().and_then(search::match_query);
    let (mut query, order) = match &search {
        Some(_) => (
            QueryBuilder::new(format!(
                "{prefix}SELECT {columns} FROM inquiries_fts JOIN inquiries i ON i.seq = inquiries_fts.rowid \
                 WHERE inquiries_fts MATCH "
            )),
            " ORDER BY inquiries_fts.rowid DESC",
        ),
        None => (
            QueryBuilder::new(format!("{prefix}SELECT {columns} FROM inquiries i WHERE 1 = 1")),
            " ORDER BY i.seq DESC",
        ),
    };
    if let Some(expression) = search {
        query.push_bind(expression);
        if let Some(seq) = before {
            query.push(" AND inquiries_fts.rowid < ").push_bind(seq);
        }
    } else if filter.q.is_some() {
        // Nothing searchable was typed (only punctuation): nothing matches.
        query.push(" AND 0");
    } else if let Some(seq) = before {
        query.push(" AND i.seq < ").push_bind(seq);
    }
    if let Some(status) = filter.status {
        query.push(" AND i.status = ").push_bind(status.as_str());
    }
    if let Some(category) = filter.category {
        query.push(" AND i.category = ").push_bind(category.as_str());
    }
    if let Some(form) = &filter.form {
        query.push(" AND i.form = ").push_bind(form.clone());
    }
    if let Some(email) = &filter.email {
        query.push(" AND i.email_norm = ").push_bind(email.clone());
    }
    if let Some(since) = filter.since {
        query.push(" AND i.received_at >= ").push_bind(since);
    }
    if let Some(until) = filter.until {
        query.push(" AND i.received_at <= ").push_bind(until);
    }
    query.push(order);
    query
}

/// One page, newest first, and the `seq` to continue before (when there is more).
pub async fn list(
    reads: &SqlitePool,
    filter: &InquiryFilter,
    page: Page,
) -> Result<(Vec<InquiryRecord>, Option<i64>), sqlx::Error> {
    let mut query = select_inquiries(filter, page.before);
    query.push(" LIMIT ").push_bind(i64::from(page.limit) + 1);
    let items: Vec<InquiryRecord> = query.build_query_as().fetch_all(reads).await?;
    Ok(keyset_page(items, page.limit, |i| i.seq))
}

pub async fn get(reads: &SqlitePool, id: &str) -> Result<Option<(InquiryRecord, Vec<NotificationView>)>, sqlx::Error> {
    let inquiry: Option<InquiryRecord> =
        sqlx::query_as(&format!("SELECT {INQUIRY_COLUMNS} FROM inquiries i WHERE i.id = ?"))
            .bind(id)
            .fetch_optional(reads)
            .await?;
    let Some(inquiry) = inquiry else { return Ok(None) };
    let rows: Vec<StoredNotification> = sqlx::query_as(
        "SELECT id, kind, recipients, status, attempts, last_error, sent_at FROM notifications \
         WHERE inquiry_id = ? ORDER BY created_at, kind DESC",
    )
    .bind(id)
    .fetch_all(reads)
    .await?;
    let notifications = rows
        .into_iter()
        .map(|row| NotificationView::from_stored(row).map_err(|why| sqlx::Error::Decode(why.into())))
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(Some((inquiry, notifications)))
}

/// A stored value this build cannot read.
fn decode_error(column: &str, why: String) -> sqlx::Error {
    sqlx::Error::Decode(format!("stored notification {column}: {why}").into())
}

/// Sets the status (and the note, when given: `Some(None)` clears it).
/// Returns the previous status, or `None` when there is no such inquiry.
pub async fn update(
    conn: &mut SqliteConnection,
    id: &str,
    status: InquiryStatus,
    note: Option<Option<String>>,
) -> Result<Option<String>, sqlx::Error> {
    let previous: Option<String> =
        sqlx::query_scalar("SELECT status FROM inquiries WHERE id = ?").bind(id).fetch_optional(&mut *conn).await?;
    if previous.is_none() {
        return Ok(None);
    }
    let mut query = QueryBuilder::<Sqlite>::new("UPDATE inquiries SET status = ");
    query.push_bind(status.as_str()).push(", updated_at = ").push_bind(now_ms());
    if let Some(note) = note {
        query.push(", note = ").push_bind(note);
    }
    query.push(" WHERE id = ").push_bind(id);
    query.build().execute(&mut *conn).await?;
    Ok(previous)
}

/// Erases inquiries with their notifications, delivery attempts, idempotency
/// keys and search-index entries (removed from the search file first; what
/// that removal noted is left in `noted`, for [`Index::settle`]); returns the
/// erased inquiries. With `secure_delete` and the index's secure-delete
/// option the data is overwritten, not just unlinked.
pub async fn erase(
    conn: &mut SqliteConnection,
    which: &Erase,
    index: &Index,
    noted: &std::sync::Mutex<Vec<i64>>,
) -> Result<Vec<InquiryRecord>, sqlx::Error> {
    let mut select = QueryBuilder::<Sqlite>::new(format!("SELECT {INQUIRY_COLUMNS} FROM inquiries i WHERE "));
    match which {
        Erase::One(id) => select.push("i.id = ").push_bind(id.clone()),
        Erase::Email(email) => select.push("i.email_norm = ").push_bind(email.clone()),
        Erase::ReceivedBefore { cutoff, limit, .. } => {
            select.push("i.received_at < ").push_bind(*cutoff).push(" ORDER BY i.received_at LIMIT ").push_bind(*limit)
        }
    };
    let doomed: Vec<InquiryRecord> = select.build_query_as().fetch_all(&mut *conn).await?;
    if !doomed.is_empty() {
        let removed = index.remove(doomed.iter().map(|i| (i.seq, document_of(i))).collect()).await?;
        *noted.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = removed;
    }
    for chunk in doomed.chunks(500) {
        for (table, column) in [("idempotency_keys", "inquiry_id"), ("inquiries", "id")] {
            let mut delete = QueryBuilder::<Sqlite>::new(format!("DELETE FROM {table} WHERE {column} IN ("));
            let mut list = delete.separated(", ");
            chunk.iter().for_each(|i| {
                list.push_bind(i.id.clone());
            });
            delete.push(")").build().execute(&mut *conn).await?;
        }
    }
    // The newest erased: their `seq`s are not given again (see `batch::seq_floor`).
    if let Some(top) = doomed.iter().map(|i| i.seq).max() {
        sqlx::query(
            "INSERT INTO meta (key, value) SELECT 'seq_floor', ?1 WHERE ?1 > (SELECT COALESCE(MAX(seq), 0) FROM inquiries) \
             ON CONFLICT (key) DO UPDATE SET value = MAX(CAST(meta.value AS INTEGER), CAST(excluded.value AS INTEGER))",
        )
        .bind(top)
        .execute(&mut *conn)
        .await?;
    }
    Ok(doomed)
}

/// How many inquiries were received before `cutoff` (for `purge --dry-run`).
pub async fn count_before(reads: &SqlitePool, cutoff: i64) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM inquiries WHERE received_at < ?").bind(cutoff).fetch_one(reads).await
}

/// Which of `ids` are the ids of stored inquiries.
pub async fn present(reads: &SqlitePool, ids: &[String]) -> Result<Vec<String>, sqlx::Error> {
    let ids = serde_json::to_string(ids).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query_scalar("SELECT id FROM inquiries WHERE id IN (SELECT value FROM json_each(?))")
        .bind(ids)
        .fetch_all(reads)
        .await
}

/// Puts a failed notification back in the queue, due now, with a fresh count of attempts.
pub async fn requeue(conn: &mut SqliteConnection, id: &str) -> Result<Requeue, sqlx::Error> {
    let status: Option<String> =
        sqlx::query_scalar("SELECT status FROM notifications WHERE id = ?").bind(id).fetch_optional(&mut *conn).await?;
    let status: Option<NotificationStatus> =
        status.map(|s| s.parse().map_err(|why: String| decode_error("status", why))).transpose()?;
    match status {
        None => Ok(Requeue::NotFound),
        Some(NotificationStatus::Failed) => {
            sqlx::query(
                "UPDATE notifications SET status = 'pending', attempts = 0, next_attempt_at = ?, lease_until = NULL \
                 WHERE id = ?",
            )
            .bind(now_ms())
            .bind(id)
            .execute(&mut *conn)
            .await?;
            Ok(Requeue::Requeued)
        }
        Some(other) => Ok(Requeue::NotFailed(other)),
    }
}

/// `true` for the one caller that may run the retention purge now:
/// its mark is at most `due_by` (or there is none). The mark is then `mark`.
/// One conditional upsert decides.
pub async fn claim_retention_run(conn: &mut SqliteConnection, due_by: i64, mark: i64) -> Result<bool, sqlx::Error> {
    let claimed = sqlx::query(
        "INSERT INTO meta (key, value) VALUES ('retention_last_run', ?1) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value WHERE CAST(meta.value AS INTEGER) <= ?2",
    )
    .bind(mark.to_string())
    .bind(due_by)
    .execute(conn)
    .await?;
    Ok(claimed.rows_affected() == 1)
}

/// Moves the retention run's mark from `held` to `to`, if it is still `held`.
pub async fn move_retention_mark(conn: &mut SqliteConnection, held: i64, to: i64) -> Result<bool, sqlx::Error> {
    let moved = sqlx::query("UPDATE meta SET value = ?1 WHERE key = 'retention_last_run' AND value = ?2")
        .bind(to.to_string())
        .bind(held.to_string())
        .execute(conn)
        .await?;
    Ok(moved.rows_affected() == 1)
}

pub async fn audit(
    conn: &mut SqliteConnection,
    actor: &str,
    action: &str,
    target: Option<&str>,
    detail: Value,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO audit_log (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)")
        .bind(now_ms())
        .bind(actor)
        .bind(action)
        .bind(target)
        .bind(detail.to_string())
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn audit_page(reads: &SqlitePool, page: Page) -> Result<(Vec<AuditEntry>, Option<i64>), sqlx::Error> {
    let rows: Vec<StoredAudit> = sqlx::query_as(
        "SELECT seq, at, actor, action, target, detail FROM audit_log WHERE seq < ? ORDER BY seq DESC LIMIT ?",
    )
    .bind(page.before.unwrap_or(i64::MAX))
    .bind(i64::from(page.limit) + 1)
    .fetch_all(reads)
    .await?;
    let entries = rows
        .into_iter()
        .map(|row| AuditEntry::from_stored(row).map_err(|e| sqlx::Error::Decode(Box::new(e))))
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(keyset_page(entries, page.limit, |e| e.seq))
}
