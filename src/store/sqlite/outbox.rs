//! The notification outbox: claim due rows with a lease, settle each attempt.

use rusqlite::params;
use sqlx::{Row, SqlitePool};

use crate::store::model::{stored_lang, INQUIRY_COLUMNS};
use crate::store::{ClaimedNotification, InquiryRecord, Settlement};

/// The claim: the longest due of the pending notifications and of those whose
/// lease ran out, each read in `notifications_due`'s order and only as far as
/// the limit. One query with `OR` between the two made SQLite collect and sort
/// every due notification for each claim: with 30,000 waiting, 7 ms per claim
/// of 64 instead of 0.6 ms, so a backlog made the claims that clear it slower.
const CLAIM: &str = "UPDATE notifications SET status = 'sending', lease_until = ?1, attempts = attempts + 1 \
     WHERE id IN (SELECT id FROM ( \
         SELECT id, next_attempt_at FROM (SELECT id, next_attempt_at FROM notifications \
             WHERE status = 'pending' AND next_attempt_at <= ?2 ORDER BY next_attempt_at LIMIT ?3) \
         UNION ALL \
         SELECT id, next_attempt_at FROM (SELECT id, next_attempt_at FROM notifications \
             WHERE status = 'sending' AND lease_until < ?2 ORDER BY next_attempt_at LIMIT ?3)) \
       ORDER BY next_attempt_at LIMIT ?3) \
     RETURNING next_attempt_at, id";

/// Marks up to `limit` due notifications (or ones whose lease ran out) as being
/// sent until `now + lease_ms`, and returns them, the longest due first.
pub fn claim(
    db: &rusqlite::Connection,
    now: i64,
    lease_ms: i64,
    limit: i64,
) -> Result<Vec<ClaimedNotification>, rusqlite::Error> {
    let mut ids: Vec<(i64, String)> = db
        .prepare_cached(CLAIM)?
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

#[cfg(test)]
mod tests {
    use rusqlite::StatementStatus;

    use super::*;
    use crate::store::sqlite::{migrate, open_hot_writer, open_writer, tests::settings};

    /// A claim reads as many notifications as it takes, however many are due:
    /// SQLite's count of the claim's virtual-machine steps stays the same with
    /// 100 or 5,000 waiting (the query with `OR` took ~23x more at 5,000).
    /// And what it takes is the longest due, an expired lease among them.
    #[tokio::test]
    async fn a_claim_costs_the_same_however_long_the_queue() {
        let (_dir, db) = database().await;
        db.execute(
            "INSERT INTO inquiries (id, received_at, status, category, name, email, email_norm, subject, message, \
             updated_at) VALUES ('i', 0, 'new', 'question', 'A', 'a@example.org', 'a@example.org', 'S', 'M', 0)",
            [],
        )
        .unwrap();
        let steps = |due: i64| {
            db.execute("DELETE FROM notifications", []).unwrap();
            let mut queue = db
                .prepare(
                    "INSERT INTO notifications (id, inquiry_id, kind, recipients, message_id, status, next_attempt_at, \
                     lease_until, created_at) VALUES (?1, 'i', 'staff', 'staff@example.org', 'm', ?2, ?3, ?4, 0)",
                )
                .unwrap();
            for n in 0..due {
                queue.execute(params![format!("p{n:05}"), "pending", 1_000 + n, None::<i64>]).unwrap();
            }
            // Delivered long ago, and one whose sender's lease ran out.
            for n in 0..100 {
                queue.execute(params![format!("s{n:05}"), "sent", n, None::<i64>]).unwrap();
            }
            queue.execute(params!["expired", "sending", 1_001, 50]).unwrap();
            db.prepare_cached(CLAIM).unwrap().reset_status(StatementStatus::VmStep);
            let claimed = claim(&db, 100_000, 60_000, 16).unwrap();
            let ids: Vec<&str> = claimed.iter().map(|n| n.id.as_str()).collect();
            assert_eq!(ids[..3], ["p00000", "expired", "p00001"], "the longest due first");
            assert_eq!(ids.len(), 16);
            db.prepare_cached(CLAIM).unwrap().get_status(StatementStatus::VmStep)
        };
        let (few, many) = (steps(100), steps(5_000));
        assert!(many < few + few / 4, "{few} steps with 100 due, {many} with 5,000");
    }

    /// The same for webhook deliveries, which are never deleted when made: a
    /// claim reads the due ones, not every delivery ever made (the claim without
    /// the index's condition took ~9x more steps with 5,000 made).
    #[tokio::test]
    async fn a_webhook_claim_reads_only_what_is_due() {
        let (_dir, db) = database().await;
        let steps = |made: i64| {
            db.execute("DELETE FROM webhook_deliveries", []).unwrap();
            let mut queue = db
                .prepare(
                    "INSERT INTO webhook_deliveries (id, webhook, inquiry_id, event, data, status, next_attempt_at, \
                     created_at) VALUES (?1, 'crm', ?1, 'inquiry.created', '{}', ?2, ?3, 0)",
                )
                .unwrap();
            for n in 0..made {
                queue.execute(params![format!("s{n:05}"), "sent", n]).unwrap();
            }
            for n in 0..40 {
                queue.execute(params![format!("p{n:05}"), "pending", 100_000 + n]).unwrap();
            }
            let mut claim = db.prepare(crate::store::webhooks::CLAIM_SQL).unwrap();
            let claimed: Vec<String> =
                claim.query_map(params![200_000, 150_000, 16], |row| row.get(1)).unwrap().map(Result::unwrap).collect();
            assert_eq!(claimed.len(), 16);
            assert!(claimed.iter().all(|id| id.starts_with('p')), "{claimed:?}");
            claim.get_status(StatementStatus::VmStep)
        };
        let (few, many) = (steps(100), steps(5_000));
        assert!(many < few + few / 4, "{few} steps with 100 made, {many} with 5,000");
    }

    /// A migrated database file and the writer's connection to it.
    async fn database() -> (tempfile::TempDir, rusqlite::Connection) {
        let dir = tempfile::tempdir().unwrap();
        let settings = settings(dir.path());
        migrate(&mut open_writer(&settings).await.unwrap()).await.unwrap();
        let db = open_hot_writer(&settings).unwrap();
        (dir, db)
    }
}
