// Headless-browser test of examples/internship.html (a CV upload) against the real
// inquiryd binary, with JavaScript (FormData, progress bar, field errors) and without
// (a plain multipart form post, answered with a redirect or an HTML error page).
//
//   node tests/browser/uploads.test.mjs      (or tests/browser/run.sh)
//
// Prints "N passed, M failed" last; exits non-zero on failure.

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync, readFileSync, readdirSync, rmSync, existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, ROOT, SHOTS, check, freePort, launchChromium, runScenarios, sqlite } from './harness.mjs';


// The form exactly as the example page documents it in its opening comment (the
// indented lines after "The form is configuration"), so the test proves the
// documented configuration works.
const PAGE = readFileSync(join(ROOT, 'examples', 'internship.html'), 'utf8');
const FORM = PAGE.split('The form is configuration')[1].split('-->')[0]
  .split('\n').filter((line) => line.startsWith('    ')).map((line) => line.trim()).join('\n') + '\n';
if (!FORM.includes('[forms.internships]') || !FORM.includes('type = "file"')) {
  throw new Error(`examples/internship.html no longer documents its form:\n${FORM}`);
}

let server = null;
let browser = null;

async function startServer() {
  const dir = mkdtempSync(join(tmpdir(), 'inquiryd-browser-uploads-'));
  const config = join(dir, 'inquiryd.toml');
  const port = await freePort();
  writeFileSync(config, `[server]
host = "127.0.0.1"
port = ${port}
public_url = "http://127.0.0.1:${port}"
demo_page = true
[database]
url = "sqlite://${dir}/inquiries.db"
[storage]
files_dir = "${dir}/files"
[mail]
transport = "file"
file_dir = "${dir}/mail"
[limits]
per_ip_per_minute = 100000
per_ip_burst = 100000
per_email_per_hour = 100000
${FORM}`);
  const child = spawn(BIN, ['--config', config, 'serve'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const s = { dir, config, child, log: '' };
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => { s.log = (s.log + d).slice(-20_000); });
  child.stdout.setEncoding('utf8');
  s.port = await new Promise((done, fail) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error('the server printed no listen address within 20 s')), 20_000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/inquiryd listening on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) { clearTimeout(timer); done(Number(m[1])); }
    });
    child.on('exit', (code) => { clearTimeout(timer); fail(new Error(`the server exited (${code}):\n${s.log}`)); });
  });
  s.origin = `http://127.0.0.1:${s.port}`;
  return s;
}

process.on('exit', () => { if (server) try { server.child.kill('SIGKILL'); } catch { /* gone */ } });

const sql = (query) => sqlite(join(server.dir, 'inquiries.db'), query);

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');
const storedFiles = () => readdirSync(join(server.dir, 'files')).sort();

/** A PDF-looking file of `size` bytes, unique to `seed`. */
function pdf(seed, size) {
  const head = Buffer.from(`%PDF-1.7\n% ${seed}\n`);
  const body = Buffer.alloc(size - head.length, seed.charCodeAt(0));
  return Buffer.concat([head, body]);
}

async function newPage(javaScriptEnabled) {
  const context = await browser.newContext({ viewport: { width: 820, height: 900 }, javaScriptEnabled });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  page.jsErrors = [];
  page.on('pageerror', (e) => page.jsErrors.push(e.message));
  return page;
}

async function fillApplicant(page, message) {
  await page.fill('#name', 'Aigerim Bekova');
  await page.fill('#email', 'aigerim@example.org');
  await page.fill('#message', message);
}

async function withJavaScript() {
  const page = await newPage(true);
  await page.goto(`${server.origin}/internship`);
  // The progress bar's highest value while the upload runs.
  await page.evaluate(() => {
    window.__progress = [];
    const bar = document.getElementById('progress');
    new MutationObserver(() => window.__progress.push(Number(bar.value))).observe(bar, { attributes: true });
  });
  await fillApplicant(page, 'With JavaScript: a 3 MB CV and a progress bar.');
  const cv = pdf('js', 3 * 1024 * 1024);
  await page.setInputFiles('#cv', { name: 'Résumé «2026» <script>.pdf', mimeType: 'application/pdf', buffer: cv });
  await page.click('#submit');
  await page.waitForSelector('#status .ok');
  const status = await page.textContent('#status');
  const id = status.match(/reference ([0-9a-f-]{36})/)?.[1];
  check(id, `no reference in ${JSON.stringify(status)}`);
  check(page.url() === `${server.origin}/internship`, 'the page navigated away: JavaScript did not send it');
  const progress = await page.evaluate(() => window.__progress);
  check(progress.length > 0 && Math.max(...progress) === 100, `progress never reached 100: ${JSON.stringify(progress)}`);
  const [row] = sql(`SELECT fields FROM inquiries WHERE id = '${id}'`);
  const [file] = JSON.parse(row.fields).cv;
  check(file.name === 'Résumé «2026» <script>.pdf' && file.size === cv.length && file.type === 'application/pdf',
    `stored as ${JSON.stringify(file)}`);
  check(file.sha256 === sha256(cv) && storedFiles().includes(sha256(cv)), 'the bytes on disk are not the ones sent');
  await page.screenshot({ path: join(SHOTS, 'internship-js.png') });
  check(page.jsErrors.length === 0, `script errors: ${page.jsErrors.join('; ')}`);
  return `inquiry ${id}, ${progress.length} progress updates`;
}

