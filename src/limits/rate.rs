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

/// One limit's numbers (say, 5 per minute per address, 5 of them at once) and
/// what a check tells the client. Every backend counts with it, so a `429` says
/// the same whichever one answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub name: &'static str,
    per: u32,
    window: Duration,
    /// The time one request's allowance takes to come back (GCRA's emission interval).
    pub interval: Duration,
    /// How many requests may come at once.
    pub burst: u32,
}

impl Rule {
    /// `count` requests per `window`, of which `burst` may come at once.
    pub fn new(name: &'static str, count: u32, window: Duration, burst: u32) -> Self {
        let per = count.max(1);
        Self { name, per, window, interval: window / per, burst: burst.max(1) }
    }

    /// An admitted request, with `remaining` requests left in the burst.
    pub fn admitted(&self, remaining: u32) -> Allowance {
        self.allowance(remaining, self.interval * (self.burst - remaining.min(self.burst)))
    }

    /// A refused request: the next one is allowed in `wait`.
    pub fn refused(&self, wait: Duration) -> Refused {
        let retry_after = ceil_seconds(wait).max(1);
        Refused { retry_after, allowance: Allowance { reset_seconds: retry_after, ..self.allowance(0, wait) } }
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

    fn quota(&self) -> Quota {
        let burst = NonZeroU32::new(self.burst).unwrap_or(NonZeroU32::MIN);
        let count = NonZeroU32::new(self.per).unwrap_or(NonZeroU32::MIN);
        Quota::with_period(self.interval).unwrap_or_else(|| Quota::per_second(count)).allow_burst(burst)
    }
}

/// Says yes at most once per period (the first call included), across threads.
pub struct Throttle {
    period_ms: u64,
    /// Milliseconds since `created` of the last yes, plus one (0: never).
    last: AtomicU64,
    created: Instant,
}

impl Throttle {
    pub fn new(period: Duration) -> Self {
        Self { period_ms: period.as_millis() as u64, last: AtomicU64::new(0), created: Instant::now() }
    }

    pub fn due(&self) -> bool {
        let now = self.created.elapsed().as_millis() as u64 + 1;
        let last = self.last.load(Ordering::Relaxed);
        (last == 0 || now.saturating_sub(last) >= self.period_ms)
            && self.last.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    }
}

/// One limit, keyed by `K`, in this process's memory, tracking at most
/// `max_keys` keys (see the module doc for what happens past that).
pub struct KeyedLimit<K: Hash + Eq + Clone> {
    rule: Rule,
    max_keys: usize,
    clock: DefaultClock,
    limiter: Inner<K>,
    sweeps: Throttle,
}

impl<K: Hash + Eq + Clone> KeyedLimit<K> {
    pub fn new(rule: Rule, max_keys: usize) -> Self {
        let clock = DefaultClock::default();
        let store =
            BoundedStore { keys: Mutex::new(HashMap::new()), overflow: Mutex::new(None), max_keys, name: rule.name };
        Self {
            rule,
            max_keys,
            clock: clock.clone(),
            limiter: RateLimiter::<K, _, _, NoOpMiddleware<_>>::new(rule.quota(), store, clock)
                .with_middleware::<StateInformationMiddleware>(),
            sweeps: Throttle::new(EVICT_EVERY),
        }
    }

    pub fn rule(&self) -> &Rule {
        &self.rule
    }

    /// Counts one request against `key`.
    pub fn check(&self, key: &K) -> Result<Allowance, Refused> {
        // Under a flood the table stays full, and a sweep per request would cost
        // a scan of every key each time: at most one per `EVICT_EVERY`.
        if self.limiter.len() >= self.max_keys && self.sweeps.due() {
            self.limiter.retain_recent();
        }
        match self.limiter.check_key(key) {
            Ok(snapshot) => Ok(self.rule.admitted(snapshot.remaining_burst_capacity())),
            Err(not_until) => Err(self.rule.refused(not_until.wait_time_from(self.clock.now()))),
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
        let limit = KeyedLimit::<u128>::new(Rule::new("ip", 5, Duration::from_secs(60), 5), 1000);
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
        let limit = KeyedLimit::<u128>::new(Rule::new("ip", 5, Duration::from_secs(60), 5), 1000);
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
    fn a_throttle_says_yes_first_then_once_per_period() {
        let throttle = Throttle::new(Duration::from_millis(50));
        assert!(throttle.due());
        assert!(!throttle.due());
        std::thread::sleep(Duration::from_millis(60));
        assert!(throttle.due());
        assert!(!throttle.due());
    }

    #[test]
    fn keys_back_to_a_full_allowance_make_room() {
        // One request per millisecond: a used key is full again almost at once.
        let limit = KeyedLimit::<u128>::new(Rule::new("ip", 60_000, Duration::from_secs(60), 1), 1000);
        for key in 0..1000u128 {
            limit.check(&key).unwrap();
        }
        std::thread::sleep(EVICT_EVERY + Duration::from_millis(50));
        assert!(limit.check(&5000).is_ok(), "swept: the new key is tracked on its own");
        assert!(limit.len() < 1000, "{}", limit.len());
    }
}
