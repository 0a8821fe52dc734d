// The AI SDK client in a real headless Chromium, on another origin than the chat server's.
//
//   CHAT_API=http://127.0.0.1:8000/chat/api/chat TOKEN=test-token \
//   ALLOWED_PAGE=http://127.0.0.1:5173/ DENIED_PAGE=http://127.0.0.1:5174/ node browser.mjs
//
// The pages are served by `browser/serve.mjs` (page.html, and page.js bundled with the `ai` package); the
// server must allow ALLOWED_PAGE's origin (CHAT_CORS_ORIGINS) and not DENIED_PAGE's. Chromium (CHROMIUM,
// default /usr/bin/chromium) runs headless with a fresh profile, driven by playwright-core:
//
//   allowed  the page sends PROMPT (default `mock:tokens=5`) through DefaultChatTransport, reads the answer and
//            the exposed X-Thread-Id, then transport.reconnectToStream for that thread;
//   denied   the same send from the other origin: it must reject (the browser's CORS check).
//
// Prints one JSON object on stdout: {chromium, allowed, denied}, each page's result as the page wrote it into
// its DOM (#result) with its status, console messages, page errors and failed requests. Asserting on it is
// the caller's job (tests/e2e/test_browser_cross_origin.py). Exit 0 once both pages finished (`done` or
// `error`), 1 if the browser could not run them. SCREENSHOT_DIR=<dir> saves a PNG of each page.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) {
    console.error(`browser.mjs: ${name} is not set`);
    process.exit(2);
  }
  return value;
};
const CHROMIUM = env('CHROMIUM', '/usr/bin/chromium');
const CHAT_API = env('CHAT_API');
const TOKEN = env('TOKEN', 'test-token');
const ALLOWED_PAGE = env('ALLOWED_PAGE');
const DENIED_PAGE = env('DENIED_PAGE');
const PROMPT = env('PROMPT', 'mock:tokens=5');
const RUN = env('RUN', `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`);
const TIMEOUT_MS = Number(env('BROWSER_TIMEOUT_MS', '60000'));
const SCREENSHOT_DIR = process.env.SCREENSHOT_DIR;

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

async function runPage(context, name, base, query) {
  const page = await context.newPage();
  const consoleMessages = [];
  const pageErrors = [];
  const failedRequests = [];
  page.on('console', (m) => consoleMessages.push({ type: m.type(), text: m.text() }));
  page.on('pageerror', (e) => pageErrors.push(String(e?.stack ?? e)));
  page.on('requestfailed', (r) =>
    failedRequests.push({ method: r.method(), url: r.url(), error: r.failure()?.errorText ?? null }),
  );
  const url = `${base}?${new URLSearchParams(query)}`;
  const started = Date.now();
  let status;
  try {
    await page.goto(url, { waitUntil: 'load', timeout: TIMEOUT_MS });
    await page.waitForFunction(() => document.body.dataset.status !== 'running', null, { timeout: TIMEOUT_MS });
    status = await page.evaluate(() => document.body.dataset.status);
  } catch (error) {
    status = `harness: ${error?.message ?? error}`;
  }
  const raw = await page
    .locator('#result')
    .textContent()
    .catch(() => '');
  let result = null;
  try {
    result = raw ? JSON.parse(raw) : null;
  } catch {
    result = { unparsable: raw };
  }
  if (SCREENSHOT_DIR) await page.screenshot({ path: join(SCREENSHOT_DIR, `browser-${name}.png`) }).catch(() => {});
  await page.close();
  return {
    url,
    chatId: query.chatId,
    status,
    ms: Date.now() - started,
    result,
    console: consoleMessages,
    pageErrors,
    failedRequests,
  };
}

const userDataDir = await mkdtemp(join(tmpdir(), 'chatstream-chromium-'));
let context;
let exitCode = 0;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    timeout: TIMEOUT_MS,
  });
  const version = context.browser()?.version() ?? null;
  const common = { api: CHAT_API, token: TOKEN, prompt: PROMPT };
  const allowed = await runPage(context, 'allowed', ALLOWED_PAGE, {
    ...common,
    chatId: `browser-${RUN}`,
    mode: 'chat',
  });
  const denied = await runPage(context, 'denied', DENIED_PAGE, {
    ...common,
    chatId: `browser-denied-${RUN}`,
    mode: 'denied',
  });
  console.log(JSON.stringify({ chromium: version, allowed, denied }));
} catch (error) {
  console.error(`browser.mjs: ${error?.stack ?? error}`);
  exitCode = 1;
} finally {
  await context?.close().catch(() => {});
  await rm(userDataDir, { recursive: true, force: true });
}
process.exit(exitCode);
