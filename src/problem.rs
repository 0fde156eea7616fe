//! RFC 9457 problem details: the one place errors become HTTP answers.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use fluent_bundle::FluentValue;

use crate::domain::FieldError;
use crate::i18n::Lang;

/// What was wrong with a request body that could not be parsed.
#[derive(Debug, thiserror::Error)]
pub enum Malformed {
    #[error("not valid JSON: {0}")]
    Json(String),
    #[error("not valid form encoding: {0}")]
    Form(String),
    #[error("could not be read: {0}")]
    Unreadable(String),
}

/// Every way a request can fail, with what the client needs to fix it.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    #[error("malformed request body: {0}")]
    Malformed(Malformed),
    /// The query string, path or request target could not be parsed at all.
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("request body larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// A file over its field's `max_bytes` (the error names the field).
    #[error("file too large")]
    FileTooLarge(Vec<FieldError>),
    #[error("request body not received in time")]
    BodyTimeout { seconds: u64 },
    /// The request head did not arrive in time (answered by the HTTP layer).
    #[error("request head not received in time")]
    HeadTimeout,
    /// The request head is larger than the HTTP layer accepts.
    #[error("request headers too large")]
    HeadersTooLarge,
    #[error("unsupported content type")]
    UnsupportedMediaType,
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// Query parameters of an admin call that are unknown or out of range.
    #[error("invalid query parameters")]
    InvalidQuery(Vec<FieldError>),
    /// The JSON body of an admin call (a status change, an erasure request).
    #[error("invalid request body")]
    InvalidBody(Vec<FieldError>),
    #[error("idempotency key reused with a different body")]
    IdempotencyMismatch,
    #[error("a request with this idempotency key is still in flight")]
    IdempotencyInFlight,
    #[error("origin not allowed")]
    ForbiddenOrigin,
    #[error("rate limited")]
    RateLimited { retry_after: u64 },
    #[error("storage unavailable")]
    Unavailable { retry_after: u64 },
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed { allow: String },
    #[error("authentication required")]
    Unauthorized { token_given: bool },
    #[error("token scope too narrow")]
    ReadOnlyToken,
    /// A console request refused: no session, a missing or foreign CSRF token
    /// or Origin, or a role that may not do this. The detail says which.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a [FieldError]>,
}

impl Problem {
    pub fn validation_one(field: &str, code: &'static str, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, code, message)])
    }

    fn slug_and_title(&self) -> (&'static str, &'static str) {
        match self {
            Self::Malformed(_) => ("malformed-body", "Malformed request body"),
            Self::BadRequest(_) => ("bad-request", "Malformed request"),
            Self::TooLarge { .. } => ("body-too-large", "Request body too large"),
            Self::FileTooLarge(_) => ("file-too-large", "File too large"),
            Self::BodyTimeout { .. } => ("body-timeout", "Request body too slow"),
            Self::HeadTimeout => ("head-timeout", "Request too slow"),
            Self::HeadersTooLarge => ("headers-too-large", "Request headers too large"),
            Self::UnsupportedMediaType => ("unsupported-media-type", "Unsupported media type"),
            Self::Validation(_) => ("validation", "Invalid submission"),
            Self::InvalidQuery(_) => ("invalid-query", "Invalid query parameters"),
            Self::InvalidBody(_) => ("invalid-body", "Invalid request body"),
            Self::IdempotencyMismatch => ("idempotency-key-reused", "Idempotency key reused"),
            Self::IdempotencyInFlight => ("idempotency-key-in-flight", "Request already in flight"),
            Self::ForbiddenOrigin => ("origin-not-allowed", "Origin not allowed"),
            Self::RateLimited { .. } => ("rate-limited", "Too many requests"),
            Self::Unavailable { .. } => ("storage-unavailable", "Service temporarily unavailable"),
            Self::NotFound => ("not-found", "Not found"),
            Self::MethodNotAllowed { .. } => ("method-not-allowed", "Method not allowed"),
            Self::Unauthorized { .. } => ("unauthorized", "Authentication required"),
            Self::ReadOnlyToken => ("read-only-token", "Token may only read"),
            Self::Forbidden(_) => ("forbidden", "Forbidden"),
            Self::Conflict(_) => ("conflict", "Conflict"),
            Self::Internal(_) => ("internal", "Internal error"),
        }
    }

