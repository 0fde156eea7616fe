//! Abuse protection over real HTTP: rate limits, client addresses, spam
//! signals, CAPTCHA, CORS and plain HTML form posts.

use crate::common;
use std::sync::{Arc, Mutex};

use crate::common::{request_from, unique_submission, urlencode, valid_submission, Reply, TestApp};
use serde_json::json;

const SUBMIT: &str = "/api/v1/inquiries";
const JSON: (&str, &str) = ("Content-Type", "application/json");

fn post_from(app: &TestApp, source: &str, n: usize, extra: &[(&str, &str)]) -> Reply {
    let mut headers = vec![JSON];
    headers.extend_from_slice(extra);
    request_from(source, &app.base, "POST", SUBMIT, &headers, &unique_submission(n).to_string())
}

fn count(app: &TestApp) -> i64 {
    app.db().scalar("SELECT COUNT(*) FROM inquiries", "")
}

/// Three at once, then one every 3 s: slow enough that a loaded machine still
/// sends the fourth request inside the interval.
const TIGHT: &str = "[limits]\nper_ip_per_minute = 20\nper_ip_burst = 3\nper_email_per_hour = 1000";

#[test]
fn burst_passes_then_429_with_a_correct_retry_after() {
    let app = TestApp::spawn(TIGHT);
    for n in 0..3 {
        let reply = post_from(&app, "127.0.0.2", n, &[]);
        assert_eq!(reply.status, 201, "{}", reply.body);
        assert_eq!(reply.header("ratelimit-policy"), Some("\"ip\";q=20;w=60, \"email\";q=1000;w=3600"));
        let state = reply.header("ratelimit").unwrap();
        assert!(state.starts_with(&format!("\"ip\";r={};t=", 2 - n)), "{state}");
    }
    let limited = post_from(&app, "127.0.0.2", 3, &[]);
    assert_eq!(limited.status, 429, "{}", limited.body);
    assert_eq!(limited.header("content-type"), Some("application/problem+json"));
    // 20 per minute: one more is allowed 3 s after the burst began.
    let retry_after: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((2..=3).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(limited.header("ratelimit"), Some(format!("\"ip\";r=0;t={retry_after}").as_str()));
    assert_eq!(count(&app), 3, "a limited request writes nothing");

    let other = post_from(&app, "127.0.0.3", 4, &[]);
    assert_eq!(other.status, 201, "another address is unaffected");

    std::thread::sleep(std::time::Duration::from_secs(retry_after));
    assert_eq!(post_from(&app, "127.0.0.2", 5, &[]).status, 201, "allowed again after Retry-After");
    assert!(app.metric("inquiryd_rate_limited_total{limit=\"ip\"}") >= 1.0);
}

#[test]
fn spoofed_forwarding_headers_from_an_untrusted_peer_change_nothing() {
    let app = TestApp::spawn(TIGHT);
    let mut statuses = Vec::new();
    for n in 0..5 {
        let spoof = format!("198.51.100.{n}");
        let reply =
            post_from(&app, "127.0.0.4", n, &[("X-Forwarded-For", &spoof), ("Forwarded", &format!("for={spoof}"))]);
        statuses.push(reply.status);
    }
    assert_eq!(statuses, vec![201, 201, 201, 429, 429]);
    let db = app.db();
    assert_eq!(db.scalar("SELECT COUNT(*) FROM inquiries WHERE client_ip = '127.0.0.0/24'", ""), 3);
}

#[test]
fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_bucket() {
    let app = TestApp::spawn(&format!(
        "{TIGHT}\n[server]\ntrusted_proxies = [\"127.0.0.5/32\"]\n[privacy]\nstore_ip = \"full\""
    ));
    let via_proxy = |client: &str, n: usize| {
        let chain = format!("6.6.6.6, {client}");
        post_from(&app, "127.0.0.5", n, &[("X-Forwarded-For", &chain)])
    };
    let first: Vec<u16> = (0..4).map(|n| via_proxy("203.0.113.10", n).status).collect();
    assert_eq!(first, vec![201, 201, 201, 429]);
    assert_eq!(via_proxy("203.0.113.11", 10).status, 201);
    let ipv6 = post_from(&app, "127.0.0.5", 11, &[("Forwarded", "for=\"[2001:db8:1:2::99]:443\"")]);
    assert_eq!(ipv6.status, 201);
    let db = app.db();
    assert_eq!(db.scalar("SELECT COUNT(*) FROM inquiries WHERE client_ip = '203.0.113.10'", ""), 3);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM inquiries WHERE client_ip = '2001:db8:1:2::99'", ""), 1);
}

#[test]
fn a_flood_of_distinct_addresses_never_frees_a_limited_client() {
    // A burst of 5, then one request a minute: no key is full again for minutes,
    // so no sweep may evict the clients below while the flood runs.
    let app = TestApp::spawn(
        "[limits]\nper_ip_per_minute = 1\nper_ip_burst = 5\nper_email_per_hour = 1000000\nmax_tracked_keys = 1000\n\
         [server]\ntrusted_proxies = [\"127.0.0.0/8\"]",
    );
    let post = |from: &str, n: usize| {
        let body = unique_submission(n).to_string();
        app.post(SUBMIT, "application/json", &body, &[("X-Forwarded-For", from)]).status
    };
    let victim = "2001:db8:ff:1::1";
    let statuses: Vec<u16> = (0..7).map(|n| post(victim, n)).collect();
    assert_eq!(statuses, [201, 201, 201, 201, 201, 429, 429]);
    let bystander = "2001:db8:ff:2::1";
    assert_eq!((10..14).map(|n| post(bystander, n)).collect::<Vec<_>>(), [201; 4]);
    // 3,000 distinct /64s of one /40 (three times the key cap).
    let flood: Vec<u16> =
        (0..3000).map(|n| post(&format!("2001:db8:{:x}:{:x}::1", n / 256, n % 256), 100 + n)).collect();
    let accepted = flood.iter().filter(|s| **s == 201).count();
    // Room for 998 more keys of their own, then one shared overflow allowance of 5.
    assert!(accepted <= 998 + 5, "{accepted} of the flood accepted: new keys past the cap got allowances");
    assert!(flood.iter().all(|s| [201, 429].contains(s)));
    let overflowed = app.metric("inquiryd_rate_limiter_overflow_total{limit=\"ip\"}");
    assert!(overflowed >= 1000.0, "{overflowed}");
    assert_eq!(post(victim, 9), 429, "the limited client is still limited after the flood");
    assert_eq!(post(bystander, 14), 201, "a tracked client keeps its own allowance");
    assert_eq!(
        app.metric("inquiryd_rate_limiter_overflow_total{limit=\"ip\"}"),
        overflowed,
        "both were answered from their own state, not from the shared overflow allowance"
    );
}

#[test]
fn a_flood_of_distinct_emails_never_frees_a_limited_address() {
    let app = TestApp::spawn(
        "[limits]\nper_ip_per_minute = 1000000\nper_ip_burst = 1000000\nper_email_per_hour = 2\nmax_tracked_keys = 1000",
    );
    let post = |email: &str, n: usize| {
        let mut body = unique_submission(n);
        body["email"] = json!(email);
        app.post_json(SUBMIT, &body).status
    };
    let victim = "irina@Пример.рф";
    assert_eq!((0..3).map(|n| post(victim, n)).collect::<Vec<_>>(), [201, 201, 429]);
    // 3,000 distinct addresses (three times the key cap).
    let flood: Vec<u16> = (0..3000).map(|n| post(&format!("flood{n}@example.org"), 100 + n)).collect();
    let accepted = flood.iter().filter(|s| **s == 201).count();
    // Room for 999 more keys of their own, then one shared overflow allowance of 2.
    assert!(accepted <= 999 + 2, "{accepted} of the flood accepted: new keys past the cap got allowances");
    assert!(flood.iter().all(|s| [201, 429].contains(s)));
    let overflowed = app.metric("inquiryd_rate_limiter_overflow_total{limit=\"email\"}");
    assert!(overflowed >= 1000.0, "{overflowed}");
    assert_eq!(post("IRINA@xn--e1afmkfd.xn--p1ai", 9), 429, "the limited address is still limited after the flood");
    assert_eq!(app.metric("inquiryd_rate_limiter_overflow_total{limit=\"email\"}"), overflowed, "from its own state");
}

#[test]
fn both_spellings_of_an_idn_address_share_one_email_limit() {
    let app = TestApp::spawn("[limits]\nper_email_per_hour = 3");
    let spellings =
        ["idn@пример.рф", "idn@xn--e1afmkfd.xn--p1ai", "IDN@ПРИМЕР.РФ", "Idn@XN--E1AFMKFD.xn--P1AI", "idn@пример.рф"];
    let statuses: Vec<u16> = spellings
        .iter()
        .enumerate()
        .map(|(n, email)| {
            let mut body = unique_submission(n);
            body["email"] = json!(email);
            app.post_json(SUBMIT, &body).status
        })
        .collect();
    assert_eq!(statuses, [201, 201, 201, 429, 429]);
}

#[test]
fn ipv6_clients_share_a_bucket_per_64() {
    let app = TestApp::spawn(&format!("{TIGHT}\n[server]\ntrusted_proxies = [\"127.0.0.0/8\"]"));
    let statuses: Vec<u16> = (0..4)
        .map(|n| post_from(&app, "127.0.0.6", n, &[("X-Forwarded-For", &format!("2001:db8:aa:bb::{n:x}"))]).status)
        .collect();
    assert_eq!(statuses, vec![201, 201, 201, 429]);
    let other_64 = post_from(&app, "127.0.0.6", 9, &[("X-Forwarded-For", "2001:db8:aa:bc::1")]);
    assert_eq!(other_64.status, 201);
}

#[test]
fn per_email_limit() {
    let app = TestApp::spawn("[limits]\nper_email_per_hour = 2");
    let mut body = unique_submission(0);
    let mut statuses = Vec::new();
    for n in 0..3 {
        body["message"] = json!(format!("message {n}"));
        body["email"] = json!(if n == 2 { "IVAN@Example.org" } else { "ivan@example.org" });
        statuses.push(app.post_json(SUBMIT, &body).status);
    }
    assert_eq!(statuses, vec![201, 201, 429], "the address is compared case-insensitively");
    body["email"] = json!("someone.else@example.org");
    assert_eq!(app.post_json(SUBMIT, &body).status, 201);
}

fn stored(app: &TestApp, id: &str) -> (String, String, i64) {
    let db = app.db();
    let row = db.row("SELECT status, spam_flags FROM inquiries WHERE id = ?", id).unwrap();
    let outbox = db.scalar("SELECT COUNT(*) FROM notifications WHERE inquiry_id = ?", id);
    (row["status"].clone().unwrap(), row["spam_flags"].clone().unwrap(), outbox)
}

#[test]
fn each_spam_signal_flags_spam_and_queues_no_email() {
    let app = TestApp::spawn(
        "[spam]\nmin_fill_seconds = 3\nmax_links = 2\nblocked_words = [\"crypto casino\"]\nblocked_domains = [\"spam.example\"]",
    );
    let now_ms = common::now_ms();
    let cases: Vec<(&str, serde_json::Value)> = vec![
        ("honeypot", json!({"_gotcha": "filled"})),
        ("filled_too_fast", json!({"_started_at": now_ms - 500})),
        ("too_many_links", json!({"message": "https://a.example http://b.example www.c.example"})),
        ("blocked_word", json!({"subject": "Best Crypto Casino offers"})),
        ("blocked_domain", json!({"email": "bot@mail.spam.example"})),
    ];
    for (n, (flag, overrides)) in cases.into_iter().enumerate() {
        let mut body = unique_submission(n);
        for (k, v) in overrides.as_object().unwrap() {
            body[k] = v.clone();
        }
        let reply = app.post_json(SUBMIT, &body);
        assert_eq!(reply.status, 201, "{flag}: {}", reply.body);
        assert_eq!(reply.json()["status"], "received", "a bot sees the same answer");
        let (status, flags, outbox) = stored(&app, reply.json()["id"].as_str().unwrap());
        assert_eq!(status, "spam", "{flag}");
        assert_eq!(flags, format!("[\"{flag}\"]"));
        assert_eq!(outbox, 0, "{flag}: spam sends no email");
    }
    let honest = app.post_json(SUBMIT, &valid_submission());
    let (status, flags, outbox) = stored(&app, honest.json()["id"].as_str().unwrap());
    assert_eq!((status.as_str(), flags.as_str(), outbox), ("new", "[]", 1));
    assert_eq!(app.metric("inquiryd_submissions_total{outcome=\"spam\"}"), 5.0);
}

const ORIGINS: &str = "[server]\nallowed_origins = [\"https://www.institute.example\"]";

#[test]
fn cors_preflight_allowed_and_refused() {
    let app = TestApp::spawn(ORIGINS);
    let preflight = |origin: &str| {
        request_from(
            "127.0.0.1",
            &app.base,
            "OPTIONS",
            SUBMIT,
            &[
                ("Origin", origin),
                ("Access-Control-Request-Method", "POST"),
                ("Access-Control-Request-Headers", "content-type, idempotency-key"),
            ],
            "",
        )
    };
    let ok = preflight("https://www.institute.example");
    assert_eq!(ok.status, 204);
    assert_eq!(ok.header("access-control-allow-origin"), Some("https://www.institute.example"));
    assert!(ok.header("access-control-allow-methods").unwrap().contains("POST"));
    assert!(ok.header("access-control-allow-headers").unwrap().to_lowercase().contains("idempotency-key"));
    assert!(ok.header("vary").unwrap().contains("Origin"));

    let refused = preflight("https://evil.example");
    assert_eq!(refused.status, 403);
    assert_eq!(refused.header("access-control-allow-origin"), None);
}

#[test]
fn post_from_a_disallowed_origin_is_403_and_stores_nothing() {
    let app = TestApp::spawn(ORIGINS);
    let body = valid_submission().to_string();
    let evil = app.post(SUBMIT, "application/json", &body, &[("Origin", "https://evil.example")]);
    assert_eq!(evil.status, 403, "{}", evil.body);
    assert_eq!(evil.json()["status"], 403);
    assert_eq!(evil.header("access-control-allow-origin"), None);
    assert_eq!(count(&app), 0);

    let good = app.post(SUBMIT, "application/json", &body, &[("Origin", "https://www.institute.example")]);
    assert_eq!(good.status, 201);
    assert_eq!(good.header("access-control-allow-origin"), Some("https://www.institute.example"));
    assert!(good.header("access-control-expose-headers").unwrap().contains("Location"));
    // No Origin (a server-side client, curl) is not a browser request: no CORS.
    assert_eq!(app.post_json(SUBMIT, &unique_submission(7)).status, 201);
}

fn form_body(pairs: &[(&str, &str)]) -> String {
    pairs.iter().map(|(k, v)| format!("{k}={}", urlencode(v))).collect::<Vec<_>>().join("&")
}

const FORM: &str = "application/x-www-form-urlencoded";

fn form_post(app: &TestApp, body: &str, headers: &[(&str, &str)]) -> Reply {
    let mut all = vec![("Content-Type", FORM)];
    all.extend_from_slice(headers);
    request_from("127.0.0.1", &app.base, "POST", SUBMIT, &all, body)
}

#[test]
fn plain_form_post_redirects_to_the_success_url() {
    let app = TestApp::spawn(
        "[form]\nsuccess_url = \"https://www.institute.example/thanks.html\"\n[privacy]\nrequire_consent = true",
    );
    let body = form_body(&[
        ("name", "Ержан Сапаров"),
        ("email", "erzhan@example.kz"),
        ("subject", "Сұрақ"),
        ("message", "Line one\r\nLine two"),
        ("category", "question"),
        ("consent", "on"),
        ("_gotcha", ""),
    ]);
    let reply = form_post(&app, &body, &[("Accept", "text/html")]);
    assert_eq!(reply.status, 303, "{}", reply.body);
    assert_eq!(reply.header("location"), Some("https://www.institute.example/thanks.html"));
    let db = app.db();
    let row = db.row("SELECT name, message, consent FROM inquiries WHERE email = ?", "erzhan@example.kz").unwrap();
    assert_eq!(row["name"].as_deref(), Some("Ержан Сапаров"));
    assert_eq!(row["message"].as_deref(), Some("Line one\r\nLine two"));
    assert_eq!(row["consent"].as_deref(), Some("1"));
}

#[test]
fn plain_form_without_success_url_lands_on_the_built_in_thank_you_page() {
    let app = TestApp::spawn("");
    let body = form_body(&[("name", "A"), ("email", "a@example.org"), ("subject", "S"), ("message", "M")]);
    let reply = form_post(&app, &body, &[]);
    assert_eq!(reply.status, 303);
    let location = reply.header("location").unwrap().to_owned();
    assert!(location.starts_with("/thanks?id="), "{location}");
    let page = app.get(&location);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Thank you") && page.body.contains(&location["/thanks?id=".len()..]));
    assert_eq!(page.header("content-language"), Some("en"));

    // The page speaks the browser's language.
    let id = &location["/thanks?id=".len()..];
    for (accept, lang, words) in [
        ("ru-KZ,ru;q=0.9,en;q=0.8", "ru", "Спасибо"),
        ("zh-Hans-CN,zh;q=0.9", "zh", "谢谢"),
        ("de;q=0.9, kk;q=0.8", "kk", "Рақмет"),
        ("fr", "en", "Thank you"),
    ] {
        let page = Reply::from(ureq::get(&app.url(&location)).set("Accept-Language", accept).call());
        assert_eq!(page.header("content-language"), Some(lang), "{accept}");
        assert!(page.body.contains(&format!("<html lang=\"{lang}\">")), "{accept}: {}", page.body);
        assert!(page.body.contains(words) && page.body.contains(&format!("<strong>{id}</strong>")), "{}", page.body);
    }
}

#[test]
fn plain_form_errors_are_an_html_page_listing_every_problem() {
    let app = TestApp::spawn("");
    let body = form_body(&[
        ("name", ""),
        ("email", "not-an-email"),
        ("subject", "S"),
        ("message", "<b>hi</b>"),
        ("redirect_to", "https://evil.example/"),
    ]);
    let reply = form_post(&app, &body, &[("Accept", "text/html,application/xhtml+xml")]);
    assert_eq!(reply.status, 422);
    assert!(reply.header("content-type").unwrap().starts_with("text/html"));
    let page = &reply.body;
    assert!(page.contains("<html lang=\"en\">") && page.contains("<title>") && page.contains("role=\"alert\""));
    for message in
        ["Name is required.", "Email is not a valid email address.", "redirect_to is not a field of this form."]
    {
        assert!(page.contains(message), "{message} missing from\n{page}");
    }
    // The same page in the browser's language, or in the form's `_lang`.
    let russian = form_post(&app, &body, &[("Accept", "text/html"), ("Accept-Language", "ru-RU,ru;q=0.9,en;q=0.5")]);
    assert_eq!((russian.status, russian.header("content-language")), (422, Some("ru")));
    for words in ["<html lang=\"ru\">", "Ваше сообщение не отправлено", "Поле «Имя» обязательно.", "Электронная почта"]
    {
        assert!(russian.body.contains(words), "{words} missing from\n{}", russian.body);
    }
    let chinese =
        form_post(&app, &format!("{body}&_lang=zh-CN"), &[("Accept", "text/html"), ("Accept-Language", "ru")]);
    assert_eq!(chinese.header("content-language"), Some("zh"));
    assert!(chinese.body.contains("请填写“姓名”。"), "{}", chinese.body);
    assert!(!page.contains("evil.example\""), "nothing the request sent becomes a link");
    assert_eq!(count(&app), 0);
}

#[test]
fn form_post_asking_for_json_gets_json() {
    let app = TestApp::spawn("");
    let body = form_body(&[("name", "A"), ("email", "a@example.org"), ("subject", "S"), ("message", "M")]);
    let reply = form_post(&app, &body, &[("Accept", "application/json")]);
    assert_eq!(reply.status, 201);
    assert_eq!(reply.json()["status"], "received");
    let bad = form_post(&app, "name=", &[("Accept", "application/json")]);
    assert_eq!(bad.status, 422);
    assert_eq!(bad.header("content-type"), Some("application/problem+json"));
}

/// A siteverify endpoint speaking the Turnstile/hCaptcha/reCAPTCHA protocol.
struct SiteVerify {
    url: String,
    seen: Arc<Mutex<Vec<(String, String, String)>>>,
    /// The client port of each call: one port per TCP connection.
    ports: Arc<Mutex<Vec<u16>>>,
}

fn start_siteverify() -> SiteVerify {
    use actix_web::{web, App, HttpResponse, HttpServer};
    let seen: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
    let ports: Arc<Mutex<Vec<u16>>> = Arc::default();
    let (recorded, recorded_ports) = (seen.clone(), ports.clone());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = HttpServer::new(move || {
                let (recorded, recorded_ports) = (recorded.clone(), recorded_ports.clone());
                App::new().route(
                    "/siteverify",
                    web::post().to(
                        move |req: actix_web::HttpRequest,
                              form: web::Form<std::collections::HashMap<String, String>>| {
                            let (recorded, recorded_ports) = (recorded.clone(), recorded_ports.clone());
                            async move {
                                recorded_ports.lock().unwrap().push(req.peer_addr().unwrap().port());
                                let get = |k: &str| form.get(k).cloned().unwrap_or_default();
                                recorded.lock().unwrap().push((get("secret"), get("response"), get("remoteip")));
                                if get("response") == "good-token" {
                                    HttpResponse::Ok().json(json!({"success": true}))
                                } else {
                                    HttpResponse::Ok()
                                        .json(json!({"success": false, "error-codes": ["invalid-input-response"]}))
                                }
                            }
                        },
                    ),
                )
            })
            .workers(1)
            .bind(("127.0.0.1", 0))
            .unwrap();
            tx.send(server.addrs()[0]).unwrap();
            server.run().await.unwrap();
        });
    });
    let address = rx.recv().unwrap();
    SiteVerify { url: format!("http://{address}/siteverify"), seen, ports }
}

