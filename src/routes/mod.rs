//! HTTP routes, one module per group, merged in [`configure`].

pub(crate) mod admin;
mod auth;
mod body;
mod cors;
pub(crate) mod form_page;
pub(crate) mod health;
pub(crate) mod submit;

use actix_web::web;

pub use body::BodyKind;
pub use cors::cors;

/// The example contact form, served at `/` when `server.demo_page` is on.
const DEMO_PAGE: &str = include_str!("../../examples/contact-form.html");

pub fn configure(cfg: &mut web::ServiceConfig, demo_page: bool) {
    if demo_page {
        cfg.route(
            "/",
            web::get().to(|| async {
                actix_web::HttpResponse::Ok().content_type("text/html; charset=utf-8").body(DEMO_PAGE)
            }),
        );
    }
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(health::metrics))
        .route("/thanks", web::get().to(form_page::thanks))
        .route("/api/v1/openapi.json", web::get().to(crate::openapi::openapi_json))
        .route("/api/v1/inquiries", web::post().to(submit::submit))
        .service(
            web::scope("/api/v1/admin")
                .wrap(actix_web::middleware::from_fn(auth::require_token))
                .configure(admin::configure),
        );
}
