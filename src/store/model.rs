//! What the store takes and gives back, the same for every backend.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::domain::{Category, InquiryStatus, NewInquiry, NotificationKind};
use crate::i18n::Lang;
use crate::timestamp::to_rfc3339;

/// A validated submission with everything decided except its id.
#[derive(Debug)]
pub struct NewRecord {
    pub inquiry: NewInquiry,
    pub status: InquiryStatus,
    pub spam_flags: Vec<String>,
    pub client_ip: Option<String>,
    pub received_at: i64,
    /// The language the visitor was answered in: the receipt's.
    pub lang: Lang,
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

impl Receipt {
    /// A new inquiry's receipt: a fresh UUIDv7 and the time it was received.
    pub fn new(record: &NewRecord) -> Self {
        Self { id: uuid::Uuid::now_v7().to_string(), received_at: record.received_at }
    }
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
    /// The id of the form it was sent with.
    pub form: String,
    /// The form's custom fields that were given, by name.
    pub fields: Map<String, Value>,
}

impl InquiryRecord {
    /// A record just stored as `id`, as a read would give it back.
    pub fn from_new(record: &NewRecord, id: &str) -> Self {
        let inquiry = &record.inquiry;
        Self {
            seq: 0,
            id: id.to_owned(),
            received_at: record.received_at,
            status: record.status,
            category: inquiry.category,
            name: inquiry.name.clone(),
            email: inquiry.email.as_str().to_owned(),
            subject: inquiry.subject.clone(),
            message: inquiry.message.clone(),
            organization: inquiry.organization.clone(),
            country: inquiry.country.clone(),
            phone: inquiry.phone.clone(),
            consent: inquiry.consent,
            page: inquiry.page.clone(),
            client_ip: record.client_ip.clone(),
            spam_flags: record.spam_flags.clone(),
            note: None,
            form: inquiry.form.clone(),
            fields: inquiry.fields.clone(),
        }
    }
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
    /// The visitor's language (a receipt is written in it; staff email never is).
    pub lang: Lang,
    pub inquiry: InquiryRecord,
}

/// How one attempt ended.
#[derive(Debug, Clone)]
pub enum Settlement {
    Sent { id: String, attempt: i64, response: String },
    Retry { id: String, attempt: i64, error: String, next_attempt_at: i64 },
    Failed { id: String, attempt: i64, error: String },
}

impl Settlement {
    /// The notification it settles.
    pub fn id(&self) -> &str {
        match self {
            Self::Sent { id, .. } | Self::Retry { id, .. } | Self::Failed { id, .. } => id,
        }
    }
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
#[derive(Clone)]
pub enum Erase {
    One(String),
    /// A normalized address.
    Email(String),
    /// The `limit` oldest of those received before `cutoff`: a retention purge
    /// erases a backlog in transactions of this size (see `retention::purge`),
    /// `resumed` in every one after its first.
    ReceivedBefore {
        cutoff: i64,
        limit: i64,
        resumed: bool,
    },
}

impl Erase {
    /// The audit entry's target and detail for an erasure that removed `erased`
    /// inquiries (`detail` gains the count), or `None`: an erasure of one id
    /// that found nothing is not audited, nor a purge's last transaction that
    /// found nothing left. The same rule on every backend.
    pub(super) fn audit(&self, erased: usize, mut detail: Value) -> Option<(Option<&str>, Value)> {
        let target = match self {
            Erase::One(id) => Some(id.as_str()),
            _ => None,
        };
        if erased == 0 && (target.is_some() || self.resumed()) {
            return None;
        }
        detail["erased"] = Value::from(erased);
        Some((target, detail))
    }

    /// Whether this transaction of a purge erased a whole `limit`: more may follow.
    pub fn continues(&self, erased: usize) -> bool {
        matches!(self, Erase::ReceivedBefore { limit, .. } if i64::try_from(erased).is_ok_and(|n| n >= *limit))
    }

