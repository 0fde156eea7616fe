//! A form: which built-in fields it shows, its custom fields, and where its
//! mail goes. Built once from the configuration (`[forms.<id>]`, the global keys
//! as defaults); the parser, the mail plan, the export, the staff email and
//! `GET /api/v1/forms/{form}` all read this one definition.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

use serde::Serialize;
use serde_json::{Map, Value};

use super::email::EmailAddress;
use super::inquiry::Category;
use super::text::{checked_text, is_blank, FieldError, Lines};

/// The built-in fields a form may show or hide; the others are always there.
pub const OPTIONAL_FIELDS: [&str; 4] = ["organization", "country", "phone", "page"];

/// Names a custom field cannot take: the built-in fields and the other keys of
/// an inquiry object (its custom values sit beside them in exports).
pub const RESERVED_NAMES: [&str; 19] = [
    "name",
    "email",
    "subject",
    "message",
    "category",
    "organization",
    "country",
    "phone",
    "consent",
    "page",
    "id",
    "received_at",
    "status",
    "client_ip",
    "spam_flags",
    "note",
    "form",
    "fields",
    "lang",
];

/// A custom field's label, in the languages the configuration gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labels {
    default: String,
    by_lang: BTreeMap<String, String>,
}

impl Labels {
    pub fn new(default: String, by_lang: BTreeMap<String, String>) -> Self {
        Self { default, by_lang }
    }

    /// The label in `lang` (a tag such as `ru`), else the default one.
    pub fn get(&self, lang: &str) -> &str {
        self.by_lang.get(lang).unwrap_or(&self.default)
    }
}

/// What a custom field holds, and so how it is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FieldKind {
    Text,
    Textarea,
    Email,
    Url,
    Number,
    Date,
    Select,
    Checkbox,
    /// Uploaded files (`multipart/form-data`); stored as a list of [`StoredFile`]s.
    File,
}

impl FieldKind {
    pub const ALL: [FieldKind; 9] = [
        Self::Text,
        Self::Textarea,
        Self::Email,
        Self::Url,
        Self::Number,
        Self::Date,
        Self::Select,
        Self::Checkbox,
        Self::File,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Textarea => "textarea",
            Self::Email => "email",
            Self::Url => "url",
            Self::Number => "number",
            Self::Date => "date",
            Self::Select => "select",
            Self::Checkbox => "checkbox",
            Self::File => "file",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    /// The most characters a value of a text type may have (and the limit when
    /// `max_length` is not set); `None` for the types that are not free text.
    pub fn max_chars(self) -> Option<usize> {
        match self {
            Self::Text => Some(200),
            Self::Textarea => Some(10_000),
            Self::Email => Some(EmailAddress::MAX_CHARS),
            Self::Url => Some(2000),
            Self::Number | Self::Date | Self::Select | Self::Checkbox | Self::File => None,
        }
    }
}

/// A `min` or `max`: a number for `number` fields, an RFC 3339 date
/// (`2026-05-31`) for `date` fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Bound {
    Number(f64),
    Date(String),
}

impl std::fmt::Display for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Number(n) => write!(f, "{n}"),
            Self::Date(d) => f.pad(d),
        }
    }
}

/// A field a form adds to the built-in ones.
#[derive(Debug, Clone)]
pub struct CustomField {
    pub name: String,
    pub labels: Arc<Labels>,
    pub kind: FieldKind,
    pub required: bool,
    /// Text types: the most characters (never above [`FieldKind::max_chars`]).
    pub max_length: Option<usize>,
    pub min: Option<Bound>,
    pub max: Option<Bound>,
    /// `select`: the values offered, exactly as they are sent and stored.
    pub choices: Vec<String>,
    /// `file`: how many files, how large, of which types.
    pub upload: Option<UploadRules>,
}

/// What a `file` field takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRules {
    /// 1–10.
    pub max_files: usize,
    /// Per file, in bytes.
    pub max_bytes: u64,
    /// MIME types (`image/png`, `image/*`) and extensions (`.docx`); empty takes any type.
    pub accept: Vec<String>,
}

