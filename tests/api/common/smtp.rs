//! A real SMTP server for the tests: `examples/smtp_sink.rs` (mailin-embedded),
//! run as its own process so that it can be stopped and started again.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub const TLS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls");

/// One message as the sink received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    pub auth_user: Option<String>,
    pub raw: Vec<u8>,
}

impl Received {
    pub fn parsed(&self) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default().parse(&self.raw).expect("a parseable message")
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.parsed().header(name).and_then(|v| v.as_text()).map(str::to_owned)
    }
}

pub struct SmtpSink {
    pub port: u16,
    pub dir: TempDir,
    args: Vec<String>,
    child: Option<Child>,
}

impl SmtpSink {
    /// A plain sink (no TLS, no AUTH).
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// A sink offering STARTTLS with the test CA's certificate and requiring AUTH.
    pub fn start_secure(user: &str, password: &str) -> Self {
        let cert = format!("{TLS_DIR}/server.pem");
        let key = format!("{TLS_DIR}/server-key.pem");
        Self::start_with(&["--tls-cert", &cert, "--tls-key", &key, "--user", user, "--password", password])
    }

    pub fn start_with(args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = Self { port: 0, dir, args: args.iter().map(|s| s.to_string()).collect(), child: None };
        sink.launch("127.0.0.1:0");
        sink
    }

    fn launch(&mut self, listen: &str) {
        let mut child = Command::new(binary())
            .arg("--listen")
            .arg(listen)
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start smtp_sink");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let address = line.trim().strip_prefix("smtp_sink listening on ").unwrap_or_else(|| panic!("{line}"));
        self.port = address.rsplit(':').next().unwrap().parse().unwrap();
        self.child = Some(child);
    }

    /// The server goes away: connections are refused until [`SmtpSink::resume`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The server hangs: the kernel still accepts connections, nobody greets
    /// them, until [`SmtpSink::thaw`].
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, which: &str) {
        let pid = self.child.as_ref().expect("the sink runs").id().to_string();
        assert!(Command::new("kill").args([which, &pid]).status().unwrap().success());
    }

    pub fn resume(&mut self) {
        let listen = format!("127.0.0.1:{}", self.port);
        self.launch(&listen);
    }

    /// The TOML that points inquiryd at this sink.
    pub fn config(&self) -> String {
        format!(
            "[mail]\ntransport = \"smtp\"\nretry_base_seconds = 1\n[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\ntimeout_seconds = 5\n",
            self.port
        )
    }

    pub fn messages(&self) -> Vec<Received> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        names.sort();
        names.iter().map(|eml| read(eml)).collect()
    }

    /// Waits up to `within` for at least `count` messages.
    pub fn wait_for(&self, count: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let messages = self.messages();
            if messages.len() >= count || Instant::now() > deadline {
                return messages;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

fn read(eml: &Path) -> Received {
    let envelope: serde_json::Value =
        serde_json::from_slice(&std::fs::read(eml.with_extension("json")).unwrap()).unwrap();
    Received {
        from: envelope["from"].as_str().unwrap_or_default().to_owned(),
        to: envelope["to"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect(),
        auth_user: envelope["auth_user"].as_str().map(str::to_owned),
        raw: std::fs::read(eml).unwrap(),
    }
}

/// `target/<profile>/examples/smtp_sink`, built on demand when a single test
/// binary runs without the examples.
fn binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().parent().unwrap().join("examples").join("smtp_sink");
    if !path.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--example", "smtp_sink"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(status.success(), "cannot build the smtp_sink example");
    }
    path
}
