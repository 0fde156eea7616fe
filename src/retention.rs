//! `privacy.retention_days`: inquiries older than that are erased daily (and by
//! `inquiryd purge`).

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::mail;
use crate::store::{Erase, Store, StoreError};
use crate::timestamp::now_ms;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// The instant before which inquiries are past retention.
pub fn cutoff(retention_days: u32) -> i64 {
    now_ms() - i64::from(retention_days) * DAY.as_millis() as i64
}

/// A purge erases at most this many inquiries per transaction, oldest first,
/// so that submissions are committed between them. In one transaction, a
/// backlog of 72,603 held a submission for 17.2 s on SQLite, and every erased
/// row was in memory at once; 200 at a time, 0.19 s (README, Retention).
pub const PURGE_CHUNK: i64 = 200;

/// Erases what is past retention, [`PURGE_CHUNK`] inquiries per transaction,
/// each audited with its count; adds the erased ids to `erased`, which keeps
/// them when a later transaction fails. Once `stop` is cancelled it begins no
/// further transaction and returns `false`: the rest goes at the next run.
pub async fn purge(
    store: &Store,
    retention_days: u32,
    actor: &str,
    erased: &mut Vec<String>,
    stop: &CancellationToken,
) -> Result<bool, StoreError> {
    let (cutoff, detail) = (cutoff(retention_days), json!({"retention_days": retention_days}));
    // A run tried again after a failure goes on where it stopped.
    let mut resumed = !erased.is_empty();
    loop {
        let which = Erase::ReceivedBefore { cutoff, limit: PURGE_CHUNK, resumed };
        let started = Instant::now();
        let ids = store.erase(actor, "retention.purge", which, detail.clone()).await?;
        let whole = ids.len() as i64 == PURGE_CHUNK;
        erased.extend(ids);
        if !whole {
            return Ok(true);
        }
        // As long again without the write lock: SQLite does not queue its
        // waiters, so a command-line purge that began its next transaction at
        // once kept taking the lock from the server's writer (which then
        // answered 503 after waiting `busy_timeout_ms`).
        tokio::select! {
            _ = stop.cancelled() => return Ok(false),
            _ = tokio::time::sleep(started.elapsed()) => {}
        }
        resumed = true;
    }
}

/// How often a process asks whether the daily purge is due.
const CHECK: Duration = Duration::from_secs(60 * 60);

/// Runs the purge once a day, across every process on the database: shortly
/// after start-up (once the server is listening) and then every hour, a process
/// asks the database whether a purge ran in the last 24 hours, and the first to
/// ask after that runs it. Stops when `stop` is cancelled; a purge in progress
/// then finishes its transaction (of [`PURGE_CHUNK`]) and forgets the mail files
/// of what it erased. A purge that stopped before its end (a shutdown, a
/// failure) gives its claim back, so the rest goes at the next check.
pub fn spawn(store: Store, settings: Arc<Settings>, stop: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut hourly = tokio::time::interval_at(Instant::now() + Duration::from_secs(1), CHECK);
        loop {
            tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                _ = hourly.tick() => {
                    let now = now_ms();
                    match store.claim_retention_run(now, DAY.as_millis() as i64).await {
                        Ok(true) => run_once(&store, &settings, &stop, now).await,
                        Ok(false) => tracing::info!("retention purge not due: it ran within the last day"),
                        Err(error) => tracing::warn!(%error, "cannot tell whether the retention purge is due"),
                    }
                }
            }
        }
        tracing::debug!("retention task stopped");
    })
}

/// How long an upload can be in progress: its body arrives within
/// `client_timeout_seconds`, and its commit follows; a file younger than twice
/// that may belong to one (on this process or a replica sharing the directory).
pub fn upload_window(settings: &Settings) -> Duration {
    settings.server.client_timeout() * 2
}

/// Once a day, removes what interrupted uploads left in `files_dir` (files no
/// inquiry names, older than [`upload_window`]).
pub fn spawn_file_sweep(store: Store, settings: &Settings, stop: CancellationToken) -> JoinHandle<()> {
    let grace = upload_window(settings);
    tokio::spawn(async move {
        let mut daily = tokio::time::interval_at(Instant::now() + DAY, DAY);
        loop {
            tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                _ = daily.tick() => match store.sweep_files(grace).await {
                    Ok(removed) => tracing::info!(removed, "files directory swept"),
                    Err(error) => tracing::warn!(%error, "cannot sweep the files directory"),
                },
            }
        }
        tracing::debug!("file sweep stopped");
    })
}

/// A purge that meets a transient failure (on PostgreSQL, e.g. a deadlock
/// with an outbox worker settling the same inquiries' notifications) is tried
/// again this many times, a little later each time.
const ATTEMPTS: u32 = 5;

async fn run_once(store: &Store, settings: &Settings, stop: &CancellationToken, claimed_at: i64) {
    let days = settings.privacy.retention_days;
    tracing::info!(retention_days = days, "retention purge started");
    let mut erased = Vec::new();
    let mut finished = false;
    for attempt in 1..=ATTEMPTS {
        match purge(store, days, "retention", &mut erased, stop).await {
            Ok(true) => {
                tracing::info!(erased = erased.len(), "retention purge done");
                finished = true;
                break;
            }
            Ok(false) => {
                tracing::info!(
                    erased = erased.len(),
                    "retention purge stopped by the shutdown; the rest goes next time"
                );
                break;
            }
            Err(error) if error.is_transient() && attempt < ATTEMPTS => {
                tracing::warn!(%error, attempt, "retention purge failed; trying again");
                tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt))).await;
            }
            Err(error) => {
                tracing::warn!(%error, erased = erased.len(), "retention purge failed; retrying at the next check");
                break;
            }
        }
    }
    mail::forget(&settings.mail, &erased).await;
    if !finished {
        if let Err(error) = store.release_retention_run(claimed_at).await {
            tracing::warn!(%error, "cannot give the retention purge's claim back; it runs again tomorrow");
        }
    }
}
