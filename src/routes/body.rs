//! Reading request bodies: content type, size limit, parse errors as problems.

use actix_web::http::header;
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;
use serde_json::{Map, Value};

use crate::problem::{Malformed, Problem};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Json,
    Form,
    /// `multipart/form-data`: read as a stream by `upload` (files are only sent this way).
    Multipart,
}

impl BodyKind {
    pub fn of(req: &HttpRequest) -> Result<Self, Problem> {
        let essence = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
            .unwrap_or_default();
        match essence.as_str() {
            "application/json" => Ok(Self::Json),
            "application/x-www-form-urlencoded" => Ok(Self::Form),
            "multipart/form-data" => Ok(Self::Multipart),
            _ => Err(Problem::UnsupportedMediaType),
        }
    }

    /// Parses the body into the field map every submission goes through.
    pub fn fields(self, bytes: &[u8]) -> Result<Map<String, Value>, Problem> {
        match self {
            Self::Json => match serde_json::from_slice::<Value>(bytes) {
                Ok(Value::Object(map)) => Ok(map),
                Ok(_) => Err(Problem::Malformed(Malformed::Json("expected a JSON object at line 1".to_owned()))),
                Err(e) => Err(Problem::Malformed(Malformed::Json(format!(
                    "{} at line {} column {}",
                    describe_json_error(&e),
                    e.line(),
                    e.column()
                )))),
            },
            Self::Form => {
                let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(bytes)
                    .map_err(|e| Problem::Malformed(Malformed::Form(e.to_string())))?;
                Ok(pairs.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
            }
            Self::Multipart => Err(Problem::UnsupportedMediaType),
        }
    }
}

fn describe_json_error(e: &serde_json::Error) -> &'static str {
    use serde_json::error::Category;
    match e.classify() {
        Category::Eof => "unexpected end of input",
        Category::Syntax => "syntax error",
        Category::Data => "unexpected value",
        Category::Io => "could not read the body",
    }
}

/// Reads the whole body within `timeout`, refusing it as soon as it passes
/// `limit` bytes: a client trickling its body cannot hold a worker for long.
pub async fn read_body(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<web::Bytes, Problem> {
    tokio::time::timeout(timeout, read_limited(req, payload, limit))
        .await
        .unwrap_or(Err(Problem::BodyTimeout { seconds: timeout.as_secs() }))
}

async fn read_limited(req: &HttpRequest, mut payload: web::Payload, limit: usize) -> Result<web::Bytes, Problem> {
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(Problem::TooLarge { limit });
    }
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(1024).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| Problem::Malformed(Malformed::Unreadable(e.to_string())))?;
        if body.len() + chunk.len() > limit {
            return Err(Problem::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}
