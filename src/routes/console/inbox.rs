//! The inbox (tabs, filters, search, keyset pages) and its export.

use actix_web::{web, HttpRequest, HttpResponse};
use minijinja::context;
use serde::{Deserialize, Serialize};

use super::pages::{frame, html, render};
use super::session::{current, see_other};
use super::views::{status_label, when};
use crate::domain::{encode_cursor, parse_query, InquiryStatus, Purpose};
use crate::problem::Problem;
use crate::startup::AppState;

const PAGE_SIZE: &str = "50";

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
    // The tabs' figures come from the kept counts (a few hundred rows however
    // many inquiries there are); they follow the form filter only.
    let counts = state.store.counts(crate::store::Counts::first_day(1)).await?;
    let form = parsed.filter.form.as_deref();
    let stats = counts.stats(form);
    let (unread, unread_by_status) = counts.unread(form);
    let triage = state.store.triage_of(items.iter().map(|i| i.id.clone()).collect()).await?;
    let users: std::collections::HashMap<String, String> =
        state.store.list_users().await?.into_iter().map(|u| (u.id, u.email)).collect();
    let mut tabs = vec![context! {
        label => "All", count => stats.total, unread => unread, active => query.status.is_empty() && !mine,
        href => query.href(|q| { q.status.clear(); q.mine.clear(); }),
    }];
    for status in InquiryStatus::ALL {
        tabs.push(context! {
            label => status_label(status),
            count => stats.by_status.get(status.as_str()).copied().unwrap_or(0),
            unread => unread_by_status.get(&status).copied().unwrap_or(0),
            active => query.status == status.as_str() && !mine,
            href => query.href(|q| { q.status = status.as_str().to_owned(); q.mine.clear(); }),
        });
    }
    tabs.push(context! {
        label => "Assigned to me", count => None::<i64>, unread => 0, active => mine, href => "/admin?mine=1",
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
