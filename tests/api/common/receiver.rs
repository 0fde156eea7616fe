//! A real HTTP receiver for webhook tests: a `TcpListener` on a random loopback
//! port, a thread per connection, every request recorded, each answer chosen by
//! the test (or never sent at all).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// Header names lower-cased.
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }
}

/// What the receiver does with a request.
#[derive(Debug, Clone)]
pub enum Answer {
    /// A status with extra headers and an empty body.
    Status(u16, Vec<(&'static str, String)>),
    /// Reads the request and then says nothing until the receiver is dropped.
    Silence,
}

impl Answer {
    pub fn status(code: u16) -> Self {
        Self::Status(code, Vec::new())
    }
}

pub struct Receiver {
    pub port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    stopped: Arc<AtomicBool>,
}

impl Receiver {
    /// Answers every request with `answer`.
    pub fn start(answer: Answer) -> Self {
        Self::start_with(move |_| answer.clone())
    }

    /// Answers each request with what `answer` decides for it.
    pub fn start_with(answer: impl Fn(&Received) -> Answer + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let stopped = Arc::new(AtomicBool::new(false));
        let answer = Arc::new(answer);
        let (log, stop) = (received.clone(), stopped.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (log, stop, answer) = (log.clone(), stop.clone(), answer.clone());
                std::thread::spawn(move || serve(stream, &log, &stop, answer.as_ref()));
            }
        });
        Self { port, received, stopped }
    }

    /// `http://127.0.0.1:{port}{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn requests(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// A loopback port with nothing listening on it (connections are refused).
pub fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn serve(stream: TcpStream, log: &Mutex<Vec<Received>>, stopped: &AtomicBool, answer: &dyn Fn(&Received) -> Answer) {
    let Some(request) = read_request(&stream) else { return };
    log.lock().unwrap().push(request.clone());
    match answer(&request) {
        Answer::Status(code, headers) => {
            let mut head = format!("HTTP/1.1 {code} Test\r\nContent-Length: 0\r\nConnection: close\r\n");
            for (name, value) in headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            let _ = (&stream).write_all(head.as_bytes());
        }
        Answer::Silence => {
            while !stopped.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

fn read_request(stream: &TcpStream) -> Option<Received> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut headers = HashMap::new();
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let Some((name, value)) = line.trim_end().split_once(':') else { break };
        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    let length = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Received { method, path, headers, body: String::from_utf8_lossy(&body).into_owned() })
}
