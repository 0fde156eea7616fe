//! Admin: tokens, the inquiry log API and CLI, search, export, erasure, audit,
//! retention — over real HTTP against the real binary.

use crate::common;
use std::collections::HashSet;
use std::time::Duration;

use crate::common::{eventually, unique_submission, urlencode, valid_submission, TestApp};
use serde_json::{json, Value};

const SUBMIT: &str = "/api/v1/inquiries";

fn submit(app: &TestApp, body: &Value) -> String {
    let reply = app.post_json(SUBMIT, body);
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.json()["id"].as_str().unwrap().to_owned()
}

/// Submits a unique inquiry whose message is `message`; its id.
fn submit_saying(app: &TestApp, n: usize, message: &str) -> String {
    let mut body = unique_submission(n);
    body["message"] = json!(message);
    submit(app, &body)
}

fn ids(page: &Value) -> Vec<String> {
    page["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn tokens_scopes_and_failures() {
    let app = TestApp::spawn("[limits]\nadmin_failures_per_minute = 3");
    let read = app.create_token("read");
    let write = app.create_token("write");
    assert!(read.starts_with("iqd_") && read.len() >= 4 + 22, "at least 128 random bits: {read}");
    assert_ne!(read, write);
    let id = submit(&app, &valid_submission());

    let missing = app.admin("GET", "/inquiries", None, None);
    assert_eq!(missing.status, 401);
    assert_eq!(missing.header("www-authenticate"), Some("Bearer realm=\"inquiryd\""));
    assert_eq!(missing.header("content-type"), Some("application/problem+json"));
    let wrong = app.admin("GET", "/inquiries", Some("iqd_not-a-real-token"), None);
    assert_eq!(wrong.status, 401);
    assert!(wrong.header("www-authenticate").unwrap().contains("invalid_token"));

    assert_eq!(app.admin("GET", "/inquiries", Some(&read), None).status, 200);
    let patch = json!({"status": "in_progress"});
    let refused = app.admin("PATCH", &format!("/inquiries/{id}"), Some(&read), Some(&patch));
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(app.admin("PATCH", &format!("/inquiries/{id}"), Some(&write), Some(&patch)).status, 200);

    // Revocation, and what is kept about tokens.
    let listing = String::from_utf8(app.cli(&["token", "list"]).stdout).unwrap();
    assert!(!listing.contains(&read) && !listing.contains(&write), "{listing}");
    let read_line = listing.lines().find(|l| l.contains("read test")).unwrap();
    let read_id = read_line.split_whitespace().next().unwrap();
    let columns: Vec<&str> = read_line.split_whitespace().collect();
    assert_ne!(columns[3], "-", "last use is kept: {read_line}");
    assert_eq!(columns[4], "-", "not revoked yet: {read_line}");
    let revoke = app.cli(&["token", "revoke", read_id]);
    assert!(revoke.status.success(), "{}", String::from_utf8_lossy(&revoke.stderr));
    assert_eq!(app.admin("GET", "/inquiries", Some(&read), None).status, 401);
    assert!(!app.cli(&["token", "revoke", read_id]).status.success(), "revoking twice is an error");

    // Repeated failures from one address: 3 per minute (the revoked token\n    // and the wrong one above already count), then 429.
    let statuses: Vec<u16> = (0..2).map(|_| app.admin("GET", "/stats", Some("iqd_guess"), None).status).collect();
    assert_eq!(statuses, vec![401, 429]);
    assert!(app.admin("GET", "/stats", Some("iqd_guess"), None).header("retry-after").is_some());

    // The raw tokens are nowhere: not in the database (SQLite: its files), not in the logs.
    std::thread::sleep(Duration::from_millis(200));
    let db = app.db();
    for token in [&read, &write] {
        assert_eq!(db.find_stored(token), None, "token stored in clear");
        assert!(!app.logs().contains(token.as_str()), "token logged");
    }
}

#[test]
fn pagination_returns_each_inquiry_once_in_order_even_while_new_ones_arrive() {
    let app = TestApp::spawn("");
    let token = app.create_token("read");
    let mut submitted: Vec<String> = (0..230).map(|n| submit(&app, &unique_submission(n))).collect();
    submitted.reverse();

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/inquiries?limit=37&cursor={c}"),
            None => "/inquiries?limit=37".to_owned(),
        };
        let page = app.admin("GET", &path, Some(&token), None);
        assert_eq!(page.status, 200, "{}", page.body);
        let page = page.json();
        seen.extend(ids(&page));
        pages += 1;
        // Concurrent arrivals are newer than any cursor: they never shift later pages.
        submit(&app, &unique_submission(10_000 + pages));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 7);
    assert_eq!(seen, submitted, "every inquiry exactly once, newest first");
    let default = app.admin("GET", "/inquiries", Some(&token), None).json();
    assert_eq!(ids(&default).len(), 50, "default limit");

    // The export pages through the same order in chunks of its own.
    let export = app.admin("GET", "/inquiries/export?format=ndjson", Some(&token), None).body;
    let exported: Vec<String> =
        export.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].as_str().unwrap().to_owned()).collect();
    let total = app.db().scalar("SELECT COUNT(*) FROM inquiries", "") as usize;
    assert_eq!(exported.len(), total);
    assert_eq!(exported[exported.len() - submitted.len()..], submitted[..], "newest first, each once");
}

