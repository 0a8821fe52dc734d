// The standalone server's playground (`/`, app/playground) in a real headless Chromium, driven like a person:
//
//   BASE_URL=http://127.0.0.1:8000 TOKEN=test-token node playground.mjs
//
// The server must run the mock provider with CHAT_APPROVAL_TOOLS=getWeather. Scenarios, one page:
//
//   send        type a message, Send: the answer (reasoning, then text) streams in; the model picker lists /api/models; the
//               conversation appears in the list; Regenerate replaces the answer
//   reload      reload the page in the middle of an answer: the page resumes its stream (useChat `resume`)
//   approve     a tool call waiting for approval: Approve, the tool runs and the answer continues
//   deny        the same, Deny: the call is denied and the answer continues
//   error       an answer that fails mid-stream: its error is shown, with the text produced before it
//   stop        Stop in the middle of an answer, then a new message: it is answered
//
// Prints one JSON object on stdout: per scenario what the page showed (texts, tool states, errors, thread id),
// plus console errors, page errors, refused requests and every origin the page fetched from;
// tests/e2e/test_playground.py asserts on it. Exit 1 if the browser or a
// wait failed (the JSON then says where). SCREENSHOT_DIR=<dir> saves a PNG when a scenario fails.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const BASE_URL = process.env.BASE_URL ?? 'http://127.0.0.1:8000';
const TOKEN = process.env.TOKEN ?? 'test-token';
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const TIMEOUT_MS = Number(process.env.BROWSER_TIMEOUT_MS ?? '20000');
const SCREENSHOT_DIR = process.env.SCREENSHOT_DIR;
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'];

const report = { scenarios: {}, console: [], pageErrors: [], refused: [], origins: new Set() };

const wait = (page, fn, arg) => page.waitForFunction(fn, arg, { timeout: TIMEOUT_MS, polling: 25 });

/** What the page shows: every message's role and text, the tool parts' states, the error, the thread id. */
const shown = (page) =>
  page.evaluate(() => ({
    status: document.body.dataset.status,
    thread: document.querySelector('[data-testid=thread]')?.textContent ?? null,
    messages: [...document.querySelectorAll('[data-role]')].map((m) => ({
      role: m.dataset.role,
      id: m.dataset.id,
      text: [...m.querySelectorAll('.text')].map((t) => t.textContent).join(''),
      tools: [...m.querySelectorAll('[data-testid=tool]')].map((t) => t.dataset.state),
      reasoning: [...m.querySelectorAll('.reasoning')].map((r) => r.textContent.replace(/^Reasoning/, '')).join(''),
    })),
    error: document.querySelector('[data-testid=error]')?.textContent ?? null,
    conversations: [...document.querySelectorAll('[data-testid=conversations] a')].map((a) => a.dataset.id),
    models: [...document.querySelectorAll('[data-testid=model] option')].map((o) => o.value),
  }));

const assistants = () => [...document.querySelectorAll('[data-role=assistant]')];
const lastText = () => {
  const all = [...document.querySelectorAll('[data-role=assistant]')];
  return all.length ? [...all.at(-1).querySelectorAll('.text')].map((t) => t.textContent).join('') : '';
};

async function settled(page, assistantCount) {
  await wait(
    page,
    (n) => document.body.dataset.status !== 'submitted' && document.body.dataset.status !== 'streaming' &&
      document.querySelectorAll('[data-role=assistant]').length >= n,
    assistantCount,
  );
}

async function send(page, text) {
  await wait(page, () => !document.querySelector('[data-testid=send]')?.disabled);
  await page.fill('[data-testid=input]', text);
  await page.click('[data-testid=send]');
}

async function newChat(page) {
  const before = await page.textContent('[data-testid=thread]');
  await page.click('[data-testid=new-chat]');
  await wait(page, (old) => document.querySelector('[data-testid=thread]')?.textContent !== old &&
    document.body.dataset.status === 'ready', before);
}

