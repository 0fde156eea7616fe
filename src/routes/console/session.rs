//! Who is signed in, and whether a POST may change anything.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};

use super::Console;
use crate::console::session::SessionId;
use crate::console::Permissions;
use crate::problem::Problem;
use crate::startup::AppState;
use crate::store::console::UserInfo;
use crate::timestamp::now_ms;

/// A signed-in user and their session.
pub struct Signed {
    pub user: UserInfo,
    pub id: SessionId,
}

impl Signed {
    pub fn can(&self) -> Permissions {
        Permissions { role: self.user.role }
    }

    /// The audit log's name for this user.
    pub fn actor(&self) -> String {
        format!("user:{}", self.user.id)
    }
}

/// The session id the request's cookie presents, if any.
pub fn presented(req: &HttpRequest, console: &Console) -> Option<SessionId> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == console.cookie_name)
        .and_then(|(_, value)| SessionId::parse(value))
}

/// The signed-in user, when the cookie names a live session. A session past
/// its idle or absolute limit ends here, on the server.
pub async fn current(req: &HttpRequest, state: &AppState) -> Result<Option<Signed>, Problem> {
    let Some(id) = presented(req, &state.console) else { return Ok(None) };
    let Some(record) = state.store.session(id.hash()).await? else { return Ok(None) };
    let admin = &state.settings.admin;
    let (idle_ms, absolute_ms) =
        (admin.session_idle_seconds as i64 * 1000, admin.session_absolute_seconds as i64 * 1000);
    let now = now_ms();
    if now - record.last_seen_at > idle_ms || now - record.created_at > absolute_ms {
        state.store.end_session(id.hash(), None).await?;
        return Ok(None);
    }
    // Written at most every tenth of the idle limit (and at least every
    // minute): an active user is never timed out, and reads stay reads.
    if now - record.last_seen_at > (idle_ms / 10).min(60_000) {
        state.store.touch_session(id.hash()).await?;
    }
    Ok(Some(Signed { user: record.user, id }))
}

/// A POST may change state only from the console's own origin.
pub fn same_origin(req: &HttpRequest, console: &Console) -> Result<(), Problem> {
    let origin = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok());
    match origin {
        Some(origin) if console.own_origins.iter().any(|own| own.eq_ignore_ascii_case(origin)) => Ok(()),
        _ => Err(Problem::Forbidden("A change must be posted from the console's own pages (Origin).")),
    }
}

/// The checks before any state change, in order: Origin, a live session, the
/// session's CSRF token, and a role allowed to do it.
pub async fn authorize(
    req: &HttpRequest,
    state: &AppState,
    csrf: &str,
    allowed: fn(Permissions) -> bool,
) -> Result<Signed, Problem> {
    same_origin(req, &state.console)?;
    let signed = current(req, state).await?.ok_or(Problem::Forbidden("Sign in to the console first."))?;
    if !signed.id.csrf_matches(csrf) {
        return Err(Problem::Forbidden("The form's CSRF token is missing or not this session's; reload the page."));
    }
    if !allowed(signed.can()) {
        return Err(Problem::Forbidden("Your role may not do this."));
    }
    Ok(signed)
}

/// `Set-Cookie` for a new session, or (with `None`) one that ends it.
pub fn cookie(console: &Console, id: Option<&SessionId>) -> String {
    let secure = if console.secure { "; Secure" } else { "" };
    match id {
        Some(id) => format!("{}={}; Path=/; HttpOnly; SameSite=Strict{secure}", console.cookie_name, id.as_str()),
        None => format!("{}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{secure}", console.cookie_name),
    }
}

/// A 303 to `location` (after a POST, or to the login page).
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, location.to_owned())).finish()
}
