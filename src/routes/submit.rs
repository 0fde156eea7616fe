//! `POST /api/v1/inquiries`: limit, validate, flag spam, commit, answer in JSON
//! or, for a plain HTML form, with a redirect or an error page.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::body::{read_body, BodyKind};
use super::form_page;
use super::upload;
use crate::config::StoreIp;
use crate::domain::{parse_submission, FieldError, Form, InquiryStatus, NewInquiry, SubmissionRules};
use crate::i18n::Lang;
use crate::limits::{client_address, Allowance, Refused, Verdict, SPAM_FLAGS};
use crate::mail;
use crate::problem::Problem;
use crate::startup::AppState;
use crate::store::search::Searchable;
use crate::store::{IdempotencyClaim, NewRecord, Receipt, WriteOutcome};
use crate::timestamp::{now_ms, to_rfc3339};

const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";
const MAX_IDEMPOTENCY_KEY: usize = 128;

/// The rate-limit state to report, most constraining first.
#[derive(Default)]
struct Allowances(Vec<Allowance>);

impl Allowances {
    fn note(&mut self, checked: Result<Option<Allowance>, Refused>) -> Result<(), Problem> {
        match checked {
            Ok(allowance) => {
                self.0.extend(allowance);
                Ok(())
            }
            Err(refused) => {
                self.0.push(refused.allowance);
                Err(Problem::RateLimited { retry_after: refused.retry_after })
            }
        }
    }

    fn headers(&self, response: &mut HttpResponse, policy: &str) {
        let Some(tightest) = self.0.iter().min_by_key(|a| (a.remaining, std::cmp::Reverse(a.reset_seconds))) else {
            return;
        };
        let state = format!("\"{}\";r={};t={}", tightest.name, tightest.remaining, tightest.reset_seconds);
        for (name, value) in [("ratelimit-policy", policy.to_owned()), ("ratelimit", state)] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(header::HeaderName::from_static(name), value);
            }
        }
    }
}

/// Submit an inquiry to the default form (JSON, or a plain HTML form's fields form-encoded).
#[utoipa::path(
    post,
    path = "/api/v1/inquiries",
    tag = "public",
    request_body(content(
        (crate::openapi::Submission = "application/json"),
        (crate::openapi::Submission = "application/x-www-form-urlencoded"),
        (crate::openapi::Submission = "multipart/form-data")
    )),
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 128, pattern = r"^[!-~]+$",
        description = "Printable ASCII, at most 128 characters; a repeat within 24 h returns the first answer")),
    responses(
        (status = 201, description = "Stored and its emails queued (also for spam and repeats, which return the first answer)", body = crate::openapi::Accepted),
        (status = 303, description = "A plain form post was stored: redirect to `form.success_url` (or `/thanks`)"),
        (status = 400, description = "Malformed JSON or form encoding (the detail says where)", content(
            (crate::openapi::Problem = "application/problem+json"), (String = "text/html"))),
        (status = 403, description = "Origin not in `server.allowed_origins`", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 408, description = "The body did not arrive within `server.client_timeout_seconds`", content(
            (crate::openapi::Problem = "application/problem+json"), (String = "text/html"))),
        (status = 409, description = "The first request with this Idempotency-Key is still in flight", content(
            (crate::openapi::Problem = "application/problem+json"), (String = "text/html"))),
        (status = 413, description = "Body over `server.body_limit_bytes` (`multipart/form-data` to a form with file fields: `server.upload_limit_bytes`), or a file over its field's `max_bytes` (`errors` names the field, code `too_large`)", content(
            (crate::openapi::Problem = "application/problem+json"), (String = "text/html"))),
        crate::openapi::UnsupportedSubmissionType,
        (status = 422, description = "Invalid: every failing field listed (a plain form post gets an HTML page listing them); files: `too_many_files`, `invalid_file_type`, `empty_file`", content(
            (crate::openapi::Problem = "application/problem+json"), (String = "text/html"))),
        (status = 429, description = "Rate-limited (`Retry-After`)", content(
            (crate::openapi::Problem = "application/problem+json"), (String = "text/html"))),
        (status = 503, description = "Storage unavailable (`Retry-After`)", content(
            (crate::openapi::Problem = "application/problem+json"), (String = "text/html")))
    )
)]
pub async fn submit(req: HttpRequest, payload: web::Payload, state: web::Data<AppState>) -> HttpResponse {
    let form = Arc::clone(state.forms.default_form());
    respond(req, payload, state, Some(form)).await
}

