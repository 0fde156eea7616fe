//! Where composed messages go: an SMTP relay, `.eml` files, or the log.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
use lettre::{Address, Message};
use secrecy::ExposeSecret;
use tokio::net::TcpStream;

use crate::config::{MailSettings, MailTransportKind, SmtpSettings, SmtpTls};

/// Idle pooled connections older than this are closed rather than reused.
const MAX_IDLE: Duration = Duration::from_secs(30);

/// A failed delivery attempt, sorted by whether trying again can help.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{detail}")]
pub struct SendError {
    /// The server refused the message itself (5xx): retrying will not help.
    pub permanent: bool,
    pub detail: String,
}

impl SendError {
    fn transient(detail: impl Into<String>) -> Self {
        Self { permanent: false, detail: detail.into() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot read smtp.ca_file {0}")]
    CaFile(String, #[source] std::io::Error),
    #[error("invalid TLS settings")]
    Tls(#[from] lettre::transport::smtp::Error),
}

pub enum Transport {
    Smtp(SmtpPool),
    /// One `.eml` file per message, named after the inquiry so erasure finds it.
    File(PathBuf),
    Log,
}

impl Transport {
    /// Built once at start-up and shared by every delivery.
    pub fn from_settings(mail: &MailSettings, smtp: &SmtpSettings) -> Result<Self, TransportError> {
        Ok(match mail.transport {
            MailTransportKind::Smtp => Self::Smtp(SmtpPool::new(smtp)?),
            MailTransportKind::File => Self::File(mail.file_dir.clone()),
            MailTransportKind::Log => Self::Log,
        })
    }

    /// Delivers one message; `name` identifies it in files and logs.
    pub async fn send(&self, message: &Message, name: &str) -> Result<String, SendError> {
        match self {
            Self::Smtp(pool) => pool.send(message).await,
            Self::File(dir) => write_file(dir, name, &message.formatted()).await,
            Self::Log => {
                // The message itself is personal data: only its name and size are logged.
                let bytes = message.formatted().len();
                tracing::info!(message = name, bytes, "mail transport is log: message not sent");
                Ok("logged".to_owned())
            }
        }
    }
}

async fn write_file(dir: &std::path::Path, name: &str, raw: &[u8]) -> Result<String, SendError> {
    let io = |e: std::io::Error| SendError::transient(format!("cannot write to the mail directory: {e}"));
    tokio::fs::create_dir_all(dir).await.map_err(io)?;
    let path = dir.join(format!("{name}.eml"));
    let partial = dir.join(format!(".{name}.eml.partial"));
    tokio::fs::write(&partial, raw).await.map_err(io)?;
    tokio::fs::rename(&partial, &path).await.map_err(io)?;
    Ok(format!("written to {}", path.display()))
}

/// A small pool of SMTP connections with `TCP_NODELAY` set (`smtp.tcp_nodelay`):
/// lettre's own pool leaves Nagle's algorithm on, and its last small write of
/// every message then waits for the server's delayed ACK (~40 ms), capping a
/// connection at ~23 messages per second.
///
/// Plain and STARTTLS connections are opened here and get the option; implicit-TLS
/// connections (`smtp.tls = "tls"`) are opened by lettre, whose API offers no way to
/// set it or to hand it a socket for implicit TLS, so they keep Nagle's algorithm.
pub struct SmtpPool {
    host: String,
    port: u16,
    tls: SmtpTls,
    tls_parameters: Option<TlsParameters>,
    credentials: Option<Credentials>,
    timeout: Duration,
    hello: ClientId,
    max_idle: usize,
    nodelay: bool,
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
}

impl SmtpPool {
    fn new(smtp: &SmtpSettings) -> Result<Self, TransportError> {
        let tls_parameters = match smtp.tls {
            SmtpTls::None => None,
            SmtpTls::Starttls | SmtpTls::Tls => {
                let mut builder = TlsParameters::builder(smtp.host.clone());
                if !smtp.ca_file.as_os_str().is_empty() {
                    let pem = std::fs::read(&smtp.ca_file)
                        .map_err(|e| TransportError::CaFile(smtp.ca_file.display().to_string(), e))?;
                    builder = builder.add_root_certificate(Certificate::from_pem(&pem)?);
                }
                Some(builder.build_rustls()?)
            }
        };
        let credentials = (!smtp.username.is_empty())
            .then(|| Credentials::new(smtp.username.clone(), smtp.password.expose_secret().to_owned()));
        Ok(Self {
            host: smtp.host.clone(),
            port: smtp.port,
            tls: smtp.tls,
            tls_parameters,
            credentials,
            timeout: Duration::from_secs(smtp.timeout_seconds.max(1)),
            hello: ClientId::default(),
            max_idle: smtp.pool_size as usize,
            nodelay: smtp.tcp_nodelay,
            idle: Mutex::new(Vec::new()),
        })
    }

    async fn send(&self, message: &Message) -> Result<String, SendError> {
        let raw = message.formatted();
        if let Some(mut conn) = self.take_idle() {
            match self.transmit(&mut conn, message, &raw).await {
                Ok(response) => {
                    self.put_back(conn);
                    return Ok(response);
                }
                // The server may have closed an idle connection: one fresh try.
                Err(e) if !e.permanent => conn.abort().await,
                Err(e) => {
                    conn.abort().await;
                    return Err(e);
                }
            }
        }
        let mut conn = self.connect().await?;
        match self.transmit(&mut conn, message, &raw).await {
            Ok(response) => {
                self.put_back(conn);
                Ok(response)
            }
            Err(e) => {
                conn.abort().await;
                Err(e)
            }
        }
    }

    async fn transmit(
        &self,
        conn: &mut AsyncSmtpConnection,
        message: &Message,
        raw: &[u8],
    ) -> Result<String, SendError> {
        match tokio::time::timeout(self.timeout, transaction(conn, message.envelope(), raw)).await {
            Ok(result) => result.map(|response| describe(&response)),
            Err(_) => Err(SendError::transient(format!("no answer within {} s", self.timeout.as_secs()))),
        }
    }

    /// Connects, upgrades to TLS as configured and authenticates. Every failure
    /// here is transient: it says nothing about the message.
    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let fail = |stage: &str, e: &dyn std::fmt::Display| SendError::transient(format!("{stage}: {e}"));
        let connecting = async {
            let mut conn = match (&self.tls, &self.tls_parameters) {
                (SmtpTls::Tls, Some(params)) => AsyncSmtpConnection::connect_tokio1(
                    (self.host.as_str(), self.port),
                    Some(self.timeout),
                    &self.hello,
                    Some(params.clone()),
                    None,
                )
                .await
                .map_err(|e| fail("connect", &describe_error(&e)))?,
                _ => {
                    let stream =
                        TcpStream::connect((self.host.as_str(), self.port)).await.map_err(|e| fail("connect", &e))?;
                    stream.set_nodelay(self.nodelay).map_err(|e| fail("connect", &e))?;
                    let mut conn = AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello)
                        .await
                        .map_err(|e| fail("greeting", &describe_error(&e)))?;
                    if let (SmtpTls::Starttls, Some(params)) = (&self.tls, &self.tls_parameters) {
                        conn.starttls(params.clone(), &self.hello)
                            .await
                            .map_err(|e| fail("STARTTLS", &describe_error(&e)))?;
                    }
                    conn
                }
            };
            if let Some(credentials) = &self.credentials {
                conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                    .await
                    .map_err(|e| fail("AUTH", &describe_error(&e)))?;
            }
            Ok(conn)
        };
        tokio::time::timeout(self.timeout, connecting).await.unwrap_or_else(|_| {
            Err(SendError::transient(format!("connect: no answer within {} s", self.timeout.as_secs())))
        })
    }

    fn take_idle(&self) -> Option<AsyncSmtpConnection> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some((conn, since)) = idle.pop() {
            if since.elapsed() < MAX_IDLE {
                return Some(conn);
            }
        }
        None
    }

    fn put_back(&self, conn: AsyncSmtpConnection) {
        if conn.has_broken() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.max_idle {
            idle.push((conn, Instant::now()));
        }
    }
}

/// One mail transaction: MAIL, RCPT, DATA, then the message with its final
/// dot in a single write (lettre's `send` writes the dot apart, and every
/// write to a socket costs a system call and a segment for the server to wake
/// up to). The MAIL parameters are the ones lettre's `send` would give.
async fn transaction(conn: &mut AsyncSmtpConnection, envelope: &Envelope, raw: &[u8]) -> Result<Response, SendError> {
    let refused =
        |e: lettre::transport::smtp::Error| SendError { permanent: e.is_permanent(), detail: describe_error(&e) };
    let mut parameters = Vec::new();
    let non_ascii = |address: &Address| !AsRef::<str>::as_ref(address).is_ascii();
    if envelope.from().is_some_and(non_ascii) || envelope.to().iter().any(non_ascii) {
        if !conn.server_info().supports_feature(Extension::SmtpUtfEight) {
            return Err(SendError { permanent: true, detail: "the server does not take non-ASCII addresses".into() });
        }
        parameters.push(MailParameter::SmtpUtfEight);
    }
    if !raw.is_ascii() {
        if !conn.server_info().supports_feature(Extension::EightBitMime) {
            return Err(SendError { permanent: true, detail: "the server does not take 8-bit messages".into() });
        }
        parameters.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    conn.command(Mail::new(envelope.from().cloned(), parameters)).await.map_err(refused)?;
    for recipient in envelope.to() {
        conn.command(Rcpt::new(recipient.clone(), Vec::new())).await.map_err(refused)?;
    }
    conn.command(Data).await.map_err(refused)?;
    match std::str::from_utf8(raw) {
        Ok(text) => conn.command(Content(text)).await,
        Err(_) => conn.message(raw).await,
    }
    .map_err(refused)
}

/// A message's content as DATA sends it: every line starting with a dot gets a
/// second one, and the content ends with `CRLF . CRLF` (RFC 5321, 4.5.2).
struct Content<'a>(&'a str);

impl std::fmt::Display for Content<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = self.0;
        if text.starts_with('.') {
            f.write_str(".")?;
        }
        // Each match is ASCII, so every cut falls between two characters.
        let mut start = 0;
        for at in memchr::memmem::find_iter(text.as_bytes(), b"\r\n.") {
            f.write_str(&text[start..at + 2])?;
            f.write_str(".")?;
            start = at + 2;
        }
        f.write_str(&text[start..])?;
        f.write_str("\r\n.\r\n")
    }
}

