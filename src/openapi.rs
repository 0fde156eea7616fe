//! The OpenAPI 3.1 document of the whole API, generated from the handlers'
//! annotations and the types below (which describe bodies the handlers parse
//! by hand, so that every field error can be reported at once).

use actix_web::HttpResponse;
use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, IntoResponses, Modify, OpenApi, ToSchema};

use crate::routes;

/// `POST /api/v1/inquiries` (JSON, or the same fields form-encoded).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Submission {
    /// 1–100 characters after trimming; no control characters.
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    /// A valid address, at most 254 characters.
    #[schema(max_length = 254, format = "email")]
    email: String,
    /// 1–200 characters, one line.
    #[schema(min_length = 1, max_length = 200)]
    subject: String,
    /// 1–10,000 characters; newlines and tabs allowed.
    #[schema(min_length = 1, max_length = 10000)]
    message: String,
    #[schema(value_type = Option<String>, example = "question")]
    /// `inquiry` (default), `question`, `commendation` or `other`.
    category: Option<String>,
    #[schema(max_length = 200)]
    organization: Option<String>,
    #[schema(max_length = 100)]
    country: Option<String>,
    /// Digits, spaces and `+-().`, at most 40 characters.
    #[schema(max_length = 40)]
    phone: Option<String>,
    /// Required `true` when `privacy.require_consent` is on.
    consent: Option<bool>,
    /// The page the form was on.
    #[schema(max_length = 2000)]
    page: Option<String>,
    /// The honeypot (its name is `spam.honeypot_field`): must be absent or empty.
    #[serde(rename = "_gotcha")]
    #[schema(rename = "_gotcha")]
    gotcha: Option<String>,
    /// When the form was shown: RFC 3339 or Unix milliseconds.
    #[schema(rename = "_started_at")]
    started_at: Option<String>,
    /// The CAPTCHA token, when `captcha.provider` is set (or `h-captcha-response`, `g-recaptcha-response`).
    #[schema(rename = "cf-turnstile-response")]
    turnstile: Option<String>,
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

problem_response!(NoToken, 401, "No valid token (`WWW-Authenticate: Bearer`)");
problem_response!(ReadToken, 403, "A read token");
problem_response!(NotFound, 404, "No such resource");
problem_response!(UnsupportedType, 415, "Content type other than JSON or form-encoded");
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
    /// `new`, `in_progress`, `resolved`, `spam` or `archived`.
    status: String,
    category: String,
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
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Notification {
    id: String,
    /// `staff` or `receipt`.
    kind: String,
    recipient: String,
    /// `pending`, `sending`, `sent` or `failed`.
    status: String,
    attempts: i64,
    last_error: Option<String>,
    #[schema(format = "date-time")]
    sent_at: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct InquiryWithNotifications {
    #[schema(inline)]
    #[serde(flatten)]
    inquiry: Inquiry,
    notifications: Vec<Notification>,
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
pub struct StatusChange {
    /// `new`, `in_progress`, `resolved`, `spam` or `archived`.
    status: String,
    /// A staff note (at most 2,000 characters); `null` clears it.
    note: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErasureRequest {
    #[schema(format = "email")]
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
    /// `new`, `in_progress`, `resolved`, `spam` or `archived`.
    status: Option<String>,
    /// `inquiry`, `question`, `commendation` or `other`.
    category: Option<String>,
    /// The visitor's address, case-insensitive.
    email: Option<String>,
    /// Full-text search in any language (every word, the last as a prefix).
    q: Option<String>,
    /// RFC 3339, inclusive.
    since: Option<String>,
    /// RFC 3339, inclusive.
    until: Option<String>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct Paging {
    /// 1–200, default 50.
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ExportFormat {
    /// `csv` or `ndjson`.
    format: String,
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
                       Every error is RFC 9457 `application/problem+json`."
    ),
    paths(
        routes::submit::submit,
        routes::form_page::thanks,
        routes::health::healthz,
        routes::health::readyz,
        routes::health::metrics,
        openapi_json,
        routes::admin::list,
        routes::admin::export_inquiries,
        routes::admin::get_one,
        routes::admin::update,
        routes::admin::delete,
        routes::admin::stats,
        routes::admin::retry,
        routes::admin::erasure,
        routes::admin::audit,
    ),
    modifiers(&BearerAuth),
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
