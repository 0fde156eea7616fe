//! Turns a notification into an email, from templates staff can edit.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use fluent_bundle::FluentValue;

use lettre::message::header::{ContentTransferEncoding, ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{Attachment, Body, Mailbox, MultiPart, SinglePart};
use lettre::Message;
use minijinja::value::{merge_maps, Value};
use minijinja::Environment;
use serde::Serialize;

use crate::config::MailSettings;
use crate::domain::{ascii_address, display, Forms, NotificationKind, StoredFile};
use crate::i18n::Lang;
use crate::store::{ClaimedNotification, InquiryRecord};

/// Template names; `.html` ones are HTML-escaped.
const TEMPLATES: [(&str, &str); 6] = [
    ("staff_subject.txt", include_str!("../../config/templates/staff_subject.txt")),
    ("staff.txt", include_str!("../../config/templates/staff.txt")),
    ("staff.html", include_str!("../../config/templates/staff.html")),
    ("receipt_subject.txt", include_str!("../../config/templates/receipt_subject.txt")),
    ("receipt.txt", include_str!("../../config/templates/receipt.txt")),
    ("receipt.html", include_str!("../../config/templates/receipt.html")),
];

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("cannot read template {0}")]
    Read(String, #[source] std::io::Error),
    #[error("template error")]
    Template(#[from] minijinja::Error),
    #[error("invalid address {0:?}")]
    Address(String),
    #[error("cannot build the message")]
    Build(#[from] lettre::error::Error),
}

/// Builds messages from the configured templates; created once at start-up.
pub struct Composer {
    env: Environment<'static>,
    from: Mailbox,
    prefix: String,
    /// For the labels and order of each form's custom fields.
    forms: Forms,
    /// `https://host/admin/inquiries/` when the console is on and
    /// `server.public_url` is set: staff email links to the inquiry there.
    console_base: Option<String>,
    /// Where uploaded files are read from to attach them, and the most bytes
    /// attached to one email (`None`: files are never attached).
    attach: Option<(PathBuf, u64)>,
}

#[derive(Serialize)]
struct Context<'a> {
    prefix: &'a str,
    /// The language of the words in `t` (`<html lang>`).
    lang: &'static str,
    /// A receipt's words in the visitor's language (`t.greeting`, `t.body`…), from
    /// the `receipt-*` messages of `locales/`; empty for staff email, which is
    /// never translated.
    t: BTreeMap<&'static str, String>,
    /// The form's title (`form` is its id).
    form_title: String,
    /// The custom fields given, in the form's order: `name`, `label`, `value` (text).
    fields: Vec<FieldLine>,
    /// The inquiry in the console (staff email only; `None` without a console).
    console_link: Option<String>,
    /// Its uploaded files (staff email only): attached when `files_attached`,
    /// else each with a console link when there is a console.
    files: Vec<FileLine>,
    files_attached: bool,
    // Every key of the inquiry object is there too: see `Context::value`.
}

#[derive(Serialize)]
struct FileLine {
    name: String,
    size: u64,
    #[serde(rename = "type")]
    kind: String,
    link: Option<String>,
}

#[derive(Serialize)]
struct FieldLine {
    name: String,
    label: String,
    value: String,
}

impl<'a> Context<'a> {
    fn new(
        prefix: &'a str,
        lang: Lang,
        t: BTreeMap<&'static str, String>,
        inquiry: &InquiryRecord,
        forms: &Forms,
    ) -> Self {
        let form = forms.get(&inquiry.form);
        let fields = match form {
            // Labels in the staff's language; staff email is never translated.
            Some(form) => form
                .labelled(&inquiry.fields, "en")
                .into_iter()
                .map(|(name, label, value)| FieldLine { name: name.to_owned(), label: label.to_owned(), value })
                .collect(),
            None => inquiry
                .fields
                .iter()
                .map(|(name, value)| FieldLine { name: name.clone(), label: name.clone(), value: display(value) })
                .collect(),
        };
        Self {
            prefix,
            lang: lang.tag(),
            t,
            form_title: form.map_or_else(|| inquiry.form.clone(), |f| f.title.clone()),
            fields,
            console_link: None,
            files: Vec::new(),
            files_attached: false,
        }
    }

    /// What the templates see: every key of the inquiry object and these keys,
    /// which win where both have one (`fields`: the labelled ones). Built once
    /// for the three templates of a message; the merge copies neither map.
    fn value(&self, inquiry: &InquiryRecord) -> Value {
        // A merged map looks a key up in the last map first.
        merge_maps([Value::from_serialize(inquiry), Value::from_serialize(self)])
    }
}

/// The receipt's words in `lang`, with the visitor's own values in them.
fn receipt_words(lang: Lang, inquiry: &InquiryRecord) -> BTreeMap<&'static str, String> {
    let subject = ("subject", FluentValue::from(inquiry.subject.as_str()));
    let id = ("id", FluentValue::from(inquiry.id.as_str()));
    let name = ("name", FluentValue::from(inquiry.name.as_str()));
    BTreeMap::from([
        ("subject", lang.text("receipt-subject", &[subject.clone(), id.clone()])),
        ("greeting", lang.text("receipt-greeting", &[name])),
        ("body", lang.text("receipt-body", &[id])),
        ("your_message", lang.text("receipt-your-message", &[])),
        ("subject_label", lang.text("receipt-subject-label", &[subject])),
        ("automatic", lang.text("receipt-automatic", &[])),
    ])
}

