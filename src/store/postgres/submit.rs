//! Submissions on PostgreSQL, one transaction each (`database.group_commit =
//! false`; [`super::batch`] writes them in groups), and the statements both share.
//!
//! Across replicas the database decides: an Idempotency-Key is claimed by
//! inserting it (a concurrent insert of the same key waits for the first
//! transaction and then sees its row); a double click is recognised under a
//! transaction-scoped advisory lock on its hash, so two replicas cannot both
//! find "no duplicate yet" and both store it.

use sqlx::{PgPool, Row};
use uuid::Uuid;

use super::Tx;
use crate::store::model::{fields_json, file_hashes, DAY_MS};
use crate::store::search::words;
use crate::store::{NewRecord, Receipt, StoreOptions, WriteOutcome};
use crate::timestamp::now_ms;

pub const IDEMPOTENCY_WINDOW_MS: i64 = 24 * 60 * 60 * 1000;
pub const DEDUPE_WINDOW_MS: i64 = 10 * 60 * 1000;

/// The advisory lock a double click's hash is checked under.
pub fn dedupe_lock(hash: &[u8; 32]) -> i64 {
    i64::from_be_bytes([hash[0], hash[1], hash[2], hash[3], hash[4], hash[5], hash[6], hash[7]])
}

/// Stores the record (or recognises a replay or a double click); returns the
/// outcome and how many notifications were queued.
pub async fn submit(
    pool: &PgPool,
    record: &NewRecord,
    options: &StoreOptions,
) -> Result<(WriteOutcome, usize), sqlx::Error> {
    let (now, started) = (now_ms(), std::time::Instant::now());
    let receipt = Receipt::new(record);
    let mut tx = pool.begin().await?;
    if let Some(claim) = &record.idempotency {
        let claimed = claim_keys(&mut tx, &[(record, receipt.id.as_str())], now).await?;
        if claimed.is_empty() {
            tx.rollback().await?;
            let (hash, first) = idempotent_answer(pool, &claim.key).await?.ok_or(sqlx::Error::RowNotFound)?;
            let outcome =
                if hash == claim.request_hash { WriteOutcome::Replayed(first) } else { WriteOutcome::KeyReused };
            return Ok((outcome, 0));
        }
    } else {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(dedupe_lock(&record.dedupe_hash))
            .execute(&mut *tx)
            .await?;
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
    let rows = [(record, receipt.id.as_str())];
    insert_inquiries(&mut tx, &rows, now).await?;
    let notifications = insert_notifications(&mut tx, &rows, now, options).await?;
    super::commit(tx, started, 1).await?;
    Ok((WriteOutcome::Created(receipt), notifications))
}

/// Claims the Idempotency-Keys of `rows` (each row's record has one) for the
/// inquiry ids given, in key order; a key older than its window is taken over.
/// Returns the keys claimed; a key another transaction holds is not among them
/// (a concurrent claim waits for that transaction to end first).
pub async fn claim_keys(tx: &mut Tx, rows: &[(&NewRecord, &str)], now: i64) -> Result<Vec<String>, sqlx::Error> {
    let mut keyed: Vec<_> = rows.iter().filter_map(|(r, id)| r.idempotency.as_ref().map(|c| (c, *r, *id))).collect();
    keyed.sort_by(|a, b| a.0.key.cmp(&b.0.key));
    let keys: Vec<&str> = keyed.iter().map(|(c, _, _)| c.key.as_str()).collect();
    let hashes: Vec<&[u8]> = keyed.iter().map(|(c, _, _)| &c.request_hash[..]).collect();
    let ids: Vec<&str> = keyed.iter().map(|(_, _, id)| *id).collect();
    let received: Vec<i64> = keyed.iter().map(|(_, r, _)| r.received_at).collect();
    sqlx::query_scalar(
        "INSERT INTO idempotency_keys (key, request_hash, inquiry_id, received_at, created_at) \
         SELECT k.key, k.hash, k.id, k.received_at, $5 \
         FROM UNNEST($1::text[], $2::bytea[], $3::text[], $4::int8[]) WITH ORDINALITY AS k (key, hash, id, received_at, n) \
         ORDER BY k.n \
         ON CONFLICT (key) DO UPDATE SET request_hash = EXCLUDED.request_hash, inquiry_id = EXCLUDED.inquiry_id, \
             received_at = EXCLUDED.received_at, created_at = EXCLUDED.created_at \
         WHERE idempotency_keys.created_at < $6 \
         RETURNING key",
    )
    .bind(&keys)
    .bind(&hashes)
    .bind(&ids)
    .bind(&received)
    .bind(now)
    .bind(now - IDEMPOTENCY_WINDOW_MS)
    .fetch_all(&mut **tx)
    .await
}

/// Inserts inquiries (record, id): one statement however many.
pub async fn insert_inquiries(tx: &mut Tx, rows: &[(&NewRecord, &str)], now: i64) -> Result<(), sqlx::Error> {
    let text = |f: fn(&NewRecord) -> &str| -> Vec<&str> { rows.iter().map(|(r, _)| f(r)).collect() };
    let optional =
        |f: fn(&NewRecord) -> Option<&str>| -> Vec<Option<&str>> { rows.iter().map(|(r, _)| f(r)).collect() };
    let ids: Vec<&str> = rows.iter().map(|(_, id)| *id).collect();
    let received: Vec<i64> = rows.iter().map(|(r, _)| r.received_at).collect();
    let consent: Vec<Option<bool>> = rows.iter().map(|(r, _)| r.inquiry.consent).collect();
    let flags: Vec<String> =
        rows.iter().map(|(r, _)| serde_json::to_string(&r.spam_flags).unwrap_or_else(|_| "[]".into())).collect();
    let hashes: Vec<&[u8]> = rows.iter().map(|(r, _)| &r.dedupe_hash[..]).collect();
    // With indexing off the document is NULL, and so is the row's index entry.
    let documents: Vec<Option<String>> = rows.iter().map(|(r, _)| r.search_document.as_deref().map(words)).collect();
    let langs: Vec<&str> = rows.iter().map(|(r, _)| r.lang.tag()).collect();
    let fields: Vec<String> = rows.iter().map(|(r, _)| fields_json(&r.inquiry)).collect();
    sqlx::query(
        "INSERT INTO inquiries (id, received_at, status, category, name, email, email_norm, subject, message, \
         organization, country, phone, consent, page, client_ip, spam_flags, dedupe_hash, updated_at, search, lang, form, fields) \
         SELECT u.id, u.received_at, u.status, u.category, u.name, u.email, u.email_norm, u.subject, u.message, \
             u.organization, u.country, u.phone, u.consent, u.page, u.client_ip, u.spam_flags, u.dedupe_hash, $18, \
             to_tsvector('simple', inquiryd_fold(u.document)), u.lang, u.form, u.fields \
         FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
             $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::bool[], $14::text[], $15::text[], \
             $16::text[], $17::bytea[], $19::text[], $20::text[], $21::text[], $22::text[]) \
         AS u (id, received_at, status, category, name, email, email_norm, subject, message, organization, \
             country, phone, consent, page, client_ip, spam_flags, dedupe_hash, document, lang, form, fields)",
    )
    .bind(&ids)
    .bind(&received)
    .bind(text(|r| r.status.as_str()))
    .bind(text(|r| r.inquiry.category.as_str()))
    .bind(text(|r| &r.inquiry.name))
    .bind(text(|r| r.inquiry.email.as_str()))
    .bind(text(|r| &r.email_norm))
    .bind(text(|r| &r.inquiry.subject))
    .bind(text(|r| &r.inquiry.message))
    .bind(optional(|r| r.inquiry.organization.as_deref()))
    .bind(optional(|r| r.inquiry.country.as_deref()))
    .bind(optional(|r| r.inquiry.phone.as_deref()))
    .bind(&consent)
    .bind(optional(|r| r.inquiry.page.as_deref()))
    .bind(optional(|r| r.client_ip.as_deref()))
    .bind(&flags)
    .bind(&hashes)
    .bind(now)
    .bind(&documents)
    .bind(&langs)
    .bind(text(|r| &r.inquiry.form))
    .bind(&fields)
    .execute(&mut **tx)
    .await?;
    let (owners, files): (Vec<&str>, Vec<String>) =
        rows.iter().flat_map(|(r, id)| file_hashes(r).into_iter().map(move |h| (*id, h))).unzip();
    if !files.is_empty() {
        sqlx::query("INSERT INTO files (inquiry_id, sha256) SELECT * FROM UNNEST($1::text[], $2::text[]) ON CONFLICT DO NOTHING")
            .bind(&owners)
            .bind(&files)
            .execute(&mut **tx)
            .await?;
    }
    count_inserted(tx, rows).await
}

