//! One inquiry: its page, and the POSTs behind its buttons (status and note,
//! assignment, retry, erase with its confirmation step).

use actix_web::{web, HttpRequest, HttpResponse};
use minijinja::context;
use serde::Deserialize;

use super::pages::{csrf_of, form, frame, html, render};
use super::session::{authorize, current, see_other};
use super::views::{spam_flag_words, status_label, urlencode, when};
use crate::console::Permissions;
use crate::domain::InquiryStatus;
use crate::problem::Problem;
use crate::startup::AppState;
use crate::store::console::NotSpam;
use crate::store::{Erase, Requeue};

const NOTE_MAX: usize = 2000;

/// One of the inquiry's files, as an attachment (never shown inline).
pub async fn file(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    if current(&req, &state).await?.is_none() {
        return Ok(see_other("/admin/login"));
    }
    let (id, file) = path.into_inner();
    crate::routes::download::file(&state.store, &id, &file).await
}

/// What the POST that redirected here did (`?done=status`), for its notice.
#[derive(Default, Deserialize)]
struct Done {
    #[serde(default)]
    done: String,
}

pub async fn inquiry(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let Some(signed) = current(&req, &state).await? else { return Ok(see_other("/admin/login")) };
    let (record, _notifications) = state.store.get(&id).await?.ok_or(Problem::NotFound)?;
    let deliveries = state.store.deliveries(&id).await?;
    let triage = state.store.triage_of(vec![record.id.clone()]).await?.remove(&record.id).unwrap_or_default();
    if triage.read_at.is_none() {
        state.store.mark_read(&record.id).await?;
    }
    let all_users = state.store.list_users().await?;
    let assignee_email =
        triage.assignee.as_ref().and_then(|a| all_users.iter().find(|u| &u.id == a)).map(|u| u.email.clone());
    let users: Vec<_> = all_users
        .iter()
        .filter(|u| !u.disabled || triage.assignee.as_ref() == Some(&u.id))
        .map(|u| context! { id => u.id, email => u.email, selected => triage.assignee.as_ref() == Some(&u.id) })
        .collect();
    let optional =
        |label: &str, value: &Option<String>| value.as_ref().map(|v| context! { label => label, value => v });
    let form = state.forms.get(&record.form);
    let custom: Vec<_> = match form {
        Some(form) => form
            .labelled(&record.fields, "en")
            .into_iter()
            .map(|(_, label, value)| context! { label => label, value => value })
            .collect(),
        None => {
            record.fields.iter().map(|(name, value)| context! { label => name, value => value.to_string() }).collect()
        }
    };
    let fields: Vec<_> = [
        Some(context! { label => "Form", value => form.map_or_else(|| record.form.clone(), |f| f.title.clone()) }),
        Some(context! { label => "Name", value => record.name }),
        Some(context! { label => "Email", value => record.email }),
        Some(context! { label => "Subject", value => record.subject }),
        Some(context! { label => "Category", value => record.category.as_str() }),
        optional("Organization", &record.organization),
        optional("Country", &record.country),
        optional("Phone", &record.phone),
        record.consent.map(|c| context! { label => "Consent", value => if c { "given" } else { "not given" } }),
        optional("Page", &record.page),
        optional("Client address", &record.client_ip),
    ]
    .into_iter()
    .flatten()
    .chain(custom)
    .collect();
    let reply_subject = format!("Re: {}", record.subject);
    let mailto = format!("mailto:{}?subject={}", urlencode(&record.email), urlencode(&reply_subject));
    let statuses: Vec<_> = InquiryStatus::ALL
        .iter()
        .map(|s| context! { value => s.as_str(), label => status_label(*s), selected => *s == record.status })
        .collect();
    let deliveries: Vec<_> = deliveries
        .iter()
        .map(|d| {
            context! {
                id => d.id, channel => d.channel, kind => d.kind, target => d.target, status => d.status.to_string(),
                last_error => d.last_error, failed => d.status == crate::store::NotificationStatus::Failed,
                attempts => d.attempts.iter().map(|a| context! { attempt => a.attempt, at => a.at, outcome => a.outcome, detail => a.detail }).collect::<Vec<_>>(),
            }
        })
        .collect();
    let flags: Vec<String> = record.spam_flags.iter().map(|f| spam_flag_words(f)).collect();
    let files: Vec<_> = crate::domain::StoredFile::all(&record.fields)
        .into_iter()
        .map(|(_, f)| context! { id => f.id, name => f.name, size => f.size, kind => f.kind })
        .collect();
    let done: Done = serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    let message = match done.done.as_str() {
        "status" => Some("Saved."),
        "retry" => Some("The delivery is queued again."),
        "triage" => Some("Assignment saved."),
        "not-spam" => Some("Marked not spam: its emails and webhook events are queued."),
        _ => None,
    };
    let body = render(
        &state,
        "inquiry.html",
        context! {
            ..frame(&signed),
            ..context! {
                inquiry => context! {
                    id => record.id, received => when(record.received_at), subject => record.subject,
                    message => record.message, status => status_label(record.status), note => record.note.clone().unwrap_or_default(),
                },
                fields => fields, flags => flags, mailto => mailto, statuses => statuses,
                is_spam => record.status == InquiryStatus::Spam,
                users => users, assignee => assignee_email, replied => triage.replied_at.map(when),
                deliveries => deliveries, message => message, files => files,
            }
        },
    )?;
    Ok(html(actix_web::http::StatusCode::OK, body))
}

