"""A fake LLM upstream: a real HTTP/1.1 server process on 127.0.0.1 speaking OpenAI and Anthropic SSE.

Stdlib only, so tests, the benchmark and other helpers can run it anywhere:

    python tests/fakes/upstream.py [--port 0] [--tokens 8] [--delay-ms 0]   # prints "READY <port>"

or from Python: `with FakeUpstream.start() as fake: ...` (a subprocess, stopped on exit).

Routing. The first path segment is a *namespace* chosen by the caller (e.g. a fresh id per test), so one
server process serves many tests without them seeing each other's traffic:

* `POST /_fake/<ns>/enqueue` with a JSON list of response specs: the next requests to `<ns>` get them, in
  order. `GET /_fake/<ns>/requests` returns what `<ns>` received: `[{method, path, headers, body}]`
  (header names lower-cased, JSON bodies decoded).
* Anything else under `/<ns>/` is an upstream call, e.g. base URL `http://127.0.0.1:PORT/<ns>/v1` for the
  OpenAI SDK (`POST /<ns>/v1/chat/completions`) and `http://127.0.0.1:PORT/<ns>` for the Anthropic SDK
  (`POST /<ns>/v1/messages`). With nothing queued it answers with a generated stream in the format the path
  implies: `--tokens` tokens (or N from a model id containing `tokens-N`), `--delay-ms` apart.

A response spec (every field optional):

    {"status": 200, "headers": {"retry-after": "1"},
     "json": {...} | "body": "raw text",          # a plain (non-streamed) response body
     "transcript": "openai_text.sse",             # stream tests/transcripts/<name>, byte-exact
     "events": ["data: ...\\n\\n", ...],           # or stream these strings
     "text": ["Hello", " world"],                 # or a generated answer of these pieces, in the
                                                  # path's format (OpenAI or Anthropic), with "usage":
     "usage": {"input": 12, "output": 2},         # the tokens it reports (default: 12 in, one per piece)
     "tool_call": {"id": "call_1", "name": "createDocument", "arguments": "{...}"},
                                                  # or a generated tool call (arguments streamed in
                                                  # "pieces": N parts, default 2), finish `tool_calls`
     "split": "event" | <int>,                    # write per SSE event (default) or in N-byte pieces
     "delay_ms": 0,                               # pause between writes
     "cut_after": N}                              # write N pieces, then drop the connection (RST)

Streams use chunked transfer encoding and keep-alive, like the real APIs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import re
import subprocess
import sys
import uuid
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

TRANSCRIPTS = Path(__file__).resolve().parent.parent / "transcripts"
_TOKENS_IN_MODEL = re.compile(r"tokens-(\d+)")


class _State:
    def __init__(self, tokens: int, delay_ms: float) -> None:
        self.tokens = tokens
        self.delay_ms = delay_ms
        self.queues: dict[str, deque[dict[str, Any]]] = defaultdict(deque)
        self.requests: dict[str, deque[dict[str, Any]]] = defaultdict(lambda: deque(maxlen=200))


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str], bytes] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = b""
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            body += chunk[:-2]
    return method, path, headers, body


def _plain(writer: asyncio.StreamWriter, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    reason = http.client.responses.get(status, "Unknown")
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        f"{extra}\r\n".encode()
        + body
    )


def _split_events(text: str) -> list[str]:
    """SSE text -> one string per event (each keeps its trailing blank line), byte-exact when re-joined."""
    return [m.group(0) for m in re.finditer(r".*?(?:\r?\n\r?\n|\Z)", text, re.S) if m.group(0)]


async def _stream(writer: asyncio.StreamWriter, spec: dict[str, Any], pieces: list[bytes]) -> None:
    status = int(spec.get("status", 200))
    extra = "".join(f"{k}: {v}\r\n" for k, v in spec.get("headers", {}).items())
    writer.write(
        f"HTTP/1.1 {status} {http.client.responses.get(status, 'OK')}\r\ncontent-type: text/event-stream\r\n"
        f"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n{extra}\r\n".encode()
    )
    delay = float(spec.get("delay_ms", 0)) / 1000
    cut_after = spec.get("cut_after")
    for i, piece in enumerate(pieces):
        if cut_after is not None and i >= int(cut_after):
            await writer.drain()
            writer.transport.abort()
            return
        writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        if delay:
            await writer.drain()
            await asyncio.sleep(delay)
        elif i % 64 == 63:
            await writer.drain()
    writer.write(b"0\r\n\r\n")


def _pieces(spec: dict[str, Any], text: str) -> list[bytes]:
    split = spec.get("split", "event")
    if isinstance(split, int):
        data = text.encode()
        return [data[i : i + split] for i in range(0, len(data), split)]
    return [e.encode() for e in _split_events(text)]


def _openai_chunk(model: str, choices: str, usage: str = "null") -> str:
    return (
        f'data: {{"id":"chatcmpl-fake","object":"chat.completion.chunk","created":1700000000,'
        f'"model":"{model}","service_tier":"default","system_fingerprint":"fp_fake","choices":[{choices}],'
        f'"usage":{usage}}}\n\n'
    )


def _openai_end(model: str, finish: str, input_tokens: int, output_tokens: int) -> list[str]:
    usage = (
        f'{{"prompt_tokens":{input_tokens},"completion_tokens":{output_tokens},'
        f'"total_tokens":{input_tokens + output_tokens}}}'
    )
    return [
        _openai_chunk(model, f'{{"index":0,"delta":{{}},"logprobs":null,"finish_reason":"{finish}"}}'),
        _openai_chunk(model, "", usage),
        "data: [DONE]\n\n",
    ]


def openai_stream(model: str, tokens: int) -> list[str]:
    """A generated `chat.completion.chunk` stream, shaped exactly like OpenAI's (role chunk, content
    chunks, finish chunk, usage chunk, [DONE])."""
    return openai_text_stream(model, [f"t{i} " for i in range(tokens)])


def openai_text_stream(model: str, pieces: list[str], usage: tuple[int, int] | None = None) -> list[str]:
    """An OpenAI answer streaming `pieces` as content deltas; `usage` (input, output) defaults to 12 and one
    token per piece."""
    first = '{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}'
    out = [_openai_chunk(model, first)]
    out += [
        _openai_chunk(
            model, f'{{"index":0,"delta":{{"content":{json.dumps(p)}}},"logprobs":null,"finish_reason":null}}'
        )
        for p in pieces
    ]
    input_tokens, output_tokens = usage or (12, len(pieces))
    return out + _openai_end(model, "stop", input_tokens, output_tokens)


def openai_tool_call_stream(
    model: str, call_id: str, name: str, arguments: str, *, pieces: int = 2, usage: tuple[int, int] = (20, 10)
) -> list[str]:
    """An OpenAI answer that is one tool call, its arguments streamed in `pieces` parts (as OpenAI does)."""
    head = json.dumps(
        {
            "index": 0,
            "delta": {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"index": 0, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
                ],
                "refusal": None,
            },
            "logprobs": None,
            "finish_reason": None,
        },
        separators=(",", ":"),
    )
    out = [_openai_chunk(model, head)]
    for part in _parts(arguments, pieces):
        delta = {"tool_calls": [{"index": 0, "function": {"arguments": part}}]}
        out.append(
            _openai_chunk(
                model,
                json.dumps(
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}, separators=(",", ":")
                ),
            )
        )
    return out + _openai_end(model, "tool_calls", *usage)


def _parts(text: str, n: int) -> list[str]:
    size = max(1, -(-len(text) // max(1, n)))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _anthropic_event(name: str, data: str) -> str:
    return f"event: {name}\ndata: {data}\n\n"


def _anthropic_start(model: str, input_tokens: int) -> str:
    return _anthropic_event(
        "message_start",
        '{"type":"message_start","message":{"id":"msg_fake","type":"message","role":"assistant",'
        f'"model":"{model}","content":[],"stop_reason":null,"stop_sequence":null,'
        f'"usage":{{"input_tokens":{input_tokens},"cache_creation_input_tokens":0,"cache_read_input_tokens":0,'
        '"output_tokens":1}}}',
    )


def _anthropic_end(stop_reason: str, output_tokens: int) -> list[str]:
    return [
        _anthropic_event("content_block_stop", '{"type":"content_block_stop","index":0}'),
        _anthropic_event(
            "message_delta",
            f'{{"type":"message_delta","delta":{{"stop_reason":"{stop_reason}","stop_sequence":null}},'
            f'"usage":{{"output_tokens":{output_tokens}}}}}',
        ),
        _anthropic_event("message_stop", '{"type":"message_stop"}'),
    ]


def anthropic_stream(model: str, tokens: int) -> list[str]:
    """A generated `message_start … message_stop` stream, shaped exactly like Anthropic's."""
    return anthropic_text_stream(model, [f"t{i} " for i in range(tokens)])


