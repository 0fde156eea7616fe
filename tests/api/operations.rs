//! Operations: metrics, OpenAPI, graceful shutdown, JSON logs, backup, config
//! check and the container recipe.

use crate::common;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::common::smtp::SmtpSink;
use crate::common::{eventually, run_cli, unique_submission, valid_submission, Db, TestApp};
use serde_json::{json, Value};

const SUBMIT: &str = "/api/v1/inquiries";

#[test]
fn metrics_follow_submissions_and_deliveries() {
    let app = TestApp::spawn("[spam]\nmax_links = 1\n[limits]\nper_email_per_hour = 2");
    let before = app.metric("inquiryd_submissions_total{outcome=\"accepted\"}");
    assert_eq!(before, 0.0);
    app.post_json(SUBMIT, &unique_submission(1));
    app.post_json(SUBMIT, &unique_submission(1));
    let mut spam = unique_submission(2);
    spam["message"] = json!("http://a.example http://b.example");
    spam["email"] = json!("bot@example.org");
    app.post_json(SUBMIT, &spam);
    app.post_json(SUBMIT, &json!({"name": ""}));
    app.post_json(SUBMIT, &unique_submission(3));
    assert_eq!(app.get("/no-such-page").status, 404);
    let sent = eventually("a staff email sent", || {
        Some(app.metric("inquiryd_notifications_sent_total{kind=\"staff\"}")).filter(|sent| *sent >= 1.0)
    });
    let text = app.get("/metrics").body;
    let value = |sample: &str| app.metric(sample);
    assert_eq!(value("inquiryd_submissions_total{outcome=\"accepted\"}"), 1.0, "{text}");
    assert_eq!(value("inquiryd_submissions_total{outcome=\"duplicate\"}"), 1.0);
    assert_eq!(value("inquiryd_submissions_total{outcome=\"spam\"}"), 1.0);
    assert_eq!(value("inquiryd_submissions_total{outcome=\"invalid\"}"), 1.0);
    assert_eq!(value("inquiryd_submissions_total{outcome=\"rate_limited\"}"), 1.0, "the third from one email");
    assert_eq!(sent, 1.0, "one staff email: the duplicate and the spam send none");
    assert_eq!(value("inquiryd_notifications_pending"), 0.0);
    assert!(text.contains("inquiryd_notifications_oldest_pending_age_seconds"));
    assert!(text.contains("inquiryd_group_commit_batch_size_bucket"));
    // From one scrape, so that no commit can fall between the two readings.
    let in_text =
        |sample: &str| -> f64 { text.lines().find_map(|l| l.strip_prefix(sample)?.trim().parse().ok()).unwrap_or(0.0) };
    let commits = in_text("inquiryd_store_commits_total");
    assert!(commits >= 3.0, "{text}");
    for phase in ["write", "commit"] {
        let timed = in_text(&format!("inquiryd_store_transaction_seconds_count{{phase=\"{phase}\"}}"));
        assert_eq!(timed, commits, "every transaction is timed in phase {phase}");
    }
    assert!(
        text.contains(
            "inquiryd_http_request_duration_seconds_bucket{route=\"/api/v1/inquiries\",method=\"POST\",status=\"201\""
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "inquiryd_http_request_duration_seconds_count{route=\"unmatched\",method=\"GET\",status=\"404\"} 1"
        ),
        "unknown paths share one label instead of one series each: {text}"
    );
}

