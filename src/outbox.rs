//! The outbox worker: woken by every commit that queues a delivery, it claims
//! due rows with a lease, delivers them with bounded concurrency and records
//! each outcome. One worker runs per channel (email, webhooks), each with its
//! own queue table; the claim, lease, backoff and crash-recovery rules are the
//! same for both and live here.

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use rand::Rng;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::store::{Settlement, Store, StoreError};
use crate::timestamp::now_ms;

/// The safety-net poll while nothing is due; commits wake the worker directly.
const IDLE_POLL: Duration = Duration::from_secs(30);
/// How many deliveries one claim takes per connection. With 16 (the next
/// claim made when half are left) the connections still ran dry under load,
/// waiting for the writer: at 2,380 submissions/s the email backlog grew to
/// 8-11 thousand in 30 s; with 64 it stayed under 800 (`bench/results/`).
const CLAIM_PER_CONNECTION: usize = 64;
/// Longest wait between two attempts of one delivery.
const MAX_BACKOFF_MS: i64 = 6 * 60 * 60 * 1000;

#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub concurrency: usize,
    pub max_attempts: u32,
    pub retry_base_seconds: u64,
    /// How long a claim lasts; renewed every third of it while deliveries run.
    pub lease_ms: i64,
}

/// How one attempt ended, as a channel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// Delivered; the receiving server's answer.
    Delivered(String),
    /// Worth another attempt, after `after` if the receiver asked for a delay.
    Retry { error: String, after: Option<Duration> },
    /// Another attempt cannot help.
    Failed(String),
}

/// What the worker delivers: one queue table of the store and the way out.
pub trait Channel: Send + Sync + 'static {
    type Item: Send + 'static;

    /// The delivery's id in its queue.
    fn id(item: &Self::Item) -> &str;
    /// Its attempt number, counting from 1.
    fn attempt(item: &Self::Item) -> i64;
    /// The metrics label: `staff`, `receipt` (emails) or `webhook`.
    fn kind(item: &Self::Item) -> &'static str;
    /// When the event it reports happened (the lag metric counts from it).
    fn since(item: &Self::Item) -> i64;

    fn claim(
        &self,
        store: &Store,
        limit: i64,
        lease_ms: i64,
    ) -> impl Future<Output = Result<Vec<Self::Item>, StoreError>> + Send;
    fn extend_lease(
        &self,
        store: &Store,
        ids: Vec<String>,
        lease_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn settle(&self, store: &Store, settled: Vec<Settlement>) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn release(&self, store: &Store, ids: Vec<String>) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn reset_in_flight(&self, store: &Store) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn next_due(&self, store: &Store) -> impl Future<Output = Result<Option<i64>, StoreError>> + Send;

    /// One attempt.
    fn deliver(&self, item: &Self::Item) -> impl Future<Output = Attempt> + Send;
    /// What a log line may say about a failure (never personal data or a secret).
    fn summary(detail: &str) -> String;
}

pub struct OutboxWorker<C: Channel> {
    pub store: Store,
    pub channel: C,
    pub wake: Arc<Notify>,
    pub options: WorkerOptions,
}

impl<C: Channel> OutboxWorker<C> {
    /// Runs until `stop` is cancelled; then finishes the deliveries in progress
    /// and hands back whatever it had claimed but not started.
    pub fn spawn(self, stop: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(self.run(stop))
    }

    async fn run(self, stop: CancellationToken) {
        if self.channel.reset_in_flight(&self.store).await.is_err() {
            tracing::warn!("could not requeue deliveries left in flight");
        }
        while !stop.is_cancelled() {
            if self.drain(&stop).await.is_err() {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            if stop.is_cancelled() {
                break;
            }
            // A commit during the drain left a permit: the wait ends at once.
            let wait = self.until_next_due().await;
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = stop.cancelled() => {}
            }
        }
        tracing::debug!("outbox worker stopped");
    }

