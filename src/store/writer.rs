//! Group commit: one task owns the write connection and commits whatever
//! submissions queued up while the previous commit was on disk, in one transaction.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::outbox::{self, ClaimedNotification, Settlement};
use super::search;
use crate::domain::{InquiryStatus, NewInquiry, NotificationKind};
use crate::timestamp::now_ms;

const IDEMPOTENCY_WINDOW_MS: i64 = 24 * 60 * 60 * 1000;
const DEDUPE_WINDOW_MS: i64 = 10 * 60 * 1000;
/// Rows per INSERT statement, well under SQLite's bound-variable limit.
const ROWS_PER_STATEMENT: usize = 500;

/// A validated submission with everything decided except its id.
#[derive(Debug)]
pub struct NewRecord {
    pub inquiry: NewInquiry,
    pub status: InquiryStatus,
    pub spam_flags: Vec<String>,
    pub client_ip: Option<String>,
    pub received_at: i64,
    /// Identifies a double click: the same email, subject and message.
    pub dedupe_hash: [u8; 32],
    pub idempotency: Option<IdempotencyClaim>,
    pub notifications: Vec<PlannedNotification>,
}

#[derive(Debug, Clone)]
pub struct IdempotencyClaim {
    pub key: String,
    pub request_hash: [u8; 32],
}

#[derive(Debug, Clone)]
pub struct PlannedNotification {
    pub kind: NotificationKind,
    pub recipients: Vec<String>,
}

/// What the visitor is told: the stored inquiry's id and time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub id: String,
    pub received_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Committed to disk now.
    Created(Receipt),
    /// The Idempotency-Key was seen with the same body: the first answer.
    Replayed(Receipt),
    /// The same email, subject and message arrived within ten minutes.
    Duplicate(Receipt),
    /// The Idempotency-Key was seen with a different body.
    KeyReused,
    /// Storage busy, full or failing: nothing was written.
    Unavailable,
    /// A bug: the record could not be written for a non-transient reason.
    Failed,
}

struct Job {
    record: NewRecord,
    reply: oneshot::Sender<WriteOutcome>,
}

/// Outbox bookkeeping, serialised through the same connection as submissions so
/// that the two never wait on each other's locks.
#[derive(Debug)]
pub enum OutboxOp {
    Claim { limit: i64, lease_ms: i64 },
    Settle(Vec<Settlement>),
    Release(Vec<String>),
    ResetInFlight,
}

#[derive(Debug)]
pub enum OutboxReply {
    Claimed(Vec<ClaimedNotification>),
    Done,
}

/// Any other write (admin changes, erasure, retention): runs in a transaction of
/// its own on the writer's connection and replies after its commit.
type Exec = Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, ()> + Send>;

enum Command {
    Submit(Box<Job>),
    Outbox(OutboxOp, oneshot::Sender<Result<OutboxReply, StoreUnavailable>>),
    Exec(Exec),
}

/// A write that did not happen; the caller may try again later.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("storage unavailable")]
pub struct StoreUnavailable;

#[derive(Debug, Clone)]
pub struct WriterOptions {
    pub group_commit: bool,
    pub batch_max: usize,
    /// Right-hand side of every Message-ID this service generates.
    pub message_id_domain: String,
    /// Index new inquiries for full-text search in the same transaction.
    pub search_index: bool,
}

/// The handle request handlers use to queue a record for the next commit.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Command>,
}

