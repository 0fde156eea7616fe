//! `/api/v1/admin/…`: the inquiry log for staff.

use actix_web::http::{header, Method};
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use bytes::Bytes;
use futures_util::stream;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;

use super::auth::Actor;
use super::body::read_body;
use super::Endpoint;
use crate::domain::{
    encode_cursor, parse_query, EmailAddress, ExportFormat, FieldError, InquiryStatus, ListQuery, Purpose,
};
use crate::mail;
use crate::problem::Problem;
use crate::startup::AppState;
use crate::store::webhooks::DeliveryView;
use crate::store::{Erase, InquiryRecord, NotificationView, Requeue};

const NOTE_MAX: usize = 2000;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(Endpoint::new("/inquiries").get(list).build())
        .service(Endpoint::new("/inquiries/export").get(export_inquiries).build())
        .service(
            Endpoint::new("/inquiries/{id}").get(get_one).on(Method::PATCH, update).on(Method::DELETE, delete).build(),
        )
        .service(Endpoint::new("/inquiries/{id}/files/{file}").get(download_file).build())
        .service(Endpoint::new("/stats").get(stats).build())
        .service(Endpoint::new("/notifications/{id}/retry").on(Method::POST, retry).build())
        .service(Endpoint::new("/erasures").on(Method::POST, erasure).build())
        .service(Endpoint::new("/webhooks/{webhook}/replay").on(Method::POST, replay).build())
        .service(Endpoint::new("/audit").get(audit).build());
}

/// The query string parsed for `purpose`; every bad parameter listed at once.
fn query(req: &HttpRequest, purpose: Purpose) -> Result<ListQuery, Problem> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(req.query_string())
        .map_err(|e| Problem::BadRequest(format!("The query string is malformed: {e}.")))?;
    parse_query(&pairs, purpose).map_err(Problem::InvalidQuery)
}

fn actor(req: &HttpRequest) -> String {
    req.extensions().get::<Actor>().map(Actor::label).unwrap_or_else(|| "unknown".to_owned())
}

fn page_body<T: serde::Serialize>(items: &[T], next: Option<i64>) -> HttpResponse {
    HttpResponse::Ok().json(json!({"items": items, "next_cursor": next.map(encode_cursor)}))
}

#[utoipa::path(get, path = "/api/v1/admin/inquiries", security(("admin_token" = [])), tag = "admin", params(crate::openapi::Filters, crate::openapi::Paging),
    responses(
        (status = 200, description = "Newest first", body = crate::openapi::InquiryPage),
        crate::openapi::BadQuery, crate::openapi::NoToken, crate::openapi::Invalid, crate::openapi::RateLimited, crate::openapi::Unavailable
    ))]
pub(crate) async fn list(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let query = query(&req, Purpose::List)?;
    let (items, next) = state.store.list(&query.filter, query.page).await?;
    Ok(page_body(&items, next))
}

#[utoipa::path(get, path = "/api/v1/admin/inquiries/{id}", security(("admin_token" = [])), tag = "admin", params(("id" = String, Path)),
    responses(
        (status = 200, description = "The inquiry with its notifications and every delivery (emails and webhooks) with its attempts", body = crate::openapi::InquiryWithNotifications),
        crate::openapi::NoToken, crate::openapi::NotFound, crate::openapi::RateLimited, crate::openapi::Unavailable
    ))]
pub(crate) async fn get_one(id: web::Path<String>, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let (inquiry, notifications) = state.store.get(&id).await?.ok_or(Problem::NotFound)?;
    let deliveries = state.store.deliveries(&id).await?;
    Ok(HttpResponse::Ok().json(with_deliveries(&inquiry, &notifications, &deliveries)))
}

#[utoipa::path(get, path = "/api/v1/admin/inquiries/{id}/files/{file}", security(("admin_token" = [])), tag = "admin",
    params(("id" = String, Path), ("file" = String, Path, description = "The file's `id` (from the inquiry's `files`)")),
    responses(
        (status = 200, description = "The file's bytes, as an attachment (`Content-Disposition: attachment`, `X-Content-Type-Options: nosniff`)",
            content_type = "application/octet-stream", body = Vec<u8>),
        crate::openapi::NoToken, crate::openapi::NotFound, crate::openapi::RateLimited, crate::openapi::Unavailable
    ))]