fn describe(response: &Response) -> String {
    let text: Vec<&str> = response.message().collect();
    format!("{} {}", response.code(), text.join(" "))
}

fn describe_error(e: &lettre::transport::smtp::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::Content;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the message holds, DATA ends only at its own final dot, and
        /// the server's un-stuffing (RFC 5321, 4.5.2) gives the message back.
        #[test]
        fn data_ends_only_at_its_own_dot(text in "([.\r\n]|\r\n\\.|a|я|合){0,60}") {
            let sent = Content(&text).to_string();
            prop_assert!(sent.ends_with("\r\n.\r\n"));
            let body = &sent[..sent.len() - "\r\n.\r\n".len()];
            prop_assert!(!body.contains("\r\n.\r\n") && !body.starts_with(".\r\n"), "{:?}", sent);
            let unstuffed: Vec<&str> =
                body.split("\r\n").map(|line| line.strip_prefix('.').unwrap_or(line)).collect();
            prop_assert_eq!(unstuffed.join("\r\n"), text);
        }
    }

    #[test]
    fn content_doubles_leading_dots_and_ends_with_a_lone_dot() {
        let sent = Content(".first\r\nmiddle . dot\r\n.\r\n..two\r\nlast\r\n").to_string();
        assert_eq!(sent, "..first\r\nmiddle . dot\r\n..\r\n...two\r\nlast\r\n\r\n.\r\n");
        assert_eq!(Content("no newline").to_string(), "no newline\r\n.\r\n");
        assert_eq!(Content("Привет\r\n.точка\r\n关于.\r\n").to_string(), "Привет\r\n..точка\r\n关于.\r\n\r\n.\r\n");
    }
}
