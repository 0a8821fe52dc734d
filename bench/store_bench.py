"""The conversation store on the path to the first token: operations per second of each store, and the time
to first token it adds to a real server, every figure next to the memory store measured in the same run.

    .venv/bin/python -m bench.store_bench --postgres-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres
    .venv/bin/python -m bench.store_bench --quick          # shorter; PostgreSQL from CHAT_TEST_POSTGRES_URL

Stores: memory, Redis (a private `redis-server` on a free port, or `--redis-url`), SQLite (a file in a temp
dir) and PostgreSQL (a fresh database on the server `--postgres-url` names, dropped afterwards; skipped without
one). Part 1, in this process: the operations a chat turn makes (`put_conversation` + `save_message` of the
user message + `list_messages(limit=20)` for the history: the part before the first token; then the answer's
`save_message`), and the history and listing reads alone, at concurrency 1 and 16, in interleaved slices.
Part 2: `python -m app` with the mock provider answering one token, `--requests` sequential chats, time to the
first `text-delta` frame (p50, p90); without Redis (memory, SQLite, PostgreSQL stores, memory buffer) and with
it (Redis streams and limits; Redis, SQLite, PostgreSQL stores).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx

from chatstream.models import Conversation, Message, MessagePart
from chatstream.redis_client import connect_redis
from chatstream.store.memory import MemoryConversationStore
from chatstream.store.redis import RedisConversationStore
from chatstream.store.sql.store import SqlConversationStore
from tests.support import sql
from tests.support.server import AUTH, ServerProcess, free_port
from tests.support.sse import iter_frames

Op = Callable[[int], Awaitable[object]]


def message(cid: str, mid: str, role: str = "user") -> Message:
    text = "Tell me about the weather in Oslo tomorrow, and what to wear." if role == "user" else "word " * 120
    return Message(id=mid, conversation_id=cid, role=role, parts=(MessagePart(type="text", text=text),))  # type: ignore[arg-type]


def operations(store: Any, tag: str) -> dict[str, Op]:
    """The measured operations on `store`; conversations are per worker slot, messages fresh per call."""
    seeded: set[str] = set()

    async def turn(i: int) -> None:
        cid = f"{tag}-c{i % 64}"
        if cid not in seeded:
            seeded.add(cid)
            await store.put_conversation(Conversation(id=cid, user_id=f"{tag}-u"))
        await store.get_conversation(cid)
        await store.save_message(message(cid, f"m{i}u"))
        await store.list_messages(cid, limit=20)

    async def answer(i: int) -> None:
        await store.save_message(message(f"{tag}-c{i % 64}", f"m{i}a", "assistant"))

    async def history(i: int) -> None:
        await store.list_messages(f"{tag}-c{i % 64}", limit=20)

    async def listing(i: int) -> None:
        await store.list_conversations(f"{tag}-u", limit=20)

    return {"turn before the first token": turn, "answer save": answer, "history (20)": history, "listing": listing}


async def rate(op: Op, concurrency: int, seconds: float, counter: itertools.count[int]) -> tuple[int, float]:
    deadline = time.perf_counter() + seconds
    done = 0

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await op(next(counter))
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done, time.perf_counter() - start


async def part1(stores: dict[str, Any], seconds: float, rounds: int = 6) -> None:
    ops = {name: operations(store, f"b{uuid4().hex[:8]}") for name, store in stores.items()}
    kinds = list(next(iter(ops.values())))
    counter = itertools.count()
    for name in stores:  # warm-up: connections opened, statements prepared, conversations seeded
        for kind in kinds:
            for _ in range(100):
                await ops[name][kind](next(counter))
    print("\n## Store operations per second (ratio to memory)\n")
    print("| operation | concurrency | " + " | ".join(stores) + " |")
    print("|---|---|" + "---|" * len(stores))
    for kind in kinds:
        for concurrency in (1, 16):
            totals = {name: [0, 0.0] for name in stores}
            for _ in range(rounds):
                for name in stores:
                    done, elapsed = await rate(ops[name][kind], concurrency, seconds / rounds, counter)
                    totals[name][0] += done
                    totals[name][1] += elapsed
            per_s = {name: done / elapsed for name, (done, elapsed) in totals.items()}
            base = per_s["memory"]
            cells = [f"{v:,.0f} ({v / base:.3f}x)" if n != "memory" else f"{v:,.0f}" for n, v in per_s.items()]
            print(f"| {kind} | {concurrency} | " + " | ".join(cells) + " |", flush=True)


async def ttft(url: str, requests: int) -> list[float]:
    body = {"parts": [{"type": "text", "text": "hello mock:tokens=1"}]}
    times = []
    async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=30) as client:
        for i in range(requests + 20):  # the first 20 warm up
            start = time.perf_counter()
            async with client.stream("POST", "/api/chat", json=body) as r:
                assert r.status_code == 200, await r.aread()
                first = None
                async for frame in iter_frames(r):  # read to the end: the next chat finds the conversation free
                    if frame.type == "text-delta" and first is None:
                        first = time.perf_counter() - start
                if i >= 20 and first is not None:
                    times.append(first)
    return times


def part2(setups: dict[str, dict[str, str]], requests: int) -> None:
    results: dict[str, list[float]] = {}
    for name, env in setups.items():
        with ServerProcess({**env, "CHAT_TITLE_GENERATION": "false", "CHAT_QUOTA_PREMIUM_PER_DAY": "10000000"}) as s:
            results[name] = asyncio.run(ttft(s.url, requests))
    base = statistics.median(results["memory"])
    print(f"\n## Time to first token, {requests} sequential chats (mock provider, one token)\n")
    print("| server | p50 | p90 | p50 added over memory | p50 / memory |")
    print("|---|---|---|---|---|")
    for name, times in results.items():
        p50, p90 = statistics.median(times), statistics.quantiles(times, n=10)[-1]
        print(
            f"| {name} | {p50 * 1e3:.2f} ms | {p90 * 1e3:.2f} ms | {(p50 - base) * 1e3:+.2f} ms | {p50 / base:.2f}x |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", help="default: a private redis-server on a free port")
    parser.add_argument("--postgres-url", default=sql.postgres_url(), help="default: CHAT_TEST_POSTGRES_URL")
    parser.add_argument("--seconds", type=float, default=3.0, help="per operation and concurrency, per store")
    parser.add_argument("--requests", type=int, default=300, help="chats per server in part 2")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.requests = 1.0, 100
    procs: list[subprocess.Popen[bytes]] = []
    redis_url = args.redis_url
    if redis_url is None:
        port = free_port()
        server = shutil.which("redis-server")
        assert server, "redis-server is not installed"
        procs.append(subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]))
        redis_url = f"redis://127.0.0.1:{port}/0"
        time.sleep(0.5)
    tmp = Path(tempfile.mkdtemp(prefix="store-bench-"))
    pg_db = sql.create_database(args.postgres_url) if args.postgres_url else None
    try:
        sqlite_url = sql.sqlite_url(tmp / "bench.db")
        asyncio.run(sql.migrate(sqlite_url))
        if pg_db:
            asyncio.run(sql.migrate(pg_db))
        print(
            f"redis {redis_url}, sqlite {sqlite_url}, postgres {pg_db and 'a fresh database'}; load {os.getloadavg()}"
        )

        async def run_part1() -> None:
            client = connect_redis(redis_url)
            stores: dict[str, Any] = {
                "memory": MemoryConversationStore(),
                "redis": RedisConversationStore(client, prefix=f"bench:{uuid4().hex}"),
                "sqlite": SqlConversationStore.from_url(sqlite_url),
            }
            if pg_db:
                stores["postgres"] = SqlConversationStore.from_url(pg_db)
            try:
                await part1(stores, args.seconds)
            finally:
                for store in stores.values():
                    await store.aclose()
                await client.aclose()

        asyncio.run(run_part1())
        prefix = {"CHAT_REDIS_PREFIX": f"bench:{uuid4().hex}"}
        setups = {
            "memory": {"DATABASE_URL": "memory://"},
            "sqlite": {"DATABASE_URL": sql.sqlite_url(tmp / "server.db")},
            **({"postgres": {"DATABASE_URL": pg_db}} if pg_db else {}),
            "redis (streams, limits, store)": {"REDIS_URL": redis_url, **prefix},
            "redis + sqlite store": {"REDIS_URL": redis_url, **prefix, "DATABASE_URL": sql.sqlite_url(tmp / "r.db")},
            **({"redis + postgres store": {"REDIS_URL": redis_url, **prefix, "DATABASE_URL": pg_db}} if pg_db else {}),
        }
        part2(setups, args.requests)
    finally:
        if pg_db:
            sql.drop_database(pg_db)
        shutil.rmtree(tmp, ignore_errors=True)
        for proc in procs:
            proc.terminate()
            proc.wait(5)


if __name__ == "__main__":
    main()
