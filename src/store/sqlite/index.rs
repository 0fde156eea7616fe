//! The search index, in a file of its own (`<database>-search`, with its own
//! WAL) written by a thread of its own (`inquiryd-search`), so that indexing
//! never holds the database's write lock: submissions commit without FTS5's
//! flushes and segment merges, which made 1 % of their commits take 5–30 ms.
//!
//! - The writer hands each batch's documents over right after its commit and
//!   before it answers; the indexer gathers them for up to [`BATCH_WAIT`] and
//!   indexes them in one transaction, with the highest `seq` indexed (the
//!   watermark) in the same transaction.
//! - A search first waits until every row handed over is indexed (it cuts the
//!   gathering short), so a row is found as soon as its 201 is sent.
//! - A crash loses at most what was handed over and not yet committed here;
//!   at the next start every row above the watermark is indexed again from
//!   the inquiries, before the service answers. So does a start with
//!   `search_index` switched back on, or a failed index transaction (then from
//!   this thread, retried every second).
//! - Erasure removes a row's terms here first (the table is contentless: the
//!   `delete` command is given the document again, recomputed from the row),
//!   noting the rows being erased in the same transaction (a row noted is not
//!   indexed, should it come later); then the inquiry is deleted in the
//!   database. When that did not happen (a failed transaction, a crash in
//!   between), the rows still there are indexed again: after the erasure,
//!   before the next one and at every start. Erasures hold the database's
//!   write lock throughout, so one by `inquiryd inquiries erase` or `purge`
//!   while the server runs takes turns with the server's.
//! - A database restored from a backup, or a search file from another
//!   database, is told by the epoch both keep (`inquiryd backup` gives its copy
//!   a new one): the index is then rebuilt.
//! - The watermark needs a `seq` never to be given twice, which SQLite would
//!   do after an erasure of the newest inquiries; `batch::seq_floor` prevents it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{params, OptionalExtension};
use sqlx::SqlitePool;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::tokenizer;
use crate::store::model::INQUIRY_COLUMNS;
use crate::store::search::document_of;
use crate::store::{InquiryRecord, StoreError};

/// How long documents are gathered before they are indexed in one
/// transaction. Measured at 1,750 submissions/s (`bench/ab.py`, every staff
/// email delivered): 20 ms and 100 ms gave about the same p99 (7.2–8.9 ms);
/// one transaction per batch of the writer's (~4 documents) cost 513 µs per
/// submission against 443 µs with the index in the writer's transaction;
/// 100 ms, 397 µs against 414 µs.
const BATCH_WAIT: Duration = Duration::from_millis(50);

/// A search never waits longer than this for the index to catch up (it does
/// not, unless indexing is failing); it then answers from what is indexed.
const SEARCH_WAIT: Duration = Duration::from_secs(1);

/// Rows read back from the inquiries per transaction when catching up.
const CATCH_UP_CHUNK: i64 = 2000;

const INSERT: &str = "INSERT INTO inquiries_fts (rowid, body) VALUES (?1, ?2)";
const DELETE: &str = "INSERT INTO inquiries_fts (inquiries_fts, rowid, body) VALUES ('delete', ?1, ?2)";
const SET_META: &str = "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)";

/// The search file next to the database file.
pub fn path_for(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push("-search");
    PathBuf::from(name)
}

enum Op {
    /// Committed rows, `(seq, document)`, in `seq` order.
    Add(Vec<(i64, String)>),
    /// Index what was gathered now (a search is waiting).
    Flush,
    /// Before an erasure: remove these rows' terms; answers once committed
    /// and the WAL emptied.
    Remove(Vec<(i64, String)>, oneshot::Sender<Result<Vec<i64>, String>>),
    /// After an erasure of these rows, committed or not: index again those
    /// the database still holds, unless a later erasure has settled them.
    Settle(Vec<i64>, oneshot::Sender<()>),
    /// At start: index every row above the watermark (when `enabled`).
    CatchUp { enabled: bool, reply: oneshot::Sender<Result<(), String>> },
}

struct Progress {
    /// The highest `seq` handed over by the writer.
    handed: AtomicI64,
    /// The watermark: every row up to it is indexed.
    indexed: watch::Sender<i64>,
    /// `database.search_index`: whether searches wait for new rows.
    enabled: AtomicBool,
    /// The indexer's thread, woken for anything but `Add`.
    thread: std::sync::OnceLock<std::thread::Thread>,
}

/// The handle: the writer hands rows over, erasure removes them, searches wait.
#[derive(Clone)]
pub struct Index {
    tx: mpsc::Sender<Op>,
    progress: Arc<Progress>,
}

