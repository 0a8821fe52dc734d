// The Vercel AI SDK's Node server as a benchmark peer (bench/peers/README.md).
//
//   UPSTREAM_BASE_URL=http://127.0.0.1:PORT/<ns>/v1 PORT=8001 node server.mjs
//   ... REDIS_URL=redis://127.0.0.1:6379/0 node server.mjs      # the resumable-stream variant
//
// POST /api/chat takes the AI SDK UI request (`{id?, messages: [{id, role, parts}], model?}`), runs
// `streamText` against an OpenAI-compatible provider pointed at the fake upstream, and answers with
// `result.toUIMessageStreamResponse()` (the UI message stream, SSE). With REDIS_URL set, the response
// is also made resumable the way the Vercel chatbot does it: `consumeSseStream` hands a copy of the SSE
// stream to `createResumableStreamContext(...).createNewResumableStream(streamId, ...)`, the chat's
// latest stream id is recorded (in Redis here, in the chatbot's database there), and
// GET /api/chat/<id>/stream resumes it (`resumeExistingStream`), 204 when there is nothing to resume.
//
// A plain node:http server: the Web `Response` is written to the Node response as it streams.
import http from "node:http";
import { randomUUID } from "node:crypto";
import { convertToModelMessages, streamText, UI_MESSAGE_STREAM_HEADERS } from "ai";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";

const port = Number(process.env.PORT ?? 8001);
const baseURL = process.env.UPSTREAM_BASE_URL;
if (!baseURL) throw new Error("UPSTREAM_BASE_URL is required");
const defaultModel = process.env.MODEL ?? "bench-tokens-20";
const redisUrl = process.env.REDIS_URL;

const provider = createOpenAICompatible({ name: "fake", baseURL, apiKey: "sk-fake" });

let streamContext = null;
// Streams whose resumable registration failed (the response itself went on), and the first reason.
const resumable = { errors: 0, firstError: null };
let redis = null;
if (redisUrl) {
  const { createResumableStreamContext } = await import("resumable-stream");
  const { createClient } = await import("redis");
  // As the chatbot's getStreamContext(): one context per process; its publisher and subscriber are
  // created from REDIS_URL by resumable-stream itself. waitUntil is null on a long-lived server.
  streamContext = createResumableStreamContext({ waitUntil: null });
  redis = createClient({ url: redisUrl });
  await redis.connect();
}

async function readJson(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

async function send(res, response) {
  const headers = {};
  response.headers.forEach((value, key) => {
    headers[key] = value;
  });
  res.writeHead(response.status, headers);
  if (response.body) {
    for await (const chunk of response.body) {
      res.write(chunk);
    }
  }
  res.end();
}

async function chat(req, res) {
  const body = await readJson(req);
  const chatId = body.id ?? randomUUID();
  const result = streamText({
    model: provider.chatModel(body.model ?? defaultModel),
    messages: await convertToModelMessages(body.messages),
  });
  if (!streamContext) {
    await send(res, result.toUIMessageStreamResponse());
    return;
  }
  const response = result.toUIMessageStreamResponse({
    async consumeSseStream({ stream }) {
      // As the chatbot: a Redis error loses resumability, not the response.
      try {
        const streamId = randomUUID();
        await redis.set(`bench-chat:${chatId}:stream`, streamId, { EX: 3600 });
        await streamContext.createNewResumableStream(streamId, () => stream);
      } catch (error) {
        resumable.errors += 1;
        if (resumable.firstError === null) {
          resumable.firstError = `${error?.constructor?.name ?? "error"}: ${String(error?.message ?? error)}`;
          console.error(`resumable-stream: ${resumable.firstError}`);
        }
      }
    },
  });
  await send(res, response);
}

async function resume(res, chatId) {
  const streamId = streamContext && (await redis.get(`bench-chat:${chatId}:stream`));
  const stream = streamId ? await streamContext.resumeExistingStream(streamId) : null;
  if (!stream) {
    res.writeHead(204).end();
    return;
  }
  await send(res, new Response(stream.pipeThrough(new TextEncoderStream()), { headers: UI_MESSAGE_STREAM_HEADERS }));
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, "http://localhost");
  const resumeMatch = url.pathname.match(/^\/api\/chat\/([^/]+)\/stream$/);
  let handled;
  if (req.method === "GET" && url.pathname === "/healthz") {
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ ok: true, resumable }));
    return;
  } else if (req.method === "POST" && url.pathname === "/api/chat") {
    handled = chat(req, res);
  } else if (req.method === "GET" && resumeMatch) {
    handled = resume(res, resumeMatch[1]);
  } else {
    res.writeHead(404).end();
    return;
  }
  handled.catch((error) => {
    if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
    res.end(String(error?.message ?? error));
  });
});
server.keepAliveTimeout = 5000;
server.listen(port, "127.0.0.1", () => {
  console.log(`READY ${port}${streamContext ? " resumable" : ""}`);
});

const stop = () => server.close(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