def anthropic_text_stream(model: str, pieces: list[str], usage: tuple[int, int] | None = None) -> list[str]:
    """An Anthropic answer streaming `pieces` as `text_delta`s."""
    input_tokens, output_tokens = usage or (12, len(pieces))
    out = [
        _anthropic_start(model, input_tokens),
        _anthropic_event(
            "content_block_start",
            '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}',
        ),
        _anthropic_event("ping", '{"type": "ping"}'),
    ]
    out += [
        _anthropic_event(
            "content_block_delta",
            json.dumps(
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}},
                separators=(",", ":"),
            ),
        )
        for p in pieces
    ]
    return out + _anthropic_end("end_turn", output_tokens)


def anthropic_tool_use_stream(
    model: str, call_id: str, name: str, arguments: str, *, pieces: int = 2, usage: tuple[int, int] = (20, 10)
) -> list[str]:
    """An Anthropic answer that is one `tool_use` block, its input streamed as `input_json_delta`s."""
    block = {"type": "tool_use", "id": call_id, "name": name, "input": {}}
    out = [
        _anthropic_start(model, usage[0]),
        _anthropic_event(
            "content_block_start",
            json.dumps({"type": "content_block_start", "index": 0, "content_block": block}, separators=(",", ":")),
        ),
        _anthropic_event(
            "content_block_delta",
            '{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":""}}',
        ),
    ]
    for part in _parts(arguments, pieces):
        delta = {"type": "input_json_delta", "partial_json": part}
        out.append(
            _anthropic_event(
                "content_block_delta",
                json.dumps({"type": "content_block_delta", "index": 0, "delta": delta}, separators=(",", ":")),
            )
        )
    return out + _anthropic_end("tool_use", usage[1])


