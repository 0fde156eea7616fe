//! Webhooks: the delivery client against a real HTTP receiver on a random port,
//! its signature checked by the Standard Webhooks reference crate, and the SSRF
//! rule after DNS resolution.

mod common;

use std::time::{Duration, Instant};

use common::receiver::{closed_port, Answer, Receiver};
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
