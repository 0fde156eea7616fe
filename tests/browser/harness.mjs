// What the browser tests share: where things are, Chromium, a free port, and
// the loop that runs the scenarios and prints "N passed, M failed" last.

import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = resolve(ROOT, process.env.INQUIRYD_BIN || 'target/debug/inquiryd');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const SHOTS = join(ROOT, 'target', 'browser');

export function check(condition, message) {
  if (!condition) throw new Error(message);
}

/** A free loopback port, for a server that must know its own URL (server.public_url). */
export function freePort() {
  return new Promise((done, fail) => {
    const probe = createServer();
    probe.once('error', fail);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => done(port));
    });
  });
}

/** Debian's Chromium, headless, without anything that talks to the network on its own. */
export function launchChromium() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** Runs each `[name, run]` in turn (`run(context)` returns a note); one failing does not stop the rest. */
export async function runScenarios(scenarios, context) {
  let passed = 0;
  let failed = 0;
  for (const [name, run] of scenarios) {
    const t0 = Date.now();
    try {
      const note = await run(context);
      passed++;
      console.log(`ok   ${name} (${Date.now() - t0} ms): ${note}`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${name} (${Date.now() - t0} ms): ${e.message}`);
    }
  }
  return { passed, failed };
}

/** The rows a query returns from a SQLite database file (the sqlite3 tool, JSON out). */
export function sqlite(db, query) {
  const r = spawnSync('sqlite3', ['-json', '-cmd', '.timeout 5000', db, query], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`sqlite3 on ${db}: ${r.stderr.trim()}`);
  return r.stdout.trim() ? JSON.parse(r.stdout) : [];
}