/// Enums are enums, bounds the enforced bounds, and the statuses routes answer
/// are listed (schemathesis, in `tests/schemathesis/run.sh`, checks the rest).
#[test]
fn openapi_document_is_exact() {
    let app = TestApp::spawn("");
    let doc = app.get("/api/v1/openapi.json").json();
    let paths = &doc["paths"];
    let param = |path: &str, method: &str, name: &str| {
        paths[path][method]["parameters"].as_array().unwrap().iter().find(|p| p["name"] == name).cloned().unwrap()
    };
    let list = "/api/v1/admin/inquiries";
    assert_eq!(
        param(list, "get", "status")["schema"]["enum"],
        json!(["new", "in_progress", "resolved", "spam", "archived"])
    );
    assert_eq!(
        param(list, "get", "category")["schema"]["enum"],
        json!(["inquiry", "question", "commendation", "other"])
    );
    assert_eq!(param(list, "get", "limit")["schema"]["minimum"], 1);
    assert_eq!(param(list, "get", "limit")["schema"]["maximum"], 200);
    assert_eq!(param("/api/v1/admin/inquiries/export", "get", "format")["schema"]["enum"], json!(["csv", "ndjson"]));
    let schemas = &doc["components"]["schemas"];
    assert_eq!(schemas["StatusChange"]["properties"]["status"]["$ref"], "#/components/schemas/InquiryStatus");
    assert_eq!(schemas["StatusChange"]["additionalProperties"], false);
    assert_eq!(schemas["Submission"]["additionalProperties"], false);
    for (path, method) in [("/api/v1/admin/inquiries/{id}", "patch"), ("/api/v1/admin/erasures", "post")] {
        let responses = &paths[path][method]["responses"];
        for status in ["400", "413", "415", "422"] {
            assert!(responses.get(status).is_some(), "{method} {path} lacks {status}");
        }
    }
    let submit = &paths["/api/v1/inquiries"]["post"]["responses"];
    for status in ["400", "409", "413", "422", "429", "503"] {
        assert!(submit[status]["content"].get("text/html").is_some(), "the form's error page for {status}");
    }
    assert!(paths["/thanks"]["get"]["responses"].get("400").is_some());
}

#[test]
fn openapi_document_is_3_1_complete_and_committed() {
    let app = TestApp::spawn("");
    let reply = app.get("/api/v1/openapi.json");
    assert_eq!(reply.status, 200);
    let served = reply.json();
    assert!(served["openapi"].as_str().unwrap().starts_with("3.1"), "{}", served["openapi"]);
    let paths = served["paths"].as_object().unwrap();
    for path in [
        "/api/v1/inquiries",
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/v1/admin/inquiries",
        "/api/v1/admin/inquiries/{id}",
        "/api/v1/admin/inquiries/export",
        "/api/v1/admin/stats",
        "/api/v1/admin/notifications/{id}/retry",
        "/api/v1/admin/erasures",
        "/api/v1/admin/audit",
    ] {
        assert!(paths.contains_key(path), "{path} missing from the OpenAPI document");
    }
    let submit = &served["paths"]["/api/v1/inquiries"]["post"]["responses"];
    for status in ["201", "303", "400", "403", "409", "413", "415", "422", "429", "503"] {
        assert!(submit.get(status).is_some(), "POST /api/v1/inquiries lacks {status}");
    }
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json")).unwrap(),
    )
    .unwrap();
    assert!(
        committed == served,
        "docs/openapi.json is out of date: regenerate it with\n  \
         curl -s localhost:8080/api/v1/openapi.json | python3 -m json.tool > docs/openapi.json"
    );
}

/// Submits from 8 threads until `stop` is set, `limit` are answered, or a
/// request is refused (the server stopping); returns the ids answered 201.
fn submit_until(url: &str, limit: usize, stop: &AtomicBool) -> Vec<String> {
    let answered = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for t in 0..8 {
            let answered = &answered;
            scope.spawn(move || {
                for n in 0.. {
                    if stop.load(Ordering::Relaxed) || answered.lock().unwrap().len() >= limit {
                        return;
                    }
                    let body = unique_submission(t * 1_000_000 + n).to_string();
                    match ureq::post(url).set("Content-Type", "application/json").send_string(&body) {
                        Ok(r) if r.status() == 201 => {
                            let id = r.into_json::<Value>().unwrap()["id"].as_str().unwrap().to_owned();
                            answered.lock().unwrap().push(id);
                        }
                        _ => return,
                    }
                }
            });
        }
    });
    answered.into_inner().unwrap()
}

