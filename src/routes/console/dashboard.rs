//! The dashboard: the last 30 days as a server-rendered SVG bar chart, totals
//! by status and category, the spam share and the delivery backlog. The chart
//! is geometry computed here and drawn by the (autoescaping) template: no
//! markup is assembled from strings.

use actix_web::{web, HttpRequest, HttpResponse};
use minijinja::context;

use super::pages::{frame, html, render};
use super::session::{current, see_other};
use super::views::{status_label, when};
use crate::domain::InquiryStatus;
use crate::problem::Problem;
use crate::startup::AppState;

const CHART_WIDTH: f64 = 600.0;
const CHART_HEIGHT: f64 = 160.0;

pub async fn dashboard(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let Some(signed) = current(&req, &state).await? else { return Ok(see_other("/admin/login")) };
    let stats = state.store.stats(None).await?;
    let (email_pending, email_oldest) = state.store.backlog().await?;
    let (webhook_pending, webhook_oldest) = state.store.webhook_backlog().await?;

    let peak = stats.per_day.iter().map(|d| d.count).max().unwrap_or(0).max(1) as f64;
    let slot = CHART_WIDTH / stats.per_day.len().max(1) as f64;
    let bars: Vec<_> = stats
        .per_day
        .iter()
        .enumerate()
        .map(|(i, day)| {
            let height = (day.count as f64 / peak * (CHART_HEIGHT - 20.0)).round();
            context! {
                x => format!("{:.1}", i as f64 * slot + 1.0), width => format!("{:.1}", (slot - 2.0).max(1.0)),
                y => format!("{:.1}", CHART_HEIGHT - height), height => format!("{:.1}", height),
                date => day.date, count => day.count,
            }
        })
        .collect();
    let share = |n: i64| if stats.total == 0 { 0.0 } else { n as f64 * 100.0 / stats.total as f64 };
    let by_status: Vec<_> = InquiryStatus::ALL
        .iter()
        .map(|s| {
            let n = stats.by_status.get(s.as_str()).copied().unwrap_or(0);
            context! { label => status_label(*s), count => n, percent => format!("{:.0}", share(n)) }
        })
        .collect();
    let by_category: Vec<_> = stats
        .by_category
        .iter()
        .map(|(c, n)| context! { label => c, count => n, percent => format!("{:.0}", share(*n)) })
        .collect();
    let spam = stats.by_status.get("spam").copied().unwrap_or(0);
    let body = render(
        &state,
        "dashboard.html",
        context! {
            ..frame(&signed),
            ..context! {
                total => stats.total, bars => bars, chart_width => CHART_WIDTH, chart_height => CHART_HEIGHT,
                first_day => stats.per_day.first().map(|d| d.date.clone()), last_day => stats.per_day.last().map(|d| d.date.clone()),
                by_status => by_status, by_category => by_category, spam_percent => format!("{:.1}", share(spam)),
                deliveries => context! {
                    email_pending => email_pending, email_oldest => email_oldest.map(when),
                    webhook_pending => webhook_pending, webhook_oldest => webhook_oldest.map(when),
                },
            }
        },
    )?;
    Ok(html(actix_web::http::StatusCode::OK, body))
}
