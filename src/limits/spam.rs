//! Spam signals: each one a named, explainable flag kept on the inquiry.

use crate::config::SpamSettings;
use crate::domain::{ascii_domain, Submission};

/// Flags that make an inquiry spam (stored as `spam`, no email).
pub const SPAM_FLAGS: [&str; 5] = ["honeypot", "filled_too_fast", "too_many_links", "blocked_word", "blocked_domain"];

pub struct SpamRules {
    min_fill_ms: i64,
    max_links: usize,
    blocked_words: Vec<String>,
    blocked_domains: Vec<String>,
}

impl SpamRules {
    pub fn new(settings: &SpamSettings) -> Self {
        let lower = |list: &[String]| list.iter().map(|s| s.trim().to_lowercase()).filter(|s| !s.is_empty()).collect();
        Self {
            min_fill_ms: i64::try_from(settings.min_fill_seconds.saturating_mul(1000)).unwrap_or(i64::MAX),
            max_links: settings.max_links,
            blocked_words: lower(&settings.blocked_words),
            blocked_domains: lower(&settings.blocked_domains)
                .into_iter()
                .map(|d: String| ascii_domain(d.trim_start_matches('@').trim_start_matches('.')))
                .collect(),
        }
    }

    /// The spam signals this submission shows, in a stable order.
    pub fn flags(&self, submission: &Submission, received_at: i64) -> Vec<String> {
        let inquiry = &submission.inquiry;
        let mut flags = Vec::new();
        if submission.honeypot_filled {
            flags.push("honeypot");
        }
        if let Some(started) = submission.started_at_ms.filter(|_| self.min_fill_ms > 0) {
            if received_at - started < self.min_fill_ms {
                flags.push("filled_too_fast");
            }
        }
        let text = [Some(&inquiry.name), Some(&inquiry.subject), Some(&inquiry.message), inquiry.organization.as_ref()]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\n");
        // Link prefixes are ASCII: an ASCII lower-casing (a copy, at memory
        // speed) finds them; full Unicode lower-casing only when words are blocked.
        let links = link_hosts(&text.to_ascii_lowercase());
        if self.max_links > 0 && links.len() > self.max_links {
            flags.push("too_many_links");
        }
        let lowered = if self.blocked_words.is_empty() { String::new() } else { text.to_lowercase() };
        if self.blocked_words.iter().any(|w| lowered.contains(w.as_str())) {
            flags.push("blocked_word");
        }
        // Both sides in ASCII (IDNA) form: `пример.рф` blocks `xn--e1afmkfd.xn--p1ai` too.
        let email_domain = inquiry.email.normalized().rsplit('@').next().unwrap_or_default();
        let blocked = |host: &str| self.blocked_domains.iter().any(|d| host == d || host.ends_with(&format!(".{d}")));
        // Link hosts are converted only when there is a list to compare them with.
        let any_blocked = !self.blocked_domains.is_empty()
            && (blocked(email_domain) || links.iter().any(|h| blocked(&ascii_domain(h))));
        if any_blocked {
            flags.push("blocked_domain");
        }
        flags.into_iter().map(str::to_owned).collect()
    }
}

/// The host of every `http://`, `https://` or `www.` link in lower-cased text.
fn link_hosts(text: &str) -> Vec<String> {
    let mut hosts = Vec::new();
    let mut rest = text;
    while let Some((index, prefix)) = next_link(rest) {
        let after = &rest[index + prefix.len()..];
        let end = after.find(|c: char| c.is_whitespace() || "/?#\"'<>)]".contains(c)).unwrap_or(after.len());
        let host = &after[..end];
        let host = if prefix == "www." { format!("www.{host}") } else { host.to_owned() };
        hosts.push(host.split(':').next().unwrap_or_default().trim_end_matches('.').to_owned());
        rest = &after[end..];
    }
    hosts
}

/// Where the first `http://`, `https://` or `www.` in `text` starts, and which
/// it is: one pass for the bytes that can begin one (three searches of the
/// whole text were a few per cent of the HTTP workers' time).
fn next_link(text: &str) -> Option<(usize, &'static str)> {
    let bytes = text.as_bytes();
    memchr::memchr2_iter(b'h', b'w', bytes).find_map(|at| {
        LINK_PREFIXES.into_iter().find(|prefix| bytes[at..].starts_with(prefix.as_bytes())).map(|prefix| (at, prefix))
    })
}

const LINK_PREFIXES: [&str; 3] = ["http://", "https://", "www."];

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::{parse_submission, SubmissionRules};

    fn rules() -> SpamRules {
        SpamRules::new(&SpamSettings {
            honeypot_field: "_gotcha".into(),
            min_fill_seconds: 3,
            max_links: 2,
            blocked_words: vec!["Casino".into(), "比特币".into()],
            blocked_domains: vec!["spam.example".into()],
        })
    }

    fn submission(message: &str, email: &str) -> Submission {
        let v = json!({"name": "A", "email": email, "subject": "S", "message": message});
        let serde_json::Value::Object(map) = v else { unreachable!() };
        parse_submission(
            map,
            SubmissionRules {
                honeypot_field: "_gotcha",
                require_consent: false,
                form: crate::domain::Form::standard(),
            },
        )
        .unwrap()
    }

    #[test]
    fn clean_message_has_no_flags() {
        assert!(rules().flags(&submission("See https://example.org/page", "a@example.org"), 0).is_empty());
    }

    #[test]
    fn links_words_and_domains() {
        let r = rules();
        let many = "http://a.example https://b.example www.c.example";
        assert_eq!(r.flags(&submission(many, "a@example.org"), 0), vec!["too_many_links"]);
        assert_eq!(r.flags(&submission("Best CASINO bonus", "a@example.org"), 0), vec!["blocked_word"]);
        assert_eq!(r.flags(&submission("买比特币", "a@example.org"), 0), vec!["blocked_word"]);
        assert_eq!(r.flags(&submission("hi", "bot@mail.spam.example"), 0), vec!["blocked_domain"]);
        assert_eq!(r.flags(&submission("visit https://spam.example/x", "a@example.org"), 0), vec!["blocked_domain"]);
        assert!(r.flags(&submission("hi", "a@notspam.example"), 0).is_empty());
    }

    proptest::proptest! {
        /// The one-pass search finds what a search for each prefix finds first.
        #[test]
        fn the_first_link_is_the_earliest_of_the_three_prefixes(
            text in "(http://|https://|www\\.|https|http:/|ww|wh|h|w|t|p|:|/|\\.| |я|合|a){0,30}"
        ) {
            let earliest = LINK_PREFIXES.iter().filter_map(|p| text.find(p).map(|i| (i, *p))).min();
            proptest::prop_assert_eq!(next_link(&text), earliest);
        }
    }

    #[test]
    fn link_hosts_are_extracted() {
        assert_eq!(link_hosts("go to https://x.org:8080/a and www.y.org."), vec!["x.org", "www.y.org"]);
    }
}
