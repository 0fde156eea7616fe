//! Layered configuration: embedded defaults → `--config` file → `INQUIRYD_*` env.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::domain::{is_form_id, Category};
use crate::webhooks::WebhookTarget;

pub mod forms;

/// The committed `config/default.toml`, compiled in so the binary runs anywhere.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub mail: MailSettings,
    pub smtp: SmtpSettings,
    pub limits: LimitSettings,
    pub spam: SpamSettings,
    pub form: FormSettings,
    pub captcha: CaptchaSettings,
    pub privacy: PrivacySettings,
    pub log: LogSettings,
    pub webhooks: WebhookSettings,
    pub admin: AdminSettings,
    pub storage: StorageSettings,
    /// Per-form sections, `[forms.<id>]`; for now only their webhooks.
    #[serde(default)]
    pub forms: BTreeMap<String, PerFormSettings>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    /// Where visitors reach this service (`https://forms.example.org`); empty when
    /// it is not public. Its origin is the service's own origin for CORS.
    pub public_url: String,
    #[serde(deserialize_with = "list")]
    pub allowed_origins: Vec<String>,
    #[serde(deserialize_with = "list")]
    pub trusted_proxies: Vec<IpNet>,
    pub body_limit_bytes: usize,
    /// The whole `multipart/form-data` body of a form that takes files.
    pub upload_limit_bytes: usize,
    pub demo_page: bool,
    pub shutdown_timeout_seconds: u64,
    /// How long a client may take to send a request's head, and its body.
    pub client_timeout_seconds: u64,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    Full,
    Normal,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: String,
    pub synchronous: Synchronous,
    /// How long a write waits for a lock held by another process before 503.
    pub busy_timeout_ms: u64,
    /// Commit concurrent submissions together; `false` commits one per transaction.
    pub group_commit: bool,
    pub batch_max: usize,
    /// SQLite, under load: how long the writer waits for more submissions
    /// before it commits a batch (see README, "Storage").
    pub commit_delay_us: u64,
    pub read_pool_size: u32,
    /// PostgreSQL: connections in the pool (every query and write of this replica).
    pub pool_size: u32,
    /// Keep the full-text index up to date (in the write transaction).
    pub search_index: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransportKind {
    Smtp,
    File,
    Log,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MailSettings {
    pub transport: MailTransportKind,
    pub file_dir: PathBuf,
    pub from: String,
    #[serde(deserialize_with = "list")]
    pub to: Vec<String>,
    pub subject_prefix: String,
    pub acknowledge_submitter: bool,
    pub max_attempts: u32,
    pub retry_base_seconds: u64,
    /// Directory with staff-editable templates; empty uses the built-in ones.
    pub templates_dir: PathBuf,
    /// How many notifications are sent at once.
    pub concurrency: usize,
    /// How long a claimed notification stays this process's before another
    /// (a replica, or this one after a restart) may take it over; renewed
    /// while its delivery is in progress.
    pub lease_seconds: u64,
    #[serde(default)]
    pub routes: BTreeMap<Category, Vec<String>>,
    /// Staff email attaches an inquiry's files while their total stays under
    /// this; above it, it lists them with links to the console.
    pub attach_max_bytes: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSettings {
    /// Uploaded files, each named by its SHA-256; back it up with the database.
    pub files_dir: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    None,
    Starttls,
    Tls,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: String,
    #[serde(serialize_with = "redacted")]
    pub password: SecretString,
    /// Read the password from this file instead (a container secret); one
    /// trailing newline is dropped.
    pub password_file: PathBuf,
    pub timeout_seconds: u64,
    pub ca_file: PathBuf,
    pub pool_size: u32,
    /// Disable Nagle's algorithm on SMTP connections (see `mail::transport`).
    pub tcp_nodelay: bool,
}

/// Where the rate limits count: in each process, or in Redis for all replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LimitBackend {
    Memory,
    Redis,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSettings {
    /// `false` switches every rate limit off (for benchmarks).
    pub enabled: bool,
    pub per_ip_per_minute: u32,
    pub per_ip_burst: u32,
    pub per_email_per_hour: u32,
    /// Failed admin authentications per minute per address.
    pub admin_failures_per_minute: u32,
    /// Most client addresses (and emails) each limiter remembers at once.
    pub max_tracked_keys: usize,
    pub backend: LimitBackend,
    #[serde(serialize_with = "redacted_url")]
    pub redis_url: String,
    /// Starts every Redis key: deployments sharing one Redis stay apart.
    pub redis_key_prefix: String,
    /// How long a check waits for Redis before this replica counts on its own.
    pub redis_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SpamSettings {
    pub honeypot_field: String,
    pub min_fill_seconds: u64,
    /// More links than this in the text is spam; 0 disables the check.
    pub max_links: usize,
    /// Case-insensitive substrings of name, subject, message or organization.
    #[serde(deserialize_with = "list")]
    pub blocked_words: Vec<String>,
    /// The email's domain, or a linked host, equal to or under one of these.
    #[serde(deserialize_with = "list")]
    pub blocked_domains: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FormSettings {
    pub success_url: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CaptchaProvider {
    #[serde(rename = "")]
    Disabled,
    Turnstile,
    Hcaptcha,
    Recaptcha,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CaptchaSettings {
    pub provider: CaptchaProvider,
    #[serde(serialize_with = "redacted")]
    pub secret: SecretString,
    pub verify_url: String,
    pub timeout_seconds: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreIp {
    Full,
    Truncated,
    None,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacySettings {
    pub store_ip: StoreIp,
    pub require_consent: bool,
    pub retention_days: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// Let webhooks reach loopback, private, link-local and metadata addresses
    /// (tests and receivers on the same network); off, they are refused.
    pub allow_private_targets: bool,
    pub timeout_seconds: u64,
}

/// The web console at `/admin` and its accounts' sessions and logins.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    /// Serve the console at `/admin`.
    pub console: bool,
    /// A session unused this long ends.
    pub session_idle_seconds: u64,
    /// A session ends this long after its login, however busy.
    pub session_absolute_seconds: u64,
    /// Login attempts per minute from one client address (a burst of as many).
    pub login_attempts_per_minute: u32,
    /// Consecutive wrong passwords that lock an account…
    pub lockout_failures: u32,
    /// …for this many minutes.
    pub lockout_minutes: u32,
}

/// One form's own section, `[forms.<id>]`. A key left out takes the global
/// value (`server.allowed_origins`, `mail.to`, `mail.routes`, `form.success_url`,
/// `mail.acknowledge_submitter`); see [`forms`] for how they resolve.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PerFormSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, deserialize_with = "list")]
    pub allowed_origins: Vec<String>,
    #[serde(default, deserialize_with = "list")]
    pub to: Vec<String>,
    /// `category = [recipients]` or `select_field = { choice = [recipients] }`.
    #[serde(default)]
    pub routes: BTreeMap<String, forms::Route>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledge_submitter: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<Vec<String>>,
    #[serde(default)]
    pub required: Vec<String>,
    #[serde(default)]
    pub fields: Vec<forms::FieldSettings>,
    #[serde(default)]
    pub webhooks: Vec<WebhookTarget>,
}

impl ServerSettings {
    pub fn client_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.client_timeout_seconds)
    }

    /// The origin of `public_url`, as a browser sends it in `Origin`.
    pub fn own_origin(&self) -> Option<String> {
        origin_of(&self.public_url)
    }
}

/// `scheme://host[:port]` of an http(s) URL, lower-cased, without a default port.
fn origin_of(url: &str) -> Option<String> {
    if !is_http_url(url) {
        return None;
    }
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?.to_ascii_lowercase();
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let default_port = if scheme == "https" { ":443" } else { ":80" };
    let authority = authority.strip_suffix(default_port).unwrap_or(&authority);
    Some(format!("{scheme}://{authority}"))
}

impl Settings {
    /// Loads the layers in order; `file` is `--config` or `INQUIRYD_CONFIG`.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::new().merge(Toml::string(DEFAULT_TOML));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError::MissingFile(path.to_owned()));
            }
            figment = figment.merge(Toml::file(path));
        }
        figment = figment
            .merge(Env::prefixed("INQUIRYD_").split("__").filter(|key| !key.as_str().eq_ignore_ascii_case("config")));
        let mut settings: Settings = figment.extract().map_err(describe)?;
        settings.read_secret_files()?;
        settings.validate()?;
        Ok(settings)
    }

    /// Replaces `smtp.password` with the contents of `smtp.password_file` when set.
    fn read_secret_files(&mut self) -> Result<(), ConfigError> {
        let path = &self.smtp.password_file;
        if path.as_os_str().is_empty() {
            return Ok(());
        }
        let fail = |why: String| Err(ConfigError::Invalid(format!("smtp.password_file: {why}")));
        if !self.smtp.password.expose_secret().is_empty() {
            return fail("cannot be combined with smtp.password; set one of them".to_owned());
        }
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let password = text.strip_suffix('\n').unwrap_or(&text);
                let password = password.strip_suffix('\r').unwrap_or(password);
                self.smtp.password = SecretString::from(password.to_owned());
                Ok(())
            }
            Err(e) => fail(format!("cannot read {}: {e}", path.display())),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let fail = |key: &str, why: &str| Err(ConfigError::Invalid(format!("{key}: {why}")));
        if self.server.allowed_origins.iter().any(|o| o == "*") {
            return fail("server.allowed_origins", "\"*\" is not allowed; list each origin");
        }
        if let Some(bad) = self.server.allowed_origins.iter().find(|o| !is_origin(o)) {
            return fail("server.allowed_origins", &format!("{bad:?} is not an origin like https://example.org"));
        }
        if !self.server.public_url.is_empty() && self.server.own_origin().is_none() {
            return fail("server.public_url", "must be an http(s) URL like https://forms.example.org");
        }
        if self.server.client_timeout_seconds == 0 {
            return fail("server.client_timeout_seconds", "must be at least 1");
        }
        if self.server.body_limit_bytes < 1024 {
            return fail("server.body_limit_bytes", "must be at least 1024");
        }
        if self.server.upload_limit_bytes < self.server.body_limit_bytes {
            return fail("server.upload_limit_bytes", "must be at least server.body_limit_bytes");
        }
        if !self.database.url.starts_with("sqlite:") && !crate::store::is_postgres(&self.database.url) {
            return fail("database.url", "must start with sqlite: or postgres://");
        }
        if self.database.pool_size == 0 {
            return fail("database.pool_size", "must be at least 1");
        }
        if self.database.batch_max == 0 || self.database.batch_max > 2000 {
            return fail("database.batch_max", "must be between 1 and 2000");
        }
        if self.database.commit_delay_us > 10_000 {
            return fail("database.commit_delay_us", "must be at most 10000 (10 ms)");
        }
        if self.database.read_pool_size == 0 {
            return fail("database.read_pool_size", "must be at least 1");
        }
        if self.mail.from.parse::<lettre::message::Mailbox>().is_err() {
            return fail("mail.from", "is not a mailbox like \"Name <addr@example.org>\"");
        }
        if self.mail.to.is_empty() {
            return fail("mail.to", "needs at least one recipient");
        }
        let mut recipients = self.mail.to.iter().map(|r| ("mail.to".to_owned(), r)).collect::<Vec<_>>();
        for (category, list) in &self.mail.routes {
            if list.is_empty() {
                return fail(&format!("mail.routes.{}", category.as_str()), "needs at least one recipient");
            }
            recipients.extend(list.iter().map(|r| (format!("mail.routes.{}", category.as_str()), r)));
        }
        for (key, recipient) in recipients {
            if recipient.parse::<lettre::message::Mailbox>().is_err() {
                return fail(&key, &format!("{recipient:?} is not an email address"));
            }
        }
        if self.mail.max_attempts == 0 {
            return fail("mail.max_attempts", "must be at least 1");
        }
        if self.mail.lease_seconds < 3 {
            return fail("mail.lease_seconds", "must be at least 3");
        }
        if self.mail.concurrency == 0 {
            return fail("mail.concurrency", "must be at least 1");
        }
        if self.smtp.pool_size == 0 {
            return fail("smtp.pool_size", "must be at least 1");
        }
        let limits = &self.limits;
        if [limits.per_ip_per_minute, limits.per_ip_burst, limits.per_email_per_hour, limits.admin_failures_per_minute]
            .contains(&0)
        {
            return fail("limits", "every limit must be at least 1");
        }
        let admin = &self.admin;
        if admin.session_idle_seconds == 0 || admin.session_absolute_seconds < admin.session_idle_seconds {
            return fail("admin.session_idle_seconds", "must be at least 1 and at most admin.session_absolute_seconds");
        }
        if admin.login_attempts_per_minute == 0 || admin.lockout_failures == 0 || admin.lockout_minutes == 0 {
            return fail("admin", "login_attempts_per_minute, lockout_failures and lockout_minutes must be at least 1");
        }
        if self.spam.honeypot_field.trim().is_empty() {
            return fail("spam.honeypot_field", "must not be empty");
        }
        if !self.form.success_url.is_empty() && !is_http_url(&self.form.success_url) {
            return fail("form.success_url", "must be an http(s) URL");
        }
        if self.limits.max_tracked_keys < 1000 {
            return fail("limits.max_tracked_keys", "must be at least 1000");
        }
        if self.limits.backend == LimitBackend::Redis {
            if let Err(e) = redis::Client::open(self.limits.redis_url.as_str()) {
                return fail("limits.redis_url", &format!("{e}; expected a URL like redis://127.0.0.1:6379"));
            }
        }
        let prefix = &self.limits.redis_key_prefix;
        if prefix.is_empty() || prefix.len() > 64 || !prefix.bytes().all(|b| b.is_ascii_graphic()) {
            return fail("limits.redis_key_prefix", "must be 1 to 64 printable ASCII characters without spaces");
        }
        if !(1..=10_000).contains(&self.limits.redis_timeout_ms) {
            return fail("limits.redis_timeout_ms", "must be between 1 and 10000");
        }
        if !self.captcha.verify_url.is_empty() && !is_http_url(&self.captcha.verify_url) {
            return fail("captcha.verify_url", "must be an http(s) URL");
        }
        if self.captcha.provider != CaptchaProvider::Disabled && self.captcha.secret.expose_secret().is_empty() {
            return fail("captcha.secret", "is required when captcha.provider is set");
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return fail("log.level", "is not a level or filter like \"info\"");
        }
        self.validate_webhooks()?;
        self.forms().map(|_| ())
    }

    /// Every configured webhook with its form and key (`<form>.<name>`).
    pub fn webhooks(&self) -> impl Iterator<Item = (&str, String, &WebhookTarget)> {
        self.forms.iter().flat_map(|(form, section)| {
            section
                .webhooks
                .iter()
                .enumerate()
                .map(move |(index, target)| (form.as_str(), target.key(form, index), target))
        })
    }

    /// The form `POST /api/v1/inquiries` feeds: `contact`, or the only form defined.
    pub fn default_form(&self) -> &str {
        match self.forms.keys().next() {
            Some(only) if self.forms.len() == 1 => only,
            _ => "contact",
        }
    }

    fn validate_webhooks(&self) -> Result<(), ConfigError> {
        let fail = |key: &str, why: &str| Err(ConfigError::Invalid(format!("{key}: {why}")));
        if self.webhooks.timeout_seconds == 0 {
            return fail("webhooks.timeout_seconds", "must be at least 1");
        }
        for (id, form) in &self.forms {
            if !is_form_id(id) {
                return fail(&format!("forms.{id}"), "a form id is 1 to 40 of a-z, 0-9 and -");
            }
            let mut keys = std::collections::HashSet::new();
            for (index, target) in form.webhooks.iter().enumerate() {
                if let Err(why) = target.check() {
                    return fail(&format!("forms.{id}.webhooks.{index}"), &why);
                }
                if !keys.insert(target.key(id, index)) {
                    return fail(&format!("forms.{id}.webhooks.{index}.name"), "another webhook of this form has it");
                }
            }
        }
        Ok(())
    }

    /// The effective configuration as TOML, with secrets redacted.
    pub fn redacted_toml(&self) -> String {
        toml_string(self)
    }

    pub fn listen_address(&self) -> String {
        format!("{}:{}", self.server.host, self.server.port)
    }
}

