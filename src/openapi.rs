//! The OpenAPI 3.1 document of the whole API, generated from the handlers'
//! annotations and the types below (which describe bodies the handlers parse
//! by hand, so that every field error can be reported at once).

use actix_web::HttpResponse;
use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, IntoResponses, Modify, OpenApi, ToSchema};

use crate::domain::{Category, InquiryStatus, NotificationKind};
use crate::routes;

/// `POST /api/v1/inquiries` (JSON, or the same fields form-encoded).
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct Submission {
    /// 1–100 characters after trimming; no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069]*[^\s\u0000-\u001F\u007F-\u009F\u00AD\u034F\u061C\u115F\u1160\u17B4\u17B5\u180B-\u180F\u200B-\u200F\u202A-\u202E\u2060-\u206F\u2800\u3164\uFE00-\uFE0F\uFEFF\uFFA0][^\u0000-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069]*$"
    )]
    name: String,
    /// A valid address, at most 254 characters.
    #[schema(max_length = 254, format = "email")]
    email: String,
    /// 1–200 characters, one line.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069]*[^\s\u0000-\u001F\u007F-\u009F\u00AD\u034F\u061C\u115F\u1160\u17B4\u17B5\u180B-\u180F\u200B-\u200F\u202A-\u202E\u2060-\u206F\u2800\u3164\uFE00-\uFE0F\uFEFF\uFFA0][^\u0000-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069]*$"
    )]
    subject: String,
    /// 1–10,000 characters; newlines and tabs allowed.
    #[schema(
        min_length = 1,
        max_length = 10000,
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F\u00AD\u034F\u061C\u115F\u1160\u17B4\u17B5\u180B-\u180F\u200B-\u200F\u202A-\u202E\u2060-\u206F\u2800\u3164\uFE00-\uFE0F\uFEFF\uFFA0][^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
    )]
    message: String,
    /// `inquiry` when absent.
    category: Option<Category>,
    #[schema(max_length = 200, pattern = r"^[^\u0000-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069]*$")]
    organization: Option<String>,
    #[schema(max_length = 100, pattern = r"^[^\u0000-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069]*$")]
    country: Option<String>,
    /// Digits, spaces and `+-().`, at most 40 characters.
    #[schema(max_length = 40, pattern = r"^[0-9 +().-]*$")]
    phone: Option<String>,
    /// Required `true` when `privacy.require_consent` is on.
    consent: Option<bool>,
    /// The page the form was on.
    #[schema(max_length = 2000, pattern = r"^[^\u0000-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069]*$")]
    page: Option<String>,
    /// The honeypot (its name is `spam.honeypot_field`): a person leaves it absent or
    /// empty; a filled one is answered like any other and kept as spam.
    #[serde(rename = "_gotcha")]
    #[schema(rename = "_gotcha", value_type = Option<Value>)]
    gotcha: Option<String>,
    /// When the form was shown: RFC 3339 or Unix milliseconds.
    #[schema(rename = "_started_at")]
    started_at: Option<String>,
    /// The language of the answer (`en`, `ru`, `zh`, `kk`; a region such as
    /// `ru-KZ` is fine): problem titles, details and field messages, and the HTML
    /// pages. Absent or unknown: `Accept-Language`, else English.
    #[schema(rename = "_lang")]
    lang: Option<String>,
    /// The CAPTCHA token, when `captcha.provider` is set.
    #[schema(rename = "cf-turnstile-response")]
    turnstile: Option<String>,
    #[schema(rename = "h-captcha-response")]
    hcaptcha: Option<String>,
    #[schema(rename = "g-recaptcha-response")]
    recaptcha: Option<String>,
}

/// The answer to an accepted submission (also for spam and repeats).
#[derive(Serialize, ToSchema)]
pub struct Accepted {
    pub id: String,
    #[schema(example = "received")]
    pub status: String,
    #[schema(format = "date-time")]
    pub received_at: String,
}