/// The inquiry ids of the file transport's copies of notifications in `dir`,
/// one per email (`inquiryd mail test`'s are named `test-…`).
fn mail_copies(dir: &std::path::Path) -> Vec<String> {
    let names = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned());
    names.filter(|n| n.ends_with(".eml") && !n.starts_with("test-")).map(|n| n[..36].to_owned()).collect()
}

/// Every id answered 201 is stored once with its emails, and no outbox row is
/// left claimed.
fn assert_nothing_answered_lost(app: &TestApp, answered: &[String]) {
    let db = app.db();
    for id in answered {
        assert_eq!(
            db.scalar("SELECT COUNT(*) FROM inquiries WHERE id = ?", id),
            1,
            "{id} was answered 201 but is lost"
        );
        assert_eq!(db.scalar("SELECT COUNT(*) FROM notifications WHERE inquiry_id = ?", id), 2, "{id} lost an email");
    }
    let claimed = db.scalar("SELECT COUNT(*) FROM notifications WHERE status = 'sending'", "");
    assert_eq!(claimed, 0, "claims in flight are handed back at shutdown");
}

#[test]
fn sigterm_under_load_with_every_background_task_exits_in_time_and_loses_nothing() {
    // Every optional task on: retention, the outbox worker sending staff emails and
    // receipts to a real SMTP server, and the limiter housekeeping (always on).
    let sink = SmtpSink::start();
    let timeout = 10;
    let mut app = TestApp::spawn(&format!(
        "{}\n[server]\nshutdown_timeout_seconds = {timeout}\n[privacy]\nretention_days = 30\n\
         [mail]\nacknowledge_submitter = true",
        sink.config()
    ));
    eventually("the first retention purge", || app.logs().contains("retention purge done").then_some(()));
    let stop = AtomicBool::new(false);
    let url = app.url(SUBMIT);
    let (status, answered) = std::thread::scope(|scope| {
        let load = scope.spawn(|| submit_until(&url, usize::MAX, &stop));
        eventually("mail delivered under load", || (sink.messages().len() >= 100).then_some(()));
        let status = app.terminate_within(Duration::from_secs(timeout));
        stop.store(true, Ordering::Relaxed);
        (status, load.join().unwrap())
    });
    assert!(status.success(), "exit status {status:?}\n{}", app.logs());
    assert!(answered.len() >= 50, "only {} answered", answered.len());
    assert_nothing_answered_lost(&app, &answered);
    assert!(app.logs().contains("all tasks stopped"), "{}", app.logs());
}

/// SQLite's writer and its search indexer each run on one thread of their own,
/// named so that `top -H`, `perf` and the benchmarks can tell their CPU apart;
/// SIGTERM still ends the process cleanly with what was answered stored and
/// indexed. (That a writer panic fails the shutdown is the unit test of
/// `spawn_named`.)
#[test]
fn the_sqlite_writer_is_one_named_thread_and_sigterm_still_exits_cleanly() {
    if common::skip_unless_sqlite("the writer thread is SQLite's") {
        return;
    }
    let mut app = TestApp::spawn("");
    let threads: Vec<String> = std::fs::read_dir(format!("/proc/{}/task", app.pid()))
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .collect();
    assert_eq!(threads.iter().filter(|name| *name == "inquiryd-writer").count(), 1, "{threads:?}");
    assert_eq!(threads.iter().filter(|name| *name == "inquiryd-search").count(), 1, "{threads:?}");
    let id = app.post_json(SUBMIT, &valid_submission()).json()["id"].as_str().unwrap().to_owned();
    let status = app.terminate_within(Duration::from_secs(10));
    assert!(status.success(), "exit status {status:?}\n{}", app.logs());
    assert!(app.logs().contains("all tasks stopped"), "{}", app.logs());
    assert_eq!(app.db().scalar("SELECT count(*) FROM inquiries WHERE id = ?", &id), 1);
    // Indexed before the exit (within the indexer's 50 ms of gathering, it would not be).
    let seq = app.db().scalar("SELECT seq FROM inquiries WHERE id = ?", &id).to_string();
    let search = Db::sqlite(&app.dir.path().join("inquiries.db-search"));
    assert_eq!(search.scalar("SELECT count(*) FROM inquiries_fts_docsize WHERE id = ?", &seq), 1);
}

