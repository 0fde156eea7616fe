// Headless-browser test of the admin console (/admin) against the real inquiryd binary.
//
//   node tests/browser/console.test.mjs     (or tests/browser/run.sh, which installs what is missing)
//
// One server with [admin] console = true and its public_url set; an admin and a viewer
// made with `inquiryd user create`; inquiries in Russian, Chinese and one whose every
// text field is a script, attribute or URL payload. Drives Debian's Chromium with
// playwright-core: log in, a wrong password, search a Russian word and a two-character
// Chinese word, open an inquiry, change its status and note, what a viewer sees, the
// XSS payloads on every page (a canary global stays unset, CSP violations fail the
// test), export CSV of a filter, tokens/users/audit pages, sign out, erase with the
// confirmation step. Screenshots (desktop and a 390 px phone) go
// to target/browser/console-*.png. Prints "N passed, M failed" last.

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { BIN, CHROMIUM, ROOT, SHOTS, check, freePort, launchChromium, runScenarios, sqlite } from './harness.mjs';

const SINK = resolve(ROOT, process.env.SMTP_SINK_BIN || 'target/debug/examples/smtp_sink');
const OVERALL_TIMEOUT_MS = 120_000;
const PASSWORD = 'correct horse battery staple';
const AXE = readFileSync(join(ROOT, 'tests', 'browser', 'node_modules', 'axe-core', 'axe.min.js'), 'utf8');

let server = null;
let browser = null;
let sink = null;
let receiver = null;

// ---------------------------------------------------------------- server

/** The SMTP sink (examples/smtp_sink.rs): every message it accepts is a file in its dir. */
async function startSink(dir) {
  const child = spawn(SINK, ['--listen', '127.0.0.1:0', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  const address = await new Promise((ready, reject) => {
    const timer = setTimeout(() => reject(new Error('the SMTP sink printed no address within 20 s')), 20_000);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d) => {
      const m = /smtp_sink listening on ([0-9.]+):(\d+)/.exec(d);
      if (m) { clearTimeout(timer); ready({ host: m[1], port: Number(m[2]) }); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`the SMTP sink exited (${code})`)); });
  });
  return { child, dir, ...address };
}

/** The messages the sink holds, as text. */
function sunk() {
  return readdirSync(sink.dir).filter((f) => f.endsWith('.eml')).sort().map((f) => readFileSync(join(sink.dir, f), 'utf8'));
}

/** A webhook receiver that answers `receiver.answer` (410 until a test says otherwise). */
function startReceiver() {
  const r = { answer: 410, hits: 0 };
  r.server = createHttpServer((req, res) => {
    req.resume();
    req.on('end', () => { r.hits++; res.writeHead(r.answer); res.end(); });
  });
  return new Promise((ready) => r.server.listen(0, '127.0.0.1', () => { r.url = `http://127.0.0.1:${r.server.address().port}/hook`; ready(r); }));
}