    /// The human-readable explanation: what happened and what to do.
    pub fn detail(&self) -> String {
        match self {
            Self::Malformed(Malformed::Json(why)) => format!("The body is not valid JSON: {why}"),
            Self::Malformed(Malformed::Form(why)) => {
                format!("The body is not valid application/x-www-form-urlencoded: {why}")
            }
            Self::Malformed(Malformed::Unreadable(why)) => format!("The body could not be read: {why}"),
            Self::BadRequest(why) => why.clone(),
            Self::TooLarge { limit } => format!("The body must be at most {limit} bytes."),
            Self::BodyTimeout { seconds } => format!("The whole body must arrive within {seconds} seconds."),
            Self::HeadTimeout => "The request line and headers must arrive promptly; send them at once.".to_owned(),
            Self::HeadersTooLarge => "The request's headers are too many or too large.".to_owned(),
            Self::UnsupportedMediaType => {
                "Send application/json, application/x-www-form-urlencoded or multipart/form-data.".to_owned()
            }
            Self::Validation(errors)
            | Self::InvalidQuery(errors)
            | Self::InvalidBody(errors)
            | Self::FileTooLarge(errors)
                if errors.len() == 1 =>
            {
                errors[0].message.clone()
            }
            Self::Validation(errors)
            | Self::InvalidQuery(errors)
            | Self::InvalidBody(errors)
            | Self::FileTooLarge(errors) => {
                format!("{} fields need attention.", errors.len())
            }
            Self::IdempotencyMismatch => {
                "This Idempotency-Key was already used with a different body; use a new key.".to_owned()
            }
            Self::IdempotencyInFlight => {
                "The first request with this Idempotency-Key is still being processed; retry shortly.".to_owned()
            }
            Self::ForbiddenOrigin => "Requests from this origin are not accepted.".to_owned(),
            Self::RateLimited { retry_after } => format!("Too many requests; retry in {retry_after} seconds."),
            Self::Unavailable { retry_after } => {
                format!("Storage is busy or unavailable; nothing was saved. Retry in {retry_after} seconds.")
            }
            Self::NotFound => "No such resource.".to_owned(),
            Self::MethodNotAllowed { allow } => format!("This resource answers {allow} only."),
            Self::Unauthorized { token_given: false } => {
                "Send an admin token as `Authorization: Bearer TOKEN`.".to_owned()
            }
            Self::Unauthorized { token_given: true } => "The token is not valid or was revoked.".to_owned(),
            Self::ReadOnlyToken => "This token has the read scope; changes need a write token.".to_owned(),
            Self::Forbidden(why) => (*why).to_owned(),
            Self::Conflict(why) => why.clone(),
            Self::Internal(_) => "Something went wrong on our side; nothing about it is your fault.".to_owned(),
        }
    }

    pub fn field_errors(&self) -> Option<&[FieldError]> {
        match self {
            Self::Validation(errors)
            | Self::InvalidQuery(errors)
            | Self::InvalidBody(errors)
            | Self::FileTooLarge(errors) => Some(errors),
            _ => None,
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after } | Self::Unavailable { retry_after } => Some(*retry_after),
            Self::IdempotencyInFlight => Some(1),
            _ => None,
        }
    }
}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Malformed(_) | Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::TooLarge { .. } | Self::FileTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout { .. } | Self::HeadTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation(_) | Self::InvalidQuery(_) | Self::InvalidBody(_) | Self::IdempotencyMismatch => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::IdempotencyInFlight => StatusCode::CONFLICT,
            Self::ForbiddenOrigin => StatusCode::FORBIDDEN,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::ReadOnlyToken | Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        self.respond(self.slug_and_title().1, self.detail(), self.field_errors())
    }
}

