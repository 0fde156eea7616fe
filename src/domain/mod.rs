//! Validated types. Request bodies become these once, at the edge.

mod email;
mod form;
mod inquiry;
mod query;
mod submission;
mod text;
mod upload;

pub use email::{ascii_address, ascii_domain, normalize_email, EmailAddress};
pub use form::{
    display, is_date, Bound, CustomField, FieldKind, Form, Forms, Labels, StoredFile, UploadRules, OPTIONAL_FIELDS,
    RESERVED_NAMES,
};
pub use inquiry::{Category, InquiryStatus, NewInquiry, NotificationKind};
pub use query::{encode_cursor, is_form_id, parse_query, ExportFormat, InquiryFilter, ListQuery, Page, Purpose};
pub use submission::{parse_submission, Submission, SubmissionRules, BUILT_IN_TEXT, CONSENT_WORDS, LANG_FIELD};
pub use text::FieldError;
pub use upload::{clean_name, is_accept_entry, sniff, SNIFF_BYTES};
