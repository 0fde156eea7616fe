//! Intake: configuration, storage and `POST /api/v1/inquiries` over real HTTP.

use crate::common;
use std::collections::HashSet;

use crate::common::{run_cli, unique_submission, valid_submission, TestApp};
use serde_json::{json, Value};

const SUBMIT: &str = "/api/v1/inquiries";

fn assert_problem(reply: &common::Reply, status: u16) -> Value {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/problem+json"));
    let body = reply.json();
    assert_eq!(body["status"], status);
    for key in ["type", "title", "detail"] {
        assert!(body[key].as_str().is_some_and(|s| !s.is_empty()), "{key} missing: {body}");
    }
    body
}

#[test]
fn unicode_submission_is_stored_exactly() {
    let app = TestApp::spawn("");
    let mut body = valid_submission();
    body["name"] = json!("  Иван Петров  ");
    let reply = app.post_json(SUBMIT, &body);
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert!(reply.header("x-request-id").is_some_and(|id| id.len() >= 16));
    let answer = reply.json();
    assert_eq!(answer["status"], "received");
    let id = answer["id"].as_str().unwrap();
    assert!(uuid_like(id), "{id}");
    assert!(answer["received_at"].as_str().unwrap().ends_with('Z'));

    let row = app.db().row("SELECT * FROM inquiries WHERE id = ?", id).expect("row stored");
    let text = |k: &str| row[k].clone().unwrap_or_default();
    assert_eq!(text("name"), "Иван Петров");
    assert_eq!(text("subject"), "关于合作的问题");
    assert_eq!(text("message"), "Здравствуйте! 你好 👋🏽\nSecond line\twith a tab.");
    assert_eq!(text("organization"), "Қазақ университеті");
    assert_eq!(text("country"), "پاکستان");
    assert_eq!(text("phone"), "+7 (701) 555-01.23");
    assert_eq!(text("category"), "question");
    assert_eq!(text("status"), "new");
    assert_eq!(text("client_ip"), "127.0.0.0/24");
    let outbox = app.db().scalar("SELECT COUNT(*) FROM notifications WHERE inquiry_id = ?", id);
    assert_eq!(outbox, 1, "the staff notification is queued in the same commit");
}

fn uuid_like(id: &str) -> bool {
    id.len() == 36 && id.chars().filter(|c| *c == '-').count() == 4
}

