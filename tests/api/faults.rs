//! Quick fault tests (the long ones are `bench/faults`): crashes under load,
//! slow and endless clients. A held write lock is in `intake.rs`.

use crate::common;
use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::smtp::SmtpSink;
use crate::common::{unique_submission, TestApp};
use serde_json::Value;

const SUBMIT: &str = "/api/v1/inquiries";

/// Submits from `threads` threads until told to stop; returns every id answered 201.
fn load(url: String, threads: usize, offset: usize, stop: Arc<Mutex<bool>>) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (url, stop) = (url.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut ids = Vec::new();
                    for n in 0.. {
                        if *stop.lock().unwrap() {
                            break;
                        }
                        let body = unique_submission(offset + t * 1_000_000 + n).to_string();
                        let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(5)).build();
                        match agent.post(&url).set("Content-Type", "application/json").send_string(&body) {
                            Ok(r) if r.status() == 201 => {
                                ids.push(r.into_json::<Value>().unwrap()["id"].as_str().unwrap().to_owned())
                            }
                            _ => std::thread::sleep(Duration::from_millis(20)),
                        }
                    }
                    ids
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    })
}

#[test]
fn kill_9_under_load_loses_no_answered_submission_and_every_email_goes_out() {
    let sink = SmtpSink::start();
    let mut app = TestApp::spawn(&format!("{}\n{}", sink.config(), common::SHORT_LEASE));
    let mut answered = HashSet::new();
    for round in 0..3 {
        let stop = Arc::new(Mutex::new(false));
        let loader = load(app.url(SUBMIT), 4, round * 100_000, stop.clone());
        std::thread::sleep(Duration::from_millis(400));
        app = app.kill_and_restart(); // SIGKILL mid-load, then start again on the same files
        *stop.lock().unwrap() = true;
        answered.extend(loader.join().unwrap());
    }
    assert!(answered.len() > 50, "the load was real: {}", answered.len());
    let db = app.db();
    for id in &answered {
        assert_eq!(db.scalar("SELECT COUNT(*) FROM inquiries WHERE id = ?", id), 1, "{id} answered 201, then lost");
    }
    // Every answered inquiry's staff email arrives (at least once; a repeat keeps its Message-ID).
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut message_ids: std::collections::HashMap<String, HashSet<String>> = Default::default();
    while Instant::now() < deadline {
        message_ids.clear();
        for m in sink.messages() {
            message_ids.entry(m.header("X-Inquiry-Id").unwrap()).or_default().insert(m.header("Message-ID").unwrap());
        }
        if answered.iter().all(|id| message_ids.contains_key(id)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for id in &answered {
        let ids = message_ids.get(id).unwrap_or_else(|| panic!("no staff email for {id}"));
        assert_eq!(ids.len(), 1, "duplicates of {id} carry the same Message-ID");
    }
}

fn raw(app: &TestApp) -> TcpStream {
    let stream = TcpStream::connect(app.base.trim_start_matches("http://")).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    stream
}

#[test]
fn slow_and_endless_clients_are_cut_off_while_others_are_served() {
    let app = TestApp::spawn("[server]\nclient_timeout_seconds = 2\nbody_limit_bytes = 4096");
    // Twenty clients trickle their headers, twenty their bodies.
    let mut slow_heads: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut s = raw(&app);
            s.write_all(b"POST /api/v1/inquiries HTTP/1.1\r\nHost: x\r\n").unwrap();
            s
        })
        .collect();
    let mut slow_bodies: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut s = raw(&app);
            s.write_all(b"POST /api/v1/inquiries HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"na")
                .unwrap();
            s
        })
        .collect();
    // Meanwhile an ordinary visitor is served at once.
    let started = Instant::now();
    assert_eq!(app.post_json(SUBMIT, &unique_submission(1)).status, 201);
    assert!(started.elapsed() < Duration::from_secs(2), "served while the slow clients wait");

    let body_answer = {
        let mut answer = String::new();
        let _ = slow_bodies[0].read_to_string(&mut answer);
        answer
    };
    assert!(body_answer.starts_with("HTTP/1.1 408"), "a trickled body gets 408: {body_answer:?}");
    assert!(body_answer.contains("application/problem+json"));
    let mut head = Vec::new();
    let _ = slow_heads[0].read_to_end(&mut head);
    let head = String::from_utf8_lossy(&head);
    assert!(head.is_empty() || head.starts_with("HTTP/1.1 408"), "a trickled head is dropped: {head:?}");
    slow_heads.clear();
    slow_bodies.clear();

    // An endless chunked body is refused at the limit, not read forever.
    let mut endless = raw(&app);
    endless
        .write_all(b"POST /api/v1/inquiries HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        .unwrap();
    let chunk = format!("{:x}\r\n{}\r\n", 1024, "a".repeat(1024));
    let mut refused = false;
    for _ in 0..64 {
        if endless.write_all(chunk.as_bytes()).is_err() {
            refused = true;
            break;
        }
    }
    let mut answer = String::new();
    let _ = endless.read_to_string(&mut answer);
    assert!(refused || answer.starts_with("HTTP/1.1 413"), "{answer:?}");
    assert_eq!(app.db().scalar("SELECT COUNT(*) FROM inquiries", ""), 1);
}