impl Index {
    /// Starts the thread that writes the search file `db` ([`open_file`]).
    /// `epoch` and `newest` are the database's: its search epoch and its
    /// highest `seq` now, up to which [`Index::catch_up`] indexes. The task
    /// returned ends when the thread does: once every handle is dropped and
    /// what was handed over is indexed.
    pub fn spawn(
        db: rusqlite::Connection,
        epoch: &str,
        newest: i64,
        reads: SqlitePool,
    ) -> Result<(Self, JoinHandle<()>), StoreError> {
        let indexed = agree(&db, epoch).map_err(StoreError::OpenWriter)?;
        let (tx, rx) = mpsc::channel(1024);
        let progress = Arc::new(Progress {
            handed: AtomicI64::new(indexed),
            indexed: watch::Sender::new(indexed),
            enabled: AtomicBool::new(false),
            thread: std::sync::OnceLock::new(),
        });
        let task = Indexer {
            db,
            reads,
            runtime: Handle::current(),
            progress: progress.clone(),
            indexed,
            newest,
            behind: false,
        };
        let thread = super::writer::spawn_named("inquiryd-search", move || task.run(rx)).map_err(StoreError::Thread)?;
        Ok((Self { tx, progress }, thread))
    }

    /// From the writer thread, after a commit and before its answers: `rows`
    /// are committed and will be indexed shortly.
    pub fn add(&self, rows: Vec<(i64, String)>) {
        if let Some((seq, _)) = rows.last() {
            self.progress.handed.fetch_max(*seq, Ordering::Release);
            if self.tx.blocking_send(Op::Add(rows)).is_err() {
                tracing::warn!("the search indexer has stopped; rows are indexed at the next start");
            }
        }
    }

    /// Removes rows' terms before they are erased (`(seq, document)`); returns
    /// the rows noted as being erased, for [`Index::settle`].
    pub async fn remove(&self, rows: Vec<(i64, String)>) -> Result<Vec<i64>, sqlx::Error> {
        let (reply, answer) = oneshot::channel();
        let stopped = || sqlx::Error::Io(std::io::Error::other("the search indexer has stopped"));
        self.send(Op::Remove(rows, reply)).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?.map_err(|why| sqlx::Error::Io(std::io::Error::other(why)))
    }

    /// After an erasure, whether or not it was committed: `seqs` are what
    /// [`Index::remove`] noted. Returns once the rows left are indexed again.
    pub async fn settle(&self, seqs: Vec<i64>) {
        let (reply, done) = oneshot::channel();
        if self.send(Op::Settle(seqs, reply)).await.is_ok() {
            let _ = done.await;
        }
    }

    /// At start: settles an erasure a crash interrupted and, when `enabled`,
    /// indexes every row above the watermark; returns when done.
    pub async fn catch_up(&self, enabled: bool) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        let failed = |why: String| StoreError::Query(sqlx::Error::Io(std::io::Error::other(why)));
        self.send(Op::CatchUp { enabled, reply }).await.map_err(|_| StoreError::Unavailable)?;
        answer.await.map_err(|_| StoreError::Unavailable)?.map_err(failed)?;
        self.progress.enabled.store(enabled, Ordering::Release);
        Ok(())
    }

    /// Sends anything but `Add`, and wakes the indexer if it is gathering.
    async fn send(&self, op: Op) -> Result<(), mpsc::error::SendError<Op>> {
        self.tx.send(op).await?;
        self.wake();
        Ok(())
    }

    fn wake(&self) {
        if let Some(thread) = self.progress.thread.get() {
            thread.unpark();
        }
    }

    /// Before a search: waits until every row handed over so far is indexed.
    pub async fn caught_up(&self) {
        if !self.progress.enabled.load(Ordering::Acquire) {
            return;
        }
        let target = self.progress.handed.load(Ordering::Acquire);
        let mut indexed = self.progress.indexed.subscribe();
        if *indexed.borrow() >= target {
            return;
        }
        if self.tx.try_send(Op::Flush).is_ok() {
            self.wake();
        }
        if tokio::time::timeout(SEARCH_WAIT, indexed.wait_for(|&seq| seq >= target)).await.is_err() {
            tracing::warn!("a search answered from an index that is behind");
        }
    }
}

