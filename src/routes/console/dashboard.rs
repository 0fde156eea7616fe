//! The dashboard: inquiries per day over the last 30 or 90 days as
//! server-rendered SVG charts stacked by status, by category and by form, the
//! spam share, and delivery health. Every figure comes from the kept counts
//! (`Store::counts`, a few hundred rows however many inquiries there are) and
//! the outbox's backlog. The charts are geometry computed here and drawn by
//! the (autoescaping) template: no markup is assembled from strings.

use std::collections::BTreeMap;

use actix_web::{web, HttpRequest, HttpResponse};
use minijinja::{context, Value};
use serde::Deserialize;

use super::pages::{frame, html, render};
use super::session::{current, see_other};
use super::views::{status_label, when};
use crate::domain::{Category, InquiryStatus};
use crate::problem::Problem;
use crate::startup::AppState;
use crate::store::{day_date, Counts, Tally};

const CHART_WIDTH: f64 = 600.0;
const CHART_HEIGHT: f64 = 160.0;
/// The periods the dashboard offers, in days; the first is the default.
const PERIODS: [i64; 2] = [30, 90];

#[derive(Debug, Deserialize)]
struct DashboardQuery {
    #[serde(default)]
    days: Option<i64>,
}

/// One series of a stacked chart: its label and CSS class (`series-<n>`).
struct Series {
    label: String,
    class: String,
}

/// A stacked bar chart of `days` days from `first` on: one bar per day, one
/// segment per series (`of` names a tally's series, an index into `series`).
fn chart(counts: &Counts, first: i64, days: i64, series: &[Series], of: impl Fn(&Tally) -> usize) -> Value {
    let mut per_day: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for (day, tally) in counts.days.iter().filter(|(day, _)| *day >= first) {
        per_day.entry(*day).or_insert_with(|| vec![0; series.len()])[of(tally)] += tally.n;
    }
    let peak = per_day.values().map(|v| v.iter().sum::<i64>()).max().unwrap_or(0).max(1) as f64;
    let slot = CHART_WIDTH / days as f64;
    let scale = (CHART_HEIGHT - 20.0) / peak;
    let bars: Vec<Value> = (0..days)
        .map(|i| {
            let day = first + i;
            let values = per_day.get(&day).cloned().unwrap_or_else(|| vec![0; series.len()]);
            let mut top = CHART_HEIGHT;
            let segments: Vec<Value> = series
                .iter()
                .zip(&values)
                .filter(|(_, n)| **n > 0)
                .map(|(s, n)| {
                    let height = (*n as f64 * scale).max(1.0);
                    top -= height;
                    context! { class => s.class, y => format!("{top:.1}"), height => format!("{height:.1}"), label => s.label, count => n }
                })
                .collect();
            context! {
                x => format!("{:.1}", i as f64 * slot + 0.5), width => format!("{:.1}", (slot - 1.0).max(0.5)),
                date => day_date(day), total => values.iter().sum::<i64>(), segments => segments,
            }
        })
        .collect();
    let legend: Vec<Value> = series.iter().map(|s| context! { label => s.label, class => s.class }).collect();
    Value::from_serialize(context! { bars => bars, legend => legend })
}

fn series(labels: impl IntoIterator<Item = String>) -> Vec<Series> {
    labels.into_iter().enumerate().map(|(i, label)| Series { label, class: format!("series-{}", i % 8) }).collect()
}