impl Composer {
    /// Loads each template from `mail.templates_dir` when the file exists there,
    /// else the built-in copy; a syntax error stops start-up.
    pub fn new(settings: &MailSettings, forms: Forms) -> Result<Self, ComposeError> {
        let mut env = Environment::new();
        for (name, builtin) in TEMPLATES {
            let source = load(&settings.templates_dir, name)?.unwrap_or_else(|| builtin.to_owned());
            env.add_template_owned(name, source)?;
        }
        let from = settings.from.parse().map_err(|_| ComposeError::Address(settings.from.clone()))?;
        Ok(Self { env, from, prefix: settings.subject_prefix.clone(), forms, console_base: None, attach: None })
    }

    /// Staff email links to each inquiry in the console served at `public_url`.
    pub fn with_console(mut self, public_url: &str) -> Self {
        self.console_base = Some(format!("{}/admin/inquiries/", public_url.trim_end_matches('/')));
        self
    }

    /// Staff email attaches uploaded files, read from `files_dir`, while their
    /// total is at most `max_bytes`.
    pub fn with_attachments(mut self, files_dir: &Path, max_bytes: u64) -> Self {
        self.attach = Some((files_dir.to_owned(), max_bytes));
        self
    }

    /// The staff email's attachments (`None`: the files are only listed).
    fn attachments(&self, files: &[StoredFile]) -> Option<Vec<SinglePart>> {
        let (dir, max_bytes) = self.attach.as_ref()?;
        if files.iter().map(|f| f.size).sum::<u64>() >= *max_bytes {
            return None;
        }
        files
            .iter()
            .map(|file| {
                let bytes = std::fs::read(dir.join(&file.sha256)).ok()?;
                let kind =
                    ContentType::parse(&file.kind).unwrap_or(ContentType::parse("application/octet-stream").ok()?);
                Some(Attachment::new(file.name.clone()).body(bytes, kind))
            })
            .collect()
    }

