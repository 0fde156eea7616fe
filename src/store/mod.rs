//! The storage boundary. The rest of the service talks to a [`Store`] in domain
//! terms (record a submission, claim and settle deliveries, list, search,
//! export, erase, audit…) and never sees a database type; each backend lives in
//! its own module with its own migrations directory under `migrations/`.
//!
//! Two backends: SQLite ([`sqlite`], the embedded default: one writer thread owns
//! every write and commits submissions in groups; reads use a pool) and
//! PostgreSQL ([`postgres`], for several replicas on one database). The URL's
//! scheme chooses.

pub mod blobs;
pub mod console;
#[macro_use]
mod model;
mod postgres;
pub mod search;
mod sqlite;
mod tokens;
pub mod webhooks;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;

use crate::config::DatabaseSettings;
use crate::domain::{ExportFormat, InquiryFilter, InquiryStatus, Page};
use console::{Credentials, Failure, Lockout, Role, SessionRecord, Triage, UserInfo};

pub use model::{
    day_date, AuditEntry, ClaimedNotification, Counts, Erase, IdempotencyClaim, InquiryRecord, NewRecord,
    NotificationStatus, NotificationView, PlannedNotification, Receipt, Requeue, Scope, Settlement, Stats, Tally,
    TokenInfo, WriteOutcome,
};
pub use sqlite::match_query;

/// Every way a storage operation can fail.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid database url")]
    Url(#[source] sqlx::Error),
    #[error("cannot create the database directory {0}")]
    Directory(PathBuf, #[source] std::io::Error),
    #[error("cannot open the database")]
    Open(#[source] sqlx::Error),
    /// A database server that does not answer; `what` is its host, port and
    /// database, never the password.
    #[error("cannot connect to PostgreSQL at {what}")]
    Connect { what: String, source: sqlx::Error },
    #[error("cannot open the database")]
    OpenWriter(#[source] rusqlite::Error),
    #[error("cannot apply migrations")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    #[error("cannot start the writer thread")]
    Thread(#[source] std::io::Error),
    #[error(
        "the database is at migration {applied}, newer than this inquiryd knows (up to {known}): \
         run the newer inquiryd it was migrated by, or restore a backup made by this version"
    )]
    NewerSchema { applied: i64, known: i64 },
    #[error("database query failed")]
    Query(#[from] sqlx::Error),
    /// The writer has stopped (shutdown) or storage refused the write.
    #[error("storage unavailable")]
    Unavailable,
    #[error("{0} already exists; a backup never overwrites a file")]
    BackupExists(PathBuf),
    #[error("the backup failed its integrity check: {0}")]
    BackupCorrupt(String),
    #[error(
        "inquiryd backup copies SQLite files; back up PostgreSQL with its own tools: \
         pg_dump --format=custom --file=inquiryd.dump <database> (or continuous archiving with a base backup)"
    )]
    BackupUnsupported,
}

impl StoreError {
    /// Busy, locked, full or failing storage: the operation may succeed later.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Query(error) => sqlite::is_transient(error) || postgres::is_transient(error),
            Self::Unavailable => true,
            _ => false,
        }
    }

    /// What a failed migration run means: a database that a newer binary
    /// migrated is named as such, not as a missing migration.
    fn migration(error: sqlx::migrate::MigrateError, migrator: &sqlx::migrate::Migrator) -> Self {
        let known = migrator.iter().map(|m| m.version).max().unwrap_or(0);
        match error {
            sqlx::migrate::MigrateError::VersionMissing(applied) if applied > known => {
                Self::NewerSchema { applied, known }
            }
            error => Self::Migrate(error),
        }
    }
}

/// How the store's writer is tuned.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub group_commit: bool,
    pub batch_max: usize,
    /// SQLite: how long the writer waits for more work before committing a
    /// batch, when the previous commit was recent (under load only).
    pub commit_delay: std::time::Duration,
    /// Right-hand side of every Message-ID this service generates.
    pub message_id_domain: String,
    /// Which events the configured webhooks want.
    pub webhooks: std::sync::Arc<webhooks::WebhookPlan>,
    /// `[storage] files_dir`: uploaded files.
    pub files_dir: PathBuf,
}

