// Headless-browser test of examples/contact-form.html against the real inquiryd binary.
//
//   node tests/browser/form.test.mjs        (or tests/browser/run.sh, which installs what is missing)
//
// Starts three servers, each with its own temporary directory and config file:
//   P: serves the page (demo_page on)          -- the "page origin"
//   A: the API, allowed_origins = [P's origin] -- the "API origin"
//   X: serves the page too, but A does not allow its origin
// Scenarios: a Unicode inquiry posted cross-origin P -> A; field errors from a 422;
// a page origin A does not allow (X -> A); and the plain no-JavaScript form post on P.
// and drives Debian's Chromium (/usr/bin/chromium, or CHROMIUM_PATH) with playwright-core.
// Screenshots go to target/browser/. Prints "N passed, M failed" last; exits non-zero on failure.

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, CHROMIUM, ROOT, SHOTS, check, freePort, launchChromium, runScenarios, sqlite } from './harness.mjs';

const OVERALL_TIMEOUT_MS = 90_000;

const servers = [];
let browser = null;

// ---------------------------------------------------------------- servers

function toml(value) {
  return JSON.stringify(value); // a TOML basic string or array of them
}

async function startServer(label, { allowedOrigins = [], public: isPublic = false, extra = '' } = {}) {
  const dir = mkdtempSync(join(tmpdir(), `inquiryd-browser-${label}-`));
  const port = isPublic ? await freePort() : 0;
  const publicUrl = isPublic ? `http://127.0.0.1:${port}` : '';
  const config = join(dir, 'inquiryd.toml');
  writeFileSync(
    config,
    `[server]
host = "127.0.0.1"
port = ${port}
public_url = ${toml(publicUrl)}
allowed_origins = ${toml(allowedOrigins)}
demo_page = true

[database]
url = ${toml(`sqlite://${dir}/inquiries.db`)}

[mail]
transport = "file"
file_dir = ${toml(`${dir}/mail`)}

[limits]
per_ip_per_minute = 100000
per_ip_burst = 100000
per_email_per_hour = 100000

[log]
level = "info"
${extra}`,
  );
  const child = spawn(BIN, ['--config', config, 'serve'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const server = { label, dir, config, child, db: join(dir, 'inquiries.db'), mail: join(dir, 'mail'), log: '' };
  servers.push(server);
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => { server.log = (server.log + d).slice(-20_000); });
  child.stdout.setEncoding('utf8');
  server.port = await new Promise((resolvePort, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server ${label} printed no listen address within 20 s`)), 20_000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/inquiryd listening on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) { clearTimeout(timer); resolvePort(Number(m[1])); }
    });
    child.on('error', (e) => { clearTimeout(timer); reject(new Error(`cannot run ${BIN}: ${e.message}`)); });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server ${label} exited (${code}) before listening:\n${server.log}`));
    });
  });
  server.origin = `http://127.0.0.1:${server.port}`;
  return server;
}

function killAll(signal = 'SIGKILL') {
  for (const s of servers) {
    if (s.child.exitCode === null && s.child.signalCode === null) {
      try { s.child.kill(signal); } catch { /* already gone */ }
    }
  }
}

async function stopAll() {
  killAll('SIGTERM');
  await Promise.all(servers.map((s) => new Promise((done) => {
    if (s.child.exitCode !== null || s.child.signalCode !== null) return done();
    const t = setTimeout(() => { s.child.kill('SIGKILL'); done(); }, 5_000);
    s.child.once('exit', () => { clearTimeout(t); done(); });
  })));
}

process.on('exit', () => killAll('SIGKILL'));
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { killAll('SIGKILL'); process.exit(130); });

// ---------------------------------------------------------------- database

function ensureSqlite3() {
  if (spawnSync('sqlite3', ['-version']).status === 0) return;
  if (process.getuid && process.getuid() === 0) {
    console.log('sqlite3 is missing: installing it with apt-get');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    spawnSync('apt-get', ['install', '-y', '-qq', 'sqlite3'], { stdio: 'inherit', env });
  }
  if (spawnSync('sqlite3', ['-version']).status !== 0) throw new Error('the sqlite3 command-line tool is needed (apt-get install sqlite3)');
}

