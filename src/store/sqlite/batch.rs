//! The submissions of one batch, written by the writer thread
//! ([`super::writer`]) inside its open transaction: replays and double clicks
//! resolved against what is stored, then each new inquiry with its files,
//! notifications, idempotency key and webhook events, and the kept counts
//! once per batch. Which records were inserted, under which `seq`, is
//! returned, for the search indexer.

use std::collections::HashMap;

use rusqlite::{params, OptionalExtension};
use uuid::Uuid;

use crate::store::model::{fields_json, file_hashes, resolve, KnownKeys, DAY_MS};
use crate::store::webhooks;
use crate::store::{NewRecord, Receipt, StoreOptions, WriteOutcome};
use crate::timestamp::now_ms;

const IDEMPOTENCY_WINDOW_MS: i64 = 24 * 60 * 60 * 1000;
const DEDUPE_WINDOW_MS: i64 = 10 * 60 * 1000;

/// `?22` is the `seq`: NULL (SQLite's next) but after an erasure of the newest (see [`seq_floor`]).
const INSERT_INQUIRY: &str = "INSERT INTO inquiries (id, received_at, status, category, name, email, email_norm, \
     subject, message, organization, country, phone, consent, page, client_ip, spam_flags, dedupe_hash, updated_at, \
     lang, form, fields, seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, \
     ?19, ?20, ?21, ?22)";
const INSERT_NOTIFICATION: &str = "INSERT INTO notifications \
     (id, inquiry_id, kind, recipients, message_id, next_attempt_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)";
const COUNT_INSERTED: &str = "INSERT INTO inquiry_counts (day, form, status, category, n, unread) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT DO UPDATE SET n = n + excluded.n, unread = unread + excluded.unread";
const INSERT_FILE: &str = "INSERT OR IGNORE INTO files (inquiry_id, sha256) VALUES (?1, ?2)";
const INSERT_IDEMPOTENCY_KEY: &str = "INSERT OR REPLACE INTO idempotency_keys \
     (key, request_hash, inquiry_id, received_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5)";

/// What a batch wrote.
#[derive(Default)]
pub(super) struct Written {
    /// Each record's, in order.
    pub outcomes: Vec<WriteOutcome>,
    /// How many notifications were queued.
    pub notifications: usize,
    /// The records inserted: `(position in the batch, seq)`.
    pub inserted: Vec<(usize, i64)>,
}

/// Inside the open transaction: resolves replays and duplicates, inserts the rest.
pub(super) fn write_batch(
    db: &rusqlite::Connection,
    records: &[&NewRecord],
    options: &StoreOptions,
) -> Result<Written, rusqlite::Error> {
    let now = now_ms();
    let keys = known_keys(db, records, now)?;
    let recent = recent_duplicates(db, records, now)?;
    let (outcomes, fresh) = resolve(records, keys, recent, |record, _| Some(Receipt::new(record)));

    let mut insert = db.prepare_cached(INSERT_INQUIRY)?;
    let mut notify = db.prepare_cached(INSERT_NOTIFICATION)?;
    let mut remember = db.prepare_cached(INSERT_IDEMPOTENCY_KEY)?;
    let mut notifications = 0;
    let mut events = 0;
    // `resolve` makes a record fresh exactly where its outcome is `Created`.
    let positions = outcomes.iter().enumerate().filter(|(_, o)| matches!(o, WriteOutcome::Created(_))).map(|(i, _)| i);
    let positions: Vec<usize> = positions.collect();
    debug_assert_eq!(positions.len(), fresh.len());
    let mut inserted = Vec::with_capacity(fresh.len());
    let mut above_floor = if fresh.is_empty() { None } else { seq_floor(db)? };
    let mut counts: HashMap<(i64, &str, &str, &str), i64> = HashMap::new();
    for ((record, id), &position) in fresh.iter().zip(&positions) {
        let inquiry = &record.inquiry;
        *counts
            .entry((
                record.received_at.div_euclid(DAY_MS),
                &inquiry.form,
                record.status.as_str(),
                inquiry.category.as_str(),
            ))
            .or_default() += 1;
        let spam_flags = serde_json::to_string(&record.spam_flags).unwrap_or_else(|_| "[]".into());
        let seq = insert.insert(params![
            id,
            record.received_at,
            record.status.as_str(),
            inquiry.category.as_str(),
            inquiry.name,
            inquiry.email.as_str(),
            record.email_norm,
            inquiry.subject,
            inquiry.message,
            inquiry.organization,
            inquiry.country,
            inquiry.phone,
            inquiry.consent,
            inquiry.page,
            record.client_ip,
            spam_flags,
            &record.dedupe_hash[..],
            now,
            record.lang.tag(),
            inquiry.form,
            fields_json(inquiry),
            above_floor.take(),
        ])?;
        inserted.push((position, seq));
        for sha256 in file_hashes(record) {
            db.prepare_cached(INSERT_FILE)?.execute(params![id, sha256])?;
        }
        for planned in &record.notifications {
            let notification_id = Uuid::now_v7().to_string();
            let message_id = format!("<{notification_id}@{}>", options.message_id_domain);
            notify.execute(params![
                notification_id,
                id,
                planned.kind.as_str(),
                planned.recipients.join(", "),
                message_id,
                now
            ])?;
            notifications += 1;
        }
        if let Some(claim) = &record.idempotency {
            remember.execute(params![claim.key, &claim.request_hash[..], id, record.received_at, now])?;
        }
        if !options.webhooks.is_empty() {
            for e in options.webhooks.created(record, id, now) {
                db.prepare_cached(webhooks::INSERT_SQL)?.execute(params![
                    e.id,
                    e.webhook,
                    e.inquiry_id,
                    e.event.as_str(),
                    e.data,
                    e.at
                ])?;
                events += 1;
            }
        }
    }
    // The kept counts: one upsert per day, form, status and category of the
    // batch (a trigger per row would cost a statement journal per insert:
    // about 20 us each, measured; see migrations/sqlite/0011_counts.sql).
    let mut count = db.prepare_cached(COUNT_INSERTED)?;
    for ((day, form, status, category), n) in counts {
        count.execute(params![day, form, status, category, n])?;
    }
    if events > 0 {
        options.webhooks.wake.notify_one();
    }
    Ok(Written { outcomes, notifications, inserted })
}

