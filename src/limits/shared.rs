//! Rate limits that hold across replicas: the counts live in Redis.
//!
//! A check is one round trip: `gcra.lua` reads and updates the key atomically
//! (EVALSHA; EVAL when Redis has forgotten the script), with the same arithmetic
//! as the memory backend and on Redis's clock. A key lives exactly as long as its
//! allowance takes to refill, so an idle Redis holds nothing. Keys are the same on
//! every replica: `{prefix}rate:{limit}:{key}`, where the key is the client's
//! address or /64 in hex (what the memory backend keys on too), or a SHA-256 of
//! the email's normal form, never the address itself.
//!
//! Redis helps; it is never needed to answer. When it is down or slower than
//! `limits.redis_timeout_ms`, the check is answered by this replica's own memory
//! limiter (the caller's fallback), the connection is dropped so that the next
//! requests do not wait too, and the housekeeping task connects again (at most
//! once a [`RECONNECT_EVERY`]). Each such check counts in
//! `inquiryd_rate_limiter_backend_errors_total`; a warning is logged at most once
//! a minute, never with a key.

use std::sync::Mutex;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, ErrorKind, RedisError, Script, ServerErrorKind};
use sha2::{Digest, Sha256};

use super::rate::{Allowance, Refused, Rule, Throttle};
use crate::config::{ConfigError, LimitSettings};

/// How often a lost connection is tried again.
pub const RECONNECT_EVERY: Duration = Duration::from_secs(1);
/// At most one warning per this long while Redis does not answer.
const WARN_EVERY: Duration = Duration::from_secs(60);
const GCRA: &str = include_str!("gcra.lua");

/// The Redis side of the limits: one multiplexed connection for the process.
pub struct SharedLimits {
    client: Client,
    /// `None` while Redis is unreachable (until the housekeeping task reconnects).
    connection: Mutex<Option<MultiplexedConnection>>,
    prefix: String,
    timeout: Duration,
    script: Script,
    warnings: Throttle,
}

impl SharedLimits {
    /// Parses `limits.redis_url`; connects nothing yet (see [`SharedLimits::connect`]).
    pub fn new(limits: &LimitSettings) -> Result<Self, ConfigError> {
        let client = Client::open(limits.redis_url.as_str())
            .map_err(|e| ConfigError::Invalid(format!("limits.redis_url: {e}")))?;
        Ok(Self {
            client,
            connection: Mutex::new(None),
            prefix: limits.redis_key_prefix.clone(),
            timeout: Duration::from_millis(limits.redis_timeout_ms),
            script: Script::new(GCRA),
            warnings: Throttle::new(WARN_EVERY),
        })
    }

    /// Counts one request against `key` in Redis; `None` when Redis did not
    /// answer in time, and the caller counts on its own.
    pub async fn check(&self, rule: &Rule, key: &str) -> Option<Result<Allowance, Refused>> {
        let why = match self.current() {
            Some(mut connection) => {
                match tokio::time::timeout(self.timeout, self.gcra(&mut connection, rule, key)).await {
                    Ok(Ok(reply)) => return Some(outcome(rule, reply)),
                    Ok(Err(error)) => reason(&error),
                    Err(_) => "timed out",
                }
            }
            None => "not connected",
        };
        self.lost(rule.name, why);
        None
    }

