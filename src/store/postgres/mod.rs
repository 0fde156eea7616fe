//! The PostgreSQL backend, for several replicas of `inquiryd serve` on one
//! database. Every operation is a transaction of its own on a connection pool;
//! what must hold across replicas is decided by the database: an
//! Idempotency-Key by its primary key, a double click by a transaction-scoped
//! advisory lock on its hash, an outbox claim by `FOR UPDATE SKIP LOCKED` with a
//! lease, the daily retention purge by a conditional update of one row.

mod admin;
mod batch;
mod console;
mod export;
mod outbox;
mod submit;
mod tokens;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgDatabaseError, PgPool, PgPoolOptions, PgRow};
use sqlx::{ConnectOptions, Connection, FromRow, Postgres as Pg, Transaction};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;

use super::{
    AuditEntry, ClaimedNotification, Erase, InquiryRecord, NewRecord, NotificationView, Receipt, Requeue, Scope,
    Settlement, StoreError, StoreOptions, TokenInfo, WriteOutcome,
};
use crate::config::DatabaseSettings;
use crate::domain::{ExportFormat, InquiryFilter, InquiryStatus, Page};
use crate::store::model::{typed, update_detail};
use crate::store::webhooks::{ClaimedWebhook, DeliveryView};
use crate::timestamp::now_ms;

/// The advisory lock key webhook claims take (any constant no other lock uses).
const WEBHOOK_CLAIM_LOCK: i64 = 0x696e_7175_6972_7964;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// Connection lost, server shutting down or overloaded, serialization failure,
/// deadlock, disk full: the operation may succeed later.
pub fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => db.try_downcast_ref::<PgDatabaseError>().is_some_and(|pg| {
            let code = pg.code();
            // 08: connection exception; 40001 serialization failure; 40P01 deadlock;
            // 53: insufficient resources; 57P01-57P03: shutdown, cannot connect now;
            // 25006: a read-only transaction (a demoted primary during a failover);
            // 3D000: the database does not exist (yet, or while it is restored);
            // 55P03: lock_timeout (another transaction held a lock too long).
            code.starts_with("08")
                || code.starts_with("53")
                || matches!(code, "40001" | "40P01" | "55P03" | "57P01" | "57P02" | "57P03" | "25006" | "3D000")
        }),
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => true,
        _ => false,
    }
}

/// sqlx queries select the store's inquiry columns first.
impl FromRow<'_, PgRow> for InquiryRecord {
    fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        inquiry_at(row, 0)
    }
}

/// The inquiry whose columns start at `first`.
fn inquiry_at(row: &PgRow, first: usize) -> Result<InquiryRecord, sqlx::Error> {
    use sqlx::Row;
    Ok(inquiry_from_row!(row, try_get, first, |why| sqlx::Error::Decode(why.into())))
}

fn connect_options(settings: &DatabaseSettings) -> Result<PgConnectOptions, StoreError> {
    let options: PgConnectOptions = settings.url.parse().map_err(StoreError::Url)?;
    // Statements are logged by PostgreSQL if the operator wants them; here they
    // would carry no more than their shape, at a cost per query.
    Ok(options.disable_statement_logging())
}

/// `host:port/database` of the URL: what an error may name (never the password).
pub fn describe(settings: &DatabaseSettings) -> String {
    match settings.url.parse::<PgConnectOptions>() {
        Ok(o) => format!("{}:{}/{}", o.get_host(), o.get_port(), o.get_database().unwrap_or("")),
        Err(_) => "an unparsable postgres:// URL".to_owned(),
    }
}

