//! File uploads: `multipart/form-data` to a form with a `file` field, checked
//! from its bytes, stored under its hash, downloaded as an attachment, mailed
//! to staff, erased with its inquiry, and never left behind by a refusal or a crash.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::common::smtp::SmtpSink;
use crate::common::{eventually, is_postgres, Part, TestApp};

const SUBMIT: &str = "/api/v1/forms/internships/inquiries";

/// The internship form: a required CV (PDF, PNG or .docx, up to 10 MB, two at
/// most) and an optional portfolio of any type.
const FORM: &str = r#"
[storage]
files_dir = "data/files"
[forms.internships]
title = "Internships"
[[forms.internships.fields]]
name = "cv"
label = "CV"
labels = { ru = "Резюме" }
type = "file"
required = true
max_files = 2
max_bytes = 10485760
accept = ["application/pdf", "image/png", ".docx"]
"#;

pub const PDF: &[u8] = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n%%EOF\n";
const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\0IEND\xaeB`\x82";

fn text_parts(message: &str) -> Vec<Part<'_>> {
    vec![
        Part::Text("name", "Aigerim Bekova"),
        Part::Text("email", "aigerim@example.org"),
        Part::Text("subject", "Summer internship"),
        Part::Text("message", message),
    ]
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn files_dir(app: &TestApp) -> PathBuf {
    app.dir.path().join("data/files")
}

/// Every entry of the files directory, sorted.
fn stored(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

fn created(reply: &crate::common::Reply) -> String {
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.json()["id"].as_str().unwrap().to_owned()
}

#[test]
fn a_plain_client_uploads_and_staff_download_the_file_as_an_attachment() {
    let app = TestApp::spawn(FORM);
    let token = app.create_token("write");
    let mut parts = text_parts("Please find my CV attached.");
    parts.push(Part::File { field: "cv", name: "<script>.pdf", kind: "application/pdf", bytes: PDF });
    parts.push(Part::File { field: "cv", name: "../../etc/passwd", kind: "image/png", bytes: PNG });
    let id = created(&app.post_multipart(SUBMIT, &parts, &[("Accept", "application/json")]));

    let inquiry = app.admin("GET", &format!("/inquiries/{id}"), Some(&token), None).json();
    let files = inquiry["files"].as_array().expect("files on the inquiry").clone();
    assert_eq!(files.len(), 2, "{inquiry}");
    assert_eq!(files[0]["field"], "cv");
    assert_eq!(files[0]["name"], "<script>.pdf");
    assert_eq!(files[0]["type"], "application/pdf");
    assert_eq!(files[0]["size"], PDF.len());
    assert_eq!(files[0]["sha256"], sha256(PDF));
    // The path is gone from the name: it is display text, never a path.
    assert_eq!(files[1]["name"], "passwd");
    assert_eq!(files[1]["type"], "image/png");
    assert_eq!(inquiry["fields"]["cv"].as_array().map(Vec::len), Some(2), "the field's value lists its files");

    // Stored under its hash inside files_dir, nowhere else.
    assert_eq!(stored(&files_dir(&app)), {
        let mut names = vec![sha256(PDF), sha256(PNG)];
        names.sort();
        names
    });
    assert_eq!(std::fs::read(files_dir(&app).join(sha256(PNG))).unwrap(), PNG);
    assert!(!app.dir.path().join("etc").exists() && !files_dir(&app).join("passwd").exists());

    let file_id = files[0]["id"].as_str().unwrap();
    let download = ureq::get(&app.url(&format!("/api/v1/admin/inquiries/{id}/files/{file_id}")))
        .set("Authorization", &format!("Bearer {token}"))
        .call()
        .unwrap();
    assert_eq!(download.header("X-Content-Type-Options"), Some("nosniff"));
    let disposition = download.header("Content-Disposition").unwrap().to_owned();
    assert!(disposition.starts_with("attachment"), "{disposition}");
    assert!(
        disposition.contains("filename=\"_script_.pdf\"") || disposition.contains("filename=\"<script>.pdf\""),
        "{disposition}"
    );
    let mut bytes = Vec::new();
    download.into_reader().read_to_end(&mut bytes).unwrap();
    assert_eq!(bytes, PDF);
    // Only with a token, and only files of that inquiry.
    assert_eq!(app.admin("GET", &format!("/inquiries/{id}/files/{file_id}"), None, None).status, 401);
    assert_eq!(app.admin("GET", &format!("/inquiries/{id}/files/nope"), Some(&token), None).status, 404);

    // The export lists names and sizes (one column per field of the filtered form).
    let csv = app.admin("GET", "/inquiries/export?format=csv&form=internships", Some(&token), None).body;
    assert!(csv.contains(&format!("<script>.pdf ({} bytes); passwd ({} bytes)", PDF.len(), PNG.len())), "{csv}");
    // The form's definition tells a page what the field takes.
    let definition = app.get("/api/v1/forms/internships").json();
    let cv = definition["fields"].as_array().unwrap().iter().find(|f| f["name"] == "cv").unwrap().clone();
    assert_eq!(
        (cv["type"].as_str(), cv["max_files"].as_u64(), cv["max_bytes"].as_u64()),
        (Some("file"), Some(2), Some(10485760))
    );
    // Names and personal data stay out of the log.
    let logs = app.logs();
    assert!(!logs.contains("script>.pdf") && !logs.contains("passwd") && !logs.contains("aigerim"), "{logs}");
}

/// `(status, [(field, code)])` of a refused upload, after checking it is a
/// problem document.
fn refusal(reply: crate::common::Reply) -> (u16, Vec<(String, String)>) {
    assert_eq!(reply.header("content-type"), Some("application/problem+json"), "{}", reply.body);
    (reply.status, reply.error_codes())
}

#[test]
fn every_refusal_has_its_code_in_the_visitors_language_and_leaves_no_file() {
    let config =
        "[server]\nupload_limit_bytes = 12000000\nclient_timeout_seconds = 2\n[forms.contact]\ntitle = \"Contact\"";
    let app = TestApp::spawn(&format!("{FORM}\n{config}"));
    let json = [("Accept", "application/json")];
    let with = |files: Vec<Part<'static>>| {
        let mut parts = text_parts("Refuse me.");
        parts.extend(files);
        parts
    };
    let cv =
        |name: &'static str, kind: &'static str, bytes: &'static [u8]| Part::File { field: "cv", name, kind, bytes };
    let big: &'static [u8] = Box::leak(vec![b'%'; 10 * 1024 * 1024 + 1].into_boxed_slice());

    let too_large = app.post_multipart(SUBMIT, &with(vec![cv("big.pdf", "application/pdf", big)]), &json);
    assert_eq!(too_large.json()["errors"][0]["message"], "CV must be at most 10485760 bytes per file.");
    assert_eq!(refusal(too_large), (413, vec![("cv".into(), "too_large".into())]));
    let three = with(vec![cv("a.pdf", "application/pdf", PDF), cv("b.pdf", "", PDF), cv("c.png", "image/png", PNG)]);
    assert_eq!(refusal(app.post_multipart(SUBMIT, &three, &json)), (422, vec![("cv".into(), "too_many_files".into())]));
    // An HTML page declared as a PNG: the bytes say what it is.
    let html = with(vec![cv("cat.png", "image/png", b"<html><body><script>alert(1)</script></body></html>")]);
    assert_eq!(
        refusal(app.post_multipart(SUBMIT, &html, &json)),
        (422, vec![("cv".into(), "invalid_file_type".into())])
    );
    // A PNG declared as a PDF contradicts its bytes; a real but unaccepted type.
    let lying = with(vec![cv("cv.pdf", "application/pdf", PNG)]);
    assert_eq!(
        refusal(app.post_multipart(SUBMIT, &lying, &json)),
        (422, vec![("cv".into(), "invalid_file_type".into())])
    );
    let gif = with(vec![cv("a.gif", "image/gif", b"GIF89a\x01\0\x01\0\x80\0\0\0\0\0\xff\xff\xff!")]);
    assert_eq!(
        refusal(app.post_multipart(SUBMIT, &gif, &json)),
        (422, vec![("cv".into(), "invalid_file_type".into())])
    );
    let empty = with(vec![cv("cv.pdf", "application/pdf", b"")]);
    assert_eq!(refusal(app.post_multipart(SUBMIT, &empty, &json)), (422, vec![("cv".into(), "empty_file".into())]));
    // Missing, and other fields' errors reported with the file's.
    let mut missing = text_parts("No CV.");
    missing[1] = Part::Text("email", "not-an-address");
    let codes = refusal(app.post_multipart(SUBMIT, &missing, &json)).1;
    assert_eq!(codes, [("email".into(), "invalid_email".into()), ("cv".into(), "required".into())]);
    // JSON cannot carry a file, nor name one that is stored.
    let mut body = crate::common::valid_submission();
    body["cv"] =
        serde_json::json!([{"id": "x", "name": "x", "size": 1, "type": "application/pdf", "sha256": sha256(PDF)}]);
    assert_eq!(refusal(app.post_json(SUBMIT, &body)), (422, vec![("cv".into(), "invalid_type".into())]));
    // A form without file fields takes multipart text (within body_limit_bytes), never a file.
    assert_eq!(app.post_multipart("/api/v1/inquiries", &text_parts("Multipart text."), &json).status, 201);
    let mut stray = text_parts("A file to the contact form.");
    stray.push(cv("cv.pdf", "application/pdf", PDF));
    assert_eq!(
        refusal(app.post_multipart("/api/v1/inquiries", &stray, &json)),
        (422, vec![("cv".into(), "unknown_field".into())])
    );
    // Over the contact form's body limit (body_limit_bytes, not upload_limit_bytes),
    // refused from its Content-Length. Only the head is sent: a client still
    // writing a body the server will not read can meet a reset instead of the
    // answer (seen once in CI as a broken pipe), which is not what this checks.
    let head = "POST /api/v1/inquiries HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n\
                Content-Length: 70000\r\nAccept: application/json\r\nConnection: close\r\n\r\n";
    let long = crate::common::raw_request(&app.base, head.as_bytes());
    assert_eq!(long.status, 413, "{}", long.body);
    assert!(long.body.contains("65536"), "the body limit, not the upload limit: {}", long.body);
    // In the visitor's language, codes and fields unchanged.
    let ru = app.post_multipart(SUBMIT, &empty, &[("Accept", "application/json"), ("Accept-Language", "ru")]);
    assert_eq!(ru.header("content-language"), Some("ru"));
    assert_eq!(ru.json()["errors"][0]["message"], "Резюме: файл пустой.");

    // A whole body over upload_limit_bytes, refused from its Content-Length.
    let head = format!(
        "POST {SUBMIT} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 12000001\r\nConnection: close\r\n\r\n"
    );
    let reply = crate::common::raw_request(&app.base, head.as_bytes());
    assert_eq!(reply.status, 413, "{}", reply.body);
    // A slow upload is cut at client_timeout_seconds: 408.
    let started = Instant::now();
    let (content_type, body) = crate::common::multipart(&with(vec![cv("cv.pdf", "application/pdf", PDF)]));
    let mut stream = TcpStream::connect(app.base.trim_start_matches("http://")).unwrap();
    let head = format!(
        "POST {SUBMIT} HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&body[..body.len() - 40]).unwrap();
    let mut answer = String::new();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() >= Duration::from_secs(2) && started.elapsed() < Duration::from_secs(6));

    // Nothing refused was kept, not even a temporary file.
    assert_eq!(stored(&files_dir(&app)), Vec::<String>::new());
    assert_eq!(app.db().scalar("SELECT COUNT(*) FROM inquiries WHERE form = ?", "internships"), 0);
}

/// Resident memory of a process, in kB.
fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Streams `total` bytes of one file part in chunked encoding (no length to
/// refuse it by) while sampling the server's memory; returns the answer and the
/// peak memory growth in kB.
fn upload_chunked(app: &TestApp, total: usize) -> (String, u64) {
    let pid = app.pid();
    let before = rss_kb(pid);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(rss_kb(pid));
                std::thread::sleep(Duration::from_millis(5));
            }
            peak
        })
    };
    let mut stream = TcpStream::connect(app.base.trim_start_matches("http://")).unwrap();
    let head = format!(
        "POST {SUBMIT} HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nContent-Type: multipart/form-data; boundary={b}\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        b = crate::common::BOUNDARY
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let preamble = format!(
            "--{b}\r\nContent-Disposition: form-data; name=\"cv\"; filename=\"huge.pdf\"\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.7\n",
            b = crate::common::BOUNDARY
        );
        let chunk = vec![b'A'; 64 * 1024];
        let _ = writer.write_all(format!("{:x}\r\n{preamble}\r\n", preamble.len()).as_bytes());
        let mut sent = 0;
        while sent < total {
            if writer.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).is_err()
                || writer.write_all(&chunk).is_err()
                || writer.write_all(b"\r\n").is_err()
            {
                return;
            }
            sent += chunk.len();
        }
        let _ = writer.write_all(b"0\r\n\r\n");
    });
    let mut answer = String::new();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let _ = stream.read_to_string(&mut answer);
    let _ = sender.join();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.join().unwrap();
    (answer, peak.saturating_sub(before))
}

#[test]
fn a_30_mb_upload_is_refused_without_the_server_holding_it_in_memory() {
    let app = TestApp::spawn(FORM);
    // Warm up the paths a request takes (allocator arenas, the writer) first.
    let mut parts = text_parts("Warm-up.");
    parts.push(Part::File { field: "cv", name: "cv.pdf", kind: "application/pdf", bytes: PDF });
    created(&app.post_multipart(SUBMIT, &parts, &[("Accept", "application/json")]));
    let (answer, growth_kb) = upload_chunked(&app, 30 * 1024 * 1024);
    eprintln!("server memory grew by {growth_kb} kB during a refused 30 MB upload");
    assert!(growth_kb < 6 * 1024, "the server's memory grew by {growth_kb} kB");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"code\":\"too_large\""), "{answer}");
    // The 10 MB it wrote before refusing are gone.
    assert_eq!(stored(&files_dir(&app)), vec![sha256(PDF)]);
}

/// A file unique to `n`, `size` bytes, that passes as a PDF.
fn unique_pdf(n: usize, size: usize) -> Vec<u8> {
    let mut bytes = PDF.to_vec();
    let mut x = n as u64 + 1;
    while bytes.len() < size {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    bytes.truncate(size);
    bytes
}

#[test]
fn kill_9_during_uploads_leaves_no_orphan_and_every_answered_file_intact() {
    let app = TestApp::spawn(&format!("{FORM}\n[server]\nclient_timeout_seconds = 2"));
    let base = app.base.clone();
    let answered = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..8)
        .map(|n| {
            let (base, answered) = (base.clone(), answered.clone());
            std::thread::spawn(move || {
                for round in 0..50 {
                    let bytes = unique_pdf(n * 1000 + round, 100_000 + 40_000 * (round % 7));
                    let message = format!("Upload {n}-{round}");
                    let mut parts = text_parts(&message);
                    parts.push(Part::File { field: "cv", name: "cv.pdf", kind: "application/pdf", bytes: &bytes });
                    let (content_type, body) = crate::common::multipart(&parts);
                    let reply = ureq::post(&format!("{base}{SUBMIT}"))
                        .set("Content-Type", &content_type)
                        .set("Accept", "application/json")
                        .send_bytes(&body);
                    match reply {
                        Ok(r) if r.status() == 201 => {
                            let id = r.into_json::<Value>().unwrap()["id"].as_str().unwrap().to_owned();
                            answered.lock().unwrap().push((id, sha256(&bytes)));
                        }
                        _ => return,
                    }
                }
            })
        })
        .collect();
    // A client that stops halfway, its temporary file open when the process dies.
    let (content_type, body) = crate::common::multipart(&{
        let mut parts = text_parts("Half.");
        parts.push(Part::File {
            field: "cv",
            name: "half.pdf",
            kind: "application/pdf",
            bytes: Box::leak(unique_pdf(99, 500_000).into_boxed_slice()),
        });
        parts
    });
    let mut half = TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    let head = format!(
        "POST {SUBMIT} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    half.write_all(head.as_bytes()).unwrap();
    half.write_all(&body[..body.len() / 2]).unwrap();
    eventually("some uploads answered", || (answered.lock().unwrap().len() >= 20).then_some(()));
    let dir = files_dir(&app);
    eventually("the half upload's temporary file", || {
        stored(&dir).iter().any(|n| n.starts_with(".upload-")).then_some(())
    });
    let mut app = app;
    app.kill();
    for client in clients {
        let _ = client.join();
    }
    // What a crash between the rename and the commit leaves: a file no row names.
    let planted = dir.join(sha256(b"never committed"));
    std::fs::write(&planted, b"never committed").unwrap();
    if is_postgres() {
        // Replicas may be mid-upload: only files older than twice the client timeout go at start.
        std::thread::sleep(Duration::from_millis(4500));
    }
    let app = app.kill_and_restart();

    let names = stored(&dir);
    assert!(!names.iter().any(|n| n.starts_with(".upload-")), "a temporary file survived the restart: {names:?}");
    assert!(!planted.exists(), "an orphan survived the restart");
    let db = app.db();
    for name in &names {
        assert!(db.scalar("SELECT COUNT(*) FROM files WHERE sha256 = ?", name) > 0, "orphan {name}");
    }
    let answered = answered.lock().unwrap().clone();
    assert!(answered.len() >= 20);
    for (id, hash) in &answered {
        let bytes =
            std::fs::read(dir.join(hash)).unwrap_or_else(|_| panic!("the file of answered inquiry {id} is missing"));
        assert_eq!(&sha256(&bytes), hash, "the file of {id} is damaged");
        assert_eq!(db.scalar("SELECT COUNT(*) FROM files WHERE inquiry_id = ?", id), 1);
    }
    eprintln!("{} uploads answered before the kill; {} files after the restart", answered.len(), names.len());
}

#[test]
fn erasure_and_retention_remove_the_file_and_a_shared_one_lives_until_the_last() {
    let app = TestApp::spawn(FORM);
    let token = app.create_token("write");
    let upload = |message: &str, bytes: &[u8]| {
        let mut parts = text_parts(message);
        parts.push(Part::File { field: "cv", name: "cv.pdf", kind: "application/pdf", bytes });
        created(&app.post_multipart(SUBMIT, &parts, &[("Accept", "application/json")]))
    };
    let shared = unique_pdf(1, 5000);
    let first = upload("First.", &shared);
    let second = upload("Second, the same CV.", &shared);
    let alone = unique_pdf(2, 6000);
    let third = upload("Third.", &alone);
    let dir = files_dir(&app);
    assert_eq!(stored(&dir).len(), 2);

    assert_eq!(app.admin("DELETE", &format!("/inquiries/{first}"), Some(&token), None).status, 204);
    assert!(dir.join(sha256(&shared)).exists(), "a file another inquiry names was removed");
    assert_eq!(app.admin("DELETE", &format!("/inquiries/{second}"), Some(&token), None).status, 204);
    assert!(!dir.join(sha256(&shared)).exists(), "the file outlived the last inquiry naming it");

    // Retention (`inquiryd purge`) takes the files with the inquiries.
    app.db().write(&format!("UPDATE inquiries SET received_at = 1000 WHERE id = '{third}'"));
    let app = app.restart_with(&format!("{FORM}\n[privacy]\nretention_days = 30"));
    let out = app.cli(&["purge"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stored(&dir), Vec::<String>::new());
}

#[test]
fn staff_email_attaches_small_files_and_links_large_ones_and_receipts_carry_none() {
    let sink = SmtpSink::start();
    let config = format!(
        "{FORM}\n{}\n[mail]\nacknowledge_submitter = true\nattach_max_bytes = 10000\n[server]\npublic_url = \"https://forms.example.org\"\n[admin]\nconsole = true",
        sink.config()
    );
    let app = TestApp::spawn(&config);
    let mut parts = text_parts("Small file.");
    parts.push(Part::File { field: "cv", name: "<script>.pdf", kind: "application/pdf", bytes: PDF });
    created(&app.post_multipart(SUBMIT, &parts, &[("Accept", "application/json")]));
    let large = unique_pdf(3, 20_000);
    let mut parts = text_parts("Large file.");
    parts.push(Part::File { field: "cv", name: "large.pdf", kind: "application/pdf", bytes: &large });
    let large_id = created(&app.post_multipart(SUBMIT, &parts, &[("Accept", "application/json")]));
    // SPEC: attached while the total is *under* attach_max_bytes; exactly at it, listed.
    let exact = unique_pdf(4, 10_000);
    let mut parts = text_parts("Exact file.");
    parts.push(Part::File { field: "cv", name: "exact.pdf", kind: "application/pdf", bytes: &exact });
    created(&app.post_multipart(SUBMIT, &parts, &[("Accept", "application/json")]));

    let messages = sink.wait_for(6, Duration::from_secs(10));
    assert_eq!(messages.len(), 6);
    let staff: Vec<_> = messages.iter().filter(|m| m.to == ["inbox@localhost"]).collect();
    let receipts: Vec<_> = messages.iter().filter(|m| m.to == ["aigerim@example.org"]).collect();
    assert_eq!((staff.len(), receipts.len()), (3, 3));
    for receipt in &receipts {
        assert_eq!(receipt.parsed().attachment_count(), 0, "a receipt carried a file");
    }
    let small = staff.iter().find(|m| String::from_utf8_lossy(&m.raw).contains("Small file.")).unwrap().parsed();
    assert_eq!(small.attachment_count(), 1);
    let attachment = small.attachment(0).unwrap();
    assert_eq!(attachment.contents(), PDF);
    use mail_parser::MimeHeaders;
    assert_eq!(attachment.attachment_name(), Some("<script>.pdf"));
    let html = small.body_html(0).unwrap();
    assert!(html.contains("&lt;script&gt;.pdf") && !html.contains("<script>.pdf"), "{html}");

    let linked = staff.iter().find(|m| String::from_utf8_lossy(&m.raw).contains("Large file.")).unwrap().parsed();
    assert_eq!(linked.attachment_count(), 0, "a file over attach_max_bytes was attached");
    let text = linked.body_text(0).unwrap();
    let link = format!("https://forms.example.org/admin/inquiries/{large_id}/files/");
    assert!(text.contains("large.pdf (20000 bytes") && text.contains(&link), "{text}");
    let exact = staff.iter().find(|m| String::from_utf8_lossy(&m.raw).contains("Exact file.")).unwrap().parsed();
    assert_eq!(exact.attachment_count(), 0, "a file of exactly attach_max_bytes was attached");
}

#[test]
fn webhooks_carry_the_files_metadata_and_a_replay_keeps_one_copy() {
    use crate::common::receiver::{Answer, Receiver};
    let receiver = Receiver::start(Answer::status(204));
    let hook = format!(
        "[webhooks]\nallow_private_targets = true\n[[forms.internships.webhooks]]\nname = \"crm\"\nurl = \"{}\"\n\
         secret = \"whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD\"\nevents = [\"inquiry.created\"]",
        receiver.url("/hooks")
    );
    let app = TestApp::spawn(&format!("{FORM}\n{hook}"));
    let mut parts = text_parts("With a webhook.");
    parts.push(Part::File { field: "cv", name: "cv.pdf", kind: "application/pdf", bytes: PDF });
    let key = [("Accept", "application/json"), ("Idempotency-Key", "upload-1")];
    let id = created(&app.post_multipart(SUBMIT, &parts, &key));
    // The same request again (a new boundary would not matter): the first answer, one stored copy.
    assert_eq!(created(&app.post_multipart(SUBMIT, &parts, &key)), id);
    let mut other = text_parts("With a webhook, changed.");
    other.push(Part::File { field: "cv", name: "cv.pdf", kind: "application/pdf", bytes: PDF });
    assert_eq!(app.post_multipart(SUBMIT, &other, &key).status, 422, "a reused key with another body");
    assert_eq!(stored(&files_dir(&app)), vec![sha256(PDF)]);

    let event = eventually("the webhook", || receiver.requests().into_iter().next());
    let body: Value = serde_json::from_str(&event.body).unwrap();
    let file = &body["data"]["fields"]["cv"][0];
    assert_eq!((file["name"].as_str(), file["size"].as_u64()), (Some("cv.pdf"), Some(PDF.len() as u64)));
    assert_eq!(file["sha256"], sha256(PDF));
    assert!(!event.body.contains("Catalog"), "the webhook carried the file's bytes");
}

/// A 1 MB tmpfs mounted on the files directory (root only; `None` elsewhere),
/// unmounted when dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(at: &Path) -> Option<Self> {
        std::fs::create_dir_all(at).unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(at)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        mounted.then(|| Self(at.to_owned()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_is_503_and_leaves_nothing_partial() {
    let dir = crate::common::Workdir::new();
    let files = dir.path().join("data/files");
    let Some(_disk) = SmallDisk::mount(&files) else {
        eprintln!("skipped: cannot mount a small tmpfs here (needs root)");
        return;
    };
    dir.write_config(FORM);
    let app = TestApp::start_in(dir);
    let mut parts = text_parts("Too big for the disk.");
    let big = unique_pdf(7, 2 * 1024 * 1024);
    parts.push(Part::File { field: "cv", name: "cv.pdf", kind: "application/pdf", bytes: &big });
    let reply = app.post_multipart(SUBMIT, &parts, &[("Accept", "application/json")]);
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/problem+json"));
    assert!(reply.header("retry-after").is_some());
    assert_eq!(stored(&files), Vec::<String>::new(), "a partial file was left");
    assert_eq!(app.db().scalar("SELECT COUNT(*) FROM inquiries WHERE form = ?", "internships"), 0);
    // Room again for a small one.
    let mut parts = text_parts("Small enough.");
    parts.push(Part::File { field: "cv", name: "cv.pdf", kind: "application/pdf", bytes: PDF });
    created(&app.post_multipart(SUBMIT, &parts, &[("Accept", "application/json")]));
}
