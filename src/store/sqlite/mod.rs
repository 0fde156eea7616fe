//! The SQLite backend: one writer thread owns every write (submissions and
//! outbox bookkeeping through rusqlite, committed in groups; everything else
//! through sqlx, between batches); the search index is in a file of its own,
//! written by a thread of its own ([`index`]); reads use a pool over the
//! database with the search file attached.

mod admin;
mod batch;
mod console;
mod export;
mod index;
mod inquiries;
mod outbox;
mod search;
mod tokenizer;
mod tokens;
mod webhooks;
mod writer;

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, SqliteConnection};

use crate::config::{DatabaseSettings, Synchronous};

pub use search::match_query;

use std::sync::Arc;

use bytes::Bytes;
use serde_json::json;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;
use writer::{OutboxOp, OutboxReply, Writer};

impl From<writer::StoreUnavailable> for StoreError {
    fn from(_: writer::StoreUnavailable) -> Self {
        StoreError::Unavailable
    }
}

use super::{
    AuditEntry, ClaimedNotification, Erase, InquiryRecord, NewRecord, NotificationView, Receipt, Requeue, Scope,
    Settlement, StoreError, StoreOptions, TokenInfo, WriteOutcome,
};
use crate::domain::{ExportFormat, InquiryFilter, InquiryStatus, Page};
use crate::store::model::{erased_ids, update_detail};
use crate::store::webhooks::{ClaimedWebhook, DeliveryView, WebhookPlan};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

pub fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => {
            // SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN (and extended codes).
            let primary = db.code().and_then(|c| c.parse::<i32>().ok()).map(|c| c & 0xff);
            matches!(primary, Some(5 | 6 | 10 | 13 | 14))
        }
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => true,
        _ => false,
    }
}

/// Page size of a new database file (an existing one keeps its own): a 1–5 KB
/// message fits one page instead of spilling into overflow pages.
const PAGE_SIZE: u32 = 8192;

fn connect_options(settings: &DatabaseSettings) -> Result<SqliteConnectOptions, StoreError> {
    let synchronous = match settings.synchronous {
        Synchronous::Full => SqliteSynchronous::Full,
        Synchronous::Normal => SqliteSynchronous::Normal,
    };
    Ok(SqliteConnectOptions::from_str(&settings.url)
        .map_err(StoreError::Url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(synchronous)
        .foreign_keys(true)
        .busy_timeout(Duration::from_millis(settings.busy_timeout_ms))
        // Erased personal data is overwritten, not left in free pages.
        .pragma("secure_delete", "on")
        .page_size(PAGE_SIZE))
}

fn ensure_directory(options: &SqliteConnectOptions) -> Result<(), StoreError> {
    let path = options.get_filename();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Directory(dir.to_owned(), e))?;
    }
    Ok(())
}

/// Opens the single write connection; creates the file (and its directory) if missing.
async fn open_writer(settings: &DatabaseSettings) -> Result<SqliteConnection, StoreError> {
    let options = connect_options(settings)?;
    ensure_directory(&options)?;
    SqliteConnection::connect_with(&options).await.map_err(StoreError::Open)
}

/// Opens the writer's second connection, for submissions and the outbox, with
/// the same settings as [`open_writer`]. Call it after `open_writer` (which
/// creates the file and turns on WAL).
fn open_hot_writer(settings: &DatabaseSettings) -> Result<rusqlite::Connection, StoreError> {
    let path = connect_options(settings)?.get_filename().to_owned();
    let db = rusqlite::Connection::open(path).map_err(StoreError::OpenWriter)?;
    db.busy_timeout(Duration::from_millis(settings.busy_timeout_ms)).map_err(StoreError::OpenWriter)?;
    let synchronous = match settings.synchronous {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    };
    db.execute_batch(&format!(
        "PRAGMA synchronous = {synchronous}; PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;"
    ))
    .map_err(StoreError::OpenWriter)?;
    Ok(db)
}