/// A retention purge erases 200 inquiries per transaction: on SIGTERM it
/// finishes the one in progress, forgets the mail files of what it erased and
/// stops, every finished transaction audited, and gives back its claim on the
/// day's run: the next start erases the rest.
#[test]
fn sigterm_while_a_retention_purge_runs_stops_it_between_transactions_and_exits() {
    let mut app = TestApp::spawn("");
    let token = app.create_token("read");
    let answered = submit_until(&app.url(SUBMIT), 3000, &AtomicBool::new(false));
    let mail_dir = app.dir.path().join("mail");
    // Thousands of files, written while other tests run: a generous bound.
    let written = || (mail_copies(&mail_dir).len() >= answered.len()).then_some(());
    common::eventually_within("every staff email written", Duration::from_secs(60), written);
    assert!(app.terminate().success());
    let db = app.db();
    let stored = db.scalar("SELECT COUNT(*) FROM inquiries", "");
    assert!(stored >= 3000 && stored as usize == answered.len(), "{stored} stored, {} answered", answered.len());
    db.write(&format!("UPDATE inquiries SET received_at = received_at - {}", 40 * 86_400_000_i64));

    let timeout = 30;
    let retention = format!("[server]\nshutdown_timeout_seconds = {timeout}\n[privacy]\nretention_days = 30");
    let mut app = app.restart_with(&retention);
    eventually("the purge to start", || app.logs().contains("retention purge started").then_some(()));
    let status = app.terminate_within(Duration::from_secs(timeout));
    assert!(status.success(), "exit status {status:?}\n{}", app.logs());
    assert!(app.logs().contains("retention purge stopped by the shutdown"), "{}", app.logs());
    let left = app.db().scalar("SELECT COUNT(*) FROM inquiries", "");
    assert!(left > 0, "stopped between transactions, not run to its end");
    let db = app.db();
    let mailed_now: HashSet<String> = mail_copies(&mail_dir).into_iter().collect();
    let orphans = mailed_now.iter().filter(|id| db.scalar("SELECT COUNT(*) FROM inquiries WHERE id = ?", id) == 0);
    assert_eq!(orphans.count(), 0, "mail files of erased inquiries are forgotten");
    assert_eq!(mailed_now.len() as i64, left, "and those of the rest kept");

    let audited = |app: &TestApp| -> Vec<i64> {
        let audit = app.admin("GET", "/audit?limit=100", Some(&token), None).json();
        let purges = audit["items"].as_array().unwrap().iter().filter(|e| e["action"] == "retention.purge");
        purges.map(|e| e["detail"]["erased"].as_i64().unwrap()).collect()
    };
    let app = app.restart_with("");
    let erased = audited(&app);
    assert_eq!(erased.iter().sum::<i64>(), stored - left, "every finished transaction audited: {erased:?}");
    assert!(erased.iter().all(|&n| n == 200), "{erased:?}");

    // The stopped purge gave its claim back: the next start's check erases the rest.
    let mut app = app.restart_with(&retention);
    let done = || app.logs().contains("retention purge done").then_some(());
    common::eventually_within("the rest erased", Duration::from_secs(60), done);
    assert_eq!(app.db().scalar("SELECT COUNT(*) FROM inquiries", ""), 0);
    assert_eq!(audited(&app).iter().sum::<i64>(), stored);
    eventually("their mail files forgotten", || mail_copies(&mail_dir).is_empty().then_some(()));
    assert!(app.terminate().success());
}