#[test]
fn ids_are_not_sequential() {
    let app = TestApp::spawn("");
    let ids: Vec<String> = (0..3)
        .map(|n| app.post_json(SUBMIT, &unique_submission(n)).json()["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 3);
    // UUIDv7: the version nibble is 7 and the tail is random.
    assert!(ids.iter().all(|id| id.as_bytes()[14] == b'7'), "{ids:?}");
}

#[test]
fn message_length_counts_characters() {
    let app = TestApp::spawn("");
    let mut body = valid_submission();
    body["message"] = json!("Ж".repeat(10_000));
    assert_eq!(app.post_json(SUBMIT, &body).status, 201);
    body["message"] = json!("Ж".repeat(10_001));
    let reply = app.post_json(SUBMIT, &body);
    let problem = assert_problem(&reply, 422);
    assert_eq!(problem["errors"][0]["field"], "message");
    assert_eq!(problem["errors"][0]["code"], "too_long");
}

#[test]
fn line_breaks_in_header_fields_are_rejected() {
    let app = TestApp::spawn("");
    for (field, value) in [
        ("subject", "Hello\r\nBcc: victim@example.org"),
        ("name", "Eve\nBcc: victim@example.org"),
        ("email", "eve@example.org\r\nBcc: victim@example.org"),
        ("subject", "Hello\rthere"),
    ] {
        let mut body = valid_submission();
        body[field] = json!(value);
        let reply = app.post_json(SUBMIT, &body);
        assert_problem(&reply, 422);
        assert_eq!(reply.error_fields(), vec![field.to_owned()], "{field}: {}", reply.body);
    }
}

#[test]
fn every_failing_field_is_listed_at_once() {
    let app = TestApp::spawn("");
    let body = json!({
        "name": "", "email": "not-an-address", "subject": "x".repeat(201), "message": "bell\u{7}",
        "category": "sales", "organization": "o".repeat(201), "country": "c".repeat(101),
        "phone": "call me maybe", "page": "p".repeat(2001), "consent": "perhaps", "admin": true,
    });
    let reply = app.post_json(SUBMIT, &body);
    let problem = assert_problem(&reply, 422);
    let fields: HashSet<String> = reply.error_fields().into_iter().collect();
    let expected: HashSet<String> = [
        "admin",
        "name",
        "email",
        "subject",
        "message",
        "category",
        "organization",
        "country",
        "phone",
        "page",
        "consent",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(fields, expected, "{problem}");
    for error in problem["errors"].as_array().unwrap() {
        assert!(error["code"].as_str().is_some_and(|c| !c.is_empty()));
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert_eq!(app.db().scalar("SELECT COUNT(*) FROM inquiries", ""), 0);
}

#[test]
fn invisible_names_and_reordering_subjects_are_refused() {
    let app = TestApp::spawn("");
    let mut body = valid_submission();
    body["name"] = json!("\u{200B}\u{200D}\u{FEFF}");
    body["subject"] = json!("Invoice \u{202E}fdp.exe");
    body["organization"] = json!("\u{200B}");
    let reply = app.post_json(SUBMIT, &body);
    assert_problem(&reply, 422);
    assert_eq!(
        reply.error_codes(),
        [("name".to_owned(), "required".to_owned()), ("subject".to_owned(), "control_characters".to_owned())]
    );
}

#[test]
fn missing_required_fields_and_wrong_types() {
    let app = TestApp::spawn("");
    let reply = app.post_json(SUBMIT, &json!({"name": 42, "consent": "yes"}));
    assert_problem(&reply, 422);
    assert_eq!(
        reply.error_codes(),
        vec![
            ("name".into(), "invalid_type".into()),
            ("email".into(), "required".into()),
            ("subject".into(), "required".into()),
            ("message".into(), "required".into()),
        ]
    );
}

#[test]
fn the_same_invalid_submission_answers_in_each_language_with_the_same_codes() {
    let app = TestApp::spawn("");
    let invalid = json!({"name": "", "email": "nope", "subject": "a".repeat(201), "message": "Hi"});
    let ask = |accept: Option<&str>, lang: Option<&str>| {
        let mut body = invalid.clone();
        if let Some(lang) = lang {
            body["_lang"] = json!(lang);
        }
        let headers: Vec<(&str, &str)> = accept.map(|a| vec![("Accept-Language", a)]).unwrap_or_default();
        let reply = app.post(SUBMIT, "application/json", &body.to_string(), &headers);
        assert_problem(&reply, 422);
        reply
    };
    let english = ask(None, None);
    let codes = |reply: &common::Reply| -> Vec<(String, String)> {
        reply.json()["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["field"].as_str().unwrap().to_owned(), e["code"].as_str().unwrap().to_owned()))
            .collect()
    };
    let expected = vec![
        ("name".to_owned(), "required".to_owned()),
        ("email".to_owned(), "invalid_email".to_owned()),
        ("subject".to_owned(), "too_long".to_owned()),
    ];
    assert_eq!(codes(&english), expected);
    assert_eq!(english.header("content-language"), Some("en"));
    let cases = [
        (
            Some("ru-KZ,ru;q=0.9"),
            None,
            "ru",
            "В форме есть ошибки",
            "Поле «Тема» должно содержать не более 200 символов.",
        ),
        (Some("zh-Hans-CN,zh;q=0.9"), None, "zh", "表单有误", "“主题”最多 200 个字符。"),
        (Some("de"), Some("kk"), "kk", "Пішінде қателер бар", "«Тақырып» өрісі 200 таңбадан аспауы керек."),
        (Some("ru"), Some("zh-CN"), "zh", "表单有误", "“主题”最多 200 个字符。"),
        (Some("zh"), Some("fr"), "zh", "表单有误", "“主题”最多 200 个字符。"),
        (None, None, "en", "Invalid submission", "Subject must be at most 200 characters."),
    ];
    for (accept, lang, tag, title, subject_message) in cases {
        let reply = ask(accept, lang);
        assert_eq!(reply.header("content-language"), Some(tag), "{accept:?} {lang:?}");
        assert_eq!(codes(&reply), expected, "codes and fields never change with the language");
        let problem = reply.json();
        assert_eq!(problem["title"], title);
        assert_eq!(problem["type"], english.json()["type"]);
        assert_eq!(problem["errors"][2]["message"], subject_message, "{problem}");
    }
    // A refused origin is told so in its language too.
    let headers = [("Origin", "https://evil.example"), ("Accept-Language", "ru")];
    let refused = app.post(SUBMIT, "application/json", &valid_submission().to_string(), &headers);
    assert_problem(&refused, 403);
    assert_eq!(refused.header("content-language"), Some("ru"));
    assert_eq!(refused.json()["title"], "Источник не разрешён");
    // `_lang` must be a string; a number is a field error like any other.
    let mut bad = valid_submission();
    bad["_lang"] = json!(7);
    let reply = app.post_json(SUBMIT, &bad);
    assert_eq!(reply.json()["errors"][0]["field"], "_lang");
    // A valid `_lang` is accepted and stores nothing of itself.
    let mut good = valid_submission();
    good["_lang"] = json!("ru");
    assert_eq!(app.post_json(SUBMIT, &good).status, 201);
}

#[test]
fn malformed_json_says_where() {
    let app = TestApp::spawn("");
    let reply = app.post(SUBMIT, "application/json", "{\n  \"name\": \"a\",\n  \"email\": }", &[]);
    let problem = assert_problem(&reply, 400);
    assert!(problem["detail"].as_str().unwrap().contains("line 3"), "{problem}");
    let reply = app.post(SUBMIT, "application/json", "[1, 2]", &[]);
    assert_problem(&reply, 400);
}

#[test]
fn a_body_that_cannot_be_read_is_not_called_invalid_json() {
    use std::io::{Read, Write};
    let app = TestApp::spawn("");
    let mut stream = std::net::TcpStream::connect(app.base.trim_start_matches("http://")).unwrap();
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    // A chunked body whose second chunk size is not hexadecimal.
    stream
        .write_all(
            b"POST /api/v1/inquiries HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Transfer-Encoding: chunked\r\n\r\n2\r\n{\"\r\nzz\r\nname\r\n0\r\n\r\n",
        )
        .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no answer: {answer:?}"));
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    assert!(head.to_ascii_lowercase().contains("content-type: application/problem+json"), "{head}");
    let detail = body.split("\"detail\":\"").nth(1).unwrap_or_default();
    assert!(detail.starts_with("The body could not be read"), "{body}");
    assert!(!body.contains("JSON"), "{body}");
}

#[test]
fn unsupported_content_type_and_oversized_body() {
    let app = TestApp::spawn("[server]\nbody_limit_bytes = 2048");
    let reply = app.post(SUBMIT, "text/plain", &valid_submission().to_string(), &[]);
    assert_problem(&reply, 415);
    let mut body = valid_submission();
    body["message"] = json!("a".repeat(3000));
    let reply = app.post_json(SUBMIT, &body);
    let problem = assert_problem(&reply, 413);
    assert!(problem["detail"].as_str().unwrap().contains("2048"));
    // The charset parameter is fine.
    let reply = app.post(SUBMIT, "application/json; charset=utf-8", &valid_submission().to_string(), &[]);
    assert_eq!(reply.status, 201);
}

#[test]
fn consent_is_required_when_configured() {
    let app = TestApp::spawn("[privacy]\nrequire_consent = true");
    let reply = app.post_json(SUBMIT, &valid_submission());
    assert_problem(&reply, 422);
    assert_eq!(reply.json()["errors"][0]["code"], "consent_required");
    let mut body = valid_submission();
    body["consent"] = json!(true);
    assert_eq!(app.post_json(SUBMIT, &body).status, 201);
}

#[test]
fn honeypot_is_kept_as_spam_with_the_same_answer() {
    let app = TestApp::spawn("");
    let mut body = valid_submission();
    body["_gotcha"] = json!("I am a bot");
    let reply = app.post_json(SUBMIT, &body);
    assert_eq!(reply.status, 201);
    let answer = reply.json();
    assert_eq!(answer["status"], "received");
    let id = answer["id"].as_str().unwrap();
    let db = app.db();
    let row = db.row("SELECT status, spam_flags FROM inquiries WHERE id = ?", id).unwrap();
    assert_eq!(row["status"].as_deref(), Some("spam"));
    assert_eq!(row["spam_flags"].as_deref(), Some("[\"honeypot\"]"));
    assert_eq!(db.scalar("SELECT COUNT(*) FROM notifications WHERE inquiry_id = ?", id), 0, "spam sends no email");
}

#[test]
fn filled_too_fast_is_spam() {
    let app = TestApp::spawn("[spam]\nmin_fill_seconds = 5");
    let now_ms = common::now_ms();
    let mut body = valid_submission();
    body["_started_at"] = json!(now_ms - 1000);
    let id = app.post_json(SUBMIT, &body).json()["id"].as_str().unwrap().to_owned();
    body["_started_at"] = json!(now_ms - 60_000);
    body["message"] = json!("A patient human");
    let human = app.post_json(SUBMIT, &body).json()["id"].as_str().unwrap().to_owned();
    let db = app.db();
    assert_eq!(db.row("SELECT status FROM inquiries WHERE id = ?", &id).unwrap()["status"].as_deref(), Some("spam"));
    assert_eq!(db.row("SELECT status FROM inquiries WHERE id = ?", &human).unwrap()["status"].as_deref(), Some("new"));
}

#[test]
fn idempotency_key_replays_conflicts_and_mismatches() {
    let app = TestApp::spawn("");
    let body = unique_submission(1).to_string();
    let key = [("Idempotency-Key", "order-7f3a")];
    let first = app.post(SUBMIT, "application/json", &body, &key);
    assert_eq!(first.status, 201);
    let again = app.post(SUBMIT, "application/json", &body, &key);
    assert_eq!(again.status, 201);
    assert_eq!(again.json()["id"], first.json()["id"]);
    assert_eq!(again.json()["received_at"], first.json()["received_at"]);

    let other = unique_submission(2).to_string();
    let reply = app.post(SUBMIT, "application/json", &other, &key);
    assert_problem(&reply, 422);
    assert_eq!(reply.error_fields(), Vec::<String>::new());

    let long_key = "k".repeat(129);
    let reply = app.post(SUBMIT, "application/json", &other, &[("Idempotency-Key", &long_key)]);
    assert_problem(&reply, 422);
    assert_eq!(reply.error_fields(), vec!["Idempotency-Key".to_owned()]);
    assert_eq!(app.db().scalar("SELECT COUNT(*) FROM inquiries", ""), 1);
}

#[test]
fn idempotency_key_in_flight_is_a_conflict() {
    // A second process holds the write lock, so the first request waits in the
    // writer; the repeat arrives while it is in flight.
    let app = TestApp::spawn("[database]\nbusy_timeout_ms = 3000");
    let body = unique_submission(3).to_string();
    let blocker = app.db().hold_write_lock(std::time::Duration::from_millis(1500));
    let base = app.base.clone();
    let first_body = body.clone();
    let first = std::thread::spawn(move || {
        ureq::post(&format!("{base}{SUBMIT}"))
            .set("Content-Type", "application/json")
            .set("Idempotency-Key", "slow-key")
            .send_string(&first_body)
            .map(|r| r.status())
            .unwrap_or_else(|e| match e {
                ureq::Error::Status(s, _) => s,
                e => panic!("{e}"),
            })
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    let second = app.post(SUBMIT, "application/json", &body, &[("Idempotency-Key", "slow-key")]);
    assert_problem(&second, 409);
    assert!(second.header("retry-after").is_some());
    blocker.join().unwrap();
    assert_eq!(first.join().unwrap(), 201);
}

#[test]
fn busy_database_is_503_and_writes_nothing() {
    let app = TestApp::spawn("[database]\nbusy_timeout_ms = 200");
    let blocker = app.db().hold_write_lock(std::time::Duration::from_millis(1500));
    let reply = app.post_json(SUBMIT, &unique_submission(9));
    let problem = assert_problem(&reply, 503);
    assert!(reply.header("retry-after").is_some_and(|s| s.parse::<u64>().is_ok()), "{problem}");
    blocker.join().unwrap();
    assert_eq!(app.db().scalar("SELECT COUNT(*) FROM inquiries", ""), 0);
    assert_eq!(app.post_json(SUBMIT, &unique_submission(9)).status, 201, "recovers once the lock is gone");
}

#[test]
fn double_click_without_key_is_the_same_inquiry() {
    let app = TestApp::spawn("");
    let first = app.post_json(SUBMIT, &valid_submission());
    let second = app.post_json(SUBMIT, &valid_submission());
    assert_eq!(second.status, 201);
    assert_eq!(first.json()["id"], second.json()["id"]);
    let mut different = valid_submission();
    different["subject"] = json!("Another question");
    assert_ne!(app.post_json(SUBMIT, &different).json()["id"], first.json()["id"]);
    assert_eq!(app.db().scalar("SELECT COUNT(*) FROM inquiries", ""), 2);
}

#[test]
fn restart_keeps_every_row_and_killed_answers_survive() {
    let app = TestApp::spawn("");
    let mut ids = Vec::new();
    for n in 0..20 {
        ids.push(app.post_json(SUBMIT, &unique_submission(n)).json()["id"].as_str().unwrap().to_owned());
    }
    // SIGKILL right after the last 201: the answer promised it was on disk.
    let app = app.kill_and_restart();
    let db = app.db();
    for id in &ids {
        assert_eq!(db.scalar("SELECT COUNT(*) FROM inquiries WHERE id = ?", id), 1, "{id} lost");
    }
    let more = app.post_json(SUBMIT, &unique_submission(100));
    assert_eq!(more.status, 201);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM inquiries", ""), 21);
}

#[test]
fn concurrent_submissions_share_commits() {
    let app = TestApp::spawn("");
    let threads = 32;
    let per_thread = 8;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let url = app.url(SUBMIT);
            std::thread::spawn(move || {
                (0..per_thread)
                    .map(|i| {
                        let body = unique_submission(t * 1000 + i).to_string();
                        let r = ureq::post(&url).set("Content-Type", "application/json").send_string(&body).unwrap();
                        assert_eq!(r.status(), 201);
                        r.into_json::<Value>().unwrap()["id"].as_str().unwrap().to_owned()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let ids: Vec<String> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    let submissions = (threads * per_thread) as f64;
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());
    // Commits that carried submissions (the outbox's own bookkeeping commits aside).
    let commits = app.metric("inquiryd_group_commit_batch_size_count");
    assert!(commits >= 1.0 && commits < submissions, "{commits} commits for {submissions} submissions");
    let db = app.db();
    assert_eq!(db.scalar("SELECT COUNT(*) FROM inquiries", "") as f64, submissions);
}

#[test]
fn without_group_commit_each_submission_is_its_own_transaction() {
    let app = TestApp::spawn("[database]\ngroup_commit = false");
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let url = app.url(SUBMIT);
            std::thread::spawn(move || {
                for i in 0..4 {
                    let body = unique_submission(t * 100 + i).to_string();
                    ureq::post(&url).set("Content-Type", "application/json").send_string(&body).unwrap();
                }
            })
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    assert_eq!(app.metric("inquiryd_group_commit_batch_size_count"), 32.0);
}

#[test]
fn health_and_readiness() {
    let app = TestApp::spawn("");
    assert_eq!(app.get("/healthz").status, 200);
    let ready = app.get("/readyz");
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json()["checks"]["migrations"], "ok");
    let missing = app.get("/nope");
    assert_problem(&missing, 404);
}

#[test]
fn sigterm_exits_cleanly() {
    let mut app = TestApp::spawn("");
    assert_eq!(app.post_json(SUBMIT, &valid_submission()).status, 201);
    assert!(app.terminate().success(), "{}", app.logs());
}

#[test]
fn migrate_is_idempotent() {
    let dir = common::Workdir::new();
    dir.write_config("");
    for _ in 0..2 {
        let out = run_cli(dir.path(), &[], &["migrate"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let migrations = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(common::backend());
    let migrations = std::fs::read_dir(migrations).unwrap().count();
    assert_eq!(dir.db().scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success", "") as usize, migrations);
}

/// A database migrated by a newer inquiryd (a version this binary does not
/// know) is refused at start-up with a message that says so, and left untouched.
#[test]
fn a_database_from_a_newer_version_is_refused_clearly() {
    let dir = common::Workdir::new();
    dir.write_config("");
    let out = run_cli(dir.path(), &[], &["migrate"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let db = dir.db();
    db.write(&format!(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9001, 'from the future', TRUE, {}, 0)",
        db.bytes_literal(&[0])
    ));
    for command in [&["migrate"][..], &["serve"], &["inquiries", "list"]] {
        let out = run_cli(dir.path(), &[], command);
        assert!(!out.status.success(), "{command:?} must refuse");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("migration 9001") && stderr.contains("newer inquiryd"),
            "{command:?} says why: {stderr}"
        );
    }
    assert_eq!(db.scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE version = 9001", ""), 1);
}

#[test]
fn config_check_redacts_secrets() {
    let dir = common::Workdir::new();
    dir.write_config("[smtp]\nusername = \"relay\"");
    let out = run_cli(
        dir.path(),
        &[
            ("INQUIRYD_SMTP__PASSWORD", "s3cret-pa55"),
            ("INQUIRYD_SERVER__ALLOWED_ORIGINS", "https://a.example, https://b.example"),
        ],
        &["config", "check"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!stdout.contains("s3cret-pa55"), "{stdout}");
    assert!(stdout.contains("password = \"[redacted]\""), "{stdout}");
    assert!(stdout.contains("username = \"relay\""));
    assert!(stdout.contains("allowed_origins = [\"https://a.example\",\"https://b.example\"]"), "{stdout}");
}

#[test]
fn bad_configuration_names_the_key() {
    let dir = common::Workdir::new();
    dir.write_config("");
    for (env, key) in [
        (("INQUIRYD_SERVER__PORT", "abc"), "server.port"),
        (("INQUIRYD_SERVER__PORTT", "1"), "server.portt"),
        (("INQUIRYD_DATABASE__SYNCHRONOUS", "sometimes"), "database.synchronous"),
        (("INQUIRYD_SERVER__ALLOWED_ORIGINS", "*"), "server.allowed_origins"),
    ] {
        let out = run_cli(dir.path(), &[env], &["config", "check"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{env:?} accepted");
        assert!(stderr.contains(key), "{env:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one-line reason: {stderr}");
    }
    dir.write_config("[mail]\ntransprt = \"smtp\"");
    let out = run_cli(dir.path(), &[], &["config", "check"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("mail.transprt"));
    let out = run_cli(dir.path(), &[], &["--config", "/does/not/exist.toml", "config", "check"]);
    assert!(!out.status.success());
}

#[test]
fn a_new_database_gets_8k_pages() {
    if common::skip_unless_sqlite("page_size is a SQLite pragma") {
        return;
    }
    let app = TestApp::spawn("");
    assert_eq!(app.post_json(SUBMIT, &valid_submission()).status, 201);
    assert_eq!(app.db().scalar("PRAGMA page_size", ""), 8192);
}

const EVENT: &str = "/api/v1/forms/event/inquiries";

fn from_origin(app: &TestApp, path: &str, origin: &str, body: &Value) -> common::Reply {
    app.post(path, "application/json", &body.to_string(), &[("Origin", origin)])
}

/// Two forms with different fields and origins: each takes its own fields from
/// its own origins, stores which form it was, and the old endpoint stays the
/// contact form.
#[test]
fn a_second_form_takes_its_own_fields_from_its_own_origins() {
    let app = TestApp::spawn(common::TWO_FORMS);
    let reply = from_origin(&app, EVENT, "https://events.example.org", &common::event_registration());
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.header("access-control-allow-origin"), Some("https://events.example.org"));
    let id = reply.json()["id"].as_str().unwrap().to_owned();
    let row = app.db().row("SELECT form, fields, category, organization FROM inquiries WHERE id = ?", &id).unwrap();
    assert_eq!(row["form"].as_deref(), Some("event"));
    assert_eq!(row["organization"].as_deref(), Some("Алатау университеті"));
    let fields: Value = serde_json::from_str(row["fields"].as_deref().unwrap()).unwrap();
    assert_eq!(fields["event"], "Fintech workshop");
    assert_eq!(fields["guests"], 2, "numbers are stored as numbers");
    assert_eq!(fields["photo_consent"], true);
    assert_eq!(fields["dietary"], "Vegetarian\nNo nuts");
    assert!(fields.get("department").is_none(), "a field not given is not stored");

    // Each form's origins are its own.
    let contact = valid_submission();
    assert_problem(&from_origin(&app, EVENT, "https://www.example.org", &common::event_registration()), 403);
    assert_problem(&from_origin(&app, SUBMIT, "https://events.example.org", &contact), 403);
    let reply = from_origin(&app, SUBMIT, "https://www.example.org", &contact);
    assert_eq!(reply.status, 201, "{}", reply.body);
    let id = reply.json()["id"].as_str().unwrap().to_owned();
    let row = app.db().row("SELECT form, fields FROM inquiries WHERE id = ?", &id).unwrap();
    assert_eq!((row["form"].as_deref(), row["fields"].as_deref()), (Some("contact"), Some("{}")));
    let reply = app.post_json("/api/v1/forms/contact/inquiries", &unique_submission(1));
    assert_eq!(reply.status, 201, "the default form by its own name: {}", reply.body);

    // Another form's field, or a built-in field this form hides, is unknown.
    let mut with_event = unique_submission(2);
    with_event["event"] = json!("Fintech workshop");
    let reply = app.post_json(SUBMIT, &with_event);
    assert_problem(&reply, 422);
    assert_eq!(reply.error_codes(), [("event".to_owned(), "unknown_field".to_owned())]);
    let mut with_phone = common::event_registration();
    with_phone["phone"] = json!("+7 701 555 0123");
    with_phone["category"] = json!("commendation");
    let reply = app.post_json(EVENT, &with_phone);
    assert_problem(&reply, 422);
    let codes = reply.error_codes();
    assert!(codes.contains(&("phone".to_owned(), "unknown_field".to_owned())), "{codes:?}");
    assert!(codes.contains(&("category".to_owned(), "invalid_choice".to_owned())), "{codes:?}");

    // A form that does not exist.
    let missing = app.post_json("/api/v1/forms/nope/inquiries", &contact);
    assert_eq!(assert_problem(&missing, 404)["title"], "Not found");
    let missing = from_origin(&app, "/api/v1/forms/nope/inquiries", "https://www.example.org", &contact);
    assert_problem(&missing, 404);
    assert_problem(&app.get("/api/v1/forms/nope"), 404);
}

/// Every custom field type is checked, and every failing field is listed at once.
#[test]
fn custom_fields_of_every_type_are_checked_and_listed_at_once() {
    let app = TestApp::spawn(common::TWO_FORMS);
    let mut body = common::event_registration();
    body.as_object_mut().unwrap().remove("organization");
    for (field, value) in [
        ("event", json!("Gala dinner")),
        ("department", json!("sales")),
        ("guests", json!(9)),
        ("arrival", json!("2026-02-30")),
        ("website", json!("ftp://alatau.example.kz")),
        ("assistant_email", json!("office at alatau")),
        ("dietary", json!("x".repeat(51))),
        ("badge_name", json!("Zhanar\nS.")),
        ("photo_consent", json!(false)),
    ] {
        body[field] = value;
    }
    let reply = app.post_json(EVENT, &body);
    assert_problem(&reply, 422);
    let expected = [
        ("organization", "required"),
        ("event", "invalid_choice"),
        ("department", "invalid_choice"),
        ("guests", "out_of_range"),
        ("arrival", "invalid_date"),
        ("website", "invalid_url"),
        ("assistant_email", "invalid_email"),
        ("dietary", "too_long"),
        ("badge_name", "multiline"),
        ("photo_consent", "required"),
    ];
    let expected: Vec<(String, String)> = expected.iter().map(|(f, c)| (f.to_string(), c.to_string())).collect();
    assert_eq!(reply.error_codes(), expected);

    let mut types = common::event_registration();
    for (field, value) in [("guests", json!("many")), ("event", json!(1)), ("photo_consent", json!("perhaps"))] {
        types[field] = value;
    }
    types["arrival"] = json!("2025-12-31");
    let codes = app.post_json(EVENT, &types).error_codes();
    let codes: Vec<(&str, &str)> = codes.iter().map(|(f, c)| (f.as_str(), c.as_str())).collect();
    assert_eq!(
        codes,
        [
            ("event", "invalid_type"),
            ("guests", "invalid_type"),
            ("arrival", "out_of_range"),
            ("photo_consent", "invalid_type")
        ]
    );

    // Form-encoded values are strings: a number, a date and a checkbox as a plain form sends them.
    let mut form = String::new();
    for (key, value) in common::event_registration().as_object().unwrap() {
        let value = match value {
            Value::String(s) => s.clone(),
            Value::Bool(_) => "on".to_owned(),
            other => other.to_string(),
        };
        form.push_str(&format!("{}={}&", common::urlencode(key), common::urlencode(&value)));
    }
    let headers = [("Content-Type", "application/x-www-form-urlencoded")];
    let reply = common::request_from("127.0.0.1", &app.base, "POST", EVENT, &headers, &form);
    assert_eq!(reply.status, 303, "{}", reply.body);
    assert_eq!(reply.header("location"), Some("https://events.example.org/thanks"), "the form's own success_url");
}

/// The same invalid submission in English, Russian and Chinese: the same codes
/// and fields, with messages (and custom fields' labels) in each language.
#[test]
fn the_same_invalid_submission_gets_the_same_codes_in_every_language() {
    let app = TestApp::spawn(common::TWO_FORMS);
    let mut body = common::event_registration();
    body["guests"] = json!(7);
    body["website"] = json!("alatau.example.kz");
    body["arrival"] = json!("01.06.2026");
    let mut answers = Vec::new();
    for (lang, guests, website, arrival) in [
        ("en", "Guests must be in the range 0–5.", "Website must be a web address", "Arrival must be a date like"),
        (
            "ru",
            "Значение поля «Гости» должно быть в пределах 0–5.",
            "Поле «Сайт» должно быть веб-адресом",
            "Поле «Дата приезда»",
        ),
        (
            "zh",
            "“来宾人数”的值必须在 0–5 范围内。",
            "“网站”必须是以 http:// 或 https:// 开头的网址",
            "“到达日期”必须是日期",
        ),
    ] {
        body["_lang"] = json!(lang);
        let reply = app.post_json(EVENT, &body);
        let problem = assert_problem(&reply, 422);
        assert_eq!(reply.header("content-language"), Some(lang));
        let messages: Vec<&str> =
            problem["errors"].as_array().unwrap().iter().map(|e| e["message"].as_str().unwrap()).collect();
        assert_eq!(messages[0], guests, "{lang}");
        assert!(messages[1].starts_with(arrival), "{lang}: {}", messages[1]);
        assert!(messages[2].starts_with(website), "{lang}: {}", messages[2]);
        answers.push(reply.error_codes());
    }
    assert_eq!(
        answers[0],
        [("guests", "out_of_range"), ("arrival", "invalid_date"), ("website", "invalid_url")]
            .map(|(f, c)| (f.to_owned(), c.to_owned()))
    );
    assert!(answers.iter().all(|codes| *codes == answers[0]), "{answers:?}");

    // A plain form post gets its error page in the language, with the labels.
    let form = "name=A&email=a%40example.org&subject=S&message=M&organization=O&event=Gala&photo_consent=on&_lang=ru";
    let page = app.post(EVENT, "application/x-www-form-urlencoded", form, &[]);
    assert_eq!(page.status, 422);
    assert!(page.body.contains("<strong>Мероприятие</strong>"), "{}", page.body);
}

/// `GET /api/v1/forms/{form}`: the public definition in the visitor's language,
/// without recipients or origins.
#[test]
fn a_forms_public_definition_is_in_the_visitors_language() {
    let app = TestApp::spawn(common::TWO_FORMS);
    let reply = app.get("/api/v1/forms/event?_lang=ru");
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("content-language"), Some("ru"));
    let form = reply.json();
    assert_eq!(form["id"], "event");
    assert_eq!(form["title"], "Event registration");
    assert_eq!(
        form["categories"],
        json!([{"value": "question", "label": "Вопрос"}, {"value": "other", "label": "Другое"}])
    );
    assert_eq!(form["optional"], json!(["organization"]));
    assert_eq!(form["required"], json!(["organization"]));
    let fields = form["fields"].as_array().unwrap();
    let names: Vec<&str> = fields.iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "name",
            "email",
            "subject",
            "message",
            "organization",
            "consent",
            "event",
            "department",
            "guests",
            "arrival",
            "website",
            "assistant_email",
            "dietary",
            "badge_name",
            "photo_consent"
        ]
    );
    let field = |name: &str| fields.iter().find(|f| f["name"] == name).unwrap().clone();
    assert_eq!(field("name")["label"], "Имя");
    assert_eq!(field("organization")["required"], true);
    assert_eq!(
        field("event"),
        json!({"name": "event", "label": "Мероприятие", "type": "select", "required": true, "built_in": false,
               "choices": ["Annual conference", "Fintech workshop"]})
    );
    assert_eq!(field("guests")["min"], 0.0);
    assert_eq!(field("guests")["max"], 5.0);
    assert_eq!(field("arrival")["min"], "2026-01-01");
    assert_eq!(field("dietary")["max_length"], 50);
    assert_eq!(field("photo_consent")["type"], "checkbox");
    assert!(!reply.body.contains("example.org"), "no recipient or origin: {}", reply.body);

    let chinese =
        common::Reply::from(ureq::get(&app.url("/api/v1/forms/event")).set("Accept-Language", "zh-CN").call());
    assert_eq!(chinese.header("content-language"), Some("zh"));
    assert!(chinese.body.contains("来宾人数"), "{}", chinese.body);
    let contact = app.get("/api/v1/forms/contact").json();
    assert_eq!(contact["fields"].as_array().unwrap().len(), 9, "the built-in fields: {contact}");
    assert_eq!(contact["lang"], "en");
}
