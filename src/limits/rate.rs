//! Keyed rate limits with bounded memory.
//!
//! A flood of distinct keys (one holder of an IPv6 /40 has 2^24 /64s) must cost
//! no more than the key cap, and must never hand a limited client a fresh
//! allowance. So the table is never thrown away: when it is full, the keys whose
//! allowance is full again are evicted (they lose nothing), and if it is still
//! full, a *new* key is not tracked on its own but shares one overflow
//! allowance with every other new key until room returns. Keys already tracked,
//! limited or not, keep their state.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::{NoOpMiddleware, StateInformationMiddleware};
use governor::nanos::Nanos;
use governor::state::keyed::ShrinkableKeyedStateStore;
use governor::state::StateStore;
use governor::{Quota, RateLimiter};

type Inner<K> = RateLimiter<K, BoundedStore<K>, DefaultClock, StateInformationMiddleware>;

/// How often a full table may be swept for keys that can go.
const EVICT_EVERY: Duration = Duration::from_secs(1);

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

/// One limit (say, 5 per minute per address), keyed by `K`, tracking at most
/// `max_keys` keys (see the module doc for what happens past that).
pub struct KeyedLimit<K: Hash + Eq + Clone> {
    name: &'static str,
    quota: Quota,
    per: u32,
    window: Duration,
    max_keys: usize,
    clock: DefaultClock,
    limiter: Inner<K>,
    /// Milliseconds since `created` of the last sweep of a full table.
    last_sweep_ms: AtomicU64,
    created: Instant,
}

impl<K: Hash + Eq + Clone> KeyedLimit<K> {
    /// `count` requests per `window`, of which `burst` may come at once.
    pub fn new(name: &'static str, count: u32, window: Duration, burst: u32, max_keys: usize) -> Self {
        let count = NonZeroU32::new(count.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
        let period = window / count.get();
        let quota = Quota::with_period(period).unwrap_or_else(|| Quota::per_second(count)).allow_burst(burst);
        let clock = DefaultClock::default();
        let store = BoundedStore { keys: Mutex::new(HashMap::new()), overflow: Mutex::new(None), max_keys, name };
        Self {
            name,
            quota,
            per: count.get(),
            window,
            max_keys,
            clock: clock.clone(),
            limiter: RateLimiter::<K, _, _, NoOpMiddleware<_>>::new(quota, store, clock)
                .with_middleware::<StateInformationMiddleware>(),
            last_sweep_ms: AtomicU64::new(0),
            created: Instant::now(),
        }
    }

    /// Counts one request against `key`.
    pub fn check(&self, key: &K) -> Result<Allowance, Refused> {
        if self.limiter.len() >= self.max_keys {
            self.sweep_when_due();
        }
        match self.limiter.check_key(key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let missing = self.quota.burst_size().get() - remaining;
                let reset = self.quota.replenish_interval() * missing;
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

    /// Evicts keys whose allowance is full again, at most once per [`EVICT_EVERY`]:
    /// under a flood the table stays full and a sweep per request would cost a
    /// scan of every key each time.
    fn sweep_when_due(&self) {
        let now = self.created.elapsed().as_millis() as u64;
        let last = self.last_sweep_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= EVICT_EVERY.as_millis() as u64
            && self.last_sweep_ms.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            self.limiter.retain_recent();
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

    /// Periodic housekeeping: forgets keys that are back to a full allowance.
    pub fn retain_recent(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// Keys tracked on their own (the overflow allowance not counted).
    pub fn len(&self) -> usize {
        self.limiter.len()
    }
}

/// governor's state store for a keyed limit, with a hard cap (see the module doc).
/// The state of a key is its GCRA "theoretical arrival time".
pub struct BoundedStore<K> {
    keys: Mutex<HashMap<K, Nanos>>,
    /// The one allowance new keys share while the table is full.
    overflow: Mutex<Option<Nanos>>,
    max_keys: usize,
    name: &'static str,
}

impl<K: Hash + Eq + Clone> StateStore for BoundedStore<K> {
    type Key = K;

    fn measure_and_replace<T, F, E>(&self, key: &K, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(state) = keys.get_mut(key) {
            let (outcome, next) = f(Some(*state))?;
            *state = next;
            return Ok(outcome);
        }
        if keys.len() < self.max_keys {
            let (outcome, next) = f(None)?;
            keys.insert(key.clone(), next);
            return Ok(outcome);
        }
        drop(keys);
        metrics::counter!("inquiryd_rate_limiter_overflow_total", "limit" => self.name).increment(1);
        let mut overflow = self.overflow.lock().unwrap_or_else(|e| e.into_inner());
        let (outcome, next) = f(*overflow)?;
        *overflow = Some(next);
        Ok(outcome)
    }
}

impl<K: Hash + Eq + Clone> ShrinkableKeyedStateStore<K> for BoundedStore<K> {
    fn retain_recent(&self, drop_below: Nanos) {
        self.keys.lock().unwrap_or_else(|e| e.into_inner()).retain(|_, state| *state > drop_below);
        let mut overflow = self.overflow.lock().unwrap_or_else(|e| e.into_inner());
        if overflow.is_some_and(|state| state <= drop_below) {
            *overflow = None;
        }
    }

    fn shrink_to_fit(&self) {
        self.keys.lock().unwrap_or_else(|e| e.into_inner()).shrink_to_fit();
    }

    fn len(&self) -> usize {
        self.keys.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
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
    fn a_flood_of_new_keys_neither_grows_memory_nor_frees_a_limited_key() {
        let limit = KeyedLimit::<u128>::new("ip", 5, Duration::from_secs(60), 5, 1000);
        for _ in 0..5 {
            limit.check(&0).unwrap();
        }
        assert!(limit.check(&0).is_err());
        let admitted = (1..=3000u128).filter(|key| limit.check(key).is_ok()).count();
        assert!(limit.len() <= 1000, "{} keys tracked", limit.len());
        // 999 keys of their own, then the shared overflow allowance (a burst of 5).
        assert_eq!(admitted, 999 + 5);
        assert!(limit.check(&0).is_err(), "the limited key kept its state");
        assert!(limit.check(&500).is_ok(), "a tracked key keeps its own allowance");
    }

    #[test]
    fn keys_back_to_a_full_allowance_make_room() {
        // One request per millisecond: a used key is full again almost at once.
        let limit = KeyedLimit::<u128>::new("ip", 60_000, Duration::from_secs(60), 1, 1000);
        for key in 0..1000u128 {
            limit.check(&key).unwrap();
        }
        std::thread::sleep(EVICT_EVERY + Duration::from_millis(50));
        assert!(limit.check(&5000).is_ok(), "swept: the new key is tracked on its own");
        assert!(limit.len() < 1000, "{}", limit.len());
    }
}
