//! `[forms.<id>]` resolved into [`Forms`]: a key a form leaves out takes the
//! global value, and every mistake is reported with the key that holds it.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{is_http_url, is_origin, ConfigError, PerFormSettings, Settings};
use crate::domain::{
    Bound, Category, CustomField, FieldKind, Form, Forms, Labels, UploadRules, OPTIONAL_FIELDS, RESERVED_NAMES,
};
use crate::i18n::Lang;

/// The form made of the global keys when none by that name is defined.
const DEFAULT_FORM: &str = "contact";

/// Recipients for a category (`commendation = ["…"]`), or for each choice of a
/// `select` field (`department = { press = ["…"] }`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Route {
    Recipients(Vec<String>),
    ByChoice(BTreeMap<String, Vec<String>>),
}

/// `[[forms.<id>.fields]]`: one custom field.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSettings {
    pub name: String,
    /// Shown when no label in the visitor's language is given; the name when empty.
    #[serde(default)]
    pub label: String,
    /// Labels by language tag: `labels = { ru = "…", zh = "…" }`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_en: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_ru: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_zh: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_kk: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<BoundSetting>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<BoundSetting>,
    #[serde(default)]
    pub choices: Vec<String>,
    /// `file`: 1–10 files (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_files: Option<usize>,
    /// `file`: bytes per file (default and most: `server.upload_limit_bytes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
    /// `file`: MIME types (`application/pdf`, `image/*`) and extensions (`.docx`); empty takes any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accept: Vec<String>,
}

/// `min`/`max` as written: a number, or a date as a string (`"2026-05-31"`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum BoundSetting {
    Number(f64),
    Text(String),
}

type Checked<T> = Result<T, ConfigError>;

fn fail<T>(key: &str, why: impl std::fmt::Display) -> Checked<T> {
    Err(ConfigError::Invalid(format!("{key}: {why}")))
}

impl Settings {
    /// Every form, defaults applied. The default form (`POST /api/v1/inquiries`,
    /// [`Settings::default_form`]) is `contact` or the only form defined; with
    /// none or several and no `contact` among them, a `contact` form made of the
    /// global keys is added.
    pub fn forms(&self) -> Checked<Forms> {
        let mut forms =
            self.forms.iter().map(|(id, section)| resolve(self, id, section)).collect::<Checked<Vec<_>>>()?;
        let default_id = self.default_form().to_owned();
        if !self.forms.contains_key(&default_id) {
            forms.push(resolve(self, &default_id, &PerFormSettings::default())?);
        }
        Ok(Forms::new(forms, default_id))
    }
}

fn resolve(settings: &Settings, id: &str, section: &PerFormSettings) -> Checked<Form> {
    let key = |name: &str| format!("forms.{id}.{name}");
    for origin in &section.allowed_origins {
        if !is_origin(origin) {
            return fail(&key("allowed_origins"), format!("{origin:?} is not an origin like https://example.org"));
        }
    }
    for recipient in &section.to {
        check_mailbox(&key("to"), recipient)?;
    }
    let categories = match &section.categories {
        None => Category::ALL.to_vec(),
        Some(names) if names.is_empty() => return fail(&key("categories"), "needs at least one category"),
        Some(names) => {
            let mut categories = Vec::new();
            for name in names {
                match name.parse::<Category>() {
                    Ok(c) if categories.contains(&c) => {
                        return fail(&key("categories"), format!("{name:?} is listed twice"))
                    }
                    Ok(c) => categories.push(c),
                    Err(why) => return fail(&key("categories"), format!("{name:?} is not a category: it {why}")),
                }
            }
            categories
        }
    };
    let optional_names = section.optional.clone().unwrap_or_else(|| OPTIONAL_FIELDS.map(str::to_owned).to_vec());
    let mut optional = built_in_list(&key("optional"), &optional_names)?;
    let required = built_in_list(&key("required"), &section.required)?;
    optional.extend(required.iter().filter(|name| !optional_names.iter().any(|n| n == *name)));
    let fields = custom_fields(id, &section.fields, settings.server.upload_limit_bytes as u64)?;

    let (category_routes, choice_routes) = if section.routes.is_empty() {
        // The global routes, for the categories this form offers.
        let inherited = settings.mail.routes.iter().filter(|(c, _)| categories.contains(c));
        (inherited.map(|(c, to)| (*c, to.clone())).collect(), Vec::new())
    } else {
        routes(id, &section.routes, &categories, &fields)?
    };
    let success_url = section.success_url.clone().unwrap_or_else(|| settings.form.success_url.clone());
    if !success_url.is_empty() && !is_http_url(&success_url) {
        return fail(&key("success_url"), "must be an http(s) URL");
    }
    let title = match &section.title {
        Some(title) => title.trim().to_owned(),
        None if id == DEFAULT_FORM => "Contact us".to_owned(),
        None => id.to_owned(),
    };
    Ok(Form {
        id: id.to_owned(),
        title,
        allowed_origins: if section.allowed_origins.is_empty() {
            settings.server.allowed_origins.clone()
        } else {
            section.allowed_origins.clone()
        },
        to: if section.to.is_empty() { settings.mail.to.clone() } else { section.to.clone() },
        category_routes,
        choice_routes,
        categories,
        success_url,
        acknowledge_submitter: section.acknowledge_submitter.unwrap_or(settings.mail.acknowledge_submitter),
        optional,
        required,
        fields,
    })
}