def _scripted(spec: dict[str, Any], model: str, anthropic: bool) -> str | None:
    """The stream text of a `text` or `tool_call` spec, in the path's format; None for other specs."""
    if "text" in spec:
        usage = spec.get("usage")
        pair = (int(usage["input"]), int(usage["output"])) if usage else None
        pieces = [str(p) for p in spec["text"]]
        return "".join(
            anthropic_text_stream(model, pieces, pair) if anthropic else openai_text_stream(model, pieces, pair)
        )
    if "tool_call" in spec:
        call = spec["tool_call"]
        make = anthropic_tool_use_stream if anthropic else openai_tool_call_stream
        return "".join(
            make(model, str(call["id"]), str(call["name"]), str(call["arguments"]), pieces=int(call.get("pieces", 2)))
        )
    return None


async def _upstream(state: _State, writer: asyncio.StreamWriter, ns: str, path: str, body: Any) -> None:
    queue = state.queues.get(ns)
    spec: dict[str, Any] = queue.popleft() if queue else {}
    if "json" in spec or "body" in spec:
        raw = json.dumps(spec["json"]).encode() if "json" in spec else str(spec["body"]).encode()
        _plain(writer, int(spec.get("status", 200)), raw, spec.get("headers"))
        return
    model = str(body.get("model", "fake")) if isinstance(body, dict) else "fake"
    if "transcript" in spec:
        text = (TRANSCRIPTS / spec["transcript"]).read_text()
    elif "events" in spec:
        text = "".join(spec["events"])
    elif (scripted := _scripted(spec, model, path.endswith("/messages"))) is not None:
        text = scripted
    else:
        match = _TOKENS_IN_MODEL.search(model)
        tokens = int(match.group(1)) if match else state.tokens
        events = anthropic_stream(model, tokens) if path.endswith("/messages") else openai_stream(model, tokens)
        spec = {"delay_ms": state.delay_ms, **spec}
        await _stream(writer, spec, [e.encode() for e in events])
        return
    await _stream(writer, spec, _pieces(spec, text))


