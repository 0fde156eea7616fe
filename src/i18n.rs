//! The visitor's language: which one a request asks for, and the words in it.
//!
//! Catalogues are Project Fluent files under `locales/`, one per language,
//! compiled into the binary. English is the reference: every other catalogue
//! has every English message (a test fails otherwise), and a message missing at
//! run time falls back to English, never to its key.

use std::sync::OnceLock;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};

use crate::domain::FieldError;

/// A language the service speaks to visitors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    En,
    Ru,
    Zh,
    Kk,
}

impl Lang {
    pub const ALL: [Lang; 4] = [Lang::En, Lang::Ru, Lang::Zh, Lang::Kk];

    /// The BCP 47 tag, as `Content-Language` and `<html lang>` carry it.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ru => "ru",
            Lang::Zh => "zh",
            Lang::Kk => "kk",
        }
    }

    fn source(self) -> &'static str {
        match self {
            Lang::En => include_str!("../locales/en.ftl"),
            Lang::Ru => include_str!("../locales/ru.ftl"),
            Lang::Zh => include_str!("../locales/zh.ftl"),
            Lang::Kk => include_str!("../locales/kk.ftl"),
        }
    }

    /// The language a tag names, by its primary subtag: `ru-KZ` is Russian,
    /// `zh-Hans-CN` and `zh-CN` are Chinese.
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next()?;
        Lang::ALL.into_iter().find(|lang| primary.eq_ignore_ascii_case(lang.tag()))
    }

    /// The `_lang` field when it names a language we speak, else the best match
    /// of `Accept-Language` (by q-value, then order), else English.
    pub fn negotiate(field: Option<&str>, accept_language: Option<&str>) -> Lang {
        field.and_then(Lang::from_tag).or_else(|| accept_language.and_then(best_accepted)).unwrap_or(Lang::En)
    }

    /// The text of message `id` in this language, English if this catalogue
    /// lacks it.
    pub fn text(self, id: &str, args: &[(&str, FluentValue<'_>)]) -> String {
        let catalogues = catalogues();
        let args = (!args.is_empty()).then(|| args.iter().cloned().collect::<FluentArgs<'_>>());
        lookup(&catalogues[self as usize], &catalogues[Lang::En as usize], id, args.as_ref())
    }

    /// Like [`Lang::text`], but `None` for a message English does not have
    /// either: the caller keeps its own (English) words then.
    pub fn try_text(self, id: &str, args: &[(&str, FluentValue<'_>)]) -> Option<String> {
        catalogues()[Lang::En as usize].has_message(id).then(|| self.text(id, args))
    }

    /// The request's language: the `_lang` field's value when given (`field`),
    /// else `Accept-Language`, else English.
    pub fn of_request(req: &actix_web::HttpRequest, field: Option<&str>) -> Lang {
        let accept = req.headers().get(actix_web::http::header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
        Lang::negotiate(field, accept)
    }

    /// A field's label in this language (`field-<name>`), or its name.
    pub fn label(self, field: &str) -> String {
        self.try_text(&format!("field-{field}"), &[]).unwrap_or_else(|| field.to_owned())
    }

    /// The label of the field an error is about: a custom field's own label in
    /// this language, else the catalogue's (`field-<name>`), else its name.
    pub fn error_label(self, error: &FieldError) -> String {
        match &error.label {
            Some(labels) => labels.get(self.tag()).to_owned(),
            None => self.label(&error.field),
        }
    }

    /// A field error's message in this language, from `error-<code>` with the
    /// field's label; the error's own message when the catalogue has no such code.
    pub fn field_message(self, error: &FieldError) -> String {
        let mut args = vec![("label", FluentValue::from(self.error_label(error)))];
        if let Some(max) = error.max {
            args.push(("max", FluentValue::from(max)));
        }
        if let Some(range) = &error.range {
            args.push(("range", FluentValue::from(range.as_str())));
        }
        self.try_text(&format!("error-{}", error.code), &args).unwrap_or_else(|| error.message.clone())
    }
}

/// `id` from `primary`, else from `english`; a message missing from both is a
/// bug, logged, and shown as nothing rather than as its key.
fn lookup(primary: &Bundle, english: &Bundle, id: &str, args: Option<&FluentArgs<'_>>) -> String {
    format(primary, id, args).or_else(|| format(english, id, args)).unwrap_or_else(|| {
        tracing::error!(id, "message missing from the English catalogue");
        String::new()
    })
}

fn best_accepted(header: &str) -> Option<Lang> {
    let mut ranges: Vec<(f32, usize, &str)> = header
        .split(',')
        .enumerate()
        .filter_map(|(order, item)| {
            let mut parts = item.split(';');
            let range = parts.next()?.trim();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            (q > 0.0 && q <= 1.0 && !range.is_empty()).then_some((q, order, range))
        })
        .collect();
    ranges.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    ranges.into_iter().find_map(|(_, _, range)| Lang::from_tag(range))
}

type Bundle = FluentBundle<FluentResource>;

fn catalogues() -> &'static [Bundle; 4] {
    static CATALOGUES: OnceLock<[Bundle; 4]> = OnceLock::new();
    CATALOGUES.get_or_init(|| Lang::ALL.map(bundle))
}

fn bundle(lang: Lang) -> Bundle {
    // A syntax error in a compiled-in catalogue is a build defect: the tests load
    // every catalogue, so it cannot reach a release.
    let resource = FluentResource::try_new(lang.source().to_owned())
        .unwrap_or_else(|(_, errors)| panic!("locales/{}.ftl does not parse: {errors:?}", lang.tag()));
    let id = lang.tag().parse().expect("a valid language tag");
    let mut bundle = FluentBundle::new_concurrent(vec![id]);
    // Plain text for JSON and HTML: no Unicode isolation marks around arguments.
    bundle.set_use_isolating(false);
    bundle
        .add_resource(resource)
        .unwrap_or_else(|errors| panic!("locales/{}.ftl repeats a message: {errors:?}", lang.tag()));
    bundle
}

fn format(bundle: &Bundle, id: &str, args: Option<&FluentArgs<'_>>) -> Option<String> {
    let pattern = bundle.get_message(id)?.value()?;
    let mut errors = Vec::new();
    let text = bundle.format_pattern(pattern, args, &mut errors).into_owned();
    errors.is_empty().then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(lang: Lang) -> Vec<&'static str> {
        lang.source()
            .lines()
            .filter(|l| l.starts_with(|c: char| c.is_ascii_lowercase()))
            .filter_map(|l| l.split_once(" =").map(|(id, _)| id.trim()))
            .collect()
    }

    #[test]
    fn every_catalogue_has_every_english_message_and_no_other() {
        let english = ids(Lang::En);
        assert!(english.len() > 40, "{english:?}");
        for lang in Lang::ALL {
            let bundle = &catalogues()[lang as usize];
            let missing: Vec<_> = english.iter().filter(|id| !bundle.has_message(id)).collect();
            assert!(missing.is_empty(), "locales/{}.ftl lacks {missing:?}", lang.tag());
            let extra: Vec<_> = ids(lang).into_iter().filter(|id| !english.contains(id)).collect();
            assert!(extra.is_empty(), "locales/{}.ftl has messages English lacks: {extra:?}", lang.tag());
        }
    }

    #[test]
    fn every_message_formats_in_every_language() {
        let args = [
            ("label", FluentValue::from("X")),
            ("max", FluentValue::from(200)),
            ("why", FluentValue::from("y")),
            ("limit", FluentValue::from(65536)),
            ("seconds", FluentValue::from(10)),
            ("count", FluentValue::from(3)),
            ("retry_after", FluentValue::from(5)),
            ("id", FluentValue::from("0193")),
            ("name", FluentValue::from("Иван")),
            ("subject", FluentValue::from("关于合作")),
            ("range", FluentValue::from("1–10")),
        ];
        for lang in Lang::ALL {
            for id in ids(Lang::En) {
                let bundle = &catalogues()[lang as usize];
                let text = format(bundle, id, Some(&args.iter().cloned().collect()));
                let text = text.unwrap_or_else(|| panic!("{id} does not format in {}", lang.tag()));
                assert!(!text.trim().is_empty() && !text.contains('{'), "{}: {id} = {text:?}", lang.tag());
            }
        }
    }

    #[test]
    fn plurals_follow_each_language() {
        let count = |lang: Lang, n: i64| lang.text("problem-validation-detail", &[("count", FluentValue::from(n))]);
        assert_eq!(count(Lang::En, 4), "4 fields need attention.");
        assert_eq!(count(Lang::Ru, 1), "1 поле требует внимания.");
        assert_eq!(count(Lang::Ru, 3), "3 поля требуют внимания.");
        assert_eq!(count(Lang::Ru, 5), "5 полей требуют внимания.");
        assert_eq!(count(Lang::Ru, 21), "21 поле требует внимания.");
        assert_eq!(count(Lang::Zh, 2), "有 2 个字段需要修改。");
    }

    #[test]
    fn missing_messages_fall_back_to_english_never_to_the_key() {
        let mut partial = FluentBundle::new_concurrent(vec!["ru".parse().unwrap()]);
        partial.add_resource(FluentResource::try_new("page-thanks-title = Спасибо\n".to_owned()).unwrap()).unwrap();
        let english = &catalogues()[Lang::En as usize];
        assert_eq!(lookup(&partial, english, "page-thanks-title", None), "Спасибо");
        assert_eq!(lookup(&partial, english, "page-error-title", None), "Your message was not sent");
        assert_eq!(lookup(&partial, english, "no-such-message", None), "");
    }

    #[test]
    fn language_comes_from_the_field_then_accept_language_then_english() {
        assert_eq!(Lang::negotiate(Some("ru"), Some("zh-CN")), Lang::Ru);
        assert_eq!(Lang::negotiate(Some("fr"), Some("zh-CN")), Lang::Zh, "an unknown _lang is ignored");
        assert_eq!(Lang::negotiate(None, Some("ru-KZ,ru;q=0.9,en;q=0.8")), Lang::Ru);
        assert_eq!(Lang::negotiate(None, Some("zh-Hans-CN")), Lang::Zh);
        assert_eq!(Lang::negotiate(None, Some("de-DE, fr;q=0.9, kk;q=0.5, en;q=0.4")), Lang::Kk);
        assert_eq!(Lang::negotiate(None, Some("en;q=0.5, ru;q=0.8")), Lang::Ru, "by q-value, not order");
        assert_eq!(Lang::negotiate(None, Some("ru;q=0, zh;q=0.1")), Lang::Zh, "q=0 means not acceptable");
        assert_eq!(Lang::negotiate(None, Some("*")), Lang::En);
        assert_eq!(Lang::negotiate(None, Some(";;,,q=")), Lang::En);
        assert_eq!(Lang::negotiate(None, None), Lang::En);
    }
}
