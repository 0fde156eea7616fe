//! Email: the outbox delivers over real SMTP (mailin-embedded in its own process).

use crate::common;
use std::collections::HashSet;
use std::time::Duration;

use crate::common::smtp::{SmtpSink, TLS_DIR};
use crate::common::{eventually, run_cli, unique_submission, valid_submission, Db, TestApp};
use mail_parser::MimeHeaders;
use serde_json::json;

const SUBMIT: &str = "/api/v1/inquiries";
/// Generous for a loaded CI machine, far below the worker's 30 s safety poll:
/// a message only arrives within it when the commit wakes the worker.
const PROMPTLY: Duration = Duration::from_secs(5);

fn submit(app: &TestApp, body: &serde_json::Value) -> String {
    let reply = app.post_json(SUBMIT, body);
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.json()["id"].as_str().unwrap().to_owned()
}

fn notification(db: &Db, inquiry: &str, kind: &str) -> std::collections::HashMap<String, Option<String>> {
    db.row(&format!("SELECT * FROM notifications WHERE inquiry_id = ? AND kind = '{kind}'"), inquiry)
        .expect("notification row")
}

#[test]
fn staff_email_arrives_promptly_with_every_header() {
    let sink = SmtpSink::start();
    let app = TestApp::spawn(&sink.config());
    let mut body = valid_submission();
    body["message"] =
        json!("Hello <script>alert('x')</script> & co.\n.\n..\n.\r\nMAIL FROM:<evil@example.org>\r\n.\nEnd");
    let id = submit(&app, &body);

    let messages = sink.wait_for(1, PROMPTLY);
    assert_eq!(messages.len(), 1, "staff email did not arrive promptly");
    let received = &messages[0];
    assert_eq!(received.from, "no-reply@localhost");
    assert_eq!(received.to, vec!["inbox@localhost"]);
    let email = received.parsed();

    let subject = email.subject().unwrap();
    assert!(subject.starts_with("Inquiry [question] 关于合作的问题"), "{subject}");
    assert!(subject.contains(&id), "{subject}");
    let reply_to = email.reply_to().unwrap().first().unwrap();
    assert_eq!(reply_to.name(), Some("Иван Петров"));
    assert_eq!(reply_to.address(), Some("ivan@example.org"));
    assert_eq!(received.header("X-Inquiry-Id").as_deref(), Some(id.as_str()));
    let db = app.db();
    // The sink holds the message once DATA ends; the worker records `sent` after
    // it reads the 250 reply, so the row may still say `sending` for a moment.
    let row = eventually("the staff notification marked sent", || {
        Some(notification(&db, &id, "staff")).filter(|row| row["status"].as_deref() == Some("sent"))
    });
    let message_id = row["message_id"].clone().unwrap();
    assert_eq!(format!("<{}>", email.message_id().unwrap()), message_id);
    assert!(row["smtp_response"].as_deref().is_some_and(|r| r.starts_with("250")), "{row:?}");

    let text = email.body_text(0).unwrap();
    let sent_message = "Hello <script>alert('x')</script> & co.\n.\n..\n.\nMAIL FROM:<evil@example.org>\n.\nEnd";
    assert!(text.replace("\r\n", "\n").contains(sent_message), "dot lines must arrive intact:\n{text}");
    for field in ["Қазақ университеті", "پاکستان", "+7 (701) 555-01.23", "https://example.org/contact", id.as_str()]
    {
        assert!(text.contains(field), "{field} missing from the text part");
    }
    let html = email.body_html(0).unwrap();
    assert!(html.contains("&lt;script&gt;"), "{html}");
    assert!(!html.contains("<script>"));
    assert!(html.contains("Иван Петров") && html.contains(&id));
    // The same message was not also sent a second time.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(sink.messages().len(), 1);
}

