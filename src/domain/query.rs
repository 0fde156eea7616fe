//! The one parser for inquiry filters, shared by the admin API, the export and
//! the command line.

use super::inquiry::{Category, InquiryStatus};
use super::text::FieldError;
use crate::timestamp::parse_rfc3339;

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

/// Which inquiries a list, a search or an export covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InquiryFilter {
    pub status: Option<InquiryStatus>,
    pub category: Option<Category>,
    /// A form id (`[a-z0-9-]{1,40}`); one the service does not have matches nothing.
    pub form: Option<String>,
    /// Lower-cased.
    pub email: Option<String>,
    pub q: Option<String>,
    /// Unix milliseconds, inclusive.
    pub since: Option<i64>,
    /// Unix milliseconds, inclusive.
    pub until: Option<i64>,
}

/// A page of a newest-first listing: at most `limit` rows older than `cursor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: u32,
    pub before: Option<i64>,
}

impl Default for Page {
    fn default() -> Self {
        Self { limit: DEFAULT_LIMIT, before: None }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum ExportFormat {
    Csv,
    Ndjson,
}

/// What a query string (or the command line's flags) asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    pub filter: InquiryFilter,
    pub page: Page,
    pub format: Option<ExportFormat>,
    /// CSV exports start with a UTF-8 byte-order mark (`bom=false` omits it), so
    /// that spreadsheets read every script correctly.
    pub bom: bool,
}

/// Which parameters a call takes besides the filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Filters, `limit` and `cursor`.
    List,
    /// Filters and `format`.
    Export,
    /// Only `limit` and `cursor` (the audit log).
    Pages,
    /// Only `form` (the statistics).
    Stats,
}

/// Parses `key=value` pairs, reporting every bad or unknown one at once.
pub fn parse_query(pairs: &[(String, String)], purpose: Purpose) -> Result<ListQuery, Vec<FieldError>> {
    let mut query = ListQuery { bom: purpose == Purpose::Export, ..ListQuery::default() };
    let mut errors = Vec::new();
    let filters = matches!(purpose, Purpose::List | Purpose::Export);
    for (key, value) in pairs {
        let value = value.trim();
        let mut bad = |code: &'static str, message: String| errors.push(FieldError::new(key.as_str(), code, message));
        match key.as_str() {
            "status" if filters => match value.parse() {
                Ok(status) => query.filter.status = Some(status),
                Err(why) => bad("invalid_choice", format!("status {why}")),
            },
            "category" if filters => match value.parse() {
                Ok(category) => query.filter.category = Some(category),
                Err(why) => bad("invalid_choice", format!("category {why}")),
            },
            "form" if filters || purpose == Purpose::Stats => match value {
                v if is_form_id(v) => query.filter.form = Some(v.to_owned()),
                _ => bad("invalid_choice", "form must be a form id: 1 to 40 of a-z, 0-9 and -".into()),
            },
            "email" if filters => match value {
                "" => bad("required", "email must not be empty".into()),
                v if v.chars().count() > 254 => bad("too_long", "email must be at most 254 characters".into()),
                v => query.filter.email = Some(super::normalize_email(v)),
            },
            "q" if filters => match value {
                "" => {}
                v if v.chars().count() > 200 => bad("too_long", "q must be at most 200 characters".into()),
                v => query.filter.q = Some(v.to_owned()),
            },
            "since" | "until" if filters => match parse_rfc3339(value) {
                Some(ms) if key == "since" => query.filter.since = Some(ms),
                Some(ms) => query.filter.until = Some(ms),
                None => bad("invalid_timestamp", format!("{key} must be an RFC 3339 time like 2026-01-31T00:00:00Z")),
            },
            "limit" if matches!(purpose, Purpose::List | Purpose::Pages) => match value.parse::<u32>() {
                Ok(limit) if (1..=MAX_LIMIT).contains(&limit) => query.page.limit = limit,
                _ => bad("out_of_range", format!("limit must be a whole number from 1 to {MAX_LIMIT}")),
            },
            "cursor" if matches!(purpose, Purpose::List | Purpose::Pages) => match decode_cursor(value) {
                Some(seq) => query.page.before = Some(seq),
                None => bad("invalid_cursor", "cursor is not one this service returned".into()),
            },
            "format" if purpose == Purpose::Export => match value {
                "csv" => query.format = Some(ExportFormat::Csv),
                "ndjson" => query.format = Some(ExportFormat::Ndjson),
                _ => bad("invalid_choice", "format must be one of csv, ndjson".into()),
            },
            "bom" if purpose == Purpose::Export => match value {
                "true" => query.bom = true,
                "false" => query.bom = false,
                _ => bad("invalid_choice", "bom must be true or false".into()),
            },
            _ => bad("unknown_parameter", format!("{key} is not a parameter of this call")),
        }
    }
    // `until` before `since` is an empty range, not an error: it selects nothing.
    if purpose == Purpose::Export && query.format.is_none() && !errors.iter().any(|e| e.field == "format") {
        errors.push(FieldError::new("format", "required", "format is required: csv or ndjson"));
    }
    if errors.is_empty() {
        Ok(query)
    } else {
        Err(errors)
    }
}

