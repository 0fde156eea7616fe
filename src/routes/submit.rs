//! `POST /api/v1/inquiries`: validate, flag spam, commit, answer.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Mutex;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::body::{read_body, BodyKind};
use crate::config::{Settings, StoreIp};
use crate::domain::{parse_submission, InquiryStatus, NewInquiry, Submission, SubmissionRules};
use crate::mail;
use crate::problem::Problem;
use crate::startup::AppState;
use crate::store::{IdempotencyClaim, NewRecord, Receipt, WriteOutcome};
use crate::timestamp::{now_ms, to_rfc3339};

const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";
const MAX_IDEMPOTENCY_KEY: usize = 128;

pub async fn submit(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let received_at = now_ms();
    let kind = BodyKind::of(&req)?;
    let bytes = read_body(&req, payload, state.settings.server.body_limit_bytes).await?;
    let fields = kind.fields(&bytes)?;
    let key = idempotency_key(&req)?;
    let rules = SubmissionRules {
        honeypot_field: &state.settings.spam.honeypot_field,
        require_consent: state.settings.privacy.require_consent,
    };
    let submission = parse_submission(fields, rules).map_err(|errors| {
        metrics::counter!("inquiryd_submissions_total", "outcome" => "invalid").increment(1);
        Problem::Validation(errors)
    })?;

    let spam_flags = spam_flags(&state.settings, &submission, received_at);
    let status = if spam_flags.is_empty() { InquiryStatus::New } else { InquiryStatus::Spam };
    let notifications = match status {
        InquiryStatus::Spam => Vec::new(),
        _ => mail::plan(&state.settings.mail, &submission.inquiry),
    };
    let client_ip = req.peer_addr().and_then(|a| stored_ip(a.ip(), state.settings.privacy.store_ip));
    let record = NewRecord {
        dedupe_hash: dedupe_hash(&submission.inquiry),
        inquiry: submission.inquiry,
        status,
        spam_flags,
        client_ip,
        received_at,
        idempotency: key.map(|key| IdempotencyClaim { key, request_hash: Sha256::digest(&bytes).into() }),
        notifications,
    };

    let _claim = match &record.idempotency {
        Some(claim) => Some(InFlight::claim(&state.in_flight, &claim.key)?),
        None => None,
    };
    let outcome = state.writer.write(record).await;
    let (label, result) = match outcome {
        WriteOutcome::Created(receipt) => match status {
            InquiryStatus::Spam => ("spam", Ok(receipt)),
            _ => ("accepted", Ok(receipt)),
        },
        WriteOutcome::Replayed(receipt) | WriteOutcome::Duplicate(receipt) => ("duplicate", Ok(receipt)),
        WriteOutcome::KeyReused => ("invalid", Err(Problem::IdempotencyMismatch)),
        WriteOutcome::Unavailable => ("unavailable", Err(Problem::Unavailable { retry_after: 5 })),
        WriteOutcome::Failed => {
            ("failed", Err(Problem::Internal(anyhow::anyhow!("the writer could not store a valid submission"))))
        }
    };
    metrics::counter!("inquiryd_submissions_total", "outcome" => label).increment(1);
    Ok(created(&result?))
}

fn created(receipt: &Receipt) -> HttpResponse {
    HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/admin/inquiries/{}", receipt.id)))
        .json(json!({"id": receipt.id, "status": "received", "received_at": to_rfc3339(receipt.received_at)}))
}

fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, Problem> {
    let Some(value) = req.headers().get(IDEMPOTENCY_HEADER) else {
        return Ok(None);
    };
    let bad = |why: &str| Problem::validation_one(IDEMPOTENCY_HEADER, "invalid_header", why.to_owned());
    let key = value.to_str().map_err(|_| bad("Idempotency-Key must be printable ASCII"))?.trim();
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY {
        return Err(bad("Idempotency-Key must be 1 to 128 characters"));
    }
    if key.chars().any(|c| !c.is_ascii_graphic()) {
        return Err(bad("Idempotency-Key must be printable ASCII"));
    }
    Ok(Some(key.to_owned()))
}

/// The explainable reasons this submission is kept as spam; empty when it is not.
fn spam_flags(settings: &Settings, submission: &Submission, received_at: i64) -> Vec<String> {
    let mut flags = Vec::new();
    if submission.honeypot_filled {
        flags.push("honeypot".to_owned());
    }
    let min_fill_ms = i64::try_from(settings.spam.min_fill_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
    if let Some(started) = submission.started_at_ms.filter(|_| min_fill_ms > 0) {
        if received_at - started < min_fill_ms {
            flags.push("filled_too_fast".to_owned());
        }
    }
    flags
}

fn dedupe_hash(inquiry: &NewInquiry) -> [u8; 32] {
    let mut hash = Sha256::new();
    for part in [inquiry.email.normalized().as_str(), &inquiry.subject, &inquiry.message] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hash.finalize().into()
}

/// The client address as `[privacy] store_ip` allows it to be kept.
pub fn stored_ip(ip: IpAddr, policy: StoreIp) -> Option<String> {
    match (policy, ip) {
        (StoreIp::None, _) => None,
        (StoreIp::Full, ip) => Some(ip.to_string()),
        (StoreIp::Truncated, IpAddr::V4(v4)) => {
            let [a, b, c, _] = v4.octets();
            Some(format!("{a}.{b}.{c}.0/24"))
        }
        (StoreIp::Truncated, IpAddr::V6(v6)) => {
            let s = v6.segments();
            let prefix = std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0);
            Some(format!("{prefix}/48"))
        }
    }
}

/// Marks an Idempotency-Key as being processed; released when dropped.
struct InFlight<'a> {
    set: &'a Mutex<HashSet<String>>,
    key: String,
}

impl<'a> InFlight<'a> {
    fn claim(set: &'a Mutex<HashSet<String>>, key: &str) -> Result<Self, Problem> {
        let mut keys = set.lock().unwrap_or_else(|e| e.into_inner());
        if !keys.insert(key.to_owned()) {
            return Err(Problem::IdempotencyInFlight);
        }
        Ok(Self { set, key: key.to_owned() })
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.set.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_addresses() {
        let v4: IpAddr = "203.0.113.77".parse().unwrap();
        let v6: IpAddr = "2001:db8:abcd:12::1".parse().unwrap();
        assert_eq!(stored_ip(v4, StoreIp::Truncated).unwrap(), "203.0.113.0/24");
        assert_eq!(stored_ip(v6, StoreIp::Truncated).unwrap(), "2001:db8:abcd::/48");
        assert_eq!(stored_ip(v4, StoreIp::Full).unwrap(), "203.0.113.77");
        assert_eq!(stored_ip(v4, StoreIp::None), None);
    }
}
