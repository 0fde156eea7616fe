//! The outbox worker: woken by every commit that queues mail, it claims due
//! notifications, sends them with bounded concurrency and records each outcome.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{stream, StreamExt};
use rand::Rng;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Composer, Transport};
use crate::store::{ClaimedNotification, Settlement, Store};
use crate::timestamp::now_ms;

/// The safety-net poll while nothing is due; commits wake the worker directly.
const IDLE_POLL: Duration = Duration::from_secs(30);
/// Longest wait between two attempts of one notification.
const MAX_BACKOFF_MS: i64 = 6 * 60 * 60 * 1000;

#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub concurrency: usize,
    pub max_attempts: u32,
    pub retry_base_seconds: u64,
    /// How long a claim lasts; renewed every third of it while deliveries run.
    pub lease_ms: i64,
}

pub struct OutboxWorker {
    pub store: Store,
    pub composer: Arc<Composer>,
    pub transport: Arc<Transport>,
    pub wake: Arc<Notify>,
    pub options: WorkerOptions,
}

enum Delivery {
    Settled(Settlement),
    /// Not attempted because shutdown began: handed back to the queue.
    Released(String),
}

impl OutboxWorker {
    /// Runs until `stop` is cancelled; then finishes the sends in progress and
    /// hands back whatever it had claimed but not started.
    pub fn spawn(self, stop: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(self.run(stop))
    }

    async fn run(self, stop: CancellationToken) {
        if self.store.reset_in_flight().await.is_err() {
            tracing::warn!("could not requeue notifications left in flight");
        }
        loop {
            while !stop.is_cancelled() {
                match self.round(&stop).await {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(()) => {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        break;
                    }
                }
            }
            if stop.is_cancelled() {
                break;
            }
            let wait = self.until_next_due().await;
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = stop.cancelled() => {}
            }
        }
        tracing::debug!("outbox worker stopped");
    }

    /// One claim, send and settle; returns how many notifications it claimed.
    async fn round(&self, stop: &CancellationToken) -> Result<usize, ()> {
        let limit = (self.options.concurrency * 16) as i64;
        let lease_ms = self.options.lease_ms;
        let Ok(claimed) = self.store.claim_due(limit, lease_ms).await else {
            return Err(());
        };
        let count = claimed.len();
        if count == 0 {
            return Ok(0);
        }
        let ids: Vec<String> = claimed.iter().map(|n| n.id.clone()).collect();
        let deliveries =
            stream::iter(claimed).map(|n| self.deliver(n, stop)).buffer_unordered(self.options.concurrency);
        let deliveries: Vec<Delivery> = self.renewing(ids, deliveries.collect()).await;
        let (mut settled, mut released) = (Vec::new(), Vec::new());
        for delivery in deliveries {
            match delivery {
                Delivery::Settled(s) => settled.push(s),
                Delivery::Released(id) => released.push(id),
            }
        }
        if !released.is_empty() && self.store.release(released).await.is_err() {
            tracing::warn!("could not release claimed notifications; they are retried after restart");
        }
        if self.store.settle(settled).await.is_err() {
            // The leases run out and the notifications are sent again, with the same Message-ID.
            tracing::error!("could not record delivery outcomes");
            return Err(());
        }
        Ok(count)
    }

    /// Runs `work` while renewing the lease of `ids` every third of it, so
    /// that a long batch (a slow server, many retries) is not taken over by
    /// another process while this one is alive.
    async fn renewing<T>(&self, ids: Vec<String>, work: impl std::future::Future<Output = T>) -> T {
        let lease_ms = self.options.lease_ms;
        let mut renew = tokio::time::interval(Duration::from_millis(lease_ms as u64 / 3));
        renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        renew.tick().await;
        tokio::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => return out,
                _ = renew.tick() => {
                    if self.store.extend_lease(ids.clone(), lease_ms).await.is_err() {
                        tracing::warn!("could not renew the lease of notifications being sent");
                    }
                }
            }
        }
    }

    async fn deliver(&self, notification: ClaimedNotification, stop: &CancellationToken) -> Delivery {
        if stop.is_cancelled() {
            return Delivery::Released(notification.id);
        }
        let (id, attempt) = (notification.id.clone(), notification.attempt);
        let kind = notification.kind.as_str();
        let message = match self.composer.compose(&notification) {
            Ok(message) => message,
            Err(e) => {
                tracing::error!(notification = %id, error = %e, "cannot compose notification");
                metrics::counter!("inquiryd_notifications_failed_total", "kind" => kind).increment(1);
                return Delivery::Settled(Settlement::Failed { id, attempt, error: format!("compose: {e}") });
            }
        };
        let name = format!("{}-{}-{}", notification.inquiry.id, kind, id);
        let settlement = match self.transport.send(&message, &name).await {
            Ok(response) => {
                metrics::counter!("inquiryd_notifications_sent_total", "kind" => kind).increment(1);
                let lag = (now_ms() - notification.inquiry.received_at).max(0) as f64 / 1000.0;
                metrics::histogram!("inquiryd_notification_lag_seconds", "kind" => kind).record(lag);
                Settlement::Sent { id, attempt, response }
            }
            Err(e) if e.permanent || attempt >= i64::from(self.options.max_attempts) => {
                tracing::warn!(notification = %id, attempt, cause = summary(&e.detail), "notification failed");
                metrics::counter!("inquiryd_notifications_failed_total", "kind" => kind).increment(1);
                Settlement::Failed { id, attempt, error: e.detail }
            }
            Err(e) => {
                tracing::info!(notification = %id, attempt, cause = summary(&e.detail), "delivery will be retried");
                metrics::counter!("inquiryd_notification_retries_total", "kind" => kind).increment(1);
                let next_attempt_at = now_ms() + backoff_ms(self.options.retry_base_seconds, attempt);
                Settlement::Retry { id, attempt, error: e.detail, next_attempt_at }
            }
        };
        Delivery::Settled(settlement)
    }

    async fn until_next_due(&self) -> Duration {
        match self.store.next_due().await {
            Ok(Some(due)) => Duration::from_millis((due - now_ms()).clamp(0, IDLE_POLL.as_millis() as i64) as u64),
            _ => IDLE_POLL,
        }
    }
}