/// Sends one inquiry through a STARTTLS + AUTH relay configured with `smtp`
/// (and `env`), and checks that it arrived authenticated without the password
/// reaching the log.
fn assert_delivered_with_auth(smtp: &str, env: &[(&str, &str)]) {
    let sink = SmtpSink::start_secure("relay-user", "relay-pass");
    let config = format!(
        "{}\n[smtp]\ntls = \"starttls\"\nusername = \"relay-user\"\nca_file = \"{TLS_DIR}/ca.pem\"\n{smtp}",
        sink.config()
    );
    let app = TestApp::spawn_with_env(&config, env);
    let id = submit(&app, &valid_submission());
    let messages = sink.wait_for(1, PROMPTLY);
    assert_eq!(messages.len(), 1, "{}", app.logs());
    assert_eq!(messages[0].auth_user.as_deref(), Some("relay-user"));
    assert_eq!(messages[0].header("X-Inquiry-Id").as_deref(), Some(id.as_str()));
    assert!(!app.logs().contains("relay-pass"), "the SMTP password must never be logged");
}

#[test]
fn starttls_and_auth_are_used() {
    assert_delivered_with_auth("password = \"relay-pass\"", &[]);
}

#[test]
fn an_idn_address_travels_in_its_ascii_form() {
    let sink = SmtpSink::start();
    let app = TestApp::spawn(&format!("{}\n[mail]\nacknowledge_submitter = true", sink.config()));
    let mut body = valid_submission();
    body["email"] = json!("Ivan@Пример.РФ");
    let id = submit(&app, &body);
    let messages = sink.wait_for(2, PROMPTLY);
    assert_eq!(messages.len(), 2, "{}", app.logs());
    let staff = messages.iter().find(|m| m.to == vec!["inbox@localhost"]).expect("the staff email");
    let reply_to = staff.parsed().reply_to().unwrap().first().unwrap().address().unwrap().to_owned();
    assert_eq!(reply_to, "Ivan@xn--e1afmkfd.xn--p1ai", "the local part as sent, the domain in ASCII");
    let raw = String::from_utf8_lossy(&staff.raw);
    let header = raw.lines().find(|l| l.starts_with("Reply-To:")).unwrap();
    assert!(header.is_ascii(), "{header}");
    let receipt = messages.iter().find(|m| m.to != vec!["inbox@localhost"]).expect("the receipt");
    assert_eq!(receipt.to, vec!["Ivan@xn--e1afmkfd.xn--p1ai"], "the envelope needs no SMTPUTF8");
    // Stored as the visitor wrote it.
    let db = app.db();
    let row = db.row("SELECT email, email_norm FROM inquiries WHERE id = ?", &id).unwrap();
    assert_eq!(row["email"].as_deref(), Some("Ivan@Пример.РФ"));
    assert_eq!(row["email_norm"].as_deref(), Some("ivan@xn--e1afmkfd.xn--p1ai"));
}

#[test]
fn smtp_password_can_come_from_a_secret_file() {
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), "relay-pass\n").unwrap();
    assert_delivered_with_auth("", &[("INQUIRYD_SMTP__PASSWORD_FILE", secret.path().to_str().unwrap())]);
}

#[test]
fn wrong_credentials_and_untrusted_certificates_are_retried_not_sent() {
    let sink = SmtpSink::start_secure("relay-user", "relay-pass");
    let wrong_password = format!(
        "{}\n[smtp]\ntls = \"starttls\"\nusername = \"relay-user\"\npassword = \"nope\"\nca_file = \"{TLS_DIR}/ca.pem\"",
        sink.config()
    );
    let app = TestApp::spawn(&wrong_password);
    let id = submit(&app, &valid_submission());
    let db = app.db();
    let row = wait_for_attempt(&db, &id);
    assert_eq!(row["status"].as_deref(), Some("pending"));
    assert!(row["last_error"].as_deref().unwrap().contains("AUTH"), "{row:?}");

    // Without the private CA the server's certificate is not trusted.
    let untrusted = format!("{}\n[smtp]\ntls = \"starttls\"", sink.config());
    let app = TestApp::spawn(&untrusted);
    let id = submit(&app, &valid_submission());
    let row = wait_for_attempt(&app.db(), &id);
    assert!(row["last_error"].as_deref().unwrap().contains("STARTTLS"), "{row:?}");
    assert!(sink.messages().is_empty());
}

fn wait_for_attempt(db: &Db, inquiry: &str) -> std::collections::HashMap<String, Option<String>> {
    eventually("a recorded delivery attempt", || {
        let row = notification(db, inquiry, "staff");
        let settled = matches!(row["status"].as_deref(), Some("sent" | "failed"));
        (settled || (row["last_error"].is_some() && row["status"].as_deref() == Some("pending"))).then_some(row)
    })
}

