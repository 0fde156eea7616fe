//! The inquiry log for admins on PostgreSQL: listing, search, triage,
//! erasure, statistics, audit, and the cluster's one daily retention run.

use serde_json::Value;
use sqlx::{PgPool, Postgres, QueryBuilder};

use super::Tx;
use crate::domain::{InquiryFilter, InquiryStatus, Page};
use crate::store::model::{keyset_page, StoredAudit, StoredNotification, INQUIRY_COLUMNS};
use crate::store::search::{document_of, spaced, words};
use crate::store::{AuditEntry, Erase, InquiryRecord, NotificationStatus, NotificationView, Requeue};
use crate::timestamp::now_ms;

/// `SELECT <columns> FROM inquiries i WHERE <filter>`, newest first, before
/// `before` (a `seq`). The caller adds `LIMIT`.
///
/// Search: every whitespace-separated word of `q` must occur as a phrase,
/// prepared as the indexed documents are (Chinese and Japanese characters
/// standing alone, punctuation split, accents folded by `inquiryd_fold`), so
/// that a two-character Chinese word is found inside a sentence, as on SQLite.
pub fn select_filtered(columns: &str, filter: &InquiryFilter, before: Option<i64>) -> QueryBuilder<'static, Postgres> {
    let mut query = QueryBuilder::new(format!("SELECT {columns} FROM inquiries i WHERE TRUE"));
    if let Some(q) = &filter.q {
        let phrases: Vec<String> =
            q.split_whitespace().map(|word| words(&spaced(word))).filter(|p| !p.is_empty()).collect();
        if phrases.is_empty() {
            // Nothing searchable was typed (only punctuation): nothing matches.
            query.push(" AND FALSE");
        }
        for phrase in phrases {
            query.push(" AND i.search @@ phraseto_tsquery('simple', inquiryd_fold(").push_bind(phrase).push("))");
        }
    }
    if let Some(seq) = before {
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
    query.push(" ORDER BY i.seq DESC");
    query
}

pub async fn list(
    pool: &PgPool,
    filter: &InquiryFilter,
    page: Page,
) -> Result<(Vec<InquiryRecord>, Option<i64>), sqlx::Error> {
    let mut query = select_filtered(INQUIRY_COLUMNS, filter, page.before);
    query.push(" LIMIT ").push_bind(i64::from(page.limit) + 1);
    let items: Vec<InquiryRecord> = query.build_query_as().fetch_all(pool).await?;
    Ok(keyset_page(items, page.limit, |i| i.seq))
}

