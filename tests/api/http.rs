//! The HTTP rules that hold on every route: one decoded path for routing, CORS
//! and auth; 405 with `Allow`; HEAD wherever GET; problem+json for every error;
//! the service's own origin from `server.public_url`; `Expect: 100-continue`.

use crate::common;
use std::io::{Read, Write};
use std::time::Duration;

use crate::common::{raw_request, unique_submission, valid_submission, Reply, TestApp};
use serde_json::json;

const FOREIGN: &str = "https://evil.example";
const ALLOWED: &str = "http://localhost:8080";

/// Every spelling of `path` a client might try: each character percent-encoded
/// alone (upper and lower hex), all of them, `%2F` for a slash, double encoding,
/// a trailing slash, `.` and `..` segments and doubled slashes.
fn spellings(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = path.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        let (head, tail) = (&path[..i], &path[i + 1..]);
        out.push(format!("{head}%{b:02X}{tail}"));
        out.push(format!("{head}%{b:02x}{tail}"));
        out.push(format!("{head}%25{b:02X}{tail}"));
    }
    out.push(bytes.iter().map(|b| if *b == b'/' { "/".to_owned() } else { format!("%{b:02X}") }).collect());
    out.push(bytes.iter().map(|b| format!("%{b:02x}")).collect());
    let last = path.rfind('/').unwrap();
    out.push(format!("{}/{}", &path[..last], &path[last + 1..]).replacen('/', "//", 1));
    out.push(format!("{path}/"));
    out.push(format!("{path}%2F"));
    out.push(format!("{}/./{}", &path[..last], &path[last + 1..]));
    out.push(format!("{}/x/../{}", &path[..last], &path[last + 1..]));
    out.push(format!("{}/x/%2E%2E/{}", &path[..last], &path[last + 1..]));
    out.push(format!("{path};"));
    out.push(format!("{path}?"));
    out
}

/// How many of [`spellings`] decode to the path itself: each character but `/`
/// encoded alone in upper and lower hex, and the two fully encoded forms.
fn decoded_spellings(path: &str) -> usize {
    2 * path.chars().filter(|c| *c != '/').count() + 2
}

fn post_raw(app: &TestApp, path: &str, origin: &str, n: usize) -> Reply {
    let body = unique_submission(n).to_string();
    let host = app.base.trim_start_matches("http://");
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\nContent-Type: application/json\r\n\
         Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    raw_request(&app.base, request.as_bytes())
}

fn get_raw(app: &TestApp, path: &str, token: Option<&str>) -> Reply {
    let host = app.base.trim_start_matches("http://");
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n");
    raw_request(&app.base, request.as_bytes())
}

#[test]
fn every_spelling_of_the_submission_path_gets_the_same_origin_check() {
    let app = TestApp::spawn("[limits]\nper_email_per_hour = 1000000\n");
    let db = app.db();
    let mut routed = 0;
    for (n, path) in spellings("/api/v1/inquiries").into_iter().enumerate() {
        let before = db.scalar("SELECT count(*) FROM inquiries", "");
        let foreign = post_raw(&app, &path, FOREIGN, 2 * n);
        assert_eq!(db.scalar("SELECT count(*) FROM inquiries", ""), before, "{path}: stored");
        let allowed = post_raw(&app, &path, ALLOWED, 2 * n + 1);
        match (foreign.status, allowed.status) {
            (403, 201) => routed += 1,
            (404, 404) => assert_eq!(foreign.header("content-type"), Some("application/problem+json"), "{path}"),
            // Not a request target at all (`%2Fapi/...`): refused before routing.
            (400, 400) => {
                assert!(!path.starts_with('/'), "{path}");
                assert_eq!(foreign.header("content-type"), Some("application/problem+json"), "{path}");
            }
            other => panic!("{path}: foreign origin and allowed origin answered {other:?}"),
        }
    }
    // The router decodes encoded characters other than `/`: those spellings are the route.
    assert!(routed >= decoded_spellings("/api/v1/inquiries"), "only {routed} spellings were routed");
    // A cross-site form post (no preflight) to an encoded path is refused too.
    let form = "POST /api/v1/inquirie%73 HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\n\
                Content-Type: application/x-www-form-urlencoded\r\nConnection: close\r\nContent-Length: 7\r\n\r\nname=Ab";
    assert_eq!(raw_request(&app.base, form.as_bytes()).status, 403);
}