#[test]
fn routes_by_category_and_sends_the_receipt() {
    let sink = SmtpSink::start();
    let config = format!(
        "{}\n[mail]\nacknowledge_submitter = true\n[mail.routes]\ncommendation = [\"communications@localhost\", \"director@localhost\"]",
        sink.config()
    );
    let app = TestApp::spawn(&config);
    let mut praise = unique_submission(1);
    praise["category"] = json!("commendation");
    let praise_id = submit(&app, &praise);
    let question_id = submit(&app, &unique_submission(2));

    let messages = sink.wait_for(4, PROMPTLY);
    assert_eq!(messages.len(), 4);
    let find = |id: &str, receipt: bool| {
        messages
            .iter()
            .find(|m| {
                m.header("X-Inquiry-Id").as_deref() == Some(id) && m.header("Auto-Submitted").is_some() == receipt
            })
            .unwrap_or_else(|| panic!("no {} for {id}", if receipt { "receipt" } else { "staff email" }))
            .clone()
    };
    let staff = find(&praise_id, false);
    assert_eq!(staff.to, vec!["communications@localhost", "director@localhost"]);
    assert_eq!(find(&question_id, false).to, vec!["inbox@localhost"]);

    let receipt = find(&praise_id, true);
    assert_eq!(receipt.to, vec!["ivan@example.org"], "a receipt goes only to the visitor");
    assert_eq!(receipt.header("Auto-Submitted").as_deref(), Some("auto-replied"));
    let parsed = receipt.parsed();
    assert!(parsed.body_text(0).unwrap().contains(&praise_id));
    assert!(parsed.reply_to().is_none());
}