#[test]
fn captcha_success_failure_and_outage() {
    let verify = start_siteverify();
    let app = TestApp::spawn(&format!(
        "[captcha]\nprovider = \"turnstile\"\nsecret = \"0x-test-secret\"\nverify_url = \"{}\"",
        verify.url
    ));
    let missing = app.post_json(SUBMIT, &unique_submission(1));
    assert_eq!(missing.status, 422);
    assert_eq!(missing.error_fields(), vec!["cf-turnstile-response".to_owned()]);
    assert_eq!(missing.json()["errors"][0]["code"], "captcha_required");

    let mut body = unique_submission(2);
    body["cf-turnstile-response"] = json!("bad-token");
    let failed = app.post_json(SUBMIT, &body);
    assert_eq!(failed.status, 422);
    assert_eq!(failed.json()["errors"][0]["code"], "captcha_failed");

    body["cf-turnstile-response"] = json!("good-token");
    let passed = app.post_json(SUBMIT, &body);
    assert_eq!(passed.status, 201, "{}", passed.body);
    let (status, flags, _) = stored(&app, passed.json()["id"].as_str().unwrap());
    assert_eq!((status.as_str(), flags.as_str()), ("new", "[]"));
    let seen = verify.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|(secret, _, ip)| secret == "0x-test-secret" && ip == "127.0.0.1"));
    assert!(!app.logs().contains("0x-test-secret"));
    assert_eq!(count(&app), 1, "refused tokens store nothing");
    // One HTTP client for the process: the second call reuses the first one's connection.
    let ports = verify.ports.lock().unwrap().clone();
    assert_eq!((ports.len(), ports[0]), (2, ports[1]), "one connection for both calls: {ports:?}");

    // The verify endpoint is down: the submission is kept, marked unverified.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let outage = TestApp::spawn(&format!(
        "[captcha]\nprovider = \"hcaptcha\"\nsecret = \"s\"\nverify_url = \"http://{closed}/siteverify\"\ntimeout_seconds = 2"
    ));
    let mut body = unique_submission(3);
    body["h-captcha-response"] = json!("any-token");
    let kept = outage.post_json(SUBMIT, &body);
    assert_eq!(kept.status, 201, "{}", kept.body);
    let (status, flags, outbox) = stored(&outage, kept.json()["id"].as_str().unwrap());
    assert_eq!((status.as_str(), flags.as_str(), outbox), ("new", "[\"captcha_unverified\"]", 1));
}