pub(crate) async fn download_file(
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let (id, file) = path.into_inner();
    super::download::file(&state.store, &id, &file).await
}

/// Every file of an inquiry, with the field it came in (`fields.<name>` holds each field's).
#[derive(serde::Serialize)]
struct FileView {
    field: String,
    #[serde(flatten)]
    file: crate::domain::StoredFile,
}

fn with_deliveries(inquiry: &InquiryRecord, notifications: &[NotificationView], deliveries: &[DeliveryView]) -> Value {
    let mut body = serde_json::to_value(inquiry).unwrap_or_default();
    let files: Vec<FileView> = crate::domain::StoredFile::all(&inquiry.fields)
        .into_iter()
        .map(|(field, file)| FileView { field, file })
        .collect();
    body["files"] = serde_json::to_value(files).unwrap_or_default();
    body["notifications"] = serde_json::to_value(notifications).unwrap_or_default();
    body["deliveries"] = serde_json::to_value(deliveries).unwrap_or_default();
    body
}

/// `{"status": "...", "note"?: "..." | null}`.
#[utoipa::path(patch, path = "/api/v1/admin/inquiries/{id}", security(("admin_token" = [])), tag = "admin", params(("id" = String, Path)), request_body = crate::openapi::StatusChange,
    responses(
        (status = 200, description = "Updated", body = crate::openapi::InquiryWithNotifications),
        crate::openapi::Malformed, crate::openapi::NoToken, crate::openapi::ReadToken, crate::openapi::NotFound, crate::openapi::BodyTimeout,
        crate::openapi::TooLarge, crate::openapi::UnsupportedType, crate::openapi::Invalid, crate::openapi::RateLimited, crate::openapi::Unavailable
    ))]
pub(crate) async fn update(
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let body = json_object(&req, payload, &state).await?;
    let (status, note) = parse_update(body)?;
    let id = id.into_inner();
    if !state.store.update_status(&actor(&req), &id, status, note).await? {
        return Err(Problem::NotFound);
    }
    get_one(web::Path::from(id), state).await
}

fn parse_update(mut body: Map<String, Value>) -> Result<(InquiryStatus, Option<Option<String>>), Problem> {
    let mut errors = Vec::new();
    let status = match body.remove("status") {
        Some(Value::String(s)) => match s.parse::<InquiryStatus>() {
            Ok(status) => Some(status),
            Err(why) => {
                errors.push(FieldError::new("status", "invalid_choice", format!("status {why}")));
                None
            }
        },
        Some(_) => {
            errors.push(FieldError::new("status", "invalid_type", "status must be a string"));
            None
        }
        None => {
            errors.push(FieldError::new("status", "required", "status is required"));
            None
        }
    };
    let note = match body.remove("note") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(s)) if s.chars().count() > NOTE_MAX => {
            errors.push(FieldError::new("note", "too_long", format!("note must be at most {NOTE_MAX} characters")));
            None
        }
        Some(Value::String(s)) if s.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) => {
            errors.push(FieldError::new("note", "control_characters", "note must not contain control characters"));
            None
        }
        Some(Value::String(s)) => Some(Some(s.trim().to_owned()).filter(|s| !s.is_empty())),
        Some(_) => {
            errors.push(FieldError::new("note", "invalid_type", "note must be a string or null"));
            None
        }
    };
    for key in body.keys() {
        errors.push(FieldError::new(key.clone(), "unknown_field", format!("{key} is not a field of this call")));
    }
    match status {
        Some(status) if errors.is_empty() => Ok((status, note)),
        _ => Err(Problem::InvalidBody(errors)),
    }
}

async fn json_object(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<Map<String, Value>, Problem> {
    let kind = super::BodyKind::of(req)?;
    if kind != super::BodyKind::Json {
        return Err(Problem::UnsupportedMediaType);
    }
    let bytes =
        read_body(req, payload, state.settings.server.body_limit_bytes, state.settings.server.client_timeout()).await?;
    kind.fields(&bytes)
}

#[utoipa::path(delete, path = "/api/v1/admin/inquiries/{id}", security(("admin_token" = [])), tag = "admin", params(("id" = String, Path)),
    responses(
        (status = 204, description = "Erased with its notifications; audited"),
        crate::openapi::NoToken, crate::openapi::ReadToken, crate::openapi::NotFound, crate::openapi::RateLimited, crate::openapi::Unavailable
    ))]