    /// Delivers what is due, `concurrency` at a time, until a claim finds less
    /// than it asked for and every delivery is settled. The next claim goes out,
    /// with the outcomes so far, while the queue still holds half a claim, so
    /// that no connection waits for the store between claims (with a claim after
    /// each finished round, the waits for the writer cut the email delivered
    /// under load by a third or more). Every claimed and unsettled delivery
    /// has its lease renewed every third of it.
    async fn drain(&self, stop: &CancellationToken) -> Result<(), ()> {
        let concurrency = self.options.concurrency;
        let limit = concurrency * CLAIM_PER_CONNECTION;
        let mut queue = VecDeque::new();
        let mut running = FuturesUnordered::new();
        // Claimed and not yet in a settlement sent to the store.
        let mut held: HashSet<String> = HashSet::new();
        let mut outcomes: Vec<Settlement> = Vec::new();
        let mut claiming = None;
        let (mut more, mut failed) = (true, false);
        let mut renew = tokio::time::interval(Duration::from_millis(self.options.lease_ms as u64 / 3));
        renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        renew.tick().await;
        loop {
            if stop.is_cancelled() {
                more = false;
            } else {
                while running.len() < concurrency {
                    let Some(item) = queue.pop_front() else { break };
                    running.push(self.deliver(item));
                }
            }
            let claim_now = more && queue.len() < limit / 2;
            // Outcomes are recorded at least every quarter of a claim, so that a
            // slow server's deliveries show as sent, and a crash repeats few.
            if claiming.is_none() && (claim_now || outcomes.len() >= limit / 4) {
                let settled = std::mem::take(&mut outcomes);
                settled.iter().for_each(|s| {
                    held.remove(s.id());
                });
                claiming = Some(Box::pin(self.settle_and_claim(settled, if claim_now { limit } else { 0 })));
            }
            if running.is_empty() && claiming.is_none() {
                break;
            }
            tokio::select! {
                Some(settlement) = running.next() => outcomes.push(settlement),
                (recorded, claimed) = async { claiming.as_mut().expect("guarded").await }, if claiming.is_some() => {
                    claiming = None;
                    failed |= !recorded;
                    match claimed {
                        Ok(None) => more &= !failed,
                        Ok(Some(items)) => {
                            more = !failed && items.len() == limit;
                            held.extend(items.iter().map(|item| C::id(item).to_owned()));
                            queue.extend(items);
                        }
                        Err(()) => (more, failed) = (false, true),
                    }
                }
                _ = renew.tick() => {
                    let ids = held.iter().cloned().collect();
                    if self.channel.extend_lease(&self.store, ids, self.options.lease_ms).await.is_err() {
                        tracing::warn!("could not renew the lease of deliveries in progress");
                    }
                }
            }
        }
        if !queue.is_empty() {
            let unstarted = queue.iter().map(|item| C::id(item).to_owned()).collect();
            if self.channel.release(&self.store, unstarted).await.is_err() {
                tracing::warn!("could not release claimed deliveries; they are retried when their lease runs out");
            }
        }
        if !outcomes.is_empty() && self.channel.settle(&self.store, outcomes).await.is_err() {
            failed = true;
            tracing::error!("could not record delivery outcomes");
        }
        if failed {
            Err(())
        } else {
            Ok(())
        }
    }

    /// Records `settled` and claims up to `limit` more (none when 0), sent to
    /// the store together (the SQLite writer takes both into one transaction).
    /// Whether the outcomes were recorded, and what was claimed, if asked.
    async fn settle_and_claim(
        &self,
        settled: Vec<Settlement>,
        limit: usize,
    ) -> (bool, Result<Option<Vec<C::Item>>, ()>) {
        let settle = async { settled.is_empty() || self.channel.settle(&self.store, settled).await.is_ok() };
        let claim = async {
            match limit {
                0 => Ok(None),
                _ => self.channel.claim(&self.store, limit as i64, self.options.lease_ms).await.map(Some),
            }
        };
        let (recorded, claimed) = tokio::join!(settle, claim);
        if !recorded {
            // The leases run out and the deliveries are made again, with the same ids.
            tracing::error!("could not record delivery outcomes");
        }
        (recorded, claimed.map_err(|_| ()))
    }

    async fn deliver(&self, item: C::Item) -> Settlement {
        let id = C::id(&item).to_owned();
        let (attempt, kind) = (C::attempt(&item), C::kind(&item));
        match self.channel.deliver(&item).await {
            Attempt::Delivered(response) => {
                metrics::counter!("inquiryd_notifications_sent_total", "kind" => kind).increment(1);
                let lag = (now_ms() - C::since(&item)).max(0) as f64 / 1000.0;
                metrics::histogram!("inquiryd_notification_lag_seconds", "kind" => kind).record(lag);
                Settlement::Sent { id, attempt, response }
            }
            Attempt::Retry { error, .. } if attempt >= i64::from(self.options.max_attempts) => {
                self.failed(kind, &id, attempt, &error);
                Settlement::Failed { id, attempt, error }
            }
            Attempt::Failed(error) => {
                self.failed(kind, &id, attempt, &error);
                Settlement::Failed { id, attempt, error }
            }
            Attempt::Retry { error, after } => {
                tracing::info!(delivery = %id, kind, attempt, cause = C::summary(&error), "delivery will be retried");
                metrics::counter!("inquiryd_notification_retries_total", "kind" => kind).increment(1);
                // The receiver's Retry-After is a floor, never a shortcut.
                let backoff = backoff_ms(self.options.retry_base_seconds, attempt);
                let wait = after.map_or(backoff, |after| backoff.max(after.as_millis() as i64));
                Settlement::Retry { id, attempt, error, next_attempt_at: now_ms() + wait }
            }
        }
    }

    fn failed(&self, kind: &'static str, id: &str, attempt: i64, error: &str) {
        tracing::warn!(delivery = %id, kind, attempt, cause = C::summary(error), "delivery failed");
        metrics::counter!("inquiryd_notifications_failed_total", "kind" => kind).increment(1);
    }

    async fn until_next_due(&self) -> Duration {
        match self.channel.next_due(&self.store).await {
            Ok(Some(due)) => Duration::from_millis((due - now_ms()).clamp(0, IDLE_POLL.as_millis() as i64) as u64),
            _ => IDLE_POLL,
        }
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
