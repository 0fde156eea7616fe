//! The web console without a browser: accounts from the command line,
//! sessions, CSRF and Origin checks, roles, logout, idle timeout, and the one
//! answer every kind of bad login gets (audited, lockout included).

use crate::common;
use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::{valid_submission, Reply, TestApp};
use serde_json::json;

const PASSWORD: &str = "correct horse battery staple";

fn spawn(extra: &str) -> TestApp {
    TestApp::spawn(&format!("[admin]\nconsole = true\n{extra}"))
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new().redirects(0).build()
}

/// `inquiryd user ARGS` with `stdin` piped in; returns (stdout, stderr).
fn user_cli(app: &TestApp, args: &[&str], stdin: &str) -> (String, String) {
    let mut child = std::process::Command::new(common::BIN)
        .current_dir(app.dir.path())
        .env("INQUIRYD_CONFIG", app.dir.path().join("inquiryd.toml"))
        .env_remove(common::DATABASE_URL_VAR)
        .arg("user")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap());
    assert!(out.status.success(), "user {args:?}: {stderr}");
    (stdout, stderr)
}

/// Creates a user with [`PASSWORD`]; returns their id.
fn create_user(app: &TestApp, email: &str, role: &str) -> String {
    let (stdout, stderr) = user_cli(app, &["create", "--email", email, "--role", role], &format!("{PASSWORD}\n"));
    assert_eq!(stdout, "", "a given password is not printed");
    stderr.split_whitespace().nth(2).expect("created user ID").to_owned()
}

fn get(app: &TestApp, path: &str, cookie: Option<&str>) -> Reply {
    let mut req = agent().get(&app.url(path));
    if let Some(cookie) = cookie {
        req = req.set("Cookie", cookie);
    }
    Reply::from(req.call())
}

/// A form POST with the session `cookie` and `origin` (`None`: no header).
fn post(app: &TestApp, path: &str, cookie: Option<&str>, origin: Option<&str>, form: &[(&str, &str)]) -> Reply {
    let mut req = agent().post(&app.url(path));
    if let Some(cookie) = cookie {
        req = req.set("Cookie", cookie);
    }
    if let Some(origin) = origin {
        req = req.set("Origin", origin);
    }
    Reply::from(req.send_form(form))
}

fn login(app: &TestApp, email: &str, password: &str) -> Reply {
    post(app, "/admin/login", None, Some(&app.base), &[("email", email), ("password", password)])
}

/// The `name=value` of the session cookie a successful login sets.
fn signed_in(app: &TestApp, email: &str) -> String {
    let reply = login(app, email, PASSWORD);
    assert_eq!(reply.status, 303, "{}", reply.body);
    assert_eq!(reply.header("location"), Some("/admin"));
    let set = reply.header("set-cookie").expect("a session cookie");
    set.split(';').next().unwrap().to_owned()
}

/// The CSRF token in a page's forms.
fn csrf(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a form with a CSRF token") + 19;
    page[at..at + page[at..].find('"').unwrap()].to_owned()
}

fn submit(app: &TestApp) -> String {
    let reply = app.post_json("/api/v1/inquiries", &valid_submission());
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.json()["id"].as_str().unwrap().to_owned()
}

fn status_of(app: &TestApp, id: &str) -> Option<String> {
    app.db().row("SELECT status FROM inquiries WHERE id = ?", id).map(|row| row["status"].clone().unwrap())
}

#[test]
fn without_console_on_there_is_no_admin_path() {
    let app = TestApp::spawn("");
    for path in ["/admin", "/admin/login", "/admin/console.css"] {
        let reply = get(&app, path, None);
        assert_eq!(reply.status, 404, "{path}");
        assert_eq!(reply.header("content-type"), Some("application/problem+json"), "{path}");
    }
}

