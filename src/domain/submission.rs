use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::email::EmailAddress;
use super::form::{FieldKind, Form};
use super::inquiry::{Category, NewInquiry};
use super::text::{checked_text, is_blank, FieldError, Lines};

const CAPTCHA_FIELDS: [&str; 3] = ["cf-turnstile-response", "h-captcha-response", "g-recaptcha-response"];
/// The field naming the language the visitor wants answers in.
pub const LANG_FIELD: &str = "_lang";

/// The built-in text fields: name, the type a page shows, the most characters.
/// The parser checks these limits and `GET /api/v1/forms/{form}` shows them.
pub const BUILT_IN_TEXT: [(&str, FieldKind, usize); 8] = [
    ("name", FieldKind::Text, 100),
    ("email", FieldKind::Email, EmailAddress::MAX_CHARS),
    ("subject", FieldKind::Text, 200),
    ("message", FieldKind::Textarea, 10_000),
    ("organization", FieldKind::Text, 200),
    ("country", FieldKind::Text, 100),
    ("phone", FieldKind::Text, 40),
    ("page", FieldKind::Text, 2000),
];

fn max_chars(name: &str) -> usize {
    BUILT_IN_TEXT.iter().find(|(field, ..)| *field == name).map_or(0, |(_, _, max)| *max)
}

/// The built-in fields (a form may hide the optional ones).
const KNOWN_FIELDS: [&str; 11] = [
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
    "_started_at",
];

/// The configuration that shapes what a valid submission is.
#[derive(Debug, Clone, Copy)]
pub struct SubmissionRules<'a> {
    pub honeypot_field: &'a str,
    pub require_consent: bool,
    /// The form it was sent with: its built-in and custom fields.
    pub form: &'a Form,
}

/// A parsed submission: the inquiry and the signals that travel beside it.
#[derive(Debug, Clone)]
pub struct Submission {
    pub inquiry: NewInquiry,
    pub honeypot_filled: bool,
    /// When the form was shown, as the client says (Unix milliseconds).
    pub started_at_ms: Option<i64>,
    pub captcha_token: Option<String>,
}

/// Turns a JSON object (or a form's fields as strings) into a [`Submission`],
/// listing every failing field at once.
pub fn parse_submission(
    mut fields: Map<String, Value>,
    rules: SubmissionRules<'_>,
) -> Result<Submission, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut unknown: Vec<String> = fields
        .keys()
        .filter(|k| {
            !(KNOWN_FIELDS.contains(&k.as_str()) && rules.form.shows(k))
                && rules.form.field(k).is_none()
                && !CAPTCHA_FIELDS.contains(&k.as_str())
                && *k != rules.honeypot_field
                && *k != LANG_FIELD
        })
        .cloned()
        .collect();
    unknown.sort();
    for key in unknown {
        errors.push(FieldError::new(key.clone(), "unknown_field", format!("{key} is not a field of this form")));
    }

    // The language of the answer (read by the route): a tag such as "ru".
    if fields.remove(LANG_FIELD).is_some_and(|v| !v.is_string() && !v.is_null()) {
        errors.push(type_error(LANG_FIELD, "a language tag such as \"ru\""));
    }
    let mut take = |name: &str| fields.remove(name).filter(|v| !v.is_null());
    let mut text = |name: &str, required: bool, max: usize, lines: Lines, errors: &mut Vec<FieldError>| {
        match take(name) {
            None if required => errors.push(FieldError::new(name, "required", format!("{name} is required"))),
            None => {}
            Some(Value::String(s)) if !required && is_blank(&s) => {}
            Some(Value::String(s)) => match checked_text(name, &s, 1, max, lines) {
                Ok(v) => return Some(v),
                Err(e) => errors.push(e),
            },
            Some(_) => errors.push(type_error(name, "a string")),
        }
        None
    };

    let name = text("name", true, max_chars("name"), Lines::Single, &mut errors);
    let email = text("email", true, max_chars("email"), Lines::Single, &mut errors)
        .and_then(|raw| EmailAddress::parse("email", &raw).map_err(|e| errors.push(e)).ok());
    let subject = text("subject", true, max_chars("subject"), Lines::Single, &mut errors);
    let message = text("message", true, max_chars("message"), Lines::Multi, &mut errors);
    let offered = &rules.form.categories;
    let category = text("category", false, 40, Lines::Single, &mut errors)
        .map(|c| match c.parse::<Category>() {
            Ok(category) if offered.contains(&category) => Ok(category),
            _ => {
                let names: Vec<&str> = offered.iter().map(|c| c.as_str()).collect();
                let why = format!("category must be one of {}", names.join(", "));
                errors.push(FieldError::new("category", "invalid_choice", why));
                Err(())
            }
        })
        .and_then(Result::ok)
        .unwrap_or_else(|| rules.form.default_category());
    // A hidden optional field is an unknown one (reported above) and never read.
    let mut optional = |name: &str, errors: &mut Vec<FieldError>| {
        if rules.form.shows(name) {
            text(name, rules.form.requires(name), max_chars(name), Lines::Single, errors)
        } else {
            None
        }
    };
    let organization = optional("organization", &mut errors);
    let country = optional("country", &mut errors);
    let phone = optional("phone", &mut errors);
    if phone.as_deref().is_some_and(|p| !p.chars().all(|c| c.is_ascii_digit() || " +-().".contains(c))) {
        errors.push(FieldError::new(
            "phone",
            "invalid_characters",
            "phone may contain only digits, spaces and + - ( ) .",
        ));
    }
    let page = optional("page", &mut errors);
    let honeypot_filled = match take(rules.honeypot_field) {
        None => false,
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(_) => true,
    };
    let mut captcha_token = None;
    for field in CAPTCHA_FIELDS {
        match take(field) {
            Some(Value::String(s)) if !s.trim().is_empty() => {
                captcha_token.get_or_insert_with(|| s.trim().to_owned());
            }
            None | Some(Value::String(_)) => {}
            Some(_) => errors.push(type_error(field, "a string")),
        }
    }

    let consent = match take("consent") {
        None => None,
        Some(v) => match as_bool(&v) {
            Some(b) => Some(b),
            None => {
                errors.push(type_error("consent", "a boolean"));
                None
            }
        },
    };
    if rules.require_consent && consent != Some(true) {
        errors.push(FieldError::new("consent", "consent_required", "consent must be given to send this form"));
    }

    let started_at_ms = match take("_started_at") {
        None => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(v) => match parse_timestamp(&v) {
            Some(ms) => Some(ms),
            None => {
                errors.push(FieldError::new(
                    "_started_at",
                    "invalid_timestamp",
                    "_started_at must be an RFC 3339 time or Unix milliseconds",
                ));
                None
            }
        },
    };

    let mut custom = Map::new();
    for field in &rules.form.fields {
        match field.parse(take(&field.name)) {
            Ok(Some(value)) => {
                custom.insert(field.name.clone(), value);
            }
            Ok(None) => {}
            Err(error) => errors.push(error),
        }
    }

    if !errors.is_empty() {
        return Err(errors);
    }
    let (Some(name), Some(email), Some(subject), Some(message)) = (name, email, subject, message) else {
        unreachable!("required fields without errors are present");
    };
    Ok(Submission {
        inquiry: NewInquiry {
            name,
            email,
            subject,
            message,
            category,
            organization,
            country,
            phone,
            consent,
            page,
            form: rules.form.id.clone(),
            fields: custom,
        },
        honeypot_filled,
        started_at_ms,
        captcha_token,
    })
}