impl Writer {
    /// Starts the writer task; it ends when every handle is dropped and the queue is drained.
    pub fn spawn(conn: SqliteConnection, options: WriterOptions, outbox: Arc<Notify>) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(options.batch_max * 4);
        let task = WriterTask { conn, rx, options, outbox };
        (Self { tx }, tokio::spawn(task.run()))
    }

    /// Queues the record and waits until the transaction holding it is committed.
    pub async fn write(&self, record: NewRecord) -> WriteOutcome {
        let (reply, answer) = oneshot::channel();
        if self.tx.send(Command::Submit(Box::new(Job { record, reply }))).await.is_err() {
            return WriteOutcome::Unavailable;
        }
        answer.await.unwrap_or(WriteOutcome::Unavailable)
    }

    /// Runs `write` in its own transaction on the writer's connection; with
    /// `checkpoint`, truncates the WAL afterwards so that erased data leaves no
    /// copy behind in it.
    pub async fn exec<T, F>(&self, checkpoint: bool, write: F) -> Result<T, sqlx::Error>
    where
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, sqlx::Error>> + Send + 'static,
        T: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Exec = Box::new(move |conn| {
            Box::pin(async move {
                let _ = reply.send(in_transaction(conn, checkpoint, write).await);
            })
        });
        self.tx.send(Command::Exec(job)).await.map_err(|_| sqlx::Error::PoolClosed)?;
        answer.await.unwrap_or(Err(sqlx::Error::PoolClosed))
    }

    /// Runs one outbox operation in the next commit.
    pub async fn outbox(&self, op: OutboxOp) -> Result<OutboxReply, StoreUnavailable> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(Command::Outbox(op, reply)).await.map_err(|_| StoreUnavailable)?;
        answer.await.unwrap_or(Err(StoreUnavailable))
    }
}

struct WriterTask {
    conn: SqliteConnection,
    rx: mpsc::Receiver<Command>,
    options: WriterOptions,
    outbox: Arc<Notify>,
}

type OutboxJob = (OutboxOp, oneshot::Sender<Result<OutboxReply, StoreUnavailable>>);

impl WriterTask {
    async fn run(mut self) {
        while let Some(first) = self.rx.recv().await {
            let mut commands = vec![first];
            while self.options.group_commit && commands.len() < self.options.batch_max {
                match self.rx.try_recv() {
                    Ok(command) => commands.push(command),
                    Err(_) => break,
                }
            }
            let mut jobs = Vec::new();
            let mut ops = Vec::new();
            let mut execs = Vec::new();
            for command in commands {
                match command {
                    Command::Submit(job) => jobs.push(*job),
                    Command::Outbox(op, reply) => ops.push((op, reply)),
                    Command::Exec(exec) => execs.push(exec),
                }
            }
            if !jobs.is_empty() || !ops.is_empty() {
                self.process(jobs, ops).await;
            }
            for exec in execs {
                exec(&mut self.conn).await;
            }
        }
        tracing::debug!("writer stopped");
    }

    async fn process(&mut self, jobs: Vec<Job>, ops: Vec<OutboxJob>) {
        let records: Vec<&NewRecord> = jobs.iter().map(|j| &j.record).collect();
        let (op_list, op_replies): (Vec<OutboxOp>, Vec<_>) = ops.into_iter().unzip();
        let (outcomes, op_results): (_, Vec<Result<OutboxReply, StoreUnavailable>>) =
            match self.commit(&records, op_list).await {
                Ok((outcomes, replies)) => (outcomes, replies.into_iter().map(Ok).collect()),
                Err(error) => {
                    let failed_ops = op_replies.iter().map(|_| Err(StoreUnavailable)).collect();
                    (self.recover(&records, error).await, failed_ops)
                }
            };
        for (job, outcome) in jobs.into_iter().zip(outcomes) {
            let _ = job.reply.send(outcome);
        }
        for (reply, result) in op_replies.into_iter().zip(op_results) {
            let _ = reply.send(result);
        }
    }

    /// After a failed commit: every record is unavailable when storage is, else
    /// each is retried alone so that one bad record cannot sink the batch.
    async fn recover(&mut self, records: &[&NewRecord], error: sqlx::Error) -> Vec<WriteOutcome> {
        if super::is_transient(&error) {
            tracing::warn!(%error, batch = records.len(), "storage unavailable; batch not written");
            return vec![WriteOutcome::Unavailable; records.len()];
        }
        tracing::error!(%error, batch = records.len(), "commit failed; retrying records one by one");
        let mut outcomes = Vec::with_capacity(records.len());
        for record in records {
            outcomes.push(match self.commit(&[record], Vec::new()).await {
                Ok((mut one, _)) => one.remove(0),
                Err(e) if super::is_transient(&e) => WriteOutcome::Unavailable,
                Err(e) => {
                    tracing::error!(error = %e, "record could not be written");
                    WriteOutcome::Failed
                }
            });
        }
        outcomes
    }