fn toml_string(settings: &Settings) -> String {
    // figment already depends on `toml`; serialising through serde_json keeps our
    // dependency list short and the output readable enough for `config check`.
    let value = serde_json::to_value(settings).unwrap_or_default();
    let mut out = String::new();
    if let serde_json::Value::Object(sections) = value {
        for (section, body) in sections {
            write_table(&mut out, &section, &body);
        }
    }
    out
}

fn write_table(out: &mut String, name: &str, body: &serde_json::Value) {
    let serde_json::Value::Object(map) = body else {
        return;
    };
    out.push_str(&format!("[{name}]\n"));
    let mut nested = Vec::new();
    let mut arrays = Vec::new();
    // Inside an array of tables (`[[…]]`), a table is written inline: a header
    // cannot name a table of one entry of the array.
    let in_array = name.starts_with('[');
    for (key, value) in map {
        match value {
            serde_json::Value::Object(_) if in_array => out.push_str(&format!("{key} = {}\n", inline_table(value))),
            serde_json::Value::Object(_) => nested.push((key, value)),
            serde_json::Value::Array(items) if items.first().is_some_and(serde_json::Value::is_object) => {
                arrays.push((key, items));
            }
            _ => out.push_str(&format!("{key} = {value}\n")),
        }
    }
    out.push('\n');
    for (key, items) in arrays {
        for item in items {
            // `[[name.key]]`: an array of tables, such as a form's webhooks.
            write_table(out, &format!("[{name}.{key}]"), item);
        }
    }
    for (key, value) in nested {
        write_table(out, &format!("{name}.{key}"), value);
    }
}