#[test]
fn every_spelling_of_an_admin_path_needs_the_token() {
    let app = TestApp::spawn("");
    let token = app.create_token("read");
    for target in ["/api/v1/admin/inquiries", "/api/v1/admin/stats"] {
        let mut routed = 0;
        for path in spellings(target) {
            let anonymous = get_raw(&app, &path, None);
            let with_token = get_raw(&app, &path, Some(&token));
            match (anonymous.status, with_token.status) {
                (401, 200) => routed += 1,
                // Under the admin scope but no such route: the token is checked first.
                (401, 404) | (404, 404) => {}
                (400, 400) => assert!(!path.starts_with('/'), "{path}"),
                other => panic!("{path}: without and with a token answered {other:?}"),
            }
        }
        assert!(routed >= decoded_spellings(target), "{target}: only {routed} spellings were routed");
    }
}

/// Every route and the methods it serves (admin calls with a write token; the
/// console on).
const ROUTES: [(&str, &[&str]); 37] = [
    ("/", &["GET", "HEAD"]),
    ("/event-registration", &["GET", "HEAD"]),
    ("/internship", &["GET", "HEAD"]),
    ("/healthz", &["GET", "HEAD"]),
    ("/readyz", &["GET", "HEAD"]),
    ("/metrics", &["GET", "HEAD"]),
    ("/thanks", &["GET", "HEAD"]),
    ("/api/v1/openapi.json", &["GET", "HEAD"]),
    ("/api/v1/inquiries", &["POST"]),
    ("/api/v1/admin/inquiries", &["GET", "HEAD"]),
    ("/api/v1/admin/inquiries/export?format=csv", &["GET", "HEAD"]),
    ("/api/v1/admin/inquiries/01ARZ3NDEKTSV4RRFFQ69G5FAV", &["GET", "HEAD", "PATCH", "DELETE"]),
    ("/api/v1/admin/inquiries/01ARZ3NDEKTSV4RRFFQ69G5FAV/files/0123", &["GET", "HEAD"]),
    ("/api/v1/admin/stats", &["GET", "HEAD"]),
    ("/api/v1/admin/notifications/01ARZ3NDEKTSV4RRFFQ69G5FAV/retry", &["POST"]),
    ("/api/v1/admin/erasures", &["POST"]),
    ("/api/v1/admin/webhooks/contact.0/replay", &["POST"]),
    ("/api/v1/admin/audit", &["GET", "HEAD"]),
    ("/admin", &["GET", "HEAD"]),
    ("/admin/login", &["GET", "HEAD", "POST"]),
    ("/admin/logout", &["POST"]),
    ("/admin/inquiries/01ARZ3NDEKTSV4RRFFQ69G5FAV", &["GET", "HEAD"]),
    ("/admin/inquiries/01ARZ3NDEKTSV4RRFFQ69G5FAV/files/0123", &["GET", "HEAD"]),
    ("/admin/inquiries/01ARZ3NDEKTSV4RRFFQ69G5FAV/status", &["POST"]),
    ("/admin/inquiries/01ARZ3NDEKTSV4RRFFQ69G5FAV/triage", &["POST"]),
    ("/admin/inquiries/01ARZ3NDEKTSV4RRFFQ69G5FAV/not-spam", &["POST"]),
    ("/admin/inquiries/01ARZ3NDEKTSV4RRFFQ69G5FAV/erase", &["GET", "HEAD", "POST"]),
    ("/admin/deliveries/01ARZ3NDEKTSV4RRFFQ69G5FAV/retry", &["POST"]),
    ("/admin/dashboard", &["GET", "HEAD"]),
    ("/admin/export?format=csv", &["GET", "HEAD"]),
    ("/admin/audit", &["GET", "HEAD"]),
    ("/admin/users", &["GET", "HEAD", "POST"]),
    ("/admin/users/0123456789ab/disable", &["POST"]),
    ("/admin/users/0123456789ab/reset-password", &["POST"]),
    ("/admin/tokens", &["GET", "HEAD", "POST"]),
    ("/admin/tokens/0123456789ab/revoke", &["POST"]),
    ("/admin/console.css", &["GET", "HEAD"]),
];

const METHODS: [&str; 8] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"];

