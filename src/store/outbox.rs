//! The notification outbox: claim due rows with a lease, settle each attempt.

use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection, SqlitePool};

use super::inquiries::{InquiryRecord, INQUIRY_COLUMNS};
use crate::domain::NotificationKind;

/// A notification taken for delivery, with the inquiry it is about.
#[derive(Debug, Clone)]
pub struct ClaimedNotification {
    pub id: String,
    pub kind: NotificationKind,
    pub recipients: Vec<String>,
    pub message_id: String,
    /// The number of this attempt, counting from 1.
    pub attempt: i64,
    pub inquiry: InquiryRecord,
}

/// How one attempt ended.
#[derive(Debug, Clone)]
pub enum Settlement {
    Sent { id: String, attempt: i64, response: String },
    Retry { id: String, attempt: i64, error: String, next_attempt_at: i64 },
    Failed { id: String, attempt: i64, error: String },
}

/// Marks up to `limit` due notifications (or ones whose lease ran out) as being
/// sent until `now + lease_ms`, and returns them.
pub async fn claim(
    conn: &mut SqliteConnection,
    now: i64,
    lease_ms: i64,
    limit: i64,
) -> Result<Vec<ClaimedNotification>, sqlx::Error> {
    let ids: Vec<String> = sqlx::query_scalar(
        "UPDATE notifications SET status = 'sending', lease_until = ?1, attempts = attempts + 1 \
         WHERE id IN (SELECT id FROM notifications \
                      WHERE (status = 'pending' AND next_attempt_at <= ?2) \
                         OR (status = 'sending' AND lease_until < ?2) \
                      ORDER BY next_attempt_at LIMIT ?3) \
         RETURNING id",
    )
    .bind(now + lease_ms)
    .bind(now)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut query = QueryBuilder::<Sqlite>::new(format!(
        "SELECT n.id AS n_id, n.kind, n.recipients, n.message_id, n.attempts, {INQUIRY_COLUMNS} \
         FROM notifications n JOIN inquiries i ON i.id = n.inquiry_id WHERE n.id IN ("
    ));
    let mut list = query.separated(", ");
    for id in &ids {
        list.push_bind(id);
    }
    query.push(") ORDER BY n.next_attempt_at");
    let rows = query.build().fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|row| {
            let kind: String = row.try_get("kind")?;
            let recipients: String = row.try_get("recipients")?;
            Ok(ClaimedNotification {
                id: row.try_get("n_id")?,
                kind: if kind == "receipt" { NotificationKind::Receipt } else { NotificationKind::Staff },
                recipients: recipients.split(", ").map(str::to_owned).collect(),
                message_id: row.try_get("message_id")?,
                attempt: row.try_get("attempts")?,
                inquiry: sqlx::FromRow::from_row(row)?,
            })
        })
        .collect()
}

/// Records each attempt's outcome. A settlement for an attempt that is no longer
/// the current one (its lease ran out and it was claimed again) changes nothing.
/// Deliveries, the common case, are recorded with one statement per chunk.
pub async fn settle(conn: &mut SqliteConnection, settlements: &[Settlement], now: i64) -> Result<(), sqlx::Error> {
    let sent: Vec<(&str, i64, &str)> = settlements
        .iter()
        .filter_map(|s| match s {
            Settlement::Sent { id, attempt, response } => Some((id.as_str(), *attempt, response.as_str())),
            _ => None,
        })
        .collect();
    for chunk in sent.chunks(300) {
        let mut update = QueryBuilder::<Sqlite>::new("UPDATE notifications SET status = 'sent', sent_at = ");
        update.push_bind(now).push(", smtp_response = v.column3, lease_until = NULL FROM (");
        update.push_values(chunk, |mut row, (id, attempt, response)| {
            row.push_bind(*id).push_bind(*attempt).push_bind(*response);
        });
        update.push(
            ") AS v WHERE notifications.id = v.column1 AND notifications.attempts = v.column2 \
             AND notifications.status = 'sending'",
        );
        update.build().execute(&mut *conn).await?;
    }
    for settlement in settlements {
        match settlement {
            Settlement::Sent { .. } => {}
            Settlement::Retry { id, attempt, error, next_attempt_at } => {
                sqlx::query(
                    "UPDATE notifications SET status = 'pending', next_attempt_at = ?1, last_error = ?2, \
                     lease_until = NULL WHERE id = ?3 AND attempts = ?4 AND status = 'sending'",
                )
                .bind(next_attempt_at)
                .bind(error)
                .bind(id)
                .bind(attempt)
                .execute(&mut *conn)
                .await?;
            }
            Settlement::Failed { id, attempt, error } => {
                sqlx::query(
                    "UPDATE notifications SET status = 'failed', last_error = ?1, lease_until = NULL \
                     WHERE id = ?2 AND attempts = ?3 AND status = 'sending'",
                )
                .bind(error)
                .bind(id)
                .bind(attempt)
                .execute(&mut *conn)
                .await?;
            }
        }
    }
    let attempts: Vec<(&str, i64, &str, &str)> = settlements
        .iter()
        .map(|s| match s {
            Settlement::Sent { id, attempt, response } => (id.as_str(), *attempt, "sent", response.as_str()),
            Settlement::Retry { id, attempt, error, .. } => (id.as_str(), *attempt, "retry", error.as_str()),
            Settlement::Failed { id, attempt, error } => (id.as_str(), *attempt, "failed", error.as_str()),
        })
        .collect();
    for chunk in attempts.chunks(200) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO notification_attempts (notification_id, attempt, at, outcome, detail) \
             SELECT v.column1, v.column2, ",
        );
        insert.push_bind(now).push(", v.column3, v.column4 FROM (");
        insert.push_values(chunk, |mut row, (id, attempt, outcome, detail)| {
            row.push_bind(*id).push_bind(*attempt).push_bind(*outcome).push_bind(*detail);
        });
        insert.push(") AS v WHERE EXISTS (SELECT 1 FROM notifications n WHERE n.id = v.column1)");
        insert.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Gives claimed but unsent notifications back (graceful shutdown).
pub async fn release(conn: &mut SqliteConnection, ids: &[String]) -> Result<(), sqlx::Error> {
    for id in ids {
        sqlx::query(
            "UPDATE notifications SET status = 'pending', attempts = attempts - 1, lease_until = NULL \
             WHERE id = ? AND status = 'sending'",
        )
        .bind(id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// At start-up: whatever a previous process was sending when it died is due again.
pub async fn reset_in_flight(conn: &mut SqliteConnection) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("UPDATE notifications SET status = 'pending', lease_until = NULL WHERE status = 'sending'")
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
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
