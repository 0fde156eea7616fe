//! What the store takes and gives back, the same for every backend.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use serde_json::Value;

use crate::domain::{Category, InquiryStatus, NewInquiry, NotificationKind};
use crate::timestamp::to_rfc3339;

/// A validated submission with everything decided except its id.
#[derive(Debug)]
pub struct NewRecord {
    pub inquiry: NewInquiry,
    pub status: InquiryStatus,
    pub spam_flags: Vec<String>,
    pub client_ip: Option<String>,
    pub received_at: i64,
    /// Identifies a double click: the same email, subject and message.
    pub dedupe_hash: [u8; 32],
    pub idempotency: Option<IdempotencyClaim>,
    pub notifications: Vec<PlannedNotification>,
    /// [`EmailAddress::normalized`](crate::domain::EmailAddress::normalized), computed once by the handler.
    pub email_norm: String,
    /// What the search index gets ([`search::Searchable::document`]), or `None`
    /// with indexing off. Built by the request handler so that the single writer
    /// thread does not have to.
    pub search_document: Option<String>,
}

#[derive(Debug, Clone)]
pub struct IdempotencyClaim {
    pub key: String,
    pub request_hash: [u8; 32],
}

#[derive(Debug, Clone)]
pub struct PlannedNotification {
    pub kind: NotificationKind,
    pub recipients: Vec<String>,
}

/// What the visitor is told: the stored inquiry's id and time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub id: String,
    pub received_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Committed to disk now.
    Created(Receipt),
    /// The Idempotency-Key was seen with the same body: the first answer.
    Replayed(Receipt),
    /// The same email, subject and message arrived within ten minutes.
    Duplicate(Receipt),
    /// The Idempotency-Key was seen with a different body.
    KeyReused,
    /// Storage busy, full or failing: nothing was written.
    Unavailable,
    /// A bug: the record could not be written for a non-transient reason.
    Failed,
}

/// A stored inquiry as the admin API, the exports and the emails show it.
#[derive(Debug, Clone, Serialize)]
pub struct InquiryRecord {
    #[serde(skip)]
    pub seq: i64,
    pub id: String,
    #[serde(serialize_with = "rfc3339")]
    pub received_at: i64,
    pub status: InquiryStatus,
    pub category: Category,
    pub name: String,
    pub email: String,
    pub subject: String,
    pub message: String,
    pub organization: Option<String>,
    pub country: Option<String>,
    pub phone: Option<String>,
    pub consent: Option<bool>,
    pub page: Option<String>,
    pub client_ip: Option<String>,
    pub spam_flags: Vec<String>,
    pub note: Option<String>,
}

fn rfc3339<S: serde::Serializer>(ms: &i64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&to_rfc3339(*ms))
}

/// A notification taken for delivery, with the inquiry it is about.
#[derive(Debug, Clone)]
pub struct ClaimedNotification {
    pub id: String,
    pub kind: NotificationKind,
    pub recipients: Vec<String>,
    pub message_id: String,
    /// The number of this attempt, counting from 1.
    pub attempt: i64,
    pub inquiry: InquiryRecord,
}

/// How one attempt ended.
#[derive(Debug, Clone)]
pub enum Settlement {
    Sent { id: String, attempt: i64, response: String },
    Retry { id: String, attempt: i64, error: String, next_attempt_at: i64 },
    Failed { id: String, attempt: i64, error: String },
}

/// A notification as an admin sees it.
#[derive(Debug, Clone, Serialize)]
pub struct NotificationView {
    pub id: String,
    pub kind: NotificationKind,
    pub recipient: String,
    pub status: NotificationStatus,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub sent_at: Option<String>,
}

/// Where a notification is in the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationStatus {
    Pending,
    Sending,
    Sent,
    Failed,
}

impl FromStr for NotificationStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(Self::Pending),
            "sending" => Ok(Self::Sending),
            "sent" => Ok(Self::Sent),
            "failed" => Ok(Self::Failed),
            _ => Err(format!("{s:?} is not a notification status")),
        }
    }
}