/// How many counts shards there are: a transaction adds its new inquiries to
/// one, chosen at random, so that concurrent transactions (one per request,
/// or several replicas' batches) seldom wait for each other's row lock.
const COUNT_SHARDS: i16 = 16;

/// Adds new inquiries to the kept counts, one upsert per key in key order (no
/// deadlock with another transaction doing the same). Here rather than in a
/// trigger: a statement trigger with a transition table cost 40 % of the
/// one-transaction-per-request rate (bench/run --database postgres, A/B).
async fn count_inserted(tx: &mut Tx, rows: &[(&NewRecord, &str)]) -> Result<(), sqlx::Error> {
    let days: Vec<i64> = rows.iter().map(|(r, _)| r.received_at.div_euclid(DAY_MS)).collect();
    let forms: Vec<&str> = rows.iter().map(|(r, _)| r.inquiry.form.as_str()).collect();
    let statuses: Vec<&str> = rows.iter().map(|(r, _)| r.status.as_str()).collect();
    let categories: Vec<&str> = rows.iter().map(|(r, _)| r.inquiry.category.as_str()).collect();
    let shard: i16 = rand::Rng::random_range(&mut rand::rng(), 0..COUNT_SHARDS);
    sqlx::query(
        "INSERT INTO inquiry_counts (day, form, status, category, shard, n, unread) \
         SELECT day, form, status, category, $5, count(*), count(*) \
         FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::text[]) AS u (day, form, status, category) \
         GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4 \
         ON CONFLICT (day, form, status, category, shard) \
         DO UPDATE SET n = inquiry_counts.n + excluded.n, unread = inquiry_counts.unread + excluded.unread",
    )
    .bind(&days)
    .bind(&forms)
    .bind(&statuses)
    .bind(&categories)
    .bind(shard)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Queues the planned notifications of inquiries (record, id) in one statement,
/// and their webhook events; returns how many rows were queued.
pub async fn insert_notifications(
    tx: &mut Tx,
    rows: &[(&NewRecord, &str)],
    now: i64,
    options: &StoreOptions,
) -> Result<usize, sqlx::Error> {
    let (mut ids, mut inquiries, mut kinds, mut recipients, mut message_ids) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (record, inquiry) in rows {
        for planned in &record.notifications {
            let id = Uuid::now_v7().to_string();
            message_ids.push(format!("<{id}@{}>", options.message_id_domain));
            ids.push(id);
            inquiries.push(*inquiry);
            kinds.push(planned.kind.as_str());
            recipients.push(planned.recipients.join(", "));
        }
    }
    let events: Vec<_> = rows.iter().flat_map(|(record, id)| options.webhooks.created(record, id, now)).collect();
    super::webhooks::insert(tx, &events).await?;
    if ids.is_empty() {
        return Ok(events.len());
    }
    sqlx::query(
        "INSERT INTO notifications (id, inquiry_id, kind, recipients, message_id, next_attempt_at, created_at) \
         SELECT n.*, $6, $6 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) \
             AS n (id, inquiry_id, kind, recipients, message_id)",
    )
    .bind(&ids)
    .bind(&inquiries)
    .bind(&kinds)
    .bind(&recipients)
    .bind(&message_ids)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(ids.len() + events.len())
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
    row.map(|row| answer(&row)).transpose()
}

/// A stored key's answer: the request's hash and the receipt given.
pub fn answer(row: &sqlx::postgres::PgRow) -> Result<([u8; 32], Receipt), sqlx::Error> {
    let hash: Vec<u8> = row.try_get("request_hash")?;
    let hash = hash.try_into().map_err(|_| sqlx::Error::Decode("stored request hash is not 32 bytes".into()))?;
    Ok((hash, Receipt { id: row.try_get("inquiry_id")?, received_at: row.try_get("received_at")? }))
}