/// What a log line may say about a failure: the SMTP code or the stage that
/// failed, never the server's text (which can quote the visitor's address).
/// The full text is kept in the outbox for admins.
fn summary(detail: &str) -> String {
    let code = detail
        .split(|c: char| !c.is_ascii_digit())
        .find(|part| part.len() == 3 && matches!(part.as_bytes()[0], b'4' | b'5'));
    match code {
        Some(code) => format!("SMTP {code}"),
        None => detail.split(':').next().unwrap_or("error").chars().take(40).collect(),
    }
}

/// Exponential backoff with "equal jitter": half the delay fixed, half random.
fn backoff_ms(base_seconds: u64, attempt: i64) -> i64 {
    let exponent = (attempt - 1).clamp(0, 30) as u32;
    let delay = (base_seconds as i64 * 1000).saturating_mul(1 << exponent).min(MAX_BACKOFF_MS);
    let half = delay / 2;
    half + rand::rng().random_range(0..=half)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_summaries_hold_no_addresses() {
        assert_eq!(summary("permanent error (550): 5.1.1 <ivan@example.org> rejected"), "SMTP 550");
        assert_eq!(summary("connect: Connection refused (os error 111)"), "connect");
        assert_eq!(summary("AUTH: permanent error (535): bad credentials"), "SMTP 535");
    }

    #[test]
    fn backoff_grows_and_stays_jittered_within_bounds() {
        for attempt in 1..=6 {
            let full = 30_000 * (1 << (attempt - 1));
            for _ in 0..50 {
                let d = backoff_ms(30, attempt);
                assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d}");
            }
        }
        assert!(backoff_ms(30, 60) <= MAX_BACKOFF_MS);
    }
}
