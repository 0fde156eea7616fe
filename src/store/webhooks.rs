//! Webhook deliveries in the outbox: which events a change creates, and the
//! queries that queue, claim, settle and show them, the same SQL on both backends.
//!
//! Each event for each configured webhook is one `webhook_deliveries` row,
//! inserted in the transaction that makes the change. A row holds the event as
//! it was (`data`: the inquiry object then), so that every attempt sends the
//! same body under the same `webhook-id`. One inquiry's events reach a webhook
//! in the order they were created: a claim skips a row while an earlier row of
//! the same inquiry and webhook still waits.

use serde::Serialize;

use super::model::NotificationStatus;
use super::{InquiryRecord, NewRecord};
use crate::config::Settings;
use crate::domain::InquiryStatus;
use crate::timestamp::to_rfc3339;
use crate::webhooks::EventType;

/// Which webhooks want which events, from configuration.
#[derive(Debug, Default)]
pub struct WebhookPlan {
    targets: Vec<PlannedTarget>,
    /// Rung after every commit that queued a delivery: wakes the webhook worker.
    pub wake: std::sync::Arc<tokio::sync::Notify>,
}

#[derive(Debug, Clone)]
struct PlannedTarget {
    key: String,
    form: String,
    events: Vec<EventType>,
    include_spam: bool,
}

/// One event for one webhook, ready to insert.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// The `webhook-id`.
    pub id: String,
    pub webhook: String,
    pub inquiry_id: String,
    pub event: EventType,
    /// The inquiry object as it was (`{"id"}` alone for an erasure).
    pub data: String,
    pub at: i64,
}

