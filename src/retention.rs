//! `privacy.retention_days`: inquiries older than that are erased daily (and by
//! `inquiryd purge`).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::{MailSettings, Settings};
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

/// How a purge ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purged {
    /// Nothing past retention is left.
    All,
    /// `stop` was cancelled: the rest goes at the next run.
    Stopped,
    /// Another process took the day's run over (this one's lease had run
    /// out), so this one stopped.
    TakenOver,
}

/// Erases what is past retention, [`PURGE_CHUNK`] inquiries per transaction,
/// each audited with its count; adds the erased ids to `erased`, which keeps
/// them when a later transaction fails. Once `stop` is cancelled it begins no
/// further transaction. With a `lease` (the daily run's, not the command
/// line's), it renews the lease after each transaction.
pub async fn purge(
    store: &Store,
    retention_days: u32,
    actor: &str,
    erased: &mut Vec<String>,
    stop: &CancellationToken,
    mut lease: Option<&mut Lease>,
) -> Result<Purged, StoreError> {
    let (cutoff, detail) = (cutoff(retention_days), json!({"retention_days": retention_days}));
    // A run tried again after a failure goes on where it stopped.
    let mut resumed = !erased.is_empty();
    loop {
        let which = Erase::ReceivedBefore { cutoff, limit: PURGE_CHUNK, resumed };
        let started = Instant::now();
        let ids = store.erase(actor, "retention.purge", which.clone(), detail.clone()).await?;
        let more = which.continues(ids.len());
        erased.extend(ids);
        if !more {
            return Ok(Purged::All);
        }
        if let Some(lease) = lease.as_deref_mut() {
            if !lease.renew(store).await? {
                return Ok(Purged::TakenOver);
            }
        }
        // As long again without the write lock: SQLite does not queue its
        // waiters, so a command-line purge that began its next transaction at
        // once kept taking the lock from the server's writer (which then
        // answered 503 after waiting `busy_timeout_ms`).
        tokio::select! {
            _ = stop.cancelled() => return Ok(Purged::Stopped),
            _ = tokio::time::sleep(started.elapsed()) => {}
        }
        resumed = true;
    }
}

/// How long a running purge holds the day's run without renewing its claim.
/// The claim is a mark in the database (`meta.retention_last_run`): the run is
/// due once the mark is a day old. A running purge keeps it [`HOLD`] short
/// of a day old, renewed after each transaction (which takes well under a
/// second), and sets it to its start when it ends. A purge killed half-way
/// (kill -9, a lost machine) thus leaves a mark that comes due [`HOLD`] after
/// its last renewal, and the next hourly check after that, on any process,
/// erases the rest.
pub const HOLD: Duration = Duration::from_secs(10 * 60);

/// The day's run, claimed by this process: where its mark stands.
#[derive(Debug)]
pub struct Lease {
    mark: i64,
    claimed_at: i64,
}

impl Lease {
    /// The mark of a run that holds the lease at `now`: due [`HOLD`] later.
    fn mark_at(now: i64) -> i64 {
        now - DAY.as_millis() as i64 + HOLD.as_millis() as i64
    }

    /// Claims the day's run if it is due at `now` (across every process on
    /// the database: one conditional write decides).
    pub async fn claim(store: &Store, now: i64) -> Result<Option<Self>, StoreError> {
        let mark = Self::mark_at(now);
        let claimed = store.claim_retention_run(now - DAY.as_millis() as i64, mark).await?;
        Ok(claimed.then_some(Self { mark, claimed_at: now }))
    }

    /// Holds the run for [`HOLD`] from now; `false` when the mark is no longer
    /// this run's (another process found it due and took the run over).
    async fn renew(&mut self, store: &Store) -> Result<bool, StoreError> {
        let mark = Self::mark_at(now_ms());
        let kept = store.move_retention_mark(self.mark, mark).await?;
        if kept {
            self.mark = mark;
        }
        Ok(kept)
    }

    /// Ends the run: a finished one is due a day after it was claimed, one
    /// that stopped before its end (a shutdown, a failure) at the next check.
    async fn end(self, store: &Store, finished: bool) -> Result<bool, StoreError> {
        store.move_retention_mark(self.mark, if finished { self.claimed_at } else { 0 }).await
    }
}

/// How often a process asks whether the daily purge is due.
const CHECK: Duration = Duration::from_secs(60 * 60);