/// Connects one connection and applies pending migrations on it; replicas
/// starting together apply them once (the migrator holds an advisory lock
/// while it runs, and this connection waits for it without a lock timeout).
/// Its error says why a server cannot be used (refused, unknown database,
/// authentication), where a pool would only report a timeout.
async fn migrate(settings: &DatabaseSettings) -> Result<(), StoreError> {
    let unreachable = |source| StoreError::Connect { what: describe(settings), source };
    let mut conn = connect_options(settings)?.connect().await.map_err(unreachable)?;
    MIGRATOR.run(&mut conn).await.map_err(|e| StoreError::migration(e, &MIGRATOR))?;
    let folds: bool =
        sqlx::query_scalar("SELECT lower('ÉИ') = 'éи' AND 'Ж' ~ '[[:alnum:]]'").fetch_one(&mut conn).await?;
    let _ = conn.close().await;
    if !folds {
        tracing::warn!(
            "this database's character type does not know non-ASCII letters: search will not fold their case; \
             create the database with a UTF-8 locale (e.g. LC_CTYPE 'C.UTF-8')"
        );
    }
    Ok(())
}

/// The pool every operation uses. A write waits for another's lock at most
/// `database.busy_timeout_ms` (`lock_timeout`), then fails as unavailable (503).
async fn connect(settings: &DatabaseSettings) -> Result<PgPool, StoreError> {
    let lock_timeout = format!("{}ms", settings.busy_timeout_ms);
    PgPoolOptions::new()
        .max_connections(settings.pool_size)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(connect_options(settings)?.options([("lock_timeout", lock_timeout.as_str())]))
        .await
        .map_err(|source| StoreError::Connect { what: describe(settings), source })
}

/// `inquiryd migrate` on PostgreSQL.
pub async fn migrate_database(settings: &DatabaseSettings) -> Result<(), StoreError> {
    migrate(settings).await
}

/// The PostgreSQL database: a pool for everything.
#[derive(Clone)]
pub struct Postgres {
    pool: PgPool,
    options: Arc<StoreOptions>,
    outbox: Arc<Notify>,
    /// With group commit, submissions go through the batcher.
    batcher: Option<mpsc::Sender<batch::Job>>,
}

impl Postgres {
    /// Connects, migrates and starts the batcher (with group commit); the
    /// task ends once every handle is dropped, after writing its queue.
    pub async fn open(
        settings: &DatabaseSettings,
        options: StoreOptions,
        outbox: Arc<Notify>,
    ) -> Result<(Self, JoinHandle<()>), StoreError> {
        migrate(settings).await?;
        let pool = connect(settings).await?;
        let options = Arc::new(options);
        let (batcher, task) = if options.group_commit {
            let (batcher, task) = batch::spawn(pool.clone(), options.clone(), outbox.clone());
            (Some(batcher), task)
        } else {
            // Each submission is its own transaction: nothing runs beside the pool.
            (None, tokio::spawn(async {}))
        };
        Ok((Self { pool, options, outbox, batcher }, task))
    }

    pub async fn ensure_search_index(&self, enabled: bool) -> Result<(), StoreError> {
        Ok(admin::ensure_index(&self.pool, enabled).await?)
    }