impl WebhookPlan {
    pub fn new(settings: &Settings) -> Self {
        let targets = settings
            .webhooks()
            .map(|(form, key, target)| PlannedTarget {
                key,
                form: form.to_owned(),
                events: target.events.clone(),
                include_spam: target.include_spam,
            })
            .collect();
        Self { targets, wake: Default::default() }
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// The events `kind` creates for an inquiry of `form` (for that form's
    /// webhooks); `data` is asked for only when some webhook wants the event.
    fn events(
        &self,
        kind: EventType,
        form: &str,
        inquiry_id: &str,
        spam: bool,
        at: i64,
        data: impl FnOnce() -> String,
    ) -> Vec<NewEvent> {
        let mut wanting = self
            .targets
            .iter()
            .filter(|t| t.form == form && t.events.contains(&kind) && (t.include_spam || !spam))
            .peekable();
        if wanting.peek().is_none() {
            return Vec::new();
        }
        let data = data();
        wanting
            .map(|t| NewEvent {
                id: format!("msg_{}", uuid::Uuid::now_v7().simple()),
                webhook: t.key.clone(),
                inquiry_id: inquiry_id.to_owned(),
                event: kind,
                data: data.clone(),
                at,
            })
            .collect()
    }

    /// `inquiry.created` for a record just stored as `id`.
    pub fn created(&self, record: &NewRecord, id: &str, at: i64) -> Vec<NewEvent> {
        let spam = record.status == InquiryStatus::Spam;
        self.events(EventType::Created, &record.inquiry.form, id, spam, at, || {
            to_json(&InquiryRecord::from_new(record, id))
        })
    }

    /// `inquiry.updated` with the inquiry as it now is.
    pub fn updated(&self, inquiry: &InquiryRecord, at: i64) -> Vec<NewEvent> {
        let spam = inquiry.status == InquiryStatus::Spam;
        self.events(EventType::Updated, &inquiry.form, &inquiry.id, spam, at, || to_json(inquiry))
    }

    /// An inquiry marked "not spam" (`inquiry` as it now
    /// is): `inquiry.created` to the webhooks that left it out as spam (they
    /// never had it), `inquiry.updated` to those that had it.
    pub fn not_spam(&self, inquiry: &InquiryRecord, at: i64) -> Vec<NewEvent> {
        let data = to_json(inquiry);
        self.targets
            .iter()
            .filter(|t| t.form == inquiry.form)
            .filter_map(|t| {
                let kind = if t.include_spam { EventType::Updated } else { EventType::Created };
                t.events.contains(&kind).then(|| NewEvent {
                    id: format!("msg_{}", uuid::Uuid::now_v7().simple()),
                    webhook: t.key.clone(),
                    inquiry_id: inquiry.id.clone(),
                    event: kind,
                    data: data.clone(),
                    at,
                })
            })
            .collect()
    }

    /// `inquiry.erased`, naming the inquiry by its id alone.
    pub fn erased(&self, inquiry: &InquiryRecord, at: i64) -> Vec<NewEvent> {
        let spam = inquiry.status == InquiryStatus::Spam;
        self.events(EventType::Erased, &inquiry.form, &inquiry.id, spam, at, || {
            serde_json::json!({ "id": inquiry.id }).to_string()
        })
    }
}

fn to_json(inquiry: &InquiryRecord) -> String {
    serde_json::to_string(inquiry).unwrap_or_else(|_| "{}".to_owned())
}

/// A webhook delivery taken for an attempt.
#[derive(Debug, Clone)]
pub struct ClaimedWebhook {
    pub id: String,
    pub webhook: String,
    pub event: EventType,
    pub data: String,
    /// When the event happened (its `timestamp`), Unix milliseconds.
    pub created_at: i64,
    /// The number of this attempt, counting from 1.
    pub attempt: i64,
}

/// One delivery of an inquiry (an email or a webhook event) with its attempts,
/// as an admin sees it.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryView {
    pub id: String,
    /// `email` or `webhook`.
    pub channel: &'static str,
    /// An email's kind (`staff`, `receipt`) or a webhook's event (`inquiry.created`, …).
    pub kind: String,
    /// The email's recipients, or the webhook's key (`form.name`).
    pub target: String,
    pub status: NotificationStatus,
    pub last_error: Option<String>,
    pub sent_at: Option<String>,
    pub attempts: Vec<AttemptView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AttemptView {
    pub attempt: i64,
    pub at: String,
    /// `sent`, `retry` or `failed`.
    pub outcome: String,
    pub detail: String,
}

/// The rows of a [`DeliveryView`] as both backends select them.
type DeliveryRow = (String, String, String, String, String, Option<String>, Option<i64>);
type AttemptRow = (String, i64, i64, String, String);

/// Joins deliveries (in creation order) with their attempts.
pub(crate) fn delivery_views(
    deliveries: Vec<DeliveryRow>,
    attempts: Vec<AttemptRow>,
) -> Result<Vec<DeliveryView>, sqlx::Error> {
    deliveries
        .into_iter()
        .map(|(id, channel, kind, target, status, last_error, sent_at)| {
            let attempts = attempts
                .iter()
                .filter(|a| a.0 == id)
                .map(|(_, attempt, at, outcome, detail)| AttemptView {
                    attempt: *attempt,
                    at: to_rfc3339(*at),
                    outcome: outcome.clone(),
                    detail: detail.clone(),
                })
                .collect();
            Ok(DeliveryView {
                channel: if channel == "email" { "email" } else { "webhook" },
                status: status.parse().map_err(|why: String| sqlx::Error::Decode(why.into()))?,
                sent_at: sent_at.map(to_rfc3339),
                id,
                kind,
                target,
                last_error,
                attempts,
            })
        })
        .collect()
}

pub(crate) const INSERT_SQL: &str =
    "INSERT INTO webhook_deliveries (id, webhook, inquiry_id, event, data, next_attempt_at, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $6)";

/// The claim. `status IN ('pending', 'sending')` is the condition of the index
/// it reads (`webhook_deliveries_due` on both backends): without it SQLite
/// read every delivery ever made, and sorted the due ones, for each claim.
pub(crate) const CLAIM_SQL: &str =
    "UPDATE webhook_deliveries SET status = 'sending', lease_until = $1, attempts = attempts + 1 \
     WHERE seq IN (SELECT d.seq FROM webhook_deliveries d \
         WHERE d.status IN ('pending', 'sending') \
           AND ((d.status = 'pending' AND d.next_attempt_at <= $2) OR (d.status = 'sending' AND d.lease_until < $2)) \
           AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e WHERE e.inquiry_id = d.inquiry_id \
               AND e.webhook = d.webhook AND e.seq < d.seq AND e.status IN ('pending', 'sending')) \
         ORDER BY d.next_attempt_at LIMIT $3) \
     RETURNING seq, id, webhook, event, data, created_at, attempts";

pub(crate) const DELIVERIES_SQL: &str =
    "SELECT id, 'email', kind, recipients, status, last_error, sent_at, created_at \
       FROM notifications WHERE inquiry_id = $1 \
     UNION ALL SELECT id, 'webhook', event, webhook, status, last_error, sent_at, created_at \
       FROM webhook_deliveries WHERE inquiry_id = $1 ORDER BY 8, 1";

/// Every attempt of an inquiry's deliveries. An email delivered is its own
/// last attempt: its row is only logged apart when it went wrong (older
/// databases also have a row for each success, which is then shown instead).
pub(crate) const ATTEMPTS_SQL: &str = "SELECT n.id, a.attempt, a.at, a.outcome, a.detail FROM notification_attempts a \
       JOIN notifications n ON n.id = a.notification_id WHERE n.inquiry_id = $1 \
     UNION ALL SELECT n.id, n.attempts, n.sent_at, 'sent', n.smtp_response FROM notifications n \
       WHERE n.inquiry_id = $1 AND n.status = 'sent' AND NOT EXISTS (SELECT 1 FROM notification_attempts a \
       WHERE a.notification_id = n.id AND a.outcome = 'sent') \
     UNION ALL SELECT d.id, a.attempt, a.at, a.outcome, a.detail FROM webhook_attempts a \
       JOIN webhook_deliveries d ON d.seq = a.delivery_seq WHERE d.inquiry_id = $1 ORDER BY 1, 2";

/// The webhook queries for one backend's connection type: the same SQL
/// (`$n` parameters, which SQLite reads too), written once.
macro_rules! webhook_queries {
    ($db:ty, $conn:ty) => {
        use sqlx::Row as _;

        use $crate::store::model::{NotificationStatus, Requeue, Settlement, INQUIRY_COLUMNS};
        use $crate::store::webhooks::{
            delivery_views, ClaimedWebhook, DeliveryView, NewEvent, WebhookPlan, ATTEMPTS_SQL, CLAIM_SQL,
            DELIVERIES_SQL, INSERT_SQL, REPLAY_SQL, REQUEUE_SQL,
        };
        use $crate::store::InquiryRecord;
        use $crate::timestamp::now_ms;

        /// Queues `events` in the caller's transaction.
        pub async fn insert(conn: &mut $conn, events: &[NewEvent]) -> Result<(), sqlx::Error> {
            for e in events {
                sqlx::query(INSERT_SQL)
                    .bind(&e.id)
                    .bind(&e.webhook)
                    .bind(&e.inquiry_id)
                    .bind(e.event.as_str())
                    .bind(&e.data)
                    .bind(e.at)
                    .execute(&mut *conn)
                    .await?;
            }
            Ok(())
        }

        /// Leases up to `limit` due deliveries until `now + lease_ms`, oldest first.
        pub async fn claim(
            conn: &mut $conn,
            now: i64,
            lease_ms: i64,
            limit: i64,
        ) -> Result<Vec<ClaimedWebhook>, sqlx::Error> {
            let mut rows =
                sqlx::query(CLAIM_SQL).bind(now + lease_ms).bind(now).bind(limit).fetch_all(&mut *conn).await?;
            rows.sort_by_key(|row| row.try_get::<i64, _>(0).unwrap_or_default());
            rows.iter()
                .map(|row| {
                    let event: String = row.try_get(3)?;
                    Ok(ClaimedWebhook {
                        id: row.try_get(1)?,
                        webhook: row.try_get(2)?,
                        event: serde_json::from_value(serde_json::Value::String(event))
                            .map_err(|e| sqlx::Error::Decode(e.into()))?,
                        data: row.try_get(4)?,
                        created_at: row.try_get(5)?,
                        attempt: row.try_get(6)?,
                    })
                })
                .collect()
        }

        /// Keeps claims the worker is still working on from running out.
        pub async fn extend_lease(conn: &mut $conn, ids: &[String], until: i64) -> Result<(), sqlx::Error> {
            for id in ids {
                sqlx::query("UPDATE webhook_deliveries SET lease_until = $1 WHERE id = $2 AND status = 'sending'")
                    .bind(until)
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
            }
            Ok(())
        }

        /// Records each attempt; one for an attempt that is no longer the
        /// current one changes nothing but the attempt log.
        pub async fn settle(conn: &mut $conn, settlements: &[Settlement], now: i64) -> Result<(), sqlx::Error> {
            for settlement in settlements {
                let (id, attempt, outcome, detail) = match settlement {
                    Settlement::Sent { id, attempt, response } => {
                        sqlx::query(
                            "UPDATE webhook_deliveries SET status = 'sent', sent_at = $1, response = $2, \
                             lease_until = NULL WHERE id = $3 AND attempts = $4 AND status = 'sending'",
                        )
                        .bind(now)
                        .bind(response)
                        .bind(id)
                        .bind(attempt)
                        .execute(&mut *conn)
                        .await?;
                        (id, attempt, "sent", response)
                    }
                    Settlement::Retry { id, attempt, error, next_attempt_at } => {
                        sqlx::query(
                            "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = $1, last_error = $2, \
                             lease_until = NULL WHERE id = $3 AND attempts = $4 AND status = 'sending'",
                        )
                        .bind(next_attempt_at)
                        .bind(error)
                        .bind(id)
                        .bind(attempt)
                        .execute(&mut *conn)
                        .await?;
                        (id, attempt, "retry", error)
                    }
                    Settlement::Failed { id, attempt, error } => {
                        sqlx::query(
                            "UPDATE webhook_deliveries SET status = 'failed', last_error = $1, lease_until = NULL \
                             WHERE id = $2 AND attempts = $3 AND status = 'sending'",
                        )
                        .bind(error)
                        .bind(id)
                        .bind(attempt)
                        .execute(&mut *conn)
                        .await?;
                        (id, attempt, "failed", error)
                    }
                };
                sqlx::query(
                    "INSERT INTO webhook_attempts (delivery_seq, attempt, at, outcome, detail) \
                     SELECT seq, $2, $3, $4, $5 FROM webhook_deliveries WHERE id = $1",
                )
                .bind(id)
                .bind(attempt)
                .bind(now)
                .bind(outcome)
                .bind(detail)
                .execute(&mut *conn)
                .await?;
            }
            Ok(())
        }

        /// Gives claimed but unsent deliveries back (graceful shutdown).
        pub async fn release(conn: &mut $conn, ids: &[String]) -> Result<(), sqlx::Error> {
            for id in ids {
                sqlx::query(
                    "UPDATE webhook_deliveries SET status = 'pending', attempts = attempts - 1, lease_until = NULL \
                     WHERE id = $1 AND status = 'sending'",
                )
                .bind(id)
                .execute(&mut *conn)
                .await?;
            }
            Ok(())
        }

        /// When the next delivery falls due: a pending one's time, or when a
        /// claim (perhaps of a process that died) runs out.
        pub async fn next_due(conn: &mut $conn) -> Result<Option<i64>, sqlx::Error> {
            sqlx::query_scalar(
                "SELECT MIN(CASE WHEN status = 'pending' THEN next_attempt_at ELSE lease_until END) \
                 FROM webhook_deliveries WHERE status IN ('pending', 'sending')",
            )
            .fetch_one(&mut *conn)
            .await
        }

        /// How many deliveries wait, and when the oldest was queued.
        pub async fn backlog(conn: &mut $conn) -> Result<(i64, Option<i64>), sqlx::Error> {
            let row = sqlx::query(
                "SELECT COUNT(*), MIN(created_at) FROM webhook_deliveries WHERE status IN ('pending', 'sending')",
            )
            .fetch_one(&mut *conn)
            .await?;
            Ok((row.try_get(0)?, row.try_get(1)?))
        }

        /// Every email and webhook delivery of an inquiry, with its attempts.
        pub async fn deliveries(conn: &mut $conn, inquiry_id: &str) -> Result<Vec<DeliveryView>, sqlx::Error> {
            let rows: Vec<(String, String, String, String, String, Option<String>, Option<i64>, i64)> =
                sqlx::query_as(DELIVERIES_SQL).bind(inquiry_id).fetch_all(&mut *conn).await?;
            let attempts = sqlx::query_as(ATTEMPTS_SQL).bind(inquiry_id).fetch_all(&mut *conn).await?;
            delivery_views(rows.into_iter().map(|r| (r.0, r.1, r.2, r.3, r.4, r.5, r.6)).collect(), attempts)
        }

        /// Puts a failed delivery back in the queue, due now.
        pub async fn requeue(conn: &mut $conn, id: &str, now: i64) -> Result<Requeue, sqlx::Error> {
            let status: Option<String> = sqlx::query_scalar("SELECT status FROM webhook_deliveries WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
            let Some(status) = status else { return Ok(Requeue::NotFound) };
            let status: NotificationStatus = status.parse().map_err(|why: String| sqlx::Error::Decode(why.into()))?;
            if status != NotificationStatus::Failed {
                return Ok(Requeue::NotFailed(status));
            }
            sqlx::query(REQUEUE_SQL).bind(now).bind(id).execute(&mut *conn).await?;
            Ok(Requeue::Requeued)
        }

        /// Puts every failed delivery of `webhook` created at or after `since`
        /// back in the queue; returns how many.
        pub async fn replay(conn: &mut $conn, webhook: &str, since: i64, now: i64) -> Result<u64, sqlx::Error> {
            let done = sqlx::query(REPLAY_SQL).bind(now).bind(webhook).bind(since).execute(&mut *conn).await?;
            Ok(done.rows_affected())
        }

        /// After a status change of `id`: queues its `inquiry.updated` events,
        /// with the inquiry as it now is; returns how many.
        pub async fn queue_update(conn: &mut $conn, plan: &WebhookPlan, id: &str) -> Result<usize, sqlx::Error> {
            if plan.is_empty() {
                return Ok(0);
            }
            let inquiry: Option<InquiryRecord> =
                sqlx::query_as(&format!("SELECT {INQUIRY_COLUMNS} FROM inquiries i WHERE i.id = $1"))
                    .bind(id)
                    .fetch_optional(&mut *conn)
                    .await?;
            let events = inquiry.map(|i| plan.updated(&i, now_ms())).unwrap_or_default();
            insert(conn, &events).await?;
            Ok(events.len())
        }

        /// After an erasure: deletes every delivery about the erased inquiries
        /// (they hold the inquiry as it was), then queues the `inquiry.erased`
        /// events; returns how many.
        pub async fn queue_erasure(
            conn: &mut $conn,
            plan: &WebhookPlan,
            erased: &[InquiryRecord],
        ) -> Result<usize, sqlx::Error> {
            for chunk in erased.chunks(500) {
                let mut delete = sqlx::QueryBuilder::<$db>::new("DELETE FROM webhook_deliveries WHERE inquiry_id IN (");
                let mut list = delete.separated(", ");
                chunk.iter().for_each(|inquiry| {
                    list.push_bind(inquiry.id.clone());
                });
                delete.push(")").build().execute(&mut *conn).await?;
            }
            let now = now_ms();
            let events: Vec<NewEvent> = erased.iter().flat_map(|i| plan.erased(i, now)).collect();
            insert(conn, &events).await?;
            Ok(events.len())
        }
    };
}

pub(crate) use webhook_queries;

pub(crate) const REQUEUE_SQL: &str = "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, \
     next_attempt_at = $1, lease_until = NULL WHERE id = $2 AND status = 'failed'";
pub(crate) const REPLAY_SQL: &str = "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, \
     next_attempt_at = $1, lease_until = NULL WHERE webhook = $2 AND status = 'failed' AND created_at >= $3";
