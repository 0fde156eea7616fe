//! Webhooks: the delivery client against a real HTTP receiver on a random port,
//! its signature checked by the Standard Webhooks reference crate, and the SSRF
//! rule after DNS resolution.

use crate::common;
use std::time::{Duration, Instant};

use crate::common::receiver::{closed_port, Answer, Receiver};
use inquiryd::webhooks::{Event, EventType, Format, Message, Outcome, WebhookClient, WebhookSettings, WebhookTarget};
use serde_json::{json, Value};

const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

fn client(allow_private_targets: bool, timeout_seconds: u64) -> WebhookClient {
    WebhookClient::new(&WebhookSettings { allow_private_targets, timeout_seconds })
}

/// Tests reach their loopback receiver only with private targets allowed.
fn open_client() -> WebhookClient {
    client(true, 5)
}

fn target(url: &str) -> WebhookTarget {
    WebhookTarget {
        name: None,
        url: url.to_owned(),
        secret: SECRET.parse().unwrap(),
        events: vec![EventType::Created],
        include_spam: false,
        format: Format::Json,
    }
}

fn inquiry() -> Value {
    json!({
        "id": "0190a8a0-0000-7000-8000-000000000001",
        "received_at": "2026-11-18T11:06:40.100Z",
        "status": "new",
        "category": "question",
        "name": "Иван Петров",
        "email": "ivan@example.org",
        "subject": "关于合作的问题",
        "message": "Здравствуйте! 你好 👋🏽",
        "spam_flags": [],
    })
}

fn message(id: &str) -> Message {
    let inquiry = inquiry();
    let event = Event { kind: EventType::Created, at_ms: 1_795_000_000_100, inquiry: &inquiry };
    Message { id: id.to_owned(), body: event.body(Format::Json, "") }
}

fn http_headers(received: &common::receiver::Received) -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    for (name, value) in &received.headers {
        headers.insert(http::HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
    }
    headers
}

#[tokio::test]
async fn a_delivery_carries_the_event_and_headers_that_the_reference_library_verifies() {
    let receiver = Receiver::start(Answer::status(204));
    let sent = message("msg_2tGjYbT1QnkYx");
    let outcome = open_client().deliver(&target(&receiver.url("/hooks?x=1")), &sent).await;
    assert_eq!(outcome, Outcome::Delivered(204));

    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    let got = &requests[0];
    assert_eq!((got.method.as_str(), got.path.as_str()), ("POST", "/hooks?x=1"));
    assert_eq!(got.header("content-type"), Some("application/json"));
    assert_eq!(got.header("webhook-id"), Some("msg_2tGjYbT1QnkYx"));
    let timestamp: i64 = got.header("webhook-timestamp").unwrap().parse().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!((now - timestamp).abs() <= 5, "timestamp {timestamp}, now {now}");
    assert_eq!(got.body, sent.body);
    let body: Value = serde_json::from_str(&got.body).unwrap();
    assert_eq!(body["type"], "inquiry.created");
    assert_eq!(body["timestamp"], "2026-11-18T11:06:40.100Z");
    assert_eq!(body["data"], inquiry());

    // Someone else's implementation checks our signature.
    let verifier = standardwebhooks::Webhook::new(SECRET).unwrap();
    verifier.verify(got.body.as_bytes(), &http_headers(got)).expect("the reference library accepts the signature");
    let tampered = got.body.replace("Иван", "Ivan");
    assert!(verifier.verify(tampered.as_bytes(), &http_headers(got)).is_err());
    let expected = verifier.sign("msg_2tGjYbT1QnkYx", timestamp, got.body.as_bytes()).unwrap();
    assert_eq!(got.header("webhook-signature"), Some(expected.as_str()));
}

#[tokio::test]
async fn the_webhook_id_is_kept_and_the_signature_renewed_on_every_attempt() {
    let receiver = Receiver::start(Answer::status(500));
    let sent = message("msg_same_every_time");
    let client = open_client();
    for _ in 0..2 {
        client.deliver(&target(&receiver.url("/")), &sent).await;
    }
    let verifier = standardwebhooks::Webhook::new(SECRET).unwrap();
    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    for got in &requests {
        assert_eq!(got.header("webhook-id"), Some("msg_same_every_time"));
        verifier.verify(got.body.as_bytes(), &http_headers(got)).unwrap();
    }
}