#[test]
fn a_login_sets_a_strict_http_only_cookie_and_pages_carry_the_security_headers() {
    let app = spawn("");
    create_user(&app, "Staff@Example.org", "viewer");
    assert_eq!(get(&app, "/admin", None).header("location"), Some("/admin/login"), "signed out: to the login page");
    let reply = login(&app, "staff@EXAMPLE.org", PASSWORD);
    assert_eq!(reply.status, 303, "{}", reply.body);
    let set = reply.header("set-cookie").unwrap().to_owned();
    assert!(set.starts_with("inquiryd_session="), "{set}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attribute), "{attribute} in {set}");
    }
    assert!(!set.contains("Secure"), "not Secure on plain http: {set}");
    let cookie = set.split(';').next().unwrap().to_owned();
    let id = cookie.split_once('=').unwrap().1;
    assert_eq!(id.len(), 43, "256 bits, base64url");
    assert_eq!(app.db().find_stored(id), None, "only the id's hash is stored");

    for path in ["/admin", "/admin/login", "/admin/console.css"] {
        let page = get(&app, path, Some(&cookie));
        assert_eq!(page.status, 200, "{path}");
        let csp = page.header("content-security-policy").unwrap();
        assert!(csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"), "{path}: {csp}");
        assert!(!csp.contains("script-src") || !csp.contains("'unsafe"), "{path}: {csp}");
        assert_eq!(page.header("x-content-type-options"), Some("nosniff"), "{path}");
        assert_eq!(page.header("referrer-policy"), Some("same-origin"), "{path}");
        assert_eq!(page.header("cache-control"), Some("no-store"), "{path}");
    }
    assert!(!get(&app, "/admin", Some(&cookie)).body.contains("<script"), "no script in the console");

    let again = signed_in(&app, "staff@example.org");
    assert_ne!(again, cookie, "every login gets a new session id");
}

#[test]
fn the_cookie_is_secure_with_the_host_prefix_behind_an_https_public_url() {
    let app = spawn("[server]\npublic_url = \"https://forms.example.org\"\n");
    create_user(&app, "staff@example.org", "viewer");
    let reply = post(
        &app,
        "/admin/login",
        None,
        Some("https://forms.example.org"),
        &[("email", "staff@example.org"), ("password", PASSWORD)],
    );
    assert_eq!(reply.status, 303, "{}", reply.body);
    let set = reply.header("set-cookie").unwrap();
    assert!(set.starts_with("__Host-inquiryd_session=") && set.contains("; Secure"), "{set}");
    let local = login(&app, "staff@example.org", PASSWORD);
    assert_eq!(local.status, 403, "with public_url, only its origin may post");
}

#[test]
fn a_change_needs_the_sessions_csrf_token_and_the_consoles_origin() {
    let app = spawn("");
    let triager = create_user(&app, "triager@example.org", "triager");
    let id = submit(&app);
    let cookie = signed_in(&app, "triager@example.org");
    let other = signed_in(&app, "triager@example.org");
    let page = get(&app, &format!("/admin/inquiries/{id}"), Some(&cookie));
    assert_eq!(page.status, 200);
    let token = csrf(&page.body);
    let other_token = csrf(&get(&app, "/admin", Some(&other)).body);
    let path = format!("/admin/inquiries/{id}/status");
    let origin = app.base.clone();
    type Form<'a> = Vec<(&'a str, &'a str)>;
    let refused: [(&str, Option<&str>, Form); 5] = [
        ("no token", Some(&origin), vec![("status", "resolved")]),
        ("another session's token", Some(&origin), vec![("csrf", &other_token), ("status", "resolved")]),
        ("a foreign origin", Some("https://evil.example"), vec![("csrf", &token), ("status", "resolved")]),
        ("no origin", None, vec![("csrf", &token), ("status", "resolved")]),
        ("the null origin", Some("null"), vec![("csrf", &token), ("status", "resolved")]),
    ];
    for (what, origin, form) in refused {
        let reply = post(&app, &path, Some(&cookie), origin, &form);
        assert_eq!(reply.status, 403, "{what}: {}", reply.body);
        assert_eq!(reply.header("content-type"), Some("application/problem+json"), "{what}");
        assert_eq!(status_of(&app, &id).as_deref(), Some("new"), "{what}: nothing changed");
    }
    let no_session = post(&app, &path, None, Some(&origin), &[("csrf", &token), ("status", "resolved")]);
    assert_eq!(no_session.status, 403, "no session");
    let login_elsewhere = post(
        &app,
        "/admin/login",
        None,
        Some("https://evil.example"),
        &[("email", "triager@example.org"), ("password", PASSWORD)],
    );
    assert_eq!(login_elsewhere.status, 403, "a login posted from another origin");

    let done = post(
        &app,
        &path,
        Some(&cookie),
        Some(&origin),
        &[("csrf", &token), ("status", "resolved"), ("note", "Called back")],
    );
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(status_of(&app, &id).as_deref(), Some("resolved"));
    let audit =
        app.db().row("SELECT actor FROM audit_log WHERE action = 'inquiry.update' AND target = ?", &id).unwrap();
    assert_eq!(audit["actor"].as_deref(), Some(format!("user:{triager}").as_str()));
    let shown = get(&app, done.header("location").unwrap(), Some(&cookie)).body;
    assert!(shown.contains("Called back") && shown.contains("Saved."), "the note and the confirmation are shown");
}

#[test]
fn a_viewer_sees_no_change_controls_and_a_forged_post_from_a_viewer_is_403() {
    let app = spawn("");
    create_user(&app, "viewer@example.org", "viewer");
    let admin = create_user(&app, "admin@example.org", "admin");
    let id = submit(&app);
    let viewer = signed_in(&app, "viewer@example.org");
    let page = get(&app, &format!("/admin/inquiries/{id}"), Some(&viewer));
    assert_eq!(page.status, 200);
    for control in ["/erase", "/status", "/retry", "<select"] {
        assert!(!page.body.contains(control), "a viewer sees no {control} control");
    }
    let token = csrf(&page.body); // the sign-out form's
    let origin = app.base.clone();
    let forged = [
        (format!("/admin/inquiries/{id}/erase"), vec![("csrf", token.as_str())]),
        (format!("/admin/inquiries/{id}/status"), vec![("csrf", token.as_str()), ("status", "spam")]),
    ];
    for (path, form) in &forged {
        let reply = post(&app, path, Some(&viewer), Some(&origin), form);
        assert_eq!(reply.status, 403, "{path}: {}", reply.body);
    }
    assert_eq!(get(&app, &format!("/admin/inquiries/{id}/erase"), Some(&viewer)).status, 403);
    assert_eq!(status_of(&app, &id).as_deref(), Some("new"), "the viewer changed nothing");

    let cookie = signed_in(&app, "admin@example.org");
    let confirm = get(&app, &format!("/admin/inquiries/{id}/erase"), Some(&cookie));
    assert_eq!(confirm.status, 200, "an admin gets the confirmation step");
    let erased = post(
        &app,
        &format!("/admin/inquiries/{id}/erase"),
        Some(&cookie),
        Some(&origin),
        &[("csrf", &csrf(&confirm.body))],
    );
    assert_eq!(erased.status, 303, "{}", erased.body);
    assert_eq!(status_of(&app, &id), None, "erased");
    let audit =
        app.db().row("SELECT actor FROM audit_log WHERE action = 'inquiry.delete' AND target = ?", &id).unwrap();
    assert_eq!(audit["actor"].as_deref(), Some(format!("user:{admin}").as_str()));
    assert_eq!(get(&app, &format!("/admin/inquiries/{id}"), Some(&cookie)).status, 404);
}

/// The text of the secret a page shows once.
fn shown_secret(page: &str) -> String {
    let marker = "id=\"shown-secret\">";
    let at = page.find(marker).expect("a secret shown") + marker.len();
    page[at..at + page[at..].find('<').unwrap()].to_owned()
}

#[test]
fn export_follows_the_filters_and_the_admin_pages_are_for_admins() {
    let app = spawn("");
    for role in ["viewer", "triager", "admin"] {
        create_user(&app, &format!("{role}@example.org"), role);
    }
    let first = submit(&app);
    let mut other = valid_submission();
    other["category"] = "commendation".into();
    other["subject"] = "Thank you".into();
    let second = app.post_json("/api/v1/inquiries", &other).json()["id"].as_str().unwrap().to_owned();

    let viewer = signed_in(&app, "viewer@example.org");
    assert!(!get(&app, "/admin", Some(&viewer)).body.contains("export?"), "no export control for a viewer");
    for path in ["/admin/export?format=csv", "/admin/users", "/admin/tokens", "/admin/audit"] {
        assert_eq!(get(&app, path, Some(&viewer)).status, 403, "viewer: {path}");
    }
    let triager = signed_in(&app, "triager@example.org");
    let inbox = get(&app, "/admin?category=commendation", Some(&triager)).body;
    assert!(inbox.contains("export?category=commendation&amp;format=csv"), "the export keeps the filters");
    for path in ["/admin/users", "/admin/tokens", "/admin/audit"] {
        assert_eq!(get(&app, path, Some(&triager)).status, 403, "triager: {path}");
    }
    let csv = get(&app, "/admin/export?category=commendation&format=csv", Some(&triager));
    assert_eq!(csv.status, 200, "{}", csv.body);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    let token = app.create_token("read");
    let api = app.admin("GET", "/inquiries/export?category=commendation&format=csv", Some(&token), None);
    assert_eq!(csv.body, api.body, "the console's export is the API's");
    assert!(csv.body.contains(&second) && !csv.body.contains(&first), "only the filtered rows");

    let admin = signed_in(&app, "admin@example.org");
    let audit = get(&app, "/admin/audit", Some(&admin));
    assert!(
        audit.body.contains("console.login") && audit.body.contains("user:"),
        "the audit page lists console actions"
    );
    let origin = app.base.clone();
    let token_page = get(&app, "/admin/tokens", Some(&admin)).body;
    let created = post(
        &app,
        "/admin/tokens",
        Some(&admin),
        Some(&origin),
        &[("csrf", &csrf(&token_page)), ("name", "CRM sync"), ("scope", "read")],
    );
    assert_eq!(created.status, 200, "{}", created.body);
    let new_token = shown_secret(&created.body);
    assert_eq!(app.admin("GET", "/stats", Some(&new_token), None).status, 200, "the token works with the API");
    assert!(!get(&app, "/admin/tokens", Some(&admin)).body.contains(&new_token), "shown only once");

    let users_page = get(&app, "/admin/users", Some(&admin)).body;
    let added = post(
        &app,
        "/admin/users",
        Some(&admin),
        Some(&origin),
        &[("csrf", &csrf(&users_page)), ("email", "new@example.org"), ("role", "viewer")],
    );
    assert_eq!(added.status, 200, "{}", added.body);
    let password = shown_secret(&added.body);
    assert_eq!(login(&app, "new@example.org", &password).status, 303, "the new user signs in with the password shown");
    let forged = post(
        &app,
        "/admin/users",
        Some(&triager),
        Some(&origin),
        &[("csrf", &csrf(&inbox)), ("email", "x@example.org"), ("role", "admin")],
    );
    assert_eq!(forged.status, 403, "a triager cannot add users");
}

#[test]
fn the_dashboard_draws_30_or_90_days_by_status_category_and_form_and_the_totals() {
    let app = spawn("");
    create_user(&app, "viewer@example.org", "viewer");
    submit(&app);
    let mut spam = valid_submission();
    spam["_gotcha"] = "bot".into();
    spam["subject"] = "Cheap pills".into();
    assert_eq!(app.post_json("/api/v1/inquiries", &spam).status, 201);
    let old = submit_unique(&app, 1);
    let ten_days_ago = common::now_ms() - 10 * 86_400_000;
    app.db().write(&format!("UPDATE inquiries SET received_at = {ten_days_ago} WHERE id = '{old}'"));
    let cookie = signed_in(&app, "viewer@example.org");
    let page = get(&app, "/admin/dashboard", Some(&cookie));
    assert_eq!(page.status, 200, "{}", page.body);
    let today = common::utc_date(common::now_ms());
    let earlier = common::utc_date(ten_days_ago);
    for (chart, segments) in [
        (
            "by status",
            vec![format!("{earlier}: 1 New of 1"), format!("{today}: 1 New of 2"), format!("{today}: 1 Spam of 2")],
        ),
        ("by category", vec![format!("{earlier}: 1 question of 1"), format!("{today}: 2 question of 2")]),
        ("by form", vec![format!("{earlier}: 1 contact of 1"), format!("{today}: 2 contact of 2")]),
    ] {
        let at = page.body.find(&format!("Inquiries per day {chart}</h2>")).unwrap_or_else(|| panic!("{chart}"));
        let svg = &page.body[at..at + page.body[at..].find("</svg>").unwrap()];
        let titles: Vec<&str> = svg.split("<title>").skip(1).map(|t| t.split("</title>").next().unwrap()).collect();
        assert_eq!(titles, segments, "{chart}: a segment per day and series with inquiries, oldest day first");
    }
    assert!(page.body.contains("Last 30 days"), "30 days by default");
    assert!(page.body.contains("3 inquiries in these 30 days, 3 kept in all"), "{}", page.body);
    assert!(page.body.contains("Spam share: <strong>33.3%</strong>"), "one of three is spam");
    let ninety = get(&app, "/admin/dashboard?days=90", Some(&cookie)).body;
    assert!(ninety.contains("aria-current=\"page\">Last 90 days"), "{ninety}");
    assert!(ninety.contains("3 inquiries in these 90 days"));
    for bad in ["days=7", "days=ninety"] {
        assert_eq!(get(&app, &format!("/admin/dashboard?{bad}"), Some(&cookie)).status, 400, "{bad}");
    }
    let emails = ninety.split("<th scope=\"row\">Emails</th><td>").nth(1).expect("a row of email health");
    assert_eq!(emails.split("</td><td>").nth(1), Some("0"), "none failed: {emails}");
}

fn submit_unique(app: &TestApp, n: usize) -> String {
    let reply = app.post_json("/api/v1/inquiries", &common::unique_submission(n));
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.json()["id"].as_str().unwrap().to_owned()
}

#[test]
fn with_a_public_url_the_staff_email_links_to_the_inquiry_in_the_console() {
    let app = spawn("[server]\npublic_url = \"https://forms.example.org/\"\n");
    let id = submit(&app);
    let link = format!("https://forms.example.org/admin/inquiries/{id}");
    let email = common::eventually("the staff email", || {
        let dir = std::fs::read_dir(app.dir.path().join("mail")).ok()?;
        let path = dir.flatten().map(|e| e.path()).find(|p| p.to_string_lossy().contains("-staff-"))?;
        std::fs::read_to_string(path).ok()
    });
    let decoded = email.replace("=\r\n", "").replace("=3D", "=");
    assert!(decoded.contains(&format!("In the console: {link}")), "the text part links: {decoded}");
    // Autoescaped in the attribute (`/` as `&#x2f;`), which a mail client decodes.
    let escaped = link.replace('/', "&#x2f;");
    assert!(decoded.contains(&format!("href=\"{escaped}\"")), "the HTML part links: {decoded}");
}

#[test]
fn an_inquiry_is_unread_until_opened_and_can_be_assigned_and_marked_replied() {
    let app = spawn("");
    let triager = create_user(&app, "triager@example.org", "triager");
    create_user(&app, "viewer@example.org", "viewer");
    let id = submit(&app);
    let cookie = signed_in(&app, "triager@example.org");
    let inbox = get(&app, "/admin", Some(&cookie)).body;
    assert!(inbox.contains("1 unread") && inbox.contains("class=\"unread\""), "unread and bold before opening");
    let page = get(&app, &format!("/admin/inquiries/{id}"), Some(&cookie)).body;
    let inbox = get(&app, "/admin", Some(&cookie)).body;
    assert!(inbox.contains("0 unread") && !inbox.contains("class=\"unread\""), "read once opened");
    assert!(!get(&app, "/admin?mine=1", Some(&cookie)).body.contains(&id), "nothing assigned yet");

    let path = format!("/admin/inquiries/{id}/triage");
    let form = [("csrf", csrf(&page)), ("assignee", triager.clone()), ("replied", "on".to_owned())];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let viewer = signed_in(&app, "viewer@example.org");
    let viewer_token = csrf(&get(&app, "/admin", Some(&viewer)).body);
    let forged = post(&app, &path, Some(&viewer), Some(&app.base), &[("csrf", &viewer_token), ("assignee", &triager)]);
    assert_eq!(forged.status, 403, "a viewer cannot assign");
    let saved = post(&app, &path, Some(&cookie), Some(&app.base), &form);
    assert_eq!(saved.status, 303, "{}", saved.body);
    let mine = get(&app, "/admin?mine=1", Some(&cookie)).body;
    assert!(
        mine.contains(&id) && mine.contains("assigned to triager@example.org") && mine.contains("replied"),
        "{mine}"
    );
    let audit = app.db().row("SELECT actor, detail FROM audit_log WHERE action = 'inquiry.triage' AND target = ?", &id);
    let audit = audit.expect("the assignment is audited");
    assert_eq!(audit["actor"].as_deref(), Some(format!("user:{triager}").as_str()));

    let admin_token = app.create_token("write");
    assert_eq!(app.admin("DELETE", &format!("/inquiries/{id}"), Some(&admin_token), None).status, 204);
    assert_eq!(app.db().scalar("SELECT count(*) FROM console_triage", ""), 0, "the triage state goes with the inquiry");
}

#[test]
fn the_inbox_filters_by_form_and_an_inquiry_shows_its_custom_fields() {
    let app = TestApp::spawn(&format!("{}\n[admin]\nconsole = true\n", common::TWO_FORMS));
    create_user(&app, "viewer@example.org", "viewer");
    let contact = submit(&app);
    let reply = app.post_json("/api/v1/forms/event/inquiries", &common::event_registration());
    assert_eq!(reply.status, 201, "{}", reply.body);
    let event = reply.json()["id"].as_str().unwrap().to_owned();
    let cookie = signed_in(&app, "viewer@example.org");
    let inbox = get(&app, "/admin?form=event", Some(&cookie)).body;
    assert!(inbox.contains(&event) && !inbox.contains(&contact), "only the event form's inquiries");
    assert!(inbox.contains("<option value=\"event\" selected>"), "the form filter keeps its choice");
    let page = get(&app, &format!("/admin/inquiries/{event}"), Some(&cookie)).body;
    for shown in ["Event registration", "<dt>Event</dt>", "Fintech workshop", "Vegetarian"] {
        assert!(page.contains(shown), "the inquiry page shows {shown}");
    }
}

#[test]
fn an_inquirys_files_are_listed_harmlessly_and_downloaded_only_with_a_session() {
    use crate::common::Part;
    let form = "[forms.internships]\n[[forms.internships.fields]]\nname = \"cv\"\nlabel = \"CV\"\ntype = \"file\"\n\
                max_files = 2\naccept = [\"application/pdf\"]\n[forms.contact]\ntitle = \"Contact\"";
    let app = spawn(form);
    create_user(&app, "viewer@example.org", "viewer");
    let pdf = crate::uploads::PDF;
    let parts = [
        Part::Text("name", "Aigerim"),
        Part::Text("email", "aigerim@example.org"),
        Part::Text("subject", "Internship"),
        Part::Text("message", "My CV."),
        Part::File { field: "cv", name: "<script>.pdf", kind: "application/pdf", bytes: pdf },
        Part::File { field: "cv", name: "../../etc/passwd", kind: "application/pdf", bytes: pdf },
    ];
    let reply = app.post_multipart("/api/v1/forms/internships/inquiries", &parts, &[("Accept", "application/json")]);
    assert_eq!(reply.status, 201, "{}", reply.body);
    let id = reply.json()["id"].as_str().unwrap().to_owned();
    let cookie = signed_in(&app, "viewer@example.org");
    let page = get(&app, &format!("/admin/inquiries/{id}"), Some(&cookie)).body;
    assert!(!page.contains("<script>"), "a file name was rendered as markup");
    assert!(page.contains(">&lt;script&gt;.pdf</a>"), "the name is shown, escaped");
    assert!(
        page.contains(&format!(">passwd</a> <span class=\"muted\">{} bytes · application&#x2f;pdf</span>", pdf.len())),
        "{page}"
    );
    let at = page.find(&format!("/admin/inquiries/{id}/files/")).expect("a download link");
    let link = &page[at..at + page[at..].find('"').unwrap()];
    let download = get(&app, link, Some(&cookie));
    assert_eq!(download.status, 200);
    assert!(download.header("content-disposition").is_some_and(|d| d.starts_with("attachment")));
    assert_eq!(download.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(download.header("content-length"), Some(pdf.len().to_string().as_str()));
    assert!(download.body.starts_with("%PDF-1.7"));
    let anonymous = get(&app, link, None);
    assert_eq!((anonymous.status, anonymous.header("location")), (303, Some("/admin/login")));
}

#[test]
fn logout_ends_the_session_on_the_server() {
    let app = spawn("");
    create_user(&app, "staff@example.org", "viewer");
    let cookie = signed_in(&app, "staff@example.org");
    let token = csrf(&get(&app, "/admin", Some(&cookie)).body);
    let out = post(&app, "/admin/logout", Some(&cookie), Some(&app.base), &[("csrf", &token)]);
    assert_eq!(out.status, 303);
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"), "the browser forgets the cookie");
    assert_eq!(app.db().scalar("SELECT count(*) FROM console_sessions", ""), 0, "gone from the server");
    let replayed = get(&app, "/admin", Some(&cookie));
    assert_eq!(
        (replayed.status, replayed.header("location")),
        (303, Some("/admin/login")),
        "the old cookie opens nothing"
    );
}

#[test]
fn an_idle_session_ends_and_an_active_one_does_not() {
    let app = spawn("session_idle_seconds = 3\n");
    create_user(&app, "staff@example.org", "viewer");
    let cookie = signed_in(&app, "staff@example.org");
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(1500));
        assert_eq!(get(&app, "/admin", Some(&cookie)).status, 200, "in use: still signed in");
    }
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(get(&app, "/admin", Some(&cookie)).header("location"), Some("/admin/login"), "idle: signed out");
    assert_eq!(app.db().scalar("SELECT count(*) FROM console_sessions", ""), 0, "ended on the server");
}