/// The receipt is written in the language the visitor was answered in (the
/// `_lang` field, else Accept-Language); the staff email never changes language.
#[test]
fn the_receipt_speaks_the_visitors_language() {
    let sink = SmtpSink::start();
    let app = TestApp::spawn(&format!("{}\n[mail]\nacknowledge_submitter = true", sink.config()));
    let english = submit(&app, &unique_submission(1));
    let reply = app.post(
        SUBMIT,
        "application/json",
        &unique_submission(2).to_string(),
        &[("Accept-Language", "ru-KZ, ru;q=0.9, en;q=0.5")],
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    let russian = reply.json()["id"].as_str().unwrap().to_owned();
    let mut chinese_body = unique_submission(3);
    chinese_body["_lang"] = json!("zh-Hans-CN");
    let reply = app.post(SUBMIT, "application/json", &chinese_body.to_string(), &[("Accept-Language", "ru")]);
    assert_eq!(reply.status, 201, "{}", reply.body);
    let chinese = reply.json()["id"].as_str().unwrap().to_owned();

    let messages = sink.wait_for(6, PROMPTLY);
    let find = |id: &str, receipt: bool| {
        messages
            .iter()
            .find(|m| {
                m.header("X-Inquiry-Id").as_deref() == Some(id) && m.header("Auto-Submitted").is_some() == receipt
            })
            .unwrap_or_else(|| panic!("no message for {id}"))
            .clone()
    };
    for (id, lang, subject, greeting) in [
        (&english, "en", "We received your message", "Dear Иван Петров,"),
        (&russian, "ru", "Мы получили ваше сообщение", "Здравствуйте, Иван Петров!"),
        (&chinese, "zh", "我们已收到您的留言", "Иван Петров，您好！"),
    ] {
        let receipt = find(id, true);
        assert_eq!(receipt.header("Content-Language").as_deref(), Some(lang));
        let parsed = receipt.parsed();
        assert!(parsed.subject().unwrap().starts_with(subject), "{lang}: {:?}", parsed.subject());
        let text = parsed.body_text(0).unwrap();
        assert!(text.contains(greeting) && text.contains(id.as_str()), "{lang}: {text}");
        assert!(parsed.body_html(0).unwrap().contains(&format!("<html lang=\"{lang}\">")));
        let staff = find(id, false);
        assert!(staff.header("Content-Language").is_none());
        assert!(staff.parsed().subject().unwrap().starts_with("Inquiry"), "staff email is not translated");
    }
}

#[test]
fn outage_loses_nothing_and_delivers_each_once() {
    let mut sink = SmtpSink::start();
    let app = TestApp::spawn(&sink.config());
    sink.stop();
    let ids: Vec<String> = (0..5).map(|n| submit(&app, &unique_submission(n))).collect();
    let db = app.db();
    for id in &ids {
        let row = wait_for_attempt(&db, id);
        assert_eq!(row["status"].as_deref(), Some("pending"), "{row:?}");
        assert!(row["last_error"].as_deref().unwrap().contains("connect"), "{row:?}");
    }
    assert!(app.metric("inquiryd_notifications_pending") >= 5.0);

    sink.resume();
    // Backoff is 1 s, 2 s, 4 s... with jitter: within 15 s every one is due again.
    let messages = sink.wait_for(5, Duration::from_secs(15));
    std::thread::sleep(Duration::from_millis(500));
    let messages_after = sink.messages();
    assert_eq!(messages.len(), 5, "{}", app.logs());
    assert_eq!(messages_after.len(), 5, "delivered exactly once");
    let delivered: HashSet<String> = messages.iter().map(|m| m.header("X-Inquiry-Id").unwrap()).collect();
    assert_eq!(delivered, ids.iter().cloned().collect());
    for id in &ids {
        let row = notification(&db, id, "staff");
        assert_eq!(row["status"].as_deref(), Some("sent"));
        let attempts: i64 = row["attempts"].as_deref().unwrap().parse().unwrap();
        assert!(attempts >= 2);
        // Each failed attempt keeps a row; the last, delivered one is the notification's own.
        let logged = db.scalar(
            "SELECT COUNT(*) FROM notification_attempts WHERE notification_id = ? AND outcome = 'retry'",
            row["id"].as_deref().unwrap(),
        );
        assert_eq!(logged, attempts - 1, "every failed attempt is kept");
        assert!(row["sent_at"].is_some() && row["smtp_response"].as_deref().is_some_and(|r| r.starts_with("250")));
    }
    // The admin view lists every attempt, the delivered one last.
    let token = app.create_token("read");
    let view = app.admin("GET", &format!("/inquiries/{}", ids[0]), Some(&token), None).json();
    let email = view["deliveries"].as_array().unwrap().iter().find(|d| d["channel"] == "email").unwrap().clone();
    let attempts = email["attempts"].as_array().unwrap();
    let row = notification(&db, &ids[0], "staff");
    assert_eq!(attempts.len().to_string(), row["attempts"].clone().unwrap(), "{email}");
    let (last, failed) = attempts.split_last().unwrap();
    assert_eq!(last["outcome"], "sent");
    assert!(last["detail"].as_str().unwrap().starts_with("250"), "{email}");
    assert!(failed.iter().all(|a| a["outcome"] == "retry" && a["detail"].as_str().unwrap().contains("connect")));
}

/// A server that accepts connections and never answers (past the 5 s SMTP
/// timeout, so the first round fails and is retried) while far more mail is
/// queued than one round claims (16 with one connection): once it answers,
/// every email arrives, and only once.
#[test]
fn a_hanging_server_and_a_long_queue_deliver_each_once() {
    let sink = SmtpSink::start();
    let app = TestApp::spawn(&format!("{}\n{}\nconcurrency = 1", sink.config(), common::SHORT_LEASE));
    sink.freeze();
    let ids: HashSet<String> = (0..150).map(|n| submit(&app, &unique_submission(n))).collect();
    // Past the 5 s SMTP timeout: the first round fails and is retried.
    std::thread::sleep(Duration::from_secs(6));
    sink.thaw();
    let messages = sink.wait_for(150, Duration::from_secs(40));
    std::thread::sleep(Duration::from_secs(2));
    let messages_after = sink.messages();
    let delivered: HashSet<String> = messages_after.iter().map(|m| m.header("X-Inquiry-Id").unwrap()).collect();
    assert_eq!(delivered, ids, "every inquiry's staff email arrives");
    assert_eq!(messages.len(), 150, "{}", app.logs());
    assert_eq!(messages_after.len(), 150, "each is delivered once");
    let db = app.db();
    assert_eq!(db.scalar("SELECT COUNT(*) FROM notifications WHERE status = 'sent'", ""), 150);
}

/// A delivery is listed as its notification's last attempt; a database from
/// before that, which logged the success in a row of its own, shows that row
/// once, not twice.
#[test]
fn a_delivery_is_listed_once_whether_or_not_it_was_logged_apart() {
    let sink = SmtpSink::start();
    let app = TestApp::spawn(&sink.config());
    let id = submit(&app, &valid_submission());
    let db = app.db();
    let row = eventually("the staff email sent", || {
        Some(notification(&db, &id, "staff")).filter(|row| row["status"].as_deref() == Some("sent"))
    });
    assert_eq!(db.scalar("SELECT COUNT(*) FROM notification_attempts", ""), 0, "a success has no row of its own");
    let token = app.create_token("read");
    let attempts = |app: &TestApp| -> Vec<serde_json::Value> {
        let view = app.admin("GET", &format!("/inquiries/{id}"), Some(&token), None).json();
        let email = view["deliveries"].as_array().unwrap().iter().find(|d| d["channel"] == "email").unwrap().clone();
        email["attempts"].as_array().unwrap().clone()
    };
    let listed = attempts(&app);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["outcome"], "sent");
    assert_eq!(listed[0]["detail"].as_str(), row["smtp_response"].as_deref());

    let nid = row["id"].clone().unwrap();
    db.write(&format!(
        "INSERT INTO notification_attempts (notification_id, attempt, at, outcome, detail) \
         VALUES ('{nid}', 1, 0, 'sent', '250 logged apart')"
    ));
    let listed = attempts(&app);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["detail"], "250 logged apart");
}

