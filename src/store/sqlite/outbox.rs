//! The notification outbox: claim due rows with a lease, settle each attempt.

use rusqlite::params;
use sqlx::{Row, SqlitePool};

use crate::store::model::{stored_lang, INQUIRY_COLUMNS};
use crate::store::{ClaimedNotification, InquiryRecord, Settlement};

/// Marks up to `limit` due notifications (or ones whose lease ran out) as being
/// sent until `now + lease_ms`, and returns them, the longest due first.
pub fn claim(
    db: &rusqlite::Connection,
    now: i64,
    lease_ms: i64,
    limit: i64,
) -> Result<Vec<ClaimedNotification>, rusqlite::Error> {
    let mut ids: Vec<(i64, String)> = db
        .prepare_cached(
            "UPDATE notifications SET status = 'sending', lease_until = ?1, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM notifications \
                          WHERE (status = 'pending' AND next_attempt_at <= ?2) \
                             OR (status = 'sending' AND lease_until < ?2) \
                          ORDER BY next_attempt_at LIMIT ?3) \
             RETURNING next_attempt_at, id",
        )?
        .query_map(params![now + lease_ms, now, limit], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    ids.sort();
    let mut select = db.prepare_cached(&format!(
        "SELECT n.kind, n.recipients, n.message_id, n.attempts, i.lang, {INQUIRY_COLUMNS} \
         FROM notifications n JOIN inquiries i ON i.id = n.inquiry_id WHERE n.id = ?1"
    ))?;
    ids.into_iter()
        .map(|(_, id)| {
            select.query_row([id.as_str()], |row| {
                let kind: String = row.get(0)?;
                let recipients: String = row.get(1)?;
                Ok(ClaimedNotification {
                    kind: kind.parse().map_err(|why: String| {
                        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, why.into())
                    })?,
                    recipients: recipients.split(", ").map(str::to_owned).collect(),
                    message_id: row.get(2)?,
                    attempt: row.get(3)?,
                    lang: stored_lang(&row.get::<_, String>(4)?).map_err(|why| {
                        rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, why.into())
                    })?,
                    inquiry: InquiryRecord::from_columns(row, 5)?,
                    id: id.clone(),
                })
            })
        })
        .collect()
}

/// Keeps claims the worker is still working on from running out.
pub async fn extend_lease(conn: &mut sqlx::SqliteConnection, ids: &[String], lease_ms: i64) -> Result<(), sqlx::Error> {
    let until = crate::timestamp::now_ms() + lease_ms;
    for id in ids {
        sqlx::query("UPDATE notifications SET lease_until = ? WHERE id = ? AND status = 'sending'")
            .bind(until)
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Records each attempt's outcome. A settlement for an attempt that is no longer
/// the current one (its lease ran out and it was claimed again) changes nothing.
/// Only attempts that went wrong get a row in `notification_attempts`: a
/// delivery's own row (`sent_at`, `smtp_response`) already says how it ended,
/// and readers show it as the last attempt ([`crate::store::webhooks::ATTEMPTS_SQL`]).
pub fn settle(db: &rusqlite::Connection, settlements: &[Settlement], now: i64) -> Result<(), rusqlite::Error> {
    let mut sent = db.prepare_cached(
        "UPDATE notifications SET status = 'sent', sent_at = ?1, smtp_response = ?2, lease_until = NULL \
         WHERE id = ?3 AND attempts = ?4 AND status = 'sending'",
    )?;
    let mut retry = db.prepare_cached(
        "UPDATE notifications SET status = 'pending', next_attempt_at = ?1, last_error = ?2, lease_until = NULL \
         WHERE id = ?3 AND attempts = ?4 AND status = 'sending'",
    )?;
    let mut failed = db.prepare_cached(
        "UPDATE notifications SET status = 'failed', last_error = ?1, lease_until = NULL \
         WHERE id = ?2 AND attempts = ?3 AND status = 'sending'",
    )?;
    let mut record = db.prepare_cached(
        "INSERT INTO notification_attempts (notification_id, attempt, at, outcome, detail) \
         SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM notifications WHERE id = ?1)",
    )?;
    for settlement in settlements {
        let (id, attempt, outcome, detail) = match settlement {
            Settlement::Sent { id, attempt, response } => {
                sent.execute(params![now, response, id, attempt])?;
                continue;
            }
            Settlement::Retry { id, attempt, error, next_attempt_at } => {
                retry.execute(params![next_attempt_at, error, id, attempt])?;
                (id, attempt, "retry", error)
            }
            Settlement::Failed { id, attempt, error } => {
                failed.execute(params![error, id, attempt])?;
                (id, attempt, "failed", error)
            }
        };
        record.execute(params![id, attempt, now, outcome, detail])?;
    }
    Ok(())
}

/// Gives claimed but unsent notifications back (graceful shutdown).
pub fn release(db: &rusqlite::Connection, ids: &[String]) -> Result<(), rusqlite::Error> {
    let mut release = db.prepare_cached(
        "UPDATE notifications SET status = 'pending', attempts = attempts - 1, lease_until = NULL \
         WHERE id = ?1 AND status = 'sending'",
    )?;
    for id in ids {
        release.execute([id])?;
    }
    Ok(())
}

/// At start-up: whatever a previous process was sending when it died is due again.
pub fn reset_in_flight(db: &rusqlite::Connection) -> Result<usize, rusqlite::Error> {
    db.execute("UPDATE notifications SET status = 'pending', lease_until = NULL WHERE status = 'sending'", [])
}

/// When the next pending notification falls due, if any is pending.
pub async fn next_due(reads: &SqlitePool) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT MIN(next_attempt_at) FROM notifications WHERE status = 'pending'").fetch_one(reads).await
}

/// How many notifications wait for delivery, and when the oldest was queued.
pub async fn backlog(reads: &SqlitePool) -> Result<(i64, Option<i64>), sqlx::Error> {
    let row = sqlx::query("SELECT COUNT(*), MIN(created_at) FROM notifications WHERE status IN ('pending', 'sending')")
        .fetch_one(reads)
        .await?;
    Ok((row.try_get(0)?, row.try_get(1)?))
}
