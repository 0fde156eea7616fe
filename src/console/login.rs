//! A console login, outside HTTP: throttled per client address, checked
//! against the account's Argon2id hash, counted per account (a lockout after
//! `[admin] lockout_failures`), audited — never the password.
//!
//! A wrong password, an unknown address, a disabled account and a locked-out
//! one all cost the same: one Argon2id verification (against a dummy hash
//! where there is no real one to check) and one audit write, and they give
//! the caller the same [`LoginOutcome::Refused`].

use std::net::IpAddr;

use serde_json::json;

use super::password;
use super::session::SessionId;
use crate::config::AdminSettings;
use crate::domain::EmailAddress;
use crate::limits::Guard;
use crate::store::console::{Credentials, Lockout};
use crate::store::{Store, StoreError};
use crate::timestamp::now_ms;

pub enum LoginOutcome {
    /// A new session (its id goes in the cookie).
    Success { session: SessionId },
    /// Wrong password, unknown user, disabled or locked out: one answer for all.
    Refused,
    /// Too many attempts from this address; nothing was checked.
    Throttled { retry_after: u64 },
}

/// Why a login was refused, as the audit log records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    UnknownUser,
    Disabled,
    Locked,
    WrongPassword,
}

impl Refusal {
    fn as_str(self) -> &'static str {
        match self {
            Self::UnknownUser => "unknown_user",
            Self::Disabled => "disabled",
            Self::Locked => "locked",
            Self::WrongPassword => "wrong_password",
        }
    }
}

/// Logs in `email` with `password` from `client`; a session the browser
/// already had (`replaces`) ends, so every login gets a new id.
pub async fn login(
    store: &Store,
    guard: &Guard,
    settings: &AdminSettings,
    client: IpAddr,
    email: &str,
    password: &str,
    replaces: Option<[u8; 32]>,
) -> Result<LoginOutcome, StoreError> {
    if let Err(refused) = guard.login_attempt(client).await {
        tracing::warn!("console login throttled for a client address");
        store.audit_event("anonymous", "console.login_failed", None, json!({"reason": "throttled"})).await?;
        return Ok(LoginOutcome::Throttled { retry_after: refused.retry_after });
    }
    let credentials = match EmailAddress::parse("email", email.trim()) {
        Ok(address) => store.credentials(address.normalized()).await?,
        Err(_) => None,
    };
    let stored = credentials.as_ref().map_or_else(|| password::dummy().to_owned(), |c| c.password_hash.clone());
    let presented = password.to_owned();
    let matches = tokio::task::spawn_blocking(move || password::verify(&stored, &presented))
        .await
        .map_err(|_| StoreError::Unavailable)?;
    let refusal = match &credentials {
        None => Refusal::UnknownUser,
        Some(c) if c.user.disabled => Refusal::Disabled,
        Some(Credentials { locked_until: Some(until), .. }) if *until > now_ms() => Refusal::Locked,
        Some(_) if !matches => Refusal::WrongPassword,
        Some(c) => {
            let session = SessionId::generate();
            store.start_session(&c.user.id, session.hash(), replaces).await?;
            tracing::info!(user = %c.user.id, "console login");
            return Ok(LoginOutcome::Success { session });
        }
    };
    let target = credentials.as_ref().map(|c| c.user.id.as_str());
    tracing::warn!(reason = refusal.as_str(), user = target.unwrap_or("-"), "console login refused");
    match (refusal, target) {
        (Refusal::WrongPassword, Some(id)) => {
            let lockout = Lockout {
                after: i64::from(settings.lockout_failures),
                for_ms: i64::from(settings.lockout_minutes) * 60_000,
            };
            if store.login_failed(id, lockout).await? == crate::store::console::Failure::LockedNow {
                tracing::warn!(user = id, "console account locked after repeated wrong passwords");
            }
        }
        _ => {
            let detail = json!({"reason": refusal.as_str()});
            store.audit_event("anonymous", "console.login_failed", target, detail).await?;
        }
    }
    Ok(LoginOutcome::Refused)
}