const sql = (server, query) => sqlite(server.db, query);

const countInquiries = (server) => sql(server, 'SELECT count(*) AS n FROM inquiries')[0].n;

// The inquiry through GET /api/v1/admin/inquiries/{id}, with a read token made by
// `inquiryd token create`; null when this binary has no admin API yet.
async function adminInquiry(server, id) {
  const made = spawnSync(BIN, ['--config', server.config, 'token', 'create', '--name', 'browser-test', '--scope', 'read'],
    { cwd: server.dir, encoding: 'utf8' });
  const token = made.status === 0 ? made.stdout.trim() : '';
  if (!token || token.includes('\n')) return null;
  const res = await fetch(`${server.origin}/api/v1/admin/inquiries/${id}`, { headers: { Authorization: `Bearer ${token}` } });
  if (res.status === 404 && !(res.headers.get('content-type') || '').includes('json')) return null; // no such route
  if (res.status !== 200) throw new Error(`GET /api/v1/admin/inquiries/${id} answered ${res.status}: ${await res.text()}`);
  return res.json();
}

// ---------------------------------------------------------------- helpers

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function newPage(locale = 'en-US') {
  const context = await browser.newContext({ viewport: { width: 820, height: 900 }, locale });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  page.jsErrors = [];
  page.on('pageerror', (e) => page.jsErrors.push(e.message));
  return page;
}

async function fill(page, values) {
  for (const [field, value] of Object.entries(values)) {
    if (field === 'category') await page.selectOption('#category', value);
    else await page.fill(`#${field}`, value);
  }
}

// Records, inside the page, whether the button was ever disabled and the form busy.
async function watchBusy(page) {
  await page.evaluate(() => {
    window.__busy = { disabled: false, ariaBusy: false };
    const button = document.getElementById('submit');
    const form = document.getElementById('contact');
    new MutationObserver(() => {
      if (button.disabled) window.__busy.disabled = true;
      if (form.getAttribute('aria-busy') === 'true') window.__busy.ariaBusy = true;
    }).observe(form, { attributes: true, subtree: true });
  });
}

const VISITOR = {
  name: 'Анна Ахматова',
  email: 'anna.akhmatova@example.org',
  subject: '关于合作研究的问题',
  message: 'Здравствуйте! 你好 👋🎉\nI would like to ask about a joint project.\nҚазақша: Сәлеметсіз бе. اردو: آداب',
  category: 'question',
  organization: 'Институт 研究所',
  country: 'Қазақстан',
  phone: '+7 (727) 123-45-67',
};

// ---------------------------------------------------------------- scenarios