pub(crate) async fn delete(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let erased = erase(&req, &state, "inquiry.delete", Erase::One(id.into_inner())).await?;
    if erased == 0 {
        return Err(Problem::NotFound);
    }
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ErasureRequest {
    email: String,
}

/// A right-to-be-forgotten request: every inquiry from one address.
#[utoipa::path(post, path = "/api/v1/admin/erasures", security(("admin_token" = [])), tag = "admin", request_body = crate::openapi::ErasureRequest,
    responses(
        (status = 200, description = "Every inquiry from that address erased", body = crate::openapi::Erased),
        crate::openapi::Malformed, crate::openapi::NoToken, crate::openapi::ReadToken, crate::openapi::BodyTimeout, crate::openapi::TooLarge,
        crate::openapi::UnsupportedType, crate::openapi::Invalid, crate::openapi::RateLimited, crate::openapi::Unavailable
    ))]
pub(crate) async fn erasure(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let body = json_object(&req, payload, &state).await?;
    let request: ErasureRequest = serde_json::from_value(Value::Object(body))
        .map_err(|e| invalid_body("email", "invalid", format!("send {{\"email\": \"...\"}} only ({e})")))?;
    let email = EmailAddress::parse("email", &request.email).map_err(|e| Problem::InvalidBody(vec![e]))?;
    let erased = erase(&req, &state, "erasure", Erase::Email(email.normalized().to_owned())).await?;
    Ok(HttpResponse::Ok().json(json!({"erased": erased})))
}

fn invalid_body(field: &str, code: &'static str, message: String) -> Problem {
    Problem::InvalidBody(vec![FieldError::new(field, code, message)])
}

/// Erases (the store audits the count, never the address), then removes any
/// copies of the emails the file transport kept.
async fn erase(req: &HttpRequest, state: &AppState, action: &'static str, which: Erase) -> Result<usize, Problem> {
    let ids = state.store.erase(&actor(req), action, which, json!({})).await?;
    mail::forget(&state.settings.mail, &ids).await;
    Ok(ids.len())
}

#[utoipa::path(get, path = "/api/v1/admin/inquiries/export", security(("admin_token" = [])), tag = "admin", params(crate::openapi::ExportFormat, crate::openapi::Filters),
    responses(
        (status = 200, description = "Streamed CSV (RFC 4180, formula cells neutralised) or NDJSON", content((String = "text/csv"), (String = "application/x-ndjson"))),
        crate::openapi::BadQuery, crate::openapi::NoToken, crate::openapi::Invalid, crate::openapi::RateLimited, crate::openapi::Unavailable
    ))]
pub(crate) async fn export_inquiries(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let query = query(&req, Purpose::Export)?;
    Ok(export_response(&req, &state, query))
}

/// The streamed export of `query`: the API's, the console's (and, through the
/// store, the CLI's) one code path.
pub(crate) fn export_response(req: &HttpRequest, state: &AppState, query: ListQuery) -> HttpResponse {
    let format = query.format.unwrap_or(ExportFormat::Ndjson);
    let (content_type, extension) = match format {
        ExportFormat::Csv => ("text/csv; charset=utf-8", "csv"),
        ExportFormat::Ndjson => ("application/x-ndjson", "ndjson"),
    };
    let mut response = HttpResponse::Ok();
    response
        .content_type(content_type)
        .insert_header((header::CONTENT_DISPOSITION, format!("attachment; filename=\"inquiries.{extension}\"")));
    if req.method() == actix_web::http::Method::HEAD {
        // The headers a GET would have; no export is run for a body nobody reads.
        return response.finish();
    }
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    let store = state.store.clone();
    let custom = state.forms.export_columns(query.filter.form.as_deref());
    tokio::spawn(async move {
        if let Err(error) = store.export(&query.filter, format, query.bom, custom.as_deref(), tx).await {
            tracing::error!(%error, "export failed part-way");
        }
    });
    let body = stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|chunk| (Ok::<_, Problem>(chunk), rx)) });
    response.streaming(body)
}