async function refusedWithJavaScript() {
  const page = await newPage(true);
  await page.goto(`${server.origin}/internship`);
  await fillApplicant(page, 'An HTML page pretending to be a PNG.');
  const before = storedFiles().length;
  await page.setInputFiles('#cv', { name: 'cv.png', mimeType: 'image/png', buffer: Buffer.from('<html><script>alert(1)</script></html>') });
  await page.click('#submit');
  await page.waitForSelector('#cv-error:not([hidden])');
  const error = await page.textContent('#cv-error');
  check(/not a type of file/.test(error), `the CV's error reads ${JSON.stringify(error)}`);
  check((await page.getAttribute('#cv', 'aria-invalid')) === 'true', 'the file input is not marked invalid');
  check(storedFiles().length === before, 'a refused file was kept');
  await page.screenshot({ path: join(SHOTS, 'internship-refused.png') });
  return error;
}

async function withoutJavaScript() {
  const page = await newPage(false);
  await page.goto(`${server.origin}/internship`);
  await fillApplicant(page, 'Without JavaScript: a plain multipart post.');
  const cv = pdf('nojs', 200_000);
  await page.setInputFiles('#cv', { name: '../../etc/passwd', mimeType: 'application/pdf', buffer: cv });
  await Promise.all([page.waitForNavigation(), page.click('#submit')]);
  const url = new URL(page.url());
  check(url.pathname === '/thanks', `the post led to ${page.url()}`);
  const id = url.searchParams.get('id');
  const [row] = sql(`SELECT fields FROM inquiries WHERE id = '${id}'`);
  const [file] = JSON.parse(row.fields).cv;
  check(file.name === 'passwd' && file.sha256 === sha256(cv), `stored as ${JSON.stringify(file)}`);
  check(existsSync(join(server.dir, 'files', sha256(cv))), 'the file is not in files_dir');
  // And a missing CV without JavaScript: the HTML error page names it.
  await page.goto(`${server.origin}/internship`);
  await fillApplicant(page, 'No CV this time.');
  await Promise.all([page.waitForNavigation(), page.click('#submit')]);
  const text = await page.textContent('body');
  check(/CV is required/.test(text), `the error page reads ${JSON.stringify(text.slice(0, 300))}`);
  await page.screenshot({ path: join(SHOTS, 'internship-nojs-error.png') });
  // A file over max_bytes: the browser, still sending, gets the error page (not a reset).
  await page.goto(`${server.origin}/internship`);
  await fillApplicant(page, 'A CV that is too large.');
  await page.setInputFiles('#cv', { name: 'huge.pdf', mimeType: 'application/pdf', buffer: pdf('huge', 11 * 1024 * 1024) });
  await Promise.all([page.waitForNavigation(), page.click('#submit')]);
  const tooLarge = await page.textContent('body');
  check(/CV must be at most 10485760 bytes per file/.test(tooLarge), `the error page reads ${JSON.stringify(tooLarge.slice(0, 300))}`);
  return `inquiry ${id}`;
}

async function main() {
  mkdirSync(SHOTS, { recursive: true });
  server = await startServer();
  const served = await (await fetch(`${server.origin}/internship`)).text();
  check(served === PAGE,
    `${BIN} serves an older examples/internship.html: rebuild it (cargo build --bin inquiryd)`);
  browser = await launchChromium();
  const scenarios = [
    ['upload with JavaScript and a progress bar', withJavaScript],
    ['an HTML file declared as PNG is refused next to the field', refusedWithJavaScript],
    ['upload without JavaScript (plain multipart post)', withoutJavaScript],
  ];
  const { passed, failed } = await runScenarios(scenarios);
  await browser.close();
  server.child.kill('SIGTERM');
  if (failed) console.log(`--- server (${server.dir}) log tail:\n${server.log.slice(-3_000)}`);
  else rmSync(server.dir, { recursive: true, force: true });
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0;
}

main().then(
  (ok) => process.exit(ok ? 0 : 1),
  async (e) => {
    console.error(`FAIL: ${e.message}`);
    try { if (browser) await browser.close(); } catch { /* ignore */ }
    if (server) console.error(`--- server log tail:\n${server.log.slice(-3_000)}`);
    console.log('0 passed, 3 failed');
    process.exit(1);
  },
);
