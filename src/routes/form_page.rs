//! Plain HTML answers for visitors whose browser posted the form without
//! JavaScript: the thank-you page and a page listing every problem.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use fluent_bundle::FluentValue;
use serde::Deserialize;

use crate::i18n::Lang;
use crate::problem::Problem;

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:40em;margin:3em auto;padding:0 1em;\
line-height:1.5;color:#1a1a1a}h1{font-size:1.4em}li{margin:.3em 0}";

fn page(lang: Lang, title: &str, body: &str) -> String {
    let lang = lang.tag();
    format!(
        "<!doctype html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )
}

/// The error page in the visitor's language: the same status as the JSON
/// answer, every problem listed.
pub fn error_page(problem: &Problem, lang: Lang) -> HttpResponse {
    let mut items = String::new();
    for error in problem.field_errors().unwrap_or_default() {
        let name = match &error.label {
            Some(_) => lang.error_label(error),
            None => lang.try_text(&format!("field-{}", error.field), &[]).unwrap_or_else(|| label(&error.field)),
        };
        items.push_str(&format!(
            "<li><strong>{}</strong>: {}</li>\n",
            escape(&name),
            escape(&lang.field_message(error))
        ));
    }
    let list = if items.is_empty() { String::new() } else { format!("<ul>\n{items}</ul>\n") };
    let title = lang.text("page-error-title", &[]);
    let (_, detail, _) = problem.localized(lang);
    let body = format!(
        "<div role=\"alert\">\n<h1>{}</h1>\n<p>{}</p>\n{list}</div>\n<p>{}</p>",
        escape(&title),
        escape(&detail),
        escape(&lang.text("page-error-back", &[]))
    );
    let json = problem.error_response();
    let mut response = HttpResponse::build(json.status());
    if let Some(retry) = json.headers().get(header::RETRY_AFTER) {
        response.insert_header((header::RETRY_AFTER, retry.clone()));
    }
    response.insert_header((header::CONTENT_LANGUAGE, lang.tag())).content_type("text/html; charset=utf-8").body(page(
        lang,
        &escape(&title),
        &body,
    ))
}

#[derive(Deserialize)]
pub struct ThanksQuery {
    id: Option<String>,
}

/// `GET /thanks`: where a no-JavaScript post lands when `form.success_url` is
/// empty; in the browser's language (`Accept-Language`).
#[utoipa::path(get, path = "/thanks", tag = "public", params(("id" = Option<String>, Query, description = "The inquiry id to show")),
    responses((status = 200, description = "A small thank-you page", content_type = "text/html"), crate::openapi::BadQuery))]
pub async fn thanks(req: HttpRequest, query: web::Query<ThanksQuery>) -> HttpResponse {
    let accept = req.headers().get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
    let lang = Lang::negotiate(None, accept);
    let reference = query
        .id
        .as_deref()
        .filter(|id| id.len() <= 64 && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-'))
        .map(|id| {
            let text = lang.text("page-thanks-reference", &[("id", FluentValue::from("\u{0}"))]);
            let (before, after) = text.split_once('\u{0}').unwrap_or((&text, ""));
            format!("<p>{}<strong>{id}</strong>{}</p>", escape(before), escape(after))
        })
        .unwrap_or_default();
    let title = lang.text("page-thanks-title", &[]);
    let body =
        format!("<h1>{}</h1>\n<p>{}</p>\n{reference}", escape(&title), escape(&lang.text("page-thanks-body", &[])));
    HttpResponse::Ok()
        .insert_header((header::CONTENT_LANGUAGE, lang.tag()))
        .content_type("text/html; charset=utf-8")
        .body(page(lang, &escape(&title), &body))
}

fn label(field: &str) -> String {
    let mut chars = field.trim_start_matches('_').replace(['_', '-'], " ").chars().collect::<Vec<_>>();
    if let Some(first) = chars.first_mut() {
        *first = first.to_ascii_uppercase();
    }
    chars.into_iter().collect()
}

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(escape("<a href=\"x\">&'</a>"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
        assert_eq!(label("phone"), "Phone");
        assert_eq!(label("cf-turnstile-response"), "Cf turnstile response");
    }
}