pub async fn dashboard(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let Some(signed) = current(&req, &state).await? else { return Ok(see_other("/admin/login")) };
    let query: DashboardQuery = serde_urlencoded::from_str(req.query_string())
        .map_err(|e| Problem::BadRequest(format!("The query string is malformed: {e}.")))?;
    let days = match query.days {
        None => PERIODS[0],
        Some(days) if PERIODS.contains(&days) => days,
        Some(_) => return Err(Problem::BadRequest(format!("days must be one of {PERIODS:?}."))),
    };
    let first = Counts::first_day(days);
    let counts = state.store.counts(first).await?;
    let stats = counts.stats(None);
    let (email_pending, email_oldest) = state.store.backlog().await?;
    let (webhook_pending, webhook_oldest) = state.store.webhook_backlog().await?;
    let (email_failed, webhook_failed) = state.store.failed_deliveries().await?;

    let statuses = series(InquiryStatus::ALL.iter().map(|s| status_label(*s).to_owned()));
    let by_status =
        chart(&counts, first, days, &statuses, |t| InquiryStatus::ALL.iter().position(|s| *s == t.status).unwrap_or(0));
    let categories = series(Category::ALL.iter().map(|c| c.as_str().to_owned()));
    let by_category =
        chart(&counts, first, days, &categories, |t| Category::ALL.iter().position(|c| *c == t.category).unwrap_or(0));
    let mut forms: Vec<String> = counts.totals.iter().map(|t| t.form.clone()).collect();
    forms.sort_unstable();
    forms.dedup();
    let by_form =
        chart(&counts, first, days, &series(forms.clone()), |t| forms.iter().position(|f| *f == t.form).unwrap_or(0));

    // The period's figures beside the all-time ones.
    let in_period: i64 = counts.days.iter().map(|(_, t)| t.n).sum();
    let spam_in_period: i64 =
        counts.days.iter().filter(|(_, t)| t.status == InquiryStatus::Spam).map(|(_, t)| t.n).sum();
    let percent =
        |n: i64, of: i64| if of == 0 { "0.0".to_owned() } else { format!("{:.1}", n as f64 * 100.0 / of as f64) };
    let row = |label: &str, n: i64| context! { label => label, count => n, percent => percent(n, stats.total) };
    let count_of = |all: &BTreeMap<String, i64>, key: &str| all.get(key).copied().unwrap_or(0);
    let status_totals: Vec<Value> =
        InquiryStatus::ALL.iter().map(|s| row(status_label(*s), count_of(&stats.by_status, s.as_str()))).collect();
    let category_totals: Vec<Value> =
        Category::ALL.iter().map(|c| row(c.as_str(), count_of(&stats.by_category, c.as_str()))).collect();
    let mut per_form: BTreeMap<String, i64> = BTreeMap::new();
    for t in &counts.totals {
        *per_form.entry(t.form.clone()).or_default() += t.n;
    }
    let form_totals: Vec<Value> = per_form.iter().map(|(form, n)| row(form, *n)).collect();
    let spam = stats.by_status.get("spam").copied().unwrap_or(0);
    let periods: Vec<Value> = PERIODS
        .iter()
        .map(|d| context! { days => d, href => format!("/admin/dashboard?days={d}"), active => *d == days })
        .collect();
    let body = render(
        &state,
        "dashboard.html",
        context! {
            ..frame(&signed),
            ..context! {
                days => days, periods => periods, total => stats.total, in_period => in_period,
                chart_width => CHART_WIDTH, chart_height => CHART_HEIGHT,
                first_day => day_date(first), last_day => day_date(first + days - 1),
                charts => vec![
                    context! { id => "by-status", title => "by status", chart => by_status },
                    context! { id => "by-category", title => "by category", chart => by_category },
                    context! { id => "by-form", title => "by form", chart => by_form },
                ],
                status_totals => status_totals, category_totals => category_totals, form_totals => form_totals,
                spam_percent => percent(spam, stats.total), spam_period_percent => percent(spam_in_period, in_period),
                deliveries => context! {
                    email_pending => email_pending, email_oldest => email_oldest.map(when), email_failed => email_failed,
                    webhook_pending => webhook_pending, webhook_oldest => webhook_oldest.map(when), webhook_failed => webhook_failed,
                },
            }
        },
    )?;
    Ok(html(actix_web::http::StatusCode::OK, body))
}
