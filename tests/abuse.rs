//! Abuse protection over real HTTP: rate limits, client addresses, spam
//! signals, CAPTCHA, CORS and plain HTML form posts.

mod common;

use std::sync::{Arc, Mutex};

use common::{request_from, unique_submission, urlencode, valid_submission, Reply, TestApp};
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