pub async fn get(pool: &PgPool, id: &str) -> Result<Option<(InquiryRecord, Vec<NotificationView>)>, sqlx::Error> {
    let inquiry: Option<InquiryRecord> =
        sqlx::query_as(&format!("SELECT {INQUIRY_COLUMNS} FROM inquiries i WHERE i.id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await?;
    let Some(inquiry) = inquiry else { return Ok(None) };
    let rows: Vec<StoredNotification> = sqlx::query_as(
        "SELECT id, kind, recipients, status, attempts, last_error, sent_at FROM notifications \
         WHERE inquiry_id = $1 ORDER BY created_at, kind DESC",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    let notifications = rows
        .into_iter()
        .map(|row| NotificationView::from_stored(row).map_err(|why| sqlx::Error::Decode(why.into())))
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(Some((inquiry, notifications)))
}

fn decode_error(column: &str, why: String) -> sqlx::Error {
    sqlx::Error::Decode(format!("stored notification {column}: {why}").into())
}

/// Sets the status (and the note, when given); the previous status, or `None`
/// when there is no such inquiry.
pub async fn update(
    tx: &mut Tx,
    id: &str,
    status: InquiryStatus,
    note: Option<Option<String>>,
) -> Result<Option<String>, sqlx::Error> {
    let previous: Option<String> = sqlx::query_scalar("SELECT status FROM inquiries WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    if previous.is_none() {
        return Ok(None);
    }
    let mut query = QueryBuilder::<Postgres>::new("UPDATE inquiries SET status = ");
    query.push_bind(status.as_str()).push(", updated_at = ").push_bind(now_ms());
    if let Some(note) = note {
        query.push(", note = ").push_bind(note);
    }
    query.push(" WHERE id = ").push_bind(id.to_owned());
    query.build().execute(&mut **tx).await?;
    Ok(previous)
}

/// Deletes inquiries with their notifications and attempts (by cascade) and
/// their idempotency keys; the search index is a column of the row. Returns
/// the erased inquiries.
///
/// The notifications' rows are locked first, in id order, the order in which an
/// outbox worker settles them: the cascade would otherwise lock them in its own
/// order and could deadlock with a worker settling the same rows.
pub async fn erase(tx: &mut Tx, which: &Erase) -> Result<Vec<InquiryRecord>, sqlx::Error> {
    let filter = |query: &mut QueryBuilder<'static, Postgres>| {
        match which {
            Erase::One(id) => query.push("i.id = ").push_bind(id.clone()),
            Erase::Email(email) => query.push("i.email_norm = ").push_bind(email.clone()),
            Erase::ReceivedBefore { cutoff, limit, .. } => query
                .push("i.id IN (SELECT id FROM inquiries WHERE received_at < ")
                .push_bind(*cutoff)
                .push(" ORDER BY received_at LIMIT ")
                .push_bind(*limit)
                .push(")"),
        };
    };
    let mut lock = QueryBuilder::<Postgres>::new(
        "SELECT n.id FROM notifications n JOIN inquiries i ON i.id = n.inquiry_id WHERE ",
    );
    filter(&mut lock);
    lock.push(" ORDER BY n.id FOR UPDATE OF n");
    lock.build().execute(&mut **tx).await?;
    let mut delete = QueryBuilder::<Postgres>::new("DELETE FROM inquiries i WHERE ");
    filter(&mut delete);
    delete.push(format!(" RETURNING {INQUIRY_COLUMNS}"));
    let doomed: Vec<InquiryRecord> = delete.build_query_as().fetch_all(&mut **tx).await?;
    let ids: Vec<&str> = doomed.iter().map(|i| i.id.as_str()).collect();
    sqlx::query("DELETE FROM idempotency_keys WHERE inquiry_id = ANY($1)").bind(&ids).execute(&mut **tx).await?;
    Ok(doomed)
}

/// After an erasure: VACUUM removes the dead row versions and their index
/// entries (GIN's pending list included) instead of leaving them until autovacuum.
pub async fn vacuum(pool: &PgPool) {
    let tables =
        "inquiries, notifications, notification_attempts, idempotency_keys, webhook_deliveries, webhook_attempts, files";
    if let Err(error) = sqlx::query(&format!("VACUUM {tables}")).execute(pool).await {
        tracing::warn!(%error, "VACUUM after erasure failed; autovacuum will remove the dead rows later");
    }
}

pub async fn count_before(pool: &PgPool, cutoff: i64) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM inquiries WHERE received_at < $1").bind(cutoff).fetch_one(pool).await
}

/// Which of `ids` are the ids of stored inquiries.
pub async fn present(pool: &PgPool, ids: &[String]) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM inquiries WHERE id = ANY($1)").bind(ids).fetch_all(pool).await
}