#[test]
fn every_kind_of_bad_login_gets_the_same_answer_in_the_same_time_and_is_audited() {
    let app = spawn("lockout_failures = 4\nlogin_attempts_per_minute = 1000\n");
    create_user(&app, "open@example.org", "triager");
    let disabled = create_user(&app, "disabled@example.org", "triager");
    let locked = create_user(&app, "locked@example.org", "triager");
    user_cli(&app, &["disable", &disabled], "");
    for _ in 0..4 {
        assert_eq!(login(&app, "locked@example.org", "wrong password").status, 401);
    }
    let lockouts =
        app.db().scalar("SELECT count(*) FROM audit_log WHERE action = 'console.lockout' AND target = ?", &locked);
    assert_eq!(lockouts, 1, "the lockout is audited");

    // The email field is echoed back; everything else must be the same.
    let answer = |email: &str, password: &str| {
        let started = Instant::now();
        let reply = login(&app, email, password);
        (reply.status, reply.body.replace(email, "EMAIL"), reply.header("set-cookie").is_some(), started.elapsed())
    };
    let kinds = [
        ("wrong password", "open@example.org", "not the password"),
        ("unknown user", "nobody@example.org", PASSWORD),
        ("disabled", "disabled@example.org", PASSWORD),
        ("locked out", "locked@example.org", PASSWORD),
    ];
    let answers: Vec<_> = kinds.iter().map(|(what, email, password)| (what, answer(email, password))).collect();
    let (_, reference) = &answers[0];
    assert_eq!(reference.0, 401);
    assert!(reference.1.contains("Wrong email or password"), "{}", reference.1);
    // Every kind pays for one Argon2id verification: none answers in a
    // fraction of the time a wrong password takes (measured twice, the faster kept).
    let fastest = |email: &str, password: &str| (0..2).map(|_| answer(email, password).3).min().unwrap();
    let wrong = fastest(kinds[0].1, kinds[0].2);
    for (what, reply) in &answers {
        assert_eq!((reply.0, &reply.1, reply.2), (reference.0, &reference.1, false), "{what}");
    }
    for (what, email, password) in &kinds[1..] {
        let took = fastest(email, password);
        assert!(took * 4 > wrong, "{what} took {took:?}, a wrong password {wrong:?}");
    }
    assert_eq!(login(&app, "open@example.org", PASSWORD).status, 303, "the open account still signs in");

    let db = app.db();
    for reason in ["wrong_password", "unknown_user", "disabled", "locked"] {
        let audited = db.scalar(
            "SELECT count(*) FROM audit_log WHERE action = 'console.login_failed' AND detail LIKE ?",
            &format!("%\"{reason}\"%"),
        );
        assert!(audited >= 1, "{reason} is audited");
    }
    assert_eq!(
        db.scalar("SELECT count(*) FROM audit_log WHERE detail LIKE ?", &format!("%{PASSWORD}%")),
        0,
        "no password in the audit log"
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM audit_log WHERE detail LIKE ?", "%nobody@example.org%"),
        0,
        "no unknown address in the audit log"
    );
}