#[test]
fn filters_and_their_errors() {
    let app = TestApp::spawn("");
    let token = app.create_token("write");
    let mut question = unique_submission(1);
    question["email"] = json!("Ada@Example.org");
    let question = submit(&app, &question);
    let mut praise = unique_submission(2);
    praise["category"] = json!("commendation");
    let praise = submit(&app, &praise);
    app.admin("PATCH", &format!("/inquiries/{praise}"), Some(&token), Some(&json!({"status": "resolved"})));

    let get = |query: &str| {
        let reply = app.admin("GET", &format!("/inquiries?{query}"), Some(&token), None);
        assert_eq!(reply.status, 200, "{query}: {}", reply.body);
        ids(&reply.json())
    };
    assert_eq!(get("status=resolved"), vec![praise.clone()]);
    assert_eq!(get("category=commendation"), vec![praise.clone()]);
    assert_eq!(get("category=question&status=new"), vec![question.clone()]);
    assert_eq!(get("email=ada%40example.org"), vec![question.clone()]);
    assert_eq!(get("since=2000-01-01T00:00:00Z&until=2999-01-01T00:00:00Z").len(), 2);
    assert!(get("until=2000-01-01T00:00:00Z").is_empty());

    for (query, field) in [
        ("status=open", "status"),
        ("since=last%20week", "since"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("cursor=bm90LWEtY3Vyc29y", "cursor"),
        ("cursor=%%%", "cursor"),
        ("order=asc", "order"),
    ] {
        let reply = app.admin("GET", &format!("/inquiries?{query}"), Some(&token), None);
        assert_eq!(reply.status, 422, "{query}: {}", reply.body);
        assert_eq!(reply.error_fields(), vec![field.to_owned()], "{query}");
    }
}

#[test]
fn full_text_search_in_every_script() {
    let app = TestApp::spawn("");
    let token = app.create_token("write");
    // On SQLite the first text indexed starts building the search tokenizer's
    // table (src/store/sqlite/tokenizer.rs); until it is built, the writer
    // indexes with SQLite's own tokenizer. Wait for it, so that everything
    // below is indexed, found and erased through the table.
    let mut warm_up = unique_submission(99);
    warm_up["subject"] = json!("Warm-up");
    submit(&app, &warm_up);
    if !common::is_postgres() {
        eventually("the tokenizer's table", || app.logs().contains("search tokenizer table built").then_some(()));
    }
    let texts = [
        ("Просьба о сотрудничестве", "Здравствуйте! Мы хотим обсудить сотрудничество с лабораторией."),
        ("关于合作的问题", "您好，我们希望与贵所开展合作研究。"),
        ("Conference invitation", "We would like to invite your astronomers to our conference."),
        ("Сұрақ", "Зертханаңыздағы жұмыс туралы сұрағым бар."),
        ("Visite de Renée Müller", "Écrivez à renee.mueller@observatoire.example pour le séminaire."),
    ];
    let ids_by_text: Vec<String> = texts
        .iter()
        .enumerate()
        .map(|(n, (subject, message))| {
            let mut body = unique_submission(n);
            body["subject"] = json!(subject);
            body["message"] = json!(message);
            submit(&app, &body)
        })
        .collect();
    let search = |q: &str| ids(&app.admin("GET", &format!("/inquiries?q={}", urlencode(q)), Some(&token), None).json());
    assert_eq!(search("сотрудничество"), vec![ids_by_text[0].clone()], "a Russian word");
    assert_eq!(search("СОТРУДНИЧЕСТВО"), vec![ids_by_text[0].clone()], "case-folded");
    assert!(search("сотруд").is_empty(), "whole words, not prefixes");
    assert_eq!(search("astronomers"), vec![ids_by_text[2].clone()], "an English word");
    assert_eq!(search("合作"), vec![ids_by_text[1].clone()], "a two-character Chinese word");
    assert_eq!(search("研究"), vec![ids_by_text[1].clone()]);
    assert_eq!(search("ЖҰМЫС"), vec![ids_by_text[3].clone()], "Kazakh");
    assert!(search("合研").is_empty(), "characters must be adjacent");
    assert!(search("nonexistentword").is_empty());
    assert!(search("\"*(").is_empty(), "punctuation only matches nothing, and is not an error");
    assert_eq!(search("renee MULLER"), vec![ids_by_text[4].clone()], "accents folded, every word required");
    assert_eq!(search("séminaire"), vec![ids_by_text[4].clone()]);
    assert_eq!(search("observatoire"), vec![ids_by_text[4].clone()], "a part of an address is a word");
    assert!(search("renee sotrudnichestvo").is_empty(), "every word must occur");
    // Query operators of either database are only punctuation here: never an
    // error, never a match by themselves.
    for hostile in ["renee & !x | (y <-> z):*", "NEAR(renee seminaire)", "renee OR x", "' OR 1=1 --", "*", "合作\""] {
        let reply = app.admin("GET", &format!("/inquiries?q={}", urlencode(hostile)), Some(&token), None);
        assert_eq!(reply.status, 200, "{hostile}: {}", reply.body);
    }
    assert!(search("' OR 1=1 --").is_empty());
    let combined =
        app.admin("GET", &format!("/inquiries?q={}&category=question", urlencode("合作")), Some(&token), None);
    assert_eq!(ids(&combined.json()), vec![ids_by_text[1].clone()]);
    // Erasure removes a row's terms by tokenizing its document again.
    assert_eq!(app.admin("DELETE", &format!("/inquiries/{}", ids_by_text[1]), Some(&token), None).status, 204);
    assert!(search("合作").is_empty(), "an erased inquiry is not found");
    assert_eq!(search("сотрудничество"), vec![ids_by_text[0].clone()]);
}

#[test]
fn search_index_switched_back_on_is_rebuilt_at_start() {
    let app = TestApp::spawn("[database]\nsearch_index = false");
    let unindexed = submit(&app, &unique_submission(1));
    let also_unindexed = submit_saying(&app, 2, "我们希望开展天文合作");
    app.dir.write_config("[database]\nsearch_index = true");
    let app = app.kill_and_restart();
    let token = app.create_token("read");
    let search = |q: &str| ids(&app.admin("GET", &format!("/inquiries?q={}", urlencode(q)), Some(&token), None).json());
    assert_eq!(search("天文"), vec![also_unindexed.clone()]);
    assert_eq!(search("Message"), vec![unindexed.clone()]);
    let indexed = submit(&app, &unique_submission(3));
    assert_eq!(search("number"), vec![indexed, unindexed], "and new rows are indexed as they come");
}

/// The search index is in a file of its own beside the database. One that
/// belongs to the database a restored backup replaced, or one that was lost,
/// is rebuilt at start.
#[test]
fn a_restored_backup_or_a_lost_search_file_gets_its_index_rebuilt() {
    let app = TestApp::spawn("");
    if common::skip_unless_sqlite("the search file is SQLite's") {
        return;
    }
    let kept = submit_saying(&app, 1, "Вопрос о радиотелескопе");
    let erased = submit_saying(&app, 2, "关于天文合作的问题");
    let backup = app.dir.path().join("backup.db");
    assert!(app.cli(&["backup", backup.to_str().unwrap()]).status.success());
    let token = app.create_token("write");
    assert_eq!(app.admin("DELETE", &format!("/inquiries/{erased}"), Some(&token), None).status, 204);

    // Restored: the copy still holds the inquiry the live search file no longer indexes.
    let mut app = app;
    app.kill();
    let db = app.dir.path().join("inquiries.db");
    let remove = |suffixes: &[&str]| {
        for suffix in suffixes {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
    };
    remove(&["-wal", "-shm"]);
    std::fs::copy(&backup, &db).unwrap();
    let mut app = app.kill_and_restart();
    let token = app.create_token("read");
    let search = |app: &TestApp, q: &str| {
        ids(&app.admin("GET", &format!("/inquiries?q={}", urlencode(q)), Some(&token), None).json())
    };
    assert_eq!(search(&app, "天文"), vec![erased.clone()], "the restored inquiry is found again");
    assert_eq!(search(&app, "радиотелескопе"), vec![kept.clone()]);

    // Lost: the search file removed while the service was stopped.
    app.kill();
    remove(&["-search", "-search-wal", "-search-shm"]);
    let app = app.kill_and_restart();
    assert_eq!(search(&app, "天文"), vec![erased]);
    assert_eq!(search(&app, "радиотелескопе"), vec![kept]);
}

/// With `search_index = false` the search file keeps the terms of the rows
/// indexed while it was on. An erasure then still removes them, and switching
/// the index back on does not bring an erased row back.
#[test]
fn an_erasure_while_search_is_off_removes_the_terms_indexed_before() {
    let app = TestApp::spawn("");
    if common::skip_unless_sqlite("the search file is SQLite's") {
        return;
    }
    let canary = "Jabberwockcanary";
    let visitor = |n: usize, text: &str| {
        let mut body = unique_submission(n);
        body["email"] = json!("jabber@example.org");
        body["message"] = json!(format!("{text} {canary}"));
        body
    };
    let indexed = submit(&app, &visitor(1, "Вопрос о радиотелескопе"));
    let kept = submit_saying(&app, 2, "Вопрос о планетарии");
    let token = app.create_token("write");
    let search = |app: &TestApp, q: &str| {
        ids(&app.admin("GET", &format!("/inquiries?q={}", urlencode(q)), Some(&token), None).json())
    };
    assert_eq!(search(&app, canary), vec![indexed], "indexed while the index was on");

    app.dir.write_config("[database]\nsearch_index = false");
    let app = app.kill_and_restart();
    submit(&app, &visitor(3, "关于天文合作的问题"));
    let erased = app.admin("POST", "/erasures", Some(&token), Some(&json!({"email": "jabber@example.org"})));
    assert_eq!(erased.json(), json!({"erased": 2}), "{}", erased.body);
    let db = app.db();
    for form in [canary.to_owned(), canary.to_lowercase(), "радиотелескопе".to_owned()] {
        let found = db.find_stored(&form);
        assert!(found.is_none(), "{form:?} is still stored: {found:?}");
    }

    app.dir.write_config("[database]\nsearch_index = true");
    let app = app.kill_and_restart();
    assert!(search(&app, canary).is_empty(), "an erased inquiry is not found");
    assert!(search(&app, "天文").is_empty(), "nor the one put in while the index was off");
    assert_eq!(search(&app, "планетарии"), vec![kept]);
    for form in [canary.to_lowercase(), "радиотелескопе".to_owned()] {
        assert!(app.db().find_stored(&form).is_none(), "{form:?} came back");
    }
}

/// A search-file transaction that fails (here another process holds the
/// search file's write lock past the indexer's 5 s busy timeout) puts the
/// indexer behind: the submissions are still answered 201, and once the file
/// can be written again it catches up from the database, each row once.
#[test]
fn an_indexer_whose_transaction_failed_catches_up_from_the_database() {
    let app = TestApp::spawn("");
    if common::skip_unless_sqlite("the search file is SQLite's") {
        return;
    }
    let token = app.create_token("read");
    let search_file = common::Db::sqlite(&app.dir.path().join("inquiries.db-search"));
    let holder = search_file.hold_write_lock(Duration::from_secs(7));
    let texts = ["Вопрос о радиотелескопе", "关于天文合作的问题", "A question about the planetarium"];
    let submitted: Vec<String> = texts.iter().enumerate().map(|(n, text)| submit_saying(&app, n, text)).collect();
    holder.join().unwrap();
    let logs = || app.logs().contains("catching up from the database").then_some(());
    common::eventually_within("the indexer to fall behind", Duration::from_secs(10), logs);
    for (word, id) in ["радиотелескопе", "天文", "planetarium"].iter().zip(&submitted) {
        let search = || ids(&app.admin("GET", &format!("/inquiries?q={}", urlencode(word)), Some(&token), None).json());
        common::eventually_within(word, Duration::from_secs(10), || (search() == [id.clone()]).then_some(()));
    }
    assert_eq!(search_file.scalar("SELECT count(*) FROM inquiries_fts_docsize", ""), 3, "each row once");
}

/// A new inquiry never takes the `seq` of an erased one (SQLite would give the
/// largest + 1 again): the search file's watermark counts on it, so that an
/// inquiry a crash left unindexed is indexed at the next start.
#[test]
fn an_inquiry_after_the_newest_was_erased_gets_a_seq_of_its_own_and_is_found() {
    let app = TestApp::spawn("");
    if common::skip_unless_sqlite("a seq is SQLite's rowid") {
        return;
    }
    submit(&app, &unique_submission(1));
    let newest = submit(&app, &unique_submission(2));
    let db = app.db();
    let seq_of = |id: &str| db.scalar("SELECT seq FROM inquiries WHERE id = ?", id);
    let erased_seq = seq_of(&newest);
    let token = app.create_token("write");
    assert_eq!(app.admin("DELETE", &format!("/inquiries/{newest}"), Some(&token), None).status, 204);
    let later = submit_saying(&app, 3, "Спрашиваю про обсерваторию");
    assert!(seq_of(&later) > erased_seq, "the erased inquiry's seq {erased_seq} was given again");
    // Killed within the indexer's 50 ms of gathering, most likely.
    let app = app.kill_and_restart();
    let token = app.create_token("read");
    let found = app.admin("GET", &format!("/inquiries?q={}", urlencode("обсерваторию")), Some(&token), None);
    assert_eq!(ids(&found.json()), vec![later]);
}

#[test]
fn one_inquiry_with_notifications_patch_and_audit() {
    let app = TestApp::spawn("[mail]\nacknowledge_submitter = true");
    let token = app.create_token("write");
    let id = submit(&app, &valid_submission());
    std::thread::sleep(Duration::from_millis(300));
    let one = app.admin("GET", &format!("/inquiries/{id}"), Some(&token), None);
    assert_eq!(one.status, 200);
    let one = one.json();
    assert_eq!(one["name"], "Иван Петров");
    assert_eq!(one["subject"], "关于合作的问题");
    assert_eq!(one["status"], "new");
    assert_eq!(one["spam_flags"], json!([]));
    assert_eq!(one["client_ip"], "127.0.0.0/24");
    let notifications = one["notifications"].as_array().unwrap();
    let kinds: HashSet<&str> = notifications.iter().map(|n| n["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, HashSet::from(["staff", "receipt"]));
    for n in notifications {
        for key in ["recipient", "status", "attempts", "last_error", "sent_at"] {
            assert!(n.get(key).is_some(), "{key} missing in {n}");
        }
    }

    let patched = app.admin(
        "PATCH",
        &format!("/inquiries/{id}"),
        Some(&token),
        Some(&json!({"status": "resolved", "note": "Answered by phone"})),
    );
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.json()["status"], "resolved");
    assert_eq!(patched.json()["note"], "Answered by phone");
    let bad =
        app.admin("PATCH", &format!("/inquiries/{id}"), Some(&token), Some(&json!({"status": "done", "colour": 1})));
    assert_eq!(bad.status, 422);
    assert_eq!(bad.error_fields(), vec!["status".to_owned(), "colour".to_owned()]);
    let missing = app.admin("PATCH", "/inquiries/no-such-id", Some(&token), Some(&json!({"status": "spam"})));
    assert_eq!(missing.status, 404);
    assert_eq!(app.admin("GET", "/inquiries/no-such-id", Some(&token), None).status, 404);

    let audit = app.admin("GET", "/audit", Some(&token), None).json();
    let entry = &audit["items"][0];
    assert_eq!(entry["action"], "inquiry.update");
    assert_eq!(entry["target"], id);
    assert!(entry["actor"].as_str().unwrap().starts_with("token:"));
    assert_eq!(entry["detail"], json!({"from": "new", "to": "resolved", "note_changed": true}));
    assert!(!audit.to_string().contains("Иван") && !audit.to_string().contains("ivan@"), "no personal data");

    let stats = app.admin("GET", "/stats", Some(&token), None).json();
    assert_eq!(stats["total"], 1);
    assert_eq!(stats["by_status"]["resolved"], 1);
    assert_eq!(stats["by_category"]["question"], 1);
    assert_eq!(stats["per_day"].as_array().unwrap().len(), 30);
    assert_eq!(stats["per_day"][29]["count"], 1);
}

/// The records of an RFC 4180 document (quoted cells may hold commas, quotes and
/// line breaks), after an optional byte-order mark.
fn csv_records(text: &str) -> Vec<Vec<String>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (mut records, mut record, mut cell) = (Vec::new(), Vec::new(), String::new());
    let (mut quoted, mut chars) = (false, text.chars().peekable());
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut cell)),
            (false, '\r') if chars.peek() == Some(&'\n') => {
                chars.next();
                record.push(std::mem::take(&mut cell));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => cell.push(c),
        }
    }
    assert!(!quoted && cell.is_empty() && record.is_empty(), "the CSV ends with a complete record");
    records
}

