//! Test harness: runs the real `inquiryd` binary on port 0 with a temp
//! directory and a database of its own (SQLite, or PostgreSQL when
//! `INQUIRYD_TEST_DATABASE_URL` is set: see `database.rs`), and talks HTTP to it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

mod database;
pub mod pg;
pub mod receiver;
pub mod smtp;

use database::TestDatabase;
// Each test binary uses some of these (as with `dead_code` above).
#[allow(unused_imports)]
pub use database::{backend, is_postgres, now_ms, skip_unless_sqlite, Db, DATABASE_URL_VAR};

pub const BIN: &str = env!("CARGO_BIN_EXE_inquiryd");

/// For tests that kill -9 a process holding outbox claims: SQLite hands them
/// back when it starts again, PostgreSQL (where other replicas may be sending)
/// when their lease ends; the shortest lease keeps that within a test's wait.
pub const SHORT_LEASE: &str = "[mail]\nlease_seconds = 3";

/// A temp directory for the app's config and mail, and the database the config
/// names (on SQLite, a file in the directory). Both go when this is dropped.
pub struct Workdir {
    dir: TempDir,
    database: TestDatabase,
}

impl Workdir {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = TestDatabase::create(dir.path());
        Self { dir, database }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `inquiryd.toml`: the test defaults and this database, then `extra`.
    pub fn write_config(&self, extra: &str) {
        let mail = self.dir.path().join("mail");
        let config = format!(
            "[server]\nport = 0\n[database]\nurl = \"{}\"\n[mail]\nfile_dir = \"{}\"\n[log]\nlevel = \"info\"\n\
             [limits]\nper_ip_per_minute = 1000000\nper_ip_burst = 1000000\nper_email_per_hour = 1000000\n",
            self.database.url(),
            mail.display()
        );
        std::fs::write(self.dir.path().join("inquiryd.toml"), merge_toml(&config, extra)).unwrap();
    }

    /// A connection to the database, for assertions and set-up.
    pub fn db(&self) -> Db {
        self.database.db()
    }

    /// The SQLite database file, for tests of SQLite's own files (see
    /// `skip_unless_sqlite`).
    pub fn sqlite_file(&self) -> std::path::PathBuf {
        self.database.sqlite_file()
    }

    /// The database as the app's banner names it.
    pub fn database_name(&self) -> String {
        self.database.name()
    }
}

impl Default for Workdir {
    fn default() -> Self {
        Self::new()
    }
}

/// The server process, killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running server and the directory and database it works on. The process
/// is declared first, so it is gone before its database is dropped.
pub struct TestApp {
    child: Process,
    pub dir: Workdir,
    pub base: String,
    pub env: Vec<(String, String)>,
    logs: Arc<Mutex<String>>,
}

impl TestApp {
    /// Starts the server with the defaults plus `extra` TOML appended to its config.
    pub fn spawn(extra: &str) -> Self {
        Self::spawn_with_env(extra, &[])
    }

    pub fn spawn_with_env(extra: &str, env: &[(&str, &str)]) -> Self {
        let dir = Workdir::new();
        dir.write_config(extra);
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Self::start(dir, env)
    }

    /// Starts the server on a directory the test prepared (its config written).
    pub fn start_in(dir: Workdir) -> Self {
        Self::start(dir, Vec::new())
    }

