"""A lean SSE load client, run as its own process so it never shares a core's event loop with the server.

It speaks just enough HTTP/1.1 (one request per connection, chunked or close-delimited bodies) to time
streams without a client library's parsing cost dominating the measurement:

    python -m bench.load --url http://127.0.0.1:8000/api/chat --body '{"parts": [...]}' \
        --header 'Authorization: Bearer x' --concurrency 50 --requests 200

`--ramp S` spreads the workers' first requests over S seconds. Prints one JSON object: streams, frames,
token frames, wall time, and per-stream time-to-first-token and total time percentiles (ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any
from urllib.parse import urlsplit

TOKEN_MARKERS = (b'"text-delta"', b'{"content":"')


async def _read_body(reader: asyncio.StreamReader, chunked: bool) -> Any:
    """Yield body pieces, de-chunked."""
    if not chunked:
        while piece := await reader.read(65536):
            yield piece
        return
    while True:
        size_line = await reader.readline()
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            await reader.readline()
            return
        yield await reader.readexactly(size)
        await reader.readexactly(2)


async def one_stream(host: str, port: int, path: str, body: bytes, headers: list[str]) -> dict[str, float]:
    start = time.perf_counter()
    reader, writer = await asyncio.open_connection(host, port)
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
        rest = b"".join([p async for p in _read_body(reader, chunked)])
        writer.close()
        raise RuntimeError(f"{status.decode().strip()}: {rest[:300]!r}")
    frames = tokens = 0
    first: float | None = None
    tail = b""
    async for piece in _read_body(reader, chunked):
        data = tail + piece
        # Count whole events only; keep an unfinished one for the next piece.
        cut = data.rfind(b"\n\n")
        if cut < 0:
            tail = data
            continue
        complete, tail = data[: cut + 2], data[cut + 2 :]
        frames += complete.count(b"\n\n")
        found = sum(complete.count(m) for m in TOKEN_MARKERS)
        if found and first is None:
            first = time.perf_counter()
        tokens += found
    writer.close()
    end = time.perf_counter()
    return {"ttft": ((first or end) - start) * 1000, "total": (end - start) * 1000, "frames": frames, "tokens": tokens}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def run(
    url: str, body: bytes, headers: list[str], concurrency: int, requests: int, ramp: float = 0.0
) -> dict[str, Any]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    queue = list(range(requests))
    results: list[dict[str, float]] = []
    errors: list[str] = []

    async def worker(index: int) -> None:
        # Spread the workers' first requests over `ramp` seconds: arrivals over time, not one burst.
        await asyncio.sleep(ramp * index / concurrency)
        while queue:
            queue.pop()
            try:
                results.append(await one_stream(host, port, parts.path, body, headers))
            except (OSError, RuntimeError, asyncio.IncompleteReadError) as exc:
                errors.append(repr(exc)[:300])

    start = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    wall = time.perf_counter() - start
    ttft = [r["ttft"] for r in results]
    total = [r["total"] for r in results]
    token_frames = sum(r["tokens"] for r in results)
    return {
        "streams": len(results),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
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
    parser = argparse.ArgumentParser(description="SSE load client")
    parser.add_argument("--url", required=True)
    parser.add_argument("--body", required=True)
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--requests", type=int, default=1)
    parser.add_argument("--ramp", type=float, default=0.0, help="seconds over which workers start")
    args = parser.parse_args()
    result = asyncio.run(run(args.url, args.body.encode(), args.header, args.concurrency, args.requests, args.ramp))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
