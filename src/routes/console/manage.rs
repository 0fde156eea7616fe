//! The admin-only pages: the audit log, console users and API tokens. A
//! secret (a generated password, a new token) is shown once, in the answer to
//! the POST that made it, and never again.

use actix_web::{web, HttpRequest, HttpResponse};
use minijinja::context;
use serde::Deserialize;

use super::pages::{csrf_of, form, frame, html, render};
use super::session::{authorize, current, see_other, Signed};
use super::views::when;
use crate::console::{password, Permissions};
use crate::domain::{encode_cursor, parse_query, EmailAddress, Purpose};
use crate::problem::Problem;
use crate::startup::AppState;
use crate::store::console::Role;
use crate::store::Scope;

const FORBIDDEN: &str = "Your role may not do this.";

/// The signed-in admin, a redirect to the login page, or 403.
async fn admin(req: &HttpRequest, state: &AppState) -> Result<Result<Signed, HttpResponse>, Problem> {
    match current(req, state).await? {
        None => Ok(Err(see_other("/admin/login"))),
        Some(signed) if signed.can().administer() => Ok(Ok(signed)),
        Some(_) => Err(Problem::Forbidden(FORBIDDEN)),
    }
}

#[derive(Deserialize, Default)]
struct Cursor {
    #[serde(default)]
    cursor: String,
}

pub async fn audit(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let signed = match admin(&req, &state).await? {
        Ok(signed) => signed,
        Err(redirect) => return Ok(redirect),
    };
    let Cursor { cursor } = serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    let mut pairs = vec![("limit".to_owned(), "100".to_owned())];
    if !cursor.is_empty() {
        pairs.push(("cursor".to_owned(), cursor));
    }
    let query = parse_query(&pairs, Purpose::Pages).map_err(Problem::InvalidQuery)?;
    let (entries, next) = state.store.audit_page(query.page).await?;
    let rows: Vec<_> = entries
        .iter()
        .map(|e| context! { at => e.at, actor => e.actor, action => e.action, target => e.target, detail => e.detail.to_string() })
        .collect();
    let next_href = next.map(|seq| format!("/admin/audit?cursor={}", encode_cursor(seq)));
    let body = render(
        &state,
        "audit.html",
        context! { ..frame(&signed), ..context! { rows => rows, next_href => next_href } },
    )?;
    Ok(html(actix_web::http::StatusCode::OK, body))
}

/// The users page, with a secret shown once when `shown` is given.
async fn users_page(
    state: &AppState,
    signed: &Signed,
    message: Option<String>,
    shown: Option<(String, String)>,
) -> Result<HttpResponse, Problem> {
    let users: Vec<_> = state
        .store
        .list_users()
        .await?
        .into_iter()
        .map(|u| {
            context! {
                id => u.id, email => u.email, role => u.role.as_str(), disabled => u.disabled,
                created => when(u.created_at), last_login => u.last_login_at.map(when),
            }
        })
        .collect();
    let shown = shown.map(|(email, password)| context! { email => email, password => password });
    let body = render(
        state,
        "users.html",
        context! { ..frame(signed), ..context! { users => users, message => message, shown => shown } },
    )?;
    Ok(html(actix_web::http::StatusCode::OK, body))
}

pub async fn users(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    match admin(&req, &state).await? {
        Ok(signed) => {
            let done =
                req.query_string().contains("done=disabled").then(|| "The user is disabled and signed out.".to_owned());
            users_page(&state, &signed, done, None).await
        }
        Err(redirect) => Ok(redirect),
    }
}

#[derive(Deserialize)]
struct NewUser {
    email: String,
    role: String,
}