/// Opens the read pool over the same file, with the search file attached (as
/// `search`: its `inquiries_fts` is found by that name alone).
async fn open_reads(settings: &DatabaseSettings) -> Result<SqlitePool, StoreError> {
    let options = connect_options(settings)?.read_only(true);
    let search = index::path_for(options.get_filename()).to_string_lossy().into_owned();
    SqlitePoolOptions::new()
        .max_connections(settings.read_pool_size)
        .acquire_timeout(Duration::from_secs(5))
        .after_connect(move |conn, _| {
            let search = search.clone();
            Box::pin(async move {
                sqlx::query("ATTACH DATABASE ? AS search").bind(search).execute(conn).await?;
                Ok(())
            })
        })
        .connect_with(options)
        .await
        .map_err(StoreError::Open)
}

/// Applies pending migrations; safe to run again.
async fn migrate(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    MIGRATOR.run(&mut *conn).await.map_err(|e| StoreError::migration(e, &MIGRATOR))?;
    normalize_stored_emails(conn).await.map_err(StoreError::Query)?;
    Ok(())
}

/// The Rust half of migration 0005 (SQLite cannot do IDNA): recomputes the normal
/// form of every stored address whose normal form is not ASCII, then removes the
/// migration's mark. Runs once; a crash midway leaves the mark, and it runs again.
async fn normalize_stored_emails(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    let mark: Option<String> =
        sqlx::query_scalar("SELECT value FROM meta WHERE key = 'email_norm'").fetch_optional(&mut *conn).await?;
    if mark.is_none() {
        return Ok(());
    }
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let rows: Vec<(i64, String)> =
        sqlx::query_as("SELECT seq, email FROM inquiries WHERE email_norm GLOB '*[^ -~]*'").fetch_all(&mut *tx).await?;
    for (seq, email) in &rows {
        sqlx::query("UPDATE inquiries SET email_norm = ? WHERE seq = ?")
            .bind(crate::domain::normalize_email(email))
            .bind(seq)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query("DELETE FROM meta WHERE key = 'email_norm'").execute(&mut *tx).await?;
    tx.commit().await?;
    if !rows.is_empty() {
        tracing::info!(rows = rows.len(), "stored email addresses normalised to their ASCII (IDNA) form");
    }
    Ok(())
}

/// Opens the database, applies migrations and closes it: `inquiryd migrate`.
pub async fn migrate_database(settings: &DatabaseSettings) -> Result<(), StoreError> {
    let mut conn = open_writer(settings).await?;
    migrate(&mut conn).await?;
    conn.close().await.map_err(StoreError::Open)
}

/// The readiness checks: the database answers and every migration is applied.
async fn readiness(reads: &SqlitePool) -> (bool, bool) {
    let answers = sqlx::query_scalar::<_, i64>("SELECT 1").fetch_one(reads).await.is_ok();
    let latest = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    let applied =
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM _sqlx_migrations WHERE success = 1 AND version = ?")
            .bind(latest)
            .fetch_one(reads)
            .await
            .is_ok_and(|n| n == 1);
    (answers, applied)
}

/// Writes a consistent copy of the live database to `target` (`VACUUM INTO`:
/// one read transaction, so writers carry on), then checks the copy and returns
/// how many inquiries it holds.
pub async fn backup(settings: &DatabaseSettings, target: &std::path::Path) -> Result<i64, StoreError> {
    if target.exists() {
        return Err(StoreError::BackupExists(target.to_owned()));
    }
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Directory(dir.to_owned(), e))?;
    }
    let mut conn = open_writer(settings).await?;
    sqlx::query("VACUUM INTO ?").bind(target.to_string_lossy().into_owned()).execute(&mut conn).await?;
    conn.close().await.map_err(StoreError::Open)?;
    let copy = SqliteConnectOptions::new().filename(target);
    let mut copy = SqliteConnection::connect_with(&copy).await.map_err(StoreError::Open)?;
    // The copy holds no search index; restored, it builds its own instead of
    // trusting the search file of the database it replaces.
    sqlx::query("UPDATE meta SET value = lower(hex(randomblob(16))) WHERE key = 'search_epoch'")
        .execute(&mut copy)
        .await?;
    let check: String = sqlx::query_scalar("PRAGMA integrity_check").fetch_one(&mut copy).await?;
    if check != "ok" {
        return Err(StoreError::BackupCorrupt(check));
    }
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM inquiries").fetch_one(&mut copy).await?)
}

