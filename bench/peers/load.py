"""The peers' load client: bench/load.py's lean raw-asyncio HTTP/1.1 client, for any SSE dialect, bounded.

    python -m bench.peers.load --url http://127.0.0.1:4000/v1/chat/completions --format openai \
        --body '{"model": "bench-tokens-50", "stream": true, "messages": [...]}' \
        --concurrency 100 --requests 100 --expect-tokens 50 --timeout 120

It differs from bench/load.py in what a peer comparison needs:

* it counts frames as SSE `data:` lines, and token frames by the dialect: `ui` (ours and the AI SDK's UI
  message stream, `"type":"text-delta"`) or `openai` (chat completion chunks with non-empty
  `delta.content`, the fake upstream read directly and LiteLLM's proxy);
* a stream that does not carry exactly `--expect-tokens` token frames is an error (a relay that drops,
  merges or duplicates tokens does not pass as fast);
* every stream has a deadline and so has the whole phase (`--timeout`): streams still open then are
  cancelled and counted as errors, so a peer that stalls at 1,000 streams reports an error rate instead
  of hanging the run.

Prints one JSON object: streams, errors (and the first few distinct ones), frames, token frames, wall
time, and per-stream time-to-first-token and total time percentiles (ms) over the streams that succeeded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

TOKEN_PATTERNS = {
    "ui": re.compile(rb'"type":\s?"text-delta"'),
    "openai": re.compile(rb'"content":\s?"[^"]'),
}


class StreamError(Exception):
    """A stream that failed: a non-200 answer or the wrong number of token frames."""


async def _body(reader: asyncio.StreamReader, chunked: bool) -> AsyncIterator[bytes]:
    """Body pieces, de-chunked."""
    if not chunked:
        while piece := await reader.read(65536):
            yield piece
        return
    while True:
        size_line = await reader.readline()
        if not size_line:
            raise StreamError("connection closed inside a chunked body")
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            await reader.readline()
            return
        yield await reader.readexactly(size)
        await reader.readexactly(2)


async def one_stream(
    host: str, port: int, path: str, body: bytes, headers: list[str], pattern: re.Pattern[bytes], expect: int | None
) -> dict[str, float]:
    start = time.perf_counter()
    reader, writer = await asyncio.open_connection(host, port)
    try:
        head = [
            f"POST {path} HTTP/1.1",
            f"Host: {host}:{port}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            "Accept: text/event-stream",
            "Connection: close",
            *headers,
        ]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        await writer.drain()
        status = await reader.readline()
        chunked = False
        while (line := await reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"transfer-encoding:") and b"chunked" in line.lower():
                chunked = True
        if b" 200 " not in status:
            rest = b"".join([p async for p in _body(reader, chunked)])
            raise StreamError(f"{status.decode().strip()}: {rest[:200]!r}")
        frames = tokens = 0
        first: float | None = None
        tail = b""
        async for piece in _body(reader, chunked):
            data = tail + piece
            if b"\r" in data:
                data = data.replace(b"\r\n", b"\n")
            # Count whole events only; keep an unfinished one for the next piece.
            cut = data.rfind(b"\n\n")
            if cut < 0:
                tail = data
                continue
            complete, tail = data[: cut + 2], data[cut + 2 :]
            frames += (b"\n" + complete).count(b"\ndata:")
            found = len(pattern.findall(complete))
            if found and first is None:
                first = time.perf_counter()
            tokens += found
    finally:
        writer.close()
    end = time.perf_counter()
    if expect is not None and tokens != expect:
        raise StreamError(f"{tokens} token frames, expected {expect} ({frames} frames)")
    return {"ttft": ((first or end) - start) * 1000, "total": (end - start) * 1000, "frames": frames, "tokens": tokens}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def run(
    url: str,
    body: bytes,
    headers: list[str],
    *,
    dialect: str,
    concurrency: int,
    requests: int,
    expect: int | None,
    timeout: float,
) -> dict[str, Any]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    pattern = TOKEN_PATTERNS[dialect]
    remaining = requests
    results: list[dict[str, float]] = []
    errors: list[str] = []
    deadline = time.monotonic() + timeout

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            try:
                stream = one_stream(host, port, parts.path, body, headers, pattern, expect)
                results.append(await asyncio.wait_for(stream, max(0.001, deadline - time.monotonic())))
            except TimeoutError:
                errors.append("timeout: the phase's deadline passed with the stream open")
            except (OSError, StreamError, ValueError, asyncio.IncompleteReadError) as exc:
                errors.append(repr(exc)[:300])

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - start
    errors += ["not started: the phase's deadline passed"] * max(0, remaining)
    ttft = [r["ttft"] for r in results]
    total = [r["total"] for r in results]
    token_frames = sum(r["tokens"] for r in results)
    return {
        "requests": requests,
        "streams": len(results),
        "errors": len(errors),
        "error_rate": len(errors) / requests if requests else 0.0,
        "distinct_errors": sorted(set(errors))[:5],
        "frames": sum(r["frames"] for r in results),
        "token_frames": token_frames,
        "wall_s": wall,
        "token_frames_per_s": token_frames / wall if wall else 0.0,
        "ttft_p50_ms": statistics.median(ttft) if ttft else 0.0,
        "ttft_p99_ms": _pct(ttft, 0.99),
        "total_p50_ms": statistics.median(total) if total else 0.0,
        "total_p99_ms": _pct(total, 0.99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="SSE load client for the peer benchmark")
    parser.add_argument("--url", required=True)
    parser.add_argument("--body", required=True)
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--format", choices=sorted(TOKEN_PATTERNS), default="ui", dest="dialect")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--requests", type=int, default=1)
    parser.add_argument("--expect-tokens", type=int, default=None, help="token frames every stream must carry")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds for the whole phase")
    args = parser.parse_args()
    result = asyncio.run(
        run(
            args.url,
            args.body.encode(),
            args.header,
            dialect=args.dialect,
            concurrency=args.concurrency,
            requests=args.requests,
            expect=args.expect_tokens,
            timeout=args.timeout,
        )
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
