"""In-process rate limiter: the twin of `RedisRateLimiter` for one instance (same contract, same arithmetic).

A hit runs without awaiting anything, so on one event loop it is atomic by construction. State expires on
its own: every entry carries a deadline, read lazily and swept every few hundred operations.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

from chatstream.limits.base import Decision, gcra_interval, make_state

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from chatstream.limits.base import Rule, RuleState, Settlement, Subject

__all__ = ["MemoryRateLimiter"]

_SWEEP_EVERY = 512


class MemoryRateLimiter:
    """Rate limits for a single process. `clock` returns epoch seconds (injected by tests)."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._values: dict[str, tuple[float, float]] = {}  # key -> (value, deadline ms)
        self._leases: dict[str, dict[str, float]] = {}  # key -> member -> deadline ms
        self._ops = 0

    async def hit(self, subject: Subject) -> Decision:
        now = self._clock() * 1000
        self._maybe_sweep(now)
        states: list[RuleState] = []
        plan: list[tuple[Rule, float]] = []
        for rule in subject.rules:
            state, charge = self._check(rule, now)
            states.append(state)
            if charge is not None:
                plan.append((rule, charge))
        if all(s.allowed for s in states):
            for rule, value in plan:
                self._apply(rule, value, now)
        return Decision.from_states(tuple(states))

    async def refresh(self, key: str, member: str, ttl_ms: float) -> bool:
        now = self._clock() * 1000
        lease = self._live_lease(key, now)
        if member not in lease:
            return False
        lease[member] = now + ttl_ms
        return True

    async def refresh_many(self, leases: Sequence[tuple[str, str]], ttl_ms: float) -> list[bool]:
        return [await self.refresh(key, member, ttl_ms) for key, member in leases]

    async def settle(self, settlement: Settlement) -> None:
        now = self._clock() * 1000
        if settlement.lease_key:
            self._live_lease(settlement.lease_key, now).pop(settlement.member, None)
        if not settlement.receipt:
            return
        reserved = self._get(settlement.receipt, now)
        if reserved is None:
            return
        del self._values[settlement.receipt]
        actual = settlement.actual
        current = self._values.get(settlement.counter_key)
        # A counter whose window has ended (the day rolled over) is gone: nothing left to correct.
        if actual is None or actual == reserved or current is None or current[1] <= now:
            return
        self._values[settlement.counter_key] = (max(0.0, current[0] + actual - reserved), current[1])

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        self._values.clear()
        self._leases.clear()

    # -- the rules; lua/hit.lua mirrors these branches ------------------------------------------------

    def _check(self, rule: Rule, now: float) -> tuple[RuleState, float | None]:
        """The rule's state, and the value to store if the hit goes through (None: denied)."""
        if rule.kind == "gcra":
            interval, eps = gcra_interval(rule.limit, rule.param)
            stored = self._get(rule.key, now)
            tat = now if stored is None or stored < now else stored
            new_tat = tat + rule.cost * interval
            allow_at = new_tat - rule.param
            if allow_at > now + eps:
                remaining = max(0, math.floor((now + rule.param - tat) / interval + 1e-9))
                return make_state(rule, False, remaining, tat - now, allow_at - now), None
            remaining = max(0, math.floor((now + rule.param - new_tat) / interval + 1e-9))
            return make_state(rule, True, remaining, new_tat - now, 0.0), new_tat
        if rule.kind == "counter":
            count = int(self._get(rule.key, now) or 0)
            reset = rule.param - now
            if count + max(rule.cost, 1) > rule.limit:
                return make_state(rule, False, max(0, rule.limit - count), reset, reset), None
            return make_state(rule, True, rule.limit - count - rule.cost, reset, 0.0), float(rule.cost)
        lease = self._live_lease(rule.key, now)
        held = rule.member in lease
        if not held and len(lease) >= rule.limit:
            wait = min(lease.values()) - now
            return make_state(rule, False, 0, wait, wait), None
        count = len(lease) + (0 if held else 1)
        return make_state(rule, True, max(0, rule.limit - count), 0.0, 0.0), now + rule.param

    def _apply(self, rule: Rule, value: float, now: float) -> None:
        if rule.kind == "gcra":
            self._values[rule.key] = (value, value)
        elif rule.kind == "counter":
            current = self._get(rule.key, now) or 0.0
            self._values[rule.key] = (current + value, rule.param)
            if rule.receipt:
                self._values[rule.receipt] = (value, now + rule.receipt_ttl_ms)
        else:
            self._leases.setdefault(rule.key, {})[rule.member] = value

    # -- expiring storage ---------------------------------------------------------------------------

    def _get(self, key: str, now: float) -> float | None:
        entry = self._values.get(key)
        if entry is None:
            return None
        if entry[1] <= now:
            del self._values[key]
            return None
        return entry[0]

    def _live_lease(self, key: str, now: float) -> dict[str, float]:
        lease = self._leases.get(key)
        if lease is None:
            return {}
        for member in [m for m, deadline in lease.items() if deadline <= now]:
            del lease[member]
        return lease

    def _maybe_sweep(self, now: float) -> None:
        self._ops += 1
        if self._ops % _SWEEP_EVERY:
            return
        for key in [k for k, (_, deadline) in self._values.items() if deadline <= now]:
            del self._values[key]
        for key in [k for k, lease in self._leases.items() if not self._live_lease(k, now)]:
            del self._leases[key]
