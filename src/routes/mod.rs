//! HTTP routes, one module per group, merged in [`configure`].

pub(crate) mod admin;
mod auth;
mod body;
pub(crate) mod console;
mod cors;
pub(crate) mod download;
mod endpoint;
pub(crate) mod form_page;
pub(crate) mod forms;
pub(crate) mod health;
pub(crate) mod submit;
mod upload;

use actix_web::http::Method;
use actix_web::{web, HttpResponse};

use crate::problem::{Malformed, Problem};

pub use body::BodyKind;
use endpoint::Endpoint;

/// The example contact form, served at `/` when `server.demo_page` is on.
const DEMO_PAGE: &str = include_str!("../../examples/contact-form.html");
/// The example registration form (it renders `GET /api/v1/forms/conference`),
/// served at `/event-registration` when `server.demo_page` is on.
const EVENT_PAGE: &str = include_str!("../../examples/event-registration.html");
/// The example internship application (a CV upload to the form `internships`),
/// served at `/internship` when `server.demo_page` is on.
const INTERNSHIP_PAGE: &str = include_str!("../../examples/internship.html");

pub fn configure(cfg: &mut web::ServiceConfig, demo_page: bool, console: bool) {
    extractor_errors(cfg);
    if console {
        console::configure(cfg);
    }
    if demo_page {
        cfg.service(
            Endpoint::new("/")
                .get(|| async { HttpResponse::Ok().content_type("text/html; charset=utf-8").body(DEMO_PAGE) })
                .build(),
        )
        .service(
            Endpoint::new("/event-registration")
                .get(|| async { HttpResponse::Ok().content_type("text/html; charset=utf-8").body(EVENT_PAGE) })
                .build(),
        )
        .service(
            Endpoint::new("/internship")
                .get(|| async { HttpResponse::Ok().content_type("text/html; charset=utf-8").body(INTERNSHIP_PAGE) })
                .build(),
        );
    }
    cfg.service(Endpoint::new("/healthz").get(health::healthz).build())
        .service(Endpoint::new("/readyz").get(health::readyz).build())
        .service(Endpoint::new("/metrics").get(health::metrics).build())
        .service(Endpoint::new("/thanks").get(form_page::thanks).build())
        .service(Endpoint::new("/api/v1/openapi.json").get(crate::openapi::openapi_json).build())
        // CORS wraps the route the router matched, so it sees the same path as the
        // router whatever the request's spelling (`/api/v1/inquirie%73`).
        .service(
            Endpoint::new("/api/v1/inquiries")
                .on(Method::POST, submit::submit)
                .build()
                .wrap(actix_web::middleware::from_fn(cors::cors)),
        )
        .service(
            Endpoint::new("/api/v1/forms/{form}/inquiries")
                .on(Method::POST, submit::submit_to_form)
                .build()
                .wrap(actix_web::middleware::from_fn(cors::cors)),
        )
        .service(
            Endpoint::new("/api/v1/forms/{form}")
                .get(forms::definition)
                .build()
                .wrap(actix_web::middleware::from_fn(cors::cors)),
        )
        .service(
            web::scope("/api/v1/admin")
                .wrap(actix_web::middleware::from_fn(auth::require_token))
                .configure(admin::configure),
        );
}

/// Errors of actix-web's own extractors become problems like every other error.
fn extractor_errors(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::QueryConfig::default()
            .error_handler(|error, _| Problem::BadRequest(format!("The query string is malformed: {error}.")).into()),
    )
    .app_data(
        web::PathConfig::default()
            .error_handler(|error, _| Problem::BadRequest(format!("The path is malformed: {error}.")).into()),
    )
    .app_data(
        web::JsonConfig::default()
            .error_handler(|error, _| Problem::Malformed(Malformed::Json(error.to_string())).into()),
    )
    .app_data(
        web::FormConfig::default()
            .error_handler(|error, _| Problem::Malformed(Malformed::Form(error.to_string())).into()),
    );
}

#[cfg(test)]
mod tests {
    use actix_web::http::StatusCode;
    use actix_web::{test as actix_test, App};
    use proptest::prelude::*;

    const SUBMIT: &str = "/api/v1/inquiries";

    /// How a spelling of [`SUBMIT`] spells each character: as itself, percent-encoded
    /// (upper or lower hex), or encoded twice (`%2573`).
    #[derive(Debug, Clone, Copy)]
    enum Spelling {
        Plain,
        Upper,
        Lower,
        Twice,
    }

    fn spell(path: &str, spellings: &[Spelling]) -> String {
        path.bytes()
            .zip(spellings)
            .map(|(b, spelling)| match spelling {
                Spelling::Plain => (b as char).to_string(),
                Spelling::Upper => format!("%{b:02X}"),
                Spelling::Lower => format!("%{b:02x}"),
                Spelling::Twice => format!("%25{b:02X}"),
            })
            .collect()
    }

    /// The rule: a spelling is the route when it decodes to it, where `/` must be a
    /// real slash (`%2F` is a character of a segment) and decoding happens once.
    fn is_the_route(path: &str, spellings: &[Spelling]) -> bool {
        path.bytes().zip(spellings).all(|(b, spelling)| match spelling {
            Spelling::Plain => true,
            Spelling::Upper | Spelling::Lower => b != b'/',
            Spelling::Twice => false,
        })
    }

    /// Slashes mostly real (else nothing is ever the route), other characters mixed.
    fn spellings() -> Vec<BoxedStrategy<Spelling>> {
        SUBMIT
            .bytes()
            .map(|b| {
                if b == b'/' {
                    prop_oneof![9 => Just(Spelling::Plain), 1 => Just(Spelling::Upper)].boxed()
                } else {
                    prop_oneof![
                        3 => Just(Spelling::Plain),
                        3 => Just(Spelling::Upper),
                        3 => Just(Spelling::Lower),
                        1 => Just(Spelling::Twice),
                    ]
                    .boxed()
                }
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        /// CORS wraps the route itself: a cross-origin POST is refused (403) exactly
        /// when the router matched the submission route, whatever the spelling, and
        /// is a 404 (or, for a target that is no path at all, never reaches us) otherwise.
        #[test]
        fn the_origin_check_sees_the_path_the_router_matches(
            spellings in spellings(),
        ) {
            let target = spell(SUBMIT, &spellings);
            prop_assume!(target.starts_with('/'));
            let status = actix_web::rt::System::new().block_on(async {
                let app = actix_test::init_service(App::new().configure(|cfg| super::configure(cfg, false, false))).await;
                let request = actix_test::TestRequest::post()
                    .uri(&target)
                    .insert_header(("Origin", "https://evil.example"))
                    .insert_header(("Content-Type", "application/json"))
                    .set_payload("{}")
                    .to_request();
                actix_test::call_service(&app, request).await.status()
            });
            let expected = if is_the_route(SUBMIT, &spellings) { StatusCode::FORBIDDEN } else { StatusCode::NOT_FOUND };
            prop_assert_eq!(status, expected, "{}", target);
        }
    }
}
