"""Redis rate limiter: one Lua script per decision, so any number of instances together stay exact.

Every key the scripts write carries a TTL (the GCRA TAT until it is in the past, a day counter until the
window ends, a lease set until its last lease lapses, a receipt for `receipt_ttl_ms`), so nothing needs
cleaning up. The scripts take all their keys in KEYS (built by `chatstream.keys.Keys` in `Limits`), and the
keys of one user share a hash tag, so a user's rules (daily messages, daily tokens and their receipts,
concurrent runs) live in one slot of a Redis Cluster; the per-address rule lives in its address's slot.

A decision over rules of several slots (a Redis Cluster; a single Redis always takes one call) checks and
charges each slot's rules atomically in that slot (`hit.lua`), every slot at once (one pipeline per node, one
round trip), and when any slot refuses, gives back what the others charged (`refund.lua`, a second round
trip, only on a refusal). The headers are those a single call would give: each rule's state is computed as
`hit.lua` always computes it. So a limit is never exceeded: every charge was checked in its own slot, as
atomically as on one Redis. What differs: between a charge and its refund, a concurrent request of the same
user (or address) may see the slot as taken and be refused (a refund never over-admits, it can only make a
neighbour err on the safe side), and a process that crashes between a charge and its refund leaves the
charge in place: the concurrency lease lapses after its TTL, the message counts as sent, the address's rate
recovers within its period. That is what a crash just after an admission leaves on a single Redis too. A GCRA
refund moves the TAT back by exactly what the request added, so charges made since are kept.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from chatstream.limits.base import Decision, RuleState, make_state
from chatstream.redis_client import load_script, raise_unavailable, slot_groups, unavailable

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from chatstream.limits.base import Rule, Settlement, Subject
    from chatstream.redis_client import RedisClient

__all__ = ["RedisRateLimiter"]

_LUA = "chatstream.limits.lua"


class RedisRateLimiter:
    """Rate limits shared through Redis (one Redis or a cluster). Errors from Redis propagate as
    `BackendUnavailableError` (`Limits` maps them to fail-open/closed).

    Args:
        redis: the shared client; not closed by `aclose` (its owner closes it).
        clock: epoch seconds; the time every decision uses (tests drive it). Instances need synced clocks.
    """

    def __init__(self, redis: RedisClient, *, clock: Callable[[], float] = time.time) -> None:
        self._redis = redis
        self._clock = clock
        self._hit = load_script(redis, _LUA, "hit.lua")
        self._refund = load_script(redis, _LUA, "refund.lua")
        self._refresh = load_script(redis, _LUA, "refresh.lua")
        self._refresh_many = load_script(redis, _LUA, "refresh_many.lua")
        self._settle = load_script(redis, _LUA, "settle.lua")

    async def hit(self, subject: Subject) -> Decision:
        now = repr(self._clock() * 1000)
        rules = list(subject.rules)
        groups = slot_groups(self._redis, list(enumerate(rules)), lambda item: item[1].key)
        with unavailable("rate limits"):
            if len(groups) <= 1:
                return Decision.from_states(await self._check(now, rules))
            return await self._hit_slots(now, len(rules), groups)

    async def _hit_slots(self, now: str, count: int, groups: list[list[tuple[int, Rule]]]) -> Decision:
        """A decision over several slots: see the module docstring."""
        rules = [[rule for _, rule in group] for group in groups]
        # Every slot checks and charges its own rules, all at once (one pipeline per node, one round trip).
        replies = await self._hit.many([self._call(now, r) for r in rules])
        states: list[RuleState | None] = [None] * count
        charged: list[list[Rule]] = []
        failure: BaseException | None = None
        for group, r, reply in zip(groups, rules, replies, strict=True):
            if isinstance(reply, BaseException):
                failure = failure or reply
                continue
            checked = self._states(r, reply)
            for (at, _), state in zip(group, checked, strict=True):
                states[at] = state
            if all(state.allowed for state in checked):
                charged.append(r)
        if failure is not None or len(charged) < len(rules):
            # Refused somewhere (or a node failed): what the other slots charged is given back.
            if charged:
                for refund in await self._refund.many([self._call(now, r) for r in charged]):
                    raise_unavailable(refund)
            if failure is not None:
                raise_unavailable(failure)
        return Decision.from_states(tuple(state for state in states if state is not None))

    async def _check(self, now: str, rules: Sequence[Rule]) -> tuple[RuleState, ...]:
        keys, args = self._call(now, rules)
        return self._states(rules, await self._hit(keys, args))

    @staticmethod
    def _call(now: str, rules: Sequence[Rule]) -> tuple[list[str], list[str | int]]:
        keys: list[str] = [rule.key for rule in rules]
        keys += [rule.receipt for rule in rules if rule.kind == "counter" and rule.receipt_ttl_ms > 0]
        args: list[str | int] = [now, len(rules)]
        args += [f"{r.kind} {r.limit} {r.param!r} {r.cost} {r.receipt_ttl_ms}" for r in rules]
        args += [rule.member for rule in rules if rule.kind == "lease"]
        return keys, args

    @staticmethod
    def _states(rules: Sequence[Rule], reply: Any) -> tuple[RuleState, ...]:
        numbers = [int(v) for v in (reply.decode() if isinstance(reply, bytes) else reply).split()]
        states: list[RuleState] = []
        for i, rule in enumerate(rules):
            ok, remaining, reset_ms, retry_ms = numbers[1 + 4 * i : 5 + 4 * i]
            states.append(make_state(rule, ok == 1, remaining, reset_ms, retry_ms))
        return tuple(states)

    async def refresh(self, key: str, member: str, ttl_ms: float) -> bool:
        with unavailable("rate limits"):
            reply = await self._refresh([key], [repr(self._clock() * 1000), repr(ttl_ms), member])
        return int(reply) == 1

    async def refresh_many(self, leases: Sequence[tuple[str, str]], ttl_ms: float) -> list[bool]:
        if not leases:
            return []
        now = repr(self._clock() * 1000)
        # One call for all on a single Redis; one per slot (user) on a cluster, in the same round trip.
        groups = slot_groups(self._redis, list(enumerate(leases)), lambda item: item[1][0])
        calls = [
            ([key for _, (key, _) in group], [now, repr(ttl_ms), *(member for _, (_, member) in group)])
            for group in groups
        ]
        held = [False] * len(leases)
        with unavailable("rate limits"):
            replies = await self._refresh_many.many(calls)
            for group, reply in zip(groups, replies, strict=True):
                flags = raise_unavailable(reply)
                flags = flags.decode() if isinstance(flags, bytes) else str(flags)
                for (i, _), flag in zip(group, flags, strict=True):
                    held[i] = flag == "1"
        return held

    async def settle(self, settlement: Settlement) -> None:
        # Unused key slots repeat a real name so that the script's KEYS stay well-formed; flags say which apply.
        # All three are the user's keys: one slot.
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
        with unavailable("rate limits"):
            await self._settle(keys, args)

    async def ping(self) -> None:
        with unavailable("rate limits"):
            await self._redis.ping()

    async def aclose(self) -> None:
        return None