/// Creates the search file, or opens it, with its schema.
pub fn open_file(path: &Path) -> Result<rusqlite::Connection, rusqlite::Error> {
    let db = rusqlite::Connection::open(path)?;
    // The page size only applies to a new file, before it is in WAL mode. Only
    // this index is here and it can be rebuilt, so a commit is not synced (the
    // WAL still is at each checkpoint): a crash loses at most the last few
    // transactions, and the watermark with them.
    db.execute_batch(
        "PRAGMA page_size = 8192; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA secure_delete = ON;",
    )?;
    if let Err(error) = tokenizer::register(&db) {
        tracing::warn!(%error, "the search index keeps SQLite's own tokenizer");
    }
    // Contentless: the indexed text is the inquiry's, with every CJK character
    // spaced out (see `store::search`). Secure-delete removes an erased row's
    // terms at once instead of leaving them behind delete markers.
    db.execute_batch(
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
         CREATE VIRTUAL TABLE IF NOT EXISTS inquiries_fts USING fts5 (
             body, content = '', tokenize = 'unicode61 remove_diacritics 2');
         INSERT INTO inquiries_fts (inquiries_fts, rank) VALUES ('secure-delete', 1);",
    )?;
    Ok(db)
}

fn meta(db: &rusqlite::Connection, key: &str) -> Result<Option<String>, rusqlite::Error> {
    db.prepare_cached("SELECT value FROM meta WHERE key = ?1")?.query_row([key], |row| row.get(0)).optional()
}

/// Every row up to it is indexed.
fn watermark(db: &rusqlite::Connection) -> Result<i64, rusqlite::Error> {
    Ok(meta(db, "indexed")?.and_then(|v| v.parse().ok()).unwrap_or(0))
}

/// The rows an erasure in progress (or interrupted) noted: never indexed until settled.
fn erasing(db: &rusqlite::Connection) -> Result<HashSet<i64>, rusqlite::Error> {
    Ok(meta(db, "erasing")?.map(|v| v.split(',').filter_map(|s| s.parse().ok()).collect()).unwrap_or_default())
}

/// The watermark, after emptying the index when it is not this database's.
/// (Not from the watermark against the newest row: a command run beside the
/// server reads the two at different moments.)
fn agree(db: &rusqlite::Connection, epoch: &str) -> Result<i64, rusqlite::Error> {
    let indexed = watermark(db)?;
    if meta(db, "epoch")?.as_deref() == Some(epoch) {
        return Ok(indexed);
    }
    if indexed > 0 {
        tracing::info!("the search index belongs to another copy of the database; rebuilding it");
    }
    let tx = db.unchecked_transaction()?;
    tx.execute("INSERT INTO inquiries_fts (inquiries_fts) VALUES ('delete-all')", [])?;
    tx.execute("DELETE FROM meta", [])?;
    tx.execute(SET_META, params!["epoch", epoch])?;
    tx.execute(SET_META, params!["indexed", "0"])?;
    tx.commit()?;
    Ok(0)
}

struct Indexer {
    db: rusqlite::Connection,
    reads: SqlitePool,
    runtime: Handle,
    progress: Arc<Progress>,
    /// The watermark as committed here.
    indexed: i64,
    /// The database's highest `seq` when it was opened.
    newest: i64,
    /// An index transaction failed: rows above the watermark are read back
    /// from the database instead.
    behind: bool,
}

impl Indexer {
    fn run(mut self, mut rx: mpsc::Receiver<Op>) {
        let _ = self.progress.thread.set(std::thread::current());
        // The timeout below is made outside `block_on`: it needs the runtime's timer.
        let runtime = self.runtime.clone();
        let _context = runtime.enter();
        loop {
            let first = if self.behind {
                match self.runtime.block_on(tokio::time::timeout(Duration::from_secs(1), rx.recv())) {
                    Ok(op) => op,
                    Err(_) => {
                        let handed = self.progress.handed.load(Ordering::Acquire);
                        self.catch_up_to(handed);
                        continue;
                    }
                }
            } else {
                rx.blocking_recv()
            };
            let Some(first) = first else { break };
            let gather = matches!(first, Op::Add(_));
            let mut ops = vec![first];
            if gather {
                self.gather(&mut rx, &mut ops);
            }
            let mut rows = Vec::new();
            for op in ops {
                match op {
                    Op::Add(more) => rows.extend(more),
                    Op::Flush => {}
                    Op::Remove(removed, reply) => {
                        self.add(std::mem::take(&mut rows));
                        let _ = reply.send(self.remove(&removed).map_err(|e| format!("{e:#}")));
                    }
                    Op::Settle(seqs, reply) => {
                        self.add(std::mem::take(&mut rows));
                        if let Err(error) = self.settle(Some(&seqs)) {
                            tracing::warn!(error = format!("{error:#}"), "cannot index again the rows an erasure left");
                        }
                        let _ = reply.send(());
                    }
                    Op::CatchUp { enabled, reply } => {
                        self.add(std::mem::take(&mut rows));
                        let _ = reply.send(self.start(enabled).map_err(|e| format!("{e:#}")));
                    }
                }
            }
            self.add(rows);
        }
        tracing::debug!("search indexer stopped");
    }

