//! CORS for the public form endpoints: exactly the form's `allowed_origins`
//! (by default `server.allowed_origins`) and the service's own origin
//! (`server.public_url`) may post from a browser. It wraps those routes alone,
//! so it runs exactly when the router matched one, and reads the form from the
//! same matched path (`{form}`, or the default form).

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};

use crate::i18n::Lang;
use crate::problem::Problem;
use crate::startup::AppState;

const ALLOWED_HEADERS: &str = "Content-Type, Accept, Idempotency-Key";
const EXPOSED_HEADERS: &str = "Location, Retry-After, RateLimit, RateLimit-Policy, X-Request-Id";

pub async fn cors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(origin) = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_owned) else {
        return next.call(req).await.map(ServiceResponse::map_into_boxed_body);
    };
    let Some(allowed) = is_allowed(&req, &origin) else {
        // No such form: the handler answers 404, with no CORS headers.
        return next.call(req).await.map(ServiceResponse::map_into_boxed_body);
    };
    let preflight =
        req.method() == Method::OPTIONS && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);

    if preflight {
        let response = if allowed {
            let mut ok = HttpResponse::NoContent();
            ok.insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "POST, OPTIONS"))
                .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOWED_HEADERS))
                .insert_header((header::ACCESS_CONTROL_MAX_AGE, "600"));
            with_origin(ok.finish(), &origin)
        } else {
            Problem::ForbiddenOrigin.response_in(Lang::of_request(req.request(), None))
        };
        return Ok(req.into_response(response));
    }
    if !allowed && req.method() == Method::POST {
        metrics::counter!("inquiryd_submissions_total", "outcome" => "forbidden_origin").increment(1);
        let refused = Problem::ForbiddenOrigin.response_in(Lang::of_request(req.request(), None));
        return Ok(req.into_response(refused));
    }
    let response = next.call(req).await?.map_into_boxed_body();
    if !allowed {
        return Ok(response);
    }
    let (request, response) = response.into_parts();
    let mut response = with_origin(response, &origin);
    response.headers_mut().insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSED_HEADERS));
    Ok(ServiceResponse::new(request, response))
}

fn with_origin(mut response: HttpResponse, origin: &str) -> HttpResponse {
    if let Ok(value) = HeaderValue::from_str(origin) {
        response.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    }
    response.headers_mut().append(header::VARY, HeaderValue::from_static("Origin"));
    response
}

/// Listed in the form's `allowed_origins`, or the origin of `server.public_url`
/// (the page this service itself serves). Never judged from `Host`: the client
/// chooses it. `None` when the path names a form that does not exist.
fn is_allowed(req: &ServiceRequest, origin: &str) -> Option<bool> {
    let Some(state) = req.app_data::<web::Data<AppState>>() else { return Some(false) };
    let form = match req.match_info().get("form") {
        Some(id) => state.forms.get(id)?,
        None => state.forms.default_form(),
    };
    let own = state.settings.server.own_origin();
    Some(form.allowed_origins.iter().any(|o| o == origin) || own.is_some_and(|own| own == origin))
}
