//! Group commit: one thread owns the write connection and commits whatever
//! submissions queued up while the previous commit was on disk, in one transaction.
//!
//! Submissions and outbox bookkeeping run synchronously on that thread through
//! rusqlite, with prepared statements kept across batches: a transaction is a
//! run of plain function calls, with no hop to another thread per statement.
//! What a batch of submissions writes is in [`super::batch`].
//! Everything else (admin writes, erasure, retention) is sqlx code run on the
//! same thread, on a second connection to the file, between batches.

use std::sync::Arc;
use std::time::Instant;

use futures_util::future::BoxFuture;
use sqlx::SqliteConnection;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;

use super::batch::{write_batch, Written};
use super::index::Index;
use super::outbox;
use crate::store::{ClaimedNotification, NewRecord, Settlement, StoreOptions, WriteOutcome};
use crate::timestamp::now_ms;

/// The commit delay applies only to a batch smaller than this. At saturation
/// the queue already holds more when a commit ends, and waiting would only
/// leave the writer idle (with 64 clients each waiting for its answer, a 1 ms
/// wait took 11-19 % off the saturation rate).
const DELAY_BELOW: usize = 8;

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

/// The handle request handlers use to queue a record for the next commit.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Command>,
}

impl Writer {
    /// Starts the writer thread; it ends when every handle is dropped and the queue is drained.
    /// `db` and `conn` are two connections to the same database, used one after the other.
    /// The thread is named `inquiryd-writer` (in `top -H`, `perf` and `/proc`); the
    /// task returned ends when it does.
    pub fn spawn(
        db: rusqlite::Connection,
        conn: SqliteConnection,
        index: Index,
        options: StoreOptions,
        outbox: Arc<Notify>,
    ) -> std::io::Result<(Self, JoinHandle<()>)> {
        let (tx, rx) = mpsc::channel(options.batch_max * 4);
        let runtime = Handle::current();
        db.set_prepared_statement_cache_capacity(64);
        let task = WriterTask { db, conn, index, rx, options, outbox, runtime };
        Ok((Self { tx }, spawn_named("inquiryd-writer", move || task.run())?))
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
    /// Submissions and outbox bookkeeping.
    db: rusqlite::Connection,
    /// Every other write ([`Writer::exec`]).
    conn: SqliteConnection,
    /// Where each commit's search documents go.
    index: Index,
    rx: mpsc::Receiver<Command>,
    options: StoreOptions,
    outbox: Arc<Notify>,
    runtime: Handle,
}

type OutboxJob = (OutboxOp, oneshot::Sender<Result<OutboxReply, StoreUnavailable>>);

impl WriterTask {
    fn run(mut self) {
        // When the last batch ended: a commit delay only applies under load.
        let mut last = Instant::now();
        let delay = self.options.commit_delay;
        while let Some(first) = self.rx.blocking_recv() {
            let mut commands = vec![first];
            self.gather(&mut commands);
            if !delay.is_zero()
                && self.options.group_commit
                && commands.len() < DELAY_BELOW
                && last.elapsed() < delay * 4
            {
                std::thread::sleep(delay);
                self.gather(&mut commands);
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
                self.process(jobs, ops);
            }
            for exec in execs {
                self.runtime.block_on(exec(&mut self.conn));
            }
            last = Instant::now();
        }
        tracing::debug!("writer stopped");
    }

    /// Adds whatever else is queued, up to a batch.
    fn gather(&mut self, commands: &mut Vec<Command>) {
        while self.options.group_commit && commands.len() < self.options.batch_max {
            match self.rx.try_recv() {
                Ok(command) => commands.push(command),
                Err(_) => break,
            }
        }
    }