async function successScenario({ P, A }) {
  const page = await newPage();
  const posts = [];
  page.on('request', (r) => { if (r.method() === 'POST') posts.push(r); });
  await page.goto(`${P.origin}/?api=${A.origin}`);
  const action = await page.evaluate(() => document.getElementById('contact').action);
  check(action === `${A.origin}/api/v1/inquiries`, `form.action should point at server A, got ${action}`);
  const hidden = await page.evaluate(() => ({
    page: document.getElementById('page').value,
    started: Number(document.getElementById('_started_at').value),
  }));
  check(hidden.page === `${P.origin}/?api=${A.origin}`, `hidden page field should be location.href, got ${hidden.page}`);
  check(Math.abs(Date.now() - hidden.started) < 60_000, `_started_at should be Date.now(), got ${hidden.started}`);

  await fill(page, VISITOR);
  await page.check('#consent');
  await sleep(1_100); // a human takes more than 0 s
  await watchBusy(page);
  await page.click('#submit');
  await page.waitForSelector('#success-id', { state: 'visible' });
  const id = (await page.textContent('#success-id')).trim();
  check(/^[0-9a-fA-F-]{16,64}$/.test(id), `#success-id should hold the returned id, got ${JSON.stringify(id)}`);
  check(await page.isHidden('#contact'), 'the form should be hidden after success');
  check((await page.inputValue('#name')) === '', 'the form should be reset after success');
  const busy = await page.evaluate(() => window.__busy);
  check(busy.disabled && busy.ariaBusy, `the button should be disabled and the form aria-busy while sending: ${JSON.stringify(busy)}`);

  const post = posts.find((r) => r.url() === `${A.origin}/api/v1/inquiries`);
  check(post, 'the page should have posted to server A');
  const headers = await post.allHeaders();
  check(headers['content-type'] === 'application/json', `Content-Type should be JSON, got ${headers['content-type']}`);
  check(headers.accept === 'application/json', `Accept should be application/json, got ${headers.accept}`);
  check(/^[0-9a-f-]{36}$/.test(headers['idempotency-key'] || ''), `Idempotency-Key should be a UUID, got ${headers['idempotency-key']}`);
  const sent = JSON.parse(post.postData());
  check(sent.consent === true && sent._gotcha === '' && sent.category === 'question', `unexpected JSON body: ${post.postData()}`);

  const rows = sql(A, `SELECT name, subject, message, organization, country, phone, category, consent, page, status FROM inquiries WHERE id = '${id}'`);
  check(rows.length === 1, `inquiry ${id} should be in server A's database (found ${rows.length} rows)`);
  const row = rows[0];
  for (const field of ['name', 'subject', 'message', 'organization', 'country', 'phone', 'category']) {
    check(row[field] === VISITOR[field], `stored ${field} ${JSON.stringify(row[field])} differs from typed ${JSON.stringify(VISITOR[field])}`);
  }
  check(row.consent === 1 && row.status === 'new', `stored consent/status: ${row.consent}/${row.status}`);
  check(row.page === `${P.origin}/?api=${A.origin}`, `stored page: ${row.page}`);

  const admin = await adminInquiry(A, id);
  if (admin) {
    check(admin.name === VISITOR.name && admin.subject === VISITOR.subject,
      `GET /api/v1/admin/inquiries/${id} returned ${JSON.stringify({ name: admin.name, subject: admin.subject })}`);
  }

  let eml = [];
  for (let i = 0; i < 50 && !eml.length; i++) {
    eml = existsSync(A.mail) ? readdirSync(A.mail).filter((f) => f.includes(id) && f.endsWith('.eml')) : [];
    if (!eml.length) await sleep(100);
  }
  check(eml.length >= 1, `server A should have written the staff email for ${id} to ${A.mail}`);

  await page.screenshot({ path: join(SHOTS, 'success.png'), fullPage: true });
  check(page.jsErrors.length === 0, `JavaScript errors: ${page.jsErrors.join('; ')}`);
  await page.context().close();
  return `inquiry ${id} stored in A (checked with sqlite3${admin ? ' and the admin API' : ''}) and emailed`;
}

// A Russian browser (navigator.languages and Accept-Language say ru-RU): the page's
// own words switch to Russian, and the server's messages next to the fields are in
// Russian too.
async function russianFieldErrorScenario({ P, A }) {
  const page = await newPage('ru-RU');
  await page.goto(`${P.origin}/?api=${A.origin}`);
  const words = await page.evaluate(() => ({
    lang: document.documentElement.lang,
    heading: document.querySelector('h1').textContent,
    name: document.querySelector('label[for=name]').textContent,
    optional: document.querySelector('label[for=country] .optional').textContent,
    option: document.querySelector('#category option[value=question]').textContent,
    button: document.getElementById('submit').textContent,
  }));
  check(words.lang === 'ru', `<html lang> should be ru, got ${words.lang}`);
  check(words.heading === 'Связаться с нами' && words.name === 'Имя' && words.optional === '(необязательно)',
        `the labels should be Russian, got ${JSON.stringify(words)}`);
  check(words.option === 'Вопрос' && words.button === 'Отправить', `the choices and the button should be Russian, got ${JSON.stringify(words)}`);
  await page.evaluate(() => { document.getElementById('contact').noValidate = true; });
  await fill(page, { ...VISITOR, email: 'not-an-email', subject: '' });
  await page.check('#consent');
  await page.click('#submit');
  await page.waitForFunction(() => document.getElementById('error-email').textContent.trim() !== '');
  const email = (await page.textContent('#error-email')).trim();
  const subject = (await page.textContent('#error-subject')).trim();
  check(email.includes('не является действительным адресом'), `#error-email should be Russian, got ${JSON.stringify(email)}`);
  check(subject.includes('обязательно'), `#error-subject should be Russian, got ${JSON.stringify(subject)}`);
  const status = (await page.textContent('#form-status')).trim();
  check(status.startsWith('Исправьте отмеченные поля'), `the page's own message should be Russian, got ${JSON.stringify(status)}`);
  await page.screenshot({ path: join(SHOTS, 'errors-ru.png'), fullPage: true });
  return `Russian messages next to the fields: ${JSON.stringify(email)}`;
}

