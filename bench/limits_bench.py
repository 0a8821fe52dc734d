"""How many rate-limit decisions one instance makes per second against Redis, as a ratio to plain PINGs.

Run: `.venv/bin/python -m bench.limits_bench [--redis-url redis://127.0.0.1:6379/0] [--seconds 3]`

Each figure is measured at concurrency 1 (one request at a time: round-trip bound) and 32 (concurrent
requests on one event loop sharing a connection pool), and reported next to a PING loop at the same
concurrency in the same run, in interleaved slices, because these machines are noisy. A "decision" is one `Limits.admit`
(one EVALSHA of lua/hit.lua covering IP GCRA + daily message counter + concurrency lease), or one
admit plus its `settle` (the lease release: a second round-trip). Keys use a unique prefix and expire by
themselves; nothing is flushed.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import time
from collections.abc import Awaitable, Callable
from uuid import uuid4

import redis.asyncio as aioredis

from chatstream.limits import Limits, RedisRateLimiter
from chatstream.models import Principal

Op = Callable[[int], Awaitable[object]]


async def rate(op: Op, concurrency: int, seconds: float, counter: itertools.count[int]) -> tuple[int, float]:
    """(operations done, elapsed seconds) of `op`, run by `concurrency` tasks for about `seconds`."""
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


async def compare(ops: dict[str, Op], concurrency: int, seconds: float, rounds: int = 8) -> dict[str, float]:
    """Operations per second of each op, measured in interleaved slices so that load drifts hit all alike."""
    counter = itertools.count()
    totals = {name: [0, 0.0] for name in ops}
    for op in ops.values():  # warm-up: connections opened, scripts loaded
        for _ in range(50):
            await op(next(counter))
    for _ in range(rounds):
        for name, op in ops.items():
            done, elapsed = await rate(op, concurrency, seconds / rounds, counter)
            totals[name][0] += done
            totals[name][1] += elapsed
    return {name: done / elapsed for name, (done, elapsed) in totals.items()}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()

    client = aioredis.Redis.from_url(args.redis_url, max_connections=64)
    prefix = f"bench:{uuid4().hex}"
    limits = Limits(
        RedisRateLimiter(client),
        prefix=prefix,
        rate_ip_per_minute=10**9,
        quota_per_day={"free": 10**9},
        max_concurrent_runs=10**6,
    )
    users = [Principal(user_id=f"u{i}") for i in range(1000)]

    async def ping(_: int) -> object:
        return await client.ping()

    async def admit(i: int) -> object:
        return await limits.admit(users[i % 1000], f"10.0.{i % 250}.{i % 200}", run_id=f"r{i}")

    async def admit_settle(i: int) -> object:
        admission = await limits.admit(users[i % 1000], f"10.0.{i % 250}.{i % 200}", run_id=f"s{i}")
        await limits.settle(admission, None)
        return admission

    print(f"redis {args.redis_url}, {args.seconds:.0f} s per figure")
    print(f"{'operation':<22}{'conc':>5}{'ops/s':>10}{'PING/s':>10}{'ratio':>8}")
    try:
        for concurrency in (1, 32):
            rates = await compare(
                {"PING": ping, "admit": admit, "admit + settle": admit_settle}, concurrency, args.seconds
            )
            pings = rates.pop("PING")
            for name, ops in rates.items():
                print(f"{name:<22}{concurrency:>5}{ops:>10,.0f}{pings:>10,.0f}{ops / pings:>8.2f}")
    finally:
        await client.aclose()


if __name__ == "__main__":
    asyncio.run(main())