/// Every id the API lists for `filter`, page by page, newest first.
fn listed(app: &TestApp, token: &str, filter: &str) -> Vec<String> {
    let (mut all, mut cursor) = (Vec::new(), String::new());
    loop {
        let page = app.admin("GET", &format!("/inquiries?limit=200&{filter}{cursor}"), Some(token), None).json();
        all.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return all,
        }
    }
}

#[test]
fn csv_and_ndjson_export_exactly_the_rows_the_api_lists_for_every_filter() {
    let app = TestApp::spawn("");
    let token = app.create_token("read");
    // 450 inquiries (export chunks are 200 rows): most ordinary, every ninth caught
    // by the honeypot (the only ones with spam flags), in three scripts.
    let scripts = [
        ("Анна Смирнова", "Вопрос о стажировке", "Здравствуйте! Расскажите о стажировке."),
        ("王小明", "合作问题", "你好，我想了解合作的机会。"),
        ("John Smith", "Visiting hours", "Hello, when can I visit the library?"),
    ];
    let categories = ["inquiry", "question", "commendation", "other"];
    std::thread::scope(|scope| {
        for t in 0..6 {
            let (app, scripts) = (&app, &scripts);
            scope.spawn(move || {
                for n in (t..450).step_by(6) {
                    let (name, subject, message) = scripts[n % 3];
                    let mut body = json!({
                        "name": name,
                        "email": if n % 10 == 0 { "repeat@example.org".to_owned() } else { format!("v{n}@example.org") },
                        "subject": subject,
                        "message": format!("{message} #{n}"),
                        "category": categories[n % 4],
                    });
                    if n % 9 == 0 {
                        body["_gotcha"] = json!("bot");
                    }
                    submit(app, &body);
                }
            });
        }
    });
    let everything = listed(&app, &token, "");
    assert_eq!(everything.len(), 450);
    let (since, until) = {
        let page = app.admin("GET", "/inquiries?limit=200", Some(&token), None).json();
        let at = |i: usize| urlencode(page["items"][i]["received_at"].as_str().unwrap());
        (at(150), at(20))
    };
    for filter in [
        String::new(),
        "status=new".into(),
        "status=spam".into(),
        "category=question".into(),
        "email=repeat@example.org".into(),
        format!("q={}", urlencode("стажировке")),
        format!("q={}", urlencode("合作")),
        "q=library".into(),
        format!("since={since}"),
        format!("until={until}"),
        format!("since={since}&until={until}&status=new"),
    ] {
        let expected = listed(&app, &token, &filter);
        assert!(!expected.is_empty(), "{filter} lists nothing: a useless case");
        let ndjson = app.admin("GET", &format!("/inquiries/export?format=ndjson&{filter}"), Some(&token), None);
        let ndjson_ids: Vec<String> = ndjson
            .body
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].as_str().unwrap().into())
            .collect();
        assert_eq!(ndjson_ids, expected, "NDJSON for {filter:?}");
        let csv = app.admin("GET", &format!("/inquiries/export?format=csv&{filter}"), Some(&token), None);
        assert!(csv.body.starts_with('\u{feff}'));
        let records = csv_records(&csv.body);
        assert_eq!(records[0][0], "id");
        let csv_ids: Vec<String> = records[1..].iter().map(|r| r[0].clone()).collect();
        assert_eq!(csv_ids.len(), expected.len(), "CSV rows for {filter:?}");
        assert_eq!(csv_ids, expected, "CSV for {filter:?}");
        assert!(records.iter().all(|r| r.len() == records[0].len()), "every CSV record has every column");
    }
}