#[test]
fn permanent_rejection_fails_at_once_with_the_error_kept() {
    let sink = SmtpSink::start_with(&["--reject-rcpt", "550"]);
    let app = TestApp::spawn(&sink.config());
    let id = submit(&app, &valid_submission());
    let db = app.db();
    let row = wait_for_attempt(&db, &id);
    assert_eq!(row["status"].as_deref(), Some("failed"), "{row:?}");
    assert_eq!(row["attempts"].as_deref(), Some("1"));
    assert!(row["last_error"].as_deref().unwrap().contains("550"), "{row:?}");
    assert_eq!(app.metric("inquiryd_notifications_failed_total{kind=\"staff\"}"), 1.0);
}

#[test]
fn temporary_rejection_is_retried() {
    let sink = SmtpSink::start_with(&["--reject-rcpt", "451"]);
    let app = TestApp::spawn(&format!("{}\n[mail]\nmax_attempts = 2", sink.config()));
    let id = submit(&app, &valid_submission());
    let db = app.db();
    let row = wait_for_attempt(&db, &id);
    assert_eq!(row["status"].as_deref(), Some("pending"), "{row:?}");
    assert!(row["last_error"].as_deref().unwrap().contains("451"));
    // The second attempt is the last one allowed.
    eventually("failed after max_attempts", || {
        (notification(&db, &id, "staff")["status"].as_deref() == Some("failed")).then_some(())
    });
}

#[test]
fn killed_with_mail_pending_delivers_after_restart() {
    let mut sink = SmtpSink::start();
    let app = TestApp::spawn(&format!("{}\n{}", sink.config(), common::SHORT_LEASE));
    sink.stop();
    let ids: Vec<String> = (0..3).map(|n| submit(&app, &unique_submission(n))).collect();
    let app = app.kill_and_restart();
    sink.resume();
    let messages = sink.wait_for(3, Duration::from_secs(15));
    let delivered: HashSet<String> = messages.iter().map(|m| m.header("X-Inquiry-Id").unwrap()).collect();
    assert_eq!(delivered, ids.into_iter().collect(), "{}", app.logs());
}

#[test]
fn spam_sends_no_email() {
    let sink = SmtpSink::start();
    let app = TestApp::spawn(&sink.config());
    let mut bot = unique_submission(1);
    bot["_gotcha"] = json!("http://spam.example");
    submit(&app, &bot);
    let human = submit(&app, &unique_submission(2));
    let messages = sink.wait_for(1, PROMPTLY);
    std::thread::sleep(Duration::from_millis(300));
    let ids: Vec<String> = sink.messages().iter().map(|m| m.header("X-Inquiry-Id").unwrap()).collect();
    assert_eq!(ids, vec![human]);
    assert_eq!(messages.len(), 1);
}