/// The SQLite database: the writer thread's handle and the read pool.
#[derive(Clone)]
pub struct Sqlite {
    writer: Writer,
    index: index::Index,
    reads: SqlitePool,
    webhooks: Arc<WebhookPlan>,
}

impl Sqlite {
    /// Creates and migrates the file if needed, opens the read pool and starts the writer thread.
    pub async fn open(
        settings: &DatabaseSettings,
        options: StoreOptions,
        outbox: Arc<Notify>,
    ) -> Result<(Self, JoinHandle<()>), StoreError> {
        let mut conn = open_writer(settings).await?;
        migrate(&mut conn).await?;
        let epoch: String =
            sqlx::query_scalar("SELECT value FROM meta WHERE key = 'search_epoch'").fetch_one(&mut conn).await?;
        let newest: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM inquiries").fetch_one(&mut conn).await?;
        let path = connect_options(settings)?.get_filename().to_owned();
        // The search file first: the read pool attaches it.
        let search = index::open_file(&index::path_for(&path)).map_err(StoreError::OpenWriter)?;
        let reads = open_reads(settings).await?;
        let (index, indexer) = index::Index::spawn(search, &epoch, newest, reads.clone())?;
        let hot = open_hot_writer(settings)?;
        let webhooks = options.webhooks.clone();
        let (writer, written) = Writer::spawn(hot, conn, index.clone(), options, outbox).map_err(StoreError::Thread)?;
        // The writer's queue is committed first; its last documents are then
        // indexed before the indexer ends.
        let task = tokio::spawn(async move {
            for ended in [written.await, indexer.await] {
                if let Err(failed) = ended {
                    if failed.is_panic() {
                        std::panic::resume_unwind(failed.into_panic());
                    }
                }
            }
        });
        Ok((Self { writer, index, reads, webhooks }, task))
    }

    /// Indexes what the search index lacks (after an upgrade, a restore, a
    /// crash, or with `search_index` switched back on) before the service answers.
    pub async fn ensure_search_index(&self, enabled: bool) -> Result<(), StoreError> {
        self.index.catch_up(enabled).await
    }

    pub async fn readiness(&self) -> (bool, bool) {
        readiness(&self.reads).await
    }

    pub async fn submit(&self, record: NewRecord) -> WriteOutcome {
        self.writer.write(record).await
    }

    pub async fn idempotent_answer(&self, key: &str) -> Result<Option<([u8; 32], Receipt)>, StoreError> {
        Ok(inquiries::idempotent_answer(&self.reads, key).await?)
    }

    pub async fn claim_due(&self, limit: i64, lease_ms: i64) -> Result<Vec<ClaimedNotification>, StoreError> {
        match self.writer.outbox(OutboxOp::Claim { limit, lease_ms }).await? {
            OutboxReply::Claimed(claimed) => Ok(claimed),
            OutboxReply::Done => Ok(Vec::new()),
        }
    }

    pub async fn extend_lease(&self, ids: Vec<String>, lease_ms: i64) -> Result<(), StoreError> {
        Ok(self
            .writer
            .exec(false, move |c| Box::pin(async move { outbox::extend_lease(c, &ids, lease_ms).await }))
            .await?)
    }

    pub async fn settle(&self, settlements: Vec<Settlement>) -> Result<(), StoreError> {
        self.writer.outbox(OutboxOp::Settle(settlements)).await?;
        Ok(())
    }

