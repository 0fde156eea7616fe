//! The web console at `/admin` (`[admin] console = true`): server-rendered
//! pages over the same store calls as the admin API, for people in a browser.
//!
//! Every response carries the console's security headers (see
//! [`security_headers`]); every state change is a POST that passes
//! [`session::authorize`] (Origin, session, CSRF token, role) first.

mod auth;
mod dashboard;
mod inbox;
mod inquiry;
mod manage;
mod pages;
mod session;
mod views;

use std::net::SocketAddr;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, HttpResponse};
use minijinja::Environment;

use super::Endpoint;
use crate::config::Settings;
use crate::problem::Problem;

const CSS: &str = include_str!("console.css");

/// No script at all, no frame, nothing from another origin.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// What the console needs beyond the store: its templates, its cookie and the
/// origins its forms may be posted from.
pub struct Console {
    templates: Environment<'static>,
    cookie_name: &'static str,
    secure: bool,
    own_origins: Vec<String>,
}

impl Console {
    /// `address` is where the server listens: without `server.public_url`, the
    /// console's origin is that address (and `localhost` for a loopback one).
    pub fn new(settings: &Settings, address: SocketAddr) -> Result<Self, minijinja::Error> {
        let secure = settings.server.public_url.starts_with("https://");
        let own_origins = match settings.server.own_origin() {
            Some(origin) => vec![origin],
            None if address.ip().is_loopback() => {
                vec![format!("http://{address}"), format!("http://localhost:{}", address.port())]
            }
            None => vec![format!("http://{address}")],
        };
        Ok(Self {
            templates: views::templates()?,
            cookie_name: if secure { "__Host-inquiryd_session" } else { "inquiryd_session" },
            secure,
            own_origins,
        })
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/admin")
            .wrap(from_fn(security_headers))
            .service(Endpoint::new("").get(inbox::inbox).build())
            .service(Endpoint::new("/login").get(auth::login_page).on(Method::POST, auth::login).build())
            .service(Endpoint::new("/logout").on(Method::POST, auth::logout).build())
            .service(Endpoint::new("/inquiries/{id}").get(inquiry::inquiry).build())
            .service(Endpoint::new("/inquiries/{id}/files/{file}").get(inquiry::file).build())
            .service(Endpoint::new("/inquiries/{id}/status").on(Method::POST, inquiry::change_status).build())
            .service(Endpoint::new("/inquiries/{id}/triage").on(Method::POST, inquiry::triage).build())
            .service(Endpoint::new("/inquiries/{id}/not-spam").on(Method::POST, inquiry::not_spam).build())
            .service(
                Endpoint::new("/inquiries/{id}/erase")
                    .get(inquiry::confirm_erase)
                    .on(Method::POST, inquiry::erase)
                    .build(),
            )
            .service(Endpoint::new("/deliveries/{id}/retry").on(Method::POST, inquiry::retry).build())
            .service(Endpoint::new("/dashboard").get(dashboard::dashboard).build())
            .service(Endpoint::new("/export").get(inbox::export).build())
            .service(Endpoint::new("/audit").get(manage::audit).build())
            .service(Endpoint::new("/users").get(manage::users).on(Method::POST, manage::create_user).build())
            .service(Endpoint::new("/users/{id}/disable").on(Method::POST, manage::disable_user).build())
            .service(Endpoint::new("/users/{id}/reset-password").on(Method::POST, manage::reset_password).build())
            .service(Endpoint::new("/tokens").get(manage::tokens).on(Method::POST, manage::create_token).build())
            .service(Endpoint::new("/tokens/{id}/revoke").on(Method::POST, manage::revoke_token).build())
            .service(Endpoint::new("/console.css").get(css).build())
            .default_service(web::to(|| async { Err::<HttpResponse, _>(Problem::NotFound) })),
    );
}

async fn css() -> HttpResponse {
    HttpResponse::Ok().content_type("text/css; charset=utf-8").body(CSS)
}

/// The headers SPEC asks of every console answer, errors included.
async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let mut response = next.call(req).await?.map_into_boxed_body();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    Ok(response)
}