#[test]
fn logins_from_one_address_are_throttled_even_with_the_right_password() {
    let app = spawn("login_attempts_per_minute = 3\n");
    create_user(&app, "staff@example.org", "viewer");
    for _ in 0..3 {
        assert_eq!(login(&app, "staff@example.org", "wrong password").status, 401);
    }
    let throttled = login(&app, "staff@example.org", PASSWORD);
    assert_eq!(throttled.status, 429, "{}", throttled.body);
    assert!(throttled.header("retry-after").is_some());
    assert!(throttled.header("set-cookie").is_none());
    let audited = app.db().scalar("SELECT count(*) FROM audit_log WHERE detail LIKE ?", "%throttled%");
    assert_eq!(audited, 1);
}

#[test]
fn the_command_line_creates_lists_disables_and_resets_users() {
    let app = spawn("");
    let (password, stderr) = user_cli(&app, &["create", "--email", "first@example.org", "--role", "admin"], "");
    assert_eq!(password.lines().count(), 1, "a generated password alone on stdout: {password:?}");
    let id = stderr.split_whitespace().nth(2).unwrap().to_owned();
    assert_eq!(login(&app, "first@example.org", password.trim()).status, 303);
    assert_eq!(app.db().find_stored(password.trim()), None, "only its Argon2id hash is stored");
    let stored = app.db().row("SELECT password_hash FROM console_users WHERE id = ?", &id).unwrap();
    assert!(stored["password_hash"].as_deref().unwrap().starts_with("$argon2id$"));

    let (list, _) = user_cli(&app, &["list"], "");
    assert!(list.contains(&id) && list.contains("first@example.org") && list.contains("admin"), "{list}");

    let cookie = signed_in_with(&app, "first@example.org", password.trim());
    let (new_password, _) = user_cli(&app, &["reset-password", &id], "");
    assert_eq!(get(&app, "/admin", Some(&cookie)).status, 303, "a password reset ends the sessions");
    assert_eq!(login(&app, "first@example.org", password.trim()).status, 401, "the old password is gone");
    let cookie = signed_in_with(&app, "first@example.org", new_password.trim());
    user_cli(&app, &["disable", &id], "");
    assert_eq!(get(&app, "/admin", Some(&cookie)).status, 303, "disabling ends the sessions");
    assert_eq!(login(&app, "first@example.org", new_password.trim()).status, 401);
}

