// Shared set-up of the browser tests: a demo server of the real binary on a free port,
// Debian's Chromium driven by playwright-core, and helpers for the grading page.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const CHROMIUM_PATH = process.env.QUORUM_TEST_CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];
const SERVER_START_TIMEOUT_MS = 60_000;
/** How long a single page wait may take before the test fails with the selector it waited for. */
const WAIT_TIMEOUT_MS = 20_000;
const SCREENSHOT_DIR = fileURLToPath(new URL('./screenshots/', import.meta.url));

/**
 * Starts `$QUORUM_BIN demo` on a free port of 127.0.0.1 with a new data folder and reads the
 * demo accounts. Returns `{ baseUrl, passwords, stop }`, where `passwords` maps usernames to
 * passwords and `stop()` ends the server and deletes its data.
 */
export async function startDemoServer() {
  const binary = process.env.QUORUM_BIN;
  if (!binary) {
    throw new Error(
      'QUORUM_BIN is not set: run these tests through `cargo test --test browser`, or set it to a built quorum binary',
    );
  }
  const dataDir = await mkdtemp(join(tmpdir(), 'quorum-browser-'));
  const env = { ...process.env, RUST_LOG: 'warn' };
  // The server reads its settings from QUORUM_* variables too; keep the caller's out.
  for (const name of ['QUORUM_DATABASE_URL', 'QUORUM_ADDR', 'QUORUM_DATA_DIR']) {
    delete env[name];
  }
  const child = spawn(binary, ['--data-dir', dataDir, '--addr', '127.0.0.1:0', 'demo'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.on('exit', killOnExit);

  // The server logs to stderr; keep its end for the failure message, and keep reading so the
  // pipe never fills and blocks the server.
  let stderrTail = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    stderrTail = (stderrTail + chunk).slice(-8000);
  });

  let baseUrl;
  try {
    baseUrl = await new Promise((resolve, reject) => {
      let stdout = '';
      const timer = setTimeout(() => {
        reject(new Error(`the demo server printed no URL within ${SERVER_START_TIMEOUT_MS} ms\nstdout:\n${stdout}\nstderr:\n${stderrTail}`));
      }, SERVER_START_TIMEOUT_MS);
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (chunk) => {
        stdout += chunk;
        const match = /Open (http:\/\/127\.0\.0\.1:\d+)\/ in a browser/.exec(stdout);
        if (match) {
          clearTimeout(timer);
          resolve(match[1]);
        }
      });
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`the demo server exited early (code ${code}, signal ${signal})\nstdout:\n${stdout}\nstderr:\n${stderrTail}`));
      });
      child.on('error', (error) => {
        clearTimeout(timer);
        reject(new Error(`${binary} could not be started: ${error.message}`));
      });
    });
  } catch (error) {
    child.kill('SIGKILL');
    process.off('exit', killOnExit);
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }

  const credentials = await readFile(join(dataDir, 'demo-credentials.txt'), 'utf8');
  const passwords = new Map();
  for (const line of credentials.trim().split('\n')) {
    const [, username, password] = line.split(' ');
    passwords.set(username, password);
  }

  const stop = async () => {
    process.off('exit', killOnExit);
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dataDir, { recursive: true, force: true });
  };
  return { baseUrl, passwords, stop };
}

/**
 * Starts Chromium with a new, temporary profile. Returns `{ context, page, close }`; `close()`
 * ends the browser and deletes the profile.
 */
export async function openBrowser() {
  const profileDir = await mkdtemp(join(tmpdir(), 'quorum-chromium-'));
  const context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1400, height: 900 },
  });
  context.setDefaultTimeout(WAIT_TIMEOUT_MS);
  const page = context.pages()[0] ?? (await context.newPage());
  const errors = [];
  page.on('pageerror', (error) => errors.push(error.message));
  const close = async () => {
    await context.close();
    await rm(profileDir, { recursive: true, force: true });
  };
  return { context, page, close, errors };
}

/**
 * Runs `body`, and when it throws saves a screenshot of each named page to
 * `screenshots/<test name>[-<page name>].png` before rethrowing.
 */
