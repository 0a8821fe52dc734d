// AI SDK UI message stream conformance: the real `ai` client against a running chat server.
//
//   BASE_URL=http://127.0.0.1:8000 TOKEN=demo-token CHECKS=basic,resume,unknown node conformance.mjs
//
// CHECKS (comma list, default `basic,resume,unknown,errors`):
//   basic     DefaultChatTransport.sendMessages + readUIMessageStream: chunks, headers, assembled message
//   resume    abort mid-stream, transport.reconnectToStream replays from `start`; headless Chat.resumeStream;
//             reconnect again after completion (within the TTL) replays fully
//   unknown   reconnectToStream for an unknown chat id resolves to null (HTTP 204)
//   errors    a provider failure mid-answer: an `error` chunk, [DONE], Chat status `error`, partial text kept
//   datapart  the assembled message holds ONE data-conversation part (title updates replace it by `id`)
//   tools     a server-executed tool call (getWeather, no approval) through the headless Chat
//   documents a chat asking for an essay: the mock calls createDocument, whose nested generation streams as
//             transient data parts; the Chat is given `dataPartSchemas` for every data part the server sends
//             (the SDK validates each against it), `onData` receives data-kind, data-id, data-title,
//             data-clear, data-textDelta... in order, data-finish; none of them is in the assembled message;
//             GET /api/document?id= holds the concatenated deltas as the document's content
//   approval  server started with CHAT_APPROVAL_TOOLS=getWeather: approval-requested, then
//             Chat.addToolApprovalResponse + sendAutomaticallyWhen continues the SAME assistant message;
//             also a denial
//   sources   server started with its web_search on the fake web (WEB_URL, tests/fakes/web.py): a search run
//             twice in one answer; each result is ONE source-url part {sourceId, url, title} in the message
//   regenerate, edit, stopsend
//             the conversation lifecycle against a server on the fake OpenAI upstream (FAKE_URL, FAKE_NS):
//             Chat.regenerate(), an edit of an earlier user message (sendMessage with its messageId), and
//             Chat.stop() then an immediate send. Each asserts the stored conversation afterwards (one answer
//             per turn, the ids the client shows) and what the upstream's last request contained.
//
// Every response body is tapped before the SDK reads it: every SSE frame is validated with the SDK's own
// parser (`parseJsonEventStream`) and chunk schema (`uiMessageChunkSchema`), and the chunk sequence is
// checked for protocol order. CONFORMANCE_VERBOSE=1 prints every HTTP exchange. Exit 0 when every check passes, 1 otherwise (with a diff and the chunk trace).

import { isDeepStrictEqual } from 'node:util';
import {
  AbstractChat,
  DefaultChatTransport,
  UI_MESSAGE_STREAM_HEADERS,
  isToolUIPart,
  lastAssistantMessageIsCompleteWithApprovalResponses,
  parseJsonEventStream,
  readUIMessageStream,
  uiMessageChunkSchema,
} from 'ai';
import { z } from 'zod';

const BASE_URL = (process.env.BASE_URL ?? 'http://127.0.0.1:8000').replace(/\/$/, '');
const TOKEN = process.env.TOKEN ?? 'demo-token';
const CHECKS = (process.env.CHECKS ?? 'basic,resume,unknown,errors')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
const TOTAL_TIMEOUT_MS = Number(process.env.CONFORMANCE_TIMEOUT_MS ?? 50_000);
const KNOWN_CHECKS = [
  'basic',
  'resume',
  'unknown',
  'errors',
  'datapart',
  'tools',
  'documents',
  'approval',
  'sources',
  'regenerate',
  'edit',
  'stopsend',
];
const FAKE_URL = (process.env.FAKE_URL ?? '').replace(/\/$/, '');
const FAKE_NS = process.env.FAKE_NS ?? '';
const WEB_URL = (process.env.WEB_URL ?? '').replace(/\/$/, '');
const RUN = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;

// ---------------------------------------------------------------------------------------------------------
// Failure reporting

class CheckFailure extends Error {}

function fail(message) {
  throw new CheckFailure(message);
}

function ok(condition, message) {
  if (!condition) fail(message);
}

/** Line diff (LCS) of two texts, `-` expected, `+` actual. */
function lineDiff(expected, actual) {
  const a = expected.split('\n');
  const b = actual.split('\n');
  const n = a.length;
  const m = b.length;
  const lcs = Array.from({ length: n + 1 }, () => new Array(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--)
      lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  const out = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      out.push(`  ${a[i]}`);
      i++;
      j++;
    } else if (j < m && (i >= n || lcs[i][j + 1] >= lcs[i + 1][j])) {
      out.push(`+ ${b[j++]}`);
    } else {
      out.push(`- ${a[i++]}`);
    }
  }
  return out.join('\n');
}

function show(value) {
  return typeof value === 'string' ? value : JSON.stringify(value, null, 2) ?? String(value);
}

function expectEqual(label, actual, expected) {
  if (isDeepStrictEqual(actual, expected)) return;
  let detail;
  if (typeof actual === 'string' && typeof expected === 'string') {
    let k = 0;
    while (k < actual.length && k < expected.length && actual[k] === expected[k]) k++;
    detail =
      `  expected: ${JSON.stringify(expected)}\n  actual:   ${JSON.stringify(actual)}\n` +
      `  first difference at index ${k}: expected ${JSON.stringify(expected.slice(k, k + 20))}, ` +
      `got ${JSON.stringify(actual.slice(k, k + 20))}`;
  } else {
    detail = `  diff (- expected, + actual):\n${lineDiff(show(expected), show(actual))
      .split('\n')
      .map((l) => `    ${l}`)
      .join('\n')}`;
  }
  fail(`${label}\n${detail}`);
}

// ---------------------------------------------------------------------------------------------------------
// Recording fetch: tap every response body and validate it with the SDK's parser and chunk schema

/** @type {Array<Exchange>} */
const exchanges = [];

/**
 * @typedef {{
 *   label: string, method: string, url: string, requestBody: any, status?: number,
 *   headers?: Record<string, string>, raw: string, aborted: boolean, finished: Promise<void>,
 *   chunks: any[], invalid: Array<{raw: any, error: string}>, frames: string[][], done: boolean,
 *   afterDone: boolean, framingProblems: string[]
 * }} Exchange
 */

let currentLabel = 'setup';

async function recordingFetch(url, init = {}) {
  const ex = {
    label: currentLabel,
    method: init.method ?? 'GET',
    url: String(url),
    requestBody: typeof init.body === 'string' ? JSON.parse(init.body) : undefined,
    raw: '',
    aborted: false,
    finished: Promise.resolve(),
    chunks: [],
    invalid: [],
    frames: [],
    done: false,
    afterDone: false,
    framingProblems: [],
  };
  exchanges.push(ex);
  const res = await fetch(url, init);
  ex.status = res.status;
  ex.headers = Object.fromEntries(res.headers);
  if (res.body == null || [101, 204, 205, 304].includes(res.status)) return res;
  const [forSdk, forTap] = res.body.tee();
  ex.finished = tap(ex, forTap);
  return new Response(forSdk, { status: res.status, statusText: res.statusText, headers: res.headers });
}