impl fmt::Display for NotificationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Self::Pending => "pending",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Failed => "failed",
        })
    }
}

/// Which inquiries an erasure covers.
pub enum Erase {
    One(String),
    /// A normalized address.
    Email(String),
    ReceivedBefore(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requeue {
    Requeued,
    NotFound,
    /// Only a failed notification can be retried; this is its status.
    NotFailed(NotificationStatus),
}

#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub total: i64,
    pub by_status: BTreeMap<String, i64>,
    pub by_category: BTreeMap<String, i64>,
    /// The last 30 days, oldest first, days without inquiries included.
    pub per_day: Vec<DayCount>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DayCount {
    pub date: String,
    pub count: i64,
}

/// One line of the audit log: who did what to which id, never personal data.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    #[serde(skip)]
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub detail: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Read,
    Write,
}

impl FromStr for Scope {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "read" => Ok(Self::Read),
            "write" => Ok(Self::Write),
            _ => Err("scope must be read or write".to_owned()),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Self::Read => "read",
            Self::Write => "write",
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub scope: Scope,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
    #[serde(skip)]
    pub last_used_ms: Option<i64>,
}

/// The columns every inquiry query selects, in [`InquiryRecord`]'s order.
pub(super) const INQUIRY_COLUMNS: &str =
    "i.seq, i.id, i.received_at, i.status, i.category, i.name, i.email, i.subject, \
     i.message, i.organization, i.country, i.phone, i.consent, i.page, i.client_ip, i.spam_flags, i.note";

/// The stored text columns that come back typed: a value this build does not
/// know is an error, never a default.
pub(super) fn typed(
    status: &str,
    category: &str,
    flags: &str,
) -> Result<(InquiryStatus, Category, Vec<String>), String> {
    let status = status.parse().map_err(|why| format!("stored status {status:?} {why}"))?;
    let category = category.parse().map_err(|why| format!("stored category {category:?} {why}"))?;
    let flags = serde_json::from_str(flags).map_err(|e| format!("stored spam_flags are not a JSON list: {e}"))?;
    Ok((status, category, flags))
}

/// Reads an inquiry from a row whose [`INQUIRY_COLUMNS`] start at `$first`
/// through `$row.$get(index)` (rusqlite's `get`, sqlx's `try_get`): one field
/// list for both drivers; `$invalid` turns a decoding failure into the driver's error.
macro_rules! inquiry_from_row {
    ($row:expr, $get:ident, $first:expr, $invalid:expr) => {{
        let (row, first) = ($row, $first);
        let (status, category, flags): (String, String, String) =
            (row.$get(first + 3)?, row.$get(first + 4)?, row.$get(first + 15)?);
        let (status, category, spam_flags) = typed(&status, &category, &flags).map_err($invalid)?;
        InquiryRecord {
            seq: row.$get(first)?,
            id: row.$get(first + 1)?,
            received_at: row.$get(first + 2)?,
            status,
            category,
            name: row.$get(first + 5)?,
            email: row.$get(first + 6)?,
            subject: row.$get(first + 7)?,
            message: row.$get(first + 8)?,
            organization: row.$get(first + 9)?,
            country: row.$get(first + 10)?,
            phone: row.$get(first + 11)?,
            consent: row.$get(first + 12)?,
            page: row.$get(first + 13)?,
            client_ip: row.$get(first + 14)?,
            spam_flags,
            note: row.$get(first + 16)?,
        }
    }};
}

/// One keyset page from `limit + 1` rows: at most `limit` items, and the
/// position of the last one when more follow.
pub(super) fn keyset_page<T>(mut items: Vec<T>, limit: u32, seq: impl Fn(&T) -> i64) -> (Vec<T>, Option<i64>) {
    if items.len() > limit as usize {
        items.truncate(limit as usize);
        let next = items.last().map(seq);
        (items, next)
    } else {
        (items, None)
    }
}
