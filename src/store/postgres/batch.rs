//! Group commit on PostgreSQL (`database.group_commit = true`): submissions
//! that arrive while a transaction is being written are written together in
//! the next one, with a fixed number of statements however many there are
//! (arrays bound once, expanded by `UNNEST`).
//!
//! The rules are the per-submission ones ([`super::submit`]): the batch takes
//! the advisory locks of its unkeyed submissions' double-click hashes and
//! claims its Idempotency-Keys, both in sorted order so that two replicas'
//! batches cannot deadlock; within the batch, a repeat is resolved here as the
//! SQLite writer does.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use sqlx::{PgPool, Row};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;

use super::{is_transient, submit, Tx};
use crate::store::model::{resolve, KnownKeys};
use crate::store::{NewRecord, Receipt, StoreOptions, WriteOutcome};
use crate::timestamp::now_ms;

pub struct Job {
    pub record: NewRecord,
    pub reply: oneshot::Sender<WriteOutcome>,
}

/// How many batches a replica writes at once: PostgreSQL runs each
/// transaction in a backend process of its own, so one batch at a time would
/// leave all but one core idle while it is written.
const WRITERS: usize = 4;

/// Starts the batch writers; the task ends when every sender is dropped and
/// the queue is drained.
pub fn spawn(pool: PgPool, options: Arc<StoreOptions>, outbox: Arc<Notify>) -> (mpsc::Sender<Job>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel::<Job>(options.batch_max * 4);
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let writers: Vec<JoinHandle<()>> = (0..WRITERS)
        .map(|_| tokio::spawn(write_batches(rx.clone(), pool.clone(), options.clone(), outbox.clone())))
        .collect();
    let task = tokio::spawn(async move {
        for writer in writers {
            let _ = writer.await;
        }
        tracing::debug!("submission batchers stopped");
    });
    (tx, task)
}