const scenarios = {
  async send(page) {
    await send(page, 'mock:tokens=5 mock:reasoning');
    await settled(page, 1);
    await wait(page, () => document.querySelectorAll('[data-testid=conversations] a').length > 0);
    const first = await shown(page);
    const answered = first.messages.at(-1).id;
    await page.click('[data-testid=regenerate]');
    await wait(page, (old) => {
      const all = [...document.querySelectorAll('[data-role=assistant]')];
      return all.length === 1 && all[0].dataset.id !== old && document.body.dataset.status === 'ready';
    }, answered);
    return { first, regenerated: await shown(page) };
  },

  async reload(page) {
    await newChat(page);
    await send(page, 'mock:tokens=60 mock:delay=40');
    await wait(page, () => {
      const all = [...document.querySelectorAll('[data-role=assistant]')];
      return all.length === 1 && all[0].textContent.split(' ').length > 6;
    });
    const before = await shown(page);
    await page.reload({ waitUntil: 'load' });
    await wait(page, () => document.body.dataset.status === 'streaming' || document.body.dataset.status === 'ready');
    const midway = await page.evaluate(lastText);
    await settled(page, 1);
    await wait(page, () => document.body.dataset.status === 'ready');
    return { before, midway, after: await shown(page) };
  },

  async approve(page) {
    return decide(page, 'approve');
  },

  async deny(page) {
    return decide(page, 'deny');
  },

  async error(page) {
    await newChat(page);
    await send(page, 'mock:tokens=20 mock:fail=5');
    await wait(page, () => document.querySelector('[data-testid=error]') !== null);
    return await shown(page);
  },

  async stop(page) {
    await newChat(page);
    await send(page, 'mock:tokens=300 mock:delay=30');
    await wait(page, () => {
      const all = [...document.querySelectorAll('[data-role=assistant]')];
      return all.length === 1 && all[0].textContent.split(' ').length > 4;
    });
    await page.click('[data-testid=stop]');
    await wait(page, () => document.body.dataset.status === 'ready');
    const stopped = await shown(page);
    await send(page, 'mock:tokens=3');
    await wait(page, () => document.querySelectorAll('[data-role=user]').length === 2);
    await settled(page, 2);
    return { stopped, after: await shown(page) };
  },
};

async function decide(page, button) {
  await newChat(page);
  await send(page, 'mock:tool=getWeather mock:args={"city":"Paris"}');
  await page.waitForSelector(`[data-testid=${button}]`, { timeout: TIMEOUT_MS });
  const requested = await shown(page);
  await page.click(`[data-testid=${button}]`);
  await wait(page, () => {
    const tool = document.querySelector('[data-testid=tool]');
    return tool && !['approval-requested', 'approval-responded'].includes(tool.dataset.state) &&
      document.body.dataset.status === 'ready';
  });
  return { requested, decided: await shown(page) };
}

const userDataDir = await mkdtemp(join(tmpdir(), 'chatstream-playground-'));
let context;
let exitCode = 0;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    timeout: TIMEOUT_MS,
  });
  report.chromium = context.browser()?.version() ?? null;
  const page = await context.newPage();
  page.on('console', (m) => m.type() === 'error' && report.console.push(m.text()));
  page.on('pageerror', (e) => report.pageErrors.push(String(e?.stack ?? e)));
  page.on('request', (r) => report.origins.add(new URL(r.url()).origin));
  page.on('response', (r) => r.status() >= 400 && report.refused.push(`${r.status()} ${r.request().method()} ${r.url()}`));
  await page.goto(`${BASE_URL}/?token=${encodeURIComponent(TOKEN)}`, { waitUntil: 'load', timeout: TIMEOUT_MS });
  await wait(page, () => document.body.dataset.status === 'ready');
  for (const [name, run] of Object.entries(scenarios)) {
    try {
      report.scenarios[name] = await run(page);
    } catch (error) {
      exitCode = 1;
      report.scenarios[name] = { failed: String(error?.message ?? error), page: await shown(page).catch(() => null) };
      if (SCREENSHOT_DIR) await page.screenshot({ path: join(SCREENSHOT_DIR, `playground-${name}.png`) }).catch(() => {});
      break;
    }
  }
} catch (error) {
  report.harness = String(error?.stack ?? error);
  exitCode = 1;
} finally {
  await context?.close().catch(() => {});
  await rm(userDataDir, { recursive: true, force: true });
}
console.log(JSON.stringify({ ...report, origins: [...report.origins] }));
process.exit(exitCode);
