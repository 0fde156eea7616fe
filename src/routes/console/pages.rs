//! What every console page shares: rendering, the frame around a signed-in
//! page, and reading a form body.

use actix_web::HttpResponse;
use minijinja::context;
use serde::Deserialize;

use super::session::Signed;
use crate::problem::Problem;
use crate::startup::AppState;

pub(super) fn render(state: &AppState, name: &str, ctx: minijinja::Value) -> Result<String, Problem> {
    state
        .console
        .templates
        .get_template(name)
        .and_then(|t| t.render(ctx))
        .map_err(|e| Problem::Internal(anyhow::Error::new(e).context(format!("rendering {name}"))))
}

pub(super) fn html(status: actix_web::http::StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status).content_type("text/html; charset=utf-8").body(body)
}

/// What every signed-in page's frame shows.
pub(super) fn frame(signed: &Signed) -> minijinja::Value {
    let can = signed.can();
    context! {
        user => context! { id => signed.user.id, email => signed.user.email, role => signed.user.role.as_str() },
        csrf => signed.id.csrf_token(),
        can_triage => can.triage(),
        can_administer => can.administer(),
    }
}

/// A form body after the request passed [`authorize`].
pub(super) fn form<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, Problem> {
    serde_urlencoded::from_bytes(body).map_err(|e| Problem::Malformed(crate::problem::Malformed::Form(e.to_string())))
}

#[derive(Deserialize)]
struct Csrf {
    #[serde(default)]
    csrf: String,
}

/// The CSRF token of a form body, or empty (refused by [`authorize`]).
pub(super) fn csrf_of(body: &[u8]) -> String {
    serde_urlencoded::from_bytes::<Csrf>(body).map(|c| c.csrf).unwrap_or_default()
}
