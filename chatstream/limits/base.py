"""The `RateLimiter` Protocol: one atomic decision over every rule a request is subject to.

A request is checked against several rules at once (requests per minute per IP, messages per day, concurrent
runs, a token budget). `RateLimiter.hit(subject)` evaluates all of them and, only when every one allows it,
charges all of them, in one atomic step: a denied request consumes nothing. Backends: `MemoryRateLimiter`
(one process) and `RedisRateLimiter` (one Lua script per decision, shared by every instance).

Rule kinds, all with the same arithmetic in both backends (times in milliseconds):

- `gcra`: the Generic Cell Rate Algorithm, as in the `limits` library's `acquire_gcra.lua`. One stored
  number per key (the theoretical arrival time, TAT). It admits a burst of at most `limit` and then one
  request every `period/limit`; unlike a fixed window it never admits 2x `limit` around a window edge.
- `counter`: a fixed window ending at an absolute instant (`param` = end, epoch ms): daily quotas whose day
  ends at UTC midnight. `cost` may be 0 (a token budget with no estimate): the rule then only checks that
  something is left. With `receipt`, the charged cost is recorded under that key so `settle` can later move
  the charge to the real usage, exactly once.
- `lease`: at most `limit` members at once, each expiring `param` ms after its last refresh, so a crashed
  instance's runs free their slots by themselves.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal, Protocol

import msgspec

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["Decision", "RateLimiter", "Rule", "RuleState", "Settlement", "Subject", "make_state"]

RuleKind = Literal["gcra", "counter", "lease"]


class Rule(msgspec.Struct, frozen=True, kw_only=True):
    """One limit a request is subject to."""

    name: str
    """Which limit this is, as reported to clients (`ip_per_minute`, `messages_per_day`, ...)."""
    kind: RuleKind
    key: str
    """The backend key holding this rule's state (already prefixed)."""
    limit: int
    param: float
    """gcra: the period in ms; counter: the window's end in epoch ms; lease: the lease TTL in ms."""
    cost: int = 1
    """gcra and counter: how much one hit consumes."""
    member: str = ""
    """lease: the holder's id (a run id)."""
    receipt: str = ""
    """counter: a key recording the charged cost, for `settle`."""
    receipt_ttl_ms: int = 0
    window: float = 0.0
    """counter: the window's length in seconds, for the `RateLimit-Policy` header."""


class Subject(msgspec.Struct, frozen=True, kw_only=True):
    """Everything one request is charged for."""

    rules: tuple[Rule, ...]


class RuleState(msgspec.Struct, frozen=True, kw_only=True):
    """One rule's state after a hit (after charging it, when the hit was allowed)."""

    name: str
    kind: RuleKind
    allowed: bool
    limit: int
    remaining: int
    reset: float
    """Seconds until the rule is fully replenished (gcra), its window ends (counter), or a slot frees (lease)."""
    retry_after: float
    """Seconds until this rule would allow the hit; 0 when it allows it now."""
    window: float
    """The rule's window in seconds for the `RateLimit-Policy` header; 0 for leases, which have none."""


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    """The answer to one hit: allowed or not, described by the rule that binds.

    When denied, the binding rule is the denying rule with the longest wait, and `retry_after` is the real
    number of seconds until every rule would allow the hit. When allowed, it is the time-window rule with the
    fewest remaining units (what the `RateLimit-*` headers report).
    """

    allowed: bool
    rule: str
    limit: int
    remaining: int
    reset: float
    retry_after: float
    states: tuple[RuleState, ...] = ()

    @classmethod
    def from_states(cls, states: tuple[RuleState, ...]) -> Decision:
        """Summarise per-rule states into one decision."""
        denied = [s for s in states if not s.allowed]
        if denied:
            binding = max(denied, key=lambda s: s.retry_after)
            return cls(
                allowed=False,
                rule=binding.name,
                limit=binding.limit,
                remaining=binding.remaining,
                reset=binding.reset,
                retry_after=max(s.retry_after for s in denied),
                states=states,
            )
        windows = [s for s in states if s.kind != "lease"] or list(states)
        if not windows:
            return cls(allowed=True, rule="", limit=0, remaining=0, reset=0.0, retry_after=0.0, states=states)
        binding = min(windows, key=lambda s: (s.remaining, -s.reset))
        return cls(
            allowed=True,
            rule=binding.name,
            limit=binding.limit,
            remaining=binding.remaining,
            reset=binding.reset,
            retry_after=0.0,
            states=states,
        )


class Settlement(msgspec.Struct, frozen=True, kw_only=True):
    """What to undo or adjust when a run ends: release its lease and move a reservation to real usage."""

    lease_key: str = ""
    member: str = ""
    receipt: str = ""
    counter_key: str = ""
    actual: int | None = None
    """The real cost; None keeps the reserved estimate charged (usage unknown)."""


class RateLimiter(Protocol):
    """Atomic multi-rule rate limiting. Every backend obeys the same contract (tests/contract)."""

    async def hit(self, subject: Subject) -> Decision:
        """Check every rule; when all allow, charge all of them. Atomic: a denied hit consumes nothing."""
        ...

    async def refresh(self, key: str, member: str, ttl_ms: float) -> bool:
        """Extend a lease. False when the lease had already expired or been released (it is not re-taken)."""
        ...

    async def refresh_many(self, leases: Sequence[tuple[str, str]], ttl_ms: float) -> list[bool]:
        """`refresh` every `(key, member)` in one round trip; one answer per lease, in order."""
        ...

    async def settle(self, settlement: Settlement) -> None:
        """Release a lease and settle a counter reservation to `actual`. Idempotent."""
        ...

    async def ping(self) -> None:
        """Raise when the backend is unreachable."""
        ...

    async def aclose(self) -> None: ...


# The arithmetic below is shared by the memory backend and mirrored line for line by lua/hit.lua.


def gcra_interval(limit: int, period_ms: float) -> tuple[float, float]:
    """(emission interval T, slack eps) in ms.

    Float TATs near 1.7e12 ms round by ~1e-4 ms per addition; the slack keeps the `limit`-th request of a burst
    from being refused by rounding. It is below T/2, so it never admits an extra request.
    """
    interval = period_ms / limit
    return interval, min(interval / 2, 1.0)


def ceil_ms(value: float) -> int:
    """Milliseconds rounded up to an integer, never negative (what the Lua script replies)."""
    return max(0, math.ceil(value - 1e-9))


def make_state(rule: Rule, allowed: bool, remaining: int, reset_ms: float, retry_ms: float) -> RuleState:
    """A rule's state from backend numbers, rounded up to whole ms so both backends report the same."""
    window = rule.param / 1000 if rule.kind == "gcra" else rule.window if rule.kind == "counter" else 0.0
    return RuleState(
        name=rule.name,
        kind=rule.kind,
        allowed=allowed,
        limit=rule.limit,
        remaining=remaining,
        reset=ceil_ms(reset_ms) / 1000,
        retry_after=ceil_ms(retry_ms) / 1000,
        window=window,
    )