/// One writer: takes whatever is queued (up to `batch_max`) and writes it in
/// one transaction, while the other writers take the next.
async fn write_batches(
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>,
    pool: PgPool,
    options: Arc<StoreOptions>,
    outbox: Arc<Notify>,
) {
    loop {
        let jobs = {
            let mut rx = rx.lock().await;
            let Some(first) = rx.recv().await else { break };
            let mut jobs = vec![first];
            while jobs.len() < options.batch_max {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            jobs
        };
        let records: Vec<&NewRecord> = jobs.iter().map(|j| &j.record).collect();
        let outcomes = match commit(&pool, &records, &options).await {
            Ok((outcomes, notifications)) => {
                super::queued(&options, &outbox, notifications);
                outcomes
            }
            Err(error) => recover(&pool, &records, &options, &outbox, error).await,
        };
        for (job, outcome) in jobs.into_iter().zip(outcomes) {
            let _ = job.reply.send(outcome);
        }
    }
}

/// After a failed batch: every record is unavailable when the database is,
/// else each is written alone so that one bad record cannot sink the rest.
async fn recover(
    pool: &PgPool,
    records: &[&NewRecord],
    options: &StoreOptions,
    outbox: &Notify,
    error: sqlx::Error,
) -> Vec<WriteOutcome> {
    if is_transient(&error) {
        tracing::warn!(%error, batch = records.len(), "storage unavailable; batch not written");
        return vec![WriteOutcome::Unavailable; records.len()];
    }
    tracing::error!(%error, batch = records.len(), "batch failed; writing its records one by one");
    let mut outcomes = Vec::with_capacity(records.len());
    for record in records {
        outcomes.push(match submit::submit(pool, record, options).await {
            Ok((outcome, notifications)) => {
                super::queued(options, outbox, notifications);
                outcome
            }
            Err(e) if is_transient(&e) => WriteOutcome::Unavailable,
            Err(e) => {
                tracing::error!(error = %e, "record could not be written");
                WriteOutcome::Failed
            }
        });
    }
    outcomes
}

async fn commit(
    pool: &PgPool,
    records: &[&NewRecord],
    options: &StoreOptions,
) -> Result<(Vec<WriteOutcome>, usize), sqlx::Error> {
    let (now, started) = (now_ms(), Instant::now());
    let mut tx = pool.begin().await?;
    let mut locks: Vec<i64> =
        records.iter().filter(|r| r.idempotency.is_none()).map(|r| submit::dedupe_lock(&r.dedupe_hash)).collect();
    locks.sort_unstable();
    locks.dedup();
    if !locks.is_empty() {
        sqlx::query("SELECT pg_advisory_xact_lock(k) FROM UNNEST($1::int8[]) AS k")
            .bind(&locks)
            .execute(&mut *tx)
            .await?;
    }
    let (mut claimed, keys) = claim_keys(&mut tx, records, now).await?;
    let recent = recent_duplicates(&mut tx, records, now).await?;
    // A new key was claimed for its first record, with the receipt it gets.
    let (outcomes, fresh) = resolve(records, keys, recent, |_, key| claimed.remove(&key.key));
    let rows: Vec<(&NewRecord, &str)> = fresh.iter().map(|(r, id)| (*r, id.as_str())).collect();
    let mut notifications = 0;
    if !rows.is_empty() {
        submit::insert_inquiries(&mut tx, &rows, now).await?;
        notifications = submit::insert_notifications(&mut tx, &rows, now, options).await?;
    }
    super::commit(tx, started, records.len()).await?;
    Ok((outcomes, notifications))
}

/// Claims the batch's Idempotency-Keys, each for its first record (with the
/// receipt it will get); returns those receipts by key, and the answers of the
/// keys other transactions hold.
async fn claim_keys(
    tx: &mut Tx,
    records: &[&NewRecord],
    now: i64,
) -> Result<(HashMap<String, Receipt>, KnownKeys), sqlx::Error> {
    let mut first: HashMap<&str, (&NewRecord, Receipt)> = HashMap::new();
    for record in records {
        if let Some(claim) = &record.idempotency {
            first.entry(claim.key.as_str()).or_insert_with(|| (*record, Receipt::new(record)));
        }
    }
    if first.is_empty() {
        return Ok((HashMap::new(), HashMap::new()));
    }
    let rows: Vec<(&NewRecord, &str)> = first.values().map(|(r, receipt)| (*r, receipt.id.as_str())).collect();
    let won: Vec<String> = submit::claim_keys(tx, &rows, now).await?;
    let mut claimed = HashMap::new();
    for key in &won {
        if let Some((_, receipt)) = first.remove(key.as_str()) {
            claimed.insert(key.clone(), receipt);
        }
    }
    let mut known = HashMap::new();
    if !first.is_empty() {
        let taken: Vec<&str> = first.keys().copied().collect();
        let rows =
            sqlx::query("SELECT key, request_hash, inquiry_id, received_at FROM idempotency_keys WHERE key = ANY($1)")
                .bind(&taken)
                .fetch_all(&mut **tx)
                .await?;
        for row in rows {
            known.insert(row.try_get("key")?, submit::answer(&row)?);
        }
    }
    Ok((claimed, known))
}

/// The original (oldest) inquiry of each unkeyed record's dedupe hash within the window.
async fn recent_duplicates(
    tx: &mut Tx,
    records: &[&NewRecord],
    now: i64,
) -> Result<HashMap<[u8; 32], Receipt>, sqlx::Error> {
    let (emails, hashes): (Vec<&str>, Vec<&[u8]>) =
        records.iter().map(|r| (r.email_norm.as_str(), &r.dedupe_hash[..])).unzip();
    let rows = sqlx::query(
        "SELECT DISTINCT ON (i.dedupe_hash) i.dedupe_hash, i.id, i.received_at \
         FROM UNNEST($1::text[], $2::bytea[]) AS w (email_norm, dedupe_hash) \
         JOIN inquiries i ON i.email_norm = w.email_norm AND i.dedupe_hash = w.dedupe_hash AND i.received_at >= $3 \
         ORDER BY i.dedupe_hash, i.seq",
    )
    .bind(&emails)
    .bind(&hashes)
    .bind(now - submit::DEDUPE_WINDOW_MS)
    .fetch_all(&mut **tx)
    .await?;
    let mut found = HashMap::new();
    for row in rows {
        let hash: Vec<u8> = row.try_get(0)?;
        if let Ok(hash) = hash.try_into() {
            found.insert(hash, Receipt { id: row.try_get(1)?, received_at: row.try_get(2)? });
        }
    }
    Ok(found)
}