    pub async fn release(&self, ids: Vec<String>) -> Result<(), StoreError> {
        self.writer.outbox(OutboxOp::Release(ids)).await?;
        Ok(())
    }

    pub async fn reset_in_flight(&self) -> Result<(), StoreError> {
        self.writer.outbox(OutboxOp::ResetInFlight).await?;
        Ok(())
    }

    pub async fn next_due(&self) -> Result<Option<i64>, StoreError> {
        Ok(outbox::next_due(&self.reads).await?)
    }

    pub async fn backlog(&self) -> Result<(i64, Option<i64>), StoreError> {
        Ok(outbox::backlog(&self.reads).await?)
    }

    pub async fn list(
        &self,
        filter: &InquiryFilter,
        page: Page,
    ) -> Result<(Vec<InquiryRecord>, Option<i64>), StoreError> {
        if filter.q.is_some() {
            self.index.caught_up().await;
        }
        Ok(admin::list(&self.reads, filter, page).await?)
    }

    pub async fn get(&self, id: &str) -> Result<Option<(InquiryRecord, Vec<NotificationView>)>, StoreError> {
        Ok(admin::get(&self.reads, id).await?)
    }

    pub async fn export(
        &self,
        filter: &InquiryFilter,
        format: ExportFormat,
        bom: bool,
        custom: Option<&[String]>,
        out: mpsc::Sender<Bytes>,
    ) -> Result<u64, StoreError> {
        if filter.q.is_some() {
            self.index.caught_up().await;
        }
        Ok(export::export(&self.reads, filter, format, bom, custom, out).await?)
    }

    pub async fn present(&self, ids: &[String]) -> Result<Vec<String>, StoreError> {
        Ok(admin::present(&self.reads, ids).await?)
    }

    pub async fn count_before(&self, cutoff: i64) -> Result<i64, StoreError> {
        Ok(admin::count_before(&self.reads, cutoff).await?)
    }

    pub async fn update_status(
        &self,
        actor: &str,
        id: &str,
        status: InquiryStatus,
        note: Option<Option<String>>,
    ) -> Result<bool, StoreError> {
        let (actor, id, plan) = (actor.to_owned(), id.to_owned(), self.webhooks.clone());
        let (updated, events) = self
            .writer
            .exec(false, move |conn| {
                Box::pin(async move {
                    let note_changed = note.is_some();
                    let previous = admin::update(conn, &id, status, note).await?;
                    let Some(previous) = &previous else { return Ok((false, 0)) };
                    let detail = update_detail(previous, status, note_changed);
                    admin::audit(conn, &actor, "inquiry.update", Some(&id), detail).await?;
                    Ok((true, webhooks::queue_update(conn, &plan, &id).await?))
                })
            })
            .await?;
        self.wake_webhooks(events);
        Ok(updated)
    }