    /// Sleeps out [`BATCH_WAIT`], unless another operation than `Add` comes
    /// (its sender wakes this thread), then takes everything queued: no
    /// wake-up per batch of the writer's (a build that waited for each with a
    /// timer measured 440 → 478 µs per submission at 1,750/s, one round).
    fn gather(&self, rx: &mut mpsc::Receiver<Op>, ops: &mut Vec<Op>) {
        let deadline = std::time::Instant::now() + BATCH_WAIT;
        loop {
            while let Ok(op) = rx.try_recv() {
                let control = !matches!(op, Op::Add(_));
                ops.push(op);
                if control {
                    return;
                }
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return;
            }
            std::thread::park_timeout(deadline - now);
        }
    }

    /// Indexes `rows` (`(seq, document)`, in `seq` order) and moves the
    /// watermark to `indexed`, in one transaction. Left out: the rows noted as
    /// being erased, and those the database no longer holds, both read once
    /// this transaction holds the search file's write lock. An erasure by
    /// another process can note, delete and settle (un-note) a row this thread
    /// holds in the meantime, but its settling needs that lock and comes after
    /// its deletion: whatever this transaction reads, it does not index the
    /// row. (Before the second check, `inquiryd purge` beside a busy server
    /// left ~60 of 300 erased rows in the search file.)
    fn index(&mut self, indexed: i64, rows: &[(i64, String)]) -> anyhow::Result<()> {
        // A connection to the database first: the lock is never held while
        // waiting for one (exports can hold every one for a while).
        let reader = if rows.is_empty() { None } else { Some(self.runtime.block_on(self.reads.acquire())?) };
        let tx = self.begin()?;
        if let (Some(mut reader), Some(&(first, _)), Some(&(last, _))) = (reader, rows.first(), rows.last()) {
            let erasing = erasing(&tx)?;
            let present: HashSet<i64> = self
                .runtime
                .block_on(
                    sqlx::query_scalar("SELECT seq FROM inquiries WHERE seq BETWEEN ? AND ?")
                        .bind(first)
                        .bind(last)
                        .fetch_all(&mut *reader),
                )?
                .into_iter()
                .collect();
            drop(reader);
            let mut insert = tx.prepare_cached(INSERT)?;
            for (seq, document) in rows.iter().filter(|(seq, _)| present.contains(seq) && !erasing.contains(seq)) {
                insert.execute(params![seq, document])?;
            }
        }
        if indexed != self.indexed {
            tx.prepare_cached(SET_META)?.execute(params!["indexed", indexed.to_string()])?;
        }
        tx.commit()?;
        self.indexed = indexed;
        self.progress.indexed.send_replace(indexed);
        Ok(())
    }

    fn add(&mut self, rows: Vec<(i64, String)>) {
        let Some(&(last, _)) = rows.last() else { return };
        if self.behind {
            return self.catch_up_to(last);
        }
        if let Err(error) = self.index(last, &rows) {
            let error = format!("{error:#}");
            tracing::warn!(error, rows = rows.len(), "search index transaction failed; catching up from the database");
            self.behind = true;
        }
    }

    /// Reads the rows above the watermark up to `upto` back from the database
    /// and indexes them; `behind` until it has.
    fn catch_up_to(&mut self, upto: i64) {
        self.behind = true;
        loop {
            if self.indexed >= upto {
                self.behind = false;
                return;
            }
            let after = self.indexed;
            let read = self.runtime.block_on(
                sqlx::query_as::<_, InquiryRecord>(&format!(
                    "SELECT {INQUIRY_COLUMNS} FROM inquiries i WHERE i.seq > ? AND i.seq <= ? ORDER BY i.seq LIMIT ?"
                ))
                .bind(after)
                .bind(upto)
                .bind(CATCH_UP_CHUNK)
                .fetch_all(&self.reads),
            );
            let rows = match read {
                Ok(rows) => rows,
                Err(error) => {
                    tracing::warn!(%error, "cannot read inquiries to index");
                    return;
                }
            };
            let last = if rows.len() < CATCH_UP_CHUNK as usize { upto } else { rows.last().map_or(upto, |r| r.seq) };
            let rows: Vec<(i64, String)> = rows.iter().map(|row| (row.seq, document_of(row))).collect();
            if let Err(error) = self.index(last, &rows) {
                let error = format!("{error:#}");
                tracing::warn!(error, "search index transaction failed while catching up");
                return;
            }
        }
    }