    pub fn compose(&self, notification: &ClaimedNotification) -> Result<Message, ComposeError> {
        let inquiry = normalized(&notification.inquiry);
        let (lang, t) = match notification.kind {
            NotificationKind::Receipt => (notification.lang, receipt_words(notification.lang, &inquiry)),
            NotificationKind::Staff => (Lang::En, BTreeMap::new()),
        };
        let mut context = Context::new(&self.prefix, lang, t, &inquiry, &self.forms);
        context.console_link = match notification.kind {
            NotificationKind::Staff => self.console_base.as_ref().map(|base| format!("{base}{}", inquiry.id)),
            NotificationKind::Receipt => None,
        };
        // A receipt never carries files: they stay with the institute.
        let files: Vec<StoredFile> = match notification.kind {
            NotificationKind::Staff => StoredFile::all(&inquiry.fields).into_iter().map(|(_, f)| f).collect(),
            NotificationKind::Receipt => Vec::new(),
        };
        let attachments = self.attachments(&files);
        context.files_attached = attachments.is_some() && !files.is_empty();
        context.files = files
            .iter()
            .map(|f| FileLine {
                name: f.name.clone(),
                size: f.size,
                kind: f.kind.clone(),
                link: self.console_base.as_ref().map(|base| format!("{base}{}/files/{}", inquiry.id, f.id)),
            })
            .collect();
        let kind = notification.kind.as_str();
        let context = context.value(&inquiry);
        let subject = self.render(&format!("{kind}_subject.txt"), &context)?;
        let text = self.render(&format!("{kind}.txt"), &context)?;
        let html = self.render(&format!("{kind}.html"), &context)?;

        // The domain in its ASCII form: the relay may not speak SMTPUTF8.
        let address = ascii_address(&inquiry.email);
        let visitor =
            Mailbox::new(Some(one_line(&inquiry.name)), address.parse().map_err(|_| ComposeError::Address(address))?);
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(one_line(&subject))
            .message_id(Some(notification.message_id.clone()))
            .header(InquiryIdHeader(inquiry.id.clone()));
        builder = match notification.kind {
            NotificationKind::Staff => {
                for recipient in &notification.recipients {
                    builder = builder.to(recipient.parse().map_err(|_| ComposeError::Address(recipient.clone()))?);
                }
                builder.reply_to(visitor)
            }
            // A receipt only ever goes to the address that submitted the inquiry.
            NotificationKind::Receipt => {
                builder.to(visitor).header(AutoSubmittedHeader).header(ContentLanguageHeader(lang.tag()))
            }
        };
        let body = match attachments {
            Some(parts) if !parts.is_empty() => {
                parts.into_iter().fold(MultiPart::mixed().multipart(alternative(text, html)), MultiPart::singlepart)
            }
            _ => alternative(text, html),
        };
        Ok(builder.multipart(body)?)
    }

    /// A short message for `inquiryd mail test`.
    pub fn test_message(&self, to: Mailbox) -> Result<Message, ComposeError> {
        let text = "This is a test message from inquiryd. If you can read it, mail delivery works.\n";
        Ok(Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(format!("{} test message", self.prefix))
            .singlepart(SinglePart::plain(text.to_owned()))?)
    }

    fn render(&self, name: &str, context: &Value) -> Result<String, ComposeError> {
        Ok(self.env.get_template(name)?.render(context)?)
    }
}

fn load(dir: &Path, name: &str) -> Result<Option<String>, ComposeError> {
    if dir.as_os_str().is_empty() {
        return Ok(None);
    }
    let path = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(source) => Ok(Some(source)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ComposeError::Read(path.display().to_string(), e)),
    }
}

fn alternative(text: String, html: String) -> MultiPart {
    MultiPart::alternative()
        .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(body(&text)))
        .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(body(&html)))
}

/// The text encoded as lettre's `Body::new` encodes it, byte for byte (a
/// property test checks it): the same chooser picks the encoding from the text
/// as written (for a relay without 8BITMIME), and the lines get their CRLF in
/// [`crlf`]'s one pass, not in lettre's, which walks every character backwards
/// and inserts each CR in place.
fn body(text: &str) -> Body {
    use email_encoding::body::Encoding;
    match Encoding::choose(text, false) {
        Encoding::SevenBit => Body::dangerous_pre_encoded(crlf(text).into_bytes(), ContentTransferEncoding::SevenBit),
        Encoding::Base64 => {
            let text = crlf(text);
            let mut out = String::with_capacity(email_encoding::body::base64::encoded_len(text.len()));
            email_encoding::body::base64::encode(text.as_bytes(), &mut out).expect("writing to a String");
            Body::dangerous_pre_encoded(out.into_bytes(), ContentTransferEncoding::Base64)
        }
        // Mostly ASCII with long lines or a few other characters: rare, and
        // lettre has the encoder.
        Encoding::QuotedPrintable | Encoding::EightBit => Body::new(text.to_owned()),
    }
}

/// The text with a CR before every LF that has none, in one pass. lettre
/// would do the same by inserting each CR into the string in place, moving
/// the rest of the text once per line.
fn crlf(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 32);
    let mut start = 0;
    for at in memchr::memchr_iter(b'\n', text.as_bytes()) {
        out.push_str(&text[start..at]);
        if !text[..at].ends_with('\r') {
            out.push('\r');
        }
        start = at;
    }
    out.push_str(&text[start..]);
    out
}

/// Every line break in the stored text becomes `\n`, which the encoder turns into
/// CRLF: a lone CR can never end a line of the SMTP conversation.
fn normalized(inquiry: &InquiryRecord) -> Cow<'_, InquiryRecord> {
    if !inquiry.message.contains('\r') {
        return Cow::Borrowed(inquiry);
    }
    let mut copy = inquiry.clone();
    copy.message = copy.message.replace("\r\n", "\n").replace('\r', "\n");
    Cow::Owned(copy)
}