    async fn commit(
        &mut self,
        records: &[&NewRecord],
        ops: Vec<OutboxOp>,
    ) -> Result<(Vec<WriteOutcome>, Vec<OutboxReply>), sqlx::Error> {
        sqlx::query("BEGIN IMMEDIATE").execute(&mut self.conn).await?;
        let written = self.write_all(records, ops).await;
        let written = match written {
            Ok(written) => sqlx::query("COMMIT").execute(&mut self.conn).await.map(|_| written),
            Err(e) => Err(e),
        };
        match written {
            Ok((outcomes, replies, notifications)) => {
                metrics::counter!("inquiryd_store_commits_total").increment(1);
                if !records.is_empty() {
                    metrics::histogram!("inquiryd_group_commit_batch_size").record(records.len() as f64);
                }
                if notifications > 0 {
                    self.outbox.notify_one();
                }
                Ok((outcomes, replies))
            }
            Err(e) => {
                let _ = sqlx::query("ROLLBACK").execute(&mut self.conn).await;
                Err(e)
            }
        }
    }

    async fn write_all(
        &mut self,
        records: &[&NewRecord],
        ops: Vec<OutboxOp>,
    ) -> Result<(Vec<WriteOutcome>, Vec<OutboxReply>, usize), sqlx::Error> {
        let (outcomes, notifications) = if records.is_empty() {
            (Vec::new(), 0)
        } else {
            write_batch(&mut self.conn, records, &self.options).await?
        };
        let now = now_ms();
        let mut replies = Vec::with_capacity(ops.len());
        for op in ops {
            replies.push(match op {
                OutboxOp::Claim { limit, lease_ms } => {
                    OutboxReply::Claimed(outbox::claim(&mut self.conn, now, lease_ms, limit).await?)
                }
                OutboxOp::Settle(settlements) => {
                    outbox::settle(&mut self.conn, &settlements, now).await?;
                    OutboxReply::Done
                }
                OutboxOp::Release(ids) => {
                    outbox::release(&mut self.conn, &ids).await?;
                    OutboxReply::Done
                }
                OutboxOp::ResetInFlight => {
                    let reset = outbox::reset_in_flight(&mut self.conn).await?;
                    if reset > 0 {
                        tracing::info!(reset, "notifications in flight at the last stop are due again");
                    }
                    OutboxReply::Done
                }
            });
        }
        Ok((outcomes, replies, notifications))
    }
}

/// Runs `write` between `BEGIN IMMEDIATE` and `COMMIT` (or `ROLLBACK` when it fails).
pub async fn in_transaction<T, F>(conn: &mut SqliteConnection, checkpoint: bool, write: F) -> Result<T, sqlx::Error>
where
    F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, sqlx::Error>>,
{
    sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
    let result = match write(&mut *conn).await {
        Ok(value) => sqlx::query("COMMIT").execute(&mut *conn).await.map(|_| value),
        Err(e) => Err(e),
    };
    if result.is_err() {
        let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
    } else if checkpoint {
        truncate_wal(conn).await;
    }
    result
}

/// Copies the WAL into the database and empties it, so that no page image from
/// before an erasure survives there. A reader in the middle of a query blocks
/// it; it is retried for up to a second.
async fn truncate_wal(conn: &mut SqliteConnection) {
    for _ in 0..20 {
        match sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(TRUNCATE)").fetch_one(&mut *conn).await {
            Ok((0, _, _)) => return,
            Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            Err(e) => {
                tracing::warn!(error = %e, "WAL checkpoint after erasure failed");
                return;
            }
        }
    }
    tracing::warn!("WAL checkpoint after erasure kept being blocked by readers");
}