    pub async fn erase(
        &self,
        actor: &str,
        action: &'static str,
        which: Erase,
        detail: serde_json::Value,
    ) -> Result<(Vec<String>, Vec<String>), StoreError> {
        let (actor, plan, index) = (actor.to_owned(), self.webhooks.clone(), self.index.clone());
        let noted = Arc::new(std::sync::Mutex::new(Vec::new()));
        let removed = noted.clone();
        let erased = self
            .writer
            .exec(true, move |conn| {
                Box::pin(async move {
                    let erased = admin::erase(conn, &which, &index, &removed).await?;
                    if let Some((target, detail)) = which.audit(erased.len(), detail) {
                        admin::audit(conn, &actor, action, target, detail).await?;
                    }
                    let events = webhooks::queue_erasure(conn, &plan, &erased).await?;
                    Ok((erased_ids(erased), events))
                })
            })
            .await;
        let noted = std::mem::take(&mut *noted.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        if !noted.is_empty() {
            self.index.settle(noted).await;
        }
        let (ids, events) = erased?;
        self.wake_webhooks(events);
        Ok(ids)
    }

    pub async fn named_files(&self, sha256s: Vec<String>) -> Result<std::collections::HashSet<String>, StoreError> {
        let mut named = std::collections::HashSet::new();
        for chunk in sha256s.chunks(500) {
            let mut query =
                sqlx::QueryBuilder::<sqlx::Sqlite>::new("SELECT DISTINCT sha256 FROM files WHERE sha256 IN (");
            let mut list = query.separated(", ");
            chunk.iter().for_each(|h| {
                list.push_bind(h.clone());
            });
            query.push(")");
            named.extend(query.build_query_scalar::<String>().fetch_all(&self.reads).await?);
        }
        Ok(named)
    }

    pub async fn requeue(&self, actor: &str, id: &str) -> Result<Requeue, StoreError> {
        let (actor, id) = (actor.to_owned(), id.to_owned());
        let outcome = self
            .writer
            .exec(false, move |conn| {
                Box::pin(async move {
                    let mut outcome = admin::requeue(conn, &id).await?;
                    if outcome == Requeue::NotFound {
                        outcome = webhooks::requeue(conn, &id, crate::timestamp::now_ms()).await?;
                    }
                    if outcome == Requeue::Requeued {
                        admin::audit(conn, &actor, "notification.retry", Some(&id), json!({})).await?;
                    }
                    Ok(outcome)
                })
            })
            .await?;
        self.wake_webhooks(usize::from(outcome == Requeue::Requeued));
        Ok(outcome)
    }

    pub async fn replay_webhook(&self, actor: &str, webhook: &str, since: i64) -> Result<u64, StoreError> {
        let (actor, webhook) = (actor.to_owned(), webhook.to_owned());
        let replayed = self
            .writer
            .exec(false, move |conn| {
                Box::pin(async move {
                    let replayed = webhooks::replay(conn, &webhook, since, crate::timestamp::now_ms()).await?;
                    let detail = json!({"since": crate::timestamp::to_rfc3339(since), "requeued": replayed});
                    admin::audit(conn, &actor, "webhook.replay", Some(&webhook), detail).await?;
                    Ok(replayed)
                })
            })
            .await?;
        self.wake_webhooks(replayed as usize);
        Ok(replayed)
    }

    fn webhook_plan(&self) -> Arc<WebhookPlan> {
        self.webhooks.clone()
    }

    fn wake_webhooks(&self, queued: usize) {
        if queued > 0 {
            self.webhooks.wake.notify_one();
        }
    }

    pub async fn claim_webhooks(&self, limit: i64, lease_ms: i64) -> Result<Vec<ClaimedWebhook>, StoreError> {
        let now = crate::timestamp::now_ms();
        Ok(self.writer.exec(false, move |c| Box::pin(webhooks::claim(c, now, lease_ms, limit))).await?)
    }

    pub async fn extend_webhook_lease(&self, ids: Vec<String>, lease_ms: i64) -> Result<(), StoreError> {
        let until = crate::timestamp::now_ms() + lease_ms;
        Ok(self
            .writer
            .exec(false, move |c| Box::pin(async move { webhooks::extend_lease(c, &ids, until).await }))
            .await?)
    }

    pub async fn settle_webhooks(&self, settlements: Vec<Settlement>) -> Result<(), StoreError> {
        let now = crate::timestamp::now_ms();
        Ok(self
            .writer
            .exec(false, move |c| Box::pin(async move { webhooks::settle(c, &settlements, now).await }))
            .await?)
    }

    pub async fn release_webhooks(&self, ids: Vec<String>) -> Result<(), StoreError> {
        Ok(self.writer.exec(false, move |c| Box::pin(async move { webhooks::release(c, &ids).await })).await?)
    }

    /// At start-up: whatever a previous process was delivering when it died is due again.
    pub async fn reset_webhooks_in_flight(&self) -> Result<(), StoreError> {
        Ok(self.writer.exec(false, move |c| Box::pin(webhooks::reset_in_flight(c))).await?)
    }

    pub async fn next_webhook_due(&self) -> Result<Option<i64>, StoreError> {
        Ok(webhooks::next_due(&mut *self.reads.acquire().await?).await?)
    }

    pub async fn webhook_backlog(&self) -> Result<(i64, Option<i64>), StoreError> {
        Ok(webhooks::backlog(&mut *self.reads.acquire().await?).await?)
    }

    pub async fn deliveries(&self, inquiry_id: &str) -> Result<Vec<DeliveryView>, StoreError> {
        Ok(webhooks::deliveries(&mut *self.reads.acquire().await?, inquiry_id).await?)
    }

    pub async fn move_retention_mark(&self, held: i64, to: i64) -> Result<bool, StoreError> {
        Ok(self
            .writer
            .exec(false, move |c| Box::pin(async move { admin::move_retention_mark(c, held, to).await }))
            .await?)
    }

    pub async fn claim_retention_run(&self, due_by: i64, mark: i64) -> Result<bool, StoreError> {
        Ok(self
            .writer
            .exec(false, move |c| Box::pin(async move { admin::claim_retention_run(c, due_by, mark).await }))
            .await?)
    }

    pub async fn audit_page(&self, page: Page) -> Result<(Vec<AuditEntry>, Option<i64>), StoreError> {
        Ok(admin::audit_page(&self.reads, page).await?)
    }

    pub async fn create_token(&self, actor: &str, name: &str, scope: Scope) -> Result<(String, TokenInfo), StoreError> {
        let (actor, name) = (actor.to_owned(), name.to_owned());
        let created = self
            .writer
            .exec(false, move |conn| {
                Box::pin(async move {
                    let created = tokens::create(conn, &name, scope).await?;
                    let detail = json!({"scope": scope.to_string()});
                    admin::audit(conn, &actor, "token.create", Some(&created.1.id), detail).await?;
                    Ok(created)
                })
            })
            .await?;
        Ok(created)
    }

    pub async fn list_tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        Ok(tokens::list(&self.reads).await?)
    }

