//! Signing in and out.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use minijinja::context;
use serde::Deserialize;

use super::pages::{csrf_of, form, html, render};
use super::session::{authorize, cookie, presented, same_origin, see_other};
use crate::console::login::{login as log_in, LoginOutcome};
use crate::limits::client_address;
use crate::problem::Problem;
use crate::startup::AppState;

const LOGIN_REFUSED: &str = "Wrong email or password, or this account cannot sign in right now.";

pub async fn login_page(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let body = render(&state, "login.html", context! { message => None::<&str>, email => "" })?;
    let _ = req;
    Ok(html(actix_web::http::StatusCode::OK, body))
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

pub async fn login(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    same_origin(&req, &state.console)?;
    let LoginForm { email, password } = form(&body)?;
    let peer = req.peer_addr().map(|a| a.ip()).unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
    let client = client_address(peer, req.headers(), &state.settings.server.trusted_proxies);
    let replaces = presented(&req, &state.console).map(|id| id.hash());
    let outcome =
        log_in(&state.store, &state.guard, &state.settings.admin, client, &email, &password, replaces).await?;
    match outcome {
        LoginOutcome::Success { session } => {
            let mut response = see_other("/admin");
            response.headers_mut().insert(
                header::SET_COOKIE,
                header::HeaderValue::from_str(&cookie(&state.console, Some(&session)))
                    .map_err(|e| Problem::Internal(e.into()))?,
            );
            Ok(response)
        }
        LoginOutcome::Refused => {
            let body = render(&state, "login.html", context! { message => LOGIN_REFUSED, email => email })?;
            Ok(html(actix_web::http::StatusCode::UNAUTHORIZED, body))
        }
        LoginOutcome::Throttled { retry_after } => {
            let message = format!("Too many sign-in attempts from your address; try again in {retry_after} seconds.");
            let body = render(&state, "login.html", context! { message => message, email => email })?;
            let mut response = html(actix_web::http::StatusCode::TOO_MANY_REQUESTS, body);
            response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(retry_after));
            Ok(response)
        }
    }
}

pub async fn logout(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let signed = authorize(&req, &state, &csrf_of(&body), |_| true).await?;
    state.store.end_session(signed.id.hash(), Some(signed.actor())).await?;
    let mut response = see_other("/admin/login");
    response.headers_mut().insert(
        header::SET_COOKIE,
        header::HeaderValue::from_str(&cookie(&state.console, None)).map_err(|e| Problem::Internal(e.into()))?,
    );
    Ok(response)
}