async function startServer() {
  const dir = mkdtempSync(join(tmpdir(), 'inquiryd-browser-console-'));
  mkdirSync(join(dir, 'sink'));
  sink = await startSink(join(dir, 'sink'));
  receiver = await startReceiver();
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const config = join(dir, 'inquiryd.toml');
  writeFileSync(config, `[server]
host = "127.0.0.1"
port = ${port}
public_url = ${JSON.stringify(origin)}
allowed_origins = [${JSON.stringify(origin)}]
demo_page = false

[database]
url = ${JSON.stringify(`sqlite://${dir}/inquiries.db`)}

[mail]
transport = "smtp"
retry_base_seconds = 1

[smtp]
host = "127.0.0.1"
port = ${sink.port}
tls = "none"

[spam]
blocked_words = ["crypto casino"]

[webhooks]
allow_private_targets = true

[[forms.contact.webhooks]]
name = "crm"
url = ${JSON.stringify(receiver.url)}
secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
events = ["inquiry.created"]

[limits]
per_ip_per_minute = 100000
per_ip_burst = 100000
per_email_per_hour = 100000

[admin]
console = true
# Every scenario signs in from 127.0.0.1 (the default allows 10 a minute).
login_attempts_per_minute = 100

[log]
level = "info"
`);
  const child = spawn(BIN, ['--config', config, 'serve'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const s = { dir, config, child, origin, db: join(dir, 'inquiries.db'), log: '' };
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => { s.log = (s.log + d).slice(-20_000); });
  child.stdout.setEncoding('utf8');
  await new Promise((ready, reject) => {
    const timer = setTimeout(() => reject(new Error('the server printed no listen address within 20 s')), 20_000);
    child.stdout.on('data', (d) => { if (d.includes('inquiryd listening on')) { clearTimeout(timer); ready(); } });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`the server exited (${code}):\n${s.log}`)); });
  });
  return s;
}

function stop() {
  for (const p of [server, sink]) if (p && p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  if (receiver) receiver.server.close();
}
process.on('exit', stop);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { stop(); process.exit(130); });

function createUser(email, role) {
  const r = spawnSync(BIN, ['--config', server.config, 'user', 'create', '--email', email, '--role', role],
    { cwd: server.dir, input: `${PASSWORD}\n`, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`user create ${email}: ${r.stderr}`);
}

const sql = (query) => sqlite(server.db, query);

async function submit(fields) {
  const res = await fetch(`${server.origin}/api/v1/inquiries`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Origin: server.origin },
    body: JSON.stringify(fields),
  });
  if (res.status !== 201) throw new Error(`submission answered ${res.status}: ${await res.text()}`);
  return (await res.json()).id;
}

// ---------------------------------------------------------------- helpers

/** A fresh browser context that records script errors, dialogs and CSP violations. */
async function newPage(width = 1100) {
  const context = await browser.newContext({ viewport: { width, height: 900 } });
  // Runs before any page script (DevTools injection, not subject to the page's CSP).
  await context.addInitScript(() => {
    window.__violations = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__violations.push(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'} (${e.sample || ''})`);
    });
  });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  page.problems = [];
  page.on('pageerror', (e) => page.problems.push(`script error: ${e.message}`));
  page.on('dialog', (d) => { page.problems.push(`dialog: ${d.message()}`); d.dismiss(); });
  return page;
}

async function signIn(page, email, password = PASSWORD) {
  await page.goto(`${server.origin}/admin`);
  check(page.url().endsWith('/admin/login'), `signed out, /admin should lead to the login page, not ${page.url()}`);
  await page.fill('#email', email);
  await page.fill('#password', password);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
}

async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, `console-${name}.png`), fullPage: true });
  const phone = await newPage(390);
  await phone.context().addCookies(await page.context().cookies());
  await phone.goto(page.url());
  await phone.screenshot({ path: join(SHOTS, `console-${name}-phone.png`), fullPage: true });
  await phone.context().close();
}

/** Fails on any script that ran, dialog that opened or CSP violation on the page. */
async function assertNothingRan(page, where) {
  const state = await page.evaluate(() => ({
    pwned: window.__pwned,
    violations: window.__violations,
    images: document.querySelectorAll('img').length,
    scripts: document.querySelectorAll('script').length,
    jsLinks: [...document.querySelectorAll('a[href]')].filter((a) => a.href.trim().toLowerCase().startsWith('javascript:')).length,
  }));
  check(state.pwned === undefined, `${where}: a payload ran (window.__pwned = ${state.pwned})`);
  check(state.violations.length === 0, `${where}: CSP violations: ${state.violations.join('; ')}`);
  check(page.problems.length === 0, `${where}: ${page.problems.join('; ')}`);
  check(state.images === 0 && state.scripts === 0, `${where}: ${state.images} img and ${state.scripts} script elements`);
  check(state.jsLinks === 0, `${where}: a javascript: link`);
}

/** Runs axe-core in the page (evaluated through DevTools, so the page's CSP allows it). */
async function accessible(page, where) {
  await page.evaluate(AXE);
  const found = await page.evaluate(async () => {
    const result = await window.axe.run(document, { resultTypes: ['violations'] });
    return result.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id} (${v.impact}) at ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')}`);
  });
  check(found.length === 0, `${where}: ${found.join('; ')}`);
}

