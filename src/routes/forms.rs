//! `GET /api/v1/forms/{form}`: a form's public definition, in the visitor's
//! language, so that a page can render its inputs or check them before posting.
//! Never its recipients, routes or origins: those are the institute's business.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{Bound, Category, FieldKind, Form, BUILT_IN_TEXT, LANG_FIELD};
use crate::i18n::Lang;
use crate::problem::Problem;
use crate::startup::AppState;

/// What a page needs to render a form: its fields (built-in first, then the
/// form's own), their labels in the visitor's language, types, limits and choices.
#[derive(Serialize, ToSchema)]
pub struct FormDefinition {
    id: String,
    title: String,
    /// The language of the labels (also `Content-Language`).
    #[schema(example = "en")]
    lang: &'static str,
    /// The categories offered; the first is the default.
    categories: Vec<CategoryChoice>,
    /// The optional built-in fields this form shows.
    optional: Vec<&'static str>,
    /// The optional built-in fields this form requires.
    required: Vec<&'static str>,
    fields: Vec<FieldDefinition>,
}

#[derive(Serialize, ToSchema)]
pub struct CategoryChoice {
    value: Category,
    label: String,
}

#[derive(Serialize, ToSchema)]
pub struct FieldDefinition {
    name: String,
    label: String,
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    kind: FieldKind,
    required: bool,
    /// One of the service's own fields (`name`, `email`…) rather than the form's.
    built_in: bool,
    /// The most characters (text types).
    #[serde(skip_serializing_if = "Option::is_none")]
    max_length: Option<usize>,
    /// `number`: the smallest value; `date`: the earliest date.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<BoundSchema>)]
    min: Option<Bound>,
    /// `number`: the largest value; `date`: the latest date.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<BoundSchema>)]
    max: Option<Bound>,
    /// `select`: the values to send, exactly.
    #[serde(skip_serializing_if = "Option::is_none")]
    choices: Option<Vec<String>>,
    /// `file`: how many files the field takes (send them as `multipart/form-data`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 10)]
    max_files: Option<usize>,
    /// `file`: the most bytes per file.
    #[serde(skip_serializing_if = "Option::is_none")]
    max_bytes: Option<u64>,
    /// `file`: the MIME types and `.extensions` accepted (empty: any), as an `<input accept>` takes them.
    #[serde(skip_serializing_if = "Option::is_none")]
    accept: Option<Vec<String>>,
}

/// A number, or an RFC 3339 date.
#[derive(ToSchema)]
#[schema(as = Bound)]
#[allow(dead_code)]
#[serde(untagged)]
enum BoundSchema {
    Number(f64),
    #[schema(format = Date)]
    Date(String),
}

impl FormDefinition {
    fn of(form: &Form, lang: Lang, require_consent: bool) -> Self {
        let built_in =
            BUILT_IN_TEXT.iter().filter(|(name, ..)| form.shows(name)).map(|(name, kind, max)| FieldDefinition {
                name: (*name).to_owned(),
                label: lang.label(name),
                kind: *kind,
                required: !crate::domain::OPTIONAL_FIELDS.contains(name) || form.requires(name),
                built_in: true,
                max_length: Some(*max),
                min: None,
                max: None,
                choices: None,
                max_files: None,
                max_bytes: None,
                accept: None,
            });
        let consent = FieldDefinition {
            name: "consent".to_owned(),
            label: lang.label("consent"),
            kind: FieldKind::Checkbox,
            required: require_consent,
            built_in: true,
            max_length: None,
            min: None,
            max: None,
            choices: None,
            max_files: None,
            max_bytes: None,
            accept: None,
        };
        let custom = form.fields.iter().map(|field| FieldDefinition {
            name: field.name.clone(),
            label: field.labels.get(lang.tag()).to_owned(),
            kind: field.kind,
            required: field.required,
            built_in: false,
            max_length: field.kind.max_chars().map(|most| field.max_length.unwrap_or(most)),
            min: field.min.clone(),
            max: field.max.clone(),
            choices: (field.kind == FieldKind::Select).then(|| field.choices.clone()),
            max_files: field.upload.as_ref().map(|u| u.max_files),
            max_bytes: field.upload.as_ref().map(|u| u.max_bytes),
            accept: field.upload.as_ref().map(|u| u.accept.clone()),
        });
        let categories = form
            .categories
            .iter()
            .map(|c| CategoryChoice { value: *c, label: lang.text(&format!("category-{}", c.as_str()), &[]) })
            .collect();
        FormDefinition {
            id: form.id.clone(),
            title: form.title.clone(),
            lang: lang.tag(),
            categories,
            optional: form.optional.clone(),
            required: form.required.clone(),
            fields: built_in.chain([consent]).chain(custom).collect(),
        }
    }
}

/// A form's public definition, in the language of `_lang` or `Accept-Language`.
#[utoipa::path(get, path = "/api/v1/forms/{form}", tag = "public",
    params(
        ("form" = String, Path, pattern = r"^[a-z0-9-]{1,40}$", example = "contact", description = "The form's id"),
        ("_lang" = Option<String>, Query, description = "The labels' language (`en`, `ru`, `zh`, `kk`); else `Accept-Language`, else English")
    ),
    responses(
        (status = 200, description = "The definition (`Content-Language` says in which language)", body = FormDefinition),
        crate::openapi::BadQuery,
        crate::openapi::NotFound
    ))]
pub async fn definition(req: HttpRequest, form: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    let pairs: Vec<(String, String)> = match serde_urlencoded::from_str(req.query_string()) {
        Ok(pairs) => pairs,
        Err(e) => {
            let problem = Problem::BadRequest(format!("The query string is malformed: {e}."));
            return problem.response_in(Lang::of_request(&req, None));
        }
    };
    let tag = pairs.iter().find(|(key, _)| key == LANG_FIELD).map(|(_, value)| value.as_str());
    let lang = Lang::of_request(&req, tag);
    let Some(form) = state.forms.get(&form) else {
        return Problem::NotFound.response_in(lang);
    };
    let mut response = HttpResponse::Ok().json(FormDefinition::of(form, lang, state.settings.privacy.require_consent));
    response.headers_mut().insert(header::CONTENT_LANGUAGE, HeaderValue::from_static(lang.tag()));
    response.headers_mut().insert(header::VARY, HeaderValue::from_static("Accept-Language"));
    response
}
