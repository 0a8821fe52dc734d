"""A process renews all its runs' leases in one Redis round trip per tick (fakeredis, real Redis, a cluster).

Counted on the client: every command it sends goes through `execute_command`; on a Redis Cluster a tick's
renewals are one script call per slot, pipelined (one pipeline per node, all at once), counted as one.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import pytest

from chatstream.limits import Limits, RedisRateLimiter
from chatstream.metrics import Metrics
from chatstream.models import Principal
from chatstream.runs.leases import LeaseKeeper
from chatstream.runs.redis import RedisRunRegistry

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from tests.contract.conftest import Env

TICK = 0.1
RUNS = 40


async def test_renewing_many_runs_costs_one_command_per_tick(env: Env) -> None:
    if env.redis is None:
        pytest.skip("counts Redis commands")
    client = env.second_client()
    sent: list[Any] = []
    send: Callable[..., Awaitable[Any]] = client.execute_command

    async def counting(*args: Any, **options: Any) -> Any:
        sent.append(args[0])
        return await send(*args, **options)

    client.execute_command = counting  # type: ignore[method-assign]
    pipeline = client.pipeline

    def counting_pipeline(*args: Any, **options: Any) -> Any:
        pipe: Any = pipeline(*args, **options)
        execute = pipe.execute

        async def executing(*args: Any, **options: Any) -> Any:
            sent.append("EVALSHA")  # one round trip: the calls of every slot, every node at once
            return await execute(*args, **options)

        pipe.execute = executing
        return pipe

    client.pipeline = counting_pipeline  # type: ignore[method-assign]
    registry = RedisRunRegistry(client, prefix=env.prefix)
    limits = Limits(
        RedisRateLimiter(client), prefix=env.prefix, rate_ip_per_minute=0, quota_per_day={}, max_concurrent_runs=RUNS
    )
    # Slots every 0.4 s (a quarter of `hold`), liveness every tick.
    leases = LeaseKeeper(registry, limits, interval=TICK, ttl=3 * TICK, hold=1.6, metrics=Metrics())
    kept = []
    for i in range(RUNS):
        assert await registry.acquire(f"c{i}", f"run-{i}", ttl=3 * TICK, hold=1.6) is None
        admission = await limits.admit(Principal(user_id=f"u{i % 4}"), "1.1.1.1", run_id=f"run-{i}")
        kept.append(leases.keep(f"c{i}", f"run-{i}", admission))
    await asyncio.sleep(TICK * 1.5)  # the first tick loads the script
    sent.clear()
    started = time.monotonic()
    await asyncio.sleep(TICK * 10)
    elapsed = time.monotonic() - started
    ticks = elapsed / TICK
    renewals = sent.count("EVALSHA")
    # One liveness renewal per tick for all 40 runs, plus a slot renewal every 4 ticks: not 40 per tick.
    assert renewals <= ticks + ticks / 4 + 2, sent
    assert renewals >= 8
    assert set(sent) <= {"EVALSHA", "SCRIPT LOAD"}  # a script's first call loads it
    # Every run is alive (its 0.3 s liveness renewed all along) and holds its slot (limit RUNS: full).
    assert [await registry.active(f"c{i}") for i in range(RUNS)] == [f"run-{i}" for i in range(RUNS)]
    admitted = await limits.refresh_many([k.admission for k in kept if k.admission is not None])
    assert admitted == [True] * RUNS
    for k in kept:
        k.cancel()
    await leases.aclose()
