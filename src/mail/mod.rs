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

/// The copies of notifications that the file transport wrote in
/// `mail.file_dir`, each with the id of its inquiry: files named
/// `<inquiry id>-<kind>-<notification id>.eml` (not `inquiryd mail test`'s),
/// and the partly written `.<same name>.partial` that a process killed while
/// writing one leaves.
pub async fn copies(settings: &MailSettings) -> Vec<(std::path::PathBuf, String)> {
    let mut copies = Vec::new();
    let Ok(mut entries) = tokio::fs::read_dir(&settings.file_dir).await else { return copies };
    while let Ok(Some(entry)) = entries.next_entry().await {
        let name = entry.file_name();
        if let Some(id) = copy_of(&name.to_string_lossy()) {
            copies.push((entry.path(), id.to_owned()));
        }
    }
    copies
}

/// The inquiry id a file name in `mail.file_dir` is a copy of, if it is one.
fn copy_of(name: &str) -> Option<&str> {
    let name = name.strip_prefix('.').and_then(|n| n.strip_suffix(".partial")).unwrap_or(name);
    let id = name.strip_suffix(".eml")?.get(..36)?;
    (uuid::Uuid::try_parse(id).is_ok() && name[36..].starts_with('-')).then_some(id)
}

/// Removes the copies of erased inquiries' emails that the file transport
/// wrote (see [`copies`]).
pub async fn forget(settings: &MailSettings, inquiry_ids: &[String]) {
    if inquiry_ids.is_empty() {
        return;
    }
    let ids: std::collections::HashSet<&str> = inquiry_ids.iter().map(String::as_str).collect();
    for (path, id) in copies(settings).await {
        if ids.contains(id.as_str()) {
            if let Err(e) = tokio::fs::remove_file(path).await {
                tracing::warn!(error = %e, "could not remove an erased inquiry's email copy");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::copy_of;

    #[test]
    fn a_copy_is_known_by_its_name_whole_or_partly_written() {
        let id = "0193a8e2-7c1d-7b9e-8f00-1234567890ab";
        let notification = "0193a8e2-7c1d-7b9e-8f00-000000000001";
        assert_eq!(copy_of(&format!("{id}-staff-{notification}.eml")), Some(id));
        assert_eq!(copy_of(&format!(".{id}-receipt-{notification}.eml.partial")), Some(id));
        for other in [
            format!("test-{id}.eml"),
            format!("{id}.eml"),
            format!("{id}-staff-{notification}.eml.bak"),
            format!(".{id}-staff-{notification}.eml"),
            format!("{id}-staff-{notification}.eml.partial"),
            "README.txt".to_owned(),
            "Ж".repeat(40),
        ] {
            assert_eq!(copy_of(&other), None, "{other}");
        }
    }
}