/// A server killed (kill -9) while its retention purge runs cannot give the
/// day's run back, but its claim is a lease, renewed after each transaction:
/// a start while the lease holds does not purge (another process could be
/// running it), and the first check once it has run out (`retention::HOLD`,
/// ten minutes, aged here by hand) erases the rest. The mail copies of what
/// the killed purge had erased, partly written ones too, are removed at the
/// next start.
#[test]
fn a_retention_purge_killed_half_way_is_taken_up_once_its_claim_runs_out() {
    let mut app = TestApp::spawn("");
    let token = app.create_token("read");
    let stored = submit_until(&app.url(SUBMIT), 3000, &AtomicBool::new(false)).len();
    let mail_dir = app.dir.path().join("mail");
    let written = || (mail_copies(&mail_dir).len() >= stored).then_some(());
    common::eventually_within("every staff email written", Duration::from_secs(60), written);
    assert!(app.terminate().success());
    app.db().write(&format!("UPDATE inquiries SET received_at = received_at - {}", 40 * 86_400_000_i64));

    let retention = "[privacy]\nretention_days = 30";
    let mut app = app.restart_with(retention);
    let db = app.db();
    let count = || db.scalar("SELECT COUNT(*) FROM inquiries", "");
    common::eventually_within("a transaction of the purge committed", Duration::from_secs(30), || {
        (count() < stored as i64).then_some(())
    });
    app.kill();
    let left = count();
    assert!(left > 0, "killed before its end");
    assert!(mail_copies(&mail_dir).len() > left as usize, "the erased ones' copies were left behind");

    // Not the copy of a notification: `inquiryd mail test`'s, and anything else.
    let others = ["test-0193a8e2-7c1d-7b9e-8f00-1234567890ab.eml", "README.txt"];
    for name in others {
        std::fs::write(mail_dir.join(name), "kept").unwrap();
    }
    let stored_id = |stored: bool| {
        let copies = mail_copies(&mail_dir);
        copies.into_iter().find(|id| (db.scalar("SELECT COUNT(*) FROM inquiries WHERE id = ?", id) == 1) == stored)
    };
    // What a process killed while writing a copy leaves (the file transport's
    // temporary name): of an erased inquiry, and of a stored one.
    let partial = |id: String| mail_dir.join(format!(".{id}-staff-0193a8e2-7c1d-7b9e-8f00-000000000001.eml.partial"));
    let (erased_partial, stored_partial) = (partial(stored_id(false).unwrap()), partial(stored_id(true).unwrap()));
    for path in [&erased_partial, &stored_partial] {
        std::fs::write(path, "Subject: half written").unwrap();
    }
    let app = app.restart_with(retention);
    eventually("the start's check", || app.logs().contains("retention purge not due").then_some(()));
    assert_eq!(count(), left, "a claim still held is left alone");
    let orphans = |db: &Db| {
        mail_copies(&mail_dir)
            .iter()
            .filter(|id| db.scalar("SELECT COUNT(*) FROM inquiries WHERE id = ?", id) == 0)
            .count()
    };
    eventually("the copies of what was erased removed", || {
        (mail_copies(&mail_dir).len() == left as usize).then_some(())
    });
    assert_eq!(orphans(&db), 0, "and only those");
    eventually("an erased inquiry's partly written copy removed", || (!erased_partial.exists()).then_some(()));
    assert!(stored_partial.exists(), "a stored inquiry's is left alone (its notification's next attempt rewrites it)");

    // Ten minutes after its last renewal:
    db.write(&format!(
        "UPDATE meta SET value = CAST(CAST(value AS BIGINT) - {} AS TEXT) WHERE key = 'retention_last_run'",
        10 * 60 * 1000
    ));
    let app = app.restart_with(retention);
    let done = || app.logs().contains("retention purge done").then_some(());
    common::eventually_within("the rest erased", Duration::from_secs(60), done);
    assert_eq!(count(), 0);
    let audit = app.admin("GET", "/audit?limit=100", Some(&token), None).json();
    let purges = audit["items"].as_array().unwrap().iter().filter(|e| e["action"] == "retention.purge");
    let erased: i64 = purges.map(|e| e["detail"]["erased"].as_i64().unwrap()).sum();
    assert_eq!(erased, stored as i64, "every transaction of both runs audited");
    eventually("every copy removed", || mail_copies(&mail_dir).is_empty().then_some(()));
    eventually("and the partly written one", || (!stored_partial.exists()).then_some(()));
    assert!(others.iter().all(|name| mail_dir.join(name).exists()), "other files are left alone");
}