const RUSSIAN = {
  name: 'Мария Иванова',
  email: 'maria@example.org',
  subject: 'Вопрос о магистратуре',
  message: 'Здравствуйте!\nМеня интересует стипендия для магистрантов.\nСпасибо.',
  category: 'question',
};
const CHINESE = {
  name: '李华',
  email: 'li.hua@example.org',
  subject: '合作研究',
  message: '您好，我想了解联合项目的申请截止日期。',
};
const SCRIPT = '<script>window.__pwned = 1</script>';
const ATTRIBUTE = '"><img src=x onerror="window.__pwned = 2">';
const XSS = {
  name: `${SCRIPT}${ATTRIBUTE}`.slice(0, 100),
  email: 'xss@example.org',
  subject: `${ATTRIBUTE} ${SCRIPT}`,
  message: `${SCRIPT}\n${ATTRIBUTE}\n<a href="javascript:window.__pwned=4">click</a>`,
  organization: `${ATTRIBUTE}${SCRIPT}`,
  country: `${SCRIPT}`,
  page: 'javascript:window.__pwned = 3',
};

// ---------------------------------------------------------------- scenarios

const ids = {};

async function logIn() {
  const page = await newPage();
  await page.goto(`${server.origin}/admin/login`);
  await shot(page, 'login');
  await signIn(page, 'admin@example.org');
  check(page.url() === `${server.origin}/admin`, `after login: ${page.url()}`);
  check(await page.isVisible('h1:text("Inbox")'), 'the inbox heading');
  check((await page.textContent('table.inbox')).includes(RUSSIAN.subject), 'the Russian inquiry is listed');
  const cookie = (await page.context().cookies()).find((c) => c.name === 'inquiryd_session');
  check(cookie && cookie.httpOnly && cookie.sameSite === 'Strict', `cookie: ${JSON.stringify(cookie)}`);
  await shot(page, 'inbox');
  await page.context().close();
  return 'signed in; the inbox lists the inquiries';
}

async function wrongPassword() {
  const page = await newPage();
  await signIn(page, 'admin@example.org', 'not the password at all');
  check(page.url().endsWith('/admin/login'), `still on the login page: ${page.url()}`);
  check((await page.textContent('.notice')).includes('Wrong email or password'), 'the generic message');
  check((await page.context().cookies()).length === 0, 'no cookie');
  await page.goto(`${server.origin}/admin`);
  check(page.url().endsWith('/admin/login'), 'still signed out');
  await page.context().close();
  return 'refused with the generic message, no session';
}

async function search(word, expected, unexpected) {
  const page = await newPage();
  await signIn(page, 'admin@example.org');
  await page.fill('#q', word);
  await Promise.all([page.waitForNavigation(), page.click('form.filters button[type=submit]')]);
  const table = (await page.textContent('table.inbox').catch(() => '')) || '';
  check(table.includes(expected.subject), `searching ${word} finds "${expected.subject}"`);
  check(!table.includes(unexpected.subject), `searching ${word} does not find "${unexpected.subject}"`);
  check(await page.inputValue('#q') === word, 'the search box keeps the word');
  await shot(page, `search-${expected === RUSSIAN ? 'ru' : 'zh'}`);
  await page.context().close();
  return `"${word}" finds exactly the ${expected === RUSSIAN ? 'Russian' : 'Chinese'} inquiry`;
}

async function openAndTriage() {
  const page = await newPage();
  await signIn(page, 'admin@example.org');
  await Promise.all([page.waitForNavigation(), page.click(`a:text("${RUSSIAN.subject}")`)]);
  check(page.url().endsWith(`/admin/inquiries/${ids.russian}`), page.url());
  const message = await page.innerText('.message');
  check(message === RUSSIAN.message, `the message with its line breaks: ${JSON.stringify(message)}`);
  const mailto = await page.getAttribute('a:text("Reply by email")', 'href');
  check(mailto.startsWith('mailto:maria%40example.org?subject=Re%3A%20'), mailto);
  await page.selectOption('#status', 'resolved');
  await page.fill('#note', 'Answered by phone.\nSent the brochure.');
  await Promise.all([page.waitForNavigation(), page.click('form.status button[type=submit]')]);
  check((await page.textContent('.notice')).includes('Saved'), 'saved');
  check(await page.inputValue('#status') === 'resolved', 'the status shows resolved');
  const [row] = sql(`SELECT status, note FROM inquiries WHERE id = '${ids.russian}'`);
  check(row.status === 'resolved' && row.note === 'Answered by phone.\nSent the brochure.', JSON.stringify(row));
  await shot(page, 'inquiry');
  await page.context().close();
  return 'opened; status resolved and a two-line note stored';
}