fn signed_in_with(app: &TestApp, email: &str, password: &str) -> String {
    let reply = login(app, email, password);
    assert_eq!(reply.status, 303, "{}", reply.body);
    reply.header("set-cookie").unwrap().split(';').next().unwrap().to_owned()
}

#[test]
fn not_spam_makes_it_new_and_sends_the_email_and_webhooks_it_never_had() {
    use crate::common::receiver::{Answer, Receiver};
    let receiver = Receiver::start(Answer::status(204));
    let hook = |name: &str, extra: &str| {
        format!(
            "[[forms.contact.webhooks]]\nname = \"{name}\"\nurl = \"{}\"\n\
             secret = \"whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD\"\n\
             events = [\"inquiry.created\", \"inquiry.updated\"]\n{extra}\n",
            receiver.url(&format!("/{name}"))
        )
    };
    let app = spawn(&format!(
        "[spam]\nblocked_words = [\"crypto casino\"]\n[webhooks]\nallow_private_targets = true\n{}{}",
        hook("clean", ""),
        hook("all", "include_spam = true")
    ));
    create_user(&app, "triager@example.org", "triager");
    create_user(&app, "viewer@example.org", "viewer");
    let mut body = valid_submission();
    body["message"] = serde_json::json!("Not a crypto casino at all: a real question about scholarships.");
    let reply = app.post_json("/api/v1/inquiries", &body);
    assert_eq!(reply.status, 201);
    let id = reply.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(status_of(&app, &id).as_deref(), Some("spam"));
    common::eventually("the spam webhook's created event", || (receiver.requests().len() == 1).then_some(()));
    assert_eq!(receiver.requests()[0].path, "/all", "only the webhook that includes spam had it");
    let emails = || app.db().scalar("SELECT COUNT(*) FROM notifications WHERE inquiry_id = ?", &id);
    assert_eq!(emails(), 0, "spam queues no email");

    let path = format!("/admin/inquiries/{id}/not-spam");
    let viewer = signed_in(&app, "viewer@example.org");
    let viewer_token = csrf(&get(&app, "/admin", Some(&viewer)).body);
    let forged = post(&app, &path, Some(&viewer), Some(&app.base), &[("csrf", &viewer_token)]);
    assert_eq!(forged.status, 403, "a viewer cannot");
    let cookie = signed_in(&app, "triager@example.org");
    let page = get(&app, &format!("/admin/inquiries/{id}"), Some(&cookie)).body;
    assert!(page.contains("/not-spam"), "the button is offered for a spam inquiry");
    let done = post(&app, &path, Some(&cookie), Some(&app.base), &[("csrf", &csrf(&page))]);
    assert_eq!(done.status, 303, "{}", done.body);

    assert_eq!(status_of(&app, &id).as_deref(), Some("new"));
    common::eventually("the staff email it never had", || {
        let dir = std::fs::read_dir(app.dir.path().join("mail")).ok()?;
        dir.flatten().map(|e| e.path()).find(|p| p.to_string_lossy().contains(&format!("{id}-staff-")))
    });
    let requests = common::eventually("the webhook events", || {
        let r = receiver.requests();
        (r.len() == 3).then_some(r)
    });
    let kinds: Vec<(String, String)> = requests[1..]
        .iter()
        .map(|r| {
            let event: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            (r.path.clone(), event["type"].as_str().unwrap().to_owned())
        })
        .collect();
    assert!(kinds.contains(&("/clean".into(), "inquiry.created".into())), "{kinds:?}");
    assert!(kinds.contains(&("/all".into(), "inquiry.updated".into())), "{kinds:?}");
    let audited =
        app.db().scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'inquiry.not_spam' AND target = ?", &id);
    assert_eq!(audited, 1);
    let page = get(&app, &format!("/admin/inquiries/{id}"), Some(&cookie)).body;
    let again = post(&app, &path, Some(&cookie), Some(&app.base), &[("csrf", &csrf(&page))]);
    assert_eq!(again.status, 409, "only a spam inquiry can be marked not spam");
    assert_eq!(emails(), 1, "nothing queued twice");
}