    pub async fn find_token(&self, token: &str) -> Result<Option<TokenInfo>, StoreError> {
        Ok(tokens::find(&self.reads, token).await?)
    }

    pub async fn revoke_token(&self, actor: &str, id: &str) -> Result<bool, StoreError> {
        let (actor, id) = (actor.to_owned(), id.to_owned());
        let revoked = self
            .writer
            .exec(false, move |conn| {
                Box::pin(async move {
                    let revoked = tokens::revoke(conn, &id).await?;
                    if revoked {
                        admin::audit(conn, &actor, "token.revoke", Some(&id), json!({})).await?;
                    }
                    Ok(revoked)
                })
            })
            .await?;
        Ok(revoked)
    }

    /// Runs `write` in its own transaction on the writer.
    async fn write<T, F>(&self, write: F) -> Result<T, StoreError>
    where
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> futures_util::future::BoxFuture<'c, Result<T, sqlx::Error>>
            + Send
            + 'static,
        T: Send + 'static,
    {
        Ok(self.writer.exec(false, write).await?)
    }

    /// Runs `read` on a connection of the read pool.
    async fn read<T, F>(&self, read: F) -> Result<T, StoreError>
    where
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> futures_util::future::BoxFuture<'c, Result<T, sqlx::Error>>,
    {
        let mut conn = self.reads.acquire().await?;
        Ok(read(&mut conn).await?)
    }