/// Runs the purge once a day, across every process on the database: shortly
/// after start-up (once the server is listening) and then every hour, a process
/// asks the database whether a purge ran in the last 24 hours, and the first to
/// ask after that runs it (see [`Lease`]). Stops when `stop` is cancelled; a
/// purge in progress then finishes its transaction (of [`PURGE_CHUNK`]) and
/// forgets the mail files of what it erased. A purge that stopped before its
/// end (a shutdown, a failure) gives its claim back, so the rest goes at the
/// next check.
pub fn spawn(store: Store, settings: Arc<Settings>, stop: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut hourly = tokio::time::interval_at(Instant::now() + Duration::from_secs(1), CHECK);
        loop {
            tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                _ = hourly.tick() => {
                    match Lease::claim(&store, now_ms()).await {
                        Ok(Some(lease)) => run_once(&store, &settings, &stop, lease).await,
                        Ok(None) => tracing::info!("retention purge not due: it ran within the last day or is running"),
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
/// inquiry names, older than [`upload_window`]); and a second after start-up,
/// then daily, the mail copies of inquiries that are gone ([`sweep_mail_copies`]).
pub fn spawn_file_sweep(store: Store, settings: &Settings, stop: CancellationToken) -> JoinHandle<()> {
    let grace = upload_window(settings);
    let mail = settings.mail.clone();
    tokio::spawn(async move {
        let mut uploads = tokio::time::interval_at(Instant::now() + DAY, DAY);
        let mut mail_copies = tokio::time::interval_at(Instant::now() + Duration::from_secs(1), DAY);
        loop {
            tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                _ = uploads.tick() => match store.sweep_files(grace).await {
                    Ok(removed) => tracing::info!(removed, "files directory swept"),
                    Err(error) => tracing::warn!(%error, "cannot sweep the files directory"),
                },
                _ = mail_copies.tick() => match sweep_mail_copies(&store, &mail).await {
                    Ok(0) => {}
                    Ok(removed) => tracing::info!(removed, "mail copies of erased inquiries removed"),
                    Err(error) => tracing::warn!(%error, "cannot sweep the mail directory"),
                },
            }
        }
        tracing::debug!("file sweep stopped");
    })
}

/// Removes the file transport's copies of inquiries that are no longer stored.
/// An erasure removes its own after its commit, but a process killed in
/// between (kill -9 during a purge, say) leaves them; the inquiry is committed
/// before any of its mail is written, so a copy without one was erased.
/// Returns how many it removed.
pub async fn sweep_mail_copies(store: &Store, mail: &MailSettings) -> Result<usize, StoreError> {
    let copies = mail::copies(mail).await;
    let mut ids: Vec<String> = copies.iter().map(|(_, id)| id.clone()).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut present = HashSet::new();
    for chunk in ids.chunks(500) {
        present.extend(store.present(chunk).await?);
    }
    let mut removed = 0;
    for (path, id) in copies {
        if !present.contains(&id) && tokio::fs::remove_file(&path).await.is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

/// A purge that meets a transient failure (on PostgreSQL, e.g. a deadlock
/// with an outbox worker settling the same inquiries' notifications) is tried
/// again this many times, a little later each time.
const ATTEMPTS: u32 = 5;

async fn run_once(store: &Store, settings: &Settings, stop: &CancellationToken, mut lease: Lease) {
    let days = settings.privacy.retention_days;
    tracing::info!(retention_days = days, "retention purge started");
    let mut erased = Vec::new();
    let mut attempt = 0;
    let outcome = loop {
        attempt += 1;
        match purge(store, days, "retention", &mut erased, stop, Some(&mut lease)).await {
            Err(error) if error.is_transient() && attempt < ATTEMPTS => {
                tracing::warn!(%error, attempt, "retention purge failed; trying again");
                tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt))).await;
            }
            outcome => break outcome,
        }
    };
    mail::forget(&settings.mail, &erased).await;
    // A run taken over is the other process's to end.
    if !matches!(outcome, Ok(Purged::TakenOver)) {
        match lease.end(store, matches!(outcome, Ok(Purged::All))).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!("the retention purge's claim was taken over before it ended"),
            Err(error) => tracing::warn!(
                %error,
                "cannot end the retention purge's claim; it comes due ten minutes after its last renewal"
            ),
        }
    }
    // Logged once the claim is settled.
    let erased = erased.len();
    match outcome {
        Ok(Purged::All) => tracing::info!(erased, "retention purge done"),
        Ok(Purged::Stopped) => {
            tracing::info!(erased, "retention purge stopped by the shutdown; the rest goes next time")
        }
        Ok(Purged::TakenOver) => tracing::warn!(
            erased,
            "retention purge stopped: another process took it over (this one had not renewed its claim in time)"
        ),
        Err(error) => tracing::warn!(%error, erased, "retention purge failed; retrying at the next check"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The day's run is claimed once; a lease that ran out is taken over, and
    /// the process that had it learns so at its next renewal; a run that ended
    /// is due a day after its claim, one that stopped early at once.
    #[tokio::test]
    async fn the_days_run_is_held_as_a_lease() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _task) = crate::store::open_for_tests(dir.path()).await;
        let (hold, day) = (HOLD.as_millis() as i64, DAY.as_millis() as i64);
        // A minute ago, so that a renewal now holds the run past this claim's term.
        let now = now_ms() - 60_000;
        let mut first = Lease::claim(&store, now).await.unwrap().expect("due: it never ran");
        assert!(Lease::claim(&store, now + hold - 1).await.unwrap().is_none(), "held for HOLD");
        assert!(first.renew(&store).await.unwrap());
        assert!(Lease::claim(&store, now + hold).await.unwrap().is_none(), "renewed: held past its first term");

        let later = now_ms() + hold;
        let second = Lease::claim(&store, later).await.unwrap().expect("a lease that ran out is taken over");
        assert!(!first.renew(&store).await.unwrap(), "the first learns that it lost the run");
        assert!(!first.end(&store, false).await.unwrap(), "and cannot end it");

        assert!(second.end(&store, true).await.unwrap());
        assert!(Lease::claim(&store, later + day - 1).await.unwrap().is_none(), "done: due a day after its claim");
        let third = Lease::claim(&store, later + day).await.unwrap().expect("a day after");
        assert!(third.end(&store, false).await.unwrap());
        assert!(Lease::claim(&store, later + day).await.unwrap().is_some(), "stopped early: due at once");
    }
}