#[tokio::test]
async fn a_server_error_is_retried() {
    let receiver = Receiver::start(Answer::status(500));
    let outcome = open_client().deliver(&target(&receiver.url("/")), &message("msg_1")).await;
    assert!(matches!(&outcome, Outcome::Retry { error, after: None } if error.contains("500")), "{outcome:?}");
}

#[tokio::test]
async fn too_many_requests_is_retried_after_the_receivers_retry_after() {
    let receiver = Receiver::start(Answer::Status(429, vec![("Retry-After", "7".to_owned())]));
    let outcome = open_client().deliver(&target(&receiver.url("/")), &message("msg_1")).await;
    assert!(
        matches!(&outcome, Outcome::Retry { error, after: Some(after) } if error.contains("429") && *after == Duration::from_secs(7)),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn gone_fails_at_once() {
    let receiver = Receiver::start(Answer::status(410));
    let outcome = open_client().deliver(&target(&receiver.url("/")), &message("msg_1")).await;
    assert!(matches!(&outcome, Outcome::Failed(error) if error.contains("410")), "{outcome:?}");
}

#[tokio::test]
async fn a_redirect_fails_and_is_not_followed() {
    let elsewhere = Receiver::start(Answer::status(200));
    let receiver = Receiver::start(Answer::Status(302, vec![("Location", elsewhere.url("/moved"))]));
    let outcome = open_client().deliver(&target(&receiver.url("/")), &message("msg_1")).await;
    assert!(matches!(&outcome, Outcome::Failed(error) if error.contains("redirect")), "{outcome:?}");
    assert_eq!(receiver.requests().len(), 1);
    assert!(elsewhere.requests().is_empty(), "the redirect was followed");
}

#[tokio::test]
async fn a_receiver_that_never_answers_is_retried_after_the_timeout() {
    let receiver = Receiver::start(Answer::Silence);
    let started = Instant::now();
    let outcome = client(true, 1).deliver(&target(&receiver.url("/")), &message("msg_1")).await;
    let took = started.elapsed();
    assert!(matches!(&outcome, Outcome::Retry { error, after: None } if error.contains("1 s")), "{outcome:?}");
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(4), "{took:?}");
    assert_eq!(receiver.requests().len(), 1, "the request reached the receiver");
}

#[tokio::test]
async fn a_refused_connection_is_retried() {
    let url = format!("http://127.0.0.1:{}/", closed_port());
    let outcome = open_client().deliver(&target(&url), &message("msg_1")).await;
    assert!(matches!(&outcome, Outcome::Retry { error, .. } if error.contains("connect")), "{outcome:?}");
}

#[tokio::test]
async fn errors_show_neither_the_secret_nor_the_url() {
    let url = format!("http://127.0.0.1:{}/services/T000/B000/XXXXsecretpath", closed_port());
    let refused = open_client().deliver(&target(&url), &message("msg_1")).await;
    let denied = client(false, 1).deliver(&target(&url), &message("msg_1")).await;
    for outcome in [refused, denied] {
        let text = format!("{outcome:?}");
        assert!(!text.contains("XXXXsecretpath") && !text.contains(&SECRET[6..]), "{text}");
    }
}

/// Loopback receivers, by address and by name: refused without private targets,
/// and nothing reaches them; with them allowed, the same request is delivered.
#[tokio::test]
async fn loopback_receivers_are_refused_after_resolution_unless_allowed() {
    let receiver = Receiver::start(Answer::status(200));
    let port = receiver.port;
    let urls = [
        format!("http://127.0.0.1:{port}/"),
        format!("http://localhost:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        format!("http://[::1]:{port}/"),
    ];
    let guarded = client(false, 2);
    for url in &urls {
        let outcome = guarded.deliver(&target(url), &message("msg_1")).await;
        assert!(
            matches!(&outcome, Outcome::Failed(error) if error.contains("loopback") && error.contains("allow_private_targets")),
            "{url}: {outcome:?}"
        );
    }
    assert!(receiver.requests().is_empty(), "a refused target was reached");

    let outcome = open_client().deliver(&target(&urls[1]), &message("msg_1")).await;
    assert_eq!(outcome, Outcome::Delivered(200));
    assert_eq!(receiver.requests().len(), 1);
}

/// Addresses no test may ever send to: refused before any connection is tried.
#[tokio::test]
async fn private_link_local_and_metadata_receivers_are_refused() {
    let guarded = client(false, 1);
    let cases = [
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://[fd00:ec2::254]/", "metadata"),
        ("http://10.0.0.1/", "private"),
        ("http://192.168.1.1:8080/", "private"),
        ("http://100.64.0.1/", "CGNAT"),
        ("http://[fe80::1]/", "link-local"),
        ("http://[fd12::1]/", "unique local"),
    ];
    for (url, why) in cases {
        let started = Instant::now();
        let outcome = guarded.deliver(&target(url), &message("msg_1")).await;
        assert!(matches!(&outcome, Outcome::Failed(error) if error.contains(why)), "{url}: {outcome:?}");
        assert!(started.elapsed() < Duration::from_millis(500), "{url}: a connection was tried");
    }
}

#[tokio::test]
async fn slack_messages_are_delivered_as_text() {
    let receiver = Receiver::start(Answer::status(200));
    let inquiry = inquiry();
    let event = Event { kind: EventType::Created, at_ms: 0, inquiry: &inquiry };
    let mut slack = target(&receiver.url("/hooks/slack"));
    slack.format = Format::Slack;
    let sent = Message { id: "msg_1".to_owned(), body: event.body(slack.format, "https://forms.example.org") };
    assert_eq!(open_client().deliver(&slack, &sent).await, Outcome::Delivered(200));
    let body: Value = serde_json::from_str(&receiver.requests()[0].body).unwrap();
    let text = body["text"].as_str().unwrap();
    assert!(
        text.contains("关于合作的问题") && text.contains("Иван Петров") && text.contains("ivan@example.org"),
        "{text}"
    );
    assert!(
        text.contains("<https://forms.example.org/admin/inquiries/0190a8a0-0000-7000-8000-000000000001|"),
        "{text}"
    );
}

// ---------------------------------------------------------------------------
// The service end to end: events queued in the outbox with the change that
// makes them, delivered by the worker to a real receiver, shown to admins.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::common::receiver::Received;
use crate::common::{unique_submission, TestApp};

/// Loopback receivers allowed, quick retries and leases.
const QUICK: &str = "[webhooks]\nallow_private_targets = true\ntimeout_seconds = 2\n\
                     [mail]\nretry_base_seconds = 1\nlease_seconds = 3\nmax_attempts = 20";

fn hook(name: &str, url: &str, events: &str, extra: &str) -> String {
    format!(
        "[[forms.contact.webhooks]]\nname = \"{name}\"\nurl = \"{url}\"\nsecret = \"{SECRET}\"\nevents = [{events}]\n{extra}\n"
    )
}

const ALL_EVENTS: &str = r#""inquiry.created", "inquiry.updated", "inquiry.erased""#;

/// Waits up to `seconds` for `probe`.
fn within<T>(seconds: u64, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(Instant::now() < deadline, "{what}: not within {seconds} s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn submit(app: &TestApp, body: &Value) -> String {
    let reply = app.post_json("/api/v1/inquiries", body);
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.json()["id"].as_str().unwrap().to_owned()
}

fn verified(received: &Received) -> Value {
    let verifier = standardwebhooks::Webhook::new(SECRET).unwrap();
    verifier.verify(received.body.as_bytes(), &http_headers(received)).expect("signature verifies");
    serde_json::from_str(&received.body).unwrap()
}

fn webhook_deliveries(app: &TestApp, token: &str, id: &str) -> Vec<Value> {
    let reply = app.admin("GET", &format!("/inquiries/{id}"), Some(token), None);
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()["deliveries"].as_array().unwrap().iter().filter(|d| d["channel"] == "webhook").cloned().collect()
}

#[test]
fn a_new_inquiry_reaches_the_receiver_signed_and_admins_see_the_delivery() {
    let receiver = Receiver::start(Answer::status(204));
    let app = TestApp::spawn(&format!("{QUICK}\n{}", hook("crm", &receiver.url("/hooks"), ALL_EVENTS, "")));
    let id = submit(&app, &unique_submission(1));

    let received = within(10, "the event", || receiver.requests().into_iter().next());
    assert_eq!(received.path, "/hooks");
    let event = verified(&received);
    assert_eq!(event["type"], "inquiry.created");
    assert_eq!(event["data"]["id"], id.as_str());
    assert_eq!(event["data"]["name"], "Иван Петров");
    assert_eq!(event["data"]["subject"], "关于合作的问题");
    assert!(received.header("webhook-id").unwrap().starts_with("msg_"));

    let token = app.create_token("read");
    let deliveries = within(10, "the delivery settled", || {
        let d = webhook_deliveries(&app, &token, &id);
        (d.len() == 1 && d[0]["status"] == "sent").then_some(d)
    });
    assert_eq!(deliveries[0]["id"], received.header("webhook-id").unwrap());
    assert_eq!(deliveries[0]["kind"], "inquiry.created");
    assert_eq!(deliveries[0]["target"], "contact.crm");
    assert_eq!(deliveries[0]["attempts"][0]["outcome"], "sent");
    assert_eq!(deliveries[0]["attempts"][0]["detail"], "HTTP 204");
    // The staff email is a delivery of the same inquiry too.
    let all = app.admin("GET", &format!("/inquiries/{id}"), Some(&token), None).json();
    assert!(all["deliveries"].as_array().unwrap().iter().any(|d| d["channel"] == "email" && d["kind"] == "staff"));
    assert_eq!(app.metric("inquiryd_notifications_sent_total{kind=\"webhook\"}"), 1.0);
}

#[test]
fn a_receiver_down_for_a_while_then_up_gets_every_event_once_in_order() {
    let up = Arc::new(AtomicBool::new(false));
    let accepted: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let (is_up, log) = (up.clone(), accepted.clone());
    let receiver = Receiver::start_with(move |r| {
        if !is_up.load(Ordering::SeqCst) {
            return Answer::status(503);
        }
        log.lock().unwrap().push((r.header("webhook-id").unwrap().to_owned(), verified(r)));
        Answer::status(200)
    });
    let app = TestApp::spawn(&format!("{QUICK}\n{}", hook("crm", &receiver.url("/"), ALL_EVENTS, "")));
    let token = app.create_token("write");
    let ids: Vec<String> = (0..3).map(|n| submit(&app, &unique_submission(n))).collect();
    for id in &ids {
        let change = json!({"status": "in_progress", "note": "called back"});
        let reply = app.admin("PATCH", &format!("/inquiries/{id}"), Some(&token), Some(&change));
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let reply = app.admin("DELETE", &format!("/inquiries/{}", ids[2]), Some(&token), None);
    assert_eq!(reply.status, 204);
    within(10, "failed attempts while the receiver is down", || (receiver.requests().len() >= 3).then_some(()));
    up.store(true, Ordering::SeqCst);

    // Two inquiries: created then updated. The erased one: its earlier events
    // were withdrawn with its data; only inquiry.erased goes out.
    let accepted = within(30, "every event after the receiver came back", || {
        let got = accepted.lock().unwrap().clone();
        (got.len() >= 5).then_some(got)
    });
    std::thread::sleep(Duration::from_secs(2));
    let accepted_now = receiver.requests().len();
    let log = accepted.clone();
    let mut by_inquiry: HashMap<String, Vec<String>> = HashMap::new();
    for (_, event) in &log {
        let inquiry = event["data"]["id"].as_str().unwrap().to_owned();
        by_inquiry.entry(inquiry).or_default().push(event["type"].as_str().unwrap().to_owned());
    }
    assert_eq!(by_inquiry[&ids[0]], ["inquiry.created", "inquiry.updated"], "{log:?}");
    assert_eq!(by_inquiry[&ids[1]], ["inquiry.created", "inquiry.updated"], "{log:?}");
    assert_eq!(by_inquiry[&ids[2]], ["inquiry.erased"], "{log:?}");
    let updated = log.iter().find(|(_, e)| e["type"] == "inquiry.updated").unwrap();
    assert_eq!(updated.1["data"]["status"], "in_progress");
    let erased = log.iter().find(|(_, e)| e["type"] == "inquiry.erased").unwrap();
    assert_eq!(erased.1["data"], json!({"id": ids[2]}), "an erasure sends the id alone");
    let mut webhook_ids: Vec<&str> = log.iter().map(|(id, _)| id.as_str()).collect();
    webhook_ids.sort();
    webhook_ids.dedup();
    assert_eq!(webhook_ids.len(), 5, "each event delivered once: {log:?}");
    assert!(receiver.requests().len() == accepted_now, "nothing more arrives once all is delivered");
}

#[test]
fn a_server_error_is_retried_and_a_gone_receiver_fails_visibly_until_retried_or_replayed() {
    let first_try: Arc<Mutex<HashMap<String, bool>>> = Arc::default();
    let gone = Arc::new(AtomicBool::new(true));
    let (seen, is_gone) = (first_try.clone(), gone.clone());
    let receiver = Receiver::start_with(move |r| {
        let id = r.header("webhook-id").unwrap_or_default().to_owned();
        match r.path.as_str() {
            // 500 on each event's first attempt, then 200.
            "/flaky" if seen.lock().unwrap().insert(id, true).is_none() => Answer::status(500),
            "/flaky" => Answer::status(200),
            _ if is_gone.load(Ordering::SeqCst) => Answer::status(410),
            _ => Answer::status(200),
        }
    });
    let config = format!(
        "{QUICK}\n{}{}",
        hook("flaky", &receiver.url("/flaky"), r#""inquiry.created""#, ""),
        hook("gone", &receiver.url("/gone"), r#""inquiry.created""#, "")
    );
    let app = TestApp::spawn(&config);
    let token = app.create_token("write");
    let first = submit(&app, &unique_submission(1));
    let second = submit(&app, &unique_submission(2));

    let settled = |id: &str| {
        within(15, "both webhooks settled", || {
            let d = webhook_deliveries(&app, &token, id);
            d.iter().all(|d| d["status"] == "sent" || d["status"] == "failed").then_some(d)
        })
    };
    let deliveries = settled(&first);
    let flaky = deliveries.iter().find(|d| d["target"] == "contact.flaky").unwrap();
    assert_eq!(flaky["status"], "sent");
    let outcomes: Vec<&str> =
        flaky["attempts"].as_array().unwrap().iter().map(|a| a["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["retry", "sent"]);
    assert_eq!(flaky["attempts"][0]["detail"], "the receiver answered 500");
    let failed = deliveries.iter().find(|d| d["target"] == "contact.gone").unwrap();
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["attempts"].as_array().unwrap().len(), 1, "a 410 is not retried");
    assert!(failed["last_error"].as_str().unwrap().contains("410"), "{failed}");
    assert_eq!(settled(&second).iter().filter(|d| d["status"] == "failed").count(), 1);

    // The receiver is fixed: one delivery retried by hand, the rest replayed.
    gone.store(false, Ordering::SeqCst);
    let reply =
        app.admin("POST", &format!("/notifications/{}/retry", failed["id"].as_str().unwrap()), Some(&token), None);
    assert_eq!(reply.status, 202, "{}", reply.body);
    let path = "/webhooks/contact.gone/replay";
    let reply = app.admin("POST", path, Some(&token), Some(&json!({"since": "2000-01-01T00:00:00Z"})));
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.json()["requeued"], 1, "the one not retried by hand");
    for id in [&first, &second] {
        within(15, "the failed deliveries delivered", || {
            webhook_deliveries(&app, &token, id).iter().all(|d| d["status"] == "sent").then_some(())
        });
    }
    let sent = flaky["id"].as_str().unwrap();
    let reply = app.admin("POST", &format!("/notifications/{sent}/retry"), Some(&token), None);
    assert_eq!(reply.status, 409, "only a failed delivery can be retried: {}", reply.body);
    let reply = app.admin("POST", "/notifications/msg_nothing/retry", Some(&token), None);
    assert_eq!(reply.status, 404);
    let reply = app.admin(
        "POST",
        "/webhooks/contact.nothing/replay",
        Some(&token),
        Some(&json!({"since": "2000-01-01T00:00:00Z"})),
    );
    assert_eq!(reply.status, 404);
    let reply = app.admin("POST", path, Some(&token), Some(&json!({"since": "yesterday"})));
    assert_eq!(reply.status, 422);
    let audit = app.admin("GET", "/audit", Some(&token), None).json();
    assert!(audit["items"].as_array().unwrap().iter().any(|e| e["action"] == "webhook.replay"), "{audit}");
}

#[test]
fn a_delivery_cut_by_kill_9_is_made_after_restart_with_the_same_webhook_id() {
    let calls = Arc::new(Mutex::new(0));
    let count = calls.clone();
    let receiver = Receiver::start_with(move |_| {
        let mut n = count.lock().unwrap();
        *n += 1;
        // The first attempt never gets an answer: the service dies waiting.
        if *n == 1 {
            Answer::Silence
        } else {
            Answer::status(200)
        }
    });
    let quick = QUICK.replace("timeout_seconds = 2", "timeout_seconds = 30");
    let app = TestApp::spawn(&format!("{quick}\n{}", hook("crm", &receiver.url("/"), ALL_EVENTS, "")));
    let id = submit(&app, &unique_submission(1));
    within(10, "the first attempt", || (!receiver.requests().is_empty()).then_some(()));
    let app = app.kill_and_restart();

    let requests = within(20, "the attempt after restart", || {
        let r = receiver.requests();
        (r.len() >= 2).then_some(r)
    });
    assert_eq!(requests[0].header("webhook-id"), requests[1].header("webhook-id"), "the same event id");
    assert_eq!(verified(&requests[1])["data"]["id"], id.as_str());
    let token = app.create_token("read");
    within(10, "recorded as sent", || {
        webhook_deliveries(&app, &token, &id).iter().all(|d| d["status"] == "sent").then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(receiver.requests().len(), 2, "delivered once after the restart");
}

#[test]
fn spam_goes_only_to_webhooks_that_include_it() {
    let receiver = Receiver::start(Answer::status(200));
    let config = format!(
        "{QUICK}\n[spam]\nblocked_words = [\"crypto casino\"]\n{}{}",
        hook("clean", &receiver.url("/clean"), r#""inquiry.created""#, ""),
        hook("everything", &receiver.url("/everything"), r#""inquiry.created""#, "include_spam = true")
    );
    let app = TestApp::spawn(&config);
    let mut spam = unique_submission(1);
    spam["message"] = json!("Win big at the crypto casino today");
    let spam_id = submit(&app, &spam);
    let ham_id = submit(&app, &unique_submission(2));
    let requests = within(10, "three events", || {
        let r = receiver.requests();
        (r.len() >= 3).then_some(r)
    });
    std::thread::sleep(Duration::from_millis(500));
    let seen: Vec<(String, String)> = receiver
        .requests()
        .iter()
        .map(|r| (r.path.clone(), verified(r)["data"]["id"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(seen.len(), 3, "{requests:?}");
    assert!(seen.contains(&("/everything".into(), spam_id.clone())));
    assert!(seen.contains(&("/everything".into(), ham_id.clone())));
    assert!(seen.contains(&("/clean".into(), ham_id)));
    assert!(!seen.contains(&("/clean".into(), spam_id)));
}

#[test]
fn a_loopback_receiver_is_refused_unless_private_targets_are_allowed() {
    let receiver = Receiver::start(Answer::status(200));
    let config =
        format!("[mail]\nretry_base_seconds = 1\n{}", hook("crm", &receiver.url("/"), r#""inquiry.created""#, ""));
    let app = TestApp::spawn(&config);
    let id = submit(&app, &unique_submission(1));
    let token = app.create_token("read");
    let delivery = within(10, "the refusal", || {
        webhook_deliveries(&app, &token, &id).into_iter().find(|d| d["status"] == "failed")
    });
    let error = delivery["last_error"].as_str().unwrap();
    assert!(error.contains("127.0.0.1") && error.contains("allow_private_targets"), "{error}");
    assert!(receiver.requests().is_empty(), "nothing reached the receiver");
}

#[test]
fn an_erasure_withdraws_the_events_that_held_the_inquiry() {
    let receiver = Receiver::start(Answer::status(200));
    let app = TestApp::spawn(&format!("{QUICK}\n{}", hook("crm", &receiver.url("/"), ALL_EVENTS, "")));
    let mut body = unique_submission(1);
    body["email"] = json!("erase.me.webhook@example.org");
    let id = submit(&app, &body);
    within(10, "the created event", || (!receiver.requests().is_empty()).then_some(()));
    let token = app.create_token("write");
    let reply = app.admin("POST", "/erasures", Some(&token), Some(&json!({"email": "erase.me.webhook@example.org"})));
    assert_eq!(reply.json()["erased"], 1);
    let erased = within(10, "the erased event", || {
        receiver.requests().into_iter().map(|r| verified(&r)).find(|e| e["type"] == "inquiry.erased")
    });
    assert_eq!(erased["data"], json!({"id": id}));
    let db = app.db();
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM webhook_deliveries WHERE inquiry_id = ? AND event <> 'inquiry.erased'", &id),
        0
    );
    // SQLite: no byte of the address left in the files; PostgreSQL: in no row.
    assert_eq!(db.find_stored("erase.me.webhook@example.org"), None);
}

#[test]
fn a_receivers_retry_after_is_waited_for_before_the_next_attempt() {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let log = calls.clone();
    let receiver = Receiver::start_with(move |_| {
        let mut calls = log.lock().unwrap();
        calls.push(Instant::now());
        if calls.len() == 1 {
            Answer::Status(429, vec![("Retry-After", "3".to_owned())])
        } else {
            Answer::status(200)
        }
    });
    // The backoff alone would try again within a second.
    let app = TestApp::spawn(&format!("{QUICK}\n{}", hook("crm", &receiver.url("/"), ALL_EVENTS, "")));
    submit(&app, &unique_submission(1));
    let calls = within(15, "the second attempt", || {
        let c = calls.lock().unwrap().clone();
        (c.len() >= 2).then_some(c)
    });
    let waited = calls[1] - calls[0];
    assert!(waited >= Duration::from_millis(2900), "retried after {waited:?}, before the receiver's 3 s");
}

/// Each form's webhooks get that form's inquiries (with `form` and `fields` in
/// the event), never another form's.
#[test]
fn each_forms_webhooks_get_that_forms_inquiries() {
    let receiver = Receiver::start(Answer::status(204));
    let event_hook = hook("crm", &receiver.url("/event"), r#""inquiry.created""#, "")
        .replace("[[forms.contact.webhooks]]", "[[forms.event.webhooks]]");
    let config = format!(
        "{QUICK}\n{}\n{}{event_hook}",
        common::TWO_FORMS,
        hook("crm", &receiver.url("/contact"), r#""inquiry.created""#, "")
    );
    let app = TestApp::spawn(&config);
    let contact = submit(&app, &unique_submission(1));
    let reply = app.post_json("/api/v1/forms/event/inquiries", &common::event_registration());
    assert_eq!(reply.status, 201, "{}", reply.body);
    let event = reply.json()["id"].as_str().unwrap().to_owned();
    within(10, "two events", || (receiver.requests().len() >= 2).then_some(()));
    std::thread::sleep(Duration::from_millis(300));
    let seen: Vec<(String, Value)> =
        receiver.requests().iter().map(|r| (r.path.clone(), verified(r)["data"].clone())).collect();
    assert_eq!(seen.len(), 2, "{seen:?}");
    let at = |path: &str| seen.iter().find(|(p, _)| p == path).map(|(_, data)| data.clone()).unwrap();
    assert_eq!(at("/contact")["id"], contact.as_str());
    assert_eq!(at("/event")["id"], event.as_str());
    assert_eq!(at("/event")["form"], "event");
    assert_eq!(at("/event")["fields"]["event"], "Fintech workshop");
}
