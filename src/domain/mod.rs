//! Validated types. Request bodies become these once, at the edge.

mod email;
mod inquiry;
mod query;
mod submission;
mod text;

pub use email::{ascii_address, ascii_domain, normalize_email, EmailAddress};
pub use inquiry::{Category, InquiryStatus, NewInquiry, NotificationKind};
pub use query::{encode_cursor, parse_query, ExportFormat, InquiryFilter, ListQuery, Page, Purpose};
pub use submission::{parse_submission, Submission, SubmissionRules, CONSENT_WORDS};
pub use text::FieldError;