/// Submit an inquiry to one form. The body documented here is the built-in
/// fields; a form with custom fields (or hidden built-in ones) takes exactly
/// what its definition, `GET /api/v1/forms/{form}`, lists, and answers any
/// other field with a 422 naming it. Every form also takes `multipart/form-data`
/// (what a plain HTML form with `enctype="multipart/form-data"` sends); a form
/// with `file` fields takes its files that way only, as parts with a filename,
/// in a body of up to `server.upload_limit_bytes`.
#[utoipa::path(
    post,
    path = "/api/v1/forms/{form}/inquiries",
    tag = "public",
    request_body(content(
        (crate::openapi::Submission = "application/json"),
        (crate::openapi::Submission = "application/x-www-form-urlencoded"),
        (crate::openapi::Submission = "multipart/form-data")
    )),
    params(("form" = String, Path, pattern = r"^[a-z0-9-]{1,40}$", example = "contact", description = "The form's id"),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 128, pattern = r"^[!-~]+$",
        description = "Printable ASCII, at most 128 characters; a repeat within 24 h returns the first answer")),
    responses(
        (status = 201, description = "Stored and its emails queued (also for spam and repeats, which return the first answer)", body = crate::openapi::Accepted),
        (status = 303, description = "A plain form post was stored: redirect to the form's `success_url` (or `/thanks`)"),
        (status = 400, description = "Malformed JSON or form encoding (the detail says where)", content(
            (crate::openapi::Problem = "application/problem+json"), (String = "text/html"))),
        (status = 403, description = "Origin not in the form's `allowed_origins`", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such form", content(
            (crate::openapi::Problem = "application/problem+json"), (String = "text/html"))),
        (status = 408, description = "The body did not arrive within `server.client_timeout_seconds`", content(
            (crate::openapi::Problem = "application/problem+json"), (String = "text/html"))),
        (status = 409, description = "The first request with this Idempotency-Key is still in flight", content(
            (crate::openapi::Problem = "application/problem+json"), (String = "text/html"))),
        (status = 413, description = "Body over `server.body_limit_bytes` (`multipart/form-data` to a form with file fields: `server.upload_limit_bytes`), or a file over its field's `max_bytes` (`errors` names the field, code `too_large`)", content(
            (crate::openapi::Problem = "application/problem+json"), (String = "text/html"))),
        crate::openapi::UnsupportedSubmissionType,
        (status = 422, description = "Invalid: every failing field listed (a plain form post gets an HTML page listing them); files: `too_many_files`, `invalid_file_type`, `empty_file`", content(
            (crate::openapi::Problem = "application/problem+json"), (String = "text/html"))),
        (status = 429, description = "Rate-limited (`Retry-After`)", content(
            (crate::openapi::Problem = "application/problem+json"), (String = "text/html"))),
        (status = 503, description = "Storage unavailable (`Retry-After`)", content(
            (crate::openapi::Problem = "application/problem+json"), (String = "text/html")))
    )
)]
pub async fn submit_to_form(
    req: HttpRequest,
    form: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let form = state.forms.get(&form).cloned();
    respond(req, payload, state, form).await
}

/// Accepts (or refuses) a submission to `form` (`None`: a form that does not exist).
async fn respond(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    form: Option<Arc<Form>>,
) -> HttpResponse {
    let kind = BodyKind::of(&req);
    let html = matches!(kind, Ok(BodyKind::Form | BodyKind::Multipart)) && !wants_json(&req);
    let mut allowances = Allowances::default();
    // Accept-Language until the body's `_lang` field says otherwise.
    let mut lang = Lang::of_request(&req, None);
    let outcome = match &form {
        Some(form) => accept(&req, payload, &state, form, kind, &mut allowances, &mut lang).await,
        None => Err(Problem::NotFound),
    };
    if let Err(problem) = &outcome {
        let label = match problem {
            Problem::NotFound => "unknown_form",
            Problem::RateLimited { .. } => "rate_limited",
            Problem::Unavailable { .. } => "unavailable",
            Problem::Internal(_) => "failed",
            _ => "invalid",
        };
        metrics::counter!("inquiryd_submissions_total", "outcome" => label).increment(1);
    }
    let mut response = match (outcome, html) {
        (Ok(receipt), false) => created(&receipt),
        (Ok(receipt), true) => see_other(form.as_ref().map_or("", |f| f.success_url.as_str()), &receipt),
        (Err(problem), false) => problem.response_in(lang),
        (Err(problem), true) => form_page::error_page(&problem, lang),
    };
    allowances.headers(&mut response, &state.rate_limit_policy);
    response
}

