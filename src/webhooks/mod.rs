//! Webhooks: signed JSON (or a Slack message) about an inquiry, POSTed to a
//! receiver that configuration names, with each outcome sorted for the outbox.
//!
//! What to send ([`Event`]), how it is signed ([`Secret`]), where it may go
//! ([`guard`]), what the answer means ([`Outcome`]) and how the outbox worker
//! delivers a queued event ([`WebhookChannel`]). Which events are queued, and
//! when, is the store's (`store::webhooks`); docs/webhooks.md has the whole story.

mod channel;
mod client;
mod guard;
mod payload;
mod signature;

pub use channel::WebhookChannel;
pub use client::{Message, Outcome, WebhookClient};
pub use payload::Event;
pub use signature::{Secret, SignedHeaders};

pub use crate::config::WebhookSettings;

use serde::{Deserialize, Serialize};

/// What happened to an inquiry, as a webhook's `type` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
pub enum EventType {
    #[serde(rename = "inquiry.created")]
    Created,
    #[serde(rename = "inquiry.updated")]
    Updated,
    #[serde(rename = "inquiry.erased")]
    Erased,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "inquiry.created",
            Self::Updated => "inquiry.updated",
            Self::Erased => "inquiry.erased",
        }
    }
}

/// The body a receiver expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// `{"type", "timestamp", "data"}`, signed per Standard Webhooks.
    #[default]
    Json,
    /// A Slack or Mattermost incoming-webhook message, `{"text"}`.
    Slack,
}

/// One `[[forms.<id>.webhooks]]` entry.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookTarget {
    /// Names the webhook in the outbox and the admin API (`<form>.<name>`);
    /// without it, its place in the list (`contact.0`). Give one to keep a
    /// webhook's queue when the list is reordered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub url: String,
    pub secret: Secret,
    pub events: Vec<EventType>,
    #[serde(default)]
    pub include_spam: bool,
    #[serde(default)]
    pub format: Format,
}

impl WebhookTarget {
    /// What configuration cannot express in types; the error says how to fix it.
    pub fn check(&self) -> Result<(), String> {
        let url = url::Url::parse(&self.url).map_err(|e| format!("url: {e}"))?;
        if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
            return Err("url: must be an http(s) URL like https://crm.example.org/hooks".to_owned());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("url: must not carry credentials; receivers check the signature instead".to_owned());
        }
        if let Some(name) = &self.name {
            let valid = !name.is_empty()
                && name.len() <= 40
                && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
            if !valid {
                return Err("name: 1 to 40 of a-z, 0-9, - and _".to_owned());
            }
        }
        if self.events.is_empty() {
            return Err("events: name at least one of inquiry.created, inquiry.updated, inquiry.erased".to_owned());
        }
        Ok(())
    }

    /// How the outbox and the admin API name this webhook, the `index`-th of form `form`.
    pub fn key(&self, form: &str, index: usize) -> String {
        match &self.name {
            Some(name) => format!("{form}.{name}"),
            None => format!("{form}.{index}"),
        }
    }

    /// Whether this webhook wants `event` about an inquiry (`spam`: marked as spam).
    pub fn wants(&self, event: EventType, spam: bool) -> bool {
        self.events.contains(&event) && (self.include_spam || !spam)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str, events: Vec<EventType>) -> WebhookTarget {
        WebhookTarget {
            name: None,
            url: url.to_owned(),
            secret: "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD".parse().unwrap(),
            events,
            include_spam: false,
            format: Format::Json,
        }
    }

    #[test]
    fn targets_need_an_http_url_without_credentials_and_an_event() {
        assert!(target("https://crm.example.org/hooks", vec![EventType::Created]).check().is_ok());
        assert!(target("http://10.0.0.5:8080/", vec![EventType::Erased]).check().is_ok());
        for bad in ["ftp://example.org/", "crm.example.org/hooks", "https://user:pw@example.org/", "https://"] {
            let error = target(bad, vec![EventType::Created]).check().unwrap_err();
            assert!(error.starts_with("url: "), "{bad}: {error}");
        }
        let error = target("https://example.org/", vec![]).check().unwrap_err();
        assert!(error.starts_with("events: "), "{error}");
    }

    #[test]
    fn spam_goes_only_where_it_is_asked_for() {
        let mut t = target("https://example.org/", vec![EventType::Created]);
        assert!(t.wants(EventType::Created, false));
        assert!(!t.wants(EventType::Created, true));
        assert!(!t.wants(EventType::Erased, false));
        t.include_spam = true;
        assert!(t.wants(EventType::Created, true));
    }
}