#[utoipa::path(get, path = "/api/v1/admin/stats", security(("admin_token" = [])), tag = "admin", params(crate::openapi::FormFilter),
    responses(
        (status = 200, description = "Totals by status and category, and per day for the last 30 days", body = crate::openapi::Stats),
        crate::openapi::BadQuery, crate::openapi::NoToken, crate::openapi::Invalid, crate::openapi::RateLimited, crate::openapi::Unavailable
    ))]
pub(crate) async fn stats(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let query = query(&req, Purpose::Stats)?;
    Ok(HttpResponse::Ok().json(state.store.stats(query.filter.form.as_deref()).await?))
}

#[utoipa::path(post, path = "/api/v1/admin/notifications/{id}/retry", security(("admin_token" = [])), tag = "admin", params(("id" = String, Path)),
    responses(
        (status = 202, description = "Re-queued", body = crate::openapi::Requeued),
        crate::openapi::NoToken, crate::openapi::ReadToken, crate::openapi::NotFound,
        (status = 409, description = "Not a failed notification", body = crate::openapi::Problem, content_type = "application/problem+json"),
        crate::openapi::RateLimited, crate::openapi::Unavailable
    ))]
pub(crate) async fn retry(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let id = id.into_inner();
    match state.store.requeue(&actor(&req), &id).await? {
        Requeue::Requeued => {
            state.outbox.notify_one();
            Ok(HttpResponse::Accepted().json(json!({"id": id, "status": "pending"})))
        }
        Requeue::NotFound => Err(Problem::NotFound),
        Requeue::NotFailed(status) => {
            Err(Problem::Conflict(format!("only a failed delivery can be retried; this one is {status}")))
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayRequest {
    since: String,
}

/// After a receiver outage longer than the retries: every failed delivery of
/// one webhook (`form.name`, as `deliveries` shows it) since a time, queued again.
#[utoipa::path(post, path = "/api/v1/admin/webhooks/{webhook}/replay", security(("admin_token" = [])), tag = "admin",
    params(("webhook" = String, Path, description = "The webhook's key, `<form>.<name>` (or `<form>.<index>` without a name)")),
    request_body = crate::openapi::ReplayRequest,
    responses(
        (status = 202, description = "Queued again, due now", body = crate::openapi::Replayed),
        crate::openapi::Malformed, crate::openapi::NoToken, crate::openapi::ReadToken, crate::openapi::NotFound, crate::openapi::BodyTimeout,
        crate::openapi::TooLarge, crate::openapi::UnsupportedType, crate::openapi::Invalid, crate::openapi::RateLimited, crate::openapi::Unavailable
    ))]
pub(crate) async fn replay(
    req: HttpRequest,
    webhook: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let webhook = webhook.into_inner();
    if !state.settings.webhooks().any(|(_, key, _)| key == webhook) {
        return Err(Problem::NotFound);
    }
    let body = json_object(&req, payload, &state).await?;
    let request: ReplayRequest = serde_json::from_value(Value::Object(body))
        .map_err(|e| invalid_body("since", "invalid", format!("send {{\"since\": \"<RFC 3339 time>\"}} only ({e})")))?;
    let since = crate::timestamp::parse_rfc3339(&request.since)
        .ok_or_else(|| invalid_body("since", "invalid_date", "since must be an RFC 3339 time".to_owned()))?;
    let requeued = state.store.replay_webhook(&actor(&req), &webhook, since).await?;
    Ok(HttpResponse::Accepted().json(json!({"webhook": webhook, "requeued": requeued})))
}

#[utoipa::path(get, path = "/api/v1/admin/audit", security(("admin_token" = [])), tag = "admin", params(crate::openapi::Paging),
    responses(
        (status = 200, description = "Admin actions, newest first", body = crate::openapi::AuditPage),
        crate::openapi::BadQuery, crate::openapi::NoToken, crate::openapi::Invalid, crate::openapi::RateLimited, crate::openapi::Unavailable
    ))]
pub(crate) async fn audit(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let query = query(&req, Purpose::Pages)?;
    let (entries, next) = state.store.audit_page(query.page).await?;
    Ok(page_body(&entries, next))
}
