//! What a webhook says: the JSON event, or a chat message for `format = "slack"`.

use serde_json::{json, Value};

use super::{EventType, Format};
use crate::timestamp::to_rfc3339;

/// One event about one inquiry, built once when it happens and sent as often
/// as it takes.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    pub kind: EventType,
    /// When it happened, Unix milliseconds.
    pub at_ms: i64,
    /// The inquiry as the admin API shows it (a serialised `InquiryRecord`);
    /// for `inquiry.erased` only its `id` is read.
    pub inquiry: &'a Value,
}

impl Event<'_> {
    /// The request body for a receiver of `format`; `public_url` is
    /// `server.public_url` (the console link in chat messages; may be empty).
    pub fn body(&self, format: Format, public_url: &str) -> String {
        match format {
            Format::Json => self.json().to_string(),
            Format::Slack => json!({ "text": self.chat_text(public_url) }).to_string(),
        }
    }

    /// `{"type", "timestamp", "data"}`; an erased inquiry is named by its id alone.
    pub fn json(&self) -> Value {
        let data = match self.kind {
            EventType::Erased => json!({ "id": self.inquiry["id"] }),
            EventType::Created | EventType::Updated => self.inquiry.clone(),
        };
        json!({ "type": self.kind.as_str(), "timestamp": to_rfc3339(self.at_ms), "data": data })
    }

    fn chat_text(&self, public_url: &str) -> String {
        let field = |name: &str| escape(self.inquiry[name].as_str().unwrap_or_default());
        let id = field("id");
        let mut text = match self.kind {
            EventType::Created => {
                format!("New inquiry: *{}*\nFrom {} ({})", field("subject"), field("name"), field("email"))
            }
            EventType::Updated => format!("Inquiry {}: *{}*", field("status"), field("subject")),
            EventType::Erased => return format!("Inquiry {id} was erased."),
        };
        let base = public_url.trim_end_matches('/');
        if !base.is_empty() {
            text.push_str(&format!("\n<{base}/admin/inquiries/{id}|Open in the console>"));
        }
        text
    }
}

/// Slack's mrkdwn escaping: visitor text cannot open a link or a mention
/// (`<!channel>`, `<https://…|…>`).
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inquiry() -> Value {
        json!({
            "id": "0190a8a0-0000-7000-8000-000000000001",
            "received_at": "2026-11-18T11:06:40.100Z",
            "status": "new",
            "name": "Иван <!channel>",
            "email": "ivan@example.org",
            "subject": "Fish & <chips>",
            "message": "Здравствуйте",
        })
    }

    #[test]
    fn json_events_carry_the_inquiry_and_erasures_only_the_id() {
        let inquiry = inquiry();
        let created = Event { kind: EventType::Created, at_ms: 1_795_000_000_100, inquiry: &inquiry };
        let body: Value = serde_json::from_str(&created.body(Format::Json, "")).unwrap();
        assert_eq!(
            body,
            json!({ "type": "inquiry.created", "timestamp": "2026-11-18T11:06:40.100Z", "data": inquiry })
        );

        let erased = Event { kind: EventType::Erased, ..created };
        assert_eq!(erased.json()["type"], "inquiry.erased");
        assert_eq!(erased.json()["data"], json!({ "id": "0190a8a0-0000-7000-8000-000000000001" }));
    }

    #[test]
    fn chat_messages_escape_visitor_text_and_link_the_console() {
        let inquiry = inquiry();
        let created = Event { kind: EventType::Created, at_ms: 0, inquiry: &inquiry };
        let body: Value = serde_json::from_str(&created.body(Format::Slack, "https://forms.example.org/")).unwrap();
        let text = body["text"].as_str().unwrap();
        assert_eq!(
            text,
            "New inquiry: *Fish &amp; &lt;chips&gt;*\nFrom Иван &lt;!channel&gt; (ivan@example.org)\n\
             <https://forms.example.org/admin/inquiries/0190a8a0-0000-7000-8000-000000000001|Open in the console>"
        );
        let unlinked = created.body(Format::Slack, "");
        assert!(!unlinked.contains("admin/inquiries"), "{unlinked}");

        let erased = Event { kind: EventType::Erased, ..created };
        let text = erased.body(Format::Slack, "https://forms.example.org");
        assert!(text.contains("was erased") && !text.contains("ivan@"), "{text}");
    }
}