// A Chinese browser (zh-CN): the page speaks Chinese, sends _lang=zh, and the
// stored inquiry says so (its receipt would be in Chinese).
async function chineseWordsScenario({ P, A }) {
  const page = await newPage('zh-CN');
  await page.goto(`${P.origin}/?api=${A.origin}`);
  const heading = await page.textContent('h1');
  const label = await page.textContent('label[for=message]');
  check(heading === '联系我们' && label === '留言', `the page should be Chinese, got ${heading} / ${label}`);
  await fill(page, { ...VISITOR, subject: '中文页面 ' + Date.now() });
  await page.check('#consent');
  await page.click('#submit');
  await page.waitForSelector('#success:not([hidden])');
  const thanks = await page.textContent('#success h2');
  check(thanks === '谢谢，您的留言已发送。', `the thank-you should be Chinese, got ${JSON.stringify(thanks)}`);
  const id = (await page.textContent('#success-id')).trim();
  const rows = sql(A, `SELECT lang FROM inquiries WHERE id = '${id}'`);
  const lang = rows.length ? rows[0].lang : null;
  check(lang === 'zh', `the inquiry should be stored with lang zh, got ${JSON.stringify(lang)}`);
  await page.screenshot({ path: join(SHOTS, 'success-zh.png'), fullPage: true });
  await page.context().close();
  return `page, thanks and stored language in Chinese (${id})`;
}

// A second form on A, beside the contact form: what examples/event-registration.html renders.
const CONFERENCE = `
[forms.contact]
title = "Contact us"

[forms.conference]
title = "Annual conference: registration"
to = ["events@example.org"]
optional = ["organization"]
categories = ["inquiry"]

[[forms.conference.fields]]
name = "session"
label = "Session"
labels = { ru = "Секция", zh = "分会场" }
type = "select"
choices = ["Opening plenary", "Fintech workshop"]
required = true

[[forms.conference.fields]]
name = "guests"
label = "Guests"
labels = { ru = "Гости", zh = "随行人数" }
type = "number"
min = 0
max = 3

[[forms.conference.fields]]
name = "arrival"
label = "Arrival date"
labels = { ru = "Дата приезда", zh = "到达日期" }
type = "date"
min = "2026-01-01"

[[forms.conference.fields]]
name = "website"
label = "Website"
type = "url"

[[forms.conference.fields]]
name = "vegetarian"
label = "Vegetarian meals"
labels = { ru = "Вегетарианское питание" }
type = "checkbox"
`;