    pub async fn readiness(&self) -> (bool, bool) {
        let answers = sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&self.pool).await.is_ok();
        let latest = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
        let applied =
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM _sqlx_migrations WHERE success AND version = $1")
                .bind(latest)
                .fetch_one(&self.pool)
                .await
                .is_ok_and(|n| n == 1);
        (answers, applied)
    }

    pub async fn submit(&self, record: NewRecord) -> WriteOutcome {
        if let Some(batcher) = &self.batcher {
            let (reply, answer) = oneshot::channel();
            if batcher.send(batch::Job { record, reply }).await.is_err() {
                return WriteOutcome::Unavailable;
            }
            return answer.await.unwrap_or(WriteOutcome::Unavailable);
        }
        match submit::submit(&self.pool, &record, &self.options).await {
            Ok((outcome, notifications)) => {
                queued(&self.options, &self.outbox, notifications);
                outcome
            }
            Err(error) if is_transient(&error) => {
                tracing::warn!(%error, "storage unavailable; submission not written");
                WriteOutcome::Unavailable
            }
            Err(error) => {
                tracing::error!(%error, "submission could not be written");
                WriteOutcome::Failed
            }
        }
    }

    pub async fn idempotent_answer(&self, key: &str) -> Result<Option<([u8; 32], Receipt)>, StoreError> {
        Ok(submit::idempotent_answer(&self.pool, key).await?)
    }

    pub async fn claim_due(&self, limit: i64, lease_ms: i64) -> Result<Vec<ClaimedNotification>, StoreError> {
        Ok(outbox::claim(&self.pool, limit, lease_ms).await?)
    }

    pub async fn extend_lease(&self, ids: Vec<String>, lease_ms: i64) -> Result<(), StoreError> {
        Ok(outbox::extend_lease(&self.pool, &ids, lease_ms).await?)
    }

    pub async fn settle(&self, settlements: Vec<Settlement>) -> Result<(), StoreError> {
        Ok(outbox::settle(&self.pool, &settlements).await?)
    }

    pub async fn release(&self, ids: Vec<String>) -> Result<(), StoreError> {
        Ok(outbox::release(&self.pool, &ids).await?)
    }

    /// Other replicas may be sending right now: their claims are theirs until
    /// the lease runs out. A dead process's claims are taken over then.
    pub async fn reset_in_flight(&self) -> Result<(), StoreError> {
        Ok(())
    }

    pub async fn next_due(&self) -> Result<Option<i64>, StoreError> {
        Ok(outbox::next_due(&self.pool).await?)
    }

    pub async fn backlog(&self) -> Result<(i64, Option<i64>), StoreError> {
        Ok(outbox::backlog(&self.pool).await?)
    }

    pub async fn list(
        &self,
        filter: &InquiryFilter,
        page: Page,
    ) -> Result<(Vec<InquiryRecord>, Option<i64>), StoreError> {
        Ok(admin::list(&self.pool, filter, page).await?)
    }

    pub async fn get(&self, id: &str) -> Result<Option<(InquiryRecord, Vec<NotificationView>)>, StoreError> {
        Ok(admin::get(&self.pool, id).await?)
    }

    pub async fn export(
        &self,
        filter: &InquiryFilter,
        format: ExportFormat,
        bom: bool,
        custom: Option<&[String]>,
        out: mpsc::Sender<Bytes>,
    ) -> Result<u64, StoreError> {
        Ok(export::export(&self.pool, filter, format, bom, custom, out).await?)
    }

    pub async fn present(&self, ids: &[String]) -> Result<Vec<String>, StoreError> {
        Ok(admin::present(&self.pool, ids).await?)
    }

    pub async fn count_before(&self, cutoff: i64) -> Result<i64, StoreError> {
        Ok(admin::count_before(&self.pool, cutoff).await?)
    }

    pub async fn update_status(
        &self,
        actor: &str,
        id: &str,
        status: InquiryStatus,
        note: Option<Option<String>>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let note_changed = note.is_some();
        let previous = admin::update(&mut tx, id, status, note).await?;
        let Some(previous) = &previous else { return Ok(false) };
        let detail = update_detail(previous, status, note_changed);
        admin::audit(&mut tx, actor, "inquiry.update", Some(id), detail).await?;
        let events = webhooks::queue_update(&mut tx, &self.options.webhooks, id).await?;
        tx.commit().await?;
        self.wake_webhooks(events);
        Ok(true)
    }

    pub async fn erase(
        &self,
        actor: &str,
        action: &'static str,
        which: Erase,
        detail: serde_json::Value,
    ) -> Result<(Vec<String>, Vec<String>), StoreError> {
        let mut tx = self.pool.begin().await?;
        let erased = admin::erase(&mut tx, &which).await?;
        if let Some((target, detail)) = which.audit(erased.len(), detail) {
            admin::audit(&mut tx, actor, action, target, detail).await?;
        }
        let events = webhooks::queue_erasure(&mut tx, &self.options.webhooks, &erased).await?;
        tx.commit().await?;
        self.wake_webhooks(events);
        // Once per purge, after its last transaction: VACUUM scans every index.
        if (!erased.is_empty() || which.resumed()) && !which.continues(erased.len()) {
            admin::vacuum(&self.pool).await;
        }
        Ok(crate::store::model::erased_ids(erased))
    }

    pub async fn named_files(&self, sha256s: Vec<String>) -> Result<std::collections::HashSet<String>, StoreError> {
        let named: Vec<String> = sqlx::query_scalar("SELECT DISTINCT sha256 FROM files WHERE sha256 = ANY($1)")
            .bind(&sha256s)
            .fetch_all(&self.pool)
            .await?;
        Ok(named.into_iter().collect())
    }

    pub async fn requeue(&self, actor: &str, id: &str) -> Result<Requeue, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut outcome = admin::requeue(&mut tx, id).await?;
        if outcome == Requeue::NotFound {
            outcome = webhooks::requeue(&mut tx, id, now_ms()).await?;
        }
        if outcome == Requeue::Requeued {
            admin::audit(&mut tx, actor, "notification.retry", Some(id), json!({})).await?;
        }
        tx.commit().await?;
        self.wake_webhooks(usize::from(outcome == Requeue::Requeued));
        Ok(outcome)
    }

    pub async fn replay_webhook(&self, actor: &str, webhook: &str, since: i64) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let replayed = webhooks::replay(&mut tx, webhook, since, now_ms()).await?;
        let detail = json!({"since": crate::timestamp::to_rfc3339(since), "requeued": replayed});
        admin::audit(&mut tx, actor, "webhook.replay", Some(webhook), detail).await?;
        tx.commit().await?;
        self.wake_webhooks(replayed as usize);
        Ok(replayed)
    }

    fn webhook_plan(&self) -> Arc<crate::store::webhooks::WebhookPlan> {
        self.options.webhooks.clone()
    }

    fn wake_webhooks(&self, queued: usize) {
        if queued > 0 {
            self.options.webhooks.wake.notify_one();
        }
    }

    /// Claims run one at a time across replicas (a transaction-scoped advisory
    /// lock): two concurrent claims could otherwise each take one of two
    /// events of an inquiry and deliver them out of order.
    pub async fn claim_webhooks(&self, limit: i64, lease_ms: i64) -> Result<Vec<ClaimedWebhook>, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(WEBHOOK_CLAIM_LOCK).execute(&mut *tx).await?;
        let claimed = webhooks::claim(&mut tx, now_ms(), lease_ms, limit).await?;
        tx.commit().await?;
        Ok(claimed)
    }

    pub async fn extend_webhook_lease(&self, ids: Vec<String>, lease_ms: i64) -> Result<(), StoreError> {
        Ok(webhooks::extend_lease(&mut *self.pool.acquire().await?, &ids, now_ms() + lease_ms).await?)
    }

    pub async fn settle_webhooks(&self, settlements: Vec<Settlement>) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        webhooks::settle(&mut tx, &settlements, now_ms()).await?;
        Ok(tx.commit().await?)
    }

    pub async fn release_webhooks(&self, ids: Vec<String>) -> Result<(), StoreError> {
        Ok(webhooks::release(&mut *self.pool.acquire().await?, &ids).await?)
    }

    /// Nothing to do: another replica may be sending; a dead one's leases run out.
    pub async fn reset_webhooks_in_flight(&self) -> Result<(), StoreError> {
        Ok(())
    }

    pub async fn next_webhook_due(&self) -> Result<Option<i64>, StoreError> {
        Ok(webhooks::next_due(&mut *self.pool.acquire().await?).await?)
    }

    pub async fn webhook_backlog(&self) -> Result<(i64, Option<i64>), StoreError> {
        Ok(webhooks::backlog(&mut *self.pool.acquire().await?).await?)
    }

    pub async fn deliveries(&self, inquiry_id: &str) -> Result<Vec<DeliveryView>, StoreError> {
        Ok(webhooks::deliveries(&mut *self.pool.acquire().await?, inquiry_id).await?)
    }

    pub async fn move_retention_mark(&self, held: i64, to: i64) -> Result<bool, StoreError> {
        Ok(admin::move_retention_mark(&self.pool, held, to).await?)
    }

    pub async fn claim_retention_run(&self, due_by: i64, mark: i64) -> Result<bool, StoreError> {
        Ok(admin::claim_retention_run(&self.pool, due_by, mark).await?)
    }

    pub async fn audit_page(&self, page: Page) -> Result<(Vec<AuditEntry>, Option<i64>), StoreError> {
        Ok(admin::audit_page(&self.pool, page).await?)
    }

    pub async fn create_token(&self, actor: &str, name: &str, scope: Scope) -> Result<(String, TokenInfo), StoreError> {
        let mut tx = self.pool.begin().await?;
        let created = tokens::create(&mut tx, name, scope).await?;
        admin::audit(&mut tx, actor, "token.create", Some(&created.1.id), json!({"scope": scope.to_string()})).await?;
        tx.commit().await?;
        Ok(created)
    }

    pub async fn list_tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        Ok(tokens::list(&self.pool).await?)
    }

    pub async fn find_token(&self, token: &str) -> Result<Option<TokenInfo>, StoreError> {
        Ok(tokens::find(&self.pool, token).await?)
    }

    pub async fn revoke_token(&self, actor: &str, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let revoked = tokens::revoke(&mut tx, id).await?;
        if revoked {
            admin::audit(&mut tx, actor, "token.revoke", Some(id), json!({})).await?;
        }
        tx.commit().await?;
        Ok(revoked)
    }

    pub async fn touch_token(&self, id: &str) -> Result<(), StoreError> {
        Ok(tokens::touch(&self.pool, id).await?)
    }

    /// Runs `write` in a transaction of its own.
    async fn write<T, F>(&self, write: F) -> Result<T, StoreError>
    where
        F: for<'c> FnOnce(&'c mut sqlx::PgConnection) -> futures_util::future::BoxFuture<'c, Result<T, sqlx::Error>>,
    {
        let mut tx = self.pool.begin().await?;
        let out = write(&mut tx).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn read<T, F>(&self, read: F) -> Result<T, StoreError>
    where
        F: for<'c> FnOnce(&'c mut sqlx::PgConnection) -> futures_util::future::BoxFuture<'c, Result<T, sqlx::Error>>,
    {
        let mut conn = self.pool.acquire().await?;
        Ok(read(&mut conn).await?)
    }
}