    async fn gcra(
        &self,
        connection: &mut MultiplexedConnection,
        rule: &Rule,
        key: &str,
    ) -> Result<(i64, i64), RedisError> {
        let key = format!("{}rate:{}:{key}", self.prefix, rule.name);
        let (t, tau) = micros(rule);
        let call = |verb: &str, script: &str| {
            let mut cmd = redis::cmd(verb);
            cmd.arg(script).arg(1).arg(&key).arg(t).arg(tau);
            cmd
        };
        match call("EVALSHA", self.script.get_hash()).query_async(connection).await {
            Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                call("EVAL", GCRA).query_async(connection).await
            }
            answered => answered,
        }
    }

    /// Connects unless connected; `false` when Redis does not answer in time.
    pub async fn connect(&self) -> bool {
        if self.current().is_some() {
            return true;
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout));
        let attempt = async {
            let mut connection = self.client.get_multiplexed_async_connection_with_config(&config).await?;
            // Loading the script proves that Redis answers, and saves the first
            // check its EVAL.
            self.script.load_async(&mut connection).await?;
            Ok::<_, RedisError>(connection)
        };
        let why = match tokio::time::timeout(self.timeout * 2, attempt).await {
            Ok(Ok(connection)) => {
                *self.slot() = Some(connection);
                metrics::gauge!("inquiryd_rate_limiter_backend_up").set(1.0);
                tracing::info!(redis = %self.client.get_connection_info().addr(), "rate limits are shared in Redis");
                return true;
            }
            Ok(Err(error)) => reason(&error),
            Err(_) => "timed out",
        };
        metrics::gauge!("inquiryd_rate_limiter_backend_up").set(0.0);
        if self.warnings.due() {
            tracing::warn!(
                redis = %self.client.get_connection_info().addr(),
                reason = why,
                "cannot reach Redis; rate limits count on this replica alone until it answers"
            );
        }
        false
    }

    /// Redis did not answer a check: the connection goes (the housekeeping task
    /// makes a new one), and the caller counts on its own.
    fn lost(&self, limit: &'static str, why: &'static str) {
        if self.slot().take().is_some() {
            metrics::gauge!("inquiryd_rate_limiter_backend_up").set(0.0);
        }
        metrics::counter!("inquiryd_rate_limiter_backend_errors_total", "limit" => limit).increment(1);
        if self.warnings.due() {
            tracing::warn!(
                reason = why,
                "Redis did not answer a rate-limit check; this replica counts on its own until it does"
            );
        }
    }

    fn current(&self) -> Option<MultiplexedConnection> {
        self.slot().clone()
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<MultiplexedConnection>> {
        self.connection.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `t` and `tau` of the rule in whole microseconds (`t` at least one).
fn micros(rule: &Rule) -> (u64, u64) {
    let t = (rule.interval.as_micros() as u64).max(1);
    (t, t * u64::from(rule.burst - 1))
}

/// What the script's `{allowed, microseconds}` tells the client: the same
/// figures governor's snapshot gives the memory backend.
fn outcome(rule: &Rule, (allowed, micros_left): (i64, i64)) -> Result<Allowance, Refused> {
    let left = micros_left.max(0) as u64;
    if allowed == 1 {
        let (t, tau) = micros(rule);
        let remaining = (tau + t).saturating_sub(left) / t;
        Ok(rule.admitted(u32::try_from(remaining).unwrap_or(u32::MAX)))
    } else {
        Err(rule.refused(Duration::from_micros(left)))
    }
}

/// Why a call failed, in words that hold no key or reply text.
fn reason(error: &RedisError) -> &'static str {
    if error.is_timeout() {
        "timed out"
    } else if error.is_io_error() || error.is_connection_dropped() || error.is_connection_refusal() {
        "connection failed"
    } else if matches!(error.kind(), ErrorKind::Server(_)) {
        "error reply"
    } else {
        "unexpected reply"
    }
}

/// The email's key: the same on every replica, and not the address (the first
/// 128 bits of a SHA-256 of its normal form, in hex).
pub fn email_key(normalized_email: &str) -> String {
    let digest = Sha256::new().chain_update(b"inquiryd rate limit\0").chain_update(normalized_email).finalize();
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// The address's key: the address or /64 from [`super::rate_key`], in hex.
pub fn address_key(rate_key: u128) -> String {
    format!("{rate_key:032x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_read_as_governor_reads_them() {
        let rule = Rule::new("ip", 5, Duration::from_secs(60), 5);
        // First request: the TAT is one interval ahead.
        let first = outcome(&rule, (1, 12_000_000)).unwrap();
        assert_eq!((first.remaining, first.reset_seconds), (4, 12));
        let fifth = outcome(&rule, (1, 60_000_000)).unwrap();
        assert_eq!((fifth.remaining, fifth.reset_seconds), (0, 60));
        let refused = outcome(&rule, (0, 11_500_000)).unwrap_err();
        assert_eq!((refused.retry_after, refused.allowance.remaining, refused.allowance.reset_seconds), (12, 0, 12));
    }

    #[test]
    fn keys_are_stable_and_hold_no_address() {
        let key = email_key("ivan@example.org");
        assert_eq!(key, email_key("ivan@example.org"));
        assert_ne!(key, email_key("ivan@example.com"));
        assert_eq!(key.len(), 32);
        assert!(!key.contains("ivan"));
        assert_eq!(address_key(0x7f00_0001), "0000000000000000000000007f000001");
    }
}