pub async fn requeue(tx: &mut Tx, id: &str) -> Result<Requeue, sqlx::Error> {
    let status: Option<String> = sqlx::query_scalar("SELECT status FROM notifications WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    let status: Option<NotificationStatus> =
        status.map(|s| s.parse().map_err(|why: String| decode_error("status", why))).transpose()?;
    match status {
        None => Ok(Requeue::NotFound),
        Some(NotificationStatus::Failed) => {
            sqlx::query(
                "UPDATE notifications SET status = 'pending', attempts = 0, next_attempt_at = $1, lease_until = NULL \
                 WHERE id = $2",
            )
            .bind(now_ms())
            .bind(id)
            .execute(&mut **tx)
            .await?;
            Ok(Requeue::Requeued)
        }
        Some(other) => Ok(Requeue::NotFailed(other)),
    }
}

/// `true` for the one caller, cluster-wide, that may run the retention purge now:
/// its mark is at most `due_by` (or there is none). The mark is then `mark`.
/// One conditional upsert decides.
pub async fn claim_retention_run(pool: &PgPool, due_by: i64, mark: i64) -> Result<bool, sqlx::Error> {
    let claimed = sqlx::query(
        "INSERT INTO meta (key, value) VALUES ('retention_last_run', $1) \
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value WHERE meta.value::bigint <= $2",
    )
    .bind(mark.to_string())
    .bind(due_by)
    .execute(pool)
    .await?;
    Ok(claimed.rows_affected() == 1)
}

/// Moves the retention run's mark from `held` to `to`, if it is still `held`.
pub async fn move_retention_mark(pool: &PgPool, held: i64, to: i64) -> Result<bool, sqlx::Error> {
    let moved = sqlx::query("UPDATE meta SET value = $1 WHERE key = 'retention_last_run' AND value = $2")
        .bind(to.to_string())
        .bind(held.to_string())
        .execute(pool)
        .await?;
    Ok(moved.rows_affected() == 1)
}

pub async fn audit(
    tx: &mut Tx,
    actor: &str,
    action: &str,
    target: Option<&str>,
    detail: Value,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO audit_log (at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)")
        .bind(now_ms())
        .bind(actor)
        .bind(action)
        .bind(target)
        .bind(detail.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn audit_page(pool: &PgPool, page: Page) -> Result<(Vec<AuditEntry>, Option<i64>), sqlx::Error> {
    let rows: Vec<StoredAudit> = sqlx::query_as(
        "SELECT seq, at, actor, action, target, detail FROM audit_log WHERE seq < $1 ORDER BY seq DESC LIMIT $2",
    )
    .bind(page.before.unwrap_or(i64::MAX))
    .bind(i64::from(page.limit) + 1)
    .fetch_all(pool)
    .await?;
    let entries = rows
        .into_iter()
        .map(|row| AuditEntry::from_stored(row).map_err(|e| sqlx::Error::Decode(Box::new(e))))
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(keyset_page(entries, page.limit, |e| e.seq))
}

/// Makes the index match `enabled`, as on SQLite: rows stored while indexing
/// was off have no index entry; turning it back on indexes them (in batches,
/// by the service, which prepares the documents).
pub async fn ensure_index(pool: &PgPool, enabled: bool) -> Result<(), sqlx::Error> {
    let state: Option<String> =
        sqlx::query_scalar("SELECT value FROM meta WHERE key = 'search_index'").fetch_optional(pool).await?;
    let complete = state.as_deref() == Some("complete");
    if !enabled {
        if complete {
            set_index_state(pool, "incomplete").await?;
        }
        return Ok(());
    }
    if complete {
        return Ok(());
    }
    tracing::info!("indexing the inquiries stored while the search index was off");
    let mut after = 0i64;
    loop {
        let rows: Vec<InquiryRecord> = sqlx::query_as(&format!(
            "SELECT {INQUIRY_COLUMNS} FROM inquiries i WHERE i.seq > $1 AND i.search IS NULL ORDER BY i.seq LIMIT 2000"
        ))
        .bind(after)
        .fetch_all(pool)
        .await?;
        let Some(last) = rows.last() else { break };
        after = last.seq;
        let seqs: Vec<i64> = rows.iter().map(|i| i.seq).collect();
        let documents: Vec<String> = rows.iter().map(|i| words(&document_of(i))).collect();
        sqlx::query(
            "UPDATE inquiries SET search = to_tsvector('simple', inquiryd_fold(d.document)) \
             FROM UNNEST($1::int8[], $2::text[]) AS d (seq, document) WHERE inquiries.seq = d.seq",
        )
        .bind(&seqs)
        .bind(&documents)
        .execute(pool)
        .await?;
    }
    set_index_state(pool, "complete").await
}

async fn set_index_state(pool: &PgPool, state: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO meta (key, value) VALUES ('search_index', $1) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
    )
    .bind(state)
    .execute(pool)
    .await?;
    Ok(())
}