// Rate limits shared by replicas (`limits.backend = "redis"`), against the Redis
// at 127.0.0.1:6379 (or INQUIRYD_TEST_REDIS_URL).

fn redis_url() -> String {
    std::env::var("INQUIRYD_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A Redis key prefix that no other test, nor another run, uses.
fn unique_prefix(test: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("inquiryd-test:{test}:{}-{nanos}:", std::process::id())
}

/// The `[limits]` section of a replica counting in Redis under `prefix`, plus `extra` keys.
fn redis_limits(prefix: &str, extra: &str) -> String {
    format!("[limits]\nbackend = \"redis\"\nredis_url = \"{}\"\nredis_key_prefix = \"{prefix}\"\n{extra}", redis_url())
}

/// The keys under `prefix` with their remaining time to live (ms), sorted.
fn redis_keys(prefix: &str) -> Vec<(String, i64)> {
    let mut redis = redis::Client::open(redis_url()).unwrap().get_connection().expect("a Redis for the tests");
    let mut keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}*")).query(&mut redis).unwrap();
    keys.sort();
    keys.into_iter().map(|key| (key.clone(), redis::cmd("PTTL").arg(&key).query(&mut redis).unwrap())).collect()
}

/// Posts `count` submissions from this one client, round-robin over `replicas`;
/// returns the statuses and how many times the 5-a-minute allowance could
/// have refilled meanwhile (one every 12 s; 0 unless the machine is very slow).
fn round_robin(replicas: &[TestApp], count: usize) -> (Vec<u16>, usize) {
    let started = std::time::Instant::now();
    let statuses = (0..count).map(|n| replicas[n % replicas.len()].post_json(SUBMIT, &unique_submission(n)).status);
    let statuses: Vec<u16> = statuses.collect();
    (statuses, (started.elapsed().as_secs() / 12) as usize)
}

const FIVE_A_MINUTE: &str = "per_ip_per_minute = 5\nper_ip_burst = 5";

#[test]
fn redis_backend_holds_the_address_limit_across_three_replicas() {
    let prefix = unique_prefix("ip");
    let replicas: Vec<TestApp> = (0..3).map(|_| TestApp::spawn(&redis_limits(&prefix, FIVE_A_MINUTE))).collect();
    let (statuses, refills) = round_robin(&replicas, 30);
    let admitted = statuses.iter().filter(|s| **s == 201).count();
    assert!((5..=5 + refills).contains(&admitted), "{admitted} admitted across the replicas: {statuses:?}");
    assert!(statuses.iter().all(|s| [201, 429].contains(s)), "{statuses:?}");
    assert_eq!(&statuses[..5], [201; 5], "the burst, wherever it lands");
    for replica in &replicas {
        assert_eq!(replica.metric("inquiryd_rate_limiter_backend_errors_total{limit=\"ip\"}"), 0.0);
    }
}

/// The same test with each replica counting alone: it admits a burst per replica.
#[test]
fn memory_backend_counts_each_replica_alone() {
    let limits = format!("[limits]\nbackend = \"memory\"\n{FIVE_A_MINUTE}");
    let replicas: Vec<TestApp> = (0..3).map(|_| TestApp::spawn(&limits)).collect();
    let (statuses, _) = round_robin(&replicas, 30);
    let admitted = statuses.iter().filter(|s| **s == 201).count();
    assert!(admitted >= 15, "{admitted} admitted: {statuses:?}");
}

#[test]
fn redis_backend_holds_the_email_and_admin_limits_across_replicas() {
    let prefix = unique_prefix("email");
    let limits = redis_limits(&prefix, "per_email_per_hour = 2\nadmin_failures_per_minute = 3");
    let replicas: Vec<TestApp> = (0..3).map(|_| TestApp::spawn(&limits)).collect();
    let spellings = ["ivan@example.org", "IVAN@Example.org", "ivan@EXAMPLE.ORG"];
    let statuses: Vec<u16> = (0..6)
        .map(|n| {
            let mut body = unique_submission(n);
            body["email"] = json!(spellings[n % 3]);
            replicas[n % 3].post_json(SUBMIT, &body).status
        })
        .collect();
    assert_eq!(statuses, [201, 201, 429, 429, 429, 429]);
    let mut other = unique_submission(9);
    other["email"] = json!("someone.else@example.org");
    assert_eq!(replicas[2].post_json(SUBMIT, &other).status, 201);

    let failures: Vec<u16> =
        (0..6).map(|n| replicas[n % 3].admin("GET", "/inquiries", Some("not-a-token"), None).status).collect();
    assert_eq!(failures, [401, 401, 401, 429, 429, 429], "failed logins counted across the replicas");
}

#[test]
fn redis_backend_answers_as_the_memory_backend_does() {
    /// Status, `RateLimit-Policy`, `RateLimit` and `Retry-After` of one answer.
    type Answer = (u16, Option<String>, Option<String>, Option<String>);
    let answers = |limits: &str| -> Vec<Answer> {
        let app = TestApp::spawn(limits);
        (0..6)
            .map(|n| {
                let reply = app.post_json(SUBMIT, &unique_submission(n));
                let header = |name: &str| reply.header(name).map(str::to_owned);
                (reply.status, header("ratelimit-policy"), header("ratelimit"), header("retry-after"))
            })
            .collect()
    };
    let memory = answers(&format!("[limits]\n{FIVE_A_MINUTE}"));
    let redis = answers(&redis_limits(&unique_prefix("answers"), FIVE_A_MINUTE));
    assert_eq!(memory[..5], redis[..5], "the admitted requests' headers");
    assert_eq!(redis[1].2.as_deref(), Some("\"ip\";r=3;t=24"));
    for refused in [&memory[5], &redis[5]] {
        let retry_after: u64 = refused.3.as_deref().unwrap().parse().unwrap();
        assert_eq!(refused.0, 429);
        assert!((11..=12).contains(&retry_after), "{refused:?}");
        assert_eq!(refused.2, Some(format!("\"ip\";r=0;t={retry_after}")));
    }
    assert_eq!(memory[5].1, redis[5].1);
}

#[test]
fn unreachable_redis_falls_back_to_this_replicas_own_limit() {
    let app = TestApp::spawn(
        "[limits]\nbackend = \"redis\"\nredis_url = \"redis://127.0.0.1:1\"\nper_ip_per_minute = 3\nper_ip_burst = 3",
    );
    let statuses: Vec<u16> = (0..5).map(|n| app.post_json(SUBMIT, &unique_submission(n)).status).collect();
    assert_eq!(statuses, [201, 201, 201, 429, 429], "answered, and limited by the replica's own count");
    assert_eq!(app.metric("inquiryd_rate_limiter_backend_errors_total{limit=\"ip\"}"), 5.0);
    assert_eq!(app.metric("inquiryd_rate_limiter_backend_errors_total{limit=\"email\"}"), 3.0);
    assert_eq!(app.metric("inquiryd_rate_limiter_backend_up"), 0.0);
    assert_eq!(app.get("/readyz").status, 200, "Redis is not the database: the replica stays ready");
    let logs = app.logs();
    let warnings = logs.lines().filter(|l| l.contains("WARN") && l.contains("Redis")).count();
    assert_eq!(warnings, 1, "one warning for the outage, not one per request:\n{logs}");
    assert!(!logs.contains("7f000001") && !logs.contains("ivan@"), "no key in the logs:\n{logs}");
}

#[test]
fn redis_keys_hold_no_address_expire_and_stay_under_their_prefix() {
    let prefix = unique_prefix("keys");
    let app =
        TestApp::spawn(&redis_limits(&prefix, "per_ip_per_minute = 1\nper_ip_burst = 1\nper_email_per_hour = 10"));
    assert_eq!(app.post_json(SUBMIT, &unique_submission(0)).status, 201);
    assert_eq!(app.post_json(SUBMIT, &unique_submission(1)).status, 429);
    let keys = redis_keys(&prefix);
    let names: Vec<&str> = keys.iter().map(|(k, _)| k.strip_prefix(prefix.as_str()).unwrap()).collect();
    assert_eq!(names.len(), 2, "{keys:?}");
    assert!(names[0].starts_with("rate:email:") && names[0].len() == "rate:email:".len() + 32, "{names:?}");
    assert!(!names[0].contains("ivan") && !names[0].contains("example"), "{names:?}");
    assert_eq!(names[1], "rate:ip:0000000000000000000000007f000001");
    // Each key lives as long as its allowance takes to refill: 360 s for one
    // email of 10 an hour, 60 s for the address's one a minute.
    assert!((1..=360_000).contains(&keys[0].1), "{keys:?}");
    assert!((1..=60_000).contains(&keys[1].1), "{keys:?}");

    // Another deployment on the same Redis counts apart.
    let neighbour = unique_prefix("neighbour");
    let other = TestApp::spawn(&redis_limits(&neighbour, "per_ip_per_minute = 1\nper_ip_burst = 1"));
    assert_eq!(other.post_json(SUBMIT, &unique_submission(2)).status, 201);
    assert_eq!(redis_keys(&prefix).len(), 2);

    // Ten a second: the keys are gone 100 ms after the last request.
    let quick = unique_prefix("quick");
    let fast =
        TestApp::spawn(&redis_limits(&quick, "per_ip_per_minute = 600\nper_ip_burst = 1\nper_email_per_hour = 36000"));
    assert_eq!(fast.post_json(SUBMIT, &unique_submission(3)).status, 201);
    // (-2: expired between KEYS and PTTL; -1, no expiry, would be the bug.)
    let ttls = redis_keys(&quick);
    assert!(ttls.iter().all(|(_, ttl)| (1..=100).contains(ttl) || *ttl == -2), "{ttls:?}");
    common::eventually("Redis holds nothing once the allowances are full", || {
        redis_keys(&quick).is_empty().then_some(())
    });
}

#[test]
fn redis_backend_settings_come_from_the_environment_and_are_checked() {
    let dir = common::Workdir::new();
    dir.write_config("");
    let run = |url: &str, args: &[&str]| {
        let env = [("INQUIRYD_LIMITS__BACKEND", "redis"), ("INQUIRYD_LIMITS__REDIS_URL", url)];
        common::run_cli(dir.path(), &env, args)
    };
    for command in [&["config", "check"][..], &["serve"]] {
        let out = run("localhost:6379", command);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{command:?}: an unparsable URL accepted");
        assert!(stderr.contains("limits.redis_url") && stderr.contains("redis://"), "{command:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one-line reason: {stderr}");
    }
    let out = run("redis://:hunter2-secret@127.0.0.1:6379/3", &["config", "check"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("backend = \"redis\"") && stdout.contains("redis_key_prefix = \"inquiryd:\""), "{stdout}");
    assert!(!stdout.contains("hunter2-secret"), "{stdout}");
}

#[test]
fn a_redis_that_never_answers_is_timed_out_and_the_replica_counts_alone() {
    // Accepts connections and says nothing.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = silent.local_addr().unwrap();
    std::thread::spawn(move || {
        let held: Vec<_> = silent.incoming().map_while(Result::ok).collect();
        drop(held);
    });
    let app = TestApp::spawn(&format!(
        "[limits]\nbackend = \"redis\"\nredis_url = \"redis://{address}\"\nredis_timeout_ms = 100\n\
         per_ip_per_minute = 3\nper_ip_burst = 3"
    ));
    let statuses: Vec<u16> = (0..4).map(|n| app.post_json(SUBMIT, &unique_submission(n)).status).collect();
    assert_eq!(statuses, [201, 201, 201, 429]);
    assert_eq!(app.metric("inquiryd_rate_limiter_backend_errors_total{limit=\"ip\"}"), 4.0);
}

/// A Redis server of the test's own, on a free port, that the test can stop.
struct OwnRedis {
    port: u16,
    child: std::process::Child,
}

impl OwnRedis {
    fn start(port: u16) -> Self {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server (Debian's redis-server package) for this test");
        let url = format!("redis://127.0.0.1:{port}");
        common::eventually("redis-server answers", || {
            let mut connection = redis::Client::open(url.as_str()).ok()?.get_connection().ok()?;
            redis::cmd("PING").query::<String>(&mut connection).ok()
        });
        Self { port, child }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

#[test]
fn a_replica_reconnects_when_redis_comes_back() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut redis = OwnRedis::start(port);
    let app = TestApp::spawn(&format!(
        "[limits]\nbackend = \"redis\"\nredis_url = \"redis://127.0.0.1:{port}\"\n\
         per_ip_per_minute = 1\nper_ip_burst = 2"
    ));
    let errors = || app.metric("inquiryd_rate_limiter_backend_errors_total{limit=\"ip\"}");
    assert_eq!(app.post_json(SUBMIT, &unique_submission(0)).status, 201);
    assert_eq!((errors(), app.metric("inquiryd_rate_limiter_backend_up")), (0.0, 1.0));

    redis.stop();
    // Redis is gone (and with it, the count): the replica's own count answers.
    let statuses: Vec<u16> = (1..4).map(|n| app.post_json(SUBMIT, &unique_submission(n)).status).collect();
    assert_eq!(statuses, [201, 201, 429]);
    assert_eq!(errors(), 3.0);

    let redis = OwnRedis::start(redis.port);
    common::eventually("the replica reconnects", || {
        (app.metric("inquiryd_rate_limiter_backend_up") == 1.0).then_some(())
    });
    // A fresh Redis knows no count; and one that forgot the script (NOSCRIPT) is
    // sent it again (EVAL).
    let client = redis::Client::open(format!("redis://127.0.0.1:{}", redis.port)).unwrap();
    let flushed: String = redis::cmd("SCRIPT").arg("FLUSH").query(&mut client.get_connection().unwrap()).unwrap();
    assert_eq!(flushed, "OK");
    let statuses: Vec<u16> = (4..7).map(|n| app.post_json(SUBMIT, &unique_submission(n)).status).collect();
    assert_eq!(statuses, [201, 201, 429]);
    assert_eq!(errors(), 3.0, "counted in Redis again");
}
