//! Webhooks through the outbox worker ([`crate::outbox`]): a claimed delivery
//! is rendered for its receiver's format, signed and POSTed.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use super::{Event, Message, Outcome, WebhookClient, WebhookTarget};
use crate::config::Settings;
use crate::outbox::{Attempt, Channel};
use crate::store::webhooks::ClaimedWebhook;
use crate::store::{Settlement, Store, StoreError};

pub struct WebhookChannel {
    client: Arc<WebhookClient>,
    /// Every configured webhook by its key (`form.name`).
    targets: HashMap<String, WebhookTarget>,
    public_url: String,
}

impl WebhookChannel {
    pub fn new(settings: &Settings) -> Self {
        let targets = settings.webhooks().map(|(_, key, target)| (key, target.clone())).collect();
        Self {
            client: Arc::new(WebhookClient::new(&settings.webhooks)),
            targets,
            public_url: settings.server.public_url.clone(),
        }
    }
}

impl Channel for WebhookChannel {
    type Item = ClaimedWebhook;

    fn id(item: &ClaimedWebhook) -> &str {
        &item.id
    }

    fn attempt(item: &ClaimedWebhook) -> i64 {
        item.attempt
    }

    fn kind(_: &ClaimedWebhook) -> &'static str {
        "webhook"
    }

    fn since(item: &ClaimedWebhook) -> i64 {
        item.created_at
    }

    async fn claim(&self, store: &Store, limit: i64, lease_ms: i64) -> Result<Vec<ClaimedWebhook>, StoreError> {
        store.claim_webhooks(limit, lease_ms).await
    }

    async fn extend_lease(&self, store: &Store, ids: Vec<String>, lease_ms: i64) -> Result<(), StoreError> {
        store.extend_webhook_lease(ids, lease_ms).await
    }

    async fn settle(&self, store: &Store, settled: Vec<Settlement>) -> Result<(), StoreError> {
        store.settle_webhooks(settled).await
    }

    async fn release(&self, store: &Store, ids: Vec<String>) -> Result<(), StoreError> {
        store.release_webhooks(ids).await
    }

    async fn reset_in_flight(&self, store: &Store) -> Result<(), StoreError> {
        store.reset_webhooks_in_flight().await
    }

    async fn next_due(&self, store: &Store) -> Result<Option<i64>, StoreError> {
        store.next_webhook_due().await
    }

    async fn deliver(&self, item: &ClaimedWebhook) -> Attempt {
        let Some(target) = self.targets.get(&item.webhook) else {
            return Attempt::Failed(format!("no webhook {} is configured any more", item.webhook));
        };
        let inquiry: Value = match serde_json::from_str(&item.data) {
            Ok(inquiry) => inquiry,
            Err(e) => return Attempt::Failed(format!("stored event unreadable: {e}")),
        };
        let event = Event { kind: item.event, at_ms: item.created_at, inquiry: &inquiry };
        let message = Message { id: item.id.clone(), body: event.body(target.format, &self.public_url) };
        match self.client.deliver(target, &message).await {
            Outcome::Delivered(status) => Attempt::Delivered(format!("HTTP {status}")),
            Outcome::Retry { error, after } => Attempt::Retry { error, after },
            Outcome::Failed(error) => Attempt::Failed(error),
        }
    }

    /// The client's errors already name no URL, secret or personal data.
    fn summary(detail: &str) -> String {
        detail.chars().take(80).collect()
    }
}