async function viewer() {
  const page = await newPage();
  await signIn(page, 'viewer@example.org');
  await page.goto(`${server.origin}/admin/inquiries/${ids.chinese}`);
  check((await page.innerText('.message')) === CHINESE.message, 'a viewer reads the inquiry');
  check(await page.locator('text=Erase').count() === 0, 'no erase control');
  check(await page.locator('#status').count() === 0, 'no status control');
  await page.context().close();
  return 'reads, sees no erase or status control';
}

async function xss() {
  const page = await newPage();
  await signIn(page, 'admin@example.org');
  await assertNothingRan(page, 'inbox');
  check((await page.textContent('table.inbox')).includes(SCRIPT), 'the payload is shown as text in the inbox');
  await page.goto(`${server.origin}/admin?q=${encodeURIComponent('pwned')}`);
  await assertNothingRan(page, 'search');
  await page.goto(`${server.origin}/admin/inquiries/${ids.xss}`);
  await assertNothingRan(page, 'inquiry');
  const text = await page.innerText('main');
  for (const payload of [SCRIPT, 'onerror=', 'javascript:window.__pwned = 3']) {
    check(text.includes(payload), `the inquiry page shows ${payload} as text`);
  }
  await shot(page, 'xss');
  await page.goto(`${server.origin}/admin/inquiries/${ids.xss}/erase`);
  await assertNothingRan(page, 'erase confirmation');
  await page.context().close();
  return 'every payload shown as text on the inbox, search, inquiry and erase pages; nothing ran, no CSP violation';
}

async function exportCsv() {
  const page = await newPage();
  await signIn(page, 'admin@example.org');
  await page.selectOption('#category', 'question');
  await Promise.all([page.waitForNavigation(), page.click('form.filters button[type=submit]')]);
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('a:text("CSV")')]);
  const path = join(server.dir, 'export.csv');
  await download.saveAs(path);
  const text = readFileSync(path, 'utf8');
  check(text.startsWith('\uFEFF'), 'the CSV starts with a byte-order mark');
  const lines = text.trim().split(/\r?\n/);
  check(lines[0].replace('\uFEFF', '').startsWith('id,received_at,status,category'), `header: ${lines[0]}`);
  const questions = sql("SELECT id FROM inquiries WHERE category = 'question'").map((r) => r.id);
  // A record starts with its id; quoted messages may span several lines.
  const records = lines.filter((l) => /^"?[0-9a-f]{8}-[0-9a-f]{4}-/.test(l)).length;
  check(records === questions.length, `${records} rows, ${questions.length} questions`);
  for (const id of questions) check(text.includes(id), `the export holds question ${id}`);
  check(!text.includes(ids.chinese), 'not the inquiry of another category');
  await page.context().close();
  return `${questions.length} rows of the filtered category, BOM and header`;
}

