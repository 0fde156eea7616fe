//! A small, real SMTP server for integration tests and benchmarks.
//!
//! Built on `mailin-embedded` (blocking IO, one thread per session, OpenSSL
//! for STARTTLS).
//!
//! ```text
//! smtp_sink [--listen ADDR] [--dir DIR] [--count-file FILE]
//!           [--tls-cert PEM --tls-key PEM] [--user U --password P]
//!           [--reject-rcpt CODE] [--threads N]
//! ```
//!
//! Once the socket is bound, exactly one line is printed to stdout:
//! `smtp_sink listening on IP:PORT`. Connections are accepted from then on.
//!
//! With `--dir`, every accepted message `N` is stored as `NNNNNN.json`
//! (envelope: `{"from", "to", "auth_user", "size"}`) followed by
//! `NNNNNN.eml` (the DATA bytes after dot-unstuffing, CRLF line endings as
//! sent). Both are written to a hidden temporary file and renamed into place,
//! the `.eml` last, so a reader that sees `NNNNNN.eml` can trust both files.
//! Numbering starts after the highest number already present in DIR.
//!
//! With `--count-file`, FILE is written with `0` at startup (before the
//! listening line) and atomically rewritten, at most every 5 ms, with the
//! number of messages accepted by this process (decimal + newline).