/// Declares a problem response that several endpoints share; each lists it by
/// name in its `responses(...)`.
macro_rules! problem_response {
    ($name:ident, $status:tt, $description:tt) => {
        #[derive(IntoResponses)]
        #[response(status = $status, description = $description, content_type = "application/problem+json")]
        #[allow(dead_code)]
        pub struct $name(Problem);
    };
}

problem_response!(BadQuery, 400, "The query string cannot be parsed");
problem_response!(Malformed, 400, "Malformed JSON (the detail says where)");
problem_response!(BodyTimeout, 408, "The body did not arrive within `server.client_timeout_seconds`");
problem_response!(TooLarge, 413, "Body over `server.body_limit_bytes`");
problem_response!(NoToken, 401, "No valid token (`WWW-Authenticate: Bearer`)");
problem_response!(ReadToken, 403, "A read token");
problem_response!(NotFound, 404, "No such resource");
problem_response!(UnsupportedType, 415, "Content type other than JSON or form-encoded");
problem_response!(UnsupportedSubmissionType, 415, "Content type other than JSON, form-encoded or multipart/form-data");
problem_response!(Invalid, 422, "Invalid: every failing field listed");
problem_response!(RateLimited, 429, "Rate-limited (`Retry-After`)");
problem_response!(Unavailable, 503, "Storage unavailable (`Retry-After`)");

/// RFC 9457 problem details.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Problem {
    #[schema(rename = "type")]
    kind: String,
    title: String,
    status: u16,
    detail: String,
    errors: Option<Vec<FieldError>>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct FieldError {
    field: String,
    code: String,
    message: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Readiness {
    status: String,
    checks: std::collections::BTreeMap<String, String>,
}

/// A stored inquiry.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Inquiry {
    id: String,
    #[schema(format = "date-time")]
    received_at: String,
    status: InquiryStatus,
    category: Category,
    name: String,
    email: String,
    subject: String,
    message: String,
    organization: Option<String>,
    country: Option<String>,
    phone: Option<String>,
    consent: Option<bool>,
    page: Option<String>,
    /// As `privacy.store_ip` allows.
    client_ip: Option<String>,
    /// Why it was judged spam, e.g. `honeypot`, `too_many_links`.
    spam_flags: Vec<String>,
    note: Option<String>,
    /// The id of the form it was sent with.
    #[schema(pattern = r"^[a-z0-9-]{1,40}$")]
    form: String,
    /// The form's custom fields that were given, by name.
    fields: std::collections::BTreeMap<String, CustomValue>,
}

/// A custom field's value: text (`text`, `textarea`, `email`, `url`, `date`,
/// `select`), a number, or a checkbox's boolean.
#[derive(ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum CustomValue {
    Text(String),
    Number(f64),
    Checked(bool),
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Notification {
    id: String,
    kind: NotificationKind,
    recipient: String,
    status: NotificationStatus,
    attempts: i64,
    last_error: Option<String>,
    #[schema(format = "date-time")]
    sent_at: Option<String>,
}

/// Where a notification stands in the outbox.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum NotificationStatus {
    Pending,
    Sending,
    Sent,
    Failed,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct InquiryWithNotifications {
    #[schema(inline)]
    #[serde(flatten)]
    inquiry: Inquiry,
    notifications: Vec<Notification>,
    /// Every email and webhook delivery, oldest first, with its attempts.
    deliveries: Vec<Delivery>,
    /// Its uploaded files, from every file field (each field's list is also its value in `fields`).
    files: Vec<InquiryFile>,
}

/// An uploaded file; download it from `/api/v1/admin/inquiries/{id}/files/{file}` by its `id`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct InquiryFile {
    /// The file field it came in.
    field: String,
    #[schema(inline)]
    #[serde(flatten)]
    file: crate::domain::StoredFile,
}

/// One email or webhook event on its way.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Delivery {
    /// A notification's id (an email) or the `webhook-id` (`msg_…`); either can be retried.
    id: String,
    channel: Channel,
    /// An email's kind (`staff`, `receipt`) or a webhook's event (`inquiry.created`, …).
    kind: String,
    /// The email's recipients, or the webhook's key (`<form>.<name>`).
    target: String,
    status: NotificationStatus,
    last_error: Option<String>,
    #[schema(format = "date-time")]
    sent_at: Option<String>,
    attempts: Vec<Attempt>,
}