async function adminPages() {
  const page = await newPage();
  await signIn(page, 'admin@example.org');
  await page.click('nav a:text("API tokens")');
  await page.fill('#token-name', 'CRM sync');
  await Promise.all([page.waitForNavigation(), page.click('form.inline-form button[type=submit]')]);
  const token = (await page.textContent('#shown-secret')).trim();
  check(token.startsWith('iqd_'), `a token shown: ${token}`);
  const res = await fetch(`${server.origin}/api/v1/admin/stats`, { headers: { Authorization: `Bearer ${token}` } });
  check(res.status === 200, `the token works with the API: ${res.status}`);
  await shot(page, 'tokens');
  await page.goto(`${server.origin}/admin/tokens`);
  check(!(await page.content()).includes(token), 'the token is shown only once');
  await page.click('nav a:text("Users")');
  check((await page.textContent('table.users')).includes('viewer@example.org'), 'the users are listed');
  await shot(page, 'users');
  await page.click('nav a:text("Dashboard")');
  check(await page.locator('svg.chart').count() === 3, 'charts by status, category and form');
  const today = new Date().toISOString().slice(0, 10);
  const titles = await page.locator('svg.chart title').allTextContents();
  check(titles.some((t) => t.startsWith(`${today}: `)), `today's inquiries are drawn: ${titles.slice(0, 3)}`);
  await Promise.all([page.waitForNavigation(), page.click('a:text("Last 90 days")')]);
  check(page.url().endsWith('/admin/dashboard?days=90'), '90 days');
  await assertNothingRan(page, 'dashboard');
  await shot(page, 'dashboard');
  await page.click('nav a:text("Audit log")');
  const audit = await page.textContent('table.audit');
  check(audit.includes('console.login') && audit.includes('token.create'), 'the audit log lists console actions');
  await assertNothingRan(page, 'audit log');
  await shot(page, 'audit');
  await page.context().close();
  return 'a token created and shown once; users, dashboard and audit pages';
}

async function logOut() {
  const page = await newPage();
  await signIn(page, 'viewer@example.org');
  const [cookie] = (await page.context().cookies()).filter((c) => c.name === 'inquiryd_session');
  await Promise.all([page.waitForNavigation(), page.click('button:text("Sign out")')]);
  check(page.url().endsWith('/admin/login'), `after sign-out: ${page.url()}`);
  const replay = await fetch(`${server.origin}/admin`, { headers: { Cookie: `inquiryd_session=${cookie.value}` }, redirect: 'manual' });
  check(replay.status === 303 && replay.headers.get('location') === '/admin/login', `the old cookie: ${replay.status}`);
  await page.context().close();
  return 'signed out; the old cookie no longer opens the console';
}

async function accessibility() {
  const page = await newPage();
  await page.goto(`${server.origin}/admin/login`);
  await accessible(page, 'login');
  await signIn(page, 'admin@example.org');
  const pages = ['/admin', `/admin/inquiries/${ids.russian}`, `/admin/inquiries/${ids.xss}`, `/admin/inquiries/${ids.xss}/erase`,
    '/admin/dashboard', '/admin/users', '/admin/tokens', '/admin/audit'];
  for (const path of pages) {
    await page.goto(`${server.origin}${path}`);
    await accessible(page, path);
  }
  await page.keyboard.press('Tab');
  const focused = await page.evaluate(() => document.activeElement && document.activeElement.textContent);
  check(focused === 'Skip to content', `the first Tab reaches the skip link, not ${focused}`);
  await page.context().close();
  return `axe-core finds no serious or critical violation on ${pages.length + 1} pages; Tab starts at the skip link`;
}

async function erase() {
  const page = await newPage();
  await signIn(page, 'admin@example.org');
  await page.goto(`${server.origin}/admin/inquiries/${ids.chinese}`);
  await Promise.all([page.waitForNavigation(), page.click('a:text("Erase this inquiry")')]);
  check(page.url().endsWith(`/admin/inquiries/${ids.chinese}/erase`), 'a confirmation step');
  check(sql(`SELECT count(*) AS n FROM inquiries WHERE id = '${ids.chinese}'`)[0].n === 1, 'not erased before confirming');
  await shot(page, 'erase');
  await Promise.all([page.waitForNavigation(), page.click('button:text("Erase for good")')]);
  check((await page.textContent('.notice')).includes('erased'), 'told it is erased');
  check(!(await page.textContent('main')).includes(CHINESE.subject), 'gone from the inbox');
  check(sql(`SELECT count(*) AS n FROM inquiries WHERE id = '${ids.chinese}'`)[0].n === 0, 'gone from the database');
  const needle = Buffer.from(CHINESE.message);
  for (const file of readdirSync(server.dir).filter((f) => f.startsWith('inquiries.db'))) {
    check(!readFileSync(join(server.dir, file)).includes(needle), `no byte of the message left in ${file}`);
  }
  const response = await page.goto(`${server.origin}/admin/inquiries/${ids.chinese}`);
  check(response.status() === 404, `its page is 404, not ${response.status()}`);
  await page.context().close();
  return 'confirmed, erased, gone from the inbox, the database and every byte of its files';
}

