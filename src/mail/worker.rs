//! Email through the outbox worker ([`crate::outbox`]): a claimed notification
//! is composed and handed to the transport.

use std::sync::Arc;

use super::{Composer, Transport};
use crate::outbox::{Attempt, Channel};
use crate::store::{ClaimedNotification, Settlement, Store, StoreError};

pub struct MailChannel {
    pub composer: Arc<Composer>,
    pub transport: Arc<Transport>,
}

impl Channel for MailChannel {
    type Item = ClaimedNotification;

    fn id(item: &ClaimedNotification) -> &str {
        &item.id
    }

    fn attempt(item: &ClaimedNotification) -> i64 {
        item.attempt
    }

    fn kind(item: &ClaimedNotification) -> &'static str {
        item.kind.as_str()
    }

    fn since(item: &ClaimedNotification) -> i64 {
        item.inquiry.received_at
    }

    async fn claim(&self, store: &Store, limit: i64, lease_ms: i64) -> Result<Vec<ClaimedNotification>, StoreError> {
        store.claim_due(limit, lease_ms).await
    }

    async fn extend_lease(&self, store: &Store, ids: Vec<String>, lease_ms: i64) -> Result<(), StoreError> {
        store.extend_lease(ids, lease_ms).await
    }

    async fn settle(&self, store: &Store, settled: Vec<Settlement>) -> Result<(), StoreError> {
        store.settle(settled).await
    }

    async fn release(&self, store: &Store, ids: Vec<String>) -> Result<(), StoreError> {
        store.release(ids).await
    }

    async fn reset_in_flight(&self, store: &Store) -> Result<(), StoreError> {
        store.reset_in_flight().await
    }

    async fn next_due(&self, store: &Store) -> Result<Option<i64>, StoreError> {
        store.next_due().await
    }

    async fn deliver(&self, notification: &ClaimedNotification) -> Attempt {
        let message = match self.composer.compose(notification) {
            Ok(message) => message,
            Err(e) => return Attempt::Failed(format!("compose: {e}")),
        };
        let name = format!("{}-{}-{}", notification.inquiry.id, notification.kind.as_str(), notification.id);
        match self.transport.send(&message, &name).await {
            Ok(response) => Attempt::Delivered(response),
            Err(e) if e.permanent => Attempt::Failed(e.detail),
            Err(e) => Attempt::Retry { error: e.detail, after: None },
        }
    }

    /// The SMTP code or the stage that failed, never the server's text (which
    /// can quote the visitor's address). The full text is kept in the outbox.
    fn summary(detail: &str) -> String {
        let code = detail
            .split(|c: char| !c.is_ascii_digit())
            .find(|part| part.len() == 3 && matches!(part.as_bytes()[0], b'4' | b'5'));
        match code {
            Some(code) => format!("SMTP {code}"),
            None => detail.split(':').next().unwrap_or("error").chars().take(40).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_summaries_hold_no_addresses() {
        let summary = <MailChannel as Channel>::summary;
        assert_eq!(summary("permanent error (550): 5.1.1 <ivan@example.org> rejected"), "SMTP 550");
        assert_eq!(summary("connect: Connection refused (os error 111)"), "connect");
        assert_eq!(summary("AUTH: permanent error (535): bad credentials"), "SMTP 535");
    }
}