/// A store on a fresh SQLite file in `dir`, for unit tests elsewhere in the
/// crate; with its task, which ends once the store is dropped.
#[cfg(test)]
pub async fn open_for_tests(dir: &Path) -> (Store, JoinHandle<()>) {
    let (settings, options) = (sqlite::tests::settings(dir), sqlite::tests::options(dir));
    Store::open(&settings, options, Arc::default()).await.unwrap()
}

/// The handle to the database: cheap to clone. The background task returned by
/// [`Store::open`] ends once every handle is dropped, after committing its queue.
#[derive(Clone)]
pub struct Store {
    db: Backend,
    blobs: Arc<blobs::Blobs>,
}

#[derive(Clone)]
enum Backend {
    Sqlite(sqlite::Sqlite),
    Postgres(postgres::Postgres),
}

/// Runs the same call on whichever backend the store is.
macro_rules! on_backend {
    ($store:expr, $db:ident => $call:expr) => {
        match &$store.db {
            Backend::Sqlite($db) => $call,
            Backend::Postgres($db) => $call,
        }
    };
}

impl Store {
    /// Opens (creating if missing) and migrates the database and starts its
    /// writer; `outbox` is woken by every commit that queues a notification.
    pub async fn open(
        settings: &DatabaseSettings,
        options: StoreOptions,
        outbox: Arc<Notify>,
    ) -> Result<(Self, JoinHandle<()>), StoreError> {
        let blobs = Arc::new(blobs::Blobs::open(&options.files_dir));
        if is_postgres(&settings.url) {
            let (db, task) = postgres::Postgres::open(settings, options, outbox).await?;
            return Ok((Self { db: Backend::Postgres(db), blobs }, task));
        }
        let (db, task) = sqlite::Sqlite::open(settings, options, outbox).await?;
        Ok((Self { db: Backend::Sqlite(db), blobs }, task))
    }

    /// The directory of uploaded files: a submission streams its files there
    /// and persists them before [`Store::submit`].
    pub fn blobs(&self) -> &blobs::Blobs {
        &self.blobs
    }

    /// Removes the stored files among `sha256s` that no inquiry names (any
    /// more); returns how many.
    pub async fn release_files(&self, sha256s: Vec<String>) -> Result<usize, StoreError> {
        self.blobs.remove_unnamed(sha256s, |candidates| async move { self.named_files(candidates).await }).await
    }

    /// Which of `sha256s` an inquiry names.
    async fn named_files(&self, sha256s: Vec<String>) -> Result<std::collections::HashSet<String>, StoreError> {
        on_backend!(self, db => db.named_files(sha256s).await)
    }

    /// Removes what an interrupted upload left: temporary files and files no
    /// inquiry names, older than `grace` (zero at the start of the only process
    /// using the directory; with replicas, longer than an upload can take).
    pub async fn sweep_files(&self, grace: std::time::Duration) -> Result<usize, StoreError> {
        let dir = self.blobs.dir().to_owned();
        let (hashes, temporaries) =
            self.blobs.older_than(grace).await.map_err(|e| StoreError::Directory(dir.clone(), e))?;
        let mut removed = 0;
        for path in temporaries {
            if tokio::fs::remove_file(&path).await.is_ok() {
                removed += 1;
            }
        }
        Ok(removed + self.release_files(hashes).await?)
    }

    /// Builds (or drops) the search index to match `database.search_index`.
    pub async fn ensure_search_index(&self, enabled: bool) -> Result<(), StoreError> {
        on_backend!(self, db => db.ensure_search_index(enabled).await)
    }

    /// The readiness checks: the database answers, and every migration is applied.
    pub async fn readiness(&self) -> (bool, bool) {
        on_backend!(self, db => db.readiness().await)
    }

