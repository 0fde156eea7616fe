//! An open-loop load generator for `bench/run`: sends submissions at a fixed
//! rate, whatever the server's answers do, and measures each request's latency
//! from the moment it was *due* (so a stalled server is not hidden by requests
//! that were never sent: no coordinated omission).
//!
//! ```text
//! loadgen --addr 127.0.0.1:PORT --rate 2500 --seconds 10 [--connections 64] [--path /api/v1/inquiries]
//! ```
//!
//! Every request is a unique 1–5 KB Unicode submission with its own
//! `X-Forwarded-For` address. Prints one JSON object on stdout.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The sample phrases bodies are made of (shared with `bench/lua/submit.lua`;
/// lines keep their trailing spaces).
const PHRASES: &str = include_str!("../bench/phrases.txt");

struct Args {
    addr: String,
    path: String,
    rate: f64,
    seconds: f64,
    connections: usize,
}

fn args() -> Args {
    let mut args =
        Args { addr: String::new(), path: "/api/v1/inquiries".into(), rate: 1000.0, seconds: 10.0, connections: 64 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => args.addr = value,
            "--path" => args.path = value,
            "--rate" => args.rate = value.parse().expect("--rate"),
            "--seconds" => args.seconds = value.parse().expect("--seconds"),
            "--connections" => args.connections = value.parse().expect("--connections"),
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(!args.addr.is_empty(), "--addr is required");
    args
}

fn body(n: u64) -> String {
    let phrases: Vec<&str> = PHRASES.lines().collect();
    let mut seed = n.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let target = 1000 + (next() % 4000) as usize;
    let mut message = String::with_capacity(target + 64);
    while message.len() < target {
        message.push_str(phrases[(next() % phrases.len() as u64) as usize]);
    }
    format!(
        r#"{{"name":"Посетитель {n}","email":"visitor{n}@example.org","subject":"关于合作 {n}","message":"{message} {n}","category":"question"}}"#
    )
}

async fn send(stream: &mut TcpStream, request: &[u8], buffer: &mut Vec<u8>) -> std::io::Result<u16> {
    stream.write_all(request).await?;
    buffer.clear();
    let mut chunk = [0u8; 8192];
    loop {
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buffer.extend_from_slice(&chunk[..read]);
        let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
        let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buffer.len() < end + 4 + length {
            let read = stream.read(&mut chunk).await?;
            if read == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            buffer.extend_from_slice(&chunk[..read]);
        }
        return Ok(status);
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let args = Arc::new(args());
    let total = (args.rate * args.seconds) as u64;
    let interval = Duration::from_secs_f64(1.0 / args.rate);
    let next = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(total as usize)));
    let statuses = Arc::new(Mutex::new(BTreeMap::<u16, u64>::new()));
    let start = Instant::now() + Duration::from_millis(50);
    let mut tasks = Vec::new();
    for _ in 0..args.connections {
        let (args, next, latencies, statuses) = (args.clone(), next.clone(), latencies.clone(), statuses.clone());
        tasks.push(tokio::spawn(async move {
            let mut stream: Option<TcpStream> = None;
            let mut buffer = Vec::with_capacity(16 * 1024);
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    break;
                }
                let due = start + interval * n as u32;
                tokio::time::sleep_until(due.into()).await;
                let payload = body(n);
                let request = format!(
                    "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nX-Forwarded-For: 10.{}.{}.{}\r\nContent-Length: {}\r\n\r\n{}",
                    args.path,
                    args.addr,
                    (n >> 16) & 255,
                    (n >> 8) & 255,
                    n & 255,
                    payload.len(),
                    payload
                );
                let mut status = 0;
                for _ in 0..2 {
                    if stream.is_none() {
                        stream = TcpStream::connect(&args.addr).await.ok();
                        if let Some(s) = &stream {
                            let _ = s.set_nodelay(true);
                        }
                    }
                    let Some(s) = stream.as_mut() else { break };
                    match send(s, request.as_bytes(), &mut buffer).await {
                        Ok(code) => {
                            status = code;
                            break;
                        }
                        Err(_) => stream = None,
                    }
                }
                let latency = due.elapsed();
                latencies.lock().unwrap().push(latency.as_secs_f64() * 1000.0);
                *statuses.lock().unwrap().entry(status).or_default() += 1;
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut latencies = latencies.lock().unwrap().clone();
    latencies.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| {
        latencies.get(((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1)).copied().unwrap_or(0.0)
    };
    let statuses = statuses.lock().unwrap().clone();
    println!(
        "{{\"sent\":{},\"seconds\":{:.3},\"achieved_rps\":{:.1},\"p50_ms\":{:.3},\"p90_ms\":{:.3},\"p99_ms\":{:.3},\"max_ms\":{:.3},\"statuses\":{{{}}}}}",
        latencies.len(),
        elapsed,
        latencies.len() as f64 / elapsed,
        pct(0.50),
        pct(0.90),
        pct(0.99),
        latencies.last().copied().unwrap_or(0.0),
        statuses.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect::<Vec<_>>().join(",")
    );
}