/// The `seq` the next inquiry must have, when an erasure took the newest ones
/// away: an `INTEGER PRIMARY KEY` is otherwise the largest + 1, and would give
/// an erased inquiry's `seq` to a new one. The search index's watermark ("every
/// row up to it is indexed") needs a `seq` never to come back. Erasure leaves
/// the largest it erased in `meta` (see `admin::erase`); taken here, inside the
/// transaction that inserts above it.
fn seq_floor(db: &rusqlite::Connection) -> Result<Option<i64>, rusqlite::Error> {
    let floor: Option<i64> = db
        .prepare_cached("SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'seq_floor'")?
        .query_row([], |row| row.get(0))
        .optional()?;
    let Some(floor) = floor else { return Ok(None) };
    db.prepare_cached("DELETE FROM meta WHERE key = 'seq_floor'")?.execute([])?;
    let newest: i64 =
        db.prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM inquiries")?.query_row([], |row| row.get(0))?;
    Ok((newest < floor).then_some(floor + 1))
}

fn known_keys(db: &rusqlite::Connection, records: &[&NewRecord], now: i64) -> Result<KnownKeys, rusqlite::Error> {
    let mut found = HashMap::new();
    let mut lookup = db.prepare_cached(
        "SELECT request_hash, inquiry_id, received_at FROM idempotency_keys WHERE key = ?1 AND created_at >= ?2",
    )?;
    for claim in records.iter().filter_map(|r| r.idempotency.as_ref()) {
        let row = lookup
            .query_row(params![claim.key, now - IDEMPOTENCY_WINDOW_MS], |row| {
                Ok((row.get::<_, Vec<u8>>(0)?, Receipt { id: row.get(1)?, received_at: row.get(2)? }))
            })
            .optional()?;
        if let Some((hash, receipt)) = row {
            found.insert(claim.key.clone(), (hash.try_into().unwrap_or([0; 32]), receipt));
        }
    }
    Ok(found)
}

/// The original (oldest) inquiry of each record's dedupe hash within the window.
fn recent_duplicates(
    db: &rusqlite::Connection,
    records: &[&NewRecord],
    now: i64,
) -> Result<HashMap<[u8; 32], Receipt>, rusqlite::Error> {
    let mut found = HashMap::new();
    // The hash covers the normalized email, so the email's index narrows the search.
    let mut lookup = db.prepare_cached(
        "SELECT id, received_at FROM inquiries \
         WHERE email_norm = ?1 AND dedupe_hash = ?2 AND received_at >= ?3 ORDER BY seq LIMIT 1",
    )?;
    for record in records {
        let receipt = lookup
            .query_row(params![record.email_norm, &record.dedupe_hash[..], now - DEDUPE_WINDOW_MS], |row| {
                Ok(Receipt { id: row.get(0)?, received_at: row.get(1)? })
            })
            .optional()?;
        if let Some(receipt) = receipt {
            found.insert(record.dedupe_hash, receipt);
        }
    }
    Ok(found)
}