#[derive(Deserialize)]
struct StatusForm {
    status: String,
    #[serde(default)]
    note: String,
}

pub async fn change_status(
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let signed = authorize(&req, &state, &csrf_of(&body), Permissions::triage).await?;
    let StatusForm { status, note } = form(&body)?;
    let status: InquiryStatus = status.parse().map_err(|why: String| {
        Problem::InvalidBody(vec![crate::domain::FieldError::new("status", "invalid_choice", format!("status {why}"))])
    })?;
    let note = note.replace("\r\n", "\n");
    if note.chars().count() > NOTE_MAX {
        return Err(Problem::InvalidBody(vec![crate::domain::FieldError::new(
            "note",
            "too_long",
            format!("note must be at most {NOTE_MAX} characters"),
        )]));
    }
    let note = Some(note.trim().to_owned()).filter(|n| !n.is_empty());
    if !state.store.update_status(&signed.actor(), &id, status, Some(note)).await? {
        return Err(Problem::NotFound);
    }
    Ok(see_other(&format!("/admin/inquiries/{}?done=status", urlencode(&id))))
}

pub async fn confirm_erase(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let Some(signed) = current(&req, &state).await? else { return Ok(see_other("/admin/login")) };
    if !signed.can().administer() {
        return Err(Problem::Forbidden("Your role may not do this."));
    }
    let (record, _) = state.store.get(&id).await?.ok_or(Problem::NotFound)?;
    let body = render(
        &state,
        "erase.html",
        context! {
            ..frame(&signed),
            ..context! { inquiry => context! { id => record.id, subject => record.subject, name => record.name, received => when(record.received_at) } }
        },
    )?;
    Ok(html(actix_web::http::StatusCode::OK, body))
}

pub async fn erase(
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let signed = authorize(&req, &state, &csrf_of(&body), Permissions::administer).await?;
    let ids = state
        .store
        .erase(&signed.actor(), "inquiry.delete", Erase::One(id.into_inner()), serde_json::json!({}))
        .await?;
    if ids.is_empty() {
        return Err(Problem::NotFound);
    }
    crate::mail::forget(&state.settings.mail, &ids).await;
    Ok(see_other("/admin?done=erased"))
}

/// "Not spam": the inquiry becomes `new` and gets, in one transaction, the
/// emails its form would have sent and the webhook events it never had.
pub async fn not_spam(
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let signed = authorize(&req, &state, &csrf_of(&body), Permissions::triage).await?;
    let (record, _) = state.store.get(&id).await?.ok_or(Problem::NotFound)?;
    let form = state.forms.get(&record.form).unwrap_or_else(|| state.forms.default_form());
    let planned = crate::mail::plan_for(form, record.category, &record.fields, &record.email);
    let domain = crate::mail::message_id_domain(&state.settings.mail);
    match state.store.not_spam(&signed.actor(), &id, planned, &domain).await? {
        NotSpam::Queued { .. } => {
            state.outbox.notify_one();
            Ok(see_other(&format!("/admin/inquiries/{}?done=not-spam", urlencode(&id))))
        }
        NotSpam::NotFound => Err(Problem::NotFound),
        NotSpam::WasNot(status) => {
            Err(Problem::Conflict(format!("only an inquiry marked spam can be marked not spam; this one is {status}")))
        }
    }
}

#[derive(Deserialize)]
struct RetryForm {
    inquiry: String,
}

pub async fn retry(
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let signed = authorize(&req, &state, &csrf_of(&body), Permissions::triage).await?;
    let RetryForm { inquiry } = form(&body)?;
    match state.store.requeue(&signed.actor(), &id).await? {
        Requeue::Requeued => {
            state.outbox.notify_one();
            Ok(see_other(&format!("/admin/inquiries/{}?done=retry", urlencode(&inquiry))))
        }
        Requeue::NotFound => Err(Problem::NotFound),
        Requeue::NotFailed(status) => {
            Err(Problem::Conflict(format!("only a failed delivery can be retried; this one is {status}")))
        }
    }
}

#[derive(Deserialize)]
struct TriageForm {
    #[serde(default)]
    assignee: String,
    #[serde(default)]
    replied: String,
}

/// Assigns the inquiry to a user (or nobody) and marks it replied or not.
pub async fn triage(
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let signed = authorize(&req, &state, &csrf_of(&body), Permissions::triage).await?;
    let TriageForm { assignee, replied } = form(&body)?;
    let assignee = Some(assignee.trim().to_owned()).filter(|a| !a.is_empty());
    if !state.store.set_triage(&signed.actor(), &id, assignee, !replied.is_empty()).await? {
        return Err(Problem::NotFound);
    }
    Ok(see_other(&format!("/admin/inquiries/{}?done=triage", urlencode(&id))))
}
