use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::startup::AppState;

/// 200 while the process runs.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "The process runs")))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// 200 when the database answers and every migration is applied, else 503.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses(
    (status = 200, description = "Ready", body = crate::openapi::Readiness),
    (status = 503, description = "Not ready: the body lists each check", body = crate::openapi::Readiness)))]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let (database, migrations) = state.store.readiness().await;
    let word = |ok: bool| if ok { "ok" } else { "failing" };
    let body = json!({
        "status": word(database && migrations),
        "checks": {"database": word(database), "migrations": word(migrations)},
    });
    if database && migrations {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().insert_header(("Retry-After", "5")).json(body)
    }
}

/// Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain")))]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    if let Ok((pending, oldest)) = state.store.backlog().await {
        metrics::gauge!("inquiryd_notifications_pending").set(pending as f64);
        let age = oldest.map_or(0, |created| (crate::timestamp::now_ms() - created).max(0));
        metrics::gauge!("inquiryd_notifications_oldest_pending_age_seconds").set(age as f64 / 1000.0);
    }
    if let Ok((pending, oldest)) = state.store.webhook_backlog().await {
        metrics::gauge!("inquiryd_webhooks_pending").set(pending as f64);
        let age = oldest.map_or(0, |created| (crate::timestamp::now_ms() - created).max(0));
        metrics::gauge!("inquiryd_webhooks_oldest_pending_age_seconds").set(age as f64 / 1000.0);
    }
    HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(state.metrics.render())
}