#[test]
fn export_streams_csv_and_ndjson_like_the_cli() {
    let app = TestApp::spawn("");
    let token = app.create_token("read");
    let mut formula = unique_submission(1);
    formula["name"] = json!("=HYPERLINK(\"http://evil.example\",\"click\")");
    formula["organization"] = json!("@SUM(A1:A9)");
    formula["consent"] = json!(true);
    formula["_gotcha"] = json!("bot");
    formula["message"] = json!("-2+3, \"quoted\"\nsecond line");
    submit(&app, &formula);
    for n in 2..12 {
        submit(&app, &unique_submission(n));
    }
    let csv = app.admin("GET", "/inquiries/export?format=csv", Some(&token), None);
    assert_eq!(csv.status, 200);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    // A UTF-8 byte-order mark first, so spreadsheets read Cyrillic and Chinese.
    assert!(csv.body.starts_with("\u{feff}id,received_at,status,category,name,email,subject,message,"));
    let plain = app.admin("GET", "/inquiries/export?format=csv&bom=false", Some(&token), None);
    assert_eq!(plain.body, csv.body.trim_start_matches('\u{feff}'), "bom=false omits only the mark");
    assert_eq!(app.admin("GET", "/inquiries/export?format=csv&bom=yes", Some(&token), None).status, 422);
    assert!(csv.body.contains("\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"click\"\")\""), "{}", csv.body);
    assert!(csv.body.contains("\"'@SUM(A1:A9)\""));
    assert!(csv.body.contains("\"'-2+3, \"\"quoted\"\"\nsecond line\""));
    assert!(!csv.body.contains(",=HYPERLINK") && !csv.body.contains(",@SUM"));

    let spam_line = csv.body.split("\r\n").find(|l| l.contains("HYPERLINK")).unwrap();
    assert!(spam_line.contains(",\"spam\",") && spam_line.contains(",\"true\",") && spam_line.contains("\"honeypot\""));
    let all = app.admin("GET", "/inquiries/export?format=ndjson", Some(&token), None);
    let first: Value = serde_json::from_str(all.body.lines().last().unwrap()).unwrap();
    let mut api = app.admin("GET", &format!("/inquiries/{}", first["id"].as_str().unwrap()), Some(&token), None).json();
    // What only the single inquiry's answer adds: its deliveries and its files
    // gathered from the file fields (whose values the export has in `fields`).
    for extra in ["notifications", "deliveries", "files"] {
        api.as_object_mut().unwrap().remove(extra);
    }
    assert_eq!(first, api, "consent, spam flags and times render as in the API");
    let ndjson = app.admin("GET", "/inquiries/export?format=ndjson&q=Message", Some(&token), None);
    assert_eq!(ndjson.header("content-type"), Some("application/x-ndjson"));
    let lines: Vec<Value> = ndjson.body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 10, "the filter applies to exports");
    // Each exported object is exactly the API's inquiry object.
    for line in &lines {
        let mut one =
            app.admin("GET", &format!("/inquiries/{}", line["id"].as_str().unwrap()), Some(&token), None).json();
        for extra in ["notifications", "deliveries", "files"] {
            one.as_object_mut().unwrap().remove(extra);
        }
        assert_eq!(line, &one);
    }

    let out = app.dir.path().join("export.csv");
    let cli = app.cli(&["inquiries", "export", "--format", "csv", "-o", out.to_str().unwrap()]);
    assert!(cli.status.success(), "{}", String::from_utf8_lossy(&cli.stderr));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), csv.body, "one implementation for the API and the CLI");
    let cli = app.cli(&["inquiries", "export", "--format", "csv", "--no-bom", "-o", out.to_str().unwrap()]);
    assert!(cli.status.success(), "{}", String::from_utf8_lossy(&cli.stderr));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), plain.body);

    let head = app.admin("HEAD", "/inquiries/export?format=csv", Some(&token), None);
    assert_eq!((head.status, head.header("content-type")), (200, csv.header("content-type")));
    assert!(head.body.is_empty());
    std::thread::sleep(Duration::from_millis(100));
    assert!(!app.logs().contains("export failed"), "HEAD runs no export: {}", app.logs());

    let bad = app.admin("GET", "/inquiries/export?format=xlsx&limit=3", Some(&token), None);
    assert_eq!(bad.status, 422);
    assert_eq!(bad.error_fields(), vec!["format".to_owned(), "limit".to_owned()]);
}

