//! Submissions on PostgreSQL: one transaction per submission on the pool.
//!
//! Across replicas the database decides: an Idempotency-Key is claimed by
//! inserting it (a concurrent insert of the same key waits for the first
//! transaction and then sees its row); a double click is recognised under a
//! transaction-scoped advisory lock on its hash, so two replicas cannot both
//! find "no duplicate yet" and both store it.

use sqlx::{PgPool, Row};
use uuid::Uuid;

use super::Tx;
use crate::store::{NewRecord, Receipt, StoreOptions, WriteOutcome};
use crate::timestamp::now_ms;

const IDEMPOTENCY_WINDOW_MS: i64 = 24 * 60 * 60 * 1000;
const DEDUPE_WINDOW_MS: i64 = 10 * 60 * 1000;

/// Stores the record (or recognises a replay or a double click); returns the
/// outcome and how many notifications were queued.
pub async fn submit(
    pool: &PgPool,
    record: &NewRecord,
    options: &StoreOptions,
) -> Result<(WriteOutcome, usize), sqlx::Error> {
    let now = now_ms();
    let receipt = Receipt { id: Uuid::now_v7().to_string(), received_at: record.received_at };
    let mut tx = pool.begin().await?;
    if let Some(claim) = &record.idempotency {
        // A key older than its window is taken over by this request.
        let claimed = sqlx::query(
            "INSERT INTO idempotency_keys (key, request_hash, inquiry_id, received_at, created_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (key) DO UPDATE SET request_hash = EXCLUDED.request_hash, inquiry_id = EXCLUDED.inquiry_id, \
                 received_at = EXCLUDED.received_at, created_at = EXCLUDED.created_at \
             WHERE idempotency_keys.created_at < $6",
        )
        .bind(&claim.key)
        .bind(&claim.request_hash[..])
        .bind(&receipt.id)
        .bind(record.received_at)
        .bind(now)
        .bind(now - IDEMPOTENCY_WINDOW_MS)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !claimed {
            tx.rollback().await?;
            let (hash, first) = idempotent_answer(pool, &claim.key).await?.ok_or(sqlx::Error::RowNotFound)?;
            let outcome =
                if hash == claim.request_hash { WriteOutcome::Replayed(first) } else { WriteOutcome::KeyReused };
            return Ok((outcome, 0));
        }
    } else {
        let lock = i64::from_be_bytes(record.dedupe_hash[..8].try_into().unwrap_or_default());
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(lock).execute(&mut *tx).await?;
        let first = sqlx::query(
            "SELECT id, received_at FROM inquiries \
             WHERE email_norm = $1 AND dedupe_hash = $2 AND received_at >= $3 ORDER BY seq LIMIT 1",
        )
        .bind(&record.email_norm)
        .bind(&record.dedupe_hash[..])
        .bind(now - DEDUPE_WINDOW_MS)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = first {
            tx.rollback().await?;
            let first = Receipt { id: row.try_get(0)?, received_at: row.try_get(1)? };
            return Ok((WriteOutcome::Duplicate(first), 0));
        }
    }
    let notifications = insert(&mut tx, record, &receipt.id, now, options).await?;
    tx.commit().await?;
    Ok((WriteOutcome::Created(receipt), notifications))
}

async fn insert(
    tx: &mut Tx,
    record: &NewRecord,
    id: &str,
    now: i64,
    options: &StoreOptions,
) -> Result<usize, sqlx::Error> {
    let inquiry = &record.inquiry;
    let spam_flags = serde_json::to_string(&record.spam_flags).unwrap_or_else(|_| "[]".into());
    sqlx::query(
        "INSERT INTO inquiries (id, received_at, status, category, name, email, email_norm, subject, message, \
         organization, country, phone, consent, page, client_ip, spam_flags, dedupe_hash, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
    )
    .bind(id)
    .bind(record.received_at)
    .bind(record.status.as_str())
    .bind(inquiry.category.as_str())
    .bind(&inquiry.name)
    .bind(inquiry.email.as_str())
    .bind(&record.email_norm)
    .bind(&inquiry.subject)
    .bind(&inquiry.message)
    .bind(&inquiry.organization)
    .bind(&inquiry.country)
    .bind(&inquiry.phone)
    .bind(inquiry.consent)
    .bind(&inquiry.page)
    .bind(&record.client_ip)
    .bind(spam_flags)
    .bind(&record.dedupe_hash[..])
    .bind(now)
    .execute(&mut **tx)
    .await?;
    if record.notifications.is_empty() {
        return Ok(0);
    }
    let mut ids = Vec::with_capacity(record.notifications.len());
    let mut kinds = Vec::with_capacity(record.notifications.len());
    let mut recipients = Vec::with_capacity(record.notifications.len());
    let mut message_ids = Vec::with_capacity(record.notifications.len());
    for planned in &record.notifications {
        let notification_id = Uuid::now_v7().to_string();
        message_ids.push(format!("<{notification_id}@{}>", options.message_id_domain));
        ids.push(notification_id);
        kinds.push(planned.kind.as_str());
        recipients.push(planned.recipients.join(", "));
    }
    sqlx::query(
        "INSERT INTO notifications (id, inquiry_id, kind, recipients, message_id, next_attempt_at, created_at) \
         SELECT n.id, $1, n.kind, n.recipients, n.message_id, $2, $2 \
         FROM UNNEST($3::text[], $4::text[], $5::text[], $6::text[]) AS n (id, kind, recipients, message_id)",
    )
    .bind(id)
    .bind(now)
    .bind(&ids)
    .bind(&kinds)
    .bind(&recipients)
    .bind(&message_ids)
    .execute(&mut **tx)
    .await?;
    Ok(ids.len())
}

/// The first answer given for an Idempotency-Key within its window, with the
/// hash of the body it came with.
pub async fn idempotent_answer(pool: &PgPool, key: &str) -> Result<Option<([u8; 32], Receipt)>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT request_hash, inquiry_id, received_at FROM idempotency_keys WHERE key = $1 AND created_at >= $2",
    )
    .bind(key)
    .bind(now_ms() - IDEMPOTENCY_WINDOW_MS)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let hash: Vec<u8> = row.try_get(0)?;
    let hash = hash.try_into().map_err(|_| sqlx::Error::Decode("stored request hash is not 32 bytes".into()))?;
    Ok(Some((hash, Receipt { id: row.try_get(1)?, received_at: row.try_get(2)? })))
}