/// `{ key = value, … }`; values as JSON, which TOML reads alike for strings,
/// numbers, booleans and lists of them.
fn inline_table(value: &serde_json::Value) -> String {
    let serde_json::Value::Object(map) = value else { return value.to_string() };
    let pairs: Vec<String> = map.iter().map(|(key, value)| format!("{key} = {}", inline_table(value))).collect();
    format!("{{ {} }}", pairs.join(", "))
}

fn describe(error: figment::Error) -> ConfigError {
    let lines: Vec<String> = error
        .into_iter()
        .map(|e| {
            let mut key = e.path.join(".");
            let kind = match &e.kind {
                figment::error::Kind::UnknownField(field, _) => {
                    append_field(&mut key, field);
                    "unknown key".to_owned()
                }
                figment::error::Kind::MissingField(field) => {
                    append_field(&mut key, field);
                    "missing key".to_owned()
                }
                other => other.to_string(),
            };
            let source = e
                .metadata
                .as_ref()
                .map(|m| match &m.source {
                    Some(source) => format!(" (from {source})"),
                    None => format!(" (from {})", m.name),
                })
                .unwrap_or_default();
            format!("{key}: {kind}{source}")
        })
        .collect();
    ConfigError::Invalid(lines.join("; "))
}

fn append_field(key: &mut String, field: &str) {
    if key.rsplit('.').next().is_none_or(|last| last != field) {
        if !key.is_empty() {
            key.push('.');
        }
        key.push_str(field);
    }
}