/// The kept counts (`inquiry_counts`, kept by triggers) against a count of the
/// rows themselves, after every kind of change: submissions to two forms in
/// three languages and four categories, spam, inquiries moved to earlier days,
/// status changes, first openings and triage, not spam, an erasure by id and
/// by address, and the retention purge. `GET /stats` and the inbox's tabs read
/// the kept counts, so they are checked against the rows too.
#[test]
fn the_kept_counts_follow_every_change_to_the_rows() {
    let app = spawn(&format!(
        "{}\n[spam]\nblocked_words = [\"crypto casino\"]\n[privacy]\nretention_days = 60\n",
        common::TWO_FORMS
    ));
    create_user(&app, "triager@example.org", "triager");
    let token = app.create_token("write");
    let db = app.db();
    let truth = "SELECT i.received_at / 86400000, i.form, i.status, i.category, COUNT(*), COUNT(*) - COUNT(t.read_at) \
                 FROM inquiries i LEFT JOIN console_triage t ON t.inquiry_id = i.id GROUP BY 1, 2, 3, 4";
    // Summed over PostgreSQL's shards (SQLite has one row a key).
    let kept = "SELECT day, form, status, category, SUM(n), SUM(unread) FROM inquiry_counts \
                GROUP BY day, form, status, category HAVING SUM(n) <> 0 OR SUM(unread) <> 0";
    let check = |after: &str| {
        let wrong = db.scalar(
            &format!(
                "SELECT (SELECT COUNT(*) FROM ({truth} EXCEPT {kept}) AS missing) \
                 + (SELECT COUNT(*) FROM ({kept} EXCEPT {truth}) AS extra)"
            ),
            "",
        );
        assert_eq!(wrong, 0, "after {after}: the kept counts differ from the rows in {wrong} rows");
        let stats = app.admin("GET", "/stats", Some(&token), None).json();
        assert_eq!(stats["total"], db.scalar("SELECT COUNT(*) FROM inquiries", ""), "after {after}: /stats total");
        for status in ["new", "in_progress", "resolved", "spam", "archived"] {
            let rows = db.scalar("SELECT COUNT(*) FROM inquiries WHERE status = ?", status);
            assert_eq!(stats["by_status"][status], rows, "after {after}: /stats {status}");
        }
    };

    let texts = [
        ("Вопрос о стажировке", "Здравствуйте! Расскажите, пожалуйста, о летней стажировке в обсерватории."),
        ("关于合作的问题", "您好，我们想了解天文台的合作机会。"),
        ("Visiting the observatory", "Hello, could our school class visit the telescope in May?"),
    ];
    let categories = ["inquiry", "question", "commendation", "other"];
    let mut ids = Vec::new();
    for n in 0..24 {
        let (subject, message) = texts[n % 3];
        let mut body = valid_submission();
        body["subject"] = subject.into();
        body["message"] = format!("{message} ({n})").into();
        body["category"] = categories[n % 4].into();
        body["email"] = format!("visitor{}@example.org", n % 5).into();
        if n % 8 == 7 {
            body["message"] = format!("Win at our crypto casino today ({n})").into();
        }
        let reply = app.post_json("/api/v1/inquiries", &body);
        assert_eq!(reply.status, 201, "{}", reply.body);
        ids.push(reply.json()["id"].as_str().unwrap().to_owned());
    }
    for n in 0..4 {
        let mut body = common::event_registration();
        body["message"] = format!("Registration number {n}").into();
        let reply = app.post_json("/api/v1/forms/event/inquiries", &body);
        assert_eq!(reply.status, 201, "{}", reply.body);
        ids.push(reply.json()["id"].as_str().unwrap().to_owned());
    }
    check("the submissions");
    assert!(db.scalar("SELECT COUNT(*) FROM inquiries WHERE status = 'spam'", "") >= 3, "some are spam");

    // Some received 10 and 90 days ago (the purge keeps 60 days). The purge
    // that runs a second after start must be over first: were it still to
    // come, it would erase the 90-day-old ones in the middle of the checks
    // below, between a count of the rows and /stats (seen on PostgreSQL when
    // the submissions took under a second).
    common::eventually("the start-up retention purge", || app.logs().contains("retention purge done").then_some(()));
    let day = 86_400_000i64;
    db.write(&format!(
        "UPDATE inquiries SET received_at = received_at - {} WHERE id IN ('{}')",
        10 * day,
        ids[0..5].join("','")
    ));
    db.write(&format!(
        "UPDATE inquiries SET received_at = received_at - {} WHERE id IN ('{}')",
        90 * day,
        ids[5..9].join("','")
    ));
    check("moving inquiries to earlier days");

    for (id, status) in ids[1..4].iter().zip(["in_progress", "resolved", "archived"]).chain([(&ids[10], "spam")]) {
        let reply = app.admin("PATCH", &format!("/inquiries/{id}"), Some(&token), Some(&json!({"status": status})));
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    check("status changes");

    let cookie = signed_in(&app, "triager@example.org");
    for id in ids.iter().step_by(3) {
        assert_eq!(get(&app, &format!("/admin/inquiries/{id}"), Some(&cookie)).status, 200);
    }
    // Opening one again changes nothing.
    let page = get(&app, &format!("/admin/inquiries/{}", ids[0]), Some(&cookie)).body;
    check("first openings");
    let triage = post(
        &app,
        &format!("/admin/inquiries/{}/triage", ids[1]),
        Some(&cookie),
        Some(&app.base),
        &[("csrf", &csrf(&page)), ("replied", "on")],
    );
    assert_eq!(triage.status, 303, "{}", triage.body);
    check("a triage change that also reads it");

    let spam =
        db.row("SELECT id FROM inquiries WHERE status = 'spam' AND id <> ? ORDER BY seq LIMIT 1", &ids[10]).unwrap();
    let spam = spam["id"].clone().unwrap();
    let not_spam = post(
        &app,
        &format!("/admin/inquiries/{spam}/not-spam"),
        Some(&cookie),
        Some(&app.base),
        &[("csrf", &csrf(&page))],
    );
    assert_eq!(not_spam.status, 303, "{}", not_spam.body);
    check("not spam");

    assert_eq!(app.admin("DELETE", &format!("/inquiries/{}", ids[3]), Some(&token), None).status, 204);
    check("an erasure by id (of a read inquiry)");
    assert_eq!(app.admin("DELETE", &format!("/inquiries/{}", ids[4]), Some(&token), None).status, 204);
    check("an erasure by id (of an unread inquiry)");
    let erased = app.admin("POST", "/erasures", Some(&token), Some(&json!({"email": "visitor2@example.org"})));
    assert_eq!(erased.status, 200, "{}", erased.body);
    check("an erasure by address");
    let purge = app.cli(&["purge"]);
    assert!(purge.status.success(), "{}", String::from_utf8_lossy(&purge.stderr));
    assert!(db.scalar("SELECT COUNT(*) FROM inquiries", "") < 28 - 4, "the purge erased the old ones");
    check("the retention purge");

    // The inbox's tabs show the same figures.
    let inbox = get(&app, "/admin", Some(&cookie)).body;
    let all = db.scalar("SELECT COUNT(*) FROM inquiries", "");
    assert!(inbox.contains(&format!("All <span class=\"count\">{all}</span>")), "{inbox}");
    let unread = db.scalar(
        "SELECT COUNT(*) FROM inquiries i WHERE NOT EXISTS \
         (SELECT 1 FROM console_triage t WHERE t.inquiry_id = i.id AND t.read_at IS NOT NULL)",
        "",
    );
    assert!(inbox.contains(&format!("{unread} unread")), "{unread} unread: {inbox}");
}

/// Every id an inbox page links to, in order, and its "Older inquiries" link.
fn inbox_page(app: &TestApp, path: &str, cookie: &str) -> (Vec<String>, Option<String>) {
    let page = get(app, path, Some(cookie));
    assert_eq!(page.status, 200, "{path}: {}", page.body);
    let ids = page
        .body
        .split("href=\"/admin/inquiries/")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_owned())
        .collect();
    let next = page.body.split("<a class=\"next\" href=\"").nth(1).map(|rest| {
        // The href is autoescaped (`&` as `&amp;`, `/` as `&#x2f;`).
        rest.split('"').next().unwrap().replace("&amp;", "&").replace("&#x2f;", "/")
    });
    (ids, next)
}

