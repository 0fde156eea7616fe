//! The console's templates (compiled in, autoescaped as HTML) and the words
//! they show for stored values.

use minijinja::Environment;

use crate::domain::InquiryStatus;

const TEMPLATES: [(&str, &str); 9] = [
    ("base.html", include_str!("templates/base.html")),
    ("login.html", include_str!("templates/login.html")),
    ("inbox.html", include_str!("templates/inbox.html")),
    ("inquiry.html", include_str!("templates/inquiry.html")),
    ("erase.html", include_str!("templates/erase.html")),
    ("audit.html", include_str!("templates/audit.html")),
    ("dashboard.html", include_str!("templates/dashboard.html")),
    ("users.html", include_str!("templates/users.html")),
    ("tokens.html", include_str!("templates/tokens.html")),
];

/// Every template, parsed once; `.html` names autoescape every value.
pub fn templates() -> Result<Environment<'static>, minijinja::Error> {
    let mut env = Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::SemiStrict);
    env.add_filter("urlencode", |text: &str| urlencode(text));
    for (name, source) in TEMPLATES {
        env.add_template(name, source)?;
    }
    Ok(env)
}

pub fn status_label(status: InquiryStatus) -> &'static str {
    match status {
        InquiryStatus::New => "New",
        InquiryStatus::InProgress => "In progress",
        InquiryStatus::Resolved => "Resolved",
        InquiryStatus::Spam => "Spam",
        InquiryStatus::Archived => "Archived",
    }
}

/// What a spam flag means, for someone who did not write the filter.
pub fn spam_flag_words(flag: &str) -> String {
    match flag {
        "honeypot" => "A hidden field that people never see was filled in, as bots do.".to_owned(),
        "filled_too_fast" => "The form was sent faster than a person can fill it in.".to_owned(),
        "too_many_links" => "The message has more links than the spam rules allow.".to_owned(),
        "blocked_word" => "The text contains a word on the blocked list.".to_owned(),
        "blocked_domain" => "The sender's address is at a blocked domain.".to_owned(),
        other => format!("Flagged by the rule \u{201c}{other}\u{201d}."),
    }
}

/// `2026-11-29 05:49 UTC` from Unix milliseconds.
pub fn when(ms: i64) -> String {
    let text = crate::timestamp::to_rfc3339(ms);
    format!("{} UTC", text.get(..16).unwrap_or(&text).replace('T', " "))
}

/// Percent-encodes every byte but the unreserved ones: safe in a path
/// segment and in a query value.
pub fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>().replace('+', "%20")
}
