"""Redis rate limiter: one Lua script per decision, so any number of instances together stay exact.

Every key the scripts write carries a TTL (the GCRA TAT until it is in the past, a day counter until the
window ends, a lease set until its last lease lapses, a receipt for `receipt_ttl_ms`), so nothing needs
cleaning up. The scripts take their keys from KEYS, which keeps them valid on a single Redis; a Redis Cluster
would additionally need one hash tag per user (not a goal here: the server runs against one Redis).
"""

from __future__ import annotations

import time
from importlib import resources
from typing import TYPE_CHECKING

from chatstream.limits.base import Decision, RuleState, make_state

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import redis.asyncio as aioredis
    from redis.commands.core import AsyncScript

    from chatstream.limits.base import Settlement, Subject

__all__ = ["RedisRateLimiter"]


def _load(name: str) -> str:
    return resources.files("chatstream.limits").joinpath("lua", name).read_text(encoding="utf-8")


class RedisRateLimiter:
    """Rate limits shared through Redis. Errors from Redis propagate (`Limits` maps them to fail-open/closed).

    Args:
        redis: the shared client; not closed by `aclose` (its owner closes it).
        clock: epoch seconds; the time every decision uses (tests drive it). Instances need synced clocks.
    """

    def __init__(self, redis: aioredis.Redis, *, clock: Callable[[], float] = time.time) -> None:
        self._redis = redis
        self._clock = clock
        self._hit: AsyncScript = redis.register_script(_load("hit.lua"))
        self._refresh: AsyncScript = redis.register_script(_load("refresh.lua"))
        self._refresh_many: AsyncScript = redis.register_script(_load("refresh_many.lua"))
        self._settle: AsyncScript = redis.register_script(_load("settle.lua"))

    async def hit(self, subject: Subject) -> Decision:
        keys: list[str] = [rule.key for rule in subject.rules]
        keys += [rule.receipt for rule in subject.rules if rule.kind == "counter" and rule.receipt_ttl_ms > 0]
        args: list[str | int] = [repr(self._clock() * 1000), len(subject.rules)]
        args += [f"{r.kind} {r.limit} {r.param!r} {r.cost} {r.receipt_ttl_ms}" for r in subject.rules]
        args += [rule.member for rule in subject.rules if rule.kind == "lease"]
        reply = await self._hit(keys=keys, args=args)
        numbers = [int(v) for v in (reply.decode() if isinstance(reply, bytes) else reply).split()]
        states: list[RuleState] = []
        for i, rule in enumerate(subject.rules):
            ok, remaining, reset_ms, retry_ms = numbers[1 + 4 * i : 5 + 4 * i]
            states.append(make_state(rule, ok == 1, remaining, reset_ms, retry_ms))
        return Decision.from_states(tuple(states))

    async def refresh(self, key: str, member: str, ttl_ms: float) -> bool:
        reply = await self._refresh(keys=[key], args=[repr(self._clock() * 1000), repr(ttl_ms), member])
        return int(reply) == 1

    async def refresh_many(self, leases: Sequence[tuple[str, str]], ttl_ms: float) -> list[bool]:
        if not leases:
            return []
        args: list[str] = [repr(self._clock() * 1000), repr(ttl_ms), *(member for _, member in leases)]
        reply = await self._refresh_many(keys=[key for key, _ in leases], args=args)
        return [flag == "1" for flag in (reply.decode() if isinstance(reply, bytes) else str(reply))]

    async def settle(self, settlement: Settlement) -> None:
        # Unused key slots repeat a real name so that the script's KEYS stay well-formed; flags say which apply.
        anchor = settlement.lease_key or settlement.receipt or settlement.counter_key
        if not anchor:
            return
        keys = [settlement.lease_key or anchor, settlement.receipt or anchor, settlement.counter_key or anchor]
        actual = -1 if settlement.actual is None else max(0, settlement.actual)
        args: list[str | int] = [
            "1" if settlement.lease_key else "0",
            settlement.member,
            "1" if settlement.receipt and settlement.counter_key else "0",
            actual,
        ]
        await self._settle(keys=keys, args=args)

    async def ping(self) -> None:
        await self._redis.ping()

    async def aclose(self) -> None:
        return None