#[test]
fn cli_list_matches_the_api() {
    let app = TestApp::spawn("");
    let token = app.create_token("read");
    for n in 0..3 {
        submit(&app, &unique_submission(n));
    }
    let api = app.admin("GET", "/inquiries?limit=2&category=question", Some(&token), None).json();
    let cli = app.cli(&["inquiries", "list", "--limit", "2", "--category", "question", "--json"]);
    assert!(cli.status.success());
    let cli: Value = serde_json::from_slice(&cli.stdout).unwrap();
    assert_eq!(cli, api);
    let table = String::from_utf8(app.cli(&["inquiries", "list", "--status", "new"]).stdout).unwrap();
    assert_eq!(table.lines().count(), 4, "{table}");
    let bad = app.cli(&["inquiries", "list", "--status", "open", "--since", "soon"]);
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("--status") && stderr.contains("--since"), "{stderr}");
}

#[test]
fn erasure_leaves_no_trace_of_the_personal_data() {
    let app = TestApp::spawn("[mail]\nacknowledge_submitter = true");
    let token = app.create_token("write");
    let canaries = ["Zyxwvutsrq Canaryname", "zyxcanary@example.org", "Qwertyuiop-canary-message", "金丝雀测试"];
    let mut erased_ids = Vec::new();
    for n in 0..3 {
        let mut body = unique_submission(n);
        body["name"] = json!(canaries[0]);
        body["email"] = json!(if n == 1 { "ZyxCanary@Example.org" } else { canaries[1] });
        body["message"] = json!(format!("{} {} {n}", canaries[2], canaries[3]));
        erased_ids.push(submit(&app, &body));
    }
    let kept = submit(&app, &valid_submission());
    let mail_dir = app.dir.path().join("mail");
    eventually("eight .eml files", || {
        (std::fs::read_dir(&mail_dir).map(|d| d.count()).unwrap_or(0) >= 8).then_some(())
    });

    let reply = app.admin("POST", "/erasures", Some(&token), Some(&json!({"email": "zyxcanary@EXAMPLE.org"})));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json(), json!({"erased": 3}));

    for id in &erased_ids {
        assert_eq!(app.admin("GET", &format!("/inquiries/{id}"), Some(&token), None).status, 404);
    }
    assert_eq!(app.admin("GET", &format!("/inquiries/{kept}"), Some(&token), None).status, 200);
    let search = app.admin("GET", &format!("/inquiries?q={}", urlencode("金丝雀")), Some(&token), None).json();
    assert!(ids(&search).is_empty(), "no search-index entry left");
    let mail_files: Vec<String> =
        std::fs::read_dir(&mail_dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(mail_files.iter().all(|f| erased_ids.iter().all(|id| !f.starts_with(id.as_str()))), "{mail_files:?}");
    assert!(!mail_files.is_empty(), "the kept inquiry's mail remains");

    // SQLite: not a byte left in the database or WAL file; PostgreSQL: in no row.
    let db = app.db();
    for canary in canaries.iter().chain(&["zyxcanary", "Canaryname", "canary-message"]) {
        for form in [canary.to_string(), canary.to_lowercase()] {
            let found = db.find_stored(&form);
            assert!(found.is_none(), "{form:?} is still in the database: {found:?}");
        }
    }
    let audit = app.admin("GET", "/audit", Some(&token), None).json();
    assert_eq!(audit["items"][0]["action"], "erasure");
    assert_eq!(audit["items"][0]["detail"], json!({"erased": 3}));
    assert!(!audit.to_string().to_lowercase().contains("canary"));

    let again = app.admin("DELETE", &format!("/inquiries/{kept}"), Some(&token), None);
    assert_eq!(again.status, 204);
    assert_eq!(app.admin("DELETE", &format!("/inquiries/{kept}"), Some(&token), None).status, 404);
    assert_eq!(app.admin("GET", "/audit?limit=1", Some(&token), None).json()["items"][0]["action"], "inquiry.delete");
    let bad = app.admin("POST", "/erasures", Some(&token), Some(&json!({"email": "not an address"})));
    assert_eq!(bad.status, 422);
}

#[test]
fn erasure_and_the_email_filter_take_either_spelling_of_an_idn_address() {
    let app = TestApp::spawn("");
    let token = app.create_token("write");
    let spellings = ["idn@пример.рф", "idn@xn--e1afmkfd.xn--p1ai", "IDN@Пример.РФ"];
    for (n, email) in spellings.iter().enumerate() {
        let mut body = unique_submission(n);
        body["email"] = json!(email);
        submit(&app, &body);
    }
    let other = submit(&app, &unique_submission(9));
    for email in spellings {
        let page = app.admin("GET", &format!("/inquiries?email={}", urlencode(email)), Some(&token), None).json();
        assert_eq!(ids(&page).len(), 3, "the filter by {email}");
    }
    let erasure = json!({"email": "idn@XN--E1AFMKFD.xn--p1ai"});
    let erased = app.admin("POST", "/erasures", Some(&token), Some(&erasure));
    assert_eq!(erased.json()["erased"], 3, "{}", erased.body);
    let db = app.db();
    assert_eq!(db.scalar("SELECT COUNT(*) FROM inquiries", ""), 1);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM inquiries WHERE id = ?", &other), 1);
}