/// One uploaded file as stored with the inquiry (in `fields.<name>`, a list):
/// its name is display text only; the bytes live under `files_dir/<sha256>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct StoredFile {
    /// Names the file in `GET /api/v1/admin/inquiries/{id}/files/{file}`.
    pub id: String,
    /// The name the visitor's system gave it, cleaned (no path, no control or bidi characters).
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// The type found in its bytes.
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub kind: String,
    /// Lower-case hex SHA-256 of the bytes.
    pub sha256: String,
}

impl StoredFile {
    /// The files stored in a `file` field's value (none for any other value).
    pub fn list(value: &Value) -> Vec<StoredFile> {
        match value {
            Value::Array(items) => items.iter().filter_map(|v| serde_json::from_value(v.clone()).ok()).collect(),
            _ => Vec::new(),
        }
    }

    /// Every file of an inquiry's custom values, with the field it came in.
    pub fn all(fields: &Map<String, Value>) -> Vec<(String, StoredFile)> {
        fields.iter().flat_map(|(name, value)| Self::list(value).into_iter().map(|f| (name.clone(), f))).collect()
    }

    /// `cv.pdf (12345 bytes)`.
    pub fn describe(&self) -> String {
        format!("{} ({} bytes)", self.name, self.size)
    }
}

impl CustomField {
    /// The value to store (`None`: not given), or what is wrong with it.
    pub fn parse(&self, value: Option<Value>) -> Result<Option<Value>, FieldError> {
        let name = self.name.as_str();
        let label = self.labels.get("en");
        let fail = |code: &'static str, message: String| FieldError::new(name, code, message).with_label(&self.labels);
        let given = match value {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if is_blank(&s) && self.kind != FieldKind::Checkbox => None,
            Some(value) => Some(value),
        };
        if self.kind == FieldKind::File {
            // Only the multipart reader puts files here (a list it built); any
            // other value came from a body that cannot carry files.
            return match given {
                None if self.required => Err(fail("required", format!("{label} is required"))),
                None => Ok(None),
                Some(Value::Array(files)) if !files.is_empty() => Ok(Some(Value::Array(files))),
                Some(_) => Err(fail("invalid_type", format!("{label} must be sent as a file (multipart/form-data)"))),
            };
        }
        if self.kind == FieldKind::Checkbox {
            let checked = match &given {
                None => false,
                Some(value) => super::submission::as_bool(value)
                    .ok_or_else(|| fail("invalid_type", format!("{label} must be a boolean")))?,
            };
            if self.required && !checked {
                return Err(fail("required", format!("{label} is required")));
            }
            return Ok(given.map(|_| Value::Bool(checked)));
        }
        let Some(value) = given else {
            return if self.required { Err(fail("required", format!("{label} is required"))) } else { Ok(None) };
        };
        if self.kind == FieldKind::Number {
            return self.number(&value).map(Some);
        }
        let Value::String(raw) = value else {
            return Err(fail("invalid_type", format!("{label} must be a string")));
        };
        let with_label = |e: FieldError| e.with_label(&self.labels);
        let text = match self.kind {
            FieldKind::Textarea => checked_text(name, &raw, 1, self.max_chars(), Lines::Multi).map_err(with_label)?,
            _ => checked_text(name, &raw, 1, self.max_chars(), Lines::Single).map_err(with_label)?,
        };
        match self.kind {
            FieldKind::Email => {
                let address = EmailAddress::parse(name, &text).map_err(with_label)?;
                Ok(Some(Value::String(address.as_str().to_owned())))
            }
            FieldKind::Url if !is_web_address(&text) => {
                Err(fail("invalid_url", format!("{label} must be a web address starting with http:// or https://")))
            }
            FieldKind::Date if !is_date(&text) => {
                Err(fail("invalid_date", format!("{label} must be a date like 2026-05-31")))
            }
            FieldKind::Date => {
                let below = matches!(&self.min, Some(Bound::Date(min)) if text < *min);
                let above = matches!(&self.max, Some(Bound::Date(max)) if text > *max);
                if below || above {
                    return Err(self.out_of_range());
                }
                Ok(Some(Value::String(text)))
            }
            FieldKind::Select if !self.choices.contains(&text) => {
                Err(fail("invalid_choice", format!("{label} must be one of {}", self.choices.join(", "))))
            }
            _ => Ok(Some(Value::String(text))),
        }
    }