#[test]
fn a_method_a_path_does_not_serve_is_405_with_allow() {
    let app = TestApp::spawn("[admin]\nconsole = true\n");
    let token = app.create_token("write");
    for (path, served) in ROUTES {
        for method in METHODS {
            let mut req = ureq::request(method, &app.url(path)).set("Authorization", &format!("Bearer {token}"));
            if method != "GET" && method != "HEAD" {
                req = req.set("Content-Type", "application/json");
            }
            let reply = match req.send_string("{}") {
                Ok(r) => r,
                Err(ureq::Error::Status(_, r)) => r,
                Err(e) => panic!("{method} {path}: {e}"),
            };
            let status = reply.status();
            let allow = reply.header("allow").map(str::to_owned);
            let content_type = reply.header("content-type").map(str::to_owned);
            if served.contains(&method) {
                assert_ne!(status, 405, "{method} {path}");
                if method == "HEAD" {
                    assert_eq!(reply.into_string().unwrap(), "", "{method} {path}: no body");
                }
                continue;
            }
            assert_eq!(status, 405, "{method} {path}");
            let mut allow: Vec<String> = allow.unwrap().split(", ").map(str::to_owned).collect();
            allow.sort();
            let mut expected: Vec<String> = served.iter().map(|m| m.to_string()).collect();
            expected.sort();
            assert_eq!(allow, expected, "{method} {path}");
            assert_eq!(content_type.as_deref(), Some("application/problem+json"), "{method} {path}");
        }
    }
    let head = ureq::head(&app.url("/healthz")).call().unwrap();
    assert_eq!(head.status(), 200);
    for missing in ["/nope", "/api/v1/inquiries/x", "/api/v2/inquiries", "/healthz/"] {
        let reply = app.get(missing);
        assert_eq!(reply.status, 404, "{missing}");
        assert_eq!(reply.header("content-type"), Some("application/problem+json"));
    }
}

#[test]
fn framework_errors_are_problems_with_accurate_titles() {
    let app = TestApp::spawn("");
    let token = app.create_token("write");
    let thanks = app.get("/thanks?id=a&id=b");
    assert_eq!(thanks.status, 400);
    assert_eq!(thanks.header("content-type"), Some("application/problem+json"));
    assert_eq!(thanks.json()["title"], "Malformed request");

    let query = app.admin("GET", "/inquiries?limit=0&status=open", Some(&token), None);
    assert_eq!(query.status, 422);
    assert_eq!(query.json()["title"], "Invalid query parameters");
    assert_eq!(query.error_fields(), ["limit", "status"]);

    let id = app.post_json("/api/v1/inquiries", &valid_submission()).json()["id"].as_str().unwrap().to_owned();
    let patch = app.admin("PATCH", &format!("/inquiries/{id}"), Some(&token), Some(&json!({"status": "done"})));
    assert_eq!(patch.status, 422);
    assert_eq!(patch.json()["title"], "Invalid request body");
    let erasure = app.admin("POST", "/erasures", Some(&token), Some(&json!({"email": "not an address"})));
    assert_eq!(erasure.status, 422);
    assert_eq!(erasure.json()["title"], "Invalid request body");

    let submission = app.post_json("/api/v1/inquiries", &json!({"name": ""}));
    assert_eq!(submission.json()["title"], "Invalid submission");
}

#[test]
fn a_request_head_that_is_not_http_gets_a_problem() {
    let app = TestApp::spawn("");
    let heads: [&[u8]; 4] = [
        b"GET /caf\xC3\xA9 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET %2Fhealthz HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /api/v1/inquiries HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"POST /api/v1/inquiries HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n{}",
    ];
    for head in heads {
        let reply = raw_request(&app.base, head);
        assert_eq!(reply.status, 400, "{}", String::from_utf8_lossy(head));
        assert_eq!(reply.header("content-type"), Some("application/problem+json"));
        assert_eq!(reply.json()["title"], "Malformed request");
    }
    // After a good request on the same connection, the bad one is answered the same way.
    let pipelined = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /caf\xC3\xA9 HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut stream = std::net::TcpStream::connect(app.base.trim_start_matches("http://")).unwrap();
    stream.write_all(pipelined).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8_lossy(&raw);
    let second = raw.rfind("HTTP/1.1 400").expect("a 400 after the 200");
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    assert!(raw[second..].contains("application/problem+json"), "{raw}");
    assert!(raw.ends_with('}'), "{raw}");
}

#[test]
fn a_head_too_slow_or_too_large_gets_a_problem() {
    let app = TestApp::spawn("[server]\nclient_timeout_seconds = 1");
    // The head never ends: the HTTP layer gives up after the client timeout.
    let slow = raw_request(&app.base, b"GET /healthz HTTP/1.1\r\nHost: x\r\n");
    assert_eq!(slow.status, 408);
    assert_eq!(slow.header("content-type"), Some("application/problem+json"));
    assert_eq!(slow.json()["title"], "Request too slow");
    let many: String = (0..200).map(|n| format!("X-Header-{n}: a\r\n")).collect();
    let large = raw_request(&app.base, format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many}\r\n").as_bytes());
    assert_eq!(large.status, 431);
    assert_eq!(large.header("content-type"), Some("application/problem+json"));
    assert_eq!(large.json()["status"], 431);
}