#[test]
fn migration_5_gives_stored_idn_addresses_their_ascii_normal_form() {
    if common::skip_unless_sqlite("migration 5 is SQLite's; PostgreSQL's schema starts with the normal form") {
        return;
    }
    let mut app = TestApp::spawn("");
    let token = app.create_token("write");
    let mut body = unique_submission(1);
    body["email"] = json!("Idn@Пример.рф");
    let id = submit(&app, &body);
    assert!(app.terminate().success());
    // The database as a release before migration 5 left it: the normal form was
    // the lower-cased address, Unicode domain and all.
    app.db().write(
        "UPDATE inquiries SET email_norm = 'idn@пример.рф'; DELETE FROM _sqlx_migrations WHERE version = 5; \
         DELETE FROM meta WHERE key = 'email_norm'",
    );
    let app = app.restart_with("");
    let db = app.db();
    assert_eq!(
        db.row("SELECT email_norm FROM inquiries WHERE id = ?", &id).unwrap()["email_norm"].as_deref(),
        Some("idn@xn--e1afmkfd.xn--p1ai")
    );
    assert_eq!(db.scalar("SELECT COUNT(*) FROM meta WHERE key = 'email_norm'", ""), 0, "the mark is removed");
    let erased = app.admin("POST", "/erasures", Some(&token), Some(&json!({"email": "idn@xn--e1afmkfd.xn--p1ai"})));
    assert_eq!(erased.json()["erased"], 1, "{}", erased.body);
}

#[test]
fn retry_requeues_a_failed_notification() {
    let sink = common::smtp::SmtpSink::start_with(&["--reject-rcpt", "550"]);
    let app = TestApp::spawn(&sink.config());
    let token = app.create_token("write");
    let id = submit(&app, &valid_submission());
    let db = app.db();
    let notification = (0..200)
        .find_map(|_| {
            std::thread::sleep(Duration::from_millis(25));
            db.row("SELECT id, status FROM notifications WHERE inquiry_id = ?", &id)
                .filter(|r| r["status"].as_deref() == Some("failed"))
        })
        .expect("the notification fails");
    let nid = notification["id"].clone().unwrap();

    let retried = app.admin("POST", &format!("/notifications/{nid}/retry"), Some(&token), None);
    assert_eq!(retried.status, 202, "{}", retried.body);
    eventually("a second attempt", || {
        (db.scalar("SELECT COUNT(*) FROM notification_attempts WHERE notification_id = ?", &nid) >= 2).then_some(())
    });
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM notification_attempts WHERE notification_id = ?", &nid),
        2,
        "sent again"
    );
    assert_eq!(
        app.admin("GET", "/audit?limit=1", Some(&token), None).json()["items"][0]["action"],
        "notification.retry"
    );
    assert_eq!(app.admin("POST", "/notifications/nope/retry", Some(&token), None).status, 404);

    let ok_app = TestApp::spawn("");
    let ok_token = ok_app.create_token("write");
    let ok_id = submit(&ok_app, &valid_submission());
    let ok_db = ok_app.db();
    std::thread::sleep(Duration::from_millis(500));
    let sent = ok_db.row("SELECT id FROM notifications WHERE inquiry_id = ?", &ok_id).unwrap()["id"].clone().unwrap();
    let conflict = ok_app.admin("POST", &format!("/notifications/{sent}/retry"), Some(&ok_token), None);
    assert_eq!(conflict.status, 409, "{}", conflict.body);
}

#[test]
fn retention_purge_by_command_and_dry_run() {
    let app = TestApp::spawn("[privacy]\nretention_days = 30");
    let token = app.create_token("read");
    // The server's own purge runs a second after start; it finds nothing yet.
    assert_eq!(task_purge(&app, &token, 1)["detail"]["erased"], 0);
    let old: Vec<String> = (0..3).map(|n| submit(&app, &unique_submission(n))).collect();
    let recent = submit(&app, &unique_submission(9));
    let forty_days_ago = common::now_ms() - 40 * 86_400_000;
    app.db().write(&format!("UPDATE inquiries SET received_at = {forty_days_ago} WHERE id IN ('{}')", old.join("','")));
    let dry = app.cli(&["purge", "--dry-run"]);
    assert!(dry.status.success(), "{}", String::from_utf8_lossy(&dry.stderr));
    assert!(String::from_utf8_lossy(&dry.stdout).starts_with("3 inquiries"));
    let db = app.db();
    assert_eq!(db.scalar("SELECT COUNT(*) FROM inquiries", ""), 4, "a dry run erases nothing");

    let purge = app.cli(&["purge"]);
    assert!(purge.status.success(), "{}", String::from_utf8_lossy(&purge.stderr));
    assert_eq!(db.scalar("SELECT COUNT(*) FROM inquiries", ""), 1);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM inquiries WHERE id = ?", &recent), 1);
    let audit = app.admin("GET", "/audit", Some(&token), None).json();
    let purge_entry = audit["items"].as_array().unwrap().iter().find(|e| e["action"] == "retention.purge").unwrap();
    assert_eq!(purge_entry["actor"], "cli");
    assert_eq!(purge_entry["detail"]["erased"], 3);

    let keep_forever = TestApp::spawn("");
    assert!(!keep_forever.cli(&["purge"]).status.success(), "retention_days = 0 has nothing to purge");

    // The purge runs once a day across processes: a restart within the day does
    // not purge again; a day later (its last run moved back a day), it does.
    let aged = submit(&app, &unique_submission(20));
    app.db().write(&format!("UPDATE inquiries SET received_at = {forty_days_ago} WHERE id = '{aged}'"));
    let app = app.kill_and_restart();
    eventually("the purge to be found not due", || app.logs().contains("retention purge not due").then_some(()));
    let db = app.db();
    assert_eq!(db.scalar("SELECT COUNT(*) FROM inquiries WHERE id = ?", &aged), 1, "no second purge the same day");
    app.db().write(
        "UPDATE meta SET value = CAST(CAST(value AS BIGINT) - 86400000 AS TEXT) WHERE key = 'retention_last_run'",
    );
    let app = app.kill_and_restart();
    let erased = task_purge(&app, &token, 2);
    assert_eq!(erased["detail"]["erased"], 1, "{erased}");
    let db = app.db();
    assert_eq!(db.scalar("SELECT COUNT(*) FROM inquiries WHERE id = ?", &aged), 0);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM inquiries WHERE id = ?", &recent), 1);
}