fn check_mailbox(key: &str, recipient: &str) -> Checked<()> {
    match recipient.parse::<lettre::message::Mailbox>() {
        Ok(_) => Ok(()),
        Err(_) => fail(key, format!("{recipient:?} is not an email address")),
    }
}

/// Names of optional built-in fields, as the constants spell them.
fn built_in_list(key: &str, names: &[String]) -> Checked<Vec<&'static str>> {
    names
        .iter()
        .map(|name| match OPTIONAL_FIELDS.iter().find(|f| *f == name) {
            Some(field) => Ok(*field),
            None => fail(key, format!("{name:?} is not an optional built-in field ({})", OPTIONAL_FIELDS.join(", "))),
        })
        .collect()
}

fn is_field_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 40
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn custom_fields(id: &str, settings: &[FieldSettings], upload_limit: u64) -> Checked<Vec<CustomField>> {
    let mut fields: Vec<CustomField> = Vec::new();
    for (index, field) in settings.iter().enumerate() {
        let key = |name: &str| format!("forms.{id}.fields.{index}.{name}");
        let name = field.name.as_str();
        if !is_field_name(name) {
            return fail(&key("name"), format!("{name:?} must be 1 to 40 of a-z, 0-9 and _, starting with a letter"));
        }
        if RESERVED_NAMES.contains(&name) {
            return fail(&key("name"), format!("{name:?} is the name of a built-in field"));
        }
        if fields.iter().any(|f| f.name == name) {
            return fail(&key("name"), format!("duplicate field name {name:?}"));
        }
        let names: Vec<&str> = FieldKind::ALL.iter().map(|k| k.as_str()).collect();
        let Some(kind) = FieldKind::parse(&field.kind) else {
            return fail(&key("type"), format!("unknown type {:?}; one of {}", field.kind, names.join(", ")));
        };
        match kind {
            FieldKind::Select if field.choices.is_empty() => {
                return fail(&key("choices"), "a select field needs choices")
            }
            FieldKind::Select => {
                for (n, choice) in field.choices.iter().enumerate() {
                    if choice.trim().is_empty() || choice.trim() != choice || choice.chars().any(char::is_control) {
                        return fail(&key("choices"), format!("{choice:?} must be visible text without outer spaces"));
                    }
                    if field.choices[..n].contains(choice) {
                        return fail(&key("choices"), format!("{choice:?} is listed twice"));
                    }
                }
            }
            _ if !field.choices.is_empty() => return fail(&key("choices"), "only a select field has choices"),
            _ => {}
        }
        if let Some(max_length) = field.max_length {
            match kind.max_chars() {
                None => return fail(&key("max_length"), format!("a {} field has no max_length", kind.as_str())),
                Some(most) if max_length == 0 || max_length > most => {
                    return fail(&key("max_length"), format!("must be from 1 to {most}"));
                }
                Some(_) => {}
            }
        }
        let min = bound(&key("min"), kind, field.min.as_ref())?;
        let max = bound(&key("max"), kind, field.max.as_ref())?;
        let reversed = match (&min, &max) {
            (Some(Bound::Number(a)), Some(Bound::Number(b))) => a > b,
            (Some(Bound::Date(a)), Some(Bound::Date(b))) => a > b,
            _ => false,
        };
        if reversed {
            return fail(&key("min"), "is greater than max");
        }
        let upload = upload_rules(&key, kind, field, upload_limit)?;
        fields.push(CustomField {
            name: name.to_owned(),
            labels: Arc::new(labels(&key("labels"), field)?),
            kind,
            required: field.required,
            max_length: field.max_length,
            min,
            max,
            choices: field.choices.clone(),
            upload,
        });
    }
    Ok(fields)
}

