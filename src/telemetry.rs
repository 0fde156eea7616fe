//! Logging setup and the per-request span that carries the request id.

use std::io::IsTerminal;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use tracing::Instrument;
use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSettings};

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Installs the global subscriber; logs go to stderr, the banner to stdout.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_new(&settings.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match settings.format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(false).try_init(),
    };
}

/// Gives every request a fresh id, logs it with the outcome, and returns it as
/// `X-Request-Id`. Only method, path and status are logged: never bodies or
/// query strings, which can carry personal data.
pub async fn request_span(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, actix_web::Error> {
    let request_id = uuid::Uuid::new_v4().simple().to_string();
    let span = tracing::info_span!("request", request_id = %request_id, method = %req.method(), path = %req.path());
    let started = Instant::now();
    async move {
        let mut response = next.call(req).await?;
        let elapsed = started.elapsed().as_secs_f64();
        let status = response.status().as_u16();
        let route = response.request().match_pattern().unwrap_or_else(|| "unmatched".to_owned());
        let method = method_label(response.request().method());
        metrics::histogram!(
            "inquiryd_http_request_duration_seconds",
            "route" => route, "method" => method, "status" => status.to_string()
        )
        .record(elapsed);
        tracing::info!(status, elapsed_ms = elapsed * 1000.0, "request finished");
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
        }
        Ok(response)
    }
    .instrument(span)
    .await
}

/// A metric label for the method: the standard ones by name, every other
/// (extension) method as `OTHER`, so that no request can create a new series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "OTHER",
    }
}
