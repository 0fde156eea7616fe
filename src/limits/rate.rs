//! Keyed rate limits with bounded memory.

use std::hash::{BuildHasher, Hash};
use std::num::NonZeroU32;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

type Inner<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock, StateInformationMiddleware>;

/// What the client is told after a check, for the `RateLimit` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    pub name: &'static str,
    pub quota: u32,
    pub window_seconds: u64,
    pub remaining: u32,
    /// Whole seconds until the allowance is full again (or, when refused, until
    /// the next request is allowed).
    pub reset_seconds: u64,
}

/// A refused request: `Retry-After` and the headers to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub retry_after: u64,
    pub allowance: Allowance,
}

/// One limit (say, 5 per minute per address), keyed by `K`, holding at most
/// `max_keys` keys: past that it first forgets keys whose state is back to
/// fresh, and if that is not enough starts over, so a flood of distinct keys
/// cannot grow memory without bound.
pub struct KeyedLimit<K: Hash + Eq + Clone> {
    name: &'static str,
    quota: Quota,
    per: u32,
    window: Duration,
    max_keys: usize,
    clock: DefaultClock,
    limiter: RwLock<Arc<Inner<K>>>,
}

impl<K: Hash + Eq + Clone> KeyedLimit<K> {
    /// `count` requests per `window`, of which `burst` may come at once.
    pub fn new(name: &'static str, count: u32, window: Duration, burst: u32, max_keys: usize) -> Self {
        let count = NonZeroU32::new(count.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
        let period = window / count.get();
        let quota = Quota::with_period(period).unwrap_or_else(|| Quota::per_second(count)).allow_burst(burst);
        let clock = DefaultClock::default();
        Self {
            name,
            quota,
            per: count.get(),
            window,
            max_keys,
            clock: clock.clone(),
            limiter: RwLock::new(Arc::new(Self::fresh(quota, &clock))),
        }
    }

    fn fresh(quota: Quota, clock: &DefaultClock) -> Inner<K> {
        RateLimiter::dashmap_with_clock(quota, clock.clone()).with_middleware::<StateInformationMiddleware>()
    }

    fn current(&self) -> Arc<Inner<K>> {
        self.limiter.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Counts one request against `key`.
    pub fn check(&self, key: &K) -> Result<Allowance, Refused> {
        let limiter = self.current();
        match limiter.check_key(key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let missing = self.quota.burst_size().get() - remaining;
                let reset = self.quota.replenish_interval() * missing;
                if limiter.len() > self.max_keys {
                    self.shed(&limiter);
                }
                Ok(self.allowance(remaining, reset))
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                let retry_after = ceil_seconds(wait).max(1);
                Err(Refused {
                    retry_after,
                    allowance: Allowance { reset_seconds: retry_after, ..self.allowance(0, wait) },
                })
            }
        }
    }

    fn allowance(&self, remaining: u32, reset: Duration) -> Allowance {
        Allowance {
            name: self.name,
            quota: self.per,
            window_seconds: self.window.as_secs(),
            remaining,
            reset_seconds: ceil_seconds(reset),
        }
    }

    fn shed(&self, seen: &Arc<Inner<K>>) {
        seen.retain_recent();
        if seen.len() <= self.max_keys {
            return;
        }
        let mut slot = self.limiter.write().unwrap_or_else(|e| e.into_inner());
        if Arc::ptr_eq(&slot, seen) {
            tracing::warn!(limit = self.name, keys = seen.len(), "rate limiter over its key cap; starting afresh");
            metrics::counter!("inquiryd_rate_limiter_resets_total", "limit" => self.name).increment(1);
            *slot = Arc::new(Self::fresh(self.quota, &self.clock));
        }
    }

    /// Periodic housekeeping: forgets keys that are back to a full allowance.
    pub fn retain_recent(&self) {
        let limiter = self.current();
        limiter.retain_recent();
        limiter.shrink_to_fit();
    }

    pub fn len(&self) -> usize {
        self.current().len()
    }
}

fn ceil_seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Hashes an email address into a small key with a per-process random seed, so
/// the limiter holds no addresses in memory.
pub fn email_key(hasher: &impl BuildHasher, normalized_email: &str) -> u64 {
    hasher.hash_one(normalized_email)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refusal_with_retry_after() {
        let limit = KeyedLimit::<u128>::new("ip", 5, Duration::from_secs(60), 5, 1000);
        for n in (0..5).rev() {
            assert_eq!(limit.check(&1).unwrap().remaining, n);
        }
        let refused = limit.check(&1).unwrap_err();
        assert!((11..=12).contains(&refused.retry_after), "{refused:?}");
        assert_eq!(refused.allowance.remaining, 0);
        assert!(limit.check(&2).is_ok(), "another key is unaffected");
    }

    #[test]
    fn key_cap_bounds_memory() {
        let limit = KeyedLimit::<u128>::new("ip", 5, Duration::from_secs(60), 5, 1000);
        for key in 0..20_000u128 {
            let _ = limit.check(&key);
        }
        assert!(limit.len() <= 1001, "{}", limit.len());
    }
}