    /// Records a submission (or recognises a replay or a double click) and
    /// answers once it is durable.
    pub async fn submit(&self, record: NewRecord) -> WriteOutcome {
        on_backend!(self, db => db.submit(record).await)
    }

    /// The first answer given for an Idempotency-Key within its 24 hours, with
    /// the hash of the body it came with.
    pub async fn idempotent_answer(&self, key: &str) -> Result<Option<([u8; 32], Receipt)>, StoreError> {
        on_backend!(self, db => db.idempotent_answer(key).await)
    }

    /// Leases up to `limit` due notifications (or ones whose lease ran out) for
    /// `lease_ms`, the longest due first.
    pub async fn claim_due(&self, limit: i64, lease_ms: i64) -> Result<Vec<ClaimedNotification>, StoreError> {
        on_backend!(self, db => db.claim_due(limit, lease_ms).await)
    }

    /// Extends the lease of claimed notifications the worker is still sending.
    pub async fn extend_lease(&self, ids: Vec<String>, lease_ms: i64) -> Result<(), StoreError> {
        on_backend!(self, db => db.extend_lease(ids, lease_ms).await)
    }

    /// Records each attempt's outcome; a stale attempt's changes nothing.
    pub async fn settle(&self, settlements: Vec<Settlement>) -> Result<(), StoreError> {
        on_backend!(self, db => db.settle(settlements).await)
    }

    /// Gives claimed but unsent notifications back (graceful shutdown).
    pub async fn release(&self, ids: Vec<String>) -> Result<(), StoreError> {
        on_backend!(self, db => db.release(ids).await)
    }

    /// At start-up: whatever a previous process was sending when it died is due again.
    pub async fn reset_in_flight(&self) -> Result<(), StoreError> {
        on_backend!(self, db => db.reset_in_flight().await)
    }

    /// When the next pending notification falls due, if any is pending.
    pub async fn next_due(&self) -> Result<Option<i64>, StoreError> {
        on_backend!(self, db => db.next_due().await)
    }

    /// How many notifications wait for delivery, and when the oldest was queued.
    pub async fn backlog(&self) -> Result<(i64, Option<i64>), StoreError> {
        on_backend!(self, db => db.backlog().await)
    }

    /// One page, newest first, and the position to continue before (when there is more).
    pub async fn list(
        &self,
        filter: &InquiryFilter,
        page: Page,
    ) -> Result<(Vec<InquiryRecord>, Option<i64>), StoreError> {
        on_backend!(self, db => db.list(filter, page).await)
    }

    /// One inquiry with its notifications.
    pub async fn get(&self, id: &str) -> Result<Option<(InquiryRecord, Vec<NotificationView>)>, StoreError> {
        on_backend!(self, db => db.get(id).await)
    }

    /// Streams every matching inquiry to `out`, newest first (a CSV after a
    /// byte-order mark with `bom`); returns how many. Stops early (without
    /// error) when the receiver goes away. A CSV has one column per custom
    /// field named in `custom` (the filtered form's), or without, one `fields`
    /// column holding the JSON object.
    pub async fn export(
        &self,
        filter: &InquiryFilter,
        format: ExportFormat,
        bom: bool,
        custom: Option<&[String]>,
        out: mpsc::Sender<Bytes>,
    ) -> Result<u64, StoreError> {
        on_backend!(self, db => db.export(filter, format, bom, custom, out).await)
    }

    /// Totals of every inquiry, or of one form's (from the kept counts).
    pub async fn stats(&self, form: Option<&str>) -> Result<Stats, StoreError> {
        Ok(self.counts(Counts::first_day(30)).await?.stats(form))
    }

    /// The kept counts: totals, and per day from `since_day` (days since the epoch) on.
    pub async fn counts(&self, since_day: i64) -> Result<Counts, StoreError> {
        on_backend!(self, db => db.counts(since_day).await)
    }

