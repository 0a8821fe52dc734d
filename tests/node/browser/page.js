// The browser page's script (bundled by serve.mjs with esbuild): the real `ai` client, in Chromium, on an
// origin other than the chat server's. Its query string says what to do:
//
//   ?api=http://127.0.0.1:B/chat/api/chat&token=test-token&chatId=browser-x&prompt=mock:tokens=5&mode=chat
//
// mode=chat    DefaultChatTransport.sendMessages + readUIMessageStream (the answer's text, the exposed
//              X-Thread-Id), then transport.reconnectToStream({chatId: <that thread id>}) (a replay)
// mode=denied  the same send from an origin the server does not allow: the fetch must reject (CORS)
//
// The outcome goes into the DOM: #result holds it as JSON, <body data-status> becomes `done` or `error`, and
// #text, #thread, #resumed, #error show it to a person.

import { DefaultChatTransport, readUIMessageStream } from 'ai';

const params = new URLSearchParams(location.search);
const api = params.get('api');
const token = params.get('token');
const chatId = params.get('chatId');
const prompt = params.get('prompt') ?? 'mock:tokens=5';
const mode = params.get('mode') ?? 'chat';

/** Every response the transport got: what a page's script can read of it (CORS hides the rest). */
const responses = [];

async function tappingFetch(url, init) {
  const res = await fetch(url, init);
  responses.push({
    method: init?.method ?? 'GET',
    url: String(url),
    status: res.status,
    contentType: res.headers.get('content-type'),
    threadId: res.headers.get('x-thread-id'),
    runId: res.headers.get('x-run-id'),
    readableHeaders: [...res.headers.keys()].sort(),
  });
  return res;
}

const transport = new DefaultChatTransport({
  api,
  headers: { Authorization: `Bearer ${token}` },
  fetch: tappingFetch,
});

const textOf = (message) =>
  (message?.parts ?? [])
    .filter((p) => p.type === 'text')
    .map((p) => p.text)
    .join('');

/** Reads a chunk stream to its end: the assembled message, and the chunk types in order. */
async function assemble(stream) {
  const types = [];
  const counted = stream.pipeThrough(
    new TransformStream({
      transform(chunk, controller) {
        types.push(chunk.type);
        controller.enqueue(chunk);
      },
    }),
  );
  let message;
  for await (const m of readUIMessageStream({ stream: counted })) message = m;
  return { message, types };
}

function show(id, value) {
  document.getElementById(id).textContent = value;
}

const userMessage = { id: `${chatId}-u1`, role: 'user', parts: [{ type: 'text', text: prompt }] };
const send = () =>
  transport.sendMessages({
    trigger: 'submit-message',
    chatId,
    messageId: undefined,
    messages: [userMessage],
    abortSignal: undefined,
  });

async function chat() {
  const sent = await assemble(await send());
  const threadId = responses[0]?.threadId ?? null;
  show('text', textOf(sent.message));
  show('thread', String(threadId));
  const stream = await transport.reconnectToStream({ chatId: threadId });
  const resumed = stream === null ? null : await assemble(stream);
  show('resumed', resumed === null ? '(204: nothing to resume)' : textOf(resumed.message));
  return {
    origin: location.origin,
    text: textOf(sent.message),
    messageId: sent.message?.id ?? null,
    chunkTypes: sent.types,
    threadId,
    resumed:
      resumed === null
        ? null
        : { text: textOf(resumed.message), messageId: resumed.message?.id ?? null, chunkTypes: resumed.types },
    responses,
  };
}

async function denied() {
  let error = null;
  try {
    const stream = await send();
    await assemble(stream);
  } catch (e) {
    error = { name: e?.name ?? null, message: String(e?.message ?? e) };
  }
  // The same request with plain fetch: its rejection is the browser's own (a TypeError), not the SDK's.
  let fetchError = null;
  try {
    await fetch(api, {
      method: 'POST',
      headers: { 'content-type': 'application/json', Authorization: `Bearer ${token}` },
      body: JSON.stringify({ id: chatId, messages: [userMessage], trigger: 'submit-message' }),
    });
  } catch (e) {
    fetchError = { name: e?.name ?? null, message: String(e?.message ?? e) };
  }
  show('error', JSON.stringify({ error, fetchError }));
  return { origin: location.origin, rejected: error !== null, error, fetchError, responses };
}

async function main() {
  try {
    const result = mode === 'denied' ? await denied() : await chat();
    show('result', JSON.stringify(result));
    document.body.dataset.status = 'done';
  } catch (e) {
    show('error', `${e?.name ?? 'Error'}: ${e?.message ?? e}`);
    show('result', JSON.stringify({ origin: location.origin, failure: String(e?.stack ?? e), responses }));
    document.body.dataset.status = 'error';
  }
}

main();