fn post_with_host(app: &TestApp, host: &str, origin: &str) -> Reply {
    let body = valid_submission().to_string();
    let request = format!(
        "POST /api/v1/inquiries HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\nContent-Type: application/json\r\n\
         Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    raw_request(&app.base, request.as_bytes())
}

#[test]
fn the_own_origin_is_public_url_never_host() {
    let app = TestApp::spawn("[server]\nallowed_origins = []\n");
    assert_eq!(post_with_host(&app, "evil.example", "http://evil.example").status, 403);
    let host = app.base.trim_start_matches("http://").to_owned();
    assert_eq!(post_with_host(&app, &host, &app.base).status, 403, "not public: no own origin");

    let public = TestApp::spawn("[server]\nallowed_origins = []\npublic_url = \"https://forms.example.org/contact\"\n");
    assert_eq!(post_with_host(&public, "evil.example", "http://evil.example").status, 403);
    assert_eq!(post_with_host(&public, "forms.example.org", "http://forms.example.org").status, 403);
    let own = post_with_host(&public, "evil.example", "https://forms.example.org");
    assert_eq!(own.status, 201, "{}", own.body);
    assert_eq!(own.header("access-control-allow-origin"), Some("https://forms.example.org"));
}

#[test]
fn public_url_must_be_a_url() {
    let dir = common::Workdir::new();
    dir.write_config("[server]\npublic_url = \"forms.example.org\"\n");
    let out = common::run_cli(dir.path(), &[], &["config", "check"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.public_url"));
}

#[test]
fn expect_continue_with_an_oversized_body_gets_413_at_once() {
    let app = TestApp::spawn("");
    let host = app.base.trim_start_matches("http://").to_owned();
    let mut stream = std::net::TcpStream::connect(&host).unwrap();
    // A safety net against a hang, not a timing assertion.
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "POST /api/v1/inquiries HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Expect: 100-continue\r\nContent-Length: 10000000\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut answer = vec![0u8; 4096];
    let n = stream.read(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(!answer.contains("100 Continue"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("content-type: application/problem+json"), "{answer}");

    // A body within the limit is invited and accepted.
    let body = valid_submission().to_string();
    let mut stream = std::net::TcpStream::connect(&host).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "POST /api/v1/inquiries HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nConnection: close\r\n\
         Expect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut first = vec![0u8; 25];
    stream.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(body.as_bytes()).unwrap();
    let mut rest = String::new();
    stream.read_to_string(&mut rest).unwrap();
    assert!(rest.starts_with("HTTP/1.1 201"), "{rest}");
}

/// The series of the request-duration histogram in a scrape (one `_count` line each).
fn duration_series(app: &TestApp) -> Vec<String> {
    let text = app.get("/metrics").body;
    text.lines()
        .filter(|l| l.starts_with("inquiryd_http_request_duration_seconds_count{"))
        .map(|l| l.rsplit_once(' ').map_or(l, |(labels, _count)| labels).to_owned())
        .collect()
}

#[test]
fn a_flood_of_invented_methods_creates_no_metric_series() {
    let app = TestApp::spawn("");
    // One of each method the service knows about, and one invented one, to settle
    // the set of series.
    for method in ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT", "M0A"] {
        raw_request(
            &app.base,
            format!("{method} /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        );
    }
    duration_series(&app); // the scrape's own series
    let settled = duration_series(&app);
    assert!(settled.iter().any(|s| s.contains("method=\"OTHER\"")), "{settled:#?}");
    // 3,000 distinct extension methods, pipelined over a few connections.
    for batch in 0..6 {
        let mut stream = std::net::TcpStream::connect(app.base.trim_start_matches("http://")).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut requests = String::new();
        for n in 0..500 {
            requests.push_str(&format!("M{batch}X{n:04} /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
        }
        requests.push_str("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(requests.as_bytes()).unwrap();
        let mut answers = Vec::new();
        stream.read_to_end(&mut answers).unwrap();
        assert_eq!(String::from_utf8_lossy(&answers).matches("HTTP/1.1 ").count(), 501);
    }
    let after = duration_series(&app);
    let new: Vec<&String> = after.iter().filter(|s| !settled.contains(s)).collect();
    assert!(new.is_empty(), "new series appeared: {new:#?}");
    assert!(!after.iter().any(|s| s.contains("M0X")), "an invented method became a label");
}