pub async fn create_user(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let signed = authorize(&req, &state, &csrf_of(&body), Permissions::administer).await?;
    let NewUser { email, role } = form(&body)?;
    let invalid = |field: &str, code: &'static str, message: String| {
        Problem::InvalidBody(vec![crate::domain::FieldError::new(field, code, message)])
    };
    let role: Role = role.parse().map_err(|why| invalid("role", "invalid_choice", why))?;
    let address = EmailAddress::parse("email", email.trim()).map_err(|e| Problem::InvalidBody(vec![e]))?;
    let generated = password::generate();
    let hash = hash(generated.clone()).await?;
    let created = state.store.create_user(&signed.actor(), address.as_str(), address.normalized(), role, &hash).await?;
    match created {
        Some(user) => {
            let message =
                format!("Created {} as {}. Give them this password; it is shown only now.", user.email, user.role);
            users_page(&state, &signed, Some(message), Some((user.email, generated))).await
        }
        None => users_page(&state, &signed, Some("A user with that email already exists.".to_owned()), None).await,
    }
}

async fn hash(password: String) -> Result<String, Problem> {
    tokio::task::spawn_blocking(move || password::hash(&password))
        .await
        .map_err(|e| Problem::Internal(e.into()))?
        .map_err(|e| Problem::Internal(e.into()))
}

pub async fn disable_user(
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let signed = authorize(&req, &state, &csrf_of(&body), Permissions::administer).await?;
    if id.as_str() == signed.user.id {
        return Err(Problem::Conflict("You cannot disable your own account; ask another admin.".to_owned()));
    }
    if !state.store.disable_user(&signed.actor(), &id).await? {
        return Err(Problem::NotFound);
    }
    Ok(see_other("/admin/users?done=disabled"))
}

pub async fn reset_password(
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let signed = authorize(&req, &state, &csrf_of(&body), Permissions::administer).await?;
    let user = state.store.list_users().await?.into_iter().find(|u| u.id == *id).ok_or(Problem::NotFound)?;
    let generated = password::generate();
    let hash = hash(generated.clone()).await?;
    state.store.set_password(&signed.actor(), &id, &hash).await?;
    let message = format!("New password for {}; their sessions have ended. It is shown only now.", user.email);
    users_page(&state, &signed, Some(message), Some((user.email, generated))).await
}

async fn tokens_page(
    state: &AppState,
    signed: &Signed,
    message: Option<String>,
    shown: Option<String>,
) -> Result<HttpResponse, Problem> {
    let tokens: Vec<_> = state
        .store
        .list_tokens()
        .await?
        .into_iter()
        .map(|t| {
            context! {
                id => t.id, name => t.name, scope => t.scope.to_string(), created => t.created_at,
                last_used => t.last_used_at, revoked => t.revoked_at,
            }
        })
        .collect();
    let body = render(
        state,
        "tokens.html",
        context! { ..frame(signed), ..context! { tokens => tokens, message => message, shown => shown } },
    )?;
    Ok(html(actix_web::http::StatusCode::OK, body))
}

pub async fn tokens(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    match admin(&req, &state).await? {
        Ok(signed) => {
            let done = req.query_string().contains("done=revoked").then(|| "The token is revoked.".to_owned());
            tokens_page(&state, &signed, done, None).await
        }
        Err(redirect) => Ok(redirect),
    }
}

#[derive(Deserialize)]
struct NewToken {
    name: String,
    scope: String,
}

pub async fn create_token(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let signed = authorize(&req, &state, &csrf_of(&body), Permissions::administer).await?;
    let NewToken { name, scope } = form(&body)?;
    let invalid = |field: &str, code: &'static str, message: String| {
        Problem::InvalidBody(vec![crate::domain::FieldError::new(field, code, message)])
    };
    let scope: Scope = scope.parse().map_err(|why| invalid("scope", "invalid_choice", why))?;
    let name = name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(invalid("name", "invalid", "name must be 1 to 100 characters on one line".to_owned()));
    }
    let (token, info) = state.store.create_token(&signed.actor(), &name, scope).await?;
    let message =
        format!("Created the {} token \u{201c}{}\u{201d}. Copy it now: it is shown only once.", info.scope, info.name);
    tokens_page(&state, &signed, Some(message), Some(token)).await
}

pub async fn revoke_token(
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let signed = authorize(&req, &state, &csrf_of(&body), Permissions::administer).await?;
    if !state.store.revoke_token(&signed.actor(), &id).await? {
        return Err(Problem::NotFound);
    }
    Ok(see_other("/admin/tokens?done=revoked"))
}