    fn max_chars(&self) -> usize {
        self.max_length.or(self.kind.max_chars()).unwrap_or(200)
    }

    fn number(&self, value: &Value) -> Result<Value, FieldError> {
        let label = self.labels.get("en");
        let number = match value {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        let Some(number) = number.filter(|n| n.is_finite()) else {
            return Err(FieldError::new(&self.name, "invalid_type", format!("{label} must be a number"))
                .with_label(&self.labels));
        };
        let below = matches!(self.min, Some(Bound::Number(min)) if number < min);
        let above = matches!(self.max, Some(Bound::Number(max)) if number > max);
        if below || above {
            return Err(self.out_of_range());
        }
        // Whole numbers are stored (and shown) as such: 3, not 3.0.
        if number.fract() == 0.0 && number.abs() < 9.0e15 {
            return Ok(Value::from(number as i64));
        }
        Ok(serde_json::Number::from_f64(number).map(Value::Number).unwrap_or(Value::Null))
    }

    fn out_of_range(&self) -> FieldError {
        let range = match (&self.min, &self.max) {
            (Some(min), Some(max)) => format!("{min}–{max}"),
            (Some(min), None) => format!("≥ {min}"),
            (None, Some(max)) => format!("≤ {max}"),
            (None, None) => String::new(),
        };
        let label = self.labels.get("en");
        FieldError::new(&self.name, "out_of_range", format!("{label} must be in the range {range}"))
            .with_label(&self.labels)
            .with_range(range)
    }
}

/// `http(s)://` and a host, no white space or control characters.
fn is_web_address(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    let rest = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://"));
    rest.is_some_and(|rest| {
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        !host.is_empty() && !text.chars().any(|c| c.is_whitespace() || c.is_control())
    })
}

/// An RFC 3339 full date (`2026-05-31`) that exists in the calendar.
pub fn is_date(text: &str) -> bool {
    let bytes = text.as_bytes();
    let shape = bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes.iter().enumerate().all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
    if !shape {
        return false;
    }
    let (Ok(year), Ok(month), Ok(day)) = (text[..4].parse::<i32>(), text[5..7].parse::<u8>(), text[8..].parse::<u8>())
    else {
        return false;
    };
    time::Month::try_from(month).is_ok_and(|month| time::Date::from_calendar_date(year, month, day).is_ok())
}

/// Recipients by the value of a `select` field.
pub type ChoiceRoutes = BTreeMap<String, Vec<String>>;

/// One form, resolved: every default already applied.
#[derive(Debug, Clone)]
pub struct Form {
    pub id: String,
    pub title: String,
    /// Origins a browser may post this form from.
    pub allowed_origins: Vec<String>,
    /// The staff inbox when no route matches.
    pub to: Vec<String>,
    pub category_routes: BTreeMap<Category, Vec<String>>,
    /// `(select field, choice -> recipients)`, in the form's field order.
    pub choice_routes: Vec<(String, ChoiceRoutes)>,
    /// The categories offered; the first is the default.
    pub categories: Vec<Category>,
    pub success_url: String,
    pub acknowledge_submitter: bool,
    /// The optional built-in fields shown (those in `required` included).
    pub optional: Vec<&'static str>,
    /// Optional built-in fields this form requires.
    pub required: Vec<&'static str>,
    pub fields: Vec<CustomField>,
}

impl Form {
    /// The contact form as the first edition knew it: every built-in field and
    /// category, no custom field, no recipient (for tests and fuzzing).
    pub fn standard() -> &'static Form {
        static STANDARD: OnceLock<Form> = OnceLock::new();
        STANDARD.get_or_init(|| Form {
            id: "contact".to_owned(),
            title: "Contact us".to_owned(),
            allowed_origins: Vec::new(),
            to: Vec::new(),
            category_routes: BTreeMap::new(),
            choice_routes: Vec::new(),
            categories: Category::ALL.to_vec(),
            success_url: String::new(),
            acknowledge_submitter: false,
            optional: OPTIONAL_FIELDS.to_vec(),
            required: Vec::new(),
            fields: Vec::new(),
        })
    }