/// Inside the open transaction: resolves replays and duplicates, inserts the rest.
/// Returns each record's outcome and how many notifications were queued.
async fn write_batch(
    conn: &mut SqliteConnection,
    records: &[&NewRecord],
    options: &WriterOptions,
) -> Result<(Vec<WriteOutcome>, usize), sqlx::Error> {
    let message_id_domain = &options.message_id_domain;
    let now = now_ms();
    let mut keys = known_keys(conn, records, now).await?;
    let mut recent = recent_duplicates(conn, records, now).await?;

    let mut outcomes = Vec::with_capacity(records.len());
    let mut fresh: Vec<(&NewRecord, String)> = Vec::new();
    for record in records {
        let outcome = if let Some(claim) = &record.idempotency {
            match keys.get(&claim.key) {
                Some((hash, receipt)) if *hash == claim.request_hash => WriteOutcome::Replayed(receipt.clone()),
                Some(_) => WriteOutcome::KeyReused,
                None => {
                    let receipt = Receipt { id: Uuid::now_v7().to_string(), received_at: record.received_at };
                    keys.insert(claim.key.clone(), (claim.request_hash, receipt.clone()));
                    recent.entry(record.dedupe_hash).or_insert_with(|| receipt.clone());
                    fresh.push((record, receipt.id.clone()));
                    WriteOutcome::Created(receipt)
                }
            }
        } else if let Some(receipt) = recent.get(&record.dedupe_hash) {
            WriteOutcome::Duplicate(receipt.clone())
        } else {
            let receipt = Receipt { id: Uuid::now_v7().to_string(), received_at: record.received_at };
            recent.insert(record.dedupe_hash, receipt.clone());
            fresh.push((record, receipt.id.clone()));
            WriteOutcome::Created(receipt)
        };
        outcomes.push(outcome);
    }

    for chunk in fresh.chunks(ROWS_PER_STATEMENT) {
        let seqs = insert_inquiries(conn, chunk, now).await?;
        if options.search_index {
            let documents: Vec<(i64, String)> = chunk
                .iter()
                .filter_map(|(record, id)| {
                    let i = &record.inquiry;
                    let body = search::Searchable {
                        name: &i.name,
                        email: i.email.as_str(),
                        subject: &i.subject,
                        message: &i.message,
                        organization: i.organization.as_deref(),
                        country: i.country.as_deref(),
                    }
                    .document();
                    seqs.get(id).map(|seq| (*seq, body))
                })
                .collect();
            search::index(conn, &documents).await?;
        }
    }
    let notifications: Vec<(&str, &PlannedNotification, String)> = fresh
        .iter()
        .flat_map(|(record, id)| record.notifications.iter().map(move |n| (id.as_str(), n, Uuid::now_v7().to_string())))
        .collect();
    for chunk in notifications.chunks(ROWS_PER_STATEMENT) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO notifications (id, inquiry_id, kind, recipients, message_id, next_attempt_at, created_at) ",
        );
        insert.push_values(chunk, |mut row, (inquiry_id, planned, id)| {
            row.push_bind(id.as_str())
                .push_bind(*inquiry_id)
                .push_bind(planned.kind.as_str())
                .push_bind(planned.recipients.join(", "))
                .push_bind(format!("<{id}@{message_id_domain}>"))
                .push_bind(now)
                .push_bind(now);
        });
        insert.build().execute(&mut *conn).await?;
    }
    let claims: Vec<(&IdempotencyClaim, &str, i64)> =
        fresh.iter().filter_map(|(r, id)| r.idempotency.as_ref().map(|c| (c, id.as_str(), r.received_at))).collect();
    for chunk in claims.chunks(ROWS_PER_STATEMENT) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT OR REPLACE INTO idempotency_keys (key, request_hash, inquiry_id, received_at, created_at) ",
        );
        insert.push_values(chunk, |mut row, (claim, id, received_at)| {
            row.push_bind(claim.key.as_str())
                .push_bind(&claim.request_hash[..])
                .push_bind(*id)
                .push_bind(*received_at)
                .push_bind(now);
        });
        insert.build().execute(&mut *conn).await?;
    }
    Ok((outcomes, notifications.len()))
}