/// A backlog past retention is erased 200 inquiries per transaction (oldest
/// first), so that submissions are committed in between: each transaction is
/// audited with its own count, and a last one that finds nothing left is not.
#[test]
fn a_purge_of_a_backlog_erases_it_200_at_a_time_each_audited() {
    let app = TestApp::spawn("[privacy]\nretention_days = 30");
    let token = app.create_token("read");
    assert_eq!(task_purge(&app, &token, 1)["detail"]["erased"], 0);
    let scripts = ["Вопрос о стажировке", "关于天文合作的问题", "A question about the library"];
    for n in 0..400 {
        submit_saying(&app, n, &format!("{} {n}", scripts[n % 3]));
    }
    let recent = submit(&app, &unique_submission(500));
    let db = app.db();
    let forty_days_ago = common::now_ms() - 40 * 86_400_000;
    db.write(&format!("UPDATE inquiries SET received_at = {forty_days_ago} WHERE id <> '{recent}'"));
    let purge = app.cli(&["purge"]);
    assert!(purge.status.success(), "{}", String::from_utf8_lossy(&purge.stderr));
    assert_eq!(String::from_utf8_lossy(&purge.stdout).trim(), "erased 400 inquiries older than 30 days");
    assert_eq!(db.scalar("SELECT COUNT(*) FROM inquiries", ""), 1);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM inquiries WHERE id = ?", &recent), 1);
    let audit = app.admin("GET", "/audit", Some(&token), None).json();
    let entries: Vec<&Value> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] == "cli" && e["action"] == "retention.purge")
        .collect();
    let counts: Vec<&Value> = entries.iter().map(|e| &e["detail"]["erased"]).collect();
    assert_eq!(counts, [&json!(200), &json!(200)], "{entries:?}");
    assert!(entries.iter().all(|e| e["detail"]["retention_days"] == 30));
    let search = app.admin("GET", &format!("/inquiries?q={}", urlencode("天文")), Some(&token), None);
    assert!(ids(&search.json()).is_empty(), "{}", search.body);
}

/// A retention purge that fails (after its retries) keeps what it erased and
/// gives the day's run back, so the next check erases the rest: here a trigger
/// refuses to erase one inquiry of the second transaction, and is dropped
/// before the next start.
#[test]
fn a_retention_purge_that_fails_gives_the_days_run_back() {
    let mut app = TestApp::spawn("");
    let token = app.create_token("read");
    let scripts = ["Письмо в приёмную", "给图书馆的问题", "A note for the front desk"];
    let ids: Vec<String> = (0..300).map(|n| submit_saying(&app, n, &format!("{} {n}", scripts[n % 3]))).collect();
    app.kill();
    let db = app.db();
    db.write(&format!("UPDATE inquiries SET received_at = received_at - {}", 40 * 86_400_000_i64));
    // The 251st oldest: in the purge's second transaction.
    let refused = &ids[250];
    db.write(&if common::is_postgres() {
        format!(
            "CREATE FUNCTION refuse_erasure() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN RAISE EXCEPTION 'refused by the test'; END $$; \
             CREATE TRIGGER refuse_erasure BEFORE DELETE ON inquiries FOR EACH ROW \
             WHEN (OLD.id = '{refused}') EXECUTE FUNCTION refuse_erasure();"
        )
    } else {
        format!(
            "CREATE TRIGGER refuse_erasure BEFORE DELETE ON inquiries WHEN OLD.id = '{refused}' \
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;"
        )
    });

    let retention = "[privacy]\nretention_days = 30";
    let mut app = app.restart_with(retention);
    let failed = || app.logs().contains("retention purge failed; retrying at the next check").then_some(());
    common::eventually_within("the purge to fail", Duration::from_secs(60), failed);
    app.kill();
    let db = app.db();
    assert_eq!(db.scalar("SELECT COUNT(*) FROM inquiries", ""), 100, "the first transaction's 200 stay erased");
    assert_eq!(db.scalar("SELECT COUNT(*) FROM inquiries WHERE id = ?", refused), 1);
    db.write(if common::is_postgres() {
        "DROP TRIGGER refuse_erasure ON inquiries; DROP FUNCTION refuse_erasure();"
    } else {
        "DROP TRIGGER refuse_erasure;"
    });

    let app = app.restart_with(retention);
    let done = || app.logs().contains("retention purge done").then_some(());
    common::eventually_within("the rest erased at the next start", Duration::from_secs(60), done);
    assert_eq!(app.db().scalar("SELECT COUNT(*) FROM inquiries", ""), 0);
    let audit = app.admin("GET", "/audit", Some(&token), None).json();
    let counts: Vec<i64> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] == "retention" && e["action"] == "retention.purge")
        .map(|e| e["detail"]["erased"].as_i64().unwrap())
        .collect();
    assert_eq!(counts, [100, 200], "newest first: the failed run's first transaction, then the rest");
}

/// `inquiryd purge` erases rows that the server's indexer may still hold (here
/// a visitor's inquiries, aged by hand right after they were answered, while
/// more keep coming): the purge notes them in the search file, so that no
/// indexer indexes them after, and the file ends holding every row left, once.
/// Whether a purge meets a row in the indexer's 50 ms is up to timing; the
/// outcome is checked either way.
#[test]
fn a_command_line_purge_beside_the_indexer_leaves_the_search_file_agreeing() {
    let mut app = TestApp::spawn("[privacy]\nretention_days = 30");
    if common::skip_unless_sqlite("the search file is SQLite's") {
        return;
    }
    let url = app.url(SUBMIT);
    let done = std::sync::atomic::AtomicBool::new(false);
    let db = app.db();
    let age = format!(
        "UPDATE inquiries SET received_at = received_at - {} WHERE email_norm = 'victim@example.org'",
        40 * 86_400_000_i64
    );
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for n in 0..600 {
                let mut body = unique_submission(n);
                if n % 2 == 0 {
                    body["email"] = json!("victim@example.org");
                    body["message"] = json!(format!("Канарейка zyxvictim {n} 金丝雀"));
                }
                let reply = ureq::post(&url).set("Content-Type", "application/json").send_string(&body.to_string());
                assert_eq!(reply.map(|r| r.status()).unwrap_or(0), 201);
            }
            done.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        while !done.load(std::sync::atomic::Ordering::Relaxed) {
            db.write(&age);
            let purge = app.cli(&["purge"]);
            assert!(purge.status.success(), "{}", String::from_utf8_lossy(&purge.stderr));
        }
    });
    db.write(&age);
    assert!(app.cli(&["purge"]).status.success());
    assert!(app.terminate().success(), "a clean stop indexes what was handed over");

    let stored = db.integers("SELECT seq FROM inquiries ORDER BY seq");
    assert_eq!(stored.len(), 300, "the other visitors' 300 are kept");
    let search_file = common::Db::sqlite(&app.dir.path().join("inquiries.db-search"));
    let indexed = search_file.integers("SELECT id FROM inquiries_fts_docsize ORDER BY id");
    assert_eq!(indexed, stored, "indexed: every row kept, once");
    for canary in ["zyxvictim", "канарейка"] {
        assert!(db.find_stored(canary).is_none(), "{canary} is still stored");
    }
}