/// `[a-z0-9-]{1,40}`, the shape of every form id.
pub fn is_form_id(id: &str) -> bool {
    (1..=40).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A cursor is the position after which the next page starts: a positive
/// number of at most 18 digits (the OpenAPI document says so exactly).
pub fn encode_cursor(seq: i64) -> String {
    seq.to_string()
}

fn decode_cursor(cursor: &str) -> Option<i64> {
    let digits = cursor.len() <= 18 && cursor.bytes().all(|b| b.is_ascii_digit()) && !cursor.starts_with('0');
    digits.then(|| cursor.parse::<i64>().ok()).flatten().filter(|seq| *seq > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn parses_every_filter() {
        let q = parse_query(
            &pairs(&[
                ("status", "in_progress"),
                ("category", "question"),
                ("email", "Ivan@Example.org"),
                ("q", "合作"),
                ("since", "2026-01-01T00:00:00Z"),
                ("until", "2026-02-01T00:00:00+01:00"),
                ("limit", "200"),
                ("cursor", &encode_cursor(42)),
            ]),
            Purpose::List,
        )
        .unwrap();
        assert_eq!(q.filter.status, Some(InquiryStatus::InProgress));
        assert_eq!(q.filter.email.as_deref(), Some("ivan@example.org"));
        assert_eq!(q.page, Page { limit: 200, before: Some(42) });
    }

    #[test]
    fn names_every_bad_parameter() {
        let errors = parse_query(
            &pairs(&[("status", "open"), ("since", "yesterday"), ("limit", "0"), ("cursor", "zzz"), ("sort", "asc")]),
            Purpose::List,
        )
        .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["status", "since", "limit", "cursor", "sort"]);
        assert!(parse_query(&pairs(&[("limit", "201")]), Purpose::List).is_err());
        for cursor in ["-5", "0", "007", "+5", "1234567890123456789", "1e3", " 5x"] {
            assert!(parse_query(&pairs(&[("cursor", cursor)]), Purpose::List).is_err(), "{cursor}");
        }
        let page = parse_query(&pairs(&[("cursor", &encode_cursor(123_456_789_012))]), Purpose::List).unwrap().page;
        assert_eq!(page.before, Some(123_456_789_012));
    }

    #[test]
    fn export_needs_a_format_and_takes_no_page() {
        assert_eq!(parse_query(&[], Purpose::Export).unwrap_err()[0].field, "format");
        let errors = parse_query(&pairs(&[("format", "xml"), ("limit", "5")]), Purpose::Export).unwrap_err();
        assert_eq!(errors.len(), 2);
        assert_eq!(
            parse_query(&pairs(&[("format", "ndjson")]), Purpose::Export).unwrap().format,
            Some(ExportFormat::Ndjson)
        );
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    const KEYS: [&str; 11] =
        ["status", "category", "email", "q", "since", "until", "limit", "cursor", "format", "sort", ""];

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Any query string gets an answer: a query, or errors naming parameters that were sent.
        #[test]
        fn every_query_is_answered(pairs in proptest::collection::vec(
            (proptest::sample::select(KEYS.to_vec()), any::<String>()), 0..8)
        ) {
            let pairs: Vec<(String, String)> = pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            for purpose in [Purpose::List, Purpose::Export, Purpose::Pages] {
                match parse_query(&pairs, purpose) {
                    Ok(q) => {
                        prop_assert!((1..=MAX_LIMIT).contains(&q.page.limit));
                        prop_assert!(q.page.before.is_none_or(|seq| seq > 0));
                    }
                    Err(errors) => {
                        prop_assert!(!errors.is_empty());
                        for e in errors {
                            prop_assert!(pairs.iter().any(|(k, _)| *k == e.field) || e.field == "format");
                        }
                    }
                }
            }
        }

        #[test]
        fn cursors_round_trip(seq in 1i64..1_000_000_000_000_000_000) {
            let pairs = vec![("cursor".to_owned(), encode_cursor(seq))];
            prop_assert_eq!(parse_query(&pairs, Purpose::List).unwrap().page.before, Some(seq));
        }
    }
}