/// A `file` field's limits; the keys are refused on any other type.
fn upload_rules(
    key: &dyn Fn(&str) -> String,
    kind: FieldKind,
    field: &FieldSettings,
    upload_limit: u64,
) -> Checked<Option<UploadRules>> {
    if kind != FieldKind::File {
        for (name, given) in [
            ("max_files", field.max_files.is_some()),
            ("max_bytes", field.max_bytes.is_some()),
            ("accept", !field.accept.is_empty()),
        ] {
            if given {
                return fail(&key(name), "only a file field has it");
            }
        }
        return Ok(None);
    }
    let max_files = field.max_files.unwrap_or(1);
    if !(1..=10).contains(&max_files) {
        return fail(&key("max_files"), "must be from 1 to 10");
    }
    let max_bytes = field.max_bytes.unwrap_or(upload_limit);
    if max_bytes == 0 || max_bytes > upload_limit {
        return fail(&key("max_bytes"), format!("must be from 1 to server.upload_limit_bytes ({upload_limit})"));
    }
    for entry in &field.accept {
        if !crate::domain::is_accept_entry(entry) {
            return fail(
                &key("accept"),
                format!("{entry:?} is neither a MIME type like application/pdf nor an extension like .docx"),
            );
        }
    }
    let accept = field.accept.iter().map(|a| a.trim().to_ascii_lowercase()).collect();
    Ok(Some(UploadRules { max_files, max_bytes, accept }))
}

fn bound(key: &str, kind: FieldKind, setting: Option<&BoundSetting>) -> Checked<Option<Bound>> {
    match (kind, setting) {
        (_, None) => Ok(None),
        (FieldKind::Number, Some(BoundSetting::Number(n))) if n.is_finite() => Ok(Some(Bound::Number(*n))),
        (FieldKind::Number, Some(_)) => fail(key, "must be a number"),
        (FieldKind::Date, Some(BoundSetting::Text(d))) if crate::domain::is_date(d) => Ok(Some(Bound::Date(d.clone()))),
        (FieldKind::Date, Some(_)) => fail(key, "must be a date as a string, like \"2026-05-31\""),
        (_, Some(_)) => fail(key, "only number and date fields have min and max"),
    }
}

fn labels(key: &str, field: &FieldSettings) -> Checked<Labels> {
    let mut by_lang = BTreeMap::new();
    let single = [("en", &field.label_en), ("ru", &field.label_ru), ("zh", &field.label_zh), ("kk", &field.label_kk)];
    for (tag, label) in single {
        if let Some(label) = label {
            by_lang.insert(tag.to_owned(), label.trim().to_owned());
        }
    }
    for (tag, label) in &field.labels {
        if Lang::from_tag(tag).is_none_or(|lang| lang.tag() != tag) {
            let tags: Vec<&str> = Lang::ALL.iter().map(|l| l.tag()).collect();
            return fail(key, format!("{tag:?} is not a language of this service ({})", tags.join(", ")));
        }
        by_lang.insert(tag.clone(), label.trim().to_owned());
    }
    by_lang.retain(|_, label| !label.is_empty());
    let default = match field.label.trim() {
        "" => by_lang.get("en").cloned().unwrap_or_else(|| field.name.clone()),
        label => label.to_owned(),
    };
    by_lang.entry("en".to_owned()).or_insert_with(|| default.clone());
    Ok(Labels::new(default, by_lang))
}

type RouteTables = (BTreeMap<Category, Vec<String>>, Vec<(String, BTreeMap<String, Vec<String>>)>);