async function tap(ex, stream) {
  const decoder = new TextDecoder();
  const reader = stream.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      ex.raw += decoder.decode(value, { stream: true });
    }
    ex.raw += decoder.decode();
  } catch {
    ex.aborted = true;
  }
  analyseFraming(ex);
  // The SDK's own SSE parser and chunk schema, on exactly the bytes the server sent.
  const parsed = parseJsonEventStream({ stream: new Response(ex.raw).body, schema: uiMessageChunkSchema });
  const reader2 = parsed.getReader();
  try {
    for (;;) {
      const { value, done } = await reader2.read();
      if (done) break;
      if (value.success) ex.chunks.push(value.value);
      else ex.invalid.push({ raw: value.rawValue, error: summariseSchemaError(value.error) });
    }
  } catch (error) {
    // A torn last frame of an aborted stream is not the server's fault.
    if (!ex.aborted) ex.invalid.push({ raw: null, error: `parser: ${error}` });
  }
}

/** The zod union error, reduced to the branch for the chunk's own `type` (or "unknown type"). */
function summariseSchemaError(error) {
  const issues = error?.cause?.issues;
  if (!Array.isArray(issues)) return String(error?.message ?? error).slice(0, 300);
  const out = [];
  for (const issue of issues) {
    if (issue.code === 'invalid_union' && Array.isArray(issue.errors)) {
      const branch = issue.errors.find((b) => !b.some((i) => i.path?.[0] === 'type'));
      if (!branch) out.push('no chunk type of uiMessageChunkSchema matches this `type`');
      else for (const i of branch) out.push(`${i.path.join('.') || '(root)'}: ${i.message}`);
    } else {
      out.push(`${(issue.path ?? []).join('.') || '(root)'}: ${issue.message}`);
    }
  }
  return out.join('; ');
}

/** SSE framing as the protocol page states it: `data: <json>` per event, `id:`/comments allowed, `[DONE]` last. */
function analyseFraming(ex) {
  const text = ex.raw.replace(/\r\n?/g, '\n');
  const events = text.split('\n\n');
  const tail = events.pop(); // after the last blank line: must be empty for a complete stream
  if (tail !== '' && !ex.aborted) ex.framingProblems.push(`stream does not end with a blank line: ${JSON.stringify(tail)}`);
  for (const event of events) {
    if (event === '') continue;
    const lines = event.split('\n');
    const data = [];
    for (const line of lines) {
      if (line.startsWith(':')) continue;
      const field = line.includes(':') ? line.slice(0, line.indexOf(':')) : line;
      if (field === 'data') data.push(line.slice(5).replace(/^ /, ''));
      else if (field !== 'id' && field !== 'event' && field !== 'retry')
        ex.framingProblems.push(`unexpected SSE line ${JSON.stringify(line)}`);
      if (field === 'event') ex.framingProblems.push(`named event (the AI SDK ignores nothing, but expects none): ${line}`);
    }
    if (data.length === 0) continue; // comment / ping
    if (data.length > 1) ex.framingProblems.push(`event with ${data.length} data lines: ${JSON.stringify(event)}`);
    ex.frames.push(data);
    if (ex.done) ex.afterDone = true;
    if (data.join('\n') === '[DONE]') ex.done = true;
  }
  if (ex.afterDone) ex.framingProblems.push('frames after data: [DONE]');
}

