//! Test harness: runs the real `inquiryd` binary on port 0 with a temp SQLite
//! file, and talks HTTP to it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

pub mod pg;
pub mod receiver;
pub mod smtp;

pub const BIN: &str = env!("CARGO_BIN_EXE_inquiryd");

/// A running server and the directory that holds its database and mail.
pub struct TestApp {
    pub dir: TempDir,
    pub base: String,
    pub env: Vec<(String, String)>,
    child: Child,
    logs: Arc<Mutex<String>>,
}

impl TestApp {
    /// Starts the server with the defaults plus `extra` TOML appended to its config.
    pub fn spawn(extra: &str) -> Self {
        Self::spawn_with_env(extra, &[])
    }

    pub fn spawn_with_env(extra: &str, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        write_config(dir.path(), extra);
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Self::start(dir, env)
    }

    fn start(dir: TempDir, env: Vec<(String, String)>) -> Self {
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
        Self { dir, base: format!("http://{address}"), env, child, logs }
    }

    /// Stops the process the hard way (SIGKILL) and starts it again on the same files.
    pub fn kill_and_restart(mut self) -> Self {
        self.kill();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        let env = std::mem::take(&mut self.env);
        Self::start(dir, env)
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.terminate_within(Duration::from_secs(30))
    }

    /// SIGTERM, then waits for the exit status; fails the test if the process
    /// is still running after `limit`.
    pub fn terminate_within(&mut self, limit: Duration) -> std::process::ExitStatus {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "inquiryd did not exit within {limit:?} of SIGTERM:\n{}", self.logs());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the process (if still running) and starts it again on the same
    /// files with `extra` as its configuration instead.
    pub fn restart_with(mut self, extra: &str) -> Self {
        self.kill();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        let env = std::mem::take(&mut self.env);
        write_config(dir.path(), extra);
        Self::start(dir, env)
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("inquiries.db")
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

impl Drop for TestApp {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `inquiryd ARGS` to completion in `dir` with the test config.
pub fn run_cli(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    command(dir, &env).args(args).output().expect("run inquiryd")
}

pub fn write_config(dir: &Path, extra: &str) {
    let db = dir.join("inquiries.db");
    let mail = dir.join("mail");
    let config = format!(
        "[server]\nport = 0\n[database]\nurl = \"sqlite://{}\"\n[mail]\nfile_dir = \"{}\"\n[log]\nlevel = \"info\"\n\
         [limits]\nper_ip_per_minute = 1000000\nper_ip_burst = 1000000\nper_email_per_hour = 1000000\n",
        db.display(),
        mail.display()
    );
    std::fs::write(dir.join("inquiryd.toml"), merge_toml(&config, extra)).unwrap();
}

/// Appends `extra` to `base`, folding repeated `[section]` headers into one.
fn merge_toml(base: &str, extra: &str) -> String {
    let mut sections: Vec<(String, Vec<String>)> = Vec::new();
    for line in base.lines().chain(extra.lines()) {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with('[') {
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

/// Opens the test database for assertions, read-only, with a private runtime.
pub struct Db {
    runtime: tokio::runtime::Runtime,
    pool: sqlx::SqlitePool,
}

impl Db {
    pub fn open(path: &Path) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let pool = runtime.block_on(async {
            let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path).read_only(true);
            sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).connect_with(options).await.unwrap()
        });
        Self { runtime, pool }
    }

    /// Runs a write on a separate, writable connection (to set up a scenario).
    pub fn write(path: &Path, sql: &str) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            use sqlx::Connection;
            let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path).busy_timeout(Duration::from_secs(5));
            let mut conn = sqlx::SqliteConnection::connect_with(&options).await.unwrap();
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        });
    }

    pub fn scalar(&self, sql: &str, bind: &str) -> i64 {
        self.runtime.block_on(async {
            let q = sqlx::query_scalar::<_, i64>(sql);
            let q = if sql.contains('?') { q.bind(bind) } else { q };
            q.fetch_one(&self.pool).await.unwrap()
        })
    }

    /// One row as column name → text (NULL as None), or None when absent.
    pub fn row(&self, sql: &str, bind: &str) -> Option<HashMap<String, Option<String>>> {
        use sqlx::{Column, Row, TypeInfo, ValueRef};
        self.runtime.block_on(async {
            let row = sqlx::query(sql).bind(bind).fetch_optional(&self.pool).await.unwrap()?;
            let mut map = HashMap::new();
            for (i, column) in row.columns().iter().enumerate() {
                let raw = row.try_get_raw(i).unwrap();
                let value = if raw.is_null() {
                    None
                } else {
                    match raw.type_info().name() {
                        "INTEGER" => Some(row.get::<i64, _>(i).to_string()),
                        "BLOB" => Some(format!("{:?}", row.get::<Vec<u8>, _>(i))),
                        _ => Some(row.get::<String, _>(i)),
                    }
                };
                map.insert(column.name().to_owned(), value);
            }
            Some(map)
        })
    }
}

/// A valid submission with every kind of script the visitors write.
/// Polls `probe` every 25 ms until it returns `Some`, for up to 5 s; then fails
/// the test naming `what` was awaited.
pub fn eventually<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(Instant::now() < deadline, "{what}: not within 5 s");
        std::thread::sleep(Duration::from_millis(25));
    }
}

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