/// Waits until the server's own retention purge has run `runs` times in all
/// and returns the audit entry of the latest run.
fn task_purge(app: &TestApp, token: &str, runs: usize) -> Value {
    eventually(&format!("{runs} run(s) of the retention task"), || {
        let audit = app.admin("GET", "/audit", Some(token), None).json();
        // Newest first.
        let by_task: Vec<Value> =
            audit["items"].as_array().unwrap().iter().filter(|e| e["actor"] == "retention").cloned().collect();
        (by_task.len() >= runs).then(|| by_task[0].clone())
    })
}

/// The read model is typed: stored JSON that does not parse is an error (a 500
/// problem, logged), never shown as if the inquiry had no spam flags.
#[test]
fn unreadable_stored_spam_flags_are_an_error_not_an_empty_list() {
    let app = TestApp::spawn("");
    let token = app.create_token("read");
    let id = submit(&app, &valid_submission());
    let good = app.admin("GET", &format!("/inquiries/{id}"), Some(&token), None);
    assert_eq!(good.status, 200, "{}", good.body);
    assert_eq!(good.json()["spam_flags"], json!([]));

    app.db().write(&format!("UPDATE inquiries SET spam_flags = 'not json' WHERE id = '{id}'"));
    let broken = app.admin("GET", &format!("/inquiries/{id}"), Some(&token), None);
    assert_eq!(broken.status, 500, "{}", broken.body);
    assert_eq!(broken.header("content-type"), Some("application/problem+json"));
    assert!(!broken.body.contains("not json"), "stored data stays out of the answer: {}", broken.body);
}

const EVENT: &str = "/api/v1/forms/event/inquiries";

/// The `form` filter in list, export (CSV: a column per custom field of the
/// filtered form, after the built-in ones) and stats; custom values are in the
/// inquiry object, searchable, and exported exactly as the API shows them.
#[test]
fn the_form_filter_in_list_export_and_stats_and_a_csv_column_per_custom_field() {
    let app = TestApp::spawn(common::TWO_FORMS);
    let token = app.create_token("read");
    let contact: Vec<String> = (0..2).map(|n| submit(&app, &unique_submission(n))).collect();
    let mut event = Vec::new();
    for (n, badge) in ["Zhanar", "=Aida", "Ерлан"].iter().enumerate() {
        let mut body = common::event_registration();
        body["message"] = json!(format!("Registration {n}"));
        body["badge_name"] = json!(badge);
        if n == 1 {
            body["department"] = json!("press");
            body.as_object_mut().unwrap().remove("website");
        }
        let reply = app.post_json(EVENT, &body);
        assert_eq!(reply.status, 201, "{}", reply.body);
        event.push(reply.json()["id"].as_str().unwrap().to_owned());
    }
    event.reverse();

    // The inquiry object carries `form` and `fields`.
    let one = app.admin("GET", &format!("/inquiries/{}", event[2]), Some(&token), None).json();
    assert_eq!(one["form"], "event");
    assert_eq!(one["fields"]["guests"], 2);
    assert_eq!(one["fields"]["badge_name"], "Zhanar");
    let other = app.admin("GET", &format!("/inquiries/{}", contact[0]), Some(&token), None).json();
    assert_eq!((other["form"].clone(), other["fields"].clone()), (json!("contact"), json!({})));

    assert_eq!(listed(&app, &token, "form=event"), event);
    assert_eq!(listed(&app, &token, "form=contact"), contact.iter().rev().cloned().collect::<Vec<_>>());
    assert!(listed(&app, &token, "form=media").is_empty());
    let bad = app.admin("GET", "/inquiries?form=Event!", Some(&token), None);
    assert_eq!((bad.status, bad.error_codes()), (422, vec![("form".to_owned(), "invalid_choice".to_owned())]));
    // Custom values are searched like the rest.
    assert_eq!(listed(&app, &token, &format!("q={}", urlencode("Ерлан"))), [event[0].clone()]);
    assert_eq!(listed(&app, &token, "q=press&form=event"), [event[1].clone()]);
    assert!(listed(&app, &token, "q=press&form=contact").is_empty());

    let stats = app.admin("GET", "/stats?form=event", Some(&token), None).json();
    assert_eq!(stats["total"], 3);
    assert_eq!(stats["by_category"], json!({"inquiry": 0, "question": 3, "commendation": 0, "other": 0}));
    assert_eq!(app.admin("GET", "/stats", Some(&token), None).json()["total"], 5);
    assert_eq!(app.admin("GET", "/stats?form=media", Some(&token), None).json()["total"], 0);
    assert_eq!(app.admin("GET", "/stats?status=new", Some(&token), None).status, 422);

    let csv = app.admin("GET", "/inquiries/export?format=csv&form=event", Some(&token), None);
    assert_eq!(csv.status, 200);
    let records = csv_records(&csv.body);
    let header: Vec<&str> = records[0].iter().map(String::as_str).collect();
    assert_eq!(
        header[15..],
        [
            "note",
            "form",
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
    assert_eq!(records.len(), 4);
    let row = |id: &str| records.iter().find(|r| r[0] == id).unwrap().clone();
    let first = row(&event[2]);
    assert_eq!(
        first[16..],
        [
            "event",
            "Fintech workshop",
            "",
            "2",
            "2026-06-01",
            "https://alatau.example.kz",
            "office@alatau.example.kz",
            "Vegetarian\nNo nuts",
            "Zhanar",
            "true"
        ]
    );
    let press = row(&event[1]);
    assert_eq!((press[18].as_str(), press[21].as_str(), press[24].as_str()), ("press", "", "'=Aida"));
    // Without the filter: one `fields` column with the JSON object.
    let all = csv_records(&app.admin("GET", "/inquiries/export?format=csv", Some(&token), None).body);
    assert_eq!(all[0][16..], ["form", "fields"]);
    assert_eq!(all.len(), 6);
    let contact_row = all.iter().find(|r| r[0] == contact[0]).unwrap();
    assert_eq!(contact_row[17], "{}");
    let event_row = all.iter().find(|r| r[0] == event[2]).unwrap();
    let fields: Value = serde_json::from_str(&event_row[17]).unwrap();
    assert_eq!(fields, one["fields"]);

    let ndjson = app.admin("GET", "/inquiries/export?format=ndjson&form=event", Some(&token), None);
    let lines: Vec<Value> = ndjson.body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3);
    let mut api = one.clone();
    for extra in ["notifications", "deliveries", "files"] {
        api.as_object_mut().unwrap().remove(extra);
    }
    assert_eq!(lines[2], api, "each exported object is the API's");

    let out = app.dir.path().join("event.csv");
    let cli = app.cli(&["inquiries", "export", "--format", "csv", "--form", "event", "-o", out.to_str().unwrap()]);
    assert!(cli.status.success(), "{}", String::from_utf8_lossy(&cli.stderr));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), csv.body, "the CLI exports the same columns");
}
