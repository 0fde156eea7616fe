//! The console's pages and the POSTs behind their buttons.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use minijinja::context;
use serde::{Deserialize, Serialize};

use super::session::{authorize, cookie, current, presented, same_origin, see_other, Signed};
use super::views::{spam_flag_words, status_label, urlencode, when};
use crate::console::login::{login as log_in, LoginOutcome};
use crate::console::Permissions;
use crate::domain::{encode_cursor, parse_query, InquiryStatus, Purpose};
use crate::limits::client_address;
use crate::problem::Problem;
use crate::startup::AppState;
use crate::store::{Erase, Requeue};

const PAGE_SIZE: &str = "50";
const NOTE_MAX: usize = 2000;
const LOGIN_REFUSED: &str = "Wrong email or password, or this account cannot sign in right now.";

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

// ---------------------------------------------------------------- login

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

// ---------------------------------------------------------------- inbox

#[derive(Debug, Default, Deserialize, Serialize)]
struct InboxQuery {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    form: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    category: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    q: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    from: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    to: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    cursor: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    done: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    format: String,
    /// Non-empty: only the inquiries assigned to the signed-in user.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    mine: String,
}

impl InboxQuery {
    /// The API's parameters for these console fields (dates are whole UTC
    /// days): the filters, and a page (`List`) or a format (`Export`).
    fn pairs(&self, purpose: Purpose) -> Vec<(String, String)> {
        let mut pairs = Vec::new();
        let mut add = |k: &str, v: String| {
            if !v.is_empty() {
                pairs.push((k.to_owned(), v));
            }
        };
        add("status", self.status.clone());
        add("form", self.form.clone());
        add("category", self.category.clone());
        add("q", self.q.trim().to_owned());
        add("since", if self.from.is_empty() { String::new() } else { format!("{}T00:00:00Z", self.from) });
        add("until", if self.to.is_empty() { String::new() } else { format!("{}T23:59:59Z", self.to) });
        if purpose == Purpose::Export {
            add("format", self.format.clone());
        } else {
            add("limit", PAGE_SIZE.to_owned());
            add("cursor", self.cursor.clone());
        }
        pairs
    }

    fn href(&self, change: impl FnOnce(&mut InboxQuery)) -> String {
        let mut next =
            InboxQuery { done: String::new(), cursor: String::new(), format: String::new(), ..self.clone_fields() };
        change(&mut next);
        match serde_urlencoded::to_string(&next) {
            Ok(query) if !query.is_empty() => format!("/admin?{query}"),
            _ => "/admin".to_owned(),
        }
    }

    fn clone_fields(&self) -> InboxQuery {
        InboxQuery {
            status: self.status.clone(),
            form: self.form.clone(),
            category: self.category.clone(),
            q: self.q.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
            cursor: self.cursor.clone(),
            done: self.done.clone(),
            format: self.format.clone(),
            mine: self.mine.clone(),
        }
    }
}

fn done_message(done: &str) -> Option<&'static str> {
    match done {
        "erased" => Some("The inquiry was erased."),
        _ => None,
    }
}

pub async fn inbox(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let Some(signed) = current(&req, &state).await? else { return Ok(see_other("/admin/login")) };
    let query: InboxQuery = serde_urlencoded::from_str(req.query_string())
        .map_err(|e| Problem::BadRequest(format!("The query string is malformed: {e}.")))?;
    let parsed = parse_query(&query.pairs(Purpose::List), Purpose::List).map_err(Problem::InvalidQuery)?;
    let mine = !query.mine.is_empty();
    let (items, next) = if mine {
        state.store.assigned_to(&signed.user.id, parsed.page).await?
    } else {
        state.store.list(&parsed.filter, parsed.page).await?
    };
    let stats = state.store.stats(parsed.filter.form.as_deref()).await?;
    let unread = state.store.unread_count().await?;
    let triage = state.store.triage_of(items.iter().map(|i| i.id.clone()).collect()).await?;
    let users: std::collections::HashMap<String, String> =
        state.store.list_users().await?.into_iter().map(|u| (u.id, u.email)).collect();
    let mut tabs = vec![context! {
        label => "All", count => stats.total, active => query.status.is_empty() && !mine,
        href => query.href(|q| { q.status.clear(); q.mine.clear(); }),
    }];
    for status in InquiryStatus::ALL {
        tabs.push(context! {
            label => status_label(status),
            count => stats.by_status.get(status.as_str()).copied().unwrap_or(0),
            active => query.status == status.as_str() && !mine,
            href => query.href(|q| { q.status = status.as_str().to_owned(); q.mine.clear(); }),
        });
    }
    tabs.push(context! {
        label => "Assigned to me", count => None::<i64>, active => mine, href => "/admin?mine=1",
    });
    let rows: Vec<_> = items
        .iter()
        .map(|i| {
            let state = triage.get(&i.id).cloned().unwrap_or_default();
            context! {
                id => i.id, received => when(i.received_at), name => i.name, email => i.email,
                subject => i.subject, status => status_label(i.status), category => i.category.as_str(),
                unread => state.read_at.is_none(), replied => state.replied_at.is_some(),
                assignee => state.assignee.and_then(|a| users.get(&a).cloned()),
            }
        })
        .collect();
    let next_href = next.map(|seq| query.href(|q| q.cursor = encode_cursor(seq)));
    let export_href =
        |format: &str| query.href(|q| q.format = format.to_owned()).replacen("/admin", "/admin/export", 1);
    let exports =
        signed.can().triage().then(|| context! { csv => export_href("csv"), ndjson => export_href("ndjson") });
    let categories: Vec<&str> = crate::domain::Category::ALL.iter().map(|c| c.as_str()).collect();
    let mut forms: Vec<&str> = state.settings.forms.keys().map(String::as_str).collect();
    if !forms.contains(&state.settings.default_form()) {
        forms.push(state.settings.default_form());
    }
    forms.sort_unstable();
    let body = render(
        &state,
        "inbox.html",
        context! {
            ..frame(&signed),
            ..context! {
                tabs => tabs, rows => rows, next_href => next_href, categories => categories, exports => exports,
                unread => unread, mine => mine,
                filter => context! { status => query.status, form => query.form, category => query.category, q => query.q, from => query.from, to => query.to },
                forms => forms,
                message => done_message(&query.done),
            }
        },
    )?;
    Ok(html(actix_web::http::StatusCode::OK, body))
}

// ---------------------------------------------------------------- one inquiry

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
    let query: InboxQuery = serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    let message = match query.done.as_str() {
        "status" => Some("Saved."),
        "retry" => Some("The delivery is queued again."),
        "triage" => Some("Assignment saved."),
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
                users => users, assignee => assignee_email, replied => triage.replied_at.map(when),
                deliveries => deliveries, message => message,
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

/// CSV or NDJSON of the inbox's current filters: the API's export.
pub async fn export(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let Some(signed) = current(&req, &state).await? else { return Ok(see_other("/admin/login")) };
    if !signed.can().triage() {
        return Err(Problem::Forbidden("Your role may not do this."));
    }
    let query: InboxQuery = serde_urlencoded::from_str(req.query_string())
        .map_err(|e| Problem::BadRequest(format!("The query string is malformed: {e}.")))?;
    let parsed = parse_query(&query.pairs(Purpose::Export), Purpose::Export).map_err(Problem::InvalidQuery)?;
    Ok(crate::routes::admin::export_response(&req, &state, parsed))
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