/** Polls `probe` every 100 ms until it returns something truthy (10 s at most). */
async function until(what, probe) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const found = await probe();
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function notSpam() {
  const subject = 'Photo archive request 7731';
  const id = await submit({ ...RUSSIAN, subject, message: 'Not a crypto casino: may we use two photos from your archive?' });
  check(sql(`SELECT status FROM inquiries WHERE id = '${id}'`)[0].status === 'spam', 'held as spam');
  const before = sunk().length;
  await new Promise((r) => setTimeout(r, 500));
  check(!sunk().some((m) => m.includes(subject)), 'spam sends no email');
  const page = await newPage();
  await signIn(page, 'admin@example.org');
  await page.goto(`${server.origin}/admin/inquiries/${id}`);
  await Promise.all([page.waitForNavigation(), page.click('button:has-text("Not spam")')]);
  check(await page.inputValue('#status') === 'new', 'now new');
  const mail = await until('the staff email in the SMTP sink', () => sunk().find((m) => m.includes(subject)));
  check(mail.includes('maria@example.org'), 'the staff email, Reply-To the visitor');
  await page.context().close();
  return `marked new; its staff email reached the SMTP sink (${sunk().length - before} new message)`;
}

async function retryDelivery() {
  const id = await submit({ ...RUSSIAN, subject: 'Webhook retry 5150' });
  await until('the webhook delivery to fail (410)', () =>
    sql(`SELECT status FROM webhook_deliveries WHERE inquiry_id = '${id}'`).find((r) => r.status === 'failed'));
  const page = await newPage();
  await signIn(page, 'admin@example.org');
  await page.goto(`${server.origin}/admin/inquiries/${id}`);
  const row = page.locator('table.deliveries tr', { hasText: 'inquiry.created' });
  check((await row.textContent()).includes('failed'), `the failed delivery is shown: ${await row.textContent()}`);
  receiver.answer = 204;
  const hits = receiver.hits;
  await Promise.all([page.waitForNavigation(), row.locator('button:text("Retry")').click()]);
  await until('the retried delivery', () =>
    sql(`SELECT status FROM webhook_deliveries WHERE inquiry_id = '${id}'`).find((r) => r.status === 'sent'));
  check(receiver.hits > hits, 'the receiver got it again');
  await page.reload();
  const after = await page.locator('table.deliveries tr', { hasText: 'inquiry.created' }).textContent();
  check(after.includes('sent') && await page.locator('button:text("Retry")').count() === 0, `sent, no Retry left: ${after}`);
  await page.context().close();
  receiver.answer = 410;
  return 'a webhook delivery failed (410), retried from its page, sent';
}

/** POSTs a form with a signed-in page's cookies and the console's own Origin
 * (the page's CSP lets no script of the page fetch, so the browser context does). */
async function postFrom(page, path, fields) {
  const res = await page.context().request.post(`${server.origin}${path}`,
    { form: fields, headers: { Origin: server.origin }, maxRedirects: 0 });
  return res.status();
}

async function forgeries() {
  const path = `/admin/inquiries/${ids.russian}/status`;
  const status = () => sql(`SELECT status FROM inquiries WHERE id = '${ids.russian}'`)[0].status;
  const before = status();
  const viewerPage = await newPage();
  await signIn(viewerPage, 'viewer@example.org');
  check(await viewerPage.locator('text=Export these inquiries').count() === 0, 'a viewer sees no export');
  const viewerToken = await viewerPage.getAttribute('input[name=csrf]', 'value');
  check(await postFrom(viewerPage, path, { csrf: viewerToken, status: 'spam' }) === 403, 'a forged POST from a viewer is 403');
  await viewerPage.context().close();

  const page = await newPage();
  await signIn(page, 'admin@example.org');
  check(await postFrom(page, path, { status: 'spam' }) === 403, 'a POST without the CSRF token is 403');
  const token = await page.getAttribute('input[name=csrf]', 'value');
  // Another origin on the same site (another port): the Strict cookie goes with
  // it, so only the Origin check stands between it and the change.
  const evil = createHttpServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end(`<form method="post" action="${server.origin}${path}"><input name="csrf" value="${token}">` +
      '<input name="status" value="spam"><button>Win</button></form>');
  });
  await new Promise((r) => evil.listen(0, '127.0.0.1', r));
  try {
    await page.goto(`http://127.0.0.1:${evil.address().port}/`);
    const [response] = await Promise.all([page.waitForNavigation(), page.click('button')]);
    check(response.status() === 403, `a POST from a foreign Origin is ${response.status()}`);
  } finally {
    evil.close();
  }
  check(status() === before, `the status is unchanged (${status()})`);
  // The control: the same token, cookie and fields from the console's own origin are accepted.
  check(await postFrom(page, path, { csrf: token, status: before }) === 303, 'the same POST from the console itself is 303');
  await page.context().close();
  return 'a viewer\'s POST, a POST without the token and one from another origin (with the token) are 403; nothing changed';
}