    fn start(dir: Workdir, env: Vec<(String, String)>) -> Self {
        let mut child = command(dir.path(), &env)
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn inquiryd");
        let logs = Arc::new(Mutex::new(String::new()));
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        drain(stdout, logs.clone(), Some(tx));
        drain(stderr, logs.clone(), None);
        let address = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("inquiryd did not start:\n{}", logs.lock().unwrap()));
        Self { child: Process(child), dir, base: format!("http://{address}"), env, logs }
    }

    /// Stops the process the hard way (SIGKILL) and starts it again on the same
    /// files and database.
    pub fn kill_and_restart(mut self) -> Self {
        self.kill();
        let Self { dir, env, .. } = self;
        Self::start(dir, env)
    }

    /// The server's process id (to read its memory from `/proc`).
    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }

    /// A `multipart/form-data` POST of `parts`, with `headers`.
    pub fn post_multipart(&self, path: &str, parts: &[Part], headers: &[(&str, &str)]) -> Reply {
        let (content_type, body) = multipart(parts);
        let mut req = ureq::post(&self.url(path)).set("Content-Type", &content_type);
        for (k, v) in headers {
            req = req.set(k, v);
        }
        Reply::from(req.send_bytes(&body))
    }

    pub fn kill(&mut self) {
        let _ = self.child.0.kill();
        let _ = self.child.0.wait();
    }

    /// SIGTERM, then waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.terminate_within(Duration::from_secs(30))
    }

    /// SIGTERM, then waits for the exit status; fails the test if the process
    /// is still running after `limit`.
    pub fn terminate_within(&mut self, limit: Duration) -> std::process::ExitStatus {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.0.id().to_string()).status();
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.0.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "inquiryd did not exit within {limit:?} of SIGTERM:\n{}", self.logs());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the process (if still running) and starts it again on the same
    /// files and database with `extra` as its configuration instead.
    pub fn restart_with(mut self, extra: &str) -> Self {
        self.kill();
        let Self { dir, env, .. } = self;
        dir.write_config(extra);
        Self::start(dir, env)
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    /// A connection to the app's database, for assertions and set-up.
    pub fn db(&self) -> Db {
        self.dir.db()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn post_json(&self, path: &str, body: &Value) -> Reply {
        self.post(path, "application/json", &body.to_string(), &[])
    }

    pub fn post(&self, path: &str, content_type: &str, body: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req = ureq::post(&self.url(path)).set("Content-Type", content_type);
        for (k, v) in headers {
            req = req.set(k, v);
        }
        Reply::from(req.send_string(body))
    }

    pub fn get(&self, path: &str) -> Reply {
        Reply::from(ureq::get(&self.url(path)).call())
    }

    /// An admin API call with a bearer token (`None`: no Authorization header).
    pub fn admin(&self, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> Reply {
        let mut req = ureq::request(method, &self.url(&format!("/api/v1/admin{path}")));
        if let Some(token) = token {
            req = req.set("Authorization", &format!("Bearer {token}"));
        }
        Reply::from(match body {
            Some(body) => req.set("Content-Type", "application/json").send_string(&body.to_string()),
            None => req.call(),
        })
    }

    /// `inquiryd token create` against this app's database; returns the token.
    pub fn create_token(&self, scope: &str) -> String {
        let env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let out =
            run_cli(self.dir.path(), &env, &["token", "create", "--name", &format!("{scope} test"), "--scope", scope]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert_eq!(stdout.lines().count(), 1, "the token alone on stdout: {stdout:?}");
        stdout.trim().to_owned()
    }

    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        let env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        run_cli(self.dir.path(), &env, args)
    }

    /// The value of one Prometheus sample, by its full name with labels.
    pub fn metric(&self, sample: &str) -> f64 {
        let text = self.get("/metrics").body;
        text.lines()
            .find_map(|l| l.strip_prefix(sample).and_then(|rest| rest.trim().parse::<f64>().ok()))
            .unwrap_or(0.0)
    }
}

/// Runs `inquiryd ARGS` to completion in `dir` with the test config.
pub fn run_cli(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    command(dir, &env).args(args).output().expect("run inquiryd")
}

/// Appends `extra` to `base`, folding repeated `[section]` headers into one.
fn merge_toml(base: &str, extra: &str) -> String {
    let mut sections: Vec<(String, Vec<String>)> = Vec::new();
    for line in base.lines().chain(extra.lines()) {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with("[[") {
            // An array of tables: each header is an entry of its own.
            sections.push((line.to_owned(), Vec::new()));
        } else if line.starts_with('[') {
            if !sections.iter().any(|(name, _)| name == line) {
                sections.push((line.to_owned(), Vec::new()));
            }
            let index = sections.iter().position(|(name, _)| name == line).unwrap();
            let section = sections.remove(index);
            sections.push(section);
        } else {
            let lines = &mut sections.last_mut().expect("extra config starts with a [section]").1;
            let key = line.split('=').next().unwrap_or("").trim();
            lines.retain(|l| l.split('=').next().unwrap_or("").trim() != key);
            lines.push(line.to_owned());
        }
    }
    sections.into_iter().map(|(name, lines)| format!("{name}\n{}\n", lines.join("\n"))).collect()
}

fn command(dir: &Path, env: &[(String, String)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .env("INQUIRYD_CONFIG", dir.join("inquiryd.toml"))
        .env_remove("RUST_LOG")
        // The harness's own setting, not the app's (whose INQUIRYD_ keys refuse unknown names).
        .env_remove(DATABASE_URL_VAR)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    cmd
}

fn drain(stream: impl Read + Send + 'static, logs: Arc<Mutex<String>>, ready: Option<std::sync::mpsc::Sender<String>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if let Some(tx) = &ready {
                if let Some(address) = line.strip_prefix("inquiryd listening on http://") {
                    let _ = tx.send(address.trim().to_owned());
                }
            }
            let mut logs = logs.lock().unwrap();
            logs.push_str(&line);
            logs.push('\n');
        }
    });
}