    fn start(&mut self, enabled: bool) -> anyhow::Result<()> {
        self.settle(None)?;
        if enabled && self.indexed < self.newest {
            tracing::info!(from = self.indexed, to = self.newest, "indexing inquiries for search");
            self.catch_up_to(self.newest);
            if self.behind {
                anyhow::bail!("the search index could not catch up");
            }
        }
        Ok(())
    }

    /// Removes the terms of the indexed rows among `rows` and notes all of
    /// them as being erased: a row not indexed yet (the server's indexer may
    /// hold it while a command-line erasure runs) is then never indexed. The
    /// erasure before, if any, has ended by now (erasures hold the database's
    /// write lock throughout), so it is settled first.
    fn remove(&mut self, rows: &[(i64, String)]) -> anyhow::Result<Vec<i64>> {
        self.settle(None)?;
        let noted: Vec<i64> = rows.iter().map(|(seq, _)| *seq).collect();
        let tx = self.begin()?;
        // The file's watermark, not this process's: another process may own the index.
        let indexed = watermark(&tx)?;
        {
            let mut delete = tx.prepare_cached(DELETE)?;
            for (seq, document) in rows.iter().filter(|(seq, _)| *seq <= indexed) {
                delete.execute(params![seq, document])?;
            }
        }
        let listed: Vec<String> = noted.iter().map(i64::to_string).collect();
        tx.prepare_cached(SET_META)?.execute(params!["erasing", listed.join(",")])?;
        tx.commit()?;
        self.truncate_wal();
        Ok(noted)
    }

    /// Indexes the rows noted as being erased that the database still holds
    /// (none, once the erasure has committed); with `only`, when those are
    /// the rows noted. A row noted either was not indexed or had its terms
    /// removed, and stays so until this. Rows above the file's watermark are
    /// left to whoever indexes up to them.
    fn settle(&mut self, only: Option<&[i64]>) -> anyhow::Result<()> {
        let noted = erasing(&self.db)?;
        if meta(&self.db, "erasing")?.is_none()
            || only.is_some_and(|only| only.iter().copied().collect::<HashSet<i64>>() != noted)
        {
            return Ok(());
        }
        let seqs: Vec<i64> = noted.iter().copied().collect();
        let mut kept = Vec::new();
        for chunk in seqs.chunks(500) {
            let mut query = sqlx::QueryBuilder::<sqlx::Sqlite>::new(format!(
                "SELECT {INQUIRY_COLUMNS} FROM inquiries i WHERE i.seq IN ("
            ));
            let mut list = query.separated(", ");
            chunk.iter().for_each(|seq| {
                list.push_bind(*seq);
            });
            query.push(")");
            let rows: Vec<InquiryRecord> = self.runtime.block_on(query.build_query_as().fetch_all(&self.reads))?;
            kept.extend(rows);
        }
        let tx = self.begin()?;
        if erasing(&tx)? != noted {
            // Another process's erasure came in between; it settles its own.
            return Ok(());
        }
        let indexed = watermark(&tx)?;
        kept.retain(|row| row.seq <= indexed);
        {
            let mut insert = tx.prepare_cached(INSERT)?;
            for row in &kept {
                insert.execute(params![row.seq, document_of(row)])?;
            }
        }
        tx.execute("DELETE FROM meta WHERE key = 'erasing'", [])?;
        tx.commit()?;
        if !kept.is_empty() {
            tracing::info!(rows = kept.len(), "rows an erasure did not delete are indexed again");
        }
        Ok(())
    }

    /// A write transaction, begun at once (a transaction that reads first and
    /// writes later could find another process's commit in between).
    fn begin(&self) -> Result<rusqlite::Transaction<'_>, rusqlite::Error> {
        rusqlite::Transaction::new_unchecked(&self.db, rusqlite::TransactionBehavior::Immediate)
    }

    /// Empties the WAL, so that no page from before an erasure survives there.
    /// A search in the middle of a query blocks it; it is retried for up to a second.
    fn truncate_wal(&self) {
        for _ in 0..20 {
            match self.db.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get::<_, i64>(0)) {
                Ok(0) => return,
                Ok(_) => std::thread::sleep(Duration::from_millis(50)),
                Err(error) => {
                    tracing::warn!(%error, "search index WAL checkpoint after erasure failed");
                    return;
                }
            }
        }
        tracing::warn!("search index WAL checkpoint after erasure kept being blocked by searches");
    }
}
