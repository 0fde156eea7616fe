//! Abuse protection: client addresses, rate limits, spam signals, CAPTCHA.

mod captcha;
mod client;
mod rate;
mod shared;
mod spam;

use std::hash::RandomState;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

pub use captcha::{Captcha, Verdict};
pub use client::{client_address, rate_key};
pub use rate::{email_key, Allowance, KeyedLimit, Refused, Rule};
pub use spam::{SpamRules, SPAM_FLAGS};

use crate::config::{ConfigError, LimitBackend, Settings};
use shared::SharedLimits;

/// Every limit and check a submission passes, built once at start-up.
pub struct Guard {
    enabled: bool,
    per_ip: KeyedLimit<u128>,
    per_email: KeyedLimit<u64>,
    admin_failures: KeyedLimit<u128>,
    console_logins: KeyedLimit<u128>,
    email_seed: RandomState,
    /// With `limits.backend = "redis"`: the limits every replica shares. The
    /// memory limiters above then answer only the checks Redis does not.
    shared: Option<SharedLimits>,
    pub spam: SpamRules,
    pub captcha: Option<Captcha>,
}

impl Guard {
    /// Builds the limits on the configured backend; with Redis, connects once
    /// (an unreachable Redis is not an error: see [`shared`]).
    pub async fn new(settings: &Settings) -> Result<Self, ConfigError> {
        let limits = &settings.limits;
        let cap = limits.max_tracked_keys;
        let minute = Duration::from_secs(60);
        let shared = match limits.backend {
            LimitBackend::Redis if limits.enabled => Some(SharedLimits::new(limits)?),
            _ => None,
        };
        if let Some(shared) = &shared {
            shared.connect().await;
        }
        let per_email =
            Rule::new("email", limits.per_email_per_hour, Duration::from_secs(3600), limits.per_email_per_hour);
        let admin = Rule::new("admin", limits.admin_failures_per_minute, minute, limits.admin_failures_per_minute);
        let logins = settings.admin.login_attempts_per_minute;
        Ok(Self {
            console_logins: KeyedLimit::new(Rule::new("console_login", logins, minute, logins), cap),
            enabled: limits.enabled,
            per_ip: KeyedLimit::new(Rule::new("ip", limits.per_ip_per_minute, minute, limits.per_ip_burst), cap),
            per_email: KeyedLimit::new(per_email, cap),
            admin_failures: KeyedLimit::new(admin, cap),
            email_seed: RandomState::new(),
            shared,
            spam: SpamRules::new(&settings.spam),
            captcha: Captcha::new(&settings.captcha),
        })
    }

    /// Counts one submission from `ip`; `None` when limits are off.
    pub async fn check_ip(&self, ip: IpAddr) -> Result<Option<Allowance>, Refused> {
        let key = rate_key(ip);
        self.check(&self.per_ip, &key, || shared::address_key(key)).await
    }

    /// Counts one submission from this (normalized) address.
    pub async fn check_email(&self, normalized: &str) -> Result<Option<Allowance>, Refused> {
        let key = email_key(&self.email_seed, normalized);
        self.check(&self.per_email, &key, || shared::email_key(normalized)).await
    }

    /// Counts one failed admin authentication from `ip`.
    pub async fn admin_failure(&self, ip: IpAddr) -> Result<(), Refused> {
        let key = rate_key(ip);
        self.check(&self.admin_failures, &key, || shared::address_key(key)).await.map(|_| ())
    }

    /// Counts one console login attempt from `ip`, before its password is checked.
    pub async fn login_attempt(&self, ip: IpAddr) -> Result<(), Refused> {
        let key = rate_key(ip);
        self.check(&self.console_logins, &key, || shared::address_key(key)).await.map(|_| ())
    }

    /// Asks Redis when it is the backend, and this process's own limiter when
    /// it is not, or when Redis does not answer.
    async fn check<K: std::hash::Hash + Eq + Clone>(
        &self,
        limit: &KeyedLimit<K>,
        key: &K,
        shared_key: impl FnOnce() -> String,
    ) -> Result<Option<Allowance>, Refused> {
        if !self.enabled {
            return Ok(None);
        }
        let answered = match &self.shared {
            Some(shared) => shared.check(limit.rule(), &shared_key()).await,
            None => None,
        };
        answered.unwrap_or_else(|| limit.check(key)).map(Some).inspect_err(|_| {
            metrics::counter!("inquiryd_rate_limited_total", "limit" => limit.rule().name).increment(1);
        })
    }

    /// Until `stop` is cancelled: forgets keys whose allowance is full again,
    /// every `every`, and reconnects to Redis when the connection was lost.
    pub fn spawn_housekeeping(self: &Arc<Self>, every: Duration, stop: CancellationToken) -> JoinHandle<()> {
        let guard = Arc::downgrade(self);
        let shared = self.shared.is_some();
        tokio::spawn(async move {
            let mut sweep = tokio::time::interval(every);
            let mut reconnect = tokio::time::interval(shared::RECONNECT_EVERY);
            reconnect.set_missed_tick_behavior(MissedTickBehavior::Delay);
            sweep.tick().await;
            loop {
                tokio::select! {
                    biased;
                    _ = stop.cancelled() => break,
                    _ = sweep.tick() => {
                        let Some(guard) = guard.upgrade() else { break };
                        guard.per_ip.retain_recent();
                        guard.per_email.retain_recent();
                        guard.admin_failures.retain_recent();
                        guard.console_logins.retain_recent();
                        metrics::gauge!("inquiryd_rate_limiter_keys").set(guard.per_ip.len() as f64);
                    }
                    _ = reconnect.tick(), if shared => {
                        let Some(guard) = guard.upgrade() else { break };
                        if let Some(shared) = &guard.shared {
                            shared.connect().await;
                        }
                    }
                }
            }
        })
    }
}