    /// How many inquiries were received before `cutoff` (for `purge --dry-run`).
    /// Which of `ids` are the ids of stored inquiries.
    pub async fn present(&self, ids: &[String]) -> Result<Vec<String>, StoreError> {
        on_backend!(self, db => db.present(ids).await)
    }

    pub async fn count_before(&self, cutoff: i64) -> Result<i64, StoreError> {
        on_backend!(self, db => db.count_before(cutoff).await)
    }

    /// Sets the status (and the note, when given: `Some(None)` clears it) and
    /// audits the change; `false` when there is no such inquiry.
    pub async fn update_status(
        &self,
        actor: &str,
        id: &str,
        status: InquiryStatus,
        note: Option<Option<String>>,
    ) -> Result<bool, StoreError> {
        on_backend!(self, db => db.update_status(actor, id, status, note).await)
    }

    /// Erases inquiries with their notifications, delivery attempts, idempotency
    /// keys, search-index entries and the files no other inquiry names, leaving no copy in the database's files,
    /// and audits the count as `action` (with `detail` added); returns the
    /// erased ids. An erasure of one id that finds nothing is not audited.
    pub async fn erase(
        &self,
        actor: &str,
        action: &'static str,
        which: Erase,
        detail: serde_json::Value,
    ) -> Result<Vec<String>, StoreError> {
        let (ids, files) = on_backend!(self, db => db.erase(actor, action, which, detail).await)?;
        if let Err(error) = self.release_files(files).await {
            // The rows are gone; the files go with the next sweep.
            tracing::warn!(%error, "erased files could not be removed yet");
        }
        Ok(ids)
    }

    /// Puts a failed notification back in the queue, due now; audited.
    pub async fn requeue(&self, actor: &str, id: &str) -> Result<Requeue, StoreError> {
        on_backend!(self, db => db.requeue(actor, id).await)
    }

    /// Puts every failed delivery of one webhook (`form.name`) queued at or
    /// after `since` back in the queue, due now (after a receiver outage longer
    /// than the retries); audited. Returns how many.
    pub async fn replay_webhook(&self, actor: &str, webhook: &str, since: i64) -> Result<u64, StoreError> {
        on_backend!(self, db => db.replay_webhook(actor, webhook, since).await)
    }

    /// Every email and webhook delivery of an inquiry, oldest first, with its attempts.
    pub async fn deliveries(&self, inquiry_id: &str) -> Result<Vec<webhooks::DeliveryView>, StoreError> {
        on_backend!(self, db => db.deliveries(inquiry_id).await)
    }

    /// The webhook outbox: the same lease, settle and release rules as email's.
    pub async fn claim_webhooks(&self, limit: i64, lease_ms: i64) -> Result<Vec<webhooks::ClaimedWebhook>, StoreError> {
        on_backend!(self, db => db.claim_webhooks(limit, lease_ms).await)
    }

    pub async fn extend_webhook_lease(&self, ids: Vec<String>, lease_ms: i64) -> Result<(), StoreError> {
        on_backend!(self, db => db.extend_webhook_lease(ids, lease_ms).await)
    }

    pub async fn settle_webhooks(&self, settlements: Vec<Settlement>) -> Result<(), StoreError> {
        on_backend!(self, db => db.settle_webhooks(settlements).await)
    }

    pub async fn release_webhooks(&self, ids: Vec<String>) -> Result<(), StoreError> {
        on_backend!(self, db => db.release_webhooks(ids).await)
    }

    pub async fn reset_webhooks_in_flight(&self) -> Result<(), StoreError> {
        on_backend!(self, db => db.reset_webhooks_in_flight().await)
    }

    pub async fn next_webhook_due(&self) -> Result<Option<i64>, StoreError> {
        on_backend!(self, db => db.next_webhook_due().await)
    }

    /// How many webhook deliveries wait, and when the oldest was queued.
    pub async fn webhook_backlog(&self) -> Result<(i64, Option<i64>), StoreError> {
        on_backend!(self, db => db.webhook_backlog().await)
    }

