"""Rate limits and quotas (SPEC §4).

The lead API calls `build_limits(settings, redis)` once, `client_ip(...)` per request, and for each
run-starting request `limits.admit(...)` → `refresh_many(...)` while it runs (`chatstream.runs.leases`)
→ `settle(...)` when the run ends.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from chatstream.errors import ConfigError
from chatstream.limits.base import Decision, RateLimiter, Rule, RuleState, Settlement, Subject
from chatstream.limits.client_ip import client_ip
from chatstream.limits.memory import MemoryRateLimiter
from chatstream.limits.policy import Admission, Limits, rate_limit_headers

if TYPE_CHECKING:
    from collections.abc import Callable

    from chatstream.limits.redis import RedisRateLimiter
    from chatstream.redis_client import RedisClient
    from chatstream.settings import Settings


def __getattr__(name: str) -> object:
    # `RedisRateLimiter` needs the `redis` extra: imported on first use, so the core install imports this package.
    if name == "RedisRateLimiter":
        from chatstream.limits.redis import RedisRateLimiter

        return RedisRateLimiter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Admission",
    "Decision",
    "Limits",
    "MemoryRateLimiter",
    "RateLimiter",
    "RedisRateLimiter",
    "Rule",
    "RuleState",
    "Settlement",
    "Subject",
    "build_limits",
    "client_ip",
    "rate_limit_headers",
]


def build_limits(settings: Settings, redis: RedisClient | None, *, clock: Callable[[], float] = time.time) -> Limits:
    """The configured limits: Redis-backed when `redis` is given (shared by all instances), else in memory.

    Concurrency leases last `run_lease_seconds` (60 s) and are renewed every quarter of that, so a stalled
    event loop or a paused process keeps its runs' slots (the limit never under-counts). The price: a crashed
    instance's runs hold their users' slots until their leases lapse, up to `run_lease_seconds`.

    Raises:
        ConfigError: `trusted_proxies` holds something that is neither an IP nor a CIDR.
    """
    try:
        client_ip("127.0.0.1", {}, settings.trusted_proxies)
    except ValueError as exc:
        raise ConfigError(f"CHAT_TRUSTED_PROXIES: {exc}") from exc
    if redis is None:
        limiter: RateLimiter = MemoryRateLimiter(clock=clock)
    else:
        from chatstream.limits.redis import RedisRateLimiter

        limiter = RedisRateLimiter(redis, clock=clock)
    return Limits(
        limiter,
        prefix=settings.redis_prefix,
        rate_ip_per_minute=settings.rate_ip_per_minute,
        quota_per_day=settings.quota_per_day,
        tokens_per_day=settings.tokens_per_day,
        max_concurrent_runs=settings.max_concurrent_runs,
        lease_ttl=settings.run_lease_seconds,
        fail_open=settings.limits_fail_open,
        clock=clock,
    )