#[test]
fn json_logs_carry_the_request_id_and_no_personal_data() {
    let app = TestApp::spawn("[log]\nformat = \"json\"\nlevel = \"info\"");
    let reply = app.post_json(SUBMIT, &canary_submission("zyxqw"));
    assert_eq!(reply.status, 201);
    let request_id = reply.header("x-request-id").unwrap().to_owned();
    app.post_json(SUBMIT, &json!({"name": "Canaryperson Zyxqw", "email": "bad"}));
    std::thread::sleep(Duration::from_millis(500));
    let logs = app.logs();
    let json_lines: Vec<Value> = logs.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert!(json_lines.len() >= 3, "{logs}");
    let finished = json_lines
        .iter()
        .find(|l| l["span"]["request_id"] == request_id.as_str())
        .unwrap_or_else(|| panic!("no log line with request id {request_id}:\n{logs}"));
    assert_eq!(finished["fields"]["status"], 201);
    assert_no_canary(&logs, "zyxqw");
}

/// A submission whose name, email and message all carry `tag`, to look for in logs.
fn canary_submission(tag: &str) -> Value {
    let mut body = valid_submission();
    body["name"] = json!(format!("Canaryperson {tag}"));
    body["email"] = json!(format!("canary.{tag}@example.org"));
    body["message"] = json!(format!("canary-message-{tag}"));
    body
}

fn assert_no_canary(logs: &str, tag: &str) {
    for canary in ["canaryperson", tag] {
        assert!(!logs.to_lowercase().contains(canary), "{canary} logged:\n{logs}");
    }
}

#[test]
fn log_transport_marks_mail_done_and_logs_nothing_personal() {
    let app = TestApp::spawn("[mail]\ntransport = \"log\"\n[log]\nlevel = \"inquiryd=debug,info\"");
    let reply = app.post_json(SUBMIT, &canary_submission("qwzyx"));
    assert_eq!(reply.status, 201);
    let id = reply.json()["id"].as_str().unwrap().to_owned();
    let db = app.db();
    let sent =
        "SELECT COUNT(*) FROM notifications WHERE inquiry_id = ? AND status = 'sent' AND smtp_response = 'logged'";
    eventually("the staff notification settled as logged", || (db.scalar(sent, &id) == 1).then_some(()));
    let logs = app.logs();
    assert!(logs.contains("mail transport is log: message not sent"), "{logs}");
    assert_no_canary(&logs, "qwzyx");
    assert!(!app.dir.path().join("mail").exists(), "the log transport writes no files");
}

#[test]
fn backup_while_serving_holds_every_row() {
    let app = TestApp::spawn("");
    let ids: HashSet<String> = (0..25)
        .map(|n| app.post_json(SUBMIT, &unique_submission(n)).json()["id"].as_str().unwrap().to_owned())
        .collect();
    let target = app.dir.path().join("backups/inquiries-copy.db");
    let out = app.cli(&["backup", target.to_str().unwrap()]);
    if common::skip_unless_sqlite("inquiryd backup copies SQLite's file; on PostgreSQL it points to pg_dump") {
        assert!(!out.status.success() && !target.exists(), "{out:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("pg_dump"), "{out:?}");
        return;
    }
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("25 inquiries"));
    let copy = Db::sqlite(&target);
    for id in &ids {
        assert_eq!(copy.scalar("SELECT COUNT(*) FROM inquiries WHERE id = ?", id), 1);
    }
    assert!(!app.cli(&["backup", target.to_str().unwrap()]).status.success(), "never overwrites a file");
}