    /// Whether this form takes built-in field `name`.
    pub fn shows(&self, name: &str) -> bool {
        !OPTIONAL_FIELDS.contains(&name) || self.optional.contains(&name)
    }

    /// Whether this form requires optional built-in field `name`.
    pub fn requires(&self, name: &str) -> bool {
        self.required.contains(&name)
    }

    /// Whether this form takes files (and so `multipart/form-data`).
    pub fn takes_files(&self) -> bool {
        self.fields.iter().any(|f| f.kind == FieldKind::File)
    }

    pub fn field(&self, name: &str) -> Option<&CustomField> {
        self.fields.iter().find(|f| f.name == name)
    }

    pub fn default_category(&self) -> Category {
        self.categories.first().copied().unwrap_or_default()
    }

    /// Who gets the staff email: every route the inquiry matches (its category's,
    /// each `select` value's), else `to`. Recipients only ever come from here.
    pub fn recipients(&self, category: Category, fields: &Map<String, Value>) -> Vec<String> {
        let mut matched: Vec<&String> = self.category_routes.get(&category).into_iter().flatten().collect();
        for (field, routes) in &self.choice_routes {
            if let Some(Value::String(choice)) = fields.get(field) {
                matched.extend(routes.get(choice).into_iter().flatten());
            }
        }
        if matched.is_empty() {
            return self.to.clone();
        }
        let mut seen = BTreeSet::new();
        matched.into_iter().filter(|r| seen.insert(r.as_str())).cloned().collect()
    }

    /// `(name, label in lang, value as text)` of each custom value, in form
    /// order; values of fields the form no longer has follow, by name.
    pub fn labelled<'a>(&'a self, values: &'a Map<String, Value>, lang: &str) -> Vec<(&'a str, &'a str, String)> {
        let mut out: Vec<_> = self
            .fields
            .iter()
            .filter_map(|f| values.get(&f.name).map(|v| (f.name.as_str(), f.labels.get(lang), display(v))))
            .collect();
        for (name, value) in values {
            if self.field(name).is_none() {
                out.push((name.as_str(), name.as_str(), display(value)));
            }
        }
        out
    }
}

