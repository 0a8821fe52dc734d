"""An idle instance sends Redis nothing: after a burst of runs, no lease renewal outlives its run.

The burst is what used to leak them: with the event loop busy, a run's heartbeat task was often cancelled
in the instant redis-py finished a socket write, and Python 3.11's `asyncio.wait_for` (which redis-py writes
through) dropped that cancel, so the task beat on forever. Heartbeats every 50 ms make that instant
frequent. The Redis is this test's own redis-server, so every command it counts is the instance's.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from typing import TYPE_CHECKING

import httpx
import pytest
import redis

from tests.support.server import AUTH, ServerProcess, free_port

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

CHATS = 150


@pytest.fixture
def private_redis() -> Iterator[int]:
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    args = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    try:
        deadline = time.monotonic() + 5
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        yield port
    finally:
        client.close()
        proc.terminate()
        proc.wait(5)


def commands(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


async def test_an_idle_instance_sends_redis_nothing(private_redis: int) -> None:
    env = {
        "REDIS_URL": f"redis://127.0.0.1:{private_redis}/0",
        "CHAT_HEARTBEAT_SECONDS": "0.05",
        "CHAT_TITLE_GENERATION": "false",
        "CHAT_MAX_CONCURRENT_RUNS": "100000",
        "CHAT_QUOTA_PREMIUM_PER_DAY": "100000",
    }
    with ServerProcess(env) as server:
        body = {"parts": [{"type": "text", "text": "hi mock:tokens=20 mock:delay=10"}]}
        limits = httpx.Limits(max_connections=CHATS)
        async with httpx.AsyncClient(timeout=60, headers=AUTH, limits=limits) as client:

            async def chat() -> bytes:
                async with client.stream("POST", f"{server.url}/api/chat", json=body) as response:
                    assert response.status_code == 200
                    return b"".join([chunk async for chunk in response.aiter_bytes()])

            answers = await asyncio.gather(*(chat() for _ in range(CHATS)))
            assert all(b'"type":"finish"' in answer for answer in answers)
            # Every run has ended: the server says so itself.
            metrics = (await client.get(f"{server.url}/metrics")).text
            assert "chat_active_runs 0" in metrics
        await asyncio.sleep(1.0)  # a run's end (release, settle) is done well within this
        redis_client = redis.Redis(port=private_redis)
        try:
            before = commands(redis_client)
            await asyncio.sleep(3.0)
            after = commands(redis_client)
        finally:
            redis_client.close()
        sent = {name: n - before.get(name, 0) for name, n in after.items() if n != before.get(name, 0)}
        sent["info"] = sent.get("info", 0) - 1  # our own second INFO
        sent = {name: n for name, n in sent.items() if n}
        # At most a health probe (a PING on an idle pooled or PubSub connection every 15 s).
        assert sum(sent.values()) <= 3, f"an idle instance sent Redis {sent} in 3 s"
