//! Bearer-token authentication for `/api/v1/admin`.

use std::net::IpAddr;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, ResponseError};

use crate::limits::client_address;
use crate::problem::Problem;
use crate::startup::AppState;
use crate::store::{Scope, TokenInfo};
use crate::timestamp::now_ms;

/// `last_used_at` is written at most this often per token.
const TOUCH_EVERY_MS: i64 = 60_000;

/// The admin behind a request, for the audit log.
#[derive(Debug, Clone)]
pub struct Actor {
    pub token_id: String,
}

impl Actor {
    pub fn label(&self) -> String {
        format!("token:{}", self.token_id)
    }
}

pub async fn require_token(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned().expect("app state");
    match authenticate(&req, &state).await {
        Ok(token) => {
            req.extensions_mut().insert(Actor { token_id: token.id });
            next.call(req).await.map(ServiceResponse::map_into_boxed_body)
        }
        Err(problem) => Ok(req.into_response(problem.error_response())),
    }
}

async fn authenticate(req: &ServiceRequest, state: &AppState) -> Result<TokenInfo, Problem> {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let Some(presented) = presented else {
        return Err(Problem::Unauthorized { token_given: false });
    };
    let Some(token) = state.store.find_token(presented).await? else {
        let peer = req.peer_addr().map(|a| a.ip()).unwrap_or(IpAddr::from([127, 0, 0, 1]));
        let client = client_address(peer, req.headers(), &state.settings.server.trusted_proxies);
        tracing::warn!("admin authentication failed");
        return Err(match state.guard.admin_failure(client).await {
            Ok(()) => Problem::Unauthorized { token_given: true },
            Err(refused) => Problem::RateLimited { retry_after: refused.retry_after },
        });
    };
    let reads_only = matches!(*req.method(), Method::GET | Method::HEAD);
    if token.scope == Scope::Read && !reads_only {
        return Err(Problem::ReadOnlyToken);
    }
    if token.last_used_ms.is_none_or(|at| now_ms() - at > TOUCH_EVERY_MS) {
        // Awaited, not spawned: no task outlives the request (a touch is one small
        // write, once per token per `TOUCH_EVERY_MS`).
        if let Err(error) = state.store.touch_token(&token.id).await {
            tracing::warn!(%error, "could not record the token's last use");
        }
    }
    Ok(token)
}