async def _serve(state: _State, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while (request := await _read_request(reader)) is not None:
            method, path, headers, raw_body = request
            parts = path.split("?", 1)[0].strip("/").split("/")
            try:
                body: Any = json.loads(raw_body) if raw_body else None
            except ValueError:
                body = raw_body.decode("utf-8", "replace")
            if parts[0] == "_fake" and len(parts) == 3:
                ns, action = parts[1], parts[2]
                if action == "enqueue":
                    state.queues[ns].extend(body)
                    _plain(writer, 200, b'{"ok":true}')
                elif action == "requests":
                    _plain(writer, 200, json.dumps(list(state.requests[ns])).encode())
                else:
                    _plain(writer, 404, b'{"error":"unknown control action"}')
            else:
                ns = parts[0]
                state.requests[ns].append({"method": method, "path": path, "headers": headers, "body": body})
                await _upstream(state, writer, ns, path, body)
            await writer.drain()
            if writer.transport.is_closing():
                return
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def serve(host: str, port: int, tokens: int, delay_ms: float) -> None:
    state = _State(tokens, delay_ms)
    server = await asyncio.start_server(lambda r, w: _serve(state, r, w), host, port, backlog=1024)
    bound = server.sockets[0].getsockname()[1]
    print(f"READY {bound}", flush=True)
    async with server:
        await server.serve_forever()


class FakeUpstream:
    """Runs the fake in a subprocess and talks to its control endpoints (blocking stdlib HTTP: the calls are
    tiny and go to another process, so they are safe from async tests)."""

    def __init__(self, process: subprocess.Popen[str], port: int) -> None:
        self.process = process
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    @classmethod
    def start(cls, *, tokens: int = 8, delay_ms: float = 0.0) -> FakeUpstream:
        process = subprocess.Popen(
            [sys.executable, __file__, "--port", "0", "--tokens", str(tokens), "--delay-ms", str(delay_ms)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("READY "):
            process.kill()
            raise RuntimeError(f"fake upstream did not start: {line!r}")
        return cls(process, int(line.split()[1]))

    def namespace(self) -> str:
        return f"ns{uuid.uuid4().hex[:12]}"

    def enqueue(self, ns: str, *specs: dict[str, Any]) -> None:
        self._call("POST", f"/_fake/{ns}/enqueue", json.dumps(list(specs)).encode())

    def requests(self, ns: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = json.loads(self._call("GET", f"/_fake/{ns}/requests"))
        return result

    def _call(self, method: str, path: str, body: bytes | None = None) -> bytes:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request(method, path, body=body, headers={"content-type": "application/json"})
            return conn.getresponse().read()
        finally:
            conn.close()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()

    def __enter__(self) -> FakeUpstream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tokens", type=int, default=8)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port, args.tokens, args.delay_ms))


if __name__ == "__main__":
    main()