    /// A purge's transaction after its first.
    pub(super) fn resumed(&self) -> bool {
        matches!(self, Erase::ReceivedBefore { resumed: true, .. })
    }
}

/// The ids of erased inquiries, and the hashes of the files they named.
pub(super) fn erased_ids(erased: Vec<InquiryRecord>) -> (Vec<String>, Vec<String>) {
    let mut files: Vec<String> =
        erased.iter().flat_map(|i| crate::domain::StoredFile::all(&i.fields)).map(|(_, file)| file.sha256).collect();
    files.sort();
    files.dedup();
    (erased.into_iter().map(|i| i.id).collect(), files)
}

/// The hashes of a new record's files (each once).
pub(super) fn file_hashes(record: &NewRecord) -> Vec<String> {
    let mut files: Vec<String> =
        crate::domain::StoredFile::all(&record.inquiry.fields).into_iter().map(|(_, f)| f.sha256).collect();
    files.sort();
    files.dedup();
    files
}

/// The audit detail of a status change (never the note itself: it may be personal).
pub(super) fn update_detail(previous: &str, status: InquiryStatus, note_changed: bool) -> Value {
    serde_json::json!({"from": previous, "to": status.as_str(), "note_changed": note_changed})
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
/// The columns of a CSV export and the keys of an NDJSON one, in the order of
/// the API's inquiry object (each backend renders them; a test holds both to it).
pub(super) const EXPORT_COLUMNS: [&str; 18] = [
    "id",
    "received_at",
    "status",
    "category",
    "name",
    "email",
    "subject",
    "message",
    "organization",
    "country",
    "phone",
    "consent",
    "page",
    "client_ip",
    "spam_flags",
    "note",
    "form",
    "fields",
];

/// A CSV export's columns: the built-in ones and `form`, then one per custom
/// field of the filtered form (`custom`), or, without one, `fields` (the JSON object).
pub(super) fn csv_columns(custom: Option<&[String]>) -> Vec<String> {
    let built_in = EXPORT_COLUMNS.iter().take_while(|c| **c != "fields").map(|c| (*c).to_owned());
    match custom {
        Some(names) => built_in.chain(names.iter().cloned()).collect(),
        None => built_in.chain(["fields".to_owned()]).collect(),
    }
}

/// A custom value in a CSV cell: text as it is, files as `name (size bytes)`
/// joined by `; `, anything else as JSON (`true`, `3`, `2.5`); absent, nothing.
pub(super) fn csv_value(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        // A file field: its files' names and sizes, never their bytes.
        Some(files @ Value::Array(_)) => crate::domain::display(files),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

pub(super) const INQUIRY_COLUMNS: &str =
    "i.seq, i.id, i.received_at, i.status, i.category, i.name, i.email, i.subject, \
     i.message, i.organization, i.country, i.phone, i.consent, i.page, i.client_ip, i.spam_flags, i.note, i.form, i.fields";

/// Status, category, spam flags and custom values, as [`typed`] reads them.
pub(super) type TypedColumns = (InquiryStatus, Category, Vec<String>, Map<String, Value>);

/// The stored text columns that come back typed: a value this build does not
/// know is an error, never a default.
pub(super) fn typed(status: &str, category: &str, flags: &str, fields: &str) -> Result<TypedColumns, String> {
    let status = status.parse().map_err(|why| format!("stored status {status:?} {why}"))?;
    let category = category.parse().map_err(|why| format!("stored category {category:?} {why}"))?;
    let flags = serde_json::from_str(flags).map_err(|e| format!("stored spam_flags are not a JSON list: {e}"))?;
    let fields = serde_json::from_str(fields).map_err(|e| format!("stored fields are not a JSON object: {e}"))?;
    Ok((status, category, flags, fields))
}

/// The custom values as stored: a JSON object by field name.
pub(super) fn fields_json(inquiry: &NewInquiry) -> String {
    Value::Object(inquiry.fields.clone()).to_string()
}

/// Reads an inquiry from a row whose [`INQUIRY_COLUMNS`] start at `$first`
/// through `$row.$get(index)` (rusqlite's `get`, sqlx's `try_get`): one field
/// list for both drivers; `$invalid` turns a decoding failure into the driver's error.
macro_rules! inquiry_from_row {
    ($row:expr, $get:ident, $first:expr, $invalid:expr) => {{
        let (row, first) = ($row, $first);
        let (status, category, flags, fields): (String, String, String, String) =
            (row.$get(first + 3)?, row.$get(first + 4)?, row.$get(first + 15)?, row.$get(first + 18)?);
        let (status, category, spam_flags, fields) = typed(&status, &category, &flags, &fields).map_err($invalid)?;
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
            form: row.$get(first + 17)?,
            fields,
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

/// The first answer of each Idempotency-Key seen: the request's hash and the receipt given.
pub(super) type KnownKeys = std::collections::HashMap<String, ([u8; 32], Receipt)>;

/// Decides each record of a batch, in order, as both backends' group commits
/// do: a known key is a replay (or a reuse with another body); a new key's
/// first record is created with the receipt `claim` gives it (`None`: it could
/// not be claimed, a bug); an unkeyed record whose dedupe hash was seen (in
/// `recent` or earlier in the batch) is a double click; anything else is new.
/// Returns each outcome and the records to store with their ids.
pub(super) fn resolve<'a>(
    records: &[&'a NewRecord],
    mut keys: KnownKeys,
    mut recent: std::collections::HashMap<[u8; 32], Receipt>,
    mut claim: impl FnMut(&NewRecord, &IdempotencyClaim) -> Option<Receipt>,
) -> (Vec<WriteOutcome>, Vec<(&'a NewRecord, String)>) {
    let mut outcomes = Vec::with_capacity(records.len());
    let mut fresh = Vec::new();
    for record in records {
        let outcome = if let Some(key) = &record.idempotency {
            match keys.get(&key.key) {
                Some((hash, receipt)) if *hash == key.request_hash => WriteOutcome::Replayed(receipt.clone()),
                Some(_) => WriteOutcome::KeyReused,
                None => match claim(record, key) {
                    Some(receipt) => {
                        keys.insert(key.key.clone(), (key.request_hash, receipt.clone()));
                        recent.entry(record.dedupe_hash).or_insert_with(|| receipt.clone());
                        fresh.push((*record, receipt.id.clone()));
                        WriteOutcome::Created(receipt)
                    }
                    None => WriteOutcome::Failed,
                },
            }
        } else if let Some(receipt) = recent.get(&record.dedupe_hash) {
            WriteOutcome::Duplicate(receipt.clone())
        } else {
            let receipt = Receipt::new(record);
            recent.insert(record.dedupe_hash, receipt.clone());
            fresh.push((*record, receipt.id.clone()));
            WriteOutcome::Created(receipt)
        };
        outcomes.push(outcome);
    }
    (outcomes, fresh)
}

/// A notification row as stored: id, kind, recipients, status, attempts,
/// last error, sent at (ms).
pub(super) type StoredNotification = (String, String, String, String, i64, Option<String>, Option<i64>);

impl NotificationView {
    /// The typed view of a stored row; a kind or status this build does not know is an error.
    pub(super) fn from_stored(row: StoredNotification) -> Result<Self, String> {
        let (id, kind, recipient, status, attempts, last_error, sent_at) = row;
        Ok(Self {
            id,
            kind: kind.parse().map_err(|why: String| format!("stored notification kind: {why}"))?,
            recipient,
            status: status.parse().map_err(|why: String| format!("stored notification status: {why}"))?,
            attempts,
            last_error,
            sent_at: sent_at.map(to_rfc3339),
        })
    }
}

pub(crate) const DAY_MS: i64 = 86_400_000;

/// How many inquiries (and how many of them unread) share one form, status
/// and category: a row of the kept counts (`inquiry_counts`), summed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    pub form: String,
    pub status: InquiryStatus,
    pub category: Category,
    pub n: i64,
    pub unread: i64,
}

/// A stored count row: day (or none for a total), form, status, category, n, unread.
pub(crate) type StoredTally = (Option<i64>, String, String, String, i64, i64);

impl Tally {
    /// The typed tally of a stored row and its day; an unknown status or category is an error.
    pub(crate) fn from_stored(row: StoredTally) -> Result<(Option<i64>, Self), sqlx::Error> {
        let (day, form, status, category, n, unread) = row;
        let decode = |why: String| sqlx::Error::Decode(format!("stored count: {why}").into());
        Ok((
            day,
            Tally {
                form,
                status: status.parse().map_err(decode)?,
                category: category.parse().map_err(decode)?,
                n,
                unread,
            },
        ))
    }
}

/// The kept counts: totals of every inquiry ever kept, and the same per day
/// for the recent days (in days since the epoch, UTC).
#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub totals: Vec<Tally>,
    pub days: Vec<(i64, Tally)>,
}

impl Counts {
    /// The first of the last `days` days (days since the epoch, UTC): `first_day(1)` is today.
    pub fn first_day(days: i64) -> i64 {
        crate::timestamp::now_ms().div_euclid(DAY_MS) - (days - 1)
    }

    /// The `GET /stats` figures of every form (`None`) or one.
    pub fn stats(&self, form: Option<&str>) -> Stats {
        let of_form = |t: &&Tally| form.is_none_or(|f| t.form == f);
        let mut by_status: BTreeMap<String, i64> =
            InquiryStatus::ALL.iter().map(|s| (s.as_str().to_owned(), 0)).collect();
        let mut by_category: BTreeMap<String, i64> = Category::ALL.iter().map(|c| (c.as_str().to_owned(), 0)).collect();
        for t in self.totals.iter().filter(of_form) {
            *by_status.entry(t.status.as_str().to_owned()).or_default() += t.n;
            *by_category.entry(t.category.as_str().to_owned()).or_default() += t.n;
        }
        let mut per_day: BTreeMap<i64, i64> = BTreeMap::new();
        for (day, t) in self.days.iter().filter(|(_, t)| of_form(&t)) {
            *per_day.entry(*day).or_default() += t.n;
        }
        let first = Self::first_day(30);
        let per_day = (first..first + 30)
            .map(|day| DayCount { date: day_date(day), count: per_day.get(&day).copied().unwrap_or(0) })
            .collect();
        Stats { total: by_status.values().sum(), by_status, by_category, per_day }
    }

    /// Unread inquiries of every form (`None`) or one, in all and by status.
    pub fn unread(&self, form: Option<&str>) -> (i64, BTreeMap<InquiryStatus, i64>) {
        let mut by_status = BTreeMap::new();
        for t in self.totals.iter().filter(|t| form.is_none_or(|f| t.form == f)) {
            *by_status.entry(t.status).or_default() += t.unread;
        }
        (by_status.values().sum(), by_status)
    }
}

/// A day since the epoch as its date, `YYYY-MM-DD`.
pub fn day_date(day: i64) -> String {
    to_rfc3339(day * DAY_MS)[..10].to_owned()
}

/// An audit row as stored: seq, at (ms), actor, action, target, detail (JSON).
pub(super) type StoredAudit = (i64, i64, String, String, Option<String>, String);

impl AuditEntry {
    /// Stored JSON that does not parse is an error, never a default.
    pub(super) fn from_stored(row: StoredAudit) -> Result<Self, serde_json::Error> {
        let (seq, at, actor, action, target, detail) = row;
        Ok(Self { seq, at: to_rfc3339(at), actor, action, target, detail: serde_json::from_str(&detail)? })
    }
}

/// A token row as stored: id, name, scope, created at, last used at, revoked at (ms).
pub(super) type StoredToken = (String, String, String, i64, Option<i64>, Option<i64>);
/// The same with the token's hash last (for the lookup by hash).
pub(super) type StoredTokenAndHash = (String, String, String, i64, Option<i64>, Option<i64>, Vec<u8>);

impl TokenInfo {
    pub(super) fn from_stored(row: StoredToken) -> Result<Self, String> {
        let (id, name, scope, created_at, last_used, revoked_at) = row;
        Ok(Self {
            id,
            name,
            scope: scope.parse().map_err(|why: String| format!("stored scope: {why}"))?,
            created_at: to_rfc3339(created_at),
            last_used_at: last_used.map(to_rfc3339),
            revoked_at: revoked_at.map(to_rfc3339),
            last_used_ms: last_used,
        })
    }
}

/// A stored language tag; one this build does not speak is an error, never English.
pub(super) fn stored_lang(tag: &str) -> Result<Lang, String> {
    Lang::from_tag(tag).filter(|lang| lang.tag() == tag).ok_or_else(|| format!("stored language {tag:?} is unknown"))
}