async function idleTimeout() {
  const page = await newPage();
  await signIn(page, 'viewer@example.org');
  // 31 minutes without a request (the default idle timeout is 30).
  const sessions = () => sql('SELECT count(*) AS n FROM console_sessions')[0].n;
  sql('UPDATE console_sessions SET last_seen_at = last_seen_at - 31 * 60 * 1000');
  const before = sessions();
  await page.goto(`${server.origin}/admin`);
  check(page.url().endsWith('/admin/login'), `an idle session leads to the login page, not ${page.url()}`);
  check(sessions() === before - 1, `the idle session is ended on the server (${before} sessions, then ${sessions()})`);
  await page.context().close();
  return 'idle for 31 minutes: signed out, the session gone from the database';
}

// ---------------------------------------------------------------- main

async function main() {
  const guard = setTimeout(() => {
    console.error(`FAIL: the console browser test did not finish within ${OVERALL_TIMEOUT_MS / 1000} s`);
    stop();
    process.exit(1);
  }, OVERALL_TIMEOUT_MS);
  guard.unref();
  check(existsSync(BIN), `no server binary at ${BIN}`);
  check(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}`);
  mkdirSync(SHOTS, { recursive: true });

  server = await startServer();
  createUser('admin@example.org', 'admin');
  createUser('viewer@example.org', 'viewer');
  ids.russian = await submit(RUSSIAN);
  ids.chinese = await submit(CHINESE);
  ids.xss = await submit(XSS);
  console.log(`console server ${server.origin}`);

  browser = await launchChromium();
  const scenarios = [
    ['console: log in', logIn],
    ['console: a wrong password', wrongPassword],
    ['console: search a Russian word', () => search('стипендия', RUSSIAN, CHINESE)],
    ['console: search a two-character Chinese word', () => search('申请', CHINESE, RUSSIAN)],
    ['console: open an inquiry, change status and note', openAndTriage],
    ['console: a viewer', viewer],
    ['console: script, attribute and URL payloads never run', xss],
    ['console: export CSV of a filter', exportCsv],
    ['console: tokens, users, dashboard and audit pages', adminPages],
    ['console: sign out', logOut],
    ['console: accessibility (axe-core)', accessibility],
    ['console: not spam sends the email it never had', notSpam],
    ['console: retry a failed delivery', retryDelivery],
    ['console: forged POSTs are 403', forgeries],
    ['console: idle timeout', idleTimeout],
    ['console: erase with confirmation', erase],
  ];
  const { passed, failed } = await runScenarios(scenarios);
  await browser.close();
  stop();
  if (failed) console.log(`--- server (${server.dir}) log tail:\n${server.log.slice(-3_000)}`);
  else rmSync(server.dir, { recursive: true, force: true });
  console.log(`screenshots in ${SHOTS}`);
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0;
}

main().then(
  (ok) => process.exit(ok ? 0 : 1),
  async (e) => {
    console.error(`FAIL: ${e.message}`);
    try { if (browser) await browser.close(); } catch { /* ignore */ }
    stop();
    if (server) console.error(`--- server log tail:\n${server.log.slice(-3_000)}`);
    console.log('0 passed, 12 failed');
    process.exit(1);
  },
);