#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum Channel {
    Email,
    Webhook,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Attempt {
    /// Counts from 1; starts again when a failed delivery is retried.
    attempt: i64,
    #[schema(format = "date-time")]
    at: String,
    outcome: AttemptOutcome,
    /// The server's answer or the error.
    detail: String,
}

#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum AttemptOutcome {
    Sent,
    Retry,
    Failed,
}

#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// Failed deliveries queued at or after this time are queued again.
    #[schema(format = "date-time")]
    since: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Replayed {
    webhook: String,
    requeued: u64,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct InquiryPage {
    items: Vec<Inquiry>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    next_cursor: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    status: InquiryStatus,
    /// A staff note (at most 2,000 characters); `null` clears it.
    #[schema(max_length = 2000, pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$")]
    note: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
pub struct ErasureRequest {
    #[schema(format = "email", max_length = 254)]
    email: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Erased {
    erased: u64,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Requeued {
    id: String,
    #[schema(example = "pending")]
    status: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Stats {
    total: i64,
    by_status: std::collections::BTreeMap<String, i64>,
    by_category: std::collections::BTreeMap<String, i64>,
    /// The last 30 days, oldest first.
    per_day: Vec<DayCount>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct DayCount {
    #[schema(format = "date")]
    date: String,
    count: i64,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct AuditEntry {
    #[schema(format = "date-time")]
    at: String,
    /// `token:<id>`, `cli` or `retention`.
    actor: String,
    action: String,
    target: Option<String>,
    detail: serde_json::Value,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct AuditPage {
    items: Vec<AuditEntry>,
    next_cursor: Option<String>,
}

/// The filters of the inquiry log (the list and the export).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct Filters {
    #[param(inline)]
    status: Option<InquiryStatus>,
    #[param(inline)]
    category: Option<Category>,
    /// A form's id: its inquiries only (a CSV export then has a column per custom field).
    #[param(pattern = r"^[a-z0-9-]{1,40}$")]
    form: Option<String>,
    /// The visitor's address, case-insensitive.
    #[param(min_length = 1, max_length = 254)]
    email: Option<String>,
    /// Full-text search in any language: every word must occur, as a whole word.
    #[param(max_length = 200)]
    q: Option<String>,
    /// RFC 3339, inclusive.
    #[param(format = DateTime)]
    since: Option<String>,
    /// RFC 3339, inclusive (before `since`: nothing matches).
    #[param(format = DateTime)]
    until: Option<String>,
}

/// The statistics' one filter.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct FormFilter {
    /// A form's id: its inquiries only.
    #[param(pattern = r"^[a-z0-9-]{1,40}$")]
    form: Option<String>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct Paging {
    /// How many items, 50 when absent.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(pattern = r"^[1-9][0-9]{0,17}$")]
    cursor: Option<String>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ExportFormat {
    #[param(inline)]
    format: crate::domain::ExportFormat,
    /// CSV only: start with a UTF-8 byte-order mark (default `true`), so that
    /// spreadsheets read Cyrillic and Chinese text correctly.
    bom: Option<bool>,
}

/// A plain HTML form cannot send `null`: its body is the JSON submission's
/// schema with every `null` alternative removed.
struct FormSubmission;

impl Modify for FormSubmission {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Schema, SchemaType, Type};
        use utoipa::openapi::{Ref, RefOr};

        let Some(components) = openapi.components.as_mut() else { return };
        let Some(RefOr::T(Schema::Object(json))) = components.schemas.get_mut("Submission") else { return };
        json.properties.insert("_started_at".to_owned(), started_at(true));
        let consent = AnyOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::Boolean))
            .item(consent_words())
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .description(Some("Required `true` when `privacy.require_consent` is on."));
        json.properties.insert("consent".to_owned(), consent.into());
        let mut form = json.clone();
        form.properties.insert("_started_at".to_owned(), started_at(false));
        form.properties.insert("consent".to_owned(), consent_words().into());
        for property in form.properties.values_mut() {
            let replacement = match property {
                RefOr::T(Schema::Object(object)) => {
                    if let SchemaType::Array(types) = &object.schema_type {
                        let types: Vec<Type> = types.iter().filter(|t| **t != Type::Null).cloned().collect();
                        if let [only] = types.as_slice() {
                            object.schema_type = SchemaType::Type(only.clone());
                        }
                    }
                    None
                }
                RefOr::T(Schema::OneOf(one_of)) => one_of
                    .items
                    .iter()
                    .find(|item| !matches!(item, RefOr::T(Schema::Object(o)) if o.schema_type == SchemaType::Type(Type::Null)))
                    .cloned(),
                _ => None,
            };
            if let Some(replacement) = replacement {
                *property = replacement;
            }
        }
        components.schemas.insert("FormSubmission".to_owned(), RefOr::T(Schema::Object(form)));
        for path in ["/api/v1/inquiries", "/api/v1/forms/{form}/inquiries"] {
            let body = openapi
                .paths
                .paths
                .get_mut(path)
                .and_then(|item| item.post.as_mut())
                .and_then(|post| post.request_body.as_mut())
                .and_then(|body| body.content.get_mut("application/x-www-form-urlencoded"));
            if let Some(content) = body {
                content.schema = Some(RefOr::Ref(Ref::from_schema_name("FormSubmission")));
            }
            let multipart = openapi
                .paths
                .paths
                .get_mut(path)
                .and_then(|item| item.post.as_mut())
                .and_then(|post| post.request_body.as_mut())
                .and_then(|body| body.content.get_mut("multipart/form-data"));
            if let Some(content) = multipart {
                content.schema = Some(RefOr::Ref(Ref::from_schema_name("FormSubmission")));
            }
        }
    }
}

/// What a form's checkbox sends for consent: one of the exact words.
fn consent_words() -> utoipa::openapi::schema::Object {
    let words = crate::domain::CONSENT_WORDS.iter().map(|(word, _)| *word);
    utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::Type::String).enum_values(Some(words)).build()
}

/// `_started_at`: an RFC 3339 time, or Unix milliseconds as digits (or, in JSON, a
/// number or `null`).
fn started_at(json: bool) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{AnyOfBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type};
    let mut any = AnyOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
        )
        .item(ObjectBuilder::new().schema_type(Type::String).pattern(Some(r"^\s*([1-9][0-9]{0,17})?\s*$")))
        .description(Some("When the form was shown: RFC 3339 or Unix milliseconds."));
    if json {
        any = any
            .item(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)).maximum(Some(i64::MAX)))
            .item(ObjectBuilder::new().schema_type(Type::Null));
    }
    any.into()
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "inquiryd",
        description = "The backend of a website's Contact Us form: submissions, operations and the admin API. \
                       Every error is RFC 9457 `application/problem+json` (but the HTML error page of a plain form post). \
                       A method a path does not serve answers 405 with `Allow`; HEAD is served wherever GET is."
    ),
    paths(
        routes::submit::submit,
        routes::submit::submit_to_form,
        routes::forms::definition,
        routes::form_page::thanks,
        routes::health::healthz,
        routes::health::readyz,
        routes::health::metrics,
        openapi_json,
        routes::admin::list,
        routes::admin::export_inquiries,
        routes::admin::get_one,
        routes::admin::download_file,
        routes::admin::update,
        routes::admin::delete,
        routes::admin::stats,
        routes::admin::retry,
        routes::admin::erasure,
        routes::admin::replay,
        routes::admin::audit,
    ),
    modifiers(&BearerAuth, &FormSubmission),
    tags(
        (name = "public", description = "What the website calls"),
        (name = "operations", description = "Health, readiness, metrics"),
        (name = "admin", description = "The inquiry log; `Authorization: Bearer TOKEN`")
    )
)]
pub struct ApiDoc;

/// The document, serialised once.
pub fn document() -> &'static str {
    static JSON: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    JSON.get_or_init(|| ApiDoc::openapi().to_pretty_json().unwrap_or_default())
}

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json")))]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(document())
}
