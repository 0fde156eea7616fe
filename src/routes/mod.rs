//! HTTP routes, one module per group, merged in [`configure`].

mod body;
mod cors;
mod form_page;
mod health;
mod submit;

use actix_web::web;

pub use body::{read_body, BodyKind};
pub use cors::cors;
pub use form_page::escape;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(health::metrics))
        .route("/thanks", web::get().to(form_page::thanks))
        .route("/api/v1/inquiries", web::post().to(submit::submit));
}
