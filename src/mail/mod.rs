//! Email: which notifications an inquiry gets (here), how they are composed,
//! sent, and delivered from the outbox.

mod compose;
mod transport;
mod worker;

pub use compose::Composer;
pub use transport::Transport;
pub use worker::MailChannel;

use crate::config::MailSettings;
use crate::domain::{Category, Form, NewInquiry, NotificationKind};
use crate::store::PlannedNotification;

/// The notifications a non-spam inquiry queues: the staff email to the form's
/// routes the inquiry matches (or its `to`), and the visitor's receipt when
/// the form sends one.
pub fn plan(form: &Form, inquiry: &NewInquiry) -> Vec<PlannedNotification> {
    plan_for(form, inquiry.category, &inquiry.fields, &inquiry.email.to_string())
}

/// The same for a stored inquiry (one marked "not spam" gets what it never had).
pub fn plan_for(
    form: &Form,
    category: Category,
    fields: &serde_json::Map<String, serde_json::Value>,
    visitor: &str,
) -> Vec<PlannedNotification> {
    let staff = form.recipients(category, fields);
    let mut planned = vec![PlannedNotification { kind: NotificationKind::Staff, recipients: staff }];
    if form.acknowledge_submitter {
        planned.push(PlannedNotification { kind: NotificationKind::Receipt, recipients: vec![visitor.to_owned()] });
    }
    planned
}

/// The domain part of the configured From address, for Message-IDs.
pub fn message_id_domain(settings: &MailSettings) -> String {
    settings
        .from
        .parse::<lettre::message::Mailbox>()
        .map(|m| m.email.domain().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned())
}

/// Removes the copies of erased inquiries' emails that the file transport wrote
/// (`<inquiry id>-…​.eml` in `mail.file_dir`).
pub async fn forget(settings: &MailSettings, inquiry_ids: &[String]) {
    if inquiry_ids.is_empty() {
        return;
    }
    let Ok(mut entries) = tokio::fs::read_dir(&settings.file_dir).await else { return };
    let ids: std::collections::HashSet<&str> = inquiry_ids.iter().map(String::as_str).collect();
    while let Ok(Some(entry)) = entries.next_entry().await {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        // `<36-character id>-<kind>-<notification id>.eml`
        let erased = name.ends_with(".eml") && name.get(..36).is_some_and(|id| ids.contains(id));
        if erased {
            if let Err(e) = tokio::fs::remove_file(entry.path()).await {
                tracing::warn!(error = %e, "could not remove an erased inquiry's email copy");
            }
        }
    }
}