    pub async fn touch_token(&self, id: &str) -> Result<(), StoreError> {
        let id = id.to_owned();
        Ok(self.writer.exec(false, move |conn| Box::pin(async move { tokens::touch(conn, &id).await })).await?)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::store::model::INQUIRY_COLUMNS;

    /// A database file in `dir`, with the settings' defaults where a test
    /// does not care.
    pub(in crate::store) fn settings(dir: &std::path::Path) -> DatabaseSettings {
        DatabaseSettings {
            url: format!("sqlite://{}/inquiries.db", dir.display()),
            synchronous: Synchronous::Full,
            busy_timeout_ms: 1234,
            group_commit: true,
            batch_max: 64,
            commit_delay_us: 0,
            read_pool_size: 1,
            pool_size: 1,
            search_index: true,
        }
    }

    pub(in crate::store) fn options(dir: &std::path::Path) -> StoreOptions {
        StoreOptions {
            group_commit: true,
            batch_max: 64,
            commit_delay: Duration::ZERO,
            message_id_domain: "localhost".into(),
            webhooks: Arc::default(),
            files_dir: dir.join("files"),
        }
    }

    async fn search(db: &Sqlite, q: &str) -> Vec<InquiryRecord> {
        let filter = InquiryFilter { q: Some(q.into()), ..InquiryFilter::default() };
        db.list(&filter, Page::default()).await.unwrap().0
    }

    /// Rows an erasure removed from the search file but did not delete (its
    /// transaction failed, or the process died before it committed) are
    /// indexed again: after that erasure, and at the next start.
    #[tokio::test(flavor = "multi_thread")]
    async fn rows_an_erasure_did_not_delete_are_found_again() {
        let dir = tempfile::tempdir().unwrap();
        let settings = settings(dir.path());
        let open = || async {
            let (db, _) = Sqlite::open(&settings, options(dir.path()), Arc::default()).await.unwrap();
            db.ensure_search_index(true).await.unwrap();
            db
        };
        drop(open().await);
        let file = rusqlite::Connection::open(dir.path().join("inquiries.db")).unwrap();
        for (n, message) in [(1, "Вопрос о телескопе"), (2, "关于天文合作")] {
            file.execute(
                "INSERT INTO inquiries (id, received_at, status, category, name, email, email_norm, subject, \
                 message, updated_at) VALUES (?1, 0, 'new', 'inquiry', 'Анна', 'a@example.org', 'a@example.org', \
                 'Тема', ?2, 0)",
                rusqlite::params![format!("id-{n}"), message],
            )
            .unwrap();
        }
        drop(file);
        let db = open().await;
        let found = search(&db, "телескопе").await;
        assert_eq!(found.len(), 1, "rows put in while stopped are indexed at start");
        assert_eq!(search(&db, "合作").await.len(), 1);
        let rows = found.iter().map(|i| (i.seq, crate::store::search::document_of(i))).collect();

        let noted = db.index.remove(rows).await.unwrap();
        assert_eq!(noted, vec![found[0].seq]);
        assert!(search(&db, "телескопе").await.is_empty(), "its terms are gone before it is deleted");
        db.index.settle(noted).await;
        assert_eq!(search(&db, "телескопе").await.len(), 1, "not deleted: indexed again after the erasure");

        let rows = found.iter().map(|i| (i.seq, crate::store::search::document_of(i))).collect();
        db.index.remove(rows).await.unwrap();
        drop(db);
        let db = open().await;
        assert_eq!(search(&db, "телескопе").await.len(), 1, "not deleted: indexed again at the next start");
        assert_eq!(search(&db, "合作").await.len(), 1);
    }

    /// Rows put in while the service was stopped are indexed at start, across
    /// the catch-up's chunks of 2,000 and in three scripts: each once. Then an
    /// erasure that did not delete its rows is settled across chunks of 500.
    #[tokio::test(flavor = "multi_thread")]
    async fn the_start_up_catch_up_and_settling_index_every_row_across_their_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let settings = settings(dir.path());
        let (db, _) = Sqlite::open(&settings, options(dir.path()), Arc::default()).await.unwrap();
        drop(db);
        let mut file = rusqlite::Connection::open(dir.path().join("inquiries.db")).unwrap();
        let tx = file.transaction().unwrap();
        let scripts = ["Вопрос о стажировке", "关于天文合作的问题", "A question about the library"];
        for n in 1..=4500 {
            tx.execute(
                "INSERT INTO inquiries (id, received_at, status, category, name, email, email_norm, subject, \
                 message, updated_at) VALUES (?1, 0, 'new', 'inquiry', 'Анна', 'a@example.org', 'a@example.org', \
                 'Тема', ?2, 0)",
                rusqlite::params![format!("id-{n}"), format!("{} ряд{n}", scripts[n % 3])],
            )
            .unwrap();
        }
        tx.commit().unwrap();
        drop(file);
        let (db, _) = Sqlite::open(&settings, options(dir.path()), Arc::default()).await.unwrap();
        db.ensure_search_index(true).await.unwrap();
        for n in [1, 1999, 2000, 2001, 4000, 4001, 4500] {
            let found: Vec<String> = search(&db, &format!("ряд{n}")).await.into_iter().map(|i| i.id).collect();
            assert_eq!(found, vec![format!("id-{n}")]);
        }
        let chinese = InquiryFilter { q: Some("天文".into()), ..InquiryFilter::default() };
        let page = db.list(&chinese, Page { limit: 200, before: None }).await.unwrap();
        assert_eq!((page.0.len(), page.0[0].id.as_str()), (200, "id-4498"), "newest first (n % 3 == 1)");
        let search_file = rusqlite::Connection::open(dir.path().join("inquiries.db-search")).unwrap();
        let indexed = || -> i64 {
            search_file.query_row("SELECT count(*) FROM inquiries_fts_docsize", [], |r| r.get(0)).unwrap()
        };
        assert_eq!(indexed(), 4500);

        // An erasure of 1,201 of them that did not delete them (its transaction failed):
        // settling reads them back in chunks of 500 and indexes each again.
        let doomed: Vec<InquiryRecord> = sqlx::query_as(&format!(
            "SELECT {INQUIRY_COLUMNS} FROM inquiries i WHERE i.id IN ({}) ORDER BY i.seq",
            (1000..=2200).map(|n| format!("'id-{n}'")).collect::<Vec<_>>().join(", ")
        ))
        .fetch_all(&db.reads)
        .await
        .unwrap();
        assert_eq!(doomed.len(), 1201);
        let noted = db
            .index
            .remove(doomed.iter().map(|i| (i.seq, crate::store::search::document_of(i))).collect())
            .await
            .unwrap();
        assert_eq!((noted.len(), indexed()), (1201, 4500 - 1201));
        db.index.settle(noted).await;
        assert_eq!(indexed(), 4500, "every row the erasure left is indexed again");
        for n in [1000, 1499, 1500, 1501, 2200] {
            let found: Vec<String> = search(&db, &format!("ряд{n}")).await.into_iter().map(|i| i.id).collect();
            assert_eq!(found, vec![format!("id-{n}")]);
        }
    }

    /// The writer's rusqlite connection is the one submissions are committed
    /// through: it must carry the configured durability and the same pragmas.
    #[tokio::test]
    async fn hot_writer_gets_the_configured_pragmas() {
        let dir = tempfile::tempdir().unwrap();
        for (synchronous, expected) in [(Synchronous::Full, 2), (Synchronous::Normal, 1)] {
            let settings = DatabaseSettings { synchronous, ..settings(dir.path()) };
            let _created = open_writer(&settings).await.unwrap();
            let db = open_hot_writer(&settings).unwrap();
            let pragma = |name: &str| db.query_row(&format!("PRAGMA {name}"), [], |r| r.get::<_, i64>(0)).unwrap();
            assert_eq!(pragma("synchronous"), expected);
            assert_eq!(pragma("foreign_keys"), 1);
            assert_eq!(pragma("secure_delete"), 1);
            assert_eq!(pragma("busy_timeout"), 1234);
            let mode: String = db.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
            assert_eq!(mode, "wal");
        }
    }
}