    fn process(&mut self, mut jobs: Vec<Job>, ops: Vec<OutboxJob>) {
        // Moved to the indexer once committed, not copied.
        let mut documents: Vec<Option<String>> = jobs.iter_mut().map(|j| j.record.search_document.take()).collect();
        let records: Vec<&NewRecord> = jobs.iter().map(|j| &j.record).collect();
        let (op_list, op_replies): (Vec<OutboxOp>, Vec<_>) = ops.into_iter().unzip();
        let (outcomes, op_results): (_, Vec<Result<OutboxReply, StoreUnavailable>>) =
            match self.commit(&records, &mut documents, op_list) {
                Ok((outcomes, replies)) => (outcomes, replies.into_iter().map(Ok).collect()),
                Err(error) => {
                    let failed_ops = op_replies.iter().map(|_| Err(StoreUnavailable)).collect();
                    (self.recover(&records, &mut documents, error), failed_ops)
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
    fn recover(
        &mut self,
        records: &[&NewRecord],
        documents: &mut [Option<String>],
        error: rusqlite::Error,
    ) -> Vec<WriteOutcome> {
        if is_transient(&error) {
            tracing::warn!(%error, batch = records.len(), "storage unavailable; batch not written");
            return vec![WriteOutcome::Unavailable; records.len()];
        }
        tracing::error!(%error, batch = records.len(), "commit failed; retrying records one by one");
        let mut outcomes = Vec::with_capacity(records.len());
        for (record, document) in records.iter().zip(documents.chunks_mut(1)) {
            outcomes.push(match self.commit(&[record], document, Vec::new()) {
                Ok((mut one, _)) => one.remove(0),
                Err(e) if is_transient(&e) => WriteOutcome::Unavailable,
                Err(e) => {
                    tracing::error!(error = %e, "record could not be written");
                    WriteOutcome::Failed
                }
            });
        }
        outcomes
    }

    /// `documents[i]` is the search document of `records[i]`, handed to the
    /// indexer once that record is committed.
    fn commit(
        &mut self,
        records: &[&NewRecord],
        documents: &mut [Option<String>],
        ops: Vec<OutboxOp>,
    ) -> Result<(Vec<WriteOutcome>, Vec<OutboxReply>), rusqlite::Error> {
        let started = Instant::now();
        self.db.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        let written = self.write_all(records, ops);
        let committing = Instant::now();
        let written = written.and_then(|w| self.db.prepare_cached("COMMIT")?.execute([]).map(|_| w));
        metrics::histogram!("inquiryd_store_transaction_seconds", "phase" => "write")
            .record((committing - started).as_secs_f64());
        metrics::histogram!("inquiryd_store_transaction_seconds", "phase" => "commit")
            .record(committing.elapsed().as_secs_f64());
        match written {
            Ok((Written { outcomes, notifications, inserted }, replies)) => {
                // Before the answers: a search made after one waits for these.
                let rows = inserted.iter().filter_map(|&(i, seq)| Some((seq, documents[i].take()?))).collect();
                self.index.add(rows);
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
                // Fails harmlessly when SQLite already rolled back (e.g. a full disk).
                let _ = self.db.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    fn write_all(
        &mut self,
        records: &[&NewRecord],
        ops: Vec<OutboxOp>,
    ) -> Result<(Written, Vec<OutboxReply>), rusqlite::Error> {
        let written =
            if records.is_empty() { Written::default() } else { write_batch(&self.db, records, &self.options)? };
        let now = now_ms();
        let mut replies = Vec::with_capacity(ops.len());
        for op in ops {
            replies.push(match op {
                OutboxOp::Claim { limit, lease_ms } => {
                    OutboxReply::Claimed(outbox::claim(&self.db, now, lease_ms, limit)?)
                }
                OutboxOp::Settle(settlements) => {
                    outbox::settle(&self.db, &settlements, now)?;
                    OutboxReply::Done
                }
                OutboxOp::Release(ids) => {
                    outbox::release(&self.db, &ids)?;
                    OutboxReply::Done
                }
                OutboxOp::ResetInFlight => {
                    let reset = outbox::reset_in_flight(&self.db)?;
                    if reset > 0 {
                        tracing::info!(reset, "notifications in flight at the last stop are due again");
                    }
                    OutboxReply::Done
                }
            });
        }
        Ok((written, replies))
    }
}

/// Runs `work` on a thread of its own called `name`; the task returned ends
/// when it does. A panic on the thread resumes in the task, so that whoever
/// awaits it learns that the work failed, as with a blocking task of tokio's.
pub(super) fn spawn_named(name: &str, work: impl FnOnce() + Send + 'static) -> std::io::Result<JoinHandle<()>> {
    let (done, finished) = oneshot::channel();
    std::thread::Builder::new().name(name.to_owned()).spawn(move || {
        let _ = done.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)));
    })?;
    Ok(tokio::spawn(async move {
        if let Ok(Err(panic)) = finished.await {
            std::panic::resume_unwind(panic);
        }
    }))
}

/// Busy, locked, full or failing storage: the write may succeed later.
fn is_transient(error: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode::{CannotOpen, DatabaseBusy, DatabaseLocked, DiskFull, SystemIoFailure};
    matches!(error.sqlite_error_code(), Some(DatabaseBusy | DatabaseLocked | SystemIoFailure | DiskFull | CannotOpen))
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

#[cfg(test)]
mod tests {
    use super::spawn_named;

    #[tokio::test]
    async fn a_named_thread_ends_its_task_and_a_panic_on_it_fails_the_task() {
        let (tx, rx) = std::sync::mpsc::channel();
        let task = spawn_named("inquiryd-test", move || {
            tx.send(std::thread::current().name().map(str::to_owned)).unwrap();
        })
        .unwrap();
        task.await.expect("a thread that returns ends its task cleanly");
        assert_eq!(rx.recv().unwrap().as_deref(), Some("inquiryd-test"));

        let failed = spawn_named("inquiryd-test", || panic!("writer bug")).unwrap().await.unwrap_err();
        assert!(failed.is_panic(), "{failed}");
        let message = failed.into_panic();
        assert_eq!(message.downcast_ref::<&str>(), Some(&"writer bug"));
    }
}