/// The inbox's keyset pages over more than two pages of ordinary inquiries in
/// three languages, unfiltered, filtered by category and searched for a
/// Russian and a Chinese word: every inquiry exactly once, newest first, the
/// filter kept on every "older" link, and the tab counts equal to the rows.
#[test]
fn the_inbox_pages_through_every_inquiry_once_with_filters_and_search_kept() {
    let app = spawn("");
    create_user(&app, "viewer@example.org", "viewer");
    let texts = [
        ("Стипендия для магистрантов", "Здравствуйте! Расскажите о стипендии для магистрантов, пожалуйста."),
        ("关于天文台的参观", "您好，我们想参观天文台，请问需要预约吗？"),
        ("Telescope time", "Hello, how do we apply for observing time on the telescope?"),
    ];
    let categories = ["inquiry", "question", "commendation", "other"];
    let mut ids = Vec::new();
    for n in 0..123 {
        let (subject, message) = texts[n % 3];
        let mut body = valid_submission();
        body["subject"] = subject.into();
        body["message"] = format!("{message} №{n}").into();
        body["category"] = categories[n % 4].into();
        body["email"] = format!("reader{n}@example.org").into();
        let reply = app.post_json("/api/v1/inquiries", &body);
        assert_eq!(reply.status, 201, "{}", reply.body);
        ids.push(reply.json()["id"].as_str().unwrap().to_owned());
    }
    let cookie = signed_in(&app, "viewer@example.org");
    let walk = |first: &str| {
        let (mut seen, mut next, mut pages) = (Vec::new(), Some(first.to_owned()), 0);
        while let Some(path) = next {
            let (page_ids, older) = inbox_page(&app, &path, &cookie);
            assert!(page_ids.len() <= 50, "{path}: {} rows on a page", page_ids.len());
            if let Some(older) = &older {
                for kept in first.split(['?', '&']).skip(1) {
                    assert!(older.contains(kept), "{older} keeps {kept}");
                }
            }
            seen.extend(page_ids);
            next = older;
            pages += 1;
        }
        (seen, pages)
    };
    let newest_first = |wanted: &dyn Fn(usize) -> bool| -> Vec<String> {
        (0..ids.len()).rev().filter(|n| wanted(*n)).map(|n| ids[n].clone()).collect()
    };

    let (all, pages) = walk("/admin");
    assert_eq!(pages, 3, "123 inquiries are three pages of 50");
    assert_eq!(all, newest_first(&|_| true), "every inquiry once, newest first");
    let (questions, _) = walk("/admin?category=question");
    assert_eq!(questions, newest_first(&|n| n % 4 == 1));
    let (russian, pages) = walk(&format!("/admin?q={}", common::urlencode("стипендии")));
    assert_eq!(pages, 1, "41 found: one page");
    assert_eq!(russian, newest_first(&|n| n % 3 == 0), "the Russian word, in every form it was written");
    let (chinese, _) = walk(&format!("/admin?q={}&category=other", common::urlencode("天文")));
    assert_eq!(chinese, newest_first(&|n| n % 3 == 1 && n % 4 == 3), "a two-character Chinese word, filtered");

    let inbox = get(&app, "/admin", Some(&cookie)).body;
    assert!(inbox.contains("All <span class=\"count\">123</span>"), "{inbox}");
    assert!(inbox.contains("New <span class=\"count\">123</span> <span class=\"unread-badge\">123 unread</span>"));
}