// The registration page renders the fields GET /api/v1/forms/conference gives it,
// in the browser's language (Russian here): labels, choices, the server's errors
// next to the custom fields, and a stored registration with its typed values.
async function eventRegistrationScenario({ P, A }) {
  const page = await newPage('ru-RU');
  await page.goto(`${P.origin}/event-registration?api=${A.origin}`);
  await page.waitForSelector('#registration:not([hidden])');
  const shown = await page.evaluate(() => ({
    title: document.getElementById('title').textContent,
    session: document.querySelector('label[for=field-session]').textContent,
    choices: Array.from(document.querySelectorAll('#field-session option')).map((o) => o.textContent),
    guests: document.getElementById('field-guests').type + ' ' + document.getElementById('field-guests').max,
    arrival: document.getElementById('field-arrival').type,
    vegetarian: document.querySelector('label[for=field-vegetarian]').textContent,
    name: document.querySelector('label[for=field-name]').textContent,
    phone: !!document.getElementById('field-phone'),
    button: document.getElementById('submit').textContent,
  }));
  check(shown.title === 'Annual conference: registration', `title: ${shown.title}`);
  check(shown.session === 'Секция' && shown.vegetarian === 'Вегетарианское питание',
        `custom labels should be Russian: ${JSON.stringify(shown)}`);
  check(shown.name.startsWith('Имя'), `built-in labels should be Russian: ${shown.name}`);
  check(JSON.stringify(shown.choices) === JSON.stringify(['Выберите…', 'Opening plenary', 'Fintech workshop']),
        `choices: ${JSON.stringify(shown.choices)}`);
  check(shown.guests === 'number 3' && shown.arrival === 'date', `input types: ${JSON.stringify(shown)}`);
  check(!shown.phone, 'a built-in field the form does not show is not rendered');
  check(shown.button === 'Зарегистрироваться', `button: ${shown.button}`);
  await page.screenshot({ path: join(SHOTS, 'event-registration-ru.png'), fullPage: true });

  // Invalid values: the server's Russian messages appear next to the custom fields.
  const before = countInquiries(A);
  await page.fill('#field-name', 'Алия Нурланова');
  await page.fill('#field-email', 'aliya@example.org');
  await page.fill('#field-subject', 'Регистрация');
  await page.fill('#field-message', 'Буду на конференции. 我会参加。');
  await page.fill('#field-guests', '7');
  await page.fill('#field-website', 'ftp://example.org');
  await page.click('#submit');
  await page.waitForFunction(() => document.getElementById('error-guests').textContent.trim() !== '');
  const errors = await page.evaluate(() => ['session', 'guests', 'website'].map((n) => document.getElementById(`error-${n}`).textContent));
  check(errors[0].includes('Секция') && errors[1].includes('Гости') && errors[2] !== '',
        `errors next to the fields, with the Russian labels: ${JSON.stringify(errors)}`);
  check(countInquiries(A) === before, 'a 422 stores nothing');
  await page.screenshot({ path: join(SHOTS, 'event-registration-errors-ru.png'), fullPage: true });

  await page.selectOption('#field-session', 'Fintech workshop');
  await page.fill('#field-guests', '2');
  await page.fill('#field-website', 'https://aliya.example.org');
  await page.fill('#field-arrival', '2026-05-31');
  await page.check('#field-vegetarian');
  await page.check('#field-consent');
  await page.click('#submit');
  await page.waitForSelector('#success:not([hidden])');
  const id = (await page.textContent('#success-id')).trim();
  const rows = sql(A, `SELECT form, fields, lang FROM inquiries WHERE id = '${id}'`);
  check(rows.length === 1, `registration ${id} should be stored`);
  const fields = JSON.parse(rows[0].fields);
  check(rows[0].form === 'conference' && rows[0].lang === 'ru', `stored form and language: ${JSON.stringify(rows[0])}`);
  check(fields.session === 'Fintech workshop' && fields.guests === 2 && fields.arrival === '2026-05-31' &&
        fields.website === 'https://aliya.example.org' && fields.vegetarian === true,
        `stored custom values, typed: ${rows[0].fields}`);
  check(page.jsErrors.length === 0, `JavaScript errors: ${page.jsErrors.join('; ')}`);
  await page.screenshot({ path: join(SHOTS, 'event-registration-done.png'), fullPage: true });
  await page.context().close();
  return `rendered from the definition in Russian; errors by field; stored ${id} with ${rows[0].fields}`;
}