#[test]
fn file_transport_writes_eml_files() {
    let app = TestApp::spawn("");
    let id = submit(&app, &valid_submission());
    let dir = app.dir.path().join("mail");
    let name = eventually(&format!("an .eml file for {id}"), || {
        let names: Vec<String> = std::fs::read_dir(&dir)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        names.into_iter().find(|n| n.starts_with(&id) && n.ends_with(".eml"))
    });
    let raw = std::fs::read(dir.join(name)).unwrap();
    let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
    assert!(parsed.subject().unwrap().contains("关于合作的问题"));
    assert!(parsed.parts.iter().any(|p| p.content_type().is_some_and(|c| c.subtype() == Some("html"))));
}

#[test]
fn mail_test_command_reports_the_smtp_outcome() {
    let mut sink = SmtpSink::start();
    let dir = common::Workdir::new();
    dir.write_config(&sink.config());
    let out = run_cli(dir.path(), &[], &["mail", "test", "--to", "ops@example.org"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("250"), "{stdout}");
    assert_eq!(sink.wait_for(1, PROMPTLY)[0].to, vec!["ops@example.org"]);

    sink.stop();
    let out = run_cli(dir.path(), &[], &["mail", "test", "--to", "ops@example.org"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("transient") && stderr.contains("connect"), "{stderr}");
}

#[test]
fn staff_edited_templates_replace_the_built_in_ones() {
    let sink = SmtpSink::start();
    let templates = tempfile::tempdir().unwrap();
    std::fs::write(templates.path().join("staff_subject.txt"), "[Website] {{ subject }} — {{ name }} ({{ id }})\n")
        .unwrap();
    std::fs::write(templates.path().join("staff.html"), "<p>{{ message }}</p>\n").unwrap();
    let config = format!("{}\n[mail]\ntemplates_dir = \"{}\"", sink.config(), templates.path().display());
    let app = TestApp::spawn(&config);
    let mut body = valid_submission();
    body["message"] = json!("<b>bold?</b>");
    let id = submit(&app, &body);
    let messages = sink.wait_for(1, PROMPTLY);
    let email = messages[0].parsed();
    assert_eq!(email.subject().unwrap(), format!("[Website] 关于合作的问题 — Иван Петров ({id})"));
    assert_eq!(
        email.body_html(0).unwrap().trim(),
        "<p>&lt;b&gt;bold?&lt;&#x2f;b&gt;</p>",
        "edited HTML is still escaped"
    );
    assert!(email.body_text(0).unwrap().contains("Reply to this email"), "files not in the directory stay built in");

    std::fs::write(templates.path().join("staff.txt"), "{% if %}").unwrap();
    let dir = common::Workdir::new();
    dir.write_config(&config);
    let out = run_cli(dir.path(), &[], &["mail", "test", "--to", "ops@example.org"]);
    assert!(!out.status.success(), "a broken template is refused, not sent");
    assert!(String::from_utf8_lossy(&out.stderr).contains("template"));
}

/// Two forms, each mailing its own inbox (and the event form routing by its
/// `department` select); the staff email lists the custom fields in form order
/// with their labels.
#[test]
fn each_form_mails_its_own_inbox_with_its_custom_fields() {
    let sink = SmtpSink::start();
    let app = TestApp::spawn(&format!("{}{}", sink.config(), common::TWO_FORMS));
    let contact = submit(&app, &valid_submission());
    let event = common::event_registration();
    let registration = app.post_json("/api/v1/forms/event/inquiries", &event).json()["id"].as_str().unwrap().to_owned();
    let mut press = event.clone();
    press["message"] = json!("A journalist's registration.");
    press["department"] = json!("press");
    let press = app.post_json("/api/v1/forms/event/inquiries", &press).json()["id"].as_str().unwrap().to_owned();

    let messages = sink.wait_for(3, PROMPTLY);
    assert_eq!(messages.len(), 3);
    let to = |id: &str| {
        let message = messages.iter().find(|m| m.header("X-Inquiry-Id").as_deref() == Some(id)).expect("mail for id");
        (message.to.clone(), message)
    };
    assert_eq!(to(&contact).0, ["inbox@localhost"]);
    assert_eq!(to(&registration).0, ["events@example.org"]);
    assert_eq!(to(&press).0, ["press@example.org"], "routed by the department select");

    let email = to(&registration).1.parsed();
    let text = email.body_text(0).unwrap().replace("\r\n", "\n");
    let expected = "Form:          Event registration (event)\nEvent: Fintech workshop\nGuests: 2\n\
                    Arrival: 2026-06-01\nWebsite: https://alatau.example.kz\n\
                    Assistant's email: office@alatau.example.kz\nDietary needs: Vegetarian\nNo nuts\n\
                    Badge name: Zhanar\nPhotos allowed: yes\n";
    assert!(text.contains(expected), "custom fields in form order:\n{text}");
    let html = email.body_html(0).unwrap();
    assert!(html.contains("<th align=\"left\">Assistant&#x27;s email</th>"), "{html}");
    let plain = to(&contact).1.parsed().body_text(0).unwrap().into_owned();
    assert!(!plain.contains("Form:"), "the contact form's email is as before:\n{plain}");
}

/// `acknowledge_submitter` is a form's own (here set from the environment):
/// the event form's visitors get a receipt, the contact form's do not.
#[test]
fn a_forms_own_acknowledge_submitter_sends_its_visitors_a_receipt() {
    let sink = SmtpSink::start();
    let env = [("INQUIRYD_FORMS__EVENT__ACKNOWLEDGE_SUBMITTER", "true")];
    let app = TestApp::spawn_with_env(&format!("{}{}", sink.config(), common::TWO_FORMS), &env);
    let contact = submit(&app, &valid_submission());
    let mut event = common::event_registration();
    event["_lang"] = json!("ru");
    let reply = app.post_json("/api/v1/forms/event/inquiries", &event);
    assert_eq!(reply.status, 201, "{}", reply.body);
    let registration = reply.json()["id"].as_str().unwrap().to_owned();
    let messages = sink.wait_for(3, PROMPTLY);
    std::thread::sleep(Duration::from_millis(300));
    let messages = if messages.len() == 3 { sink.messages() } else { messages };
    let mut seen: Vec<(String, Vec<String>)> =
        messages.iter().map(|m| (m.header("X-Inquiry-Id").unwrap_or_default(), m.to.clone())).collect();
    seen.sort();
    let mut expected = vec![
        (contact.clone(), vec!["inbox@localhost".to_owned()]),
        (registration.clone(), vec!["events@example.org".to_owned()]),
        (registration.clone(), vec!["zhanar@example.org".to_owned()]),
    ];
    expected.sort();
    assert_eq!(seen, expected);
    let receipt = messages.iter().find(|m| m.to == ["zhanar@example.org"]).unwrap();
    assert_eq!(receipt.header("Content-Language").as_deref(), Some("ru"));
    assert_eq!(receipt.header("Auto-Submitted").as_deref(), Some("auto-replied"));
}

/// Outcomes are recorded while a claim is still being delivered, at least
/// every quarter of a claim (16 with one connection), not only when the
/// claim is done: with a slow mail server, what was delivered shows as sent,
/// and a crash would send few emails again. Sampled throughout: delivered
/// (counted first) minus recorded as sent never exceeds that quarter, the
/// one in flight, and a little slack.
#[test]
fn outcomes_are_recorded_while_a_slow_claim_is_still_being_delivered() {
    let sink = SmtpSink::start_with(&["--delay-ms", "20"]);
    let app = TestApp::spawn(&format!("{}\n[mail]\nconcurrency = 1", sink.config()));
    let total = 150;
    for n in 0..total {
        submit(&app, &unique_submission(n));
    }
    let db = app.db();
    let (mut widest, deadline) = (0, std::time::Instant::now() + Duration::from_secs(60));
    loop {
        assert!(std::time::Instant::now() < deadline, "not every email recorded as sent within 60 s");
        let delivered = sink.messages().len() as i64;
        let sent = db.scalar("SELECT COUNT(*) FROM notifications WHERE status = 'sent'", "");
        widest = widest.max(delivered - sent);
        if sent == total as i64 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(widest <= 20, "{widest} emails delivered and not yet recorded at once");
}
