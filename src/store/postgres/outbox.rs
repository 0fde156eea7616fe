//! The notification outbox on PostgreSQL: replicas claim due rows with
//! `FOR UPDATE SKIP LOCKED` (never waiting on each other) and a lease, which the
//! claiming worker extends while it works; a dead replica's claims fall due
//! again when their lease runs out.

use sqlx::{PgPool, Row};

use crate::store::model::{stored_lang, INQUIRY_COLUMNS};
use crate::store::{ClaimedNotification, Settlement};
use crate::timestamp::now_ms;

/// Leases up to `limit` due notifications (or ones whose lease ran out) until
/// `now + lease_ms` and returns them, the longest due first.
pub async fn claim(pool: &PgPool, limit: i64, lease_ms: i64) -> Result<Vec<ClaimedNotification>, sqlx::Error> {
    let (now, started) = (now_ms(), std::time::Instant::now());
    let mut tx = pool.begin().await?;
    let rows = sqlx::query(&format!(
        "WITH due AS (
             SELECT id FROM notifications
             WHERE status IN ('pending', 'sending')
               AND ((status = 'pending' AND next_attempt_at <= $2) OR (status = 'sending' AND lease_until < $2))
             ORDER BY next_attempt_at LIMIT $3
             FOR UPDATE SKIP LOCKED),
         claimed AS (
             UPDATE notifications n SET status = 'sending', lease_until = $1, attempts = n.attempts + 1
             FROM due WHERE n.id = due.id
             RETURNING n.id, n.inquiry_id, n.kind, n.recipients, n.message_id, n.attempts, n.next_attempt_at)
         SELECT c.id AS notification_id, c.kind, c.recipients, c.message_id, c.attempts, i.lang, {INQUIRY_COLUMNS}
         FROM claimed c JOIN inquiries i ON i.id = c.inquiry_id
         ORDER BY c.next_attempt_at, c.id"
    ))
    .bind(now + lease_ms)
    .bind(now)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    super::commit(tx, started, 0).await?;
    rows.iter()
        .map(|row| {
            let kind: String = row.try_get("kind")?;
            let recipients: String = row.try_get("recipients")?;
            Ok(ClaimedNotification {
                id: row.try_get("notification_id")?,
                kind: kind.parse().map_err(|why: String| sqlx::Error::Decode(why.into()))?,
                recipients: recipients.split(", ").map(str::to_owned).collect(),
                message_id: row.try_get("message_id")?,
                attempt: row.try_get("attempts")?,
                lang: stored_lang(row.try_get("lang")?).map_err(|why| sqlx::Error::Decode(why.into()))?,
                inquiry: super::inquiry_at(row, 6)?,
            })
        })
        .collect()
}

/// Keeps claims this worker is still working on from being taken over.
pub async fn extend_lease(pool: &PgPool, ids: &[String], lease_ms: i64) -> Result<(), sqlx::Error> {
    // Rows are locked in id order, as settling and erasing lock them (no deadlock).
    sqlx::query(
        "UPDATE notifications SET lease_until = $1 WHERE id IN \
         (SELECT id FROM notifications WHERE id = ANY($2) AND status = 'sending' ORDER BY id FOR UPDATE)",
    )
    .bind(now_ms() + lease_ms)
    .bind(ids)
    .execute(pool)
    .await?;
    Ok(())
}

/// Records each attempt's outcome, in one transaction. A settlement for an
/// attempt that is no longer the current one (its lease ran out and another
/// replica claimed it again) changes nothing but the attempt log. As with
/// SQLite, only attempts that went wrong get a row of their own.
pub async fn settle(pool: &PgPool, settlements: &[Settlement]) -> Result<(), sqlx::Error> {
    if settlements.is_empty() {
        return Ok(());
    }
    let (now, started) = (now_ms(), std::time::Instant::now());
    let mut tx = pool.begin().await?;
    // In id order: the order erasure locks notifications in (no deadlock).
    let mut settlements: Vec<&Settlement> = settlements.iter().collect();
    settlements.sort_by(|a, b| a.id().cmp(b.id()));
    for settlement in settlements {
        let (id, attempt, outcome, detail) = match settlement {
            Settlement::Sent { id, attempt, response } => {
                sqlx::query(
                    "UPDATE notifications SET status = 'sent', sent_at = $1, smtp_response = $2, lease_until = NULL \
                     WHERE id = $3 AND attempts = $4 AND status = 'sending'",
                )
                .bind(now)
                .bind(response)
                .bind(id)
                .bind(attempt)
                .execute(&mut *tx)
                .await?;
                continue;
            }
            Settlement::Retry { id, attempt, error, next_attempt_at } => {
                sqlx::query(
                    "UPDATE notifications SET status = 'pending', next_attempt_at = $1, last_error = $2, \
                     lease_until = NULL WHERE id = $3 AND attempts = $4 AND status = 'sending'",
                )
                .bind(next_attempt_at)
                .bind(error)
                .bind(id)
                .bind(attempt)
                .execute(&mut *tx)
                .await?;
                (id, attempt, "retry", error)
            }
            Settlement::Failed { id, attempt, error } => {
                sqlx::query(
                    "UPDATE notifications SET status = 'failed', last_error = $1, lease_until = NULL \
                     WHERE id = $2 AND attempts = $3 AND status = 'sending'",
                )
                .bind(error)
                .bind(id)
                .bind(attempt)
                .execute(&mut *tx)
                .await?;
                (id, attempt, "failed", error)
            }
        };
        sqlx::query(
            "INSERT INTO notification_attempts (notification_id, attempt, at, outcome, detail) \
             SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM notifications WHERE id = $1)",
        )
        .bind(id)
        .bind(attempt)
        .bind(now)
        .bind(outcome)
        .bind(detail)
        .execute(&mut *tx)
        .await?;
    }
    super::commit(tx, started, 0).await
}

/// Gives claimed but unsent notifications back (graceful shutdown).
pub async fn release(pool: &PgPool, ids: &[String]) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE notifications SET status = 'pending', attempts = attempts - 1, lease_until = NULL WHERE id IN \
         (SELECT id FROM notifications WHERE id = ANY($1) AND status = 'sending' ORDER BY id FOR UPDATE)",
    )
    .bind(ids)
    .execute(pool)
    .await?;
    Ok(())
}

/// When the next notification falls due: a pending one's time, or when a
/// claim (perhaps of a replica that died) runs out.
pub async fn next_due(pool: &PgPool) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT MIN(CASE WHEN status = 'pending' THEN next_attempt_at ELSE lease_until END) \
         FROM notifications WHERE status IN ('pending', 'sending')",
    )
    .fetch_one(pool)
    .await
}

/// How many notifications wait for delivery, and when the oldest was queued.
pub async fn backlog(pool: &PgPool) -> Result<(i64, Option<i64>), sqlx::Error> {
    let row = sqlx::query("SELECT COUNT(*), MIN(created_at) FROM notifications WHERE status IN ('pending', 'sending')")
        .fetch_one(pool)
        .await?;
    Ok((row.try_get(0)?, row.try_get(1)?))
}