/// Header text: any control character (CR and LF included) becomes a space.
fn one_line(value: &str) -> String {
    value.chars().map(|c| if c.is_control() { ' ' } else { c }).collect::<String>().trim().to_owned()
}

#[derive(Clone)]
struct InquiryIdHeader(String);

impl Header for InquiryIdHeader {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("X-Inquiry-Id")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(s.to_owned()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), one_line(&self.0))
    }
}

/// RFC 3834: marks the receipt as automatic, so auto-responders stay quiet.
#[derive(Clone)]
struct AutoSubmittedHeader;

impl Header for AutoSubmittedHeader {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-replied".to_owned())
    }
}

/// `Content-Language` of a receipt: the visitor's language tag.
#[derive(Clone)]
struct ContentLanguageHeader(&'static str);

impl Header for ContentLanguageHeader {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Content-Language")
    }

    fn parse(value: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let lang = Lang::from_tag(value).ok_or("not a language this service speaks")?;
        Ok(Self(lang.tag()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> MailSettings {
        let settings: crate::config::Settings = figment::Figment::new()
            .merge(<figment::providers::Toml as figment::providers::Format>::string(crate::config::DEFAULT_TOML))
            .extract()
            .unwrap();
        settings.mail
    }

    fn forms() -> Forms {
        Forms::new(vec![crate::domain::Form::standard().clone()], "contact".to_owned())
    }

    fn claimed(kind: NotificationKind) -> ClaimedNotification {
        ClaimedNotification {
            id: "n1".into(),
            kind,
            recipients: vec!["inbox@localhost".into()],
            message_id: "<n1@localhost>".into(),
            attempt: 1,
            lang: Lang::En,
            inquiry: InquiryRecord {
                seq: 1,
                id: "0190-abc".into(),
                received_at: 0,
                status: crate::domain::InquiryStatus::New,
                category: crate::domain::Category::Question,
                name: "Иван \"Ваня\" Петров".into(),
                email: "ivan@example.org".into(),
                subject: "关于合作".into(),
                message: "<script>alert(1)</script>\r\n.\r\nMAIL FROM:<x@y>\r.".into(),
                organization: None,
                country: None,
                phone: None,
                consent: Some(true),
                page: None,
                client_ip: None,
                spam_flags: vec![],
                note: None,
                form: "contact".into(),
                fields: serde_json::Map::new(),
            },
        }
    }

    #[test]
    fn staff_message_has_the_contract_headers() {
        let composer = Composer::new(&settings(), forms()).unwrap();
        let message = composer.compose(&claimed(NotificationKind::Staff)).unwrap();
        let raw = String::from_utf8(message.formatted()).unwrap();
        assert!(raw.contains("X-Inquiry-Id: 0190-abc\r\n"), "{raw}");
        assert!(raw.contains("Message-ID: <n1@localhost>\r\n"));
        assert!(raw.contains("Reply-To: "));
        assert!(!raw.contains("Auto-Submitted"));
        assert_eq!(message.envelope().to()[0].to_string(), "inbox@localhost");
    }

    proptest::proptest! {
        /// Any mix of CR, LF and text: every LF ends up after exactly one CR
        /// that was there or added, and nothing else changes.
        #[test]
        fn crlf_only_adds_a_missing_cr(text in "(\r|\n|\r\n|a|я|合){0,60}") {
            let out = crlf(&text);
            let mut expected = String::new();
            let mut previous = None;
            for c in text.chars() {
                if c == '\n' && previous != Some('\r') {
                    expected.push('\r');
                }
                expected.push(c);
                previous = Some(c);
            }
            proptest::prop_assert_eq!(out, expected);
        }

        /// Whatever a visitor wrote comes out as lettre encodes it: texts of
        /// every kind the chooser tells apart (ASCII, Cyrillic and Chinese,
        /// lines over 78 characters from runs of 80 x's, CR/LF mixes, tabs and
        /// NULs), and texts mostly in one script, where each of 7bit,
        /// quoted-printable and base64 gets chosen.
        #[test]
        fn a_body_is_encoded_as_lettre_encodes_it(
            text in proptest::prop_oneof![
                "(\r|\n|\r\n|a|Z|=| |я|合|\t|\x00|x{80}){0,300}",
                "(a{1,30}|я{1,30}|合{1,5}|\n| ){0,100}",
            ]
        ) {
            assert_encoded_as_lettre_encodes(&text);
        }
    }

    fn assert_encoded_as_lettre_encodes(text: &str) {
        let ours = body(text);
        let theirs = Body::new(text.to_owned());
        assert_eq!(ours.encoding(), theirs.encoding(), "{text:?}");
        assert_eq!(ours.into_vec(), theirs.into_vec(), "{text:?}");
    }

    /// A text near the chooser's threshold, where adding the CRs before
    /// choosing tips it from quoted-printable to base64 (found by the property
    /// test above in a first version that chose after adding them).
    #[test]
    fn the_encoding_is_chosen_from_the_text_as_written() {
        let text = "\n 合合合合  合合aaaaaaaaaaaaaaaaaaaaaaaaaaяaaaaaaaaaaaaaa \n";
        assert_eq!(body(text).encoding(), ContentTransferEncoding::QuotedPrintable);
        assert_encoded_as_lettre_encodes(text);
    }

    #[test]
    fn every_line_ends_with_crlf_once() {
        assert_eq!(crlf("\nодин\nдва\r\n三\r\rfour\n\n"), "\r\nодин\r\nдва\r\n三\r\rfour\r\n\r\n");
        assert_eq!(crlf("no break"), "no break");
    }

    #[test]
    fn html_part_is_escaped() {
        let composer = Composer::new(&settings(), forms()).unwrap();
        let staff = claimed(NotificationKind::Staff);
        let context =
            Context::new("Inquiry", Lang::En, BTreeMap::new(), &staff.inquiry, &forms()).value(&staff.inquiry);
        let html = composer.render("staff.html", &context).unwrap();
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("<script>"));
        let subject = composer.render("staff_subject.txt", &context).unwrap();
        assert_eq!(one_line(&subject), "Inquiry [question] 关于合作 (0190-abc)");
    }

    #[test]
    fn receipt_goes_to_the_visitor_only() {
        let composer = Composer::new(&settings(), forms()).unwrap();
        let message = composer.compose(&claimed(NotificationKind::Receipt)).unwrap();
        let to: Vec<String> = message.envelope().to().iter().map(ToString::to_string).collect();
        assert_eq!(to, vec!["ivan@example.org"]);
        let raw = String::from_utf8(message.formatted()).unwrap();
        assert!(raw.contains("Auto-Submitted: auto-replied\r\n"));
    }

    /// A receipt is written in the visitor's language, with their own words
    /// escaped in its HTML; staff email stays in the configured words.
    #[test]
    fn receipt_speaks_the_visitors_language_and_escapes_their_words() {
        let composer = Composer::new(&settings(), forms()).unwrap();
        for (lang, greeting) in
            [(Lang::En, "Dear "), (Lang::Ru, "Здравствуйте, "), (Lang::Zh, "您好"), (Lang::Kk, "Құрметті ")]
        {
            let mut receipt = claimed(NotificationKind::Receipt);
            receipt.lang = lang;
            receipt.inquiry.name = "<b>Иван</b>".into();
            let inquiry = normalized(&receipt.inquiry);
            let t = receipt_words(lang, &inquiry);
            let context = Context::new("Inquiry", lang, t, &inquiry, &forms()).value(&inquiry);
            let text = composer.render("receipt.txt", &context).unwrap();
            assert!(text.contains(greeting) && text.contains("<b>Иван</b>"), "{lang:?}: {text}");
            let html = composer.render("receipt.html", &context).unwrap();
            assert!(html.contains(&format!("<html lang=\"{}\">", lang.tag())), "{html}");
            assert!(html.contains("&lt;b&gt;Иван&lt;&#x2f;b&gt;") && !html.contains("<b>Иван"), "{html}");
            let raw = String::from_utf8(composer.compose(&receipt).unwrap().formatted()).unwrap();
            assert!(raw.contains(&format!("Content-Language: {}\r\n", lang.tag())), "{raw}");
        }
        let staff =
            String::from_utf8(composer.compose(&claimed(NotificationKind::Staff)).unwrap().formatted()).unwrap();
        assert!(!staff.contains("Content-Language"), "{staff}");
    }
}