fn routes(
    id: &str,
    routes: &BTreeMap<String, Route>,
    categories: &[Category],
    fields: &[CustomField],
) -> Checked<RouteTables> {
    let mut by_category = BTreeMap::new();
    let mut by_choice = Vec::new();
    let recipients = |key: &str, list: &[String]| -> Checked<Vec<String>> {
        if list.is_empty() {
            return fail(key, "needs at least one recipient");
        }
        list.iter().try_for_each(|r| check_mailbox(key, r))?;
        Ok(list.to_vec())
    };
    for (name, route) in routes {
        let key = format!("forms.{id}.routes.{name}");
        match route {
            Route::Recipients(list) => match name.parse::<Category>() {
                Ok(category) if categories.contains(&category) => {
                    by_category.insert(category, recipients(&key, list)?);
                }
                _ => return fail(&key, format!("{name:?} is not a category of this form")),
            },
            Route::ByChoice(table) => {
                let Some(field) = fields.iter().find(|f| f.name == *name && f.kind == FieldKind::Select) else {
                    return fail(&key, format!("{name:?} is not a select field of this form"));
                };
                let mut checked = BTreeMap::new();
                for (choice, list) in table {
                    let key = format!("{key}.{choice}");
                    if !field.choices.contains(choice) {
                        return fail(&key, format!("{choice:?} is not a choice of {name}"));
                    }
                    checked.insert(choice.clone(), recipients(&key, list)?);
                }
                by_choice.push((name.clone(), checked));
            }
        }
    }
    // Field order, so that the staff email's recipients read in the form's order.
    by_choice.sort_by_key(|(name, _)| fields.iter().position(|f| f.name == *name));
    Ok((by_category, by_choice))
}

#[cfg(test)]
mod tests {
    use super::super::tests::load_with;
    use super::*;

    const EVENT: &str = r#"
[forms.event]
title = "Event registration"
allowed_origins = ["https://events.example.org"]
to = ["events@example.org"]
categories = ["question", "other"]
optional = ["organization"]
required = ["organization"]

[forms.event.routes]
department = { press = ["press@example.org"] }
question = ["questions@example.org"]

[[forms.event.fields]]
name = "department"
label = "Department"
labels = { ru = "Отдел" }
label_zh = "部门"
type = "select"
choices = ["press", "research"]
required = true

[[forms.event.fields]]
name = "guests"
type = "number"
min = 0
max = 5
"#;

    #[test]
    fn todays_configuration_is_one_contact_form_made_of_the_global_keys() {
        let settings = load_with("[mail.routes]\ncommendation = [\"praise@example.org\"]\n").unwrap();
        let forms = settings.forms().unwrap();
        let contact = forms.default_form();
        assert_eq!(contact.id, "contact");
        assert!(forms.get("event").is_none());
        assert_eq!(contact.to, settings.mail.to);
        assert_eq!(contact.allowed_origins, settings.server.allowed_origins);
        assert_eq!(contact.categories, Category::ALL);
        assert_eq!(contact.optional, OPTIONAL_FIELDS);
        assert_eq!(contact.category_routes[&Category::Commendation], ["praise@example.org"]);
        assert!(contact.fields.is_empty());
    }

    #[test]
    fn a_second_form_has_its_own_keys_and_the_contact_form_stays_the_default() {
        let settings = load_with(&format!("[forms.contact]\ntitle = \"Write to us\"\n{EVENT}")).unwrap();
        let forms = settings.forms().unwrap();
        assert_eq!(forms.default_form().title, "Write to us");
        let event = forms.get("event").unwrap();
        assert_eq!(event.to, ["events@example.org"]);
        assert_eq!(event.allowed_origins, ["https://events.example.org"]);
        assert_eq!(event.categories, [Category::Question, Category::Other]);
        assert_eq!(event.optional, ["organization"]);
        assert!(event.requires("organization") && !event.shows("phone"));
        let department = event.field("department").unwrap();
        assert_eq!((department.labels.get("ru"), department.labels.get("zh")), ("Отдел", "部门"));
        assert_eq!(department.labels.get("kk"), "Department");
        assert_eq!(event.field("guests").unwrap().labels.get("en"), "guests");
        assert_eq!(event.choice_routes[0].1["press"], ["press@example.org"]);
        // `config check` shows it as TOML that reads back.
        let shown = settings.redacted_toml();
        assert!(shown.contains("[[forms.event.fields]]\nchoices = [\"press\",\"research\"]"), "{shown}");
        assert!(shown.contains("labels = { ru = \"Отдел\" }\n"), "{shown}");
        // The only form defined is the default one.
        let only = load_with(EVENT).unwrap().forms().unwrap();
        assert_eq!(only.default_form().id, "event");
        assert!(only.get("contact").is_none());
    }