#[test]
fn config_check_prints_the_effective_configuration() {
    let dir = common::Workdir::new();
    dir.write_config("[captcha]\nprovider = \"turnstile\"\nsecret = \"cf-secret-123\"");
    let out = run_cli(dir.path(), &[("INQUIRYD_LIMITS__PER_IP_BURST", "7")], &["config", "check"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for section in [
        "[server]",
        "[database]",
        "[mail]",
        "[mail.routes]",
        "[smtp]",
        "[limits]",
        "[spam]",
        "[form]",
        "[captcha]",
        "[privacy]",
        "[log]",
    ] {
        assert!(text.contains(section), "{section} missing:\n{text}");
    }
    assert!(text.contains("per_ip_burst = 7"));
    assert!(!text.contains("cf-secret-123"));
}

#[test]
fn startup_banner_states_address_database_mail_and_limits() {
    let app = TestApp::spawn("");
    // The harness returns at the first line; the rest of the block follows it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !app.logs().contains("privacy") && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let logs = app.logs();
    assert!(logs.contains(&format!("inquiryd listening on {}", app.base)));
    let database = app.dir.database_name();
    for needle in ["database", &database, "mail", "file", "limits", "/min per address", "privacy"] {
        assert!(logs.contains(needle), "{needle} missing from the banner:\n{logs}");
    }
}

#[test]
fn dockerfile_is_pinned_unprivileged_and_healthchecked() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Dockerfile")).unwrap();
    let froms: Vec<&str> = text.lines().filter(|l| l.trim_start().starts_with("FROM ")).collect();
    assert!(froms.len() >= 2, "multi-stage");
    for from in &froms {
        let image = from.split_whitespace().nth(1).unwrap();
        let tag = image.split(['@', ':']).nth(1).unwrap_or("");
        assert!(image.contains('@') || tag.chars().any(|c| c.is_ascii_digit()), "{image} is not pinned");
        assert!(!image.ends_with(":latest"));
    }
    let user = text.lines().rev().find(|l| l.starts_with("USER ")).expect("USER");
    assert!(!user.contains("root") && !user.contains(" 0"), "{user}");
    assert!(text.contains("HEALTHCHECK") && text.contains("healthcheck"));
    assert!(text.contains("VOLUME [\"/data\"]"));
    assert!(text.contains("--locked"));
    let runtime = &text[text.rfind("FROM ").unwrap()..];
    assert!(runtime.contains("USER ") && runtime.contains("HEALTHCHECK"), "the runtime stage runs unprivileged");
    assert!(runtime.contains("EXPOSE 8080"), "the README's docker run publishes 8080");

    // Whether the build stage's context compiles is checked by `.ci/docker-context`
    // (it needs cargo and seconds of work); here, that the context stays small.
    let ignore = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.dockerignore")).unwrap();
    let entries: Vec<&str> = ignore.lines().map(str::trim).filter(|l| !l.starts_with('#')).collect();
    for needed in ["target", "data", ".git", "tests/browser/node_modules"] {
        assert!(entries.contains(&needed), ".dockerignore lacks {needed}");
    }
}

#[test]
fn healthcheck_command_probes_the_running_server() {
    let app = TestApp::spawn("");
    let port = app.base.rsplit(':').next().unwrap().to_owned();
    let env = [("INQUIRYD_SERVER__PORT", port.as_str())];
    let up = run_cli(app.dir.path(), &env, &["healthcheck"]);
    assert!(up.status.success(), "{}", String::from_utf8_lossy(&up.stderr));
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let down = run_cli(app.dir.path(), &[("INQUIRYD_SERVER__PORT", closed.as_str())], &["healthcheck"]);
    assert!(!down.status.success());
    assert_eq!(String::from_utf8_lossy(&down.stderr).trim().lines().count(), 1);
}
