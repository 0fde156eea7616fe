//! Several replicas of `inquiryd serve` on one PostgreSQL database: real
//! processes, a real database of the test's own, the real SMTP sink.

use crate::common;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use crate::common::pg::PgDatabase;
use crate::common::smtp::SmtpSink;
use crate::common::{eventually_within, run_cli, unique_submission, TestApp};
use serde_json::{json, Value};

const SUBMIT: &str = "/api/v1/inquiries";

/// Starts `n` replicas on `db` at the same moment (each with `extra` as its config).
fn replicas(db: &PgDatabase, n: usize, extra: &str) -> Vec<TestApp> {
    replicas_with(db, &vec![extra; n])
}

/// Starts one replica per config on `db`, all at the same moment.
fn replicas_with(db: &PgDatabase, configs: &[&str]) -> Vec<TestApp> {
    let start = Arc::new(Barrier::new(configs.len()));
    let threads: Vec<_> = configs
        .iter()
        .map(|extra| {
            let (start, url, extra) = (start.clone(), db.url.clone(), extra.to_string());
            std::thread::spawn(move || {
                start.wait();
                TestApp::spawn_with_env(&extra, &[("INQUIRYD_DATABASE__URL", &url)])
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().expect("a replica started")).collect()
}

fn migrations_known() -> i64 {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres");
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "sql"))
        .count() as i64
}

#[test]
fn three_replicas_started_at_once_on_an_empty_database_apply_its_migrations_once() {
    let db = PgDatabase::create();
    let apps = replicas(&db, 3, "");
    for app in &apps {
        let ready = app.get("/readyz");
        assert_eq!(ready.status, 200, "{}", ready.body);
    }
    let known = migrations_known();
    assert_eq!(db.scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success"), known);
    assert_eq!(db.scalar("SELECT COUNT(DISTINCT version) FROM _sqlx_migrations"), known);
}

/// The same submission posted to two replicas at the same moment, twenty
/// times over: with one Idempotency-Key, and without (a double click). One
/// replica writes submissions in groups, the other one transaction each.
#[test]
fn an_idempotency_key_and_a_double_click_hold_whichever_replica_gets_the_repeat() {
    let db = PgDatabase::create();
    let apps = Arc::new(replicas_with(&db, &["", "[database]\ngroup_commit = false"]));
    for round in 0..20 {
        for keyed in [true, false] {
            let body = unique_submission(round * 2 + usize::from(keyed)).to_string();
            let key = format!("replica-key-{round}");
            let start = Arc::new(Barrier::new(2));
            let answers: Vec<(u16, Value)> = (0..2)
                .map(|n| {
                    let (apps, start, body, key) = (apps.clone(), start.clone(), body.clone(), key.clone());
                    std::thread::spawn(move || {
                        let headers: Vec<(&str, &str)> =
                            if keyed { vec![("Idempotency-Key", key.as_str())] } else { vec![] };
                        start.wait();
                        let reply = apps[n].post(SUBMIT, "application/json", &body, &headers);
                        (reply.status, reply.json())
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|t| t.join().unwrap())
                .collect();
            for (status, answer) in &answers {
                assert!(matches!(status, 200 | 201), "round {round}, keyed {keyed}: {status} {answer}");
            }
            assert_eq!(answers[0].1["id"], answers[1].1["id"], "round {round}, keyed {keyed}: one inquiry");
        }
    }
    assert_eq!(db.scalar("SELECT COUNT(*) FROM inquiries"), 40, "each submission stored once");
    assert_eq!(db.scalar("SELECT COUNT(*) FROM idempotency_keys"), 20);
}

/// Every staff email's Message-ID with how many times the sink received it.
fn received_ids(sink: &SmtpSink) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for message in sink.messages() {
        let id = message.header("Message-ID").expect("a Message-ID");
        *seen.entry(id).or_insert(0) += 1;
    }
    seen
}

fn stored_message_ids(db: &PgDatabase) -> HashSet<String> {
    // The sink's parser gives the id without its angle brackets.
    db.column("SELECT trim(both '<>' from message_id) FROM notifications").into_iter().collect()
}

#[test]
fn three_replicas_deliver_every_notification_once() {
    let db = PgDatabase::create();
    let sink = SmtpSink::start();
    let apps = replicas(&db, 3, &sink.config());
    for n in 0..150 {
        let reply = apps[n % 3].post_json(SUBMIT, &unique_submission(n));
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
    eventually_within("every notification sent", Duration::from_secs(60), || {
        (db.scalar("SELECT COUNT(*) FROM notifications WHERE status = 'sent'") == 150).then_some(())
    });
    let received = received_ids(&sink);
    assert_eq!(received.keys().cloned().collect::<HashSet<_>>(), stored_message_ids(&db));
    let repeated: Vec<_> = received.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "with every replica alive, nothing is sent twice: {repeated:?}");
    assert_eq!(db.scalar("SELECT COUNT(*) FROM notifications WHERE status = 'sent' AND attempts = 1"), 150);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM notification_attempts"), 0, "no attempt went wrong");
}

/// A replica killed while it holds claims: another takes them over once their
/// lease runs out. A message the dead one had handed over before it died may
/// arrive twice, always with the same Message-ID.
#[test]
fn a_killed_replicas_claimed_notifications_are_sent_by_another_after_the_lease() {
    let db = PgDatabase::create();
    // A slow mail server: each message takes 200 ms, two at a time.
    let sink = SmtpSink::start_with(&["--delay-ms", "200"]);
    let config = format!("{}\n[mail]\nlease_seconds = 3\nconcurrency = 2\n", sink.config());
    let mut first = replicas(&db, 1, &config).remove(0);
    for n in 0..40 {
        assert_eq!(first.post_json(SUBMIT, &unique_submission(n)).status, 201);
    }
    eventually_within("the first replica to be sending", Duration::from_secs(20), || {
        (sink.messages().len() >= 2).then_some(())
    });
    first.kill();
    // Outcomes are recorded per claimed batch: what the dead replica had sent
    // before it died, and the two messages it was sending, are not recorded.
    let unrecorded = sink.messages().len() + 2;
    let held = db.scalar("SELECT COUNT(*) FROM notifications WHERE status = 'sending'");
    assert!(held > 0, "the killed replica held claims");

    let others = replicas(&db, 2, &config);
    eventually_within("every notification sent", Duration::from_secs(60), || {
        (db.scalar("SELECT COUNT(*) FROM notifications WHERE status = 'sent'") == 40).then_some(())
    });
    let received = received_ids(&sink);
    assert_eq!(received.keys().cloned().collect::<HashSet<_>>(), stored_message_ids(&db), "every one delivered");
    let duplicates: usize = received.values().map(|n| n - 1).sum();
    // Only what the dead replica had handed over but not recorded can repeat.
    assert!(duplicates <= unrecorded, "{duplicates} sent twice, {unrecorded} unrecorded");
    println!("{held} claims taken over from the killed replica; {duplicates} duplicate(s), same Message-ID");
    assert!(db.scalar("SELECT COUNT(*) FROM notifications WHERE attempts >= 2") >= held, "taken over after the lease");
    drop(others);
}

/// A live replica whose claimed batch takes longer than the lease (a slow mail
/// server) keeps its claims: it renews the lease while it sends, so the other
/// replica never takes them over and nothing is sent twice.
#[test]
fn a_live_replicas_long_batch_is_not_taken_over_when_its_lease_would_end() {
    let db = PgDatabase::create();
    // 16 notifications claimed at once, sent one at a time at 300 ms each: 4.8 s,
    // longer than the 3 s lease.
    let sink = SmtpSink::start_with(&["--delay-ms", "300"]);
    let config = format!("{}\n[mail]\nlease_seconds = 3\nconcurrency = 1\n", sink.config());
    let first = replicas(&db, 1, &config).remove(0);
    for n in 0..16 {
        assert_eq!(first.post_json(SUBMIT, &unique_submission(n)).status, 201);
    }
    eventually_within("the first replica to be sending", Duration::from_secs(20), || {
        (sink.messages().len() >= 2).then_some(())
    });
    // The second starts now: its first look finds every row claimed, and it
    // comes back when the earliest lease would end.
    let _second = replicas(&db, 1, &config);
    eventually_within("every notification sent", Duration::from_secs(60), || {
        (db.scalar("SELECT COUNT(*) FROM notifications WHERE status = 'sent'") == 16).then_some(())
    });
    let received = received_ids(&sink);
    let repeated: Vec<_> = received.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "nothing sent twice: {repeated:?}");
    assert_eq!(db.scalar("SELECT COUNT(*) FROM notifications WHERE attempts > 1"), 0, "never claimed twice");
}

#[test]
fn the_daily_retention_purge_runs_once_across_replicas() {
    let db = PgDatabase::create();
    let apps = replicas(&db, 3, "[privacy]\nretention_days = 30");
    for app in &apps {
        eventually_within("each replica to ask whether the purge is due", Duration::from_secs(20), || {
            let logs = app.logs();
            (logs.contains("retention purge done") || logs.contains("retention purge not due")).then_some(())
        });
    }
    assert_eq!(db.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'retention.purge'"), 1);
    let ran: usize = apps.iter().filter(|a| a.logs().contains("retention purge done")).count();
    assert_eq!(ran, 1);
}

/// Erasure on PostgreSQL: no row is left in any table, and the tables it
/// touched are vacuumed (no dead row versions, nothing pending in the search index).
#[test]
fn erasure_leaves_no_row_and_vacuums_what_it_touched() {
    let db = PgDatabase::create();
    let sink = SmtpSink::start();
    let app = replicas(&db, 1, &sink.config()).remove(0);
    let token = {
        let env = [("INQUIRYD_DATABASE__URL", db.url.as_str())];
        let out = run_cli(app.dir.path(), &env, &["token", "create", "--name", "erase test", "--scope", "write"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let mut canary = unique_submission(1);
    canary["email"] = json!("zyxqw.canary@example.org");
    canary["message"] = json!("Канарейка zyxqwcanary 金丝雀");
    let keep = app.post_json(SUBMIT, &unique_submission(2));
    let erased = app.post(SUBMIT, "application/json", &canary.to_string(), &[("Idempotency-Key", "canary-key")]);
    assert_eq!(erased.status, 201);
    eventually_within("both notifications sent", Duration::from_secs(20), || {
        (db.scalar("SELECT COUNT(*) FROM notifications WHERE status = 'sent'") == 2).then_some(())
    });
    let body = json!({"email": "ZYXQW.canary@example.org"});
    let reply = app.admin("POST", "/erasures", Some(&token), Some(&body));
    assert_eq!(reply.status, 200, "{}", reply.body);

    let id = erased.json()["id"].as_str().unwrap().to_owned();
    for (table, column) in [("inquiries", "id"), ("notifications", "inquiry_id"), ("idempotency_keys", "inquiry_id")] {
        assert_eq!(db.scalar(&format!("SELECT COUNT(*) FROM {table} WHERE {column} = '{id}'")), 0, "{table}");
    }
    assert_eq!(db.scalar("SELECT COUNT(*) FROM notifications"), 1, "only the kept inquiry's notification");
    assert_eq!(db.scalar("SELECT COUNT(*) FROM inquiries WHERE search @@ 'zyxqwcanary'::tsquery"), 0);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM inquiries"), 1);
    assert!(keep.status == 201);
    db.execute("CREATE EXTENSION IF NOT EXISTS pgstattuple");
    for table in ["inquiries", "notifications", "notification_attempts", "idempotency_keys"] {
        assert_eq!(db.scalar(&format!("SELECT dead_tuple_count FROM pgstattuple('{table}')")), 0, "{table}");
    }
    assert_eq!(db.scalar("SELECT pending_tuples::bigint FROM pgstatginindex('inquiries_search')"), 0);
}

#[test]
fn readiness_fails_on_a_replica_that_cannot_reach_its_database() {
    let db = PgDatabase::create();
    let app = replicas(&db, 1, "").remove(0);
    assert_eq!(app.get("/readyz").status, 200);
    db.drop_now();
    let reply = app.get("/readyz");
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert_eq!(app.get("/healthz").status, 200, "the process itself is alive");
    // A submission is refused as "try again later", never a 500.
    let reply = app.post_json(SUBMIT, &unique_submission(1));
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert!(reply.header("retry-after").is_some());
}

#[test]
fn an_unreachable_server_stops_start_up_with_one_line_naming_it_and_no_password() {
    let dir = common::Workdir::new();
    dir.write_config("");
    let url = "postgres://inquiryd:s3cr3t-pw@127.0.0.1:1/inquiries";
    let out = run_cli(dir.path(), &[("INQUIRYD_DATABASE__URL", url)], &["serve"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("127.0.0.1:1/inquiries"), "{stderr}");
    assert!(!stderr.contains("s3cr3t"), "{stderr}");
}

#[test]
fn a_database_from_a_newer_version_is_refused_and_backup_points_to_pg_dump() {
    let db = PgDatabase::create();
    let dir = common::Workdir::new();
    dir.write_config("");
    let env = [("INQUIRYD_DATABASE__URL", db.url.as_str())];
    let out = run_cli(dir.path(), &env, &["migrate"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let backup = run_cli(dir.path(), &env, &["backup", dir.path().join("copy.db").to_str().unwrap()]);
    assert_eq!(backup.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&backup.stderr).contains("pg_dump"), "{}", String::from_utf8_lossy(&backup.stderr));

    db.execute(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9001, 'from the future', true, '\\x00', 0)",
    );
    for command in [&["migrate"][..], &["serve"], &["inquiries", "list"]] {
        let out = run_cli(dir.path(), &env, command);
        assert!(!out.status.success(), "{command:?} must refuse");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("migration 9001") && stderr.contains("newer inquiryd"), "{command:?}: {stderr}");
    }
}