/// An HTTP answer, whatever its status.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl Reply {
    pub fn from(result: Result<ureq::Response, ureq::Error>) -> Self {
        let response = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("request failed: {e}"),
        };
        let status = response.status();
        let headers = response
            .headers_names()
            .into_iter()
            .map(|n| (n.to_ascii_lowercase(), response.header(&n).unwrap_or_default().to_owned()))
            .collect();
        let body = response.into_string().unwrap_or_default();
        Self { status, headers, body }
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }

    /// `(field, code)` of every entry in a problem body's `errors`, in order.
    pub fn error_codes(&self) -> Vec<(String, String)> {
        self.json()["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| (e["field"].as_str().unwrap().to_owned(), e["code"].as_str().unwrap().to_owned()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The `field` of every entry in a problem body's `errors`.
    pub fn error_fields(&self) -> Vec<String> {
        self.json()["errors"]
            .as_array()
            .map(|a| a.iter().map(|e| e["field"].as_str().unwrap_or_default().to_owned()).collect())
            .unwrap_or_default()
    }
}

/// Polls `probe` every 25 ms until it returns `Some`, for up to 5 s; then fails
/// the test naming `what` was awaited.
pub fn eventually<T>(what: &str, probe: impl FnMut() -> Option<T>) -> T {
    eventually_within(what, Duration::from_secs(5), probe)
}

/// [`eventually`], for up to `within`.
pub fn eventually_within<T>(what: &str, within: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Two forms (SPEC "Forms"): the contact form from the global keys, for
/// `https://www.example.org`, and an event registration with a custom field of
/// every type, its own origin, inbox and a route by its `department` select.
pub const TWO_FORMS: &str = r#"
[server]
allowed_origins = ["https://www.example.org"]
[forms.contact]
title = "Contact us"
[forms.event]
title = "Event registration"
allowed_origins = ["https://events.example.org"]
to = ["events@example.org"]
success_url = "https://events.example.org/thanks"
categories = ["question", "other"]
optional = ["organization"]
required = ["organization"]
[forms.event.routes]
department = { press = ["press@example.org"] }
[[forms.event.fields]]
name = "event"
label = "Event"
labels = { ru = "Мероприятие", zh = "活动", kk = "Іс-шара" }
type = "select"
choices = ["Annual conference", "Fintech workshop"]
required = true
[[forms.event.fields]]
name = "department"
label = "Department"
label_ru = "Отдел"
label_zh = "部门"
type = "select"
choices = ["press", "research"]
[[forms.event.fields]]
name = "guests"
label = "Guests"
label_ru = "Гости"
label_zh = "来宾人数"
type = "number"
min = 0
max = 5
[[forms.event.fields]]
name = "arrival"
label = "Arrival"
label_ru = "Дата приезда"
label_zh = "到达日期"
type = "date"
min = "2026-01-01"
max = "2026-12-31"
[[forms.event.fields]]
name = "website"
label = "Website"
label_ru = "Сайт"
label_zh = "网站"
type = "url"
[[forms.event.fields]]
name = "assistant_email"
label = "Assistant's email"
label_ru = "Почта ассистента"
label_zh = "助理邮箱"
type = "email"
[[forms.event.fields]]
name = "dietary"
label = "Dietary needs"
label_ru = "Питание"
label_zh = "饮食要求"
type = "textarea"
max_length = 50
[[forms.event.fields]]
name = "badge_name"
label = "Badge name"
label_ru = "Имя на бейдже"
label_zh = "胸牌姓名"
type = "text"
max_length = 12
[[forms.event.fields]]
name = "photo_consent"
label = "Photos allowed"
label_ru = "Согласие на фото"
label_zh = "同意拍照"
type = "checkbox"
required = true
"#;

/// A valid registration for the `event` form of [`TWO_FORMS`].
pub fn event_registration() -> Value {
    serde_json::json!({
        "name": "Жанар Сейткали",
        "email": "zhanar@example.org",
        "subject": "Registration",
        "message": "Two of us will come.",
        "category": "question",
        "organization": "Алатау университеті",
        "event": "Fintech workshop",
        "guests": 2,
        "arrival": "2026-06-01",
        "website": "https://alatau.example.kz",
        "assistant_email": "office@alatau.example.kz",
        "dietary": "Vegetarian\nNo nuts",
        "badge_name": "Zhanar",
        "photo_consent": true,
    })
}

/// A valid submission with every kind of script the visitors write.
pub fn valid_submission() -> Value {
    serde_json::json!({
        "name": "Иван Петров",
        "email": "ivan@example.org",
        "subject": "关于合作的问题",
        "message": "Здравствуйте! 你好 👋🏽\nSecond line\twith a tab.",
        "category": "question",
        "organization": "Қазақ университеті",
        "country": "پاکستان",
        "phone": "+7 (701) 555-01.23",
        "page": "https://example.org/contact",
    })
}

/// A unique valid submission (different message each time: no double-click dedupe).
pub fn unique_submission(n: usize) -> Value {
    let mut v = valid_submission();
    v["message"] = Value::String(format!("Message number {n} ✓"));
    v
}

/// Sends one HTTP/1.1 request from a chosen loopback source address (ureq cannot
/// bind one): `127.0.0.2`, `127.0.0.3`… are distinct clients to the server.
pub fn request_from(source: &str, base: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    use std::io::Write;
    let server: std::net::SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let local: std::net::SocketAddr = format!("{source}:0").parse().unwrap();
    socket.bind(&local.into()).unwrap();
    socket.connect(&server.into()).unwrap();
    let mut stream: std::net::TcpStream = socket.into();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {server}\r\nConnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    parse_response(&raw)
}

/// Sends `request` byte for byte (the test writes every header, `Host` too) and
/// reads the answer until the server closes the connection.
pub fn raw_request(base: &str, request: &[u8]) -> Reply {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    stream.write_all(request).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Reply {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Reply { status, headers, body: body.to_owned() }
}

/// Percent-encodes a query or form value (space as `+`).
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The UTC date (`YYYY-MM-DD`) of a time in milliseconds since the epoch
/// (days to civil date, after Howard Hinnant's algorithm).
pub fn utc_date(ms: i64) -> String {
    let z = ms.div_euclid(86_400_000) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// One part of a `multipart/form-data` body: a text field, or a file (with
/// its name and declared type).
pub enum Part<'a> {
    Text(&'a str, &'a str),
    File { field: &'a str, name: &'a str, kind: &'a str, bytes: &'a [u8] },
}

pub const BOUNDARY: &str = "----inquiryd-test-boundary-7MA4YWxkTrZu0gW";

/// `(Content-Type, body)` of a multipart request made of `parts`.
pub fn multipart(parts: &[Part]) -> (String, Vec<u8>) {
    let mut body = Vec::new();
    for part in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        match part {
            Part::Text(name, value) => {
                body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes());
                body.extend_from_slice(value.as_bytes());
            }
            Part::File { field, name, kind, bytes } => {
                body.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\nContent-Type: {kind}\r\n\r\n"
                    )
                    .as_bytes(),
                );
                body.extend_from_slice(bytes);
            }
        }
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={BOUNDARY}"), body)
}