function describeExchange(ex) {
  const lines = [`--- ${ex.label}: ${ex.method} ${ex.url} -> ${ex.status}${ex.aborted ? ' (aborted by client)' : ''}`];
  if (ex.requestBody !== undefined) lines.push(`request body: ${JSON.stringify(ex.requestBody).slice(0, 2000)}`);
  if (ex.headers) lines.push(`response headers: ${JSON.stringify(ex.headers)}`);
  const raw = ex.raw.length > 6000 ? `${ex.raw.slice(0, 3000)}\n[... ${ex.raw.length - 6000} chars ...]\n${ex.raw.slice(-3000)}` : ex.raw;
  if (raw) lines.push(`raw body:\n${raw}`);
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------------------
// Protocol checks on one exchange

const UI_HEADERS = Object.fromEntries(Object.entries(UI_MESSAGE_STREAM_HEADERS).map(([k, v]) => [k.toLowerCase(), v]));

function checkHeaders(ex, { chatId }) {
  ok(ex.headers, `${ex.label}: no response headers recorded`);
  const h = ex.headers;
  const ctype = h['content-type'] ?? '';
  ok(
    ctype.split(';')[0].trim() === 'text/event-stream',
    `${ex.label}: content-type: expected text/event-stream, got ${JSON.stringify(ctype)}`,
  );
  expectEqual(
    `${ex.label}: header x-vercel-ai-ui-message-stream`,
    h['x-vercel-ai-ui-message-stream'],
    UI_HEADERS['x-vercel-ai-ui-message-stream'],
  );
  for (const name of ['cache-control', 'x-accel-buffering']) {
    expectEqual(`${ex.label}: header ${name} (UI_MESSAGE_STREAM_HEADERS)`, h[name], UI_HEADERS[name]);
  }
  if (chatId !== undefined) expectEqual(`${ex.label}: header X-Thread-Id`, h['x-thread-id'], chatId);
}

const CONTENT_IN_STEP = /^(text|reasoning)-(start|delta|end)$|^tool-input-/;

/**
 * Structural checks beyond the schema: frame validity, start/finish, steps, start/delta/end brackets,
 * tool call order. `complete` requires `[DONE]` and a `finish`.
 */
function checkChunks(ex, { complete = true, messageId } = {}) {
  const problems = [...ex.framingProblems];
  // Tool calls the client already holds (a continuation after an approval) may get their output here.
  const knownToolCalls = new Map();
  for (const message of ex.requestBody?.messages ?? [])
    for (const part of message.parts ?? [])
      if (isToolUIPart(part)) knownToolCalls.set(part.toolCallId, { stage: 'approval', name: part.type.slice(5) });
  for (const bad of ex.invalid) problems.push(`chunk fails uiMessageChunkSchema: ${JSON.stringify(bad.raw)}\n    ${bad.error}`);
  const chunks = ex.chunks;
  if (chunks.length === 0) problems.push('no chunks');
  if (complete && !ex.done) problems.push('stream did not end with data: [DONE]');
  const typeAt = (i) => chunks[i]?.type;
  if (chunks.length && typeAt(0) !== 'start') problems.push(`first chunk is ${JSON.stringify(chunks[0])}, expected type "start"`);
  if (chunks.length && typeof chunks[0].messageId !== 'string')
    problems.push(`start chunk carries no messageId: ${JSON.stringify(chunks[0])}`);
  if (messageId !== undefined && chunks.length && chunks[0].messageId !== messageId)
    problems.push(`start.messageId ${JSON.stringify(chunks[0].messageId)}, expected ${JSON.stringify(messageId)}`);
  const starts = chunks.filter((c) => c.type === 'start').length;
  if (starts > 1) problems.push(`${starts} start chunks in one response`);
  const finishes = chunks.map((c, i) => (c.type === 'finish' ? i : -1)).filter((i) => i >= 0);
  const errored = chunks.some((c) => c.type === 'error');
  if (complete && !errored) {
    const terminal = chunks.findLastIndex((c) => c.type !== 'message-metadata');
    if (finishes.length !== 1) problems.push(`${finishes.length} finish chunks (expected exactly 1)`);
    else if (finishes[0] !== terminal && !chunks.slice(finishes[0]).some((c) => c.type === 'error'))
      problems.push(`chunks after finish: ${JSON.stringify(chunks.slice(finishes[0] + 1))}`);
  }
  let inStep = false;
  const open = new Map(); // `${kind}:${id}` -> open?
  const seen = new Set();
  const tools = new Map(knownToolCalls); // toolCallId -> {stage}
  const approvals = new Set();
  chunks.forEach((c, i) => {
    const where = `chunk #${i} ${JSON.stringify(c)}`;
    if (c.type === 'start-step') {
      if (inStep) problems.push(`${where}: start-step inside an open step`);
      inStep = true;
    } else if (c.type === 'finish-step') {
      if (!inStep) problems.push(`${where}: finish-step without start-step`);
      for (const [key, isOpen] of open) if (isOpen) problems.push(`${where}: ${key} still open at finish-step`);
      inStep = false;
    } else if (c.type === 'finish' && inStep) {
      problems.push(`${where}: finish inside an open step (no finish-step)`);
    }
    const redeclared = c.type === 'tool-input-available' && tools.get(c.toolCallId)?.stage === 'approval';
    if (CONTENT_IN_STEP.test(c.type) && !inStep && !redeclared)
      problems.push(`${where}: content chunk outside start-step/finish-step`);
    const m = /^(text|reasoning)-(start|delta|end)$/.exec(c.type);
    if (m) {
      const key = `${m[1]}:${c.id}`;
      if (m[2] === 'start') {
        if (seen.has(key)) problems.push(`${where}: ${key} started twice`);
        seen.add(key);
        open.set(key, true);
      } else if (!open.get(key)) {
        problems.push(`${where}: ${m[2]} for ${key} which is not open`);
      } else if (m[2] === 'end') {
        open.set(key, false);
      }
    }
    if (c.type.startsWith('tool-')) {
      const t = tools.get(c.toolCallId);
      switch (c.type) {
        case 'tool-input-start':
          if (t) problems.push(`${where}: tool call started twice`);
          tools.set(c.toolCallId, { stage: 'streaming', name: c.toolName });
          break;
        case 'tool-input-delta':
          if (t?.stage !== 'streaming') problems.push(`${where}: tool-input-delta outside tool-input-start..available`);
          break;
        case 'tool-input-available':
        case 'tool-input-error':
          // A continuation after an approval declares the decided calls again before their outputs (outside
          // any step, so a live client updates its part in place), which makes a replay from `start`
          // (the client resets the message there) self-contained.
          if (t?.stage === 'approval' && c.type === 'tool-input-available' && !inStep) {
            if (t.name !== c.toolName) problems.push(`${where}: re-declared with another toolName (${t.name})`);
            t.stage = 'input';
            break;
          }
          if (t && t.stage !== 'streaming') problems.push(`${where}: input for a call already in stage ${t.stage}`);
          if (t && t.name !== c.toolName) problems.push(`${where}: toolName differs from tool-input-start (${t.name})`);
          tools.set(c.toolCallId, { stage: 'input', name: c.toolName });
          break;
        case 'tool-approval-request':
          if (t?.stage !== 'input') problems.push(`${where}: approval request before tool-input-available`);
          approvals.add(c.approvalId);
          if (t) t.stage = 'approval';
          break;
        case 'tool-output-available':
        case 'tool-output-error':
        case 'tool-output-denied':
          if (!t) problems.push(`${where}: output for an unknown toolCallId`);
          else if (t.stage === 'output') problems.push(`${where}: second output for the same call`);
          else if (t.stage === 'streaming') problems.push(`${where}: output before tool-input-available`);
          if (t) t.stage = 'output';
          break;
        default:
          break;
      }
    }
  });
  if (complete && !errored) {
    if (inStep) problems.push('stream ends inside an open step');
    for (const [key, isOpen] of open) if (isOpen) problems.push(`${key} never ended`);
  }
  if (problems.length) fail(`${ex.label}: protocol problems in ${ex.method} ${ex.url}:\n  - ${problems.join('\n  - ')}`);
  return { tools, approvals };
}

// ---------------------------------------------------------------------------------------------------------
// The mock provider's answers (app/providers/mock.py), to compare assembled text exactly

const DIRECTIVE = /mock:([a-z_]+)(?:=(\S+))?/g;

function mockAnswer(prompt, toolResults = 0) {
  const opts = Object.fromEntries([...prompt.matchAll(DIRECTIVE)].map((m) => [m[1], m[2] ?? '']));
  if (opts.tokens) return Array.from({ length: Number(opts.tokens) }, (_, i) => `t${i} `).join('');
  const clean = prompt.replace(DIRECTIVE, '').trim();
  const head = toolResults ? `I ran the tool ${toolResults} time(s). ` : '';
  return `${head}This is the mock provider. You said: ${JSON.stringify(clean.slice(0, 200))}.`;
}

const textOf = (message) =>
  message.parts
    .filter((p) => p.type === 'text')
    .map((p) => p.text)
    .join('');

// ---------------------------------------------------------------------------------------------------------
// A headless Chat: the AbstractChat that useChat wraps, with a plain in-memory state

class HeadlessChatState {
  constructor(messages = []) {
    this.messages = messages;
    this.status = 'ready';
    this.error = undefined;
  }
  pushMessage = (message) => {
    this.messages = this.messages.concat(message);
  };
  popMessage = () => {
    this.messages = this.messages.slice(0, -1);
  };
  replaceMessage = (index, message) => {
    this.messages = [...this.messages.slice(0, index), this.snapshot(message), ...this.messages.slice(index + 1)];
  };
  snapshot = (value) => structuredClone(value);
}

class Chat extends AbstractChat {
  constructor({ messages, ...init }) {
    super({ ...init, state: new HeadlessChatState(messages) });
    this.errors = [];
    this.finishes = [];
  }
}

function newChat(init) {
  const chat = new Chat({
    transport: newTransport(),
    onError: (error) => chat.errors.push(error),
    onFinish: (event) => chat.finishes.push(event),
    ...init,
  });
  return chat;
}

function newTransport() {
  return new DefaultChatTransport({
    api: `${BASE_URL}/api/chat`,
    headers: { Authorization: `Bearer ${TOKEN}` },
    fetch: recordingFetch,
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(label, predicate, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) fail(`timed out after ${timeoutMs} ms waiting for ${label}`);
    await sleep(20);
  }
}

function userMessage(text) {
  return { id: `u-${RUN}-${Math.random().toString(36).slice(2, 8)}`, role: 'user', parts: [{ type: 'text', text }] };
}

async function assemble(stream) {
  let last;
  for await (const message of readUIMessageStream({ stream, terminateOnError: true })) last = message;
  return last;
}

function exchangesOf(label) {
  return exchanges.filter((e) => e.label === label);
}

async function settled(list) {
  await Promise.all(list.map((e) => e.finished));
}

function checkChatHealthy(chat, label) {
  ok(chat.errors.length === 0, `${label}: the Chat reported errors: ${chat.errors.map((e) => e.stack ?? e).join('\n')}`);
  expectEqual(`${label}: chat.status`, chat.status, 'ready');
}

// ---------------------------------------------------------------------------------------------------------
// Checks

async function checkBasic() {
  const chatId = `conf-basic-${RUN}`;
  const prompt = 'Hello from the AI SDK conformance test';
  const transport = newTransport();
  const user = userMessage(prompt);
  const stream = await transport.sendMessages({
    chatId,
    messages: [user],
    trigger: 'submit-message',
    messageId: undefined,
    abortSignal: new AbortController().signal,
  });
  const message = await assemble(stream);
  const [ex] = exchangesOf('basic');
  await ex.finished;
  expectEqual('basic: POST status', ex.status, 200);
  expectEqual('basic: request body keys (what DefaultChatTransport sends)', Object.keys(ex.requestBody).sort(), [
    'id',
    'messages',
    'trigger',
  ]);
  checkHeaders(ex, { chatId });
  checkChunks(ex);
  ok(message, 'basic: readUIMessageStream produced no message');
  expectEqual('basic: assembled role', message.role, 'assistant');
  expectEqual('basic: assembled message id = start.messageId', message.id, ex.chunks[0].messageId);
  expectEqual('basic: assembled text', textOf(message), mockAnswer(prompt));
  const conv = message.parts.filter((p) => p.type === 'data-conversation');
  ok(conv.length > 0, `basic: no data-conversation part in ${JSON.stringify(message.parts)}`);
  expectEqual('basic: data-conversation conversationId', conv.at(-1).data?.conversationId, chatId);
  const finish = ex.chunks.find((c) => c.type === 'finish');
  expectEqual('basic: finish.finishReason', finish.finishReason, 'stop');

  // The same exchange through the headless Chat (what useChat does), continuing the conversation.
  currentLabel = 'basic/chat';
  const chat = newChat({ id: chatId, messages: [user, message] });
  const prompt2 = 'And a second turn';
  await chat.sendMessage({ text: prompt2 });
  checkChatHealthy(chat, 'basic/chat');
  const [ex2] = exchangesOf('basic/chat');
  await ex2.finished;
  checkHeaders(ex2, { chatId });
  checkChunks(ex2);
  expectEqual(
    'basic/chat: message roles',
    chat.messages.map((m) => m.role),
    ['user', 'assistant', 'user', 'assistant'],
  );
  expectEqual('basic/chat: first assistant id unchanged', chat.messages[1].id, message.id);
  expectEqual('basic/chat: second assistant id = start.messageId', chat.messages[3].id, ex2.chunks[0].messageId);
  ok(chat.messages[3].id !== message.id, 'basic/chat: second answer reuses the first answer id');
  expectEqual('basic/chat: second answer text', textOf(chat.messages[3]), mockAnswer(prompt2));
  expectEqual('basic/chat: finishReason', chat.finishes.at(-1)?.finishReason, 'stop');
}

async function checkResume() {
  const chatId = `conf-resume-${RUN}`;
  const prompt = 'Count for me mock:tokens=40 mock:delay=50';
  const expected = mockAnswer(prompt);
  const transport = newTransport();
  const ac = new AbortController();
  const stream = await transport.sendMessages({
    chatId,
    messages: [userMessage(prompt)],
    trigger: 'submit-message',
    messageId: undefined,
    abortSignal: ac.signal,
  });
  let partial;
  try {
    for await (const message of readUIMessageStream({ stream })) {
      partial = message;
      if (textOf(message).includes('t5 ')) {
        ac.abort();
        break;
      }
    }
  } catch (error) {
    if (error?.name !== 'AbortError') throw error;
  }
  ok(partial && textOf(partial).includes('t5 '), `resume: never saw t5 before aborting: ${JSON.stringify(partial)}`);
  ok(!textOf(partial).includes('t39 '), 'resume: the stream finished before the client aborted (too fast to test)');
  const [post] = exchangesOf('resume');
  await post.finished;
  checkHeaders(post, { chatId });
  checkChunks(post, { complete: false });
  const messageId = post.chunks[0].messageId;

  // Reconnect while the run is still going: a full replay from `start`, then live to the end.
  currentLabel = 'resume/reconnect-live';
  const resumed = await transport.reconnectToStream({ chatId });
  ok(resumed !== null, 'resume: reconnectToStream returned null (204) while the run was active');
  const message = await assemble(resumed);
  const [live] = exchangesOf('resume/reconnect-live');
  await live.finished;
  expectEqual('resume/reconnect-live: GET status', live.status, 200);
  checkHeaders(live, {});
  checkChunks(live, { messageId });
  ok(
    live.chunks.some((c) => c.type === 'text-delta' && c.delta === 't39 '),
    'resume/reconnect-live: no t39',
  );
  expectEqual(
    'resume/reconnect-live: text-delta chunks (each token exactly once, in order)',
    live.chunks.filter((c) => c.type === 'text-delta').map((c) => c.delta),
    expected.match(/\S+\s*/g),
  );
  expectEqual('resume/reconnect-live: assembled message id', message.id, messageId);
  expectEqual('resume/reconnect-live: assembled text', textOf(message), expected);

  // After completion, within the TTL: a full replay again, same message.
  currentLabel = 'resume/reconnect-after';
  const again = await transport.reconnectToStream({ chatId });
  ok(again !== null, 'resume: reconnectToStream after completion returned null (204) inside the TTL');
  const message2 = await assemble(again);
  const [after] = exchangesOf('resume/reconnect-after');
  await after.finished;
  checkChunks(after, { messageId });
  expectEqual('resume/reconnect-after: assembled message id', message2.id, messageId);
  expectEqual('resume/reconnect-after: assembled text', textOf(message2), expected);

  // useChat's own resume path: a fresh Chat (a reloaded page) holding the partial answer calls
  // resumeStream(); with resumeStreamIsReplay it resets the message at `start` and rebuilds it.
  currentLabel = 'resume/chat';
  const chatId2 = `conf-resume2-${RUN}`;
  const prompt2 = 'Count again mock:tokens=40 mock:delay=50';
  const first = newChat({ id: chatId2 });
  const sending = first.sendMessage({ text: prompt2 });
  await waitFor('the first tokens in the Chat', () => textOf(first.lastMessage ?? { parts: [] }).includes('t5 '));
  await first.stop();
  await sending;
  const partialMessages = structuredClone(first.messages);
  expectEqual('resume/chat: roles after stop', partialMessages.map((m) => m.role), ['user', 'assistant']);
  ok(!textOf(partialMessages[1]).includes('t39 '), 'resume/chat: the stream finished before stop()');
  const reloaded = newChat({ id: chatId2, messages: partialMessages });
  await reloaded.resumeStream();
  checkChatHealthy(reloaded, 'resume/chat');
  const gets = exchangesOf('resume/chat').filter((e) => e.method === 'GET');
  expectEqual('resume/chat: reconnect requests', gets.length, 1);
  await settled(gets);
  checkChunks(gets[0], { messageId: partialMessages[1].id });
  expectEqual('resume/chat: roles after resume', reloaded.messages.map((m) => m.role), ['user', 'assistant']);
  expectEqual('resume/chat: assistant id', reloaded.messages[1].id, partialMessages[1].id);
  expectEqual('resume/chat: text (every token exactly once)', textOf(reloaded.messages[1]), mockAnswer(prompt2));
}

async function checkDataPart() {
  // The conversation part is sent when the stream starts and again when the title is ready. The AI SDK
  // appends every data chunk without an `id` as a new part; with the same `id` it replaces the part. One
  // conversation part must remain in the assembled message, the last version (with the title).
  const chatId = `conf-datapart-${RUN}`;
  const chat = newChat({ id: chatId });
  await chat.sendMessage({ text: 'Name this conversation please' });
  checkChatHealthy(chat, 'datapart');
  const [ex] = exchangesOf('datapart');
  await ex.finished;
  checkChunks(ex);
  const sent = ex.chunks.filter((c) => c.type === 'data-conversation');
  const parts = chat.messages[1].parts.filter((p) => p.type === 'data-conversation');
  ok(
    parts.length === 1,
    `datapart: the assembled assistant message has ${parts.length} data-conversation parts, expected 1.\n` +
      `  The server sent ${sent.length} data-conversation chunks:\n    ${sent.map((c) => JSON.stringify(c)).join('\n    ')}\n` +
      '  Without an `id`, useChat appends each one as a new part (a client reading the first finds title null);\n' +
      '  give every data-conversation chunk of a conversation the same `id` so later ones replace it.',
  );
  expectEqual('datapart: conversationId', parts[0].data?.conversationId, chatId);
  ok(typeof parts[0].data?.title === 'string', `datapart: no title in the final part: ${show(parts[0])}`);
}

async function checkErrors() {
  // A provider failure mid-answer: an `error` chunk (schema-valid), `[DONE]`, the Chat ends in status
  // `error` with the server's errorText, and keeps the partial answer.
  const chatId = `conf-errors-${RUN}`;
  const chat = newChat({ id: chatId });
  await chat.sendMessage({ text: 'Break please mock:tokens=5 mock:fail=2' });
  const [ex] = exchangesOf('errors');
  await ex.finished;
  checkHeaders(ex, { chatId });
  checkChunks(ex);
  const errors = ex.chunks.filter((c) => c.type === 'error');
  expectEqual('errors: error chunks', errors.length, 1);
  expectEqual('errors: chat.status', chat.status, 'error');
  expectEqual('errors: chat.error.message', chat.error?.message, errors[0].errorText);
  expectEqual('errors: roles', chat.messages.map((m) => m.role), ['user', 'assistant']);
  expectEqual('errors: partial text kept', textOf(chat.messages[1]), 't0 t1 ');
}

async function checkUnknown() {
  const transport = newTransport();
  const result = await transport.reconnectToStream({ chatId: `conf-unknown-${RUN}` });
  const [ex] = exchangesOf('unknown');
  expectEqual('unknown: GET /api/chat/{unknown}/stream status', ex?.status, 204);
  expectEqual('unknown: reconnectToStream result', result, null);
}

function toolPart(message) {
  const parts = message.parts.filter(isToolUIPart);
  expectEqual(
    'tool parts in the assistant message',
    parts.map((p) => p.type),
    ['tool-getWeather'],
  );
  return parts[0];
}

function checkToolOutcome(label, message, part) {
  ok(
    part.state === 'output-available' || part.state === 'output-error',
    `${label}: tool part state ${JSON.stringify(part.state)}, expected output-available or output-error\n${show(part)}`,
  );
  if (part.state === 'output-available') ok(part.output !== undefined, `${label}: output-available without output`);
  else ok(typeof part.errorText === 'string' && part.errorText, `${label}: output-error without errorText`);
  expectEqual(`${label}: tool input`, part.input, { city: 'Paris' });
  const partIndex = message.parts.indexOf(part);
  const after = message.parts.slice(partIndex + 1);
  ok(after.some((p) => p.type === 'step-start'), `${label}: no new step after the tool result: ${show(message.parts)}`);
  ok(after.some((p) => p.type === 'text'), `${label}: no text after the tool result: ${show(message.parts)}`);
}

function noToolHint(ex) {
  return ex.chunks.some((c) => c.type.startsWith('tool-'))
    ? ''
    : ' — the stream has no tool chunks at all: the mock model only calls a tool the server offers it, ' +
        'so the server offered no getWeather tool (not registered?)';
}

const TOOL_PROMPT = 'What is the weather in Paris? mock:tool=getWeather mock:args={"city":"Paris"}';

async function checkTools() {
  const chatId = `conf-tools-${RUN}`;
  const chat = newChat({ id: chatId });
  await chat.sendMessage({ text: TOOL_PROMPT });
  checkChatHealthy(chat, 'tools');
  const posts = exchangesOf('tools');
  expectEqual('tools: POSTs (the server runs the tool itself)', posts.length, 1);
  await settled(posts);
  checkHeaders(posts[0], { chatId });
  const { tools } = checkChunks(posts[0]);
  ok(tools.size === 1, `tools: expected one tool call in the stream, got ${tools.size}${noToolHint(posts[0])}`);
  expectEqual('tools: roles', chat.messages.map((m) => m.role), ['user', 'assistant']);
  const message = chat.messages[1];
  expectEqual('tools: assistant id = start.messageId', message.id, posts[0].chunks[0].messageId);
  const part = toolPart(message);
  checkToolOutcome('tools', message, part);
  expectEqual('tools: text', textOf(message), mockAnswer(TOOL_PROMPT, 1));
  const finish = posts[0].chunks.find((c) => c.type === 'finish');
  expectEqual('tools: finishReason', finish.finishReason, 'stop');
}

// What each data part of ours carries (the chatbot's artifact parts, our conversation and status parts).
const DATA_PART_SCHEMAS = {
  conversation: z.object({ conversationId: z.string(), title: z.string().nullable() }),
  status: z.looseObject({ status: z.string() }),
  kind: z.enum(['text', 'code', 'sheet', 'image']),
  id: z.string().min(1),
  title: z.string().min(1),
  clear: z.null(),
  textDelta: z.string(),
  codeDelta: z.string(),
  sheetDelta: z.string(),
  imageDelta: z.string(),
  finish: z.null(),
  suggestion: z.strictObject({
    id: z.string(),
    documentId: z.string(),
    originalText: z.string(),
    suggestedText: z.string(),
    description: z.string().nullable(),
    isResolved: z.boolean(),
    createdAt: z.string(),
  }),
};

const ESSAY_PROMPT = 'Write an essay about rivers';

async function checkDocuments() {
  const chatId = `conf-documents-${RUN}`;
  const received = [];
  const chat = newChat({ id: chatId, dataPartSchemas: DATA_PART_SCHEMAS, onData: (part) => received.push(part) });
  await chat.sendMessage({ text: ESSAY_PROMPT });
  checkChatHealthy(chat, 'documents');
  const [ex] = exchangesOf('documents');
  await ex.finished;
  const { tools } = checkChunks(ex);
  ok(tools.size === 1, `documents: expected one tool call (createDocument), got ${tools.size}${noToolHint(ex)}`);
  const sent = ex.chunks.filter((c) => c.type.startsWith('data-') && !['data-conversation', 'data-status'].includes(c.type));
  const got = received.filter((p) => !['data-conversation', 'data-status'].includes(p.type));
  // onData saw exactly what the server sent, in order.
  expectEqual('documents: onData parts = data chunks sent', got, sent);
  const kinds = got.map((p) => p.type);
  const deltas = got.filter((p) => p.type === 'data-textDelta').map((p) => p.data);
  ok(deltas.length > 1, `documents: expected the content in several data-textDelta parts, got ${deltas.length}`);
  expectEqual('documents: data part order', kinds, [
    'data-kind',
    'data-id',
    'data-title',
    'data-clear',
    ...deltas.map(() => 'data-textDelta'),
    'data-finish',
  ]);
  ok(got.every((p) => p.transient === true), `documents: a tool data part is not transient: ${show(got)}`);
  expectEqual('documents: kind', got[0].data, 'text');
  expectEqual('documents: title', got[2].data, 'Rivers');
  const message = chat.messages[1];
  expectEqual(
    'documents: parts of the assembled message (transient parts are not in it)',
    message.parts.filter((p) => p.type !== 'step-start').map((p) => p.type),
    ['data-conversation', 'tool-createDocument', 'text'],
  );
  const part = message.parts.find((p) => p.type === 'tool-createDocument');
  expectEqual('documents: tool output', part.output, {
    id: got[1].data,
    title: 'Rivers',
    kind: 'text',
    content: 'A document was created and is now visible to the user.',
  });
  expectEqual('documents: content = the nested generation', deltas.join(''), mockAnswer('Rivers'));
  expectEqual('documents: answer text', textOf(message), mockAnswer(ESSAY_PROMPT, 1));
  const res = await fetch(`${BASE_URL}/api/document?id=${encodeURIComponent(got[1].data)}`, {
    headers: { Authorization: `Bearer ${TOKEN}` },
  });
  expectEqual('documents: GET /api/document status', res.status, 200);
  const versions = await res.json();
  expectEqual('documents: stored versions', versions.length, 1);
  expectEqual('documents: stored content = the data-textDelta parts, in order', versions[0].content, deltas.join(''));
}

const SOURCES_PROMPT = 'Search the web mock:tool=web_search mock:args={"query":"pages"} mock:steps=2';

async function checkSources() {
  ok(WEB_URL, 'sources: WEB_URL (the fake web the server searches) is not set');
  const chatId = `conf-sources-${RUN}`;
  const chat = newChat({ id: chatId });
  await chat.sendMessage({ text: SOURCES_PROMPT }, { body: { webSearch: true } });
  checkChatHealthy(chat, 'sources');
  const posts = exchangesOf('sources');
  await settled(posts);
  const { tools } = checkChunks(posts[0]);
  expectEqual('sources: tool calls', tools.size, 2);
  const message = chat.messages[1];
  const sources = message.parts.filter((p) => p.type === 'source-url');
  expectEqual(
    'sources: source-url parts, one per result although the search ran twice',
    sources.map(({ sourceId, url, title }) => ({ sourceId, url, title })),
    [
      { sourceId: 'source-1', url: `${WEB_URL}/a`, title: 'Result A' },
      { sourceId: 'source-2', url: `${WEB_URL}/b`, title: 'Result B' },
    ],
  );
}

async function approvalRoundTrip(label, approved) {
  currentLabel = label;
  const chatId = `conf-${label}-${RUN}`;
  const chat = newChat({ id: chatId, sendAutomaticallyWhen: lastAssistantMessageIsCompleteWithApprovalResponses });
  await chat.sendMessage({ text: TOOL_PROMPT });
  checkChatHealthy(chat, `${label}/request`);
  const [first] = exchangesOf(label);
  await first.finished;
  checkHeaders(first, { chatId });
  const { approvals } = checkChunks(first);
  ok(
    approvals.size === 1,
    `${label}: expected one tool-approval-request chunk, got ${approvals.size}${noToolHint(first)}` +
      ' (is the server started with CHAT_APPROVAL_TOOLS=getWeather?)',
  );
  expectEqual(`${label}: roles after the request`, chat.messages.map((m) => m.role), ['user', 'assistant']);
  const assistantId = chat.messages[1].id;
  expectEqual(`${label}: assistant id = start.messageId`, assistantId, first.chunks[0].messageId);
  const requested = toolPart(chat.messages[1]);
  expectEqual(`${label}: tool part state`, requested.state, 'approval-requested');
  expectEqual(`${label}: tool input`, requested.input, { city: 'Paris' });
  ok(typeof requested.approval?.id === 'string', `${label}: tool part has no approval.id: ${show(requested)}`);
  const finish = first.chunks.find((c) => c.type === 'finish');
  ok(
    ['tool-calls', 'other', 'stop', undefined].includes(finish.finishReason),
    `${label}: finishReason of the approval stop: ${finish.finishReason}`,
  );

  await chat.addToolApprovalResponse({ id: requested.approval.id, approved });
  await waitFor(
    `${label}: the automatic continuation request to finish`,
    () => exchangesOf(label).length >= 2 && chat.status !== 'submitted' && chat.status !== 'streaming',
  );
  checkChatHealthy(chat, `${label}/continuation`);
  const all = exchangesOf(label);
  expectEqual(`${label}: requests`, all.map((e) => e.method), ['POST', 'POST']);
  const second = all[1];
  await second.finished;
  const body = second.requestBody;
  expectEqual(`${label}: continuation trigger`, body.trigger, 'submit-message');
  expectEqual(`${label}: continuation messageId`, body.messageId, assistantId);
  const sentPart = body.messages.at(-1).parts.find((p) => p.type === 'tool-getWeather');
  expectEqual(`${label}: sent tool part state`, sentPart?.state, 'approval-responded');
  expectEqual(`${label}: sent approval`, sentPart?.approval, { id: requested.approval.id, approved });
  checkHeaders(second, { chatId });
  checkChunks(second, { messageId: assistantId });

  expectEqual(`${label}: roles after the continuation (same assistant message)`, chat.messages.map((m) => m.role), [
    'user',
    'assistant',
  ]);
  const message = chat.messages[1];
  expectEqual(`${label}: assistant id after the continuation`, message.id, assistantId);
  const part = toolPart(message);
  expectEqual(`${label}: tool call id`, part.toolCallId, requested.toolCallId);
  if (approved) {
    checkToolOutcome(label, message, part);
    expectEqual(`${label}: approval kept on the part`, part.approval?.approved, true);
  } else {
    expectEqual(`${label}: tool part state`, part.state, 'output-denied');
    const after = message.parts.slice(message.parts.indexOf(part) + 1);
    ok(after.some((p) => p.type === 'text'), `${label}: no text after the denial: ${show(message.parts)}`);
  }
  expectEqual(`${label}: text`, textOf(message), mockAnswer(TOOL_PROMPT, 1));
  const finish2 = second.chunks.find((c) => c.type === 'finish');
  expectEqual(`${label}: continuation finishReason`, finish2.finishReason, 'stop');

  // A reconnect now replays the continuation from its `start`, where the client resets the message: the
  // replay alone must assemble (the call is declared before its output) into the decided tool part.
  currentLabel = `${label}/replay`;
  const replay = await newTransport().reconnectToStream({ chatId });
  ok(replay !== null, `${label}/replay: reconnectToStream returned null (204) inside the TTL`);
  const replayed = await assemble(replay);
  expectEqual(`${label}/replay: message id`, replayed.id, assistantId);
  const replayedPart = toolPart(replayed);
  expectEqual(`${label}/replay: tool part state`, replayedPart.state, part.state);
  expectEqual(`${label}/replay: tool input`, replayedPart.input, { city: 'Paris' });
  expectEqual(`${label}/replay: text`, textOf(replayed), mockAnswer(TOOL_PROMPT, 1));
}

async function checkApproval() {
  await approvalRoundTrip('approval', true);
  await approvalRoundTrip('approval-denied', false);
}


// ---------------------------------------------------------------------------------------------------------
// The conversation lifecycle (regenerate, edit, stop-then-send), on the fake OpenAI upstream

/** What the upstream received, newest last: each request's conversation turns, system prompt left out. */
async function upstreamTurns() {
  ok(FAKE_URL && FAKE_NS, 'lifecycle checks need FAKE_URL and FAKE_NS (the fake upstream and its namespace)');
  const res = await fetch(`${FAKE_URL}/_fake/${FAKE_NS}/requests`);
  const requests = await res.json();
  return requests
    .filter((r) => r.path.endsWith('/chat/completions') && r.body?.stream)
    .map((r) =>
      r.body.messages
        .filter((m) => m.role !== 'system')
        .map((m) => ({
          role: m.role,
          text: typeof m.content === 'string' ? m.content : (m.content ?? []).map((c) => c.text ?? '').join(''),
        })),
    );
}

async function lastUpstreamTurns() {
  const all = await upstreamTurns();
  ok(all.length > 0, 'the upstream received no streamed request');
  return all.at(-1);
}

async function storedMessages(chatId) {
  const res = await fetch(`${BASE_URL}/api/chat/messages?conversationId=${chatId}&limit=100`, {
    headers: { Authorization: `Bearer ${TOKEN}` },
  });
  expectEqual(`GET messages of ${chatId}`, res.status, 200);
  return (await res.json()).messages;
}

/** The stored conversation, as the client shows it: the same messages, ids, roles and texts. */
async function expectStoredAsShown(label, chat) {
  // The run stores its answer before its final frame, so by the time the Chat is ready it is stored.
  const stored = await storedMessages(chat.id);
  expectEqual(
    `${label}: stored conversation = what the client shows (role, id, text)`,
    stored.map((m) => ({ role: m.role, id: m.id, text: textOf(m) })),
    chat.messages.map((m) => ({ role: m.role, id: m.id, text: textOf(m) })),
  );
  return stored;
}

function expectAlternating(label, messages) {
  expectEqual(
    `${label}: one answer per turn`,
    messages.map((m) => m.role),
    messages.map((_, i) => (i % 2 ? 'assistant' : 'user')),
  );
}

async function checkRegenerate() {
  const chatId = `conf-regenerate-${RUN}`;
  const chat = newChat({ id: chatId });
  await chat.sendMessage({ text: 'first question' });
  checkChatHealthy(chat, 'regenerate/send');
  const firstAnswer = chat.messages[1].id;
  currentLabel = 'regenerate/again';
  await chat.regenerate();
  checkChatHealthy(chat, 'regenerate/again');
  const [ex] = exchangesOf('regenerate/again');
  await ex.finished;
  expectEqual('regenerate: trigger sent', ex.requestBody.trigger, 'regenerate-message');
  // `regenerate()` without an id names no message (the last answer is meant): the server finds it.
  ok(
    ex.requestBody.messageId === undefined || ex.requestBody.messageId === firstAnswer,
    `regenerate: messageId sent: ${ex.requestBody.messageId}`,
  );
  checkChunks(ex);
  expectEqual('regenerate: client roles', chat.messages.map((m) => m.role), ['user', 'assistant']);
  ok(chat.messages[1].id !== firstAnswer, 'regenerate: the new answer reuses the old answer id');
  const stored = await expectStoredAsShown('regenerate', chat);
  ok(!stored.some((m) => m.id === firstAnswer), 'regenerate: the superseded answer is still stored');
  expectEqual('regenerate: what the model received', await lastUpstreamTurns(), [
    { role: 'user', text: 'first question' },
  ]);
  // A second regenerate, then a follow-up: the model sees only the answer the client shows.
  currentLabel = 'regenerate/twice';
  await chat.regenerate();
  checkChatHealthy(chat, 'regenerate/twice');
  await chat.sendMessage({ text: 'follow-up' });
  checkChatHealthy(chat, 'regenerate/follow-up');
  const shown = await expectStoredAsShown('regenerate/follow-up', chat);
  expectAlternating('regenerate/follow-up', shown);
  expectEqual('regenerate/follow-up: what the model received', await lastUpstreamTurns(), [
    { role: 'user', text: 'first question' },
    { role: 'assistant', text: textOf(chat.messages[1]) },
    { role: 'user', text: 'follow-up' },
  ]);
}

async function checkEdit() {
  const chatId = `conf-edit-${RUN}`;
  const chat = newChat({ id: chatId });
  await chat.sendMessage({ text: 'question one' });
  await chat.sendMessage({ text: 'question two' });
  checkChatHealthy(chat, 'edit/setup');
  expectEqual('edit: roles before', chat.messages.map((m) => m.role), ['user', 'assistant', 'user', 'assistant']);
  const firstUser = chat.messages[0].id;
  currentLabel = 'edit/edit';
  await chat.sendMessage({ text: 'question one, edited', messageId: firstUser });
  checkChatHealthy(chat, 'edit/edit');
  const [ex] = exchangesOf('edit/edit');
  await ex.finished;
  expectEqual('edit: trigger sent', ex.requestBody.trigger, 'submit-message');
  expectEqual('edit: messageId sent', ex.requestBody.messageId, firstUser);
  checkChunks(ex);
  expectEqual('edit: client roles', chat.messages.map((m) => m.role), ['user', 'assistant']);
  expectEqual('edit: edited message keeps its id', chat.messages[0].id, firstUser);
  await expectStoredAsShown('edit', chat);
  expectEqual('edit: what the model received', await lastUpstreamTurns(), [
    { role: 'user', text: 'question one, edited' },
  ]);
}

async function checkStopSend() {
  const chatId = `conf-stopsend-${RUN}`;
  const chat = newChat({ id: chatId });
  const first = chat.sendMessage({ text: 'a long answer please' });
  await waitFor('stopsend: some text of the first answer', () => {
    const last = chat.messages.at(-1);
    return last?.role === 'assistant' && textOf(last).length >= 6;
  });
  await chat.stop(); // what useChat's stop() does: abort the fetch; the run goes on on the server
  await first;
  const partial = textOf(chat.messages[1]);
  currentLabel = 'stopsend/send';
  await chat.sendMessage({ text: 'never mind, something else' });
  checkChatHealthy(chat, 'stopsend/send');
  const [ex] = exchangesOf('stopsend/send');
  await ex.finished;
  expectEqual('stopsend: the send after stop is accepted (no 409)', ex.status, 200);
  checkChunks(ex);
  expectEqual('stopsend: client roles', chat.messages.map((m) => m.role), ['user', 'assistant', 'user', 'assistant']);
  const stored = await storedMessages(chatId);
  expectAlternating('stopsend', stored);
  expectEqual('stopsend: stored ids = client ids', stored.map((m) => m.id), chat.messages.map((m) => m.id));
  expectEqual('stopsend: the stopped answer is stored as interrupted', stored[1].finishReason, 'interrupted');
  ok(
    textOf(stored[1]).startsWith(partial) && partial.length > 0,
    `stopsend: the stored partial answer ${JSON.stringify(textOf(stored[1]))} does not continue what the client saw ${JSON.stringify(partial)}`,
  );
  expectEqual('stopsend: second answer finishReason', stored[3].finishReason, 'stop');
  const turns = await lastUpstreamTurns();
  expectEqual('stopsend: what the model received (roles)', turns.map((t) => t.role), ['user', 'assistant', 'user']);
  expectEqual('stopsend: the interrupted answer, as stored', turns[1].text, textOf(stored[1]));
  expectEqual('stopsend: the new question', turns[2].text, 'never mind, something else');
}

// ---------------------------------------------------------------------------------------------------------

const REGISTRY = {
  basic: checkBasic,
  resume: checkResume,
  unknown: checkUnknown,
  errors: checkErrors,
  datapart: checkDataPart,
  tools: checkTools,
  documents: checkDocuments,
  approval: checkApproval,
  sources: checkSources,
  regenerate: checkRegenerate,
  edit: checkEdit,
  stopsend: checkStopSend,
};

async function main() {
  const unknownChecks = CHECKS.filter((c) => !KNOWN_CHECKS.includes(c));
  if (unknownChecks.length) {
    console.error(`unknown CHECKS: ${unknownChecks.join(', ')} (known: ${KNOWN_CHECKS.join(', ')})`);
    return 2;
  }
  console.log(`AI SDK conformance against ${BASE_URL}: ${CHECKS.join(', ')}`);
  let failed = 0;
  for (const name of CHECKS) {
    currentLabel = name;
    const before = exchanges.length;
    const t0 = Date.now();
    try {
      await REGISTRY[name]();
      console.log(`ok   ${name} (${Date.now() - t0} ms)`);
    } catch (error) {
      failed++;
      const what = error instanceof CheckFailure ? error.message : error?.stack ?? String(error);
      console.log(`FAIL ${name} (${Date.now() - t0} ms)\n${what}`);
      await Promise.race([settled(exchanges.slice(before)), sleep(2000)]);
      console.log(`\nHTTP exchanges of ${name}:`);
      for (const ex of exchanges.slice(before)) {
        console.log(describeExchange(ex));
        if (ex.raw) {
          try {
            checkChunks(ex, { complete: !ex.aborted });
            console.log('(chunks: schema-valid, well ordered)');
          } catch (problem) {
            console.log(problem.message);
          }
        }
      }
      console.log('');
    }
  }
  if (process.env.CONFORMANCE_VERBOSE) for (const ex of exchanges) console.log(describeExchange(ex));
  console.log(failed ? `${failed} of ${CHECKS.length} checks failed` : `all ${CHECKS.length} checks passed`);
  return failed ? 1 : 0;
}

const timer = setTimeout(() => {
  console.log(`FAIL: conformance run exceeded ${TOTAL_TIMEOUT_MS} ms (a stream hung?)`);
  for (const ex of exchanges.filter((e) => e.label === currentLabel)) console.log(describeExchange(ex));
  process.exit(1);
}, TOTAL_TIMEOUT_MS);

main().then(
  (code) => {
    clearTimeout(timer);
    process.exit(code);
  },
  (error) => {
    clearTimeout(timer);
    console.error(error);
    process.exit(1);
  },
);