/// Inserts the rows and returns each one's `seq` by id.
async fn insert_inquiries(
    conn: &mut SqliteConnection,
    rows: &[(&NewRecord, String)],
    now: i64,
) -> Result<HashMap<String, i64>, sqlx::Error> {
    let mut insert = QueryBuilder::<Sqlite>::new(
        "INSERT INTO inquiries (id, received_at, status, category, name, email, email_norm, subject, message, \
         organization, country, phone, consent, page, client_ip, spam_flags, dedupe_hash, updated_at) ",
    );
    insert.push_values(rows, |mut row, (record, id)| {
        let inquiry = &record.inquiry;
        row.push_bind(id.as_str())
            .push_bind(record.received_at)
            .push_bind(record.status.as_str())
            .push_bind(inquiry.category.as_str())
            .push_bind(inquiry.name.as_str())
            .push_bind(inquiry.email.as_str())
            .push_bind(inquiry.email.normalized())
            .push_bind(inquiry.subject.as_str())
            .push_bind(inquiry.message.as_str())
            .push_bind(inquiry.organization.as_deref())
            .push_bind(inquiry.country.as_deref())
            .push_bind(inquiry.phone.as_deref())
            .push_bind(inquiry.consent)
            .push_bind(inquiry.page.as_deref())
            .push_bind(record.client_ip.as_deref())
            .push_bind(serde_json::to_string(&record.spam_flags).unwrap_or_else(|_| "[]".into()))
            .push_bind(&record.dedupe_hash[..])
            .push_bind(now);
    });
    insert.push(" RETURNING id, seq");
    let mut seqs = HashMap::with_capacity(rows.len());
    for row in insert.build().fetch_all(conn).await? {
        seqs.insert(row.try_get("id")?, row.try_get("seq")?);
    }
    Ok(seqs)
}

type KnownKeys = HashMap<String, ([u8; 32], Receipt)>;

async fn known_keys(conn: &mut SqliteConnection, records: &[&NewRecord], now: i64) -> Result<KnownKeys, sqlx::Error> {
    let claims: Vec<&str> = records.iter().filter_map(|r| r.idempotency.as_ref().map(|c| c.key.as_str())).collect();
    let mut found = HashMap::new();
    if claims.is_empty() {
        return Ok(found);
    }
    let mut query = QueryBuilder::<Sqlite>::new(
        "SELECT key, request_hash, inquiry_id, received_at FROM idempotency_keys WHERE created_at >= ",
    );
    query.push_bind(now - IDEMPOTENCY_WINDOW_MS).push(" AND key IN (");
    let mut list = query.separated(", ");
    for key in claims {
        list.push_bind(key);
    }
    query.push(")");
    for row in query.build().fetch_all(&mut *conn).await? {
        let hash: Vec<u8> = row.try_get("request_hash")?;
        let receipt = Receipt { id: row.try_get("inquiry_id")?, received_at: row.try_get("received_at")? };
        found.insert(row.try_get("key")?, (hash.try_into().unwrap_or([0; 32]), receipt));
    }
    Ok(found)
}

async fn recent_duplicates(
    conn: &mut SqliteConnection,
    records: &[&NewRecord],
    now: i64,
) -> Result<HashMap<[u8; 32], Receipt>, sqlx::Error> {
    let mut query =
        QueryBuilder::<Sqlite>::new("SELECT dedupe_hash, id, received_at FROM inquiries WHERE received_at >= ");
    query.push_bind(now - DEDUPE_WINDOW_MS).push(" AND dedupe_hash IN (");
    let mut list = query.separated(", ");
    for record in records {
        list.push_bind(&record.dedupe_hash[..]);
    }
    query.push(") ORDER BY seq DESC");
    let mut found = HashMap::new();
    for row in query.build().fetch_all(&mut *conn).await? {
        let hash: Vec<u8> = row.try_get("dedupe_hash")?;
        let receipt = Receipt { id: row.try_get("id")?, received_at: row.try_get("received_at")? };
        // Rows come newest first: the oldest, the original, is inserted last and wins.
        found.insert(hash.try_into().unwrap_or([0; 32]), receipt);
    }
    Ok(found)
}
