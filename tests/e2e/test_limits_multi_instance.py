"""Quotas are exact across instances: two `python -m app` processes sharing one redis-server, then a Redis
Cluster (`REDIS_CLUSTER_URL`), where a user's quota lives in the user's slot and the address's rate in another.

A daily quota of N, N+k concurrent requests spread over both instances: exactly N answers, k 429s with a
true `Retry-After` and the `RateLimit-*` headers. Needs `REDIS_URL` (marker `redis`) and starts processes
(marker `e2e`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import uuid4

import httpx
import pytest

from tests.support.redis_targets import TARGETS, delete_prefix, server_redis_url

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [pytest.mark.e2e, pytest.mark.redis, pytest.mark.timeout(90)]

ROOT = Path(__file__).resolve().parents[2]
QUOTA = 12
EXTRA = 8
# Each instance gets (QUOTA + EXTRA) / 2 = 10 requests, fewer than QUOTA: a per-process quota would refuse
# nothing, so any 429 at all shows the quota is shared, and exactly EXTRA of them shows it is exact.
assert (QUOTA + EXTRA) // 2 < QUOTA


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_healthy(base: str, proc: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"{base} exited with {proc.returncode}: {proc.stderr.read().decode() if proc.stderr else ''}"
            )
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{base} did not become healthy")


@pytest.fixture(params=TARGETS)
def instances(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    """Two instances on one Redis, then on a Redis Cluster (`tests.support.redis_targets`)."""
    redis_url = server_redis_url(request.param)
    prefix = f"test:{uuid4().hex}"
    procs: list[subprocess.Popen[bytes]] = []
    bases: list[str] = []
    try:
        for _ in range(2):
            port = free_port()
            env = {
                **os.environ,
                "HOST": "127.0.0.1",
                "PORT": str(port),
                "REDIS_URL": redis_url,
                "CHAT_REDIS_PREFIX": prefix,
                "CHAT_AUTH_TOKENS": "tok:user:free",
                "CHAT_QUOTA_FREE_PER_DAY": str(QUOTA),
                # Only the daily quota may bind: the IP and concurrency limits are set out of reach.
                "CHAT_RATE_IP_PER_MINUTE": "10000",
                "CHAT_MAX_CONCURRENT_RUNS": "1000",
                "CHAT_TITLE_GENERATION": "false",
                "PYTHONPATH": str(ROOT),
            }
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "app"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
                )
            )
            bases.append(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 30
        for base, proc in zip(bases, procs, strict=True):
            wait_healthy(base, proc, deadline)
        yield bases
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stderr:
                proc.stderr.close()
        delete_prefix(request.param, prefix)


async def test_daily_quota_is_exact_across_two_instances(instances: list[str]) -> None:
    async with httpx.AsyncClient(timeout=30, headers={"Authorization": "Bearer tok"}) as client:

        async def send(i: int) -> httpx.Response:
            return await client.post(f"{instances[i % 2]}/api/chat", json={"message": f"hi {i}", "stream": False})

        responses = await asyncio.gather(*(send(i) for i in range(QUOTA + EXTRA)))

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * QUOTA + [429] * EXTRA, statuses
    now = dt.datetime.now(dt.UTC)
    until_midnight = (
        dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC) - now
    ).total_seconds()
    for r in responses:
        if r.status_code == 200:
            assert r.json()["response"]
            assert r.headers["RateLimit-Limit"] == str(QUOTA)
            assert 0 <= int(r.headers["RateLimit-Remaining"]) < QUOTA
            assert f'{QUOTA};w=86400;comment="messages_per_day"' in r.headers["RateLimit-Policy"]
            continue
        body = r.json()
        assert body["error"] == "rate_limit"
        assert body["limit"] == "messages_per_day"
        assert body["message"]
        retry_after = int(r.headers["Retry-After"])
        assert body["retryAfter"] == retry_after
        # A true Retry-After: the time until UTC midnight, when the quota resets (not a constant).
        assert abs(retry_after - until_midnight) < 30
        assert r.headers["RateLimit-Limit"] == str(QUOTA)
        assert r.headers["RateLimit-Remaining"] == "0"
        assert abs(int(r.headers["RateLimit-Reset"]) - until_midnight) < 30
        assert "RateLimit-Policy" in r.headers
    remaining = sorted(int(r.headers["RateLimit-Remaining"]) for r in responses if r.status_code == 200)
    assert remaining == list(range(QUOTA)), remaining  # every unit handed out exactly once
