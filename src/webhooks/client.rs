//! Sends one signed webhook and sorts the answer into delivered, retry or failed.
//!
//! Why ureq on `spawn_blocking` rather than an async client: the service already
//! builds ureq 2 with rustls for CAPTCHA checks, so webhooks add no dependency,
//! where `reqwest` (even without default features) would bring hyper, hyper-util,
//! tower and h2 into a two-core build. ureq also takes a custom [`Resolver`]
//! whose addresses are the only ones it connects to, which is exactly the hook
//! the SSRF rule needs ([`super::guard`]). Deliveries are few and bounded by
//! the worker's concurrency, so a blocking thread each costs little.
//!
//! [`Resolver`]: ureq::Resolver

use std::time::{Duration, SystemTime};

use super::guard::{GuardedResolver, Refused};
use super::WebhookTarget;
use crate::config::WebhookSettings;

/// Longest `Retry-After` taken as given; the outbox's own backoff tops out here too.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(6 * 60 * 60);

/// One event for one receiver; `id` is the same for every attempt.
#[derive(Debug, Clone)]
pub struct Message {
    pub id: String,
    pub body: String,
}

/// How one attempt ended. Error texts name no secret and no URL (a Slack URL is
/// itself a credential): the outbox row already says which webhook it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx answer, with its status.
    Delivered(u16),
    /// Worth another attempt; `after` is the receiver's `Retry-After`, if any.
    Retry { error: String, after: Option<Duration> },
    /// Another attempt cannot help (a 4xx, a redirect, a refused address).
    Failed(String),
}

/// Built once at start-up and shared by every delivery.
pub struct WebhookClient {
    agent: ureq::Agent,
    timeout: Duration,
}

impl WebhookClient {
    pub fn new(settings: &WebhookSettings) -> Self {
        let timeout = Duration::from_secs(settings.timeout_seconds.max(1));
        let agent = ureq::AgentBuilder::new()
            .resolver(GuardedResolver { allow_private: settings.allow_private_targets })
            .redirects(0)
            .timeout(timeout)
            .user_agent(concat!("inquiryd/", env!("CARGO_PKG_VERSION")))
            .build();
        Self { agent, timeout }
    }

    /// POSTs `message` to `target`, signed with this attempt's time.
    pub async fn deliver(&self, target: &WebhookTarget, message: &Message) -> Outcome {
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs();
        let signed = target.secret.sign(&message.id, now as i64, &message.body);
        let request = self
            .agent
            .post(&target.url)
            .set("Content-Type", "application/json")
            .set("webhook-id", &signed.id)
            .set("webhook-timestamp", &signed.timestamp.to_string())
            .set("webhook-signature", &signed.signature);
        let body = message.body.clone();
        let timeout = self.timeout;
        let sending = tokio::task::spawn_blocking(move || classify(request.send_string(&body), timeout));
        // ureq's deadline does not cover the DNS lookup; this one does.
        match tokio::time::timeout(timeout + Duration::from_secs(1), sending).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(e)) => Outcome::Retry { error: format!("delivery task failed: {e}"), after: None },
            Err(_) => no_answer(timeout),
        }
    }
}

fn classify(result: Result<ureq::Response, ureq::Error>, timeout: Duration) -> Outcome {
    let response = match result {
        Ok(response) => response,
        Err(ureq::Error::Status(_, response)) => response,
        Err(ureq::Error::Transport(transport)) => return transport_failure(&transport, timeout),
    };
    let status = response.status();
    match status {
        200..=299 => Outcome::Delivered(status),
        300..=399 => Outcome::Failed(format!(
            "the receiver answered {status}, a redirect, which is not followed: set the webhook's url to the final address"
        )),
        429 | 500..=599 => Outcome::Retry {
            error: format!("the receiver answered {status}"),
            after: response.header("Retry-After").and_then(|v| retry_after(v, SystemTime::now())),
        },
        _ => Outcome::Failed(format!("the receiver answered {status}")),
    }
}

fn transport_failure(transport: &ureq::Transport, timeout: Duration) -> Outcome {
    let io = std::error::Error::source(transport).and_then(|e| e.downcast_ref::<std::io::Error>());
    if let Some(refused) = io.and_then(|e| e.get_ref()).and_then(|e| e.downcast_ref::<Refused>()) {
        return Outcome::Failed(refused.to_string());
    }
    let timed_out =
        io.is_some_and(|e| matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock));
    if timed_out {
        return no_answer(timeout);
    }
    let cause = io.map(|e| format!(": {e}")).unwrap_or_default();
    // ureq's own text quotes the URL, so only its kind and the OS error are kept.
    let error = match transport.kind() {
        ureq::ErrorKind::Dns => format!("cannot resolve the receiver's host{cause}"),
        ureq::ErrorKind::ConnectionFailed => format!("cannot connect to the receiver{cause}"),
        ureq::ErrorKind::InvalidUrl | ureq::ErrorKind::UnknownScheme => {
            return Outcome::Failed(format!("the webhook's url is not usable ({})", transport.kind()));
        }
        kind => format!("{kind}{cause}"),
    };
    Outcome::Retry { error, after: None }
}

fn no_answer(timeout: Duration) -> Outcome {
    Outcome::Retry { error: format!("no answer within {} s", timeout.as_secs()), after: None }
}

/// `Retry-After` as delay-seconds or an HTTP-date, capped; `None` when unreadable.
fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let delay = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => httpdate::parse_http_date(value).ok()?.duration_since(now).unwrap_or_default(),
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(" 120 ", now), Some(Duration::from_secs(120)));
        assert_eq!(retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now), Some(Duration::from_secs(30)));
        assert_eq!(retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(retry_after("99999999", now), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("-5", now), None);
    }
}