/// A transaction on the pool.
type Tx = Transaction<'static, Pg>;

/// Commits a write transaction of the submission path or the outbox, with
/// SQLite's writer's metrics: the time from `started` to the commit (`write`),
/// the commit itself, the count, and how many submissions it stored.
/// After a commit that queued `count` outbox rows (emails and webhook events):
/// wakes the workers (the webhook worker only when webhooks are configured).
fn queued(options: &StoreOptions, outbox: &Notify, count: usize) {
    if count > 0 {
        outbox.notify_one();
        if !options.webhooks.is_empty() {
            options.webhooks.wake.notify_one();
        }
    }
}

async fn commit(tx: Tx, started: std::time::Instant, submissions: usize) -> Result<(), sqlx::Error> {
    let committing = std::time::Instant::now();
    metrics::histogram!("inquiryd_store_transaction_seconds", "phase" => "write")
        .record((committing - started).as_secs_f64());
    tx.commit().await?;
    metrics::histogram!("inquiryd_store_transaction_seconds", "phase" => "commit")
        .record(committing.elapsed().as_secs_f64());
    metrics::counter!("inquiryd_store_commits_total").increment(1);
    if submissions > 0 {
        metrics::histogram!("inquiryd_group_commit_batch_size").record(submissions as f64);
    }
    Ok(())
}