export async function withScreenshots(testName, pages, body) {
  try {
    await body();
  } catch (error) {
    await mkdir(SCREENSHOT_DIR, { recursive: true });
    const base = testName.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
    for (const [pageName, page] of Object.entries(pages())) {
      const suffix = Object.keys(pages()).length > 1 ? `-${pageName}` : '';
      const path = join(SCREENSHOT_DIR, `${base}${suffix}.png`);
      try {
        await page.screenshot({ path, fullPage: true });
        console.error(`screenshot of the failed test: ${path}`);
      } catch (screenshotError) {
        console.error(`no screenshot of ${pageName}: ${screenshotError.message}`);
      }
    }
    throw error;
  }
}

/** Logs in through the login form and waits for the studies page. */
export async function logIn(page, baseUrl, username, password) {
  await page.goto(`${baseUrl}/login`);
  await page.fill('input[name="username"]', username);
  await page.fill('input[name="password"]', password);
  await Promise.all([page.waitForURL(`${baseUrl}/studies`), page.click('button[type="submit"]')]);
}

/**
 * Waits until the grading page shows an item other than `previousItemId`, with no request
 * running, and returns its id.
 */
export async function waitForItem(page, previousItemId = null) {
  const handle = await page.waitForFunction(
    (previous) => {
      const root = document.querySelector('#grading');
      if (!root || root.dataset.mode !== 'grading' || root.classList.contains('busy')) {
        return null;
      }
      return root.dataset.itemId !== String(previous) ? root.dataset.itemId : null;
    },
    previousItemId,
  );
  return Number(await handle.jsonValue());
}

/** The progress counters the page shows: `{ gradedToday, remaining }`. */
export async function readProgress(page) {
  const gradedToday = Number(await page.textContent('#graded-today'));
  const remaining = Number(await page.textContent('#remaining'));
  return { gradedToday, remaining };
}

/** Waits until the page shows `gradedToday` as the number graded today. */
export async function waitForGradedToday(page, gradedToday) {
  await page.waitForFunction((expected) => document.querySelector('#graded-today')?.textContent === String(expected), gradedToday);
}

/** Presses keys one after another, e.g. `pressKeys(page, '1', '3', 'Tab')`. */
export async function pressKeys(page, ...keys) {
  for (const key of keys) {
    await page.keyboard.press(key);
  }
}

/** Names of the form fields shown now, in form order. */
export async function visibleFieldNames(page) {
  return page.$$eval('#fields [data-field]:not([hidden])', (roots) => roots.map((root) => root.dataset.field));
}

/** The form's current answers: field name to checked option values. */
export async function checkedAnswers(page) {
  return page.$$eval('#fields [data-field]', (roots) =>
    Object.fromEntries(
      roots
        .map((root) => [root.dataset.field, [...root.querySelectorAll('input:checked')].map((input) => input.value)])
        .filter(([, values]) => values.length > 0),
    ),
  );
}

/** Records the JSON bodies of the grade submissions a page sends. */
export function recordGradeRequests(page) {
  const bodies = [];
  page.on('request', (request) => {
    if (request.method() === 'POST' && /\/items\/\d+\/grades$/.test(new URL(request.url()).pathname)) {
      bodies.push(request.postDataJSON());
    }
  });
  return bodies;
}

/** Calls the JSON API from the page, with the page's session cookie; returns `{ status, body }`. */
export async function fetchFromPage(page, path) {
  return page.evaluate(async (url) => {
    const response = await fetch(url, { credentials: 'same-origin' });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : null };
  }, path);
}

/** Logs in through the API and returns request headers carrying the bearer token. */
export async function apiHeaders(server, username) {
  const response = await fetch(`${server.baseUrl}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password: server.passwords.get(username) }),
  });
  assert.equal(response.status, 200, `login of ${username}`);
  const { token } = await response.json();
  return { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
}

/** Sends one request to `/api/v1{path}`, checks its status and returns the JSON body (null when empty). */
export async function apiRequest(server, headers, method, path, body, expectedStatus) {
  const response = await fetch(`${server.baseUrl}/api/v1${path}`, { method, headers, body });
  const text = await response.text();
  assert.equal(response.status, expectedStatus, `${method} ${path} answered ${response.status}: ${text}`);
  return text ? JSON.parse(text) : null;
}

/** Answers of a gradable image with this DR severity, no DME and microaneurysms only; `lesions` overrides lesion answers. */
export function gradableAnswers(severity, lesions = {}) {
  return {
    gradability: 'gradable',
    dr_severity: severity,
    dme: 'absent',
    microaneurysms: 'yes',
    haemorrhages: 'no',
    hard_exudates: 'no',
    cotton_wool_spots: 'no',
    new_vessels: 'no',
    ...lesions,
  };
}