    #[test]
    fn mistakes_name_their_key() {
        let error = |extra: &str| load_with(&format!("{EVENT}{extra}")).unwrap_err().to_string();
        let duplicate = error("[[forms.event.fields]]\nname = \"guests\"\ntype = \"text\"\n");
        assert!(duplicate.contains("forms.event.fields.2.name: duplicate field name \"guests\""), "{duplicate}");
        let built_in = error("[[forms.event.fields]]\nname = \"email\"\ntype = \"email\"\n");
        assert!(
            built_in.contains("forms.event.fields.2.name: \"email\" is the name of a built-in field"),
            "{built_in}"
        );
        let no_choices = error("[[forms.event.fields]]\nname = \"track\"\ntype = \"select\"\n");
        assert!(no_choices.contains("forms.event.fields.2.choices: a select field needs choices"), "{no_choices}");
        let unknown = error("[[forms.event.fields]]\nname = \"track\"\ntype = \"dropdown\"\n");
        assert!(unknown.contains("forms.event.fields.2.type: unknown type \"dropdown\""), "{unknown}");
        let choice = load_with(&EVENT.replace("{ press =", "{ marketing =")).unwrap_err().to_string();
        assert!(choice.contains("forms.event.routes.department.marketing: \"marketing\" is not a choice"), "{choice}");
        let category = load_with(&EVENT.replace("question = [", "commendation = [")).unwrap_err().to_string();
        assert!(category.contains("forms.event.routes.commendation: \"commendation\" is not a category"), "{category}");
        let field = load_with(&EVENT.replace("department = {", "track = {")).unwrap_err().to_string();
        assert!(field.contains("forms.event.routes.track: \"track\" is not a select field"), "{field}");
        let bound = load_with(&EVENT.replace("max = 5", "max = \"five\"")).unwrap_err().to_string();
        assert!(bound.contains("forms.event.fields.1.max: must be a number"), "{bound}");
        let optional =
            load_with(&EVENT.replace("optional = [\"organization\"]", "optional = [\"fax\"]")).unwrap_err().to_string();
        assert!(optional.contains("forms.event.optional: \"fax\""), "{optional}");
        let file = |keys: &str| error(&format!("[[forms.event.fields]]\nname = \"cv\"\ntype = \"file\"\n{keys}"));
        assert!(file("max_files = 11\n").contains("forms.event.fields.2.max_files: must be from 1 to 10"));
        assert!(file("max_bytes = 26214401\n").contains("forms.event.fields.2.max_bytes: must be from 1 to"));
        let accept = file("accept = [\"pdf\"]\n");
        assert!(accept.contains("forms.event.fields.2.accept: \"pdf\" is neither a MIME type"), "{accept}");
        let text = error("[[forms.event.fields]]\nname = \"cv\"\ntype = \"text\"\nmax_files = 2\n");
        assert!(text.contains("forms.event.fields.2.max_files: only a file field has it"), "{text}");
    }

    #[test]
    fn a_file_field_takes_its_limits_and_defaults_to_one_file_up_to_the_upload_limit() {
        let settings = load_with(&format!(
            "{EVENT}[[forms.event.fields]]\nname = \"cv\"\ntype = \"file\"\naccept = [\"Application/PDF\", \".docx\"]\n"
        ))
        .unwrap();
        let forms = settings.forms().unwrap();
        let event = forms.get("event").unwrap();
        let upload = event.field("cv").unwrap().upload.clone().unwrap();
        assert_eq!(
            upload,
            UploadRules { max_files: 1, max_bytes: 26214400, accept: vec!["application/pdf".into(), ".docx".into()] }
        );
        assert!(event.takes_files());
    }
}