async function fieldErrorScenario({ P, A }) {
  const page = await newPage();
  const url = `${P.origin}/?api=${A.origin}`;
  await page.goto(url);
  await page.reload();
  const before = countInquiries(A);
  // Let the server, not the browser, judge the fields.
  await page.evaluate(() => { document.getElementById('contact').noValidate = true; });
  await fill(page, { ...VISITOR, email: 'not-an-email', subject: '' });
  await page.check('#consent');
  await page.click('#submit');
  await page.waitForFunction(() => document.getElementById('error-email').textContent.trim() !== '');
  for (const field of ['email', 'subject']) {
    const state = await page.evaluate((f) => ({
      error: document.getElementById(`error-${f}`).textContent.trim(),
      invalid: document.getElementById(f).getAttribute('aria-invalid'),
      describedby: document.getElementById(f).getAttribute('aria-describedby'),
    }), field);
    check(state.error !== '', `#error-${field} should show the server's message`);
    check(state.invalid === 'true', `#${field} should have aria-invalid="true", got ${state.invalid}`);
    check((state.describedby || '').split(/\s+/).includes(`error-${field}`), `#${field} should be described by #error-${field}`);
  }
  check((await page.getAttribute('#name', 'aria-invalid')) === null, 'a valid field should not be marked invalid');
  check((await page.textContent('#form-status')).trim() !== '', '#form-status should say that fields need correcting');
  check(await page.isHidden('#success'), 'no success message on a 422');
  check(countInquiries(A) === before, 'a 422 should store nothing');
  await page.screenshot({ path: join(SHOTS, 'errors.png'), fullPage: true });
  await page.setViewportSize({ width: 375, height: 800 }); // a phone
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, `the page should fit a 375 px wide screen (${overflow} px too wide)`);
  await page.screenshot({ path: join(SHOTS, 'errors-phone.png'), fullPage: true });
  await page.setViewportSize({ width: 820, height: 900 });

  // Corrected, the same fill goes through (the changed content gets a fresh Idempotency-Key).
  await fill(page, { email: 'anna@example.org', subject: 'Исправленная тема' });
  check((await page.getAttribute('#email', 'aria-invalid')) === null, 'editing a field should clear its error');
  await page.click('#submit');
  await page.waitForSelector('#success-id', { state: 'visible' });
  check(countInquiries(A) === before + 1, 'the corrected form should store one inquiry');
  check(page.jsErrors.length === 0, `JavaScript errors: ${page.jsErrors.join('; ')}`);
  await page.context().close();
  return 'email and subject errors shown next to their fields; corrected form accepted';
}

async function disallowedOriginScenario({ X, A }) {
  const page = await newPage();
  const before = countInquiries(A);
  await page.goto(`${X.origin}/?api=${A.origin}`);
  await fill(page, { ...VISITOR, subject: 'From a page A does not allow' });
  await page.check('#consent');
  await sleep(200);
  await page.click('#submit');
  await page.waitForFunction(() => document.getElementById('form-status').textContent.trim() !== '');
  const status = (await page.textContent('#form-status')).trim();
  check((await page.getAttribute('#form-status', 'role')) === 'alert', '#form-status should be role="alert"');
  check(await page.isHidden('#success'), 'no success message for a refused origin');
  check(await page.isVisible('#contact'), 'the form should stay visible');
  check((await page.inputValue('#name')) === VISITOR.name, 'what the visitor typed should still be there');
  check(!(await page.isDisabled('#submit')), 'the button should be enabled again');
  await sleep(300);
  check(countInquiries(A) === before, `server A should store nothing from a disallowed origin (${before} -> ${countInquiries(A)})`);
  await page.screenshot({ path: join(SHOTS, 'cors.png'), fullPage: true });
  check(page.jsErrors.length === 0, `JavaScript errors: ${page.jsErrors.join('; ')}`);
  await page.context().close();
  return `general error shown: "${status.slice(0, 60)}…"`;
}