async fn accept(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    form: &Form,
    kind: Result<BodyKind, Problem>,
    allowances: &mut Allowances,
    lang: &mut Lang,
) -> Result<Receipt, Problem> {
    let received_at = now_ms();
    let settings = &state.settings;
    let kind = kind?;
    let peer = req.peer_addr().map(|a| a.ip()).unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let client = client_address(peer, req.headers(), &settings.server.trusted_proxies);
    allowances.note(state.guard.check_ip(client).await)?;

    let (fields, files, mut errors, request_hash) = match kind {
        BodyKind::Multipart => {
            // Only a form with file fields takes a body larger than a JSON one.
            let text = settings.server.body_limit_bytes;
            let upload = if form.takes_files() { settings.server.upload_limit_bytes } else { text };
            let limits = upload::Limits { upload, text };
            let timeout = settings.server.client_timeout();
            let read = upload::read(req, payload, form, state.store.blobs(), limits);
            let received = tokio::time::timeout(timeout, read)
                .await
                .unwrap_or(Err(Problem::BodyTimeout { seconds: timeout.as_secs() }))?;
            (received.fields, received.files, received.errors, received.request_hash)
        }
        BodyKind::Json | BodyKind::Form => {
            let limit = settings.server.body_limit_bytes;
            let bytes = read_body(req, payload, limit, settings.server.client_timeout()).await?;
            let mut fields = kind.fields(&bytes)?;
            let errors = upload::refuse_files_in(&mut fields, form);
            let hash: [u8; 32] = Sha256::digest(&bytes).into();
            (fields, Vec::new(), errors, hash)
        }
    };
    if let Some(serde_json::Value::String(tag)) = fields.get("_lang") {
        *lang = Lang::of_request(req, Some(tag));
    }
    let key = idempotency_key(req)?;
    let rules = SubmissionRules {
        honeypot_field: &settings.spam.honeypot_field,
        require_consent: settings.privacy.require_consent,
        form,
    };
    let submission = match parse_submission(fields, rules) {
        Ok(submission) if errors.is_empty() => submission,
        Ok(_) => return Err(Problem::Validation(errors)),
        Err(others) => {
            // The file fields' errors and every other field's, at once (a refused
            // file is not reported "required" as well).
            let seen: Vec<String> = errors.iter().map(|e| e.field.clone()).collect();
            errors.extend(others.into_iter().filter(|e| !seen.contains(&e.field)));
            return Err(Problem::Validation(errors));
        }
    };
    allowances.note(state.guard.check_email(submission.inquiry.email.normalized()).await)?;

    let mut flags = state.guard.spam.flags(&submission, received_at);
    if let Some(captcha) = &state.guard.captcha {
        if let Some(key) = &key {
            // A replay must not spend the (single-use) CAPTCHA token again.
            if let Some((hash, receipt)) = state.store.idempotent_answer(key).await? {
                return if hash == request_hash { Ok(receipt) } else { Err(Problem::IdempotencyMismatch) };
            }
        }
        let field = captcha.token_field();
        let Some(token) = &submission.captcha_token else {
            return Err(Problem::validation_one(field, "captcha_required", "complete the CAPTCHA to send the form"));
        };
        match captcha.verify(token, client).await {
            Verdict::Passed => {}
            Verdict::Failed(codes) => {
                tracing::info!(codes = ?codes, "captcha refused");
                return Err(Problem::Validation(vec![FieldError::new(
                    field,
                    "captcha_failed",
                    "the CAPTCHA was not solved or has expired; please try again",
                )]));
            }
            Verdict::Unavailable(why) => {
                tracing::warn!(%why, "captcha verification unavailable; accepting the submission unverified");
                flags.push("captcha_unverified".to_owned());
            }
        }
    }

    let spam = flags.iter().any(|f| SPAM_FLAGS.contains(&f.as_str()));
    let status = if spam { InquiryStatus::Spam } else { InquiryStatus::New };
    let notifications = if spam { Vec::new() } else { mail::plan(form, &submission.inquiry) };
    let email_norm = submission.inquiry.email.normalized().to_owned();
    let record = NewRecord {
        dedupe_hash: dedupe_hash(&email_norm, &submission.inquiry),
        email_norm,
        search_document: settings.database.search_index.then(|| Searchable::of_new(&submission.inquiry).document()),
        inquiry: submission.inquiry,
        status,
        spam_flags: flags,
        client_ip: stored_ip(client, settings.privacy.store_ip),
        received_at,
        lang: *lang,
        idempotency: key.map(|key| IdempotencyClaim { key, request_hash }),
        notifications,
    };

    let _claim = match &record.idempotency {
        Some(claim) => Some(InFlight::claim(&state.in_flight, &claim.key)?),
        None => None,
    };
    let outcome = upload::persist_then(&state.store, files, async {
        let outcome = state.store.submit(record).await;
        let stored = matches!(outcome, WriteOutcome::Created(_));
        (outcome, stored)
    })
    .await?;
    let (label, result) = match outcome {
        WriteOutcome::Created(receipt) if spam => ("spam", Ok(receipt)),
        WriteOutcome::Created(receipt) => ("accepted", Ok(receipt)),
        WriteOutcome::Replayed(receipt) | WriteOutcome::Duplicate(receipt) => ("duplicate", Ok(receipt)),
        WriteOutcome::KeyReused => return Err(Problem::IdempotencyMismatch),
        WriteOutcome::Unavailable => return Err(Problem::Unavailable { retry_after: 5 }),
        WriteOutcome::Failed => {
            return Err(Problem::Internal(anyhow::anyhow!("the writer could not store a valid submission")))
        }
    };
    metrics::counter!("inquiryd_submissions_total", "outcome" => label).increment(1);
    result
}