impl Problem {
    /// The answer in a visitor's language, with `Content-Language`: title,
    /// detail and every field message from the catalogue where it has them
    /// (English words otherwise); `type`, `status`, codes and fields never change.
    pub fn response_in(&self, lang: Lang) -> HttpResponse {
        let (title, detail, errors) = self.localized(lang);
        let mut response = self.respond(&title, detail, errors.as_deref());
        response.headers_mut().insert(header::CONTENT_LANGUAGE, HeaderValue::from_static(lang.tag()));
        response
    }

    /// Title, detail and field errors in `lang` (English words where the
    /// catalogue has none).
    pub fn localized(&self, lang: Lang) -> (String, String, Option<Vec<FieldError>>) {
        let errors: Option<Vec<FieldError>> = self
            .field_errors()
            .map(|errors| errors.iter().map(|e| FieldError { message: lang.field_message(e), ..e.clone() }).collect());
        let (slug, english) = self.slug_and_title();
        let title = lang.try_text(&format!("problem-{slug}-title"), &[]).unwrap_or_else(|| english.to_owned());
        let detail = self.detail_in(lang, errors.as_deref()).unwrap_or_else(|| self.detail());
        (title, detail, errors)
    }

    /// The detail in `lang`, given the field errors already in it; `None` where
    /// the catalogue has no words for this problem.
    fn detail_in(&self, lang: Lang, errors: Option<&[FieldError]>) -> Option<String> {
        let slug = self.slug_and_title().0;
        let number = |name: &'static str, n: u64| [(name, FluentValue::from(n))];
        match self {
            Self::Malformed(malformed) => {
                let (kind, why) = match malformed {
                    Malformed::Json(why) => ("json", why),
                    Malformed::Form(why) => ("form", why),
                    Malformed::Unreadable(why) => ("unreadable", why),
                };
                lang.try_text(&format!("problem-{slug}-{kind}"), &[("why", FluentValue::from(why.as_str()))])
            }
            Self::TooLarge { limit } => lang.try_text("problem-body-too-large-detail", &number("limit", *limit as u64)),
            Self::BodyTimeout { seconds } => lang.try_text("problem-body-timeout-detail", &number("seconds", *seconds)),
            Self::RateLimited { retry_after } | Self::Unavailable { retry_after } => {
                lang.try_text(&format!("problem-{slug}-detail"), &number("retry_after", *retry_after))
            }
            Self::Validation(_) | Self::FileTooLarge(_) => match errors? {
                [one] => Some(one.message.clone()),
                many => lang.try_text("problem-validation-detail", &number("count", many.len() as u64)),
            },
            _ => lang.try_text(&format!("problem-{slug}-detail"), &[]),
        }
    }

    fn respond(&self, title: &str, detail: String, errors: Option<&[FieldError]>) -> HttpResponse {
        if let Self::Internal(cause) = self {
            tracing::error!(error = format!("{cause:#}"), "request failed");
        }
        let status = self.status_code();
        let slug = self.slug_and_title().0;
        let body =
            Body { kind: format!("tag:inquiryd,2026:problem:{slug}"), title, status: status.as_u16(), detail, errors };
        let mut response = HttpResponse::build(status);
        response.insert_header((header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json")));
        if let Self::Unauthorized { token_given } = self {
            let challenge = if *token_given {
                "Bearer realm=\"inquiryd\", error=\"invalid_token\""
            } else {
                "Bearer realm=\"inquiryd\""
            };
            response.insert_header((header::WWW_AUTHENTICATE, challenge));
        }
        if let Self::MethodNotAllowed { allow } = self {
            response.insert_header((header::ALLOW, allow.as_str()));
        }
        if let Some(seconds) = self.retry_after() {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        response.body(serde_json::to_vec(&body).unwrap_or_default())
    }
}

impl From<crate::store::StoreError> for Problem {
    /// Busy or failing storage is a 503 the client may retry; anything else is a bug.
    fn from(error: crate::store::StoreError) -> Self {
        if error.is_transient() {
            tracing::warn!(%error, "storage unavailable");
            Self::Unavailable { retry_after: 5 }
        } else {
            Self::Internal(error.into())
        }
    }
}