fn is_origin(origin: &str) -> bool {
    is_http_url(origin) && !origin.ends_with('/') && origin.matches('/').count() == 2
}

fn is_http_url(url: &str) -> bool {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    rest.is_some_and(|r| !r.is_empty() && !r.chars().any(|c| c.is_whitespace() || c.is_control()))
}

fn redacted<S: Serializer>(secret: &SecretString, serializer: S) -> Result<S::Ok, S::Error> {
    let shown = if secret.expose_secret().is_empty() { "" } else { "[redacted]" };
    serializer.serialize_str(shown)
}

/// A Redis URL with its password, if any, replaced.
fn redacted_url<S: Serializer>(url: &str, serializer: S) -> Result<S::Ok, S::Error> {
    match redis::parse_redis_url(url) {
        Some(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("redacted"));
            serializer.serialize_str(parsed.as_str())
        }
        _ => serializer.serialize_str(url),
    }
}

/// Accepts a TOML list or, from the environment, a comma-separated string.
fn list<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(String),
        Many(Vec<String>),
    }
    let items = match Raw::deserialize(deserializer)? {
        Raw::One(s) => s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect(),
        Raw::Many(v) => v,
    };
    items.iter().map(|s| s.parse::<T>().map_err(|e| serde::de::Error::custom(format!("{s:?}: {e}")))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_are_valid() {
        let settings: Settings = Figment::new().merge(Toml::string(DEFAULT_TOML)).extract().expect("defaults parse");
        settings.validate().expect("defaults validate");
        assert_eq!(settings.server.port, 8080);
        assert_eq!(settings.mail.transport, MailTransportKind::File);
    }

    #[test]
    fn smtp_password_file_is_read_and_checked() {
        let defaults = || -> Settings { Figment::new().merge(Toml::string(DEFAULT_TOML)).extract().unwrap() };
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("smtp_password");
        std::fs::write(&file, "s3cret with spaces\n").unwrap();
        let mut settings = defaults();
        settings.smtp.password_file = file.clone();
        settings.read_secret_files().unwrap();
        assert_eq!(settings.smtp.password.expose_secret(), "s3cret with spaces");

        let mut both = defaults();
        both.smtp.password_file = file;
        both.smtp.password = SecretString::from("inline");
        assert!(both.read_secret_files().unwrap_err().to_string().contains("smtp.password_file"));

        let mut missing = defaults();
        missing.smtp.password_file = dir.path().join("absent");
        let error = missing.read_secret_files().unwrap_err().to_string();
        assert!(error.contains("smtp.password_file: cannot read"), "{error}");
    }

    #[test]
    fn redacted_output_hides_secrets() {
        let mut settings: Settings = Figment::new().merge(Toml::string(DEFAULT_TOML)).extract().unwrap();
        settings.smtp.password = SecretString::from("hunter2-secret");
        let shown = settings.redacted_toml();
        assert!(!shown.contains("hunter2-secret"));
        assert!(shown.contains("password = \"[redacted]\""));
        assert!(shown.contains("[smtp]"));
    }

    pub(super) fn load_with(extra: &str) -> Result<Settings, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("inquiryd.toml");
        std::fs::write(&file, extra).unwrap();
        Settings::load(Some(&file))
    }

    const WEBHOOK: &str = "[[forms.contact.webhooks]]\nurl = \"https://crm.example.org/hooks\"\n\
                           secret = \"whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD\"\nevents = [\"inquiry.created\"]\n";

    #[test]
    fn form_webhooks_are_parsed_checked_and_shown_redacted() {
        let settings = load_with(WEBHOOK).unwrap();
        let hooks = &settings.forms["contact"].webhooks;
        assert_eq!(hooks.len(), 1);
        assert_eq!(hooks[0].format, crate::webhooks::Format::Json);
        assert!(!hooks[0].include_spam);
        assert!(!settings.webhooks.allow_private_targets);
        assert_eq!(settings.webhooks.timeout_seconds, 10);
        let shown = settings.redacted_toml();
        assert!(shown.contains("[[forms.contact.webhooks]]\nevents = [\"inquiry.created\"]"), "{shown}");
        assert!(shown.contains("secret = \"[redacted]\"") && !shown.contains("C2FVsBQIhrsc"), "{shown}");

        let short = WEBHOOK.replace("C2FVsBQIhrscChlQIMV+b5sSYspob7oD", "dGVzdA==");
        let error = load_with(&short).unwrap_err().to_string();
        assert!(error.contains("forms.contact.webhooks") && error.contains("too short"), "{error}");
        assert!(!error.contains("dGVzdA"), "{error}");
        let error = load_with(&WEBHOOK.replace("whsec_", "")).unwrap_err().to_string();
        assert!(error.contains("must start with whsec_"), "{error}");
        let error = load_with(&WEBHOOK.replace("inquiry.created", "inquiry.read")).unwrap_err().to_string();
        assert!(error.contains("forms.contact.webhooks") && error.contains("inquiry.read"), "{error}");
        let error = load_with(&WEBHOOK.replace("https://crm", "ftp://crm")).unwrap_err().to_string();
        assert!(error.contains("forms.contact.webhooks.0: url: must be an http(s) URL"), "{error}");
        let error = load_with(&WEBHOOK.replace("forms.contact.", "forms.Contact.")).unwrap_err().to_string();
        assert!(error.contains("forms.Contact: a form id"), "{error}");
        let error = load_with(&format!("[forms.contact]\nheading = \"Contact\"\n{WEBHOOK}")).unwrap_err().to_string();
        assert!(error.contains("forms.contact.heading: unknown key"), "{error}");

        // A webhook's key: `<form>.<name>`, else its place; two of one form cannot share one.
        let named = |name: &str| {
            WEBHOOK.replace("[[forms.contact.webhooks]]\n", &format!("[[forms.contact.webhooks]]\nname = \"{name}\"\n"))
        };
        let settings = load_with(&named("crm")).unwrap();
        assert_eq!(settings.webhooks().map(|(_, key, _)| key).collect::<Vec<_>>(), ["contact.crm"]);
        let error = load_with(&named("CRM ../x")).unwrap_err().to_string();
        assert!(error.contains("forms.contact.webhooks.0: name: 1 to 40 of a-z"), "{error}");
        let error = load_with(&format!("{}{}", named("crm"), named("crm"))).unwrap_err().to_string();
        assert!(error.contains("forms.contact.webhooks.1.name: another webhook of this form has it"), "{error}");
        let error = load_with(&format!("{}{}", named("1"), WEBHOOK)).unwrap_err().to_string();
        assert!(error.contains("forms.contact.webhooks.1.name"), "an unnamed second webhook is contact.1: {error}");
    }

    #[test]
    fn a_redis_backend_needs_a_redis_url_whose_password_is_never_shown() {
        let mut settings: Settings = Figment::new().merge(Toml::string(DEFAULT_TOML)).extract().unwrap();
        settings.limits.redis_url = "http://127.0.0.1:6379".to_owned();
        settings.validate().expect("the URL is not used with the memory backend");
        settings.limits.backend = LimitBackend::Redis;
        let error = settings.validate().unwrap_err().to_string();
        assert!(error.contains("limits.redis_url") && error.contains("redis://127.0.0.1:6379"), "{error}");
        settings.limits.redis_url = "redis://:hunter2-secret@10.0.0.7:6380/2".to_owned();
        settings.validate().unwrap();
        let shown = settings.redacted_toml();
        assert!(!shown.contains("hunter2-secret"), "{shown}");
        assert!(shown.contains("redis_url = \"redis://:redacted@10.0.0.7:6380/2\""), "{shown}");
    }

    #[test]
    fn the_commit_delay_is_bounded_at_10_ms() {
        let mut settings: Settings = Figment::new().merge(Toml::string(DEFAULT_TOML)).extract().unwrap();
        assert_eq!(settings.database.commit_delay_us, 1000);
        settings.database.commit_delay_us = 10_000;
        settings.validate().expect("10 ms is allowed");
        settings.database.commit_delay_us = 10_001;
        let error = settings.validate().expect_err("over 10 ms is refused").to_string();
        assert!(error.contains("database.commit_delay_us"), "{error}");
    }

    #[test]
    fn origins_must_be_bare() {
        assert!(is_origin("https://example.org"));
        assert!(is_origin("http://localhost:8080"));
        assert!(!is_origin("https://example.org/"));
        assert!(!is_origin("https://example.org/form"));
        assert!(!is_origin("example.org"));
    }

    #[test]
    fn public_url_gives_the_origin_browsers_send() {
        assert_eq!(origin_of("https://Forms.Example.org/contact/").as_deref(), Some("https://forms.example.org"));
        assert_eq!(origin_of("https://example.org:443").as_deref(), Some("https://example.org"));
        assert_eq!(origin_of("http://127.0.0.1:8080/").as_deref(), Some("http://127.0.0.1:8080"));
        assert_eq!(origin_of("https://example.org:8443?x").as_deref(), Some("https://example.org:8443"));
        assert_eq!(origin_of("https://user@example.org"), None);
        assert_eq!(origin_of("ftp://example.org"), None);
        assert_eq!(origin_of("https:///path"), None);
        assert_eq!(origin_of(""), None);
    }
}
