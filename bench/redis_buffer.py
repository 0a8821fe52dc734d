"""Redis stream buffer costs: append latency vs memory, Redis writes per token, resume cost vs stream length.

    .venv/bin/python -m bench.redis_buffer                 # starts a private redis-server on a free port
    .venv/bin/python -m bench.redis_buffer --redis-url redis://127.0.0.1:6379/0

Counts come from Redis's own `INFO commandstats` deltas (so they include every round trip the buffer
makes), taken on a private server so nothing else pollutes them. Figures are ratios to the memory buffer
measured in the same run, because these machines are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import subprocess
import time
from typing import Any
from uuid import uuid4

from chatstream.redis_client import connect_redis
from chatstream.streams.memory import MemoryStreamBuffer
from chatstream.streams.producer import StreamWriter
from chatstream.streams.redis import RedisStreamBuffer

FRAME = b'{"type":"text-delta","id":"txt-0","delta":" token"}'


async def commandstats(client: Any) -> dict[str, int]:
    info = await client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(stats["calls"]) for name, stats in info.items()}


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0) > 0}


async def append_cost(buffer: Any, batch: int, rounds: int) -> float:
    """Microseconds per `append` of `batch` frames (one stream, sequential appends)."""
    sid = f"bench-{uuid4().hex}"
    await buffer.create(sid, "run")
    frames = [FRAME] * batch
    started = time.perf_counter()
    for _ in range(rounds):
        await buffer.append(sid, frames)
    elapsed = time.perf_counter() - started
    await buffer.append(sid, [], final=True)
    await buffer.delete(sid)
    return elapsed / rounds * 1e6


async def relay(buffer: Any, tokens: int, gap: float, *, batched: bool, window: float) -> tuple[float, int]:
    """Produce `tokens` frames through the real `StreamWriter` (a token every `gap` s) while one reader
    follows; returns (seconds, buffer writes)."""
    sid = f"relay-{uuid4().hex}"
    await buffer.create(sid, "run")
    writer = StreamWriter(buffer, sid, batched=batched, window=window)

    async def follow() -> int:
        seen, cursor = 0, None
        while True:
            result = await buffer.read(sid, cursor, block=1.0)
            seen += len(result.entries)
            if result.entries:
                cursor = result.entries[-1].cursor
            if result.done:
                return seen

    reader = asyncio.create_task(follow())
    started = time.perf_counter()
    for _ in range(tokens):
        await writer.write(FRAME)
        await asyncio.sleep(gap)
    await writer.close([b'{"type":"finish"}'])
    seen = await reader
    elapsed = time.perf_counter() - started
    assert seen == tokens + 1, (seen, tokens)
    await buffer.delete(sid)
    return elapsed, writer.writes


async def relay_many(
    buffer: Any, streams: int, tokens: int, gap: float, *, window: float, remote_reader: Any = None
) -> tuple[float, int, float]:
    """`streams` concurrent runs of `tokens` frames, a token every `gap` s each, through `StreamWriter`s,
    one live reader per stream (on `remote_reader`, another instance, when given); returns (seconds,
    appends, p50 delivery lag in ms: from a frame's write to its reader seeing it)."""
    lags: list[float] = []
    appends = 0

    async def one(k: int) -> None:
        nonlocal appends
        sid = f"many-{uuid4().hex}"
        await buffer.create(sid, "run")
        writer = StreamWriter(buffer, sid, batched=True, window=window)
        sent: list[float] = []
        reader_buffer = remote_reader or buffer

        async def follow() -> int:
            seen, cursor = 0, None
            while True:
                result = await reader_buffer.read(sid, cursor, block=1.0)
                now = time.perf_counter()
                for _ in result.entries:
                    if seen < len(sent):
                        lags.append(now - sent[seen])
                    seen += 1
                if result.entries:
                    cursor = result.entries[-1].cursor
                if result.done:
                    return seen

        reader = asyncio.create_task(follow())
        await asyncio.sleep(gap * k / streams)  # spread the streams' phases over one token gap
        for _ in range(tokens):
            sent.append(time.perf_counter())
            await writer.write(FRAME)
            await asyncio.sleep(gap)
        await writer.close([b'{"type":"finish"}'])
        assert await reader == tokens + 1
        appends += writer.writes
        await buffer.delete(sid)

    started = time.perf_counter()
    await asyncio.gather(*(one(k) for k in range(streams)))
    lags.sort()
    return time.perf_counter() - started, appends, lags[len(lags) // 2] * 1000


async def resume_cost(buffer: Any, length: int, replay: int, rounds: int = 200, *, reader: Any = None) -> float:
    """Microseconds to read the last `replay` frames of a stream of `length` single-frame entries, on
    `reader` (another instance: the producing one would answer from its local copy) when given."""
    reader = reader or buffer
    sid = f"resume-{uuid4().hex}"
    await buffer.create(sid, "run")
    for start in range(0, length, 1000):
        # Built entry by entry so every frame is its own stream entry (the worst case for a resume).
        await asyncio.gather(*(buffer.append(sid, [FRAME]) for _ in range(min(1000, length - start))))
    entries: list[Any] = []
    while True:  # one read returns at most `read_count` entries
        result = await reader.read(sid, entries[-1].cursor if entries else None)
        if not result.entries:
            break
        entries.extend(result.entries)
    cursor = entries[-replay - 1].cursor
    started = time.perf_counter()
    for _ in range(rounds):
        result = await reader.read(sid, cursor)
        assert len(result.entries) == replay
    elapsed = time.perf_counter() - started
    await buffer.delete(sid)
    return elapsed / rounds * 1e6


async def main(url: str | None) -> None:
    proc = None
    if url is None:
        server = shutil.which("redis-server")
        if server is None:
            raise SystemExit("no redis-server; pass --redis-url")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        proc = subprocess.Popen(
            [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        url = f"redis://127.0.0.1:{port}/0"
        await asyncio.sleep(0.3)
    client = connect_redis(url)
    prefix = f"bench:{uuid4().hex}"
    redis_buffer = RedisStreamBuffer(client, prefix=prefix)
    other_client = connect_redis(url)
    memory_buffer = MemoryStreamBuffer()
    try:
        await client.ping()
        started = time.perf_counter()
        for _ in range(2000):
            await client.ping()
        ping_us = (time.perf_counter() - started) / 2000 * 1e6
        print(f"baseline: one PING round trip {ping_us:.1f} µs")
        print("== append cost (µs per append call; one Redis round trip each) ==")
        for batch in (1, 8, 32):
            mem = await append_cost(memory_buffer, batch, 5000)
            red = await append_cost(redis_buffer, batch, 2000)
            print(
                f"batch {batch:>2}: memory {mem:7.2f}  redis {red:7.1f}  ratio {red / mem:6.1f}x  "
                f"redis per frame {red / batch:6.1f}"
            )

        print("== Redis ops per token (StreamWriter, window 2 ms, one live reader) ==")
        for label, tokens, gap in (
            ("burst 500 tokens, no delay", 500, 0.0),
            ("paced 100 tokens, 1 ms gap", 100, 0.001),
            ("paced 50 tokens, 20 ms gap (50 tok/s)", 50, 0.02),
        ):
            before = await commandstats(client)
            calls = redis_buffer.write_calls
            seconds, writes = await relay(redis_buffer, tokens, gap, batched=True, window=0.002)
            calls = redis_buffer.write_calls - calls
            ops = delta(before, await commandstats(client))
            ops.pop("info", None)
            total = sum(ops.values())
            # Writes: one EVALSHA of append_many.lua per round trip plus create; the live reader is on the
            # producing instance, so it reads the local copy (no Redis reads).
            print(
                f"{label}: {writes} appends in {calls} write calls, writes/token {calls / tokens:.3f}; "
                f"all commands incl. the reader {total} ({total / tokens:.2f}/token) {ops}; {seconds * 1000:.0f} ms"
            )

        print("== 100 concurrent streams at 50 tokens/s each (window 2 ms, a live reader per stream) ==")
        other = RedisStreamBuffer(other_client, prefix=prefix)  # another instance on the same Redis
        for label, reader in (("readers on the producing instance", None), ("readers on another instance", other)):
            before = await commandstats(client)
            calls = redis_buffer.write_calls
            seconds, appends, lag = await relay_many(redis_buffer, 100, 50, 0.02, window=0.002, remote_reader=reader)
            ops = delta(before, await commandstats(client))
            ops.pop("info", None)
            tokens = 100 * 50
            writes = redis_buffer.write_calls - calls
            print(
                f"{label}: {appends} appends in {writes} write calls, writes/token {writes / tokens:.3f}; "
                f"all commands {sum(ops.values())} ({sum(ops.values()) / tokens:.2f}/token) {ops}; "
                f"delivery lag p50 {lag:.2f} ms; {seconds * 1000:.0f} ms"
            )
        mem_seconds, _, mem_lag = await relay_many(memory_buffer, 100, 50, 0.02, window=0.0)
        print(f"memory buffer, same shape: delivery lag p50 {mem_lag:.2f} ms; {mem_seconds * 1000:.0f} ms")

        print("== resume cost: read the last 10 frames (µs) ==")
        for length in (1_000, 20_000):
            print(
                f"stream of {length:>6} entries: "
                f"redis {await resume_cost(redis_buffer, length, 10, reader=other):7.1f}  "
                f"local copy {await resume_cost(redis_buffer, length, 10):6.1f}  "
                f"memory {await resume_cost(memory_buffer, length, 10):6.1f}"
            )
    finally:
        await client.aclose()
        await other_client.aclose()
        if proc is not None:
            proc.terminate()
            proc.wait(5)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default=None)
    asyncio.run(main(parser.parse_args().redis_url))
