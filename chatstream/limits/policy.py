"""`Limits`: the server's rate-limit policy (SPEC §4) on top of a `RateLimiter` backend.

`admit` charges everything a run-starting request is subject to in one atomic `RateLimiter.hit`:
requests per minute per client IP (GCRA), messages per user per UTC day by tier, concurrent runs per user
(an expiring lease per run, renewed while the run executes), and optionally output tokens per user per
UTC day by tier (an estimate reserved at admission, settled to real usage when the run ends).

Keys (`chatstream.keys`): a user's rules and receipts under the user's hash tag `{u:<user>}`, the per-address
rule under `{ip:<address>}`. On a Redis Cluster those are two slots, each checked and charged at once by the
backend (see `chatstream.limits.redis`: what a refusal gives back, what a crash leaves).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import math
import time
from typing import TYPE_CHECKING

import msgspec

from chatstream.errors import BackendUnavailableError, RateLimitedError
from chatstream.keys import Keys
from chatstream.limits.base import Rule, Settlement, Subject

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from chatstream.limits.base import Decision, RateLimiter
    from chatstream.models import Principal, Usage

__all__ = ["Admission", "Limits"]

log = logging.getLogger(__name__)

DAY_SECONDS = 86_400
_MESSAGES = {
    "ip_per_minute": "Too many requests from this address",
    "messages_per_day": "Daily message quota reached",
    "concurrent_runs": "Too many active runs; wait for one to finish",
    "tokens_per_day": "Daily token budget reached",
}
# What a broken or unreachable backend raises: the Redis backend maps "cannot reach Redis" onto
# BackendUnavailableError; anything else from redis-py is a RedisError, and a few paths (DNS, a closed
# event-loop transport) surface a bare OSError.
# redis is an optional extra: without it, no backend can raise its errors.
try:
    from redis.exceptions import RedisError
except ImportError:  # pragma: no cover - exercised by the core-install test
    _BACKEND_ERRORS: tuple[type[BaseException], ...] = (BackendUnavailableError, OSError)
else:
    _BACKEND_ERRORS = (BackendUnavailableError, RedisError, OSError)


class Admission(msgspec.Struct, frozen=True, kw_only=True):
    """A run that was admitted: what to refresh and settle when it ends, and the headers to send."""

    run_id: str
    user_id: str
    tier: str
    headers: dict[str, str]
    """`RateLimit-Limit`/`-Remaining`/`-Reset`/`-Policy` for the allowed response."""
    day: str = ""
    """The UTC day (`YYYYMMDD`) the message and tokens were charged to."""
    lease_key: str = ""
    token_key: str = ""
    token_receipt: str = ""
    reserved_tokens: int = 0
    enforced: bool = True
    """False when the backend was down and `limits_fail_open` let the run through uncharged."""


class Limits:
    """Rate limits and quotas for run-starting requests. Build it with `build_limits(settings, redis)`."""

    def __init__(
        self,
        limiter: RateLimiter,
        *,
        prefix: str = "chat",
        rate_ip_per_minute: int = 60,
        quota_per_day: Mapping[str, int] | None = None,
        tokens_per_day: Mapping[str, int] | None = None,
        max_concurrent_runs: int = 3,
        lease_ttl: float = 3.0,
        fail_open: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.limiter = limiter
        self._keys = Keys(prefix)
        self._ip_per_minute = rate_ip_per_minute
        self._quota = dict(quota_per_day if quota_per_day is not None else {"free": 20, "premium": 1000})
        self._tokens = dict(tokens_per_day or {})
        self._max_runs = max_concurrent_runs
        self._lease_ttl_ms = lease_ttl * 1000
        self._fail_open = fail_open
        self._clock = clock

    async def admit(
        self, principal: Principal, ip: str, *, run_id: str, estimate_tokens: int = 0, count_message: bool = True
    ) -> Admission:
        """Check and charge every limit for one run-starting request, atomically.

        Args:
            principal: the caller; its tier selects the daily quotas (an unknown tier gets the `free` tier's).
            ip: the client address, from `client_ip`.
            run_id: the run's id; its concurrency lease and token reservation are keyed by it.
            estimate_tokens: output tokens to reserve (the run's max output tokens is the safe estimate; a run
                that outgrows its reservation is charged in full at `settle`, and only later runs are refused).
            count_message: False for a request that continues a run without a new user message.

        Raises:
            RateLimitedError: a limit is reached; carries `Retry-After` and the `RateLimit-*` headers.
            BackendUnavailableError: the backend is unreachable and limits fail closed.
        """
        now = self._clock()
        day, day_end_ms = _utc_day(now)
        user = principal.user_id
        rules: list[Rule] = []
        if self._ip_per_minute > 0:
            rules.append(
                Rule(
                    name="ip_per_minute",
                    kind="gcra",
                    key=self._keys.tagged("ip", ip, "limit", "rate"),
                    limit=self._ip_per_minute,
                    param=60_000.0,
                )
            )
        quota = self._tier_value(self._quota, principal.tier)
        if count_message and quota is not None:
            rules.append(
                Rule(
                    name="messages_per_day",
                    kind="counter",
                    key=self._keys.user(user, "limit", "msg", day),
                    limit=quota,
                    param=day_end_ms,
                    window=DAY_SECONDS,
                )
            )
        lease_key = self._keys.user(user, "limit", "runs") if self._max_runs > 0 else ""
        if lease_key:
            rules.append(
                Rule(
                    name="concurrent_runs",
                    kind="lease",
                    key=lease_key,
                    limit=self._max_runs,
                    param=self._lease_ttl_ms,
                    member=run_id,
                )
            )
        budget = self._tier_value(self._tokens, principal.tier)
        token_key = token_receipt = ""
        reserved = 0
        if budget is not None:
            # The receipt is the user's key too: `settle` touches the lease, receipt and counter in one slot.
            token_key = self._keys.user(user, "limit", "tok", day)
            token_receipt = self._keys.user(user, "limit", "receipt", run_id)
            reserved = min(max(0, estimate_tokens), budget)
            rules.append(
                Rule(
                    name="tokens_per_day",
                    kind="counter",
                    key=token_key,
                    limit=budget,
                    param=day_end_ms,
                    cost=reserved,
                    receipt=token_receipt,
                    # The receipt only matters while the day's counter exists; it expires with it.
                    receipt_ttl_ms=max(1000, math.ceil(day_end_ms - now * 1000)),
                    window=DAY_SECONDS,
                )
            )
        admission = Admission(
            run_id=run_id,
            user_id=user,
            tier=principal.tier,
            headers={},
            day=day,
            lease_key=lease_key,
            token_key=token_key,
            token_receipt=token_receipt,
            reserved_tokens=reserved,
        )
        if not rules:
            return admission
        try:
            decision = await self.limiter.hit(Subject(rules=tuple(rules)))
        except _BACKEND_ERRORS as exc:
            if self._fail_open:
                log.warning("rate-limit backend unavailable, admitting run %s unlimited: %r", run_id, exc)
                return msgspec.structs.replace(admission, enforced=False)
            raise BackendUnavailableError("rate limits are unavailable; try again shortly") from exc
        headers = rate_limit_headers(decision)
        if not decision.allowed:
            retry_after = max(1, math.ceil(decision.retry_after))
            raise RateLimitedError(
                f"{_MESSAGES.get(decision.rule, 'Rate limit reached')}; retry in {retry_after} s",
                retry_after=retry_after,
                limit=decision.rule,
                headers=headers,
            )
        return msgspec.structs.replace(admission, headers=headers)

    @property
    def lease_ttl(self) -> float:
        """Seconds a concurrency lease lasts without a refresh."""
        return self._lease_ttl_ms / 1000

    async def refresh(self, admission: Admission) -> None:
        """Extend one run's concurrency lease. Never raises. (A server renews all its runs at once with
        `refresh_many`, from `chatstream.runs.leases`.)"""
        if not admission.lease_key or not admission.enforced:
            return
        try:
            held = await self.limiter.refresh(admission.lease_key, admission.run_id, self._lease_ttl_ms)
        except _BACKEND_ERRORS as exc:
            # The lease then lapses by itself: the slot frees early, which errs towards availability.
            log.warning("could not refresh the concurrency lease of run %s: %r", admission.run_id, exc)
            return
        if not held:
            log.info("concurrency lease of run %s had already lapsed", admission.run_id)

    async def refresh_many(self, admissions: Sequence[Admission]) -> list[bool] | None:
        """Extend the concurrency leases of `admissions` in one round trip.

        One answer per admission: False when its lease had already lapsed (it is not re-taken; the caller
        says so once); True also for admissions without a lease. None when the backend is unreachable (the
        leases then lapse by themselves after `lease_ttl`, freeing slots early: errs towards availability).
        Never raises.
        """
        leased = [i for i, a in enumerate(admissions) if a.lease_key and a.enforced]
        held = [True] * len(admissions)
        if not leased:
            return held
        try:
            answers = await self.limiter.refresh_many(
                [(admissions[i].lease_key, admissions[i].run_id) for i in leased], self._lease_ttl_ms
            )
        except _BACKEND_ERRORS as exc:
            log.warning("could not refresh %d concurrency lease(s): %r", len(leased), exc)
            return None
        for i, ok in zip(leased, answers, strict=True):
            held[i] = ok
        return held

    async def settle(self, admission: Admission, usage: Usage | None) -> None:
        """Release the run's lease and settle its token reservation to real output tokens.

        Idempotent (the reservation's receipt is consumed once). `usage=None` keeps the estimate charged.
        Never raises: it runs in the run's `finally`, where an error would hide the run's own outcome.
        """
        if not admission.enforced or not (admission.lease_key or admission.token_receipt):
            return
        settlement = Settlement(
            lease_key=admission.lease_key,
            member=admission.run_id,
            receipt=admission.token_receipt,
            counter_key=admission.token_key,
            actual=None if usage is None else usage.output_tokens,
        )
        try:
            await self.limiter.settle(settlement)
        except _BACKEND_ERRORS as exc:
            # The lease expires by itself within its TTL; the reservation stays charged (never an overshoot).
            log.warning("could not settle limits of run %s: %r", admission.run_id, exc)

    async def ping(self) -> None:
        """Raise when the limits backend is unreachable (for readiness checks)."""
        await self.limiter.ping()

    async def aclose(self) -> None:
        await self.limiter.aclose()

    @staticmethod
    def _tier_value(table: Mapping[str, int], tier: str) -> int | None:
        """The tier's limit; an unknown tier gets `free`'s; None (or a negative value) means unlimited."""
        value = table.get(tier, table.get("free"))
        return None if value is None or value < 0 else value


def rate_limit_headers(decision: Decision) -> dict[str, str]:
    """`RateLimit-*` headers (draft-ietf-httpapi-ratelimit-headers-07) for a decision.

    Limit/Remaining/Reset describe the binding rule; `RateLimit-Policy` lists every time-window policy
    (`60;w=60;comment="ip_per_minute"`). Concurrency has no window, so it appears only when it denies.
    """
    if not decision.rule:
        return {}
    # A lease (concurrency) policy has no window: listed bare, and only when it is the one the other headers
    # describe (it denied), so `RateLimit-Limit` always refers to a listed policy.
    policies = [
        f'{s.limit};w={math.ceil(s.window)};comment="{s.name}"'
        if s.kind != "lease"
        else f'{s.limit};comment="{s.name}"'
        for s in decision.states
        if s.kind != "lease" or s.name == decision.rule
    ]
    headers = {
        "RateLimit-Limit": str(decision.limit),
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(math.ceil(decision.reset)),
    }
    if policies:
        headers["RateLimit-Policy"] = ", ".join(policies)
    return headers


def _utc_day(now: float) -> tuple[str, float]:
    """The UTC day of `now` as `YYYYMMDD`, and the next UTC midnight in epoch ms."""
    return _day(int(now // 86_400))  # POSIX time has no leap seconds: every UTC day is 86,400 s long


@functools.lru_cache(maxsize=4)
def _day(index: int) -> tuple[str, float]:
    """Day `index` since the epoch (cached: it was 1.5% of a run start's CPU, computed per admission)."""
    day = dt.date(1970, 1, 1) + dt.timedelta(days=index)
    return day.strftime("%Y%m%d"), (index + 1) * 86_400_000.0
