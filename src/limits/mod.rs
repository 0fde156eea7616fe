//! Abuse protection: client addresses, rate limits, spam signals, CAPTCHA.

mod captcha;
mod client;
mod rate;
mod spam;

use std::hash::RandomState;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use captcha::{Captcha, Verdict};
pub use client::{client_address, rate_key};
pub use rate::{email_key, Allowance, KeyedLimit, Refused};
pub use spam::{SpamRules, SPAM_FLAGS};

use crate::config::Settings;

/// Every limit and check a submission passes, built once at start-up.
pub struct Guard {
    enabled: bool,
    per_ip: KeyedLimit<u128>,
    per_email: KeyedLimit<u64>,
    admin_failures: KeyedLimit<u128>,
    email_seed: RandomState,
    pub spam: SpamRules,
    pub captcha: Option<Captcha>,
}

impl Guard {
    pub fn new(settings: &Settings) -> Self {
        let limits = &settings.limits;
        let cap = limits.max_tracked_keys;
        let minute = Duration::from_secs(60);
        Self {
            enabled: limits.enabled,
            per_ip: KeyedLimit::new("ip", limits.per_ip_per_minute, minute, limits.per_ip_burst, cap),
            per_email: KeyedLimit::new(
                "email",
                limits.per_email_per_hour,
                Duration::from_secs(3600),
                limits.per_email_per_hour,
                cap,
            ),
            admin_failures: KeyedLimit::new(
                "admin",
                limits.admin_failures_per_minute,
                minute,
                limits.admin_failures_per_minute,
                cap,
            ),
            email_seed: RandomState::new(),
            spam: SpamRules::new(&settings.spam),
            captcha: Captcha::new(&settings.captcha),
        }
    }

    /// Counts one submission from `ip`; `None` when limits are off.
    pub fn check_ip(&self, ip: IpAddr) -> Result<Option<Allowance>, Refused> {
        self.check(&self.per_ip, &rate_key(ip), "ip")
    }

    /// Counts one submission from this (normalized) address.
    pub fn check_email(&self, normalized: &str) -> Result<Option<Allowance>, Refused> {
        self.check(&self.per_email, &email_key(&self.email_seed, normalized), "email")
    }

    /// Counts one failed admin authentication from `ip`.
    pub fn admin_failure(&self, ip: IpAddr) -> Result<(), Refused> {
        self.check(&self.admin_failures, &rate_key(ip), "admin").map(|_| ())
    }

    fn check<K: std::hash::Hash + Eq + Clone>(
        &self,
        limit: &KeyedLimit<K>,
        key: &K,
        label: &'static str,
    ) -> Result<Option<Allowance>, Refused> {
        if !self.enabled {
            return Ok(None);
        }
        limit.check(key).map(Some).inspect_err(|_| {
            metrics::counter!("inquiryd_rate_limited_total", "limit" => label).increment(1);
        })
    }

    /// Forgets keys whose allowance is full again, every `every`, until `stop`
    /// is cancelled.
    pub fn spawn_housekeeping(self: &Arc<Self>, every: Duration, stop: CancellationToken) -> JoinHandle<()> {
        let guard = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tokio::select! {
                    biased;
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => {}
                }
                let Some(guard) = guard.upgrade() else { break };
                guard.per_ip.retain_recent();
                guard.per_email.retain_recent();
                guard.admin_failures.retain_recent();
                metrics::gauge!("inquiryd_rate_limiter_keys").set(guard.per_ip.len() as f64);
            }
        })
    }
}