fn type_error(field: &str, expected: &str) -> FieldError {
    FieldError::new(field, "invalid_type", format!("{field} must be {expected}"))
}

/// JSON booleans, and the strings a plain HTML checkbox or select sends.
/// The words a form's consent checkbox (or a script) may send for a boolean,
/// exactly as written (the OpenAPI document lists them).
pub const CONSENT_WORDS: [(&str, bool); 9] = [
    ("true", true),
    ("on", true),
    ("yes", true),
    ("1", true),
    ("false", false),
    ("off", false),
    ("no", false),
    ("0", false),
    ("", false),
];

pub(super) fn as_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) => CONSENT_WORDS.iter().find(|(word, _)| word == s).map(|(_, yes)| *yes),
        _ => None,
    }
}

fn parse_timestamp(value: &Value) -> Option<i64> {
    match value {
        // `1.7e12` and `1700000000000.0` are whole numbers too.
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18).map(|f| f as i64))
            .filter(|ms| *ms > 0),
        Value::String(s) => {
            let s = s.trim();
            // At most 18 digits, no leading zero: what the OpenAPI pattern says.
            if !s.is_empty() && s.len() <= 18 && !s.starts_with('0') && s.bytes().all(|b| b.is_ascii_digit()) {
                return s.parse::<i64>().ok().filter(|ms| *ms > 0);
            }
            let at = OffsetDateTime::parse(s, &Rfc3339).ok()?;
            i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rules() -> SubmissionRules<'static> {
        SubmissionRules { honeypot_field: "_gotcha", require_consent: false, form: Form::standard() }
    }

    fn parse(v: Value, rules: SubmissionRules<'_>) -> Result<Submission, Vec<FieldError>> {
        let Value::Object(map) = v else { panic!("object") };
        parse_submission(map, rules)
    }

    fn valid() -> Value {
        json!({"name": " Иван Петров ", "email": "ivan@example.org", "subject": "关于合作", "message": "Hello 👋\nline two"})
    }

    #[test]
    fn valid_submission_is_trimmed_and_defaults_category() {
        let s = parse(valid(), rules()).unwrap();
        assert_eq!(s.inquiry.name, "Иван Петров");
        assert_eq!(s.inquiry.category, Category::Inquiry);
        assert!(!s.honeypot_filled);
    }

    #[test]
    fn lists_every_failing_field() {
        let errors = parse(
            json!({"name": "", "email": "nope", "subject": "a\nb", "message": 5, "category": "sales", "phone": "call me", "extra": 1}),
            rules(),
        )
        .unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| (e.field.as_str(), e.code)).collect();
        assert_eq!(
            fields,
            vec![
                ("extra", "unknown_field"),
                ("name", "required"),
                ("email", "invalid_email"),
                ("subject", "multiline"),
                ("message", "invalid_type"),
                ("category", "invalid_choice"),
                ("phone", "invalid_characters"),
            ]
        );
    }

    #[test]
    fn consent_when_required() {
        let rules = SubmissionRules { require_consent: true, ..rules() };
        assert_eq!(parse(valid(), rules).unwrap_err()[0].code, "consent_required");
        let mut v = valid();
        v["consent"] = json!(true);
        assert!(parse(v.clone(), rules).is_ok());
        v["consent"] = json!("on");
        assert!(parse(v.clone(), rules).is_ok());
        v["consent"] = json!(" On ");
        assert_eq!(parse(v, rules).unwrap_err()[0].code, "invalid_type");
    }

    #[test]
    fn honeypot_and_started_at() {
        let mut v = valid();
        v["_gotcha"] = json!("http://spam.example");
        v["_started_at"] = json!("2026-01-01T00:00:00Z");
        let s = parse(v, rules()).unwrap();
        assert!(s.honeypot_filled);
        assert_eq!(s.started_at_ms, Some(1_767_225_600_000));
        let mut v = valid();
        v["_started_at"] = json!("yesterday");
        assert_eq!(parse(v, rules()).unwrap_err()[0].field, "_started_at");
    }

    #[test]
    fn empty_optional_fields_are_absent() {
        let mut v = valid();
        v["organization"] = json!("  ");
        v["category"] = json!("");
        v["phone"] = Value::Null;
        let s = parse(v, rules()).unwrap();
        assert_eq!(s.inquiry.organization, None);
        assert_eq!(s.inquiry.phone, None);
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;
    use serde_json::{Map, Value};

    use super::*;

    fn rules() -> SubmissionRules<'static> {
        SubmissionRules { honeypot_field: "_gotcha", require_consent: false, form: Form::standard() }
    }

    /// Every field the form knows, the honeypot, and one it does not.
    fn field_names() -> Vec<&'static str> {
        KNOWN_FIELDS.iter().chain(&CAPTCHA_FIELDS).chain(&["_gotcha", "extra"]).copied().collect()
    }

    fn any_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<String>().prop_map(Value::String),
            "[ -~\r\n\t\u{0}-\u{1f}а-яё中文👋]{0,300}".prop_map(Value::String),
            any::<i64>().prop_map(Value::from),
            any::<bool>().prop_map(Value::Bool),
            Just(Value::Null),
        ]
    }

    fn any_fields() -> impl Strategy<Value = Map<String, Value>> {
        proptest::collection::vec((proptest::sample::select(field_names()), any_value()), 0..16)
            .prop_map(|pairs| pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Whatever arrives, the parser answers; what it accepts keeps every rule.
        #[test]
        fn accepted_submissions_keep_every_rule(fields in any_fields()) {
            match parse_submission(fields, rules()) {
                Ok(s) => {
                    let i = &s.inquiry;
                    let single = |t: &str, max: usize| !t.is_empty() && t.chars().count() <= max && !t.chars().any(char::is_control);
                    prop_assert!(single(&i.name, 100));
                    prop_assert!(single(&i.subject, 200));
                    for text in [&i.name, &i.subject] {
                        prop_assert!(!is_blank(text));
                        let reordering = text.chars().any(|c| matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'));
                        prop_assert!(!reordering);
                    }
                    prop_assert!(single(i.email.as_str(), 254));
                    prop_assert!(i.message.chars().count() <= 10_000 && !i.message.is_empty());
                    prop_assert!(!i.message.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')));
                    prop_assert_eq!(i.name.trim(), i.name.as_str());
                    for optional in [&i.organization, &i.country, &i.phone, &i.page].into_iter().flatten() {
                        prop_assert!(!optional.chars().any(char::is_control));
                    }
                }
                Err(errors) => prop_assert!(!errors.is_empty()),
            }
        }

        /// Well-formed input in any script is accepted and stored as sent, trimmed.
        #[test]
        fn valid_unicode_is_accepted(
            name in "[A-Za-zА-Яа-яЁё中文ءآ ]{1,90}",
            subject in "[^\\p{Cc}\\p{Cf}]{1,150}",
            message in "[^\\p{Cc}]{1,400}(\n[^\\p{Cc}]{0,100}){0,3}",
        ) {
            prop_assume!(!is_blank(&name) && !is_blank(&subject) && !is_blank(&message));
            let mut fields = Map::new();
            fields.insert("name".into(), Value::String(name.clone()));
            fields.insert("email".into(), Value::String("visitor@example.org".into()));
            fields.insert("subject".into(), Value::String(subject.clone()));
            fields.insert("message".into(), Value::String(message.clone()));
            let s = parse_submission(fields, rules()).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
            prop_assert_eq!(s.inquiry.name, name.trim());
            prop_assert_eq!(s.inquiry.subject, subject.trim());
            prop_assert_eq!(s.inquiry.message, message.trim());
        }
    }
}
