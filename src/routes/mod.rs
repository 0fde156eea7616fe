//! HTTP routes, one module per group, merged in [`configure`].

mod body;
mod health;
mod submit;

use actix_web::web;

pub use body::{read_body, BodyKind};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(health::metrics))
        .route("/api/v1/inquiries", web::post().to(submit::submit));
}