fn wants_json(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("application/json") || accept.contains("application/problem+json"))
}

fn created(receipt: &Receipt) -> HttpResponse {
    HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/admin/inquiries/{}", receipt.id)))
        .json(json!({"id": receipt.id, "status": "received", "received_at": to_rfc3339(receipt.received_at)}))
}

/// 303 to `form.success_url`, never to an address the request names.
fn see_other(success_url: &str, receipt: &Receipt) -> HttpResponse {
    let location = if success_url.is_empty() { format!("/thanks?id={}", receipt.id) } else { success_url.to_owned() };
    HttpResponse::SeeOther().insert_header((header::LOCATION, location)).finish()
}

fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, Problem> {
    let Some(value) = req.headers().get(IDEMPOTENCY_HEADER) else { return Ok(None) };
    let bad = |why: &str| Problem::validation_one(IDEMPOTENCY_HEADER, "invalid_header", why.to_owned());
    let key = value.to_str().map_err(|_| bad("Idempotency-Key must be printable ASCII"))?.trim();
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY {
        return Err(bad("Idempotency-Key must be 1 to 128 characters"));
    }
    if key.chars().any(|c| !c.is_ascii_graphic()) {
        return Err(bad("Idempotency-Key must be printable ASCII"));
    }
    Ok(Some(key.to_owned()))
}

/// Identifies a double click: the same (normalized) email, subject and message
/// to the same form.
fn dedupe_hash(email_norm: &str, inquiry: &NewInquiry) -> [u8; 32] {
    let mut hash = Sha256::new();
    for part in [email_norm, &inquiry.subject, &inquiry.message, &inquiry.form] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hash.finalize().into()
}

/// The client address as `[privacy] store_ip` allows it to be kept.
pub fn stored_ip(ip: IpAddr, policy: StoreIp) -> Option<String> {
    match (policy, ip) {
        (StoreIp::None, _) => None,
        (StoreIp::Full, ip) => Some(ip.to_string()),
        (StoreIp::Truncated, IpAddr::V4(v4)) => {
            let [a, b, c, _] = v4.octets();
            Some(format!("{a}.{b}.{c}.0/24"))
        }
        (StoreIp::Truncated, IpAddr::V6(v6)) => {
            let s = v6.segments();
            let prefix = std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0);
            Some(format!("{prefix}/48"))
        }
    }
}

/// Marks an Idempotency-Key as being processed; released when dropped.
struct InFlight<'a> {
    set: &'a Mutex<HashSet<String>>,
    key: String,
}

impl<'a> InFlight<'a> {
    fn claim(set: &'a Mutex<HashSet<String>>, key: &str) -> Result<Self, Problem> {
        let mut keys = set.lock().unwrap_or_else(|e| e.into_inner());
        if !keys.insert(key.to_owned()) {
            return Err(Problem::IdempotencyInFlight);
        }
        Ok(Self { set, key: key.to_owned() })
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.set.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_addresses() {
        let v4: IpAddr = "203.0.113.77".parse().unwrap();
        let v6: IpAddr = "2001:db8:abcd:12::1".parse().unwrap();
        assert_eq!(stored_ip(v4, StoreIp::Truncated).unwrap(), "203.0.113.0/24");
        assert_eq!(stored_ip(v6, StoreIp::Truncated).unwrap(), "2001:db8:abcd::/48");
        assert_eq!(stored_ip(v4, StoreIp::Full).unwrap(), "203.0.113.77");
        assert_eq!(stored_ip(v4, StoreIp::None), None);
    }
}
