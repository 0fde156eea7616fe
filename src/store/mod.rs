//! All SQL lives here. One writer connection commits in groups; reads use a pool.

pub mod admin;
pub mod export;
mod inquiries;
mod outbox;
pub mod search;
pub mod tokens;
mod writer;

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, SqliteConnection};

use crate::config::{DatabaseSettings, Synchronous};

pub use inquiries::{idempotent_answer, InquiryRecord, INQUIRY_COLUMNS};
pub use outbox::{backlog, next_due, ClaimedNotification, Settlement};
pub use writer::in_transaction;
pub use writer::{
    IdempotencyClaim, NewRecord, OutboxOp, OutboxReply, PlannedNotification, Receipt, WriteOutcome, Writer,
    WriterOptions,
};

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid database url")]
    Url(#[source] sqlx::Error),
    #[error("cannot create the database directory {0}")]
    Directory(PathBuf, #[source] std::io::Error),
    #[error("cannot open the database")]
    Open(#[source] sqlx::Error),
    #[error("cannot open the database")]
    OpenWriter(#[source] rusqlite::Error),
    #[error("cannot apply migrations")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database query failed")]
    Query(#[from] sqlx::Error),
    #[error("{0} already exists; a backup never overwrites a file")]
    BackupExists(PathBuf),
}

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
pub async fn open_writer(settings: &DatabaseSettings) -> Result<SqliteConnection, StoreError> {
    let options = connect_options(settings)?;
    ensure_directory(&options)?;
    SqliteConnection::connect_with(&options).await.map_err(StoreError::Open)
}

/// Opens the writer's second connection, for submissions and the outbox, with
/// the same settings as [`open_writer`]. Call it after `open_writer` (which
/// creates the file and turns on WAL).
pub fn open_hot_writer(settings: &DatabaseSettings) -> Result<rusqlite::Connection, StoreError> {
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

/// Opens the read pool over the same file.
pub async fn open_reads(settings: &DatabaseSettings) -> Result<SqlitePool, StoreError> {
    let options = connect_options(settings)?.read_only(true);
    SqlitePoolOptions::new()
        .max_connections(settings.read_pool_size)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .map_err(StoreError::Open)
}

/// Applies pending migrations; safe to run again.
pub async fn migrate(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    MIGRATOR.run(&mut *conn).await?;
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
pub async fn readiness(reads: &SqlitePool) -> (bool, bool) {
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
    let copy = SqliteConnectOptions::new().filename(target).read_only(true);
    let mut copy = SqliteConnection::connect_with(&copy).await.map_err(StoreError::Open)?;
    let check: String = sqlx::query_scalar("PRAGMA integrity_check").fetch_one(&mut copy).await?;
    if check != "ok" {
        return Err(StoreError::Query(sqlx::Error::Protocol(format!("the copy failed its integrity check: {check}"))));
    }
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM inquiries").fetch_one(&mut copy).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The writer's rusqlite connection is the one submissions are committed
    /// through: it must carry the configured durability and the same pragmas.
    #[tokio::test]
    async fn hot_writer_gets_the_configured_pragmas() {
        let dir = tempfile::tempdir().unwrap();
        for (synchronous, expected) in [(Synchronous::Full, 2), (Synchronous::Normal, 1)] {
            let settings = DatabaseSettings {
                url: format!("sqlite://{}/inquiries.db", dir.path().display()),
                synchronous,
                busy_timeout_ms: 1234,
                group_commit: true,
                batch_max: 64,
                read_pool_size: 1,
                search_index: true,
            };
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
