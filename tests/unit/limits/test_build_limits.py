"""`build_limits` wiring from `Settings`, and the `RateLimit-*` header rendering."""

from __future__ import annotations

import fakeredis
import pytest

from chatstream.errors import ConfigError, RateLimitedError
from chatstream.limits import Decision, MemoryRateLimiter, RedisRateLimiter, RuleState, build_limits, rate_limit_headers
from chatstream.models import Principal
from chatstream.settings import Settings


async def test_memory_backend_without_redis_and_settings_applied() -> None:
    settings = Settings(
        rate_ip_per_minute=0, quota_per_day={"free": 1}, max_concurrent_runs=0, redis_prefix="x", heartbeat_seconds=2
    )
    limits = build_limits(settings, None, clock=lambda: 1_000_000.0)
    assert isinstance(limits.limiter, MemoryRateLimiter)
    admission = await limits.admit(Principal(user_id="u"), "1.1.1.1", run_id="r")
    # Only the message quota applies (IP and concurrency limits are off at 0): the policy lists it alone.
    assert admission.headers["RateLimit-Policy"] == '1;w=86400;comment="messages_per_day"'
    assert admission.lease_key == ""
    with pytest.raises(RateLimitedError) as info:
        await limits.admit(Principal(user_id="u"), "1.1.1.1", run_id="r2")
    assert info.value.limit == "messages_per_day"
    await limits.aclose()


async def test_redis_backend_uses_the_prefix() -> None:
    client = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())
    limits = build_limits(Settings(redis_prefix="pfx"), client)
    assert isinstance(limits.limiter, RedisRateLimiter)
    admission = await limits.admit(Principal(user_id="u"), "1.1.1.1", run_id="r")
    assert admission.lease_key == "pfx:{u:u}:limit:runs"
    # The user's keys share the user's hash tag (one slot of a Redis Cluster); the address's its own.
    assert sorted([k async for k in client.scan_iter()]) == [
        b"pfx:{ip:1.1.1.1}:limit:rate",
        f"pfx:{{u:u}}:limit:msg:{admission.day}".encode(),
        b"pfx:{u:u}:limit:runs",
    ]
    await limits.ping()
    await client.aclose()


def test_bad_trusted_proxy_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="CHAT_TRUSTED_PROXIES"):
        build_limits(Settings(trusted_proxies=("10.0.0.0/33",)), None)


def test_settings_from_env_reach_the_limits() -> None:
    settings = Settings.from_env(
        {"CHAT_QUOTA_GOLD_PER_DAY": "7", "CHAT_TOKENS_FREE_PER_DAY": "500", "CHAT_LIMITS_FAIL_OPEN": "true"}
    )
    assert settings.quota_per_day == {"free": 20, "premium": 1000, "gold": 7}
    assert settings.tokens_per_day == {"free": 500}
    assert settings.limits_fail_open is True


def state(name: str, kind: str, allowed: bool, limit: int, remaining: int, reset: float, window: float) -> RuleState:
    return RuleState(
        name=name,
        kind=kind,  # type: ignore[arg-type]
        allowed=allowed,
        limit=limit,
        remaining=remaining,
        reset=reset,
        retry_after=0.0 if allowed else reset,
        window=window,
    )


def test_denial_reports_the_longest_wait_and_headers_round_up() -> None:
    states = (
        state("ip_per_minute", "gcra", False, 60, 0, 0.2, 60),
        state("messages_per_day", "counter", False, 20, 0, 3600.5, 86400),
        state("concurrent_runs", "lease", True, 3, 2, 0, 0),
    )
    decision = Decision.from_states(states)
    assert not decision.allowed
    assert (decision.rule, decision.retry_after) == ("messages_per_day", 3600.5)
    assert rate_limit_headers(decision) == {
        "RateLimit-Limit": "20",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": "3601",
        "RateLimit-Policy": '60;w=60;comment="ip_per_minute", 20;w=86400;comment="messages_per_day"',
    }


def test_allowed_headers_describe_the_window_rule_closest_to_exhaustion() -> None:
    states = (
        state("ip_per_minute", "gcra", True, 60, 5, 55, 60),
        state("messages_per_day", "counter", True, 20, 19, 3600, 86400),
        state("concurrent_runs", "lease", True, 3, 0, 0, 0),  # no window: never the header's subject
    )
    decision = Decision.from_states(states)
    assert decision.allowed
    assert rate_limit_headers(decision)["RateLimit-Limit"] == "60"
    assert rate_limit_headers(decision)["RateLimit-Remaining"] == "5"