    /// `true` for the one caller (across every process on this database) that
    /// may run the retention purge now: its mark (see `retention::Lease`) is at
    /// most `due_by`. The caller's claim then holds `mark`.
    pub async fn claim_retention_run(&self, due_by: i64, mark: i64) -> Result<bool, StoreError> {
        on_backend!(self, db => db.claim_retention_run(due_by, mark).await)
    }

    /// Moves the retention run's mark from `held` to `to`; `false` (and nothing
    /// changed) when the mark is no longer `held`.
    pub async fn move_retention_mark(&self, held: i64, to: i64) -> Result<bool, StoreError> {
        on_backend!(self, db => db.move_retention_mark(held, to).await)
    }

    pub async fn audit_page(&self, page: Page) -> Result<(Vec<AuditEntry>, Option<i64>), StoreError> {
        on_backend!(self, db => db.audit_page(page).await)
    }

    /// Creates an admin token (audited) and returns it with its record; only its hash is stored.
    pub async fn create_token(&self, actor: &str, name: &str, scope: Scope) -> Result<(String, TokenInfo), StoreError> {
        on_backend!(self, db => db.create_token(actor, name, scope).await)
    }

    pub async fn list_tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        on_backend!(self, db => db.list_tokens().await)
    }

    /// The active token presented, if it is one.
    pub async fn find_token(&self, token: &str) -> Result<Option<TokenInfo>, StoreError> {
        on_backend!(self, db => db.find_token(token).await)
    }

    /// Revokes by id (audited); `false` when there is no such active token.
    pub async fn revoke_token(&self, actor: &str, id: &str) -> Result<bool, StoreError> {
        on_backend!(self, db => db.revoke_token(actor, id).await)
    }

    /// Records that the token was just used.
    pub async fn touch_token(&self, id: &str) -> Result<(), StoreError> {
        on_backend!(self, db => db.touch_token(id).await)
    }

    /// Creates a console user (audited); `None` when the address is taken.
    pub async fn create_user(
        &self,
        actor: &str,
        email: &str,
        email_norm: &str,
        role: Role,
        password_hash: &str,
    ) -> Result<Option<UserInfo>, StoreError> {
        on_backend!(self, db => db.create_user(actor, email, email_norm, role, password_hash).await)
    }

    pub async fn list_users(&self) -> Result<Vec<UserInfo>, StoreError> {
        on_backend!(self, db => db.list_users().await)
    }

    /// Disables a user and ends their sessions (audited); `false` when there
    /// is no such enabled user.
    pub async fn disable_user(&self, actor: &str, id: &str) -> Result<bool, StoreError> {
        on_backend!(self, db => db.disable_user(actor, id).await)
    }

    /// Replaces a user's password hash, lifts a lockout and ends their
    /// sessions (audited); `false` when there is no such user.
    pub async fn set_password(&self, actor: &str, id: &str, password_hash: &str) -> Result<bool, StoreError> {
        on_backend!(self, db => db.set_password(actor, id, password_hash).await)
    }

    /// What a login by this (normalized) address checks.
    pub async fn credentials(&self, email_norm: &str) -> Result<Option<Credentials>, StoreError> {
        on_backend!(self, db => db.credentials(email_norm).await)
    }

    /// Counts (and audits) a wrong password against an open account.
    pub async fn login_failed(&self, user_id: &str, lockout: Lockout) -> Result<Failure, StoreError> {
        on_backend!(self, db => db.login_failed(user_id, lockout).await)
    }

    /// Writes one audit entry that goes with no other change.
    pub async fn audit_event(
        &self,
        actor: &str,
        action: &'static str,
        target: Option<&str>,
        detail: serde_json::Value,
    ) -> Result<(), StoreError> {
        on_backend!(self, db => db.audit_event(actor, action, target, detail).await)
    }

    /// Stores a new console session by the hash of its id (ending the one it
    /// `replaces`), after a successful login; audited.
    pub async fn start_session(
        &self,
        user_id: &str,
        id_hash: [u8; 32],
        replaces: Option<[u8; 32]>,
    ) -> Result<(), StoreError> {
        on_backend!(self, db => db.start_session(user_id, id_hash, replaces).await)
    }

    /// The session with this id hash, if it exists and its user is enabled.
    pub async fn session(&self, id_hash: [u8; 32]) -> Result<Option<SessionRecord>, StoreError> {
        on_backend!(self, db => db.session(id_hash).await)
    }

    pub async fn touch_session(&self, id_hash: [u8; 32]) -> Result<(), StoreError> {
        on_backend!(self, db => db.touch_session(id_hash).await)
    }

    /// The triage state (read, assignee, replied) of each of `ids` that has one.
    pub async fn triage_of(&self, ids: Vec<String>) -> Result<std::collections::HashMap<String, Triage>, StoreError> {
        on_backend!(self, db => db.triage_of(ids).await)
    }

    /// Marks a spam inquiry "not spam": status `new`, and the emails it never
    /// had (`planned`, from its form) and its webhook events queued in the same
    /// transaction; audited as `inquiry.not_spam`.
    pub async fn not_spam(
        &self,
        actor: &str,
        id: &str,
        planned: Vec<PlannedNotification>,
        message_id_domain: &str,
    ) -> Result<console::NotSpam, StoreError> {
        on_backend!(self, db => db.not_spam(actor, id, planned, message_id_domain).await)
    }

    /// Marks an inquiry read, by its first opening in the console.
    pub async fn mark_read(&self, inquiry_id: &str) -> Result<(), StoreError> {
        on_backend!(self, db => db.mark_read(inquiry_id).await)
    }

    /// Assigns an inquiry (`None`: to nobody) and marks it replied or not;
    /// audited. `false` when there is no such inquiry or enabled assignee.
    pub async fn set_triage(
        &self,
        actor: &str,
        inquiry_id: &str,
        assignee: Option<String>,
        replied: bool,
    ) -> Result<bool, StoreError> {
        on_backend!(self, db => db.set_triage(actor, inquiry_id, assignee, replied).await)
    }

    /// How many emails and webhook deliveries failed for good (until retried).
    pub async fn failed_deliveries(&self) -> Result<(i64, i64), StoreError> {
        on_backend!(self, db => db.failed_deliveries().await)
    }

    /// One page of the inquiries assigned to `user`, newest first.
    pub async fn assigned_to(&self, user: &str, page: Page) -> Result<(Vec<InquiryRecord>, Option<i64>), StoreError> {
        on_backend!(self, db => db.assigned_to(user, page).await)
    }

    /// Ends a session on the server; with `actor`, audits it as a logout.
    pub async fn end_session(&self, id_hash: [u8; 32], actor: Option<String>) -> Result<(), StoreError> {
        on_backend!(self, db => db.end_session(id_hash, actor).await)
    }
}

/// Opens the database, applies migrations and closes it: `inquiryd migrate`.
pub async fn migrate(settings: &DatabaseSettings) -> Result<(), StoreError> {
    if is_postgres(&settings.url) {
        return postgres::migrate_database(settings).await;
    }
    sqlite::migrate_database(settings).await
}

/// Writes a consistent copy of the live database to `target`, checks it and
/// returns how many inquiries it holds.
pub async fn backup(settings: &DatabaseSettings, target: &Path) -> Result<i64, StoreError> {
    if is_postgres(&settings.url) {
        return Err(StoreError::BackupUnsupported);
    }
    sqlite::backup(settings, target).await
}

/// Whether the URL names a PostgreSQL database (else it is a SQLite file).
pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// What a log line or the banner may say of the database: the SQLite file, or
/// PostgreSQL's host, port and database (never a password).
pub fn describe(settings: &DatabaseSettings) -> String {
    if is_postgres(&settings.url) {
        format!("PostgreSQL at {}", postgres::describe(settings))
    } else {
        settings.url.trim_start_matches("sqlite://").to_owned()
    }
}