async function noJavaScriptScenario({ P }) {
  const context = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 820, height: 700 } });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  const before = countInquiries(P);
  await page.goto(`${P.origin}/`);
  await fill(page, { ...VISITOR, subject: 'Без JavaScript 无脚本' });
  await page.check('#consent');
  await Promise.all([page.waitForURL(/\/thanks/), page.click('#submit')]);
  const text = await page.textContent('body');
  check(/Thank you/.test(text), `the plain post should land on the thank-you page, got: ${text.slice(0, 200)}`);
  const rows = sql(P, "SELECT id, name, subject, consent, page FROM inquiries ORDER BY seq DESC LIMIT 1");
  check(countInquiries(P) === before + 1 && rows.length === 1, 'the plain post should store one inquiry');
  check(rows[0].name === VISITOR.name && rows[0].subject === 'Без JavaScript 无脚本', `stored: ${JSON.stringify(rows[0])}`);
  check(rows[0].consent === 1, `a ticked checkbox should store consent, got ${rows[0].consent}`);
  check(text.includes(rows[0].id), 'the thank-you page should show the reference id');
  await page.screenshot({ path: join(SHOTS, 'nojs.png'), fullPage: true });
  await context.close();
  return `plain urlencoded post landed on ${new URL(page.url()).pathname}, inquiry ${rows[0].id} stored`;
}

// ---------------------------------------------------------------- main

async function main() {
  const guard = setTimeout(() => {
    console.error(`FAIL: the browser test did not finish within ${OVERALL_TIMEOUT_MS / 1000} s`);
    killAll('SIGKILL');
    process.exit(1);
  }, OVERALL_TIMEOUT_MS);
  guard.unref();

  check(existsSync(BIN), `no server binary at ${BIN} (build it with cargo build --bin inquiryd, or set INQUIRYD_BIN)`);
  check(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM} (apt-get install chromium)`);
  ensureSqlite3();
  mkdirSync(SHOTS, { recursive: true });

  // P posts its own page's form to itself: its origin is its public_url.
  const P = await startServer('P', { public: true });
  const A = await startServer('A', { allowedOrigins: [P.origin], extra: CONFERENCE });
  const X = await startServer('X');
  console.log(`servers: page P ${P.origin}, API A ${A.origin} (allows P), other page X ${X.origin}`);
  // The page is compiled into the binary: make sure it is the one in examples/.
  const served = await (await fetch(`${P.origin}/`)).text();
  check(served === readFileSync(join(ROOT, 'examples', 'contact-form.html'), 'utf8'),
    `${BIN} serves an older examples/contact-form.html at GET /: rebuild it (cargo build --bin inquiryd)`);

  browser = await launchChromium();

  const scenarios = [
    ['submit a Unicode inquiry cross-origin', successScenario],
    ['field errors from a 422', fieldErrorScenario],
    ['field errors in the browser\'s language (ru-RU)', russianFieldErrorScenario],
    ['the page in the browser\'s language (zh-CN)', chineseWordsScenario],
    ['the event registration page renders its form (ru-RU)', eventRegistrationScenario],
    ['origin not allowed by the API', disallowedOriginScenario],
    ['plain form post without JavaScript', noJavaScriptScenario],
  ];
  const { passed, failed } = await runScenarios(scenarios, { P, A, X });
  await browser.close();
  await stopAll();
  if (failed) {
    for (const s of servers) console.log(`--- server ${s.label} (${s.dir}) log tail:\n${s.log.slice(-3_000)}`);
  } else {
    for (const s of servers) rmSync(s.dir, { recursive: true, force: true });
  }
  console.log(`screenshots in ${SHOTS}`);
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0;
}

main().then(
  (ok) => process.exit(ok ? 0 : 1),
  async (e) => {
    console.error(`FAIL: ${e.message}`);
    try { if (browser) await browser.close(); } catch { /* ignore */ }
    killAll('SIGKILL');
    for (const s of servers) if (s.log) console.error(`--- server ${s.label} log tail:\n${s.log.slice(-3_000)}`);
    console.log('0 passed, 4 failed');
    process.exit(1);
  },
);