/// A stored custom value as a person reads it.
pub fn display(value: &Value) -> String {
    match value {
        Value::Array(_) => StoredFile::list(value).iter().map(StoredFile::describe).collect::<Vec<_>>().join("; "),
        Value::String(s) => s.clone(),
        Value::Bool(true) => "yes".to_owned(),
        Value::Bool(false) => "no".to_owned(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Every form the service backs, and which one `POST /api/v1/inquiries` is.
#[derive(Debug, Clone)]
pub struct Forms {
    by_id: BTreeMap<String, Arc<Form>>,
    default_id: String,
}

impl Forms {
    /// `default_id` must be one of `forms`.
    pub fn new(forms: Vec<Form>, default_id: String) -> Self {
        let by_id = forms.into_iter().map(|f| (f.id.clone(), Arc::new(f))).collect();
        Self { by_id, default_id }
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Form>> {
        self.by_id.get(id)
    }

    pub fn default_form(&self) -> &Arc<Form> {
        &self.by_id[&self.default_id]
    }

    /// The custom columns of a CSV export filtered by `form`: its fields' names
    /// (none for a form the service does not have); `None` without the filter.
    pub fn export_columns(&self, form: Option<&str>) -> Option<Vec<String>> {
        let form = form?;
        Some(self.get(form).map(|f| f.fields.iter().map(|field| field.name.clone()).collect()).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn field(kind: FieldKind) -> CustomField {
        CustomField {
            name: "f".to_owned(),
            labels: Arc::new(Labels::new("F".to_owned(), BTreeMap::from([("ru".to_owned(), "Ф".to_owned())]))),
            kind,
            required: false,
            max_length: None,
            min: None,
            max: None,
            choices: vec!["a".to_owned(), "b".to_owned()],
            upload: None,
        }
    }

    fn code(field: &CustomField, value: Value) -> &'static str {
        field.parse(Some(value)).unwrap_err().code
    }

    #[test]
    fn each_type_takes_its_values_and_names_what_is_wrong() {
        let text = CustomField { max_length: Some(5), ..field(FieldKind::Text) };
        assert_eq!(text.parse(Some(json!(" abc "))).unwrap(), Some(json!("abc")));
        assert_eq!(code(&text, json!("abcdef")), "too_long");
        assert_eq!(code(&text, json!("a\nb")), "multiline");
        assert_eq!(code(&text, json!(5)), "invalid_type");
        assert!(field(FieldKind::Textarea).parse(Some(json!("a\nb"))).is_ok());
        assert_eq!(code(&field(FieldKind::Email), json!("nope")), "invalid_email");
        assert_eq!(code(&field(FieldKind::Url), json!("ftp://x.org")), "invalid_url");
        assert_eq!(code(&field(FieldKind::Url), json!("https://")), "invalid_url");
        assert!(field(FieldKind::Url).parse(Some(json!("https://example.org/a?b"))).is_ok());
        let number =
            CustomField { min: Some(Bound::Number(1.0)), max: Some(Bound::Number(10.0)), ..field(FieldKind::Number) };
        assert_eq!(number.parse(Some(json!("3"))).unwrap(), Some(json!(3)));
        assert_eq!(number.parse(Some(json!(2.5))).unwrap(), Some(json!(2.5)));
        assert_eq!(code(&number, json!(11)), "out_of_range");
        assert_eq!(number.parse(Some(json!(0))).unwrap_err().range.as_deref(), Some("1–10"));
        assert_eq!(code(&number, json!("NaN")), "invalid_type");
        assert_eq!(code(&number, json!("three")), "invalid_type");
        let date = CustomField { min: Some(Bound::Date("2026-01-01".to_owned())), ..field(FieldKind::Date) };
        assert_eq!(date.parse(Some(json!("2026-02-28"))).unwrap(), Some(json!("2026-02-28")));
        assert_eq!(code(&date, json!("2026-02-30")), "invalid_date");
        assert_eq!(code(&date, json!("28.02.2026")), "invalid_date");
        assert_eq!(code(&date, json!("2025-12-31")), "out_of_range");
        assert_eq!(code(&field(FieldKind::Select), json!("c")), "invalid_choice");
        assert!(field(FieldKind::Select).parse(Some(json!("b"))).is_ok());
        assert_eq!(field(FieldKind::Checkbox).parse(Some(json!("on"))).unwrap(), Some(json!(true)));
        assert_eq!(code(&field(FieldKind::Checkbox), json!("maybe")), "invalid_type");
    }

    #[test]
    fn required_fields_must_be_given_and_errors_carry_the_labels() {
        let required = CustomField { required: true, ..field(FieldKind::Text) };
        let error = required.parse(Some(json!("  "))).unwrap_err();
        assert_eq!(error.code, "required");
        assert_eq!(error.label.as_ref().map(|l| l.get("ru")), Some("Ф"));
        assert_eq!(error.label.as_ref().map(|l| l.get("zh")), Some("F"));
        assert!(field(FieldKind::Text).parse(None).unwrap().is_none());
        let checkbox = CustomField { required: true, ..field(FieldKind::Checkbox) };
        assert_eq!(checkbox.parse(Some(json!(false))).unwrap_err().code, "required");
    }

    #[test]
    fn dates_must_exist() {
        assert!(is_date("2024-02-29"));
        assert!(!is_date("2023-02-29"));
        assert!(!is_date("2024-13-01"));
        assert!(!is_date("2024-1-01"));
    }
}