use mailin_embedded::{response, AuthMechanism, Handler, Response, Server, SslConfig};
use serde::Serialize;
use std::fs;
use std::io::{self, Write};
use std::net::{IpAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const USAGE: &str = "\
usage: smtp_sink [options]
  --listen ADDR          address to bind (default 127.0.0.1:0)
  --dir DIR              store messages as DIR/NNNNNN.json + DIR/NNNNNN.eml
  --count-file FILE      rewrite FILE with the number of accepted messages
  --tls-cert PEM         enable STARTTLS with this certificate (needs --tls-key)
  --tls-key PEM          private key for --tls-cert
  --user U               require AUTH PLAIN/LOGIN as U (needs --password and TLS)
  --password P           password for --user
  --reject-rcpt CODE     answer every RCPT TO with CODE (e.g. 550 or 451)
  --threads N            worker threads = max concurrent sessions (default 16)
  --delay-ms N           wait N ms after each message's data before storing and answering it
  -h, --help             show this help";

#[derive(Debug)]
struct Args {
    listen: String,
    dir: Option<PathBuf>,
    count_file: Option<PathBuf>,
    tls: Option<(String, String)>,
    credentials: Option<(String, String)>,
    reject_rcpt: Option<u16>,
    threads: u32,
    delay_ms: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut listen = "127.0.0.1:0".to_string();
    let mut dir = None;
    let mut count_file = None;
    let mut tls_cert = None;
    let mut tls_key = None;
    let mut user = None;
    let mut password = None;
    let mut reject_rcpt = None;
    let mut threads = 16u32;
    let mut delay_ms = 0u64;

    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        // Accept both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = || match inline.clone().or_else(|| args.next()) {
            Some(v) => Ok(v),
            None => Err(format!("{flag} needs a value")),
        };
        match flag.as_str() {
            "--listen" => listen = value()?,
            "--dir" => dir = Some(PathBuf::from(value()?)),
            "--count-file" => count_file = Some(PathBuf::from(value()?)),
            "--tls-cert" => tls_cert = Some(value()?),
            "--tls-key" => tls_key = Some(value()?),
            "--user" => user = Some(value()?),
            "--password" => password = Some(value()?),
            "--reject-rcpt" => {
                let v = value()?;
                let code: u16 = v.parse().map_err(|_| format!("--reject-rcpt: invalid code {v:?}"))?;
                if !(400..=599).contains(&code) {
                    return Err(format!("--reject-rcpt: {code} is not a 4xx/5xx code"));
                }
                reject_rcpt = Some(code);
            }
            "--threads" => {
                let v = value()?;
                threads = v.parse().ok().filter(|n| *n > 0).ok_or_else(|| format!("--threads: invalid value {v:?}"))?;
            }
            "--delay-ms" => {
                let v = value()?;
                delay_ms = v.parse().map_err(|_| format!("--delay-ms: invalid value {v:?}"))?;
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }

    let tls = match (tls_cert, tls_key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => return Err("--tls-cert and --tls-key must be given together".into()),
    };
    let credentials = match (user, password) {
        (Some(u), Some(p)) => Some((u, p)),
        (None, None) => None,
        _ => return Err("--user and --password must be given together".into()),
    };
    if credentials.is_some() && tls.is_none() {
        // mailin only offers/accepts AUTH after STARTTLS; without TLS no
        // client could ever authenticate and every MAIL would be refused.
        return Err("--user/--password require --tls-cert/--tls-key (AUTH is TLS-only)".into());
    }
    Ok(Args { listen, dir, count_file, tls, credentials, reject_rcpt, threads, delay_ms })
}

/// State shared by all sessions.
struct Shared {
    dir: Option<PathBuf>,
    count_file: Option<PathBuf>,
    credentials: Option<(String, String)>,
    reject_rcpt: Option<u16>,
    /// A slow server: how long each message's end of data waits.
    delay: std::time::Duration,
    /// Next sequence number for files in `dir`.
    next_seq: Arc<AtomicU64>,
    /// Accepted messages (written to the count file every few milliseconds).
    accepted: Arc<AtomicU64>,
}

/// Cloned per connection by mailin-embedded: the non-`shared` fields are
/// per-session state.
#[derive(Clone)]
struct SinkHandler {
    shared: Arc<Shared>,
    auth_user: Option<String>,
    from: String,
    to: Vec<String>,
    data: Vec<u8>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    from: &'a str,
    to: &'a [String],
    auth_user: Option<&'a str>,
    size: usize,
}

impl SinkHandler {
    fn check_credentials(&mut self, user: &str, password: &str) -> Response {
        match &self.shared.credentials {
            Some((u, p)) if u == user && p == password => {
                self.auth_user = Some(user.to_string());
                response::AUTH_OK
            }
            _ => response::INVALID_CREDENTIALS,
        }
    }

    fn deliver(&mut self) -> io::Result<()> {
        let data = std::mem::take(&mut self.data);
        if let Some(dir) = &self.shared.dir {
            let seq = self.shared.next_seq.fetch_add(1, Ordering::SeqCst);
            let envelope =
                Envelope { from: &self.from, to: &self.to, auth_user: self.auth_user.as_deref(), size: data.len() };
            let mut json = serde_json::to_vec(&envelope)?;
            json.push(b'\n');
            write_atomic(&dir.join(format!("{seq:06}.json")), &json)?;
            write_atomic(&dir.join(format!("{seq:06}.eml")), &data)?;
        }
        self.shared.accepted.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

impl Handler for SinkHandler {
    fn mail(&mut self, _ip: IpAddr, _domain: &str, _from: &str) -> Response {
        // Note: with AUTH enabled, mailin's state machine itself answers MAIL
        // before a successful AUTH with "503 Bad sequence of commands" and
        // never calls this method; this check is only a safety net.
        if self.shared.credentials.is_some() && self.auth_user.is_none() {
            return Response::custom(530, "5.7.0 Authentication required".to_string());
        }
        self.from.clear();
        self.to.clear();
        self.data.clear();
        response::OK
    }

    fn rcpt(&mut self, _to: &str) -> Response {
        match self.shared.reject_rcpt {
            Some(code) if code >= 500 => Response::custom(code, "5.1.1 Recipient rejected by smtp_sink".to_string()),
            Some(code) => Response::custom(code, "4.3.0 Recipient temporarily rejected by smtp_sink".to_string()),
            None => response::OK,
        }
    }

    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.from = from.to_string();
        self.to = to.to_vec();
        self.data.clear();
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> io::Result<()> {
        // mailin passes each line (with its CRLF), already dot-unstuffed.
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        std::thread::sleep(self.shared.delay);
        match self.deliver() {
            Ok(()) => response::OK,
            Err(e) => {
                let _ = writeln!(io::stderr(), "smtp_sink: cannot store message: {e}");
                response::INTERNAL_ERROR
            }
        }
    }

    fn auth_plain(&mut self, authorization_id: &str, authentication_id: &str, password: &str) -> Response {
        if !authorization_id.is_empty() && authorization_id != authentication_id {
            return response::INVALID_CREDENTIALS;
        }
        self.check_credentials(authentication_id, password)
    }

    fn auth_login(&mut self, username: &str, password: &str) -> Response {
        self.check_credentials(username, password)
    }
}

/// Write `path` via a hidden temporary file in the same directory + rename.
fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let name = path.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    fs::write(&tmp, contents)?;
    fs::rename(&tmp, path)
}

/// First sequence number to use in `dir`: one past the highest `N.eml` /
/// `N.json` already there (1 for an empty directory).
fn first_free_seq(dir: &Path) -> io::Result<u64> {
    let mut max = 0u64;
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        let stem = name.strip_suffix(".eml").or_else(|| name.strip_suffix(".json"));
        if let Some(stem) = stem {
            if !stem.is_empty() && stem.bytes().all(|b| b.is_ascii_digit()) {
                if let Ok(n) = stem.parse::<u64>() {
                    max = max.max(n);
                }
            }
        }
    }
    Ok(max + 1)
}

fn run(args: Args) -> Result<(), String> {
    let next_seq = match &args.dir {
        Some(dir) => {
            fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            first_free_seq(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        }
        None => 1,
    };
    if let Some(file) = &args.count_file {
        write_atomic(file, b"0\n").map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    }
    let shared = Arc::new(Shared {
        dir: args.dir,
        count_file: args.count_file,
        credentials: args.credentials,
        reject_rcpt: args.reject_rcpt,
        delay: std::time::Duration::from_millis(args.delay_ms),
        next_seq: Arc::new(AtomicU64::new(next_seq)),
        accepted: Arc::new(AtomicU64::new(0)),
    });
    if let Some(file) = shared.count_file.clone() {
        // Rewriting the file for every message would cost the sink more than
        // receiving it (it shares the CPU with what it measures): every 5 ms
        // at most, and only when the count changed.
        let accepted = shared.accepted.clone();
        std::thread::spawn(move || {
            let mut written = 0;
            loop {
                std::thread::sleep(std::time::Duration::from_millis(5));
                let now = accepted.load(Ordering::SeqCst);
                if now != written && write_atomic(&file, format!("{now}\n").as_bytes()).is_ok() {
                    written = now;
                }
            }
        });
    }
    let auth_enabled = shared.credentials.is_some();
    let handler = SinkHandler { shared, auth_user: None, from: String::new(), to: Vec::new(), data: Vec::new() };

    let mut server = Server::new(handler);
    server.with_name("localhost").with_num_threads(args.threads);
    if let Some((cert_path, key_path)) = args.tls {
        server.with_ssl(SslConfig::SelfSigned { cert_path, key_path }).map_err(|e| format!("TLS setup failed: {e}"))?;
    }
    if auth_enabled {
        server.with_auth(AuthMechanism::Plain).with_auth(AuthMechanism::Login);
    }

    // std sets SO_REUSEADDR on Unix, so a restarted sink can rebind the same
    // port immediately even with connections in TIME_WAIT.
    let listener = TcpListener::bind(&args.listen).map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let local = listener.local_addr().map_err(|e| format!("local_addr: {e}"))?;
    server.with_tcp_listener(listener);

    let mut stdout = io::stdout().lock();
    writeln!(stdout, "smtp_sink listening on {local}")
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("cannot write to stdout: {e}"))?;
    drop(stdout);

    server.serve().map_err(|e| format!("server failed: {e}"))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            let _ = writeln!(io::stderr(), "smtp_sink: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(io::stderr(), "smtp_sink: {e}");
            ExitCode::FAILURE
        }
    }
}
