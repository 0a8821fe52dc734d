"""The rate-limiter contract, run against every backend: memory, fakeredis (Lua through lupa), real Redis.

Time is a controllable clock, never sleeping: the Lua script takes `now` from the caller, and the backends'
own key expiry only collects garbage (correctness never depends on it).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from uuid import uuid4

import fakeredis
import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from chatstream.errors import BackendUnavailableError, RateLimitedError
from chatstream.limits import (
    Limits,
    MemoryRateLimiter,
    RateLimiter,
    RedisRateLimiter,
    Rule,
    Settlement,
    Subject,
)
from chatstream.models import Principal, Usage
from chatstream.redis_client import connect_redis

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from chatstream.redis_client import RedisClient

# 2026-03-10 12:00:00 UTC: far enough from midnight that day counters live for hours of real time.
NOON = dt.datetime(2026, 3, 10, 12, 0, 0, tzinfo=dt.UTC).timestamp()
MIDNIGHT = dt.datetime(2026, 3, 11, 0, 0, 0, tzinfo=dt.UTC).timestamp()
FREE = Principal(user_id="alice", tier="free")


@dataclass
class Clock:
    now: float = NOON

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Backend:
    name: str
    limiter: RateLimiter
    clock: Clock
    prefix: str
    redis: RedisClient | None = None
    extra: list[aioredis.Redis] = field(default_factory=list)

    def limits(self, **kwargs: object) -> Limits:
        options: dict[str, object] = {
            "prefix": self.prefix,
            "rate_ip_per_minute": 1000,
            "quota_per_day": {"free": 1000},
            "max_concurrent_runs": 100,
            "clock": self.clock,
        }
        options.update(kwargs)
        return Limits(self.limiter, **options)  # type: ignore[arg-type]


@pytest.fixture(
    params=[
        "memory",
        "fakeredis",
        pytest.param("redis", marks=pytest.mark.redis),
        # A Redis Cluster: the rules of one decision span slots (the user's, the address's; the tests' own
        # keys have no hash tag, so each its own), charged per slot at once (chatstream/limits/redis.py).
        pytest.param("cluster", marks=[pytest.mark.redis, pytest.mark.redis_cluster]),
    ],
)
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    clock = Clock()
    prefix = f"test:{uuid4().hex}"
    if request.param == "memory":
        yield Backend("memory", MemoryRateLimiter(clock=clock), clock, prefix)
        return
    client: RedisClient
    if request.param == "fakeredis":
        client = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())
    elif request.param == "cluster":
        url = os.environ.get("REDIS_CLUSTER_URL")
        if not url:
            pytest.skip("REDIS_CLUSTER_URL is not set")
        client = connect_redis(url, cluster=True)
    else:
        url = os.environ.get("REDIS_URL")
        if not url:
            pytest.skip("REDIS_URL is not set")
        client = aioredis.Redis.from_url(url)
    yield Backend(request.param, RedisRateLimiter(client, clock=clock), clock, prefix, client)
    await client.aclose()


def gcra(key: str, limit: int, period_s: float = 60.0, cost: int = 1) -> Rule:
    return Rule(name="ip_per_minute", kind="gcra", key=key, limit=limit, param=period_s * 1000, cost=cost)


def counter(key: str, limit: int, end: float, cost: int = 1, receipt: str = "") -> Rule:
    return Rule(
        name="messages_per_day",
        kind="counter",
        key=key,
        limit=limit,
        param=end * 1000,
        cost=cost,
        receipt=receipt,
        receipt_ttl_ms=60_000 if receipt else 0,
        window=86_400,
    )


def lease(key: str, limit: int, member: str, ttl_s: float = 3.0) -> Rule:
    return Rule(name="concurrent_runs", kind="lease", key=key, limit=limit, param=ttl_s * 1000, member=member)


async def hits(limiter: RateLimiter, rule: Rule, n: int) -> list[bool]:
    return [(await limiter.hit(Subject(rules=(rule,)))).allowed for _ in range(n)]


# -- GCRA (requests per minute per IP) ---------------------------------------------------------------


async def test_gcra_admits_a_burst_of_limit_then_gives_the_true_retry_after(backend: Backend) -> None:
    rule = gcra(f"{backend.prefix}:ip", limit=6)  # one request every 10 s, a burst of 6
    assert await hits(backend.limiter, rule, 6) == [True] * 6
    backend.clock.advance(2.5)
    denied = await backend.limiter.hit(Subject(rules=(rule,)))
    assert not denied.allowed
    assert denied.rule == "ip_per_minute"
    assert denied.remaining == 0
    assert denied.retry_after == pytest.approx(7.5)  # the first slot refills 10 s after the burst
    backend.clock.advance(7.4)
    assert await hits(backend.limiter, rule, 1) == [False]
    backend.clock.advance(0.1)
    assert await hits(backend.limiter, rule, 2) == [True, False]


async def test_gcra_remaining_and_reset_count_down(backend: Backend) -> None:
    rule = gcra(f"{backend.prefix}:ip", limit=4, period_s=60)
    remaining = []
    for _ in range(4):
        decision = await backend.limiter.hit(Subject(rules=(rule,)))
        remaining.append(decision.remaining)
    assert remaining == [3, 2, 1, 0]
    assert decision.reset == pytest.approx(60)  # fully replenished a whole period after a full burst


async def test_gcra_allows_no_double_burst_around_a_minute_boundary(backend: Backend) -> None:
    # A fixed window would admit 10 at 12:00:59.9 and 10 more at 12:01:00.1; GCRA refills one per 6 s.
    rule = gcra(f"{backend.prefix}:ip", limit=10)
    backend.clock.now = NOON + 59.9
    assert sum(await hits(backend.limiter, rule, 10)) == 10
    backend.clock.now = NOON + 60.1
    assert sum(await hits(backend.limiter, rule, 10)) == 0
    backend.clock.now = NOON + 59.9 + 60  # a full minute after the burst: full capacity again
    assert sum(await hits(backend.limiter, rule, 11)) == 10


async def test_gcra_exact_for_awkward_intervals(backend: Backend) -> None:
    # 60000/7 ms and friends are not representable: float drift must neither refuse the last request of a
    # burst nor admit one more, whatever the limit and the (fractional) time.
    backend.clock.now = NOON + 0.123457
    for limit in (*range(1, 40), 97, 113, 997):
        rule = gcra(f"{backend.prefix}:ip:{limit}", limit=limit)
        assert sum(await hits(backend.limiter, rule, limit + 1)) == limit, limit


# -- counters (daily quotas) ---------------------------------------------------------------------------


async def test_counter_denies_past_limit_until_its_window_ends(backend: Backend) -> None:
    rule = counter(f"{backend.prefix}:msg", limit=3, end=MIDNIGHT)
    assert await hits(backend.limiter, rule, 4) == [True, True, True, False]
    denied = await backend.limiter.hit(Subject(rules=(rule,)))
    assert denied.retry_after == pytest.approx(MIDNIGHT - NOON)
    assert denied.reset == pytest.approx(MIDNIGHT - NOON)


async def test_daily_quota_resets_at_utc_midnight(backend: Backend) -> None:
    limits = backend.limits(quota_per_day={"free": 2, "premium": 5})
    backend.clock.now = MIDNIGHT - 30
    await limits.admit(FREE, "1.1.1.1", run_id="r1")
    await limits.admit(FREE, "1.1.1.1", run_id="r2")
    with pytest.raises(RateLimitedError) as info:
        await limits.admit(FREE, "1.1.1.1", run_id="r3")
    assert info.value.limit == "messages_per_day"
    assert info.value.retry_after == 30
    assert info.value.headers["RateLimit-Reset"] == "30"
    backend.clock.now = MIDNIGHT - 0.001
    with pytest.raises(RateLimitedError):
        await limits.admit(FREE, "1.1.1.1", run_id="r4")
    backend.clock.now = MIDNIGHT
    admission = await limits.admit(FREE, "1.1.1.1", run_id="r5")
    assert admission.day == "20260311"
    # Premium has its own quota; an unknown tier falls back to free's.
    for i in range(5):
        await limits.admit(Principal(user_id="bob", tier="premium"), "2.2.2.2", run_id=f"p{i}")
    with pytest.raises(RateLimitedError):
        await limits.admit(Principal(user_id="bob", tier="premium"), "2.2.2.2", run_id="p5")
    await limits.admit(Principal(user_id="carol", tier="gold"), "3.3.3.3", run_id="g0")
    await limits.admit(Principal(user_id="carol", tier="gold"), "3.3.3.3", run_id="g1")
    with pytest.raises(RateLimitedError):
        await limits.admit(Principal(user_id="carol", tier="gold"), "3.3.3.3", run_id="g2")


# -- leases (concurrent runs) --------------------------------------------------------------------------


async def test_lease_limits_concurrency_and_frees_on_release(backend: Backend) -> None:
    key = f"{backend.prefix}:runs"
    hit = backend.limiter.hit
    assert (await hit(Subject(rules=(lease(key, 2, "a"),)))).allowed
    assert (await hit(Subject(rules=(lease(key, 2, "b"),)))).allowed
    assert (await hit(Subject(rules=(lease(key, 2, "a"),)))).allowed  # re-admitting a holder takes no slot
    backend.clock.advance(1)
    denied = await hit(Subject(rules=(lease(key, 2, "c"),)))
    assert not denied.allowed
    assert denied.rule == "concurrent_runs"
    assert denied.retry_after == pytest.approx(2)  # when the oldest lease would lapse
    await backend.limiter.settle(Settlement(lease_key=key, member="a"))
    assert (await hit(Subject(rules=(lease(key, 2, "c"),)))).allowed


async def test_unrefreshed_lease_expires_like_a_killed_instance(backend: Backend) -> None:
    limits = backend.limits(max_concurrent_runs=1, lease_ttl=3.0)
    alive = await limits.admit(FREE, "1.1.1.1", run_id="alive")
    for _ in range(5):  # the run heartbeats for 5 s: its slot stays taken
        backend.clock.advance(1)
        await limits.refresh(alive)
        with pytest.raises(RateLimitedError) as info:
            await limits.admit(FREE, "1.1.1.1", run_id="other")
        assert info.value.limit == "concurrent_runs"
        assert info.value.retry_after == 3
        # The policy the other headers describe is listed (concurrency has no window).
        assert '1;comment="concurrent_runs"' in info.value.headers["RateLimit-Policy"]
        assert info.value.headers["RateLimit-Limit"] == "1"
    await limits.settle(alive, None)
    crashed = await limits.admit(FREE, "1.1.1.1", run_id="crashed")
    backend.clock.advance(2.9)  # the instance died: no more refreshes
    with pytest.raises(RateLimitedError):
        await limits.admit(FREE, "1.1.1.1", run_id="other")
    backend.clock.advance(0.2)
    await limits.admit(FREE, "1.1.1.1", run_id="other")
    # The lapsed run cannot take its slot back by refreshing.
    assert not await backend.limiter.refresh(crashed.lease_key, "crashed", 3000)


async def test_refresh_many_extends_live_leases_and_reports_lapsed_ones(backend: Backend) -> None:
    limits = backend.limits(max_concurrent_runs=1, lease_ttl=3.0)
    bob = Principal(user_id="bob", tier="free")
    a = await limits.admit(FREE, "1.1.1.1", run_id="a")
    b = await limits.admit(bob, "1.1.1.1", run_id="b")
    settled = await backend.limits(max_concurrent_runs=1, lease_ttl=3.0).admit(
        Principal(user_id="carol", tier="free"), "1.1.1.1", run_id="c"
    )
    await limits.settle(settled, None)
    unleased = await backend.limits(max_concurrent_runs=0).admit(FREE, "1.1.1.1", run_id="free-running")
    backend.clock.advance(2.5)
    # One answer per admission, in order; a settled lease is not re-taken, one without a lease is fine.
    assert await limits.refresh_many([a, settled, unleased, b]) == [True, False, True, True]
    assert await limits.refresh_many([]) == []
    backend.clock.advance(2.5)  # 5 s after admission: both slots are taken only thanks to the batched refresh
    for user in (FREE, bob):
        with pytest.raises(RateLimitedError) as info:
            await limits.admit(user, "1.1.1.1", run_id="next")
        assert info.value.limit == "concurrent_runs"
    backend.clock.advance(1)  # 3.5 s without a refresh: both lapsed, and a late refresh_many says so
    assert await limits.refresh_many([a, b]) == [False, False]
    await limits.admit(FREE, "1.1.1.1", run_id="next")


# -- atomicity: all or nothing ---------------------------------------------------------------------------


async def test_denied_request_consumes_nothing(backend: Backend) -> None:
    limits = backend.limits(quota_per_day={"free": 2, "none": 0}, max_concurrent_runs=1, rate_ip_per_minute=2)
    first = await limits.admit(FREE, "9.9.9.9", run_id="a")
    for i in range(5):  # concurrency denies: neither the message quota nor the IP budget is charged
        with pytest.raises(RateLimitedError) as info:
            await limits.admit(FREE, "8.8.8.8", run_id=f"b{i}")
        assert info.value.limit == "concurrent_runs"
    await limits.settle(first, None)
    second = await limits.admit(FREE, "8.8.8.8", run_id="c")  # message 2 of 2
    await limits.settle(second, None)
    with pytest.raises(RateLimitedError) as info:
        await limits.admit(FREE, "8.8.8.8", run_id="d")
    assert info.value.limit == "messages_per_day"
    # 8.8.8.8 was charged once (run c) despite 6 denials: it still has one request of its 2 left.
    zero = Principal(user_id="zed", tier="none")
    with pytest.raises(RateLimitedError):
        await limits.admit(zero, "7.7.7.7", run_id="z")
    await limits.admit(Principal(user_id="eve"), "8.8.8.8", run_id="e")
    with pytest.raises(RateLimitedError) as info:
        await limits.admit(Principal(user_id="eve"), "8.8.8.8", run_id="f")
    assert info.value.limit == "ip_per_minute"


async def test_concurrent_hits_admit_exactly_the_limit(backend: Backend) -> None:
    rule = counter(f"{backend.prefix}:msg", limit=10, end=MIDNIGHT)
    results = await asyncio.gather(*(backend.limiter.hit(Subject(rules=(rule,))) for _ in range(35)))
    assert sum(d.allowed for d in results) == 10
    assert all(d.retry_after > 0 for d in results if not d.allowed)


# -- token budgets -----------------------------------------------------------------------------------------


async def test_token_reservations_prevent_overshoot_and_settle_to_usage(backend: Backend) -> None:
    limits = backend.limits(tokens_per_day={"free": 1000})
    a = await limits.admit(FREE, "1.1.1.1", run_id="a", estimate_tokens=400)
    b = await limits.admit(FREE, "1.1.1.1", run_id="b", estimate_tokens=400)
    assert a.reserved_tokens == b.reserved_tokens == 400
    with pytest.raises(RateLimitedError) as info:  # 800 reserved + 400 > 1000
        await limits.admit(FREE, "1.1.1.1", run_id="c", estimate_tokens=400)
    assert info.value.limit == "tokens_per_day"
    assert info.value.headers["RateLimit-Remaining"] == "200"
    await limits.settle(a, Usage(output_tokens=100))  # 100 + 400 reserved
    await limits.settle(a, Usage(output_tokens=100))  # idempotent
    c = await limits.admit(FREE, "1.1.1.1", run_id="c", estimate_tokens=400)  # 900
    await limits.settle(b, None)  # usage unknown: the estimate stays charged
    await limits.settle(c, Usage(output_tokens=500))  # ran past its estimate: 100 + 400 + 500 = 1000
    with pytest.raises(RateLimitedError) as info:  # nothing left, not even for a zero estimate
        await limits.admit(FREE, "1.1.1.1", run_id="d")
    assert info.value.limit == "tokens_per_day"
    assert info.value.retry_after == MIDNIGHT - NOON


async def test_headers_describe_the_binding_limit_and_every_policy(backend: Backend) -> None:
    limits = backend.limits(rate_ip_per_minute=60, quota_per_day={"free": 3}, max_concurrent_runs=5)
    admission = await limits.admit(FREE, "1.1.1.1", run_id="a")
    assert admission.headers == {
        "RateLimit-Limit": "3",
        "RateLimit-Remaining": "2",
        "RateLimit-Reset": str(int(MIDNIGHT - NOON)),
        "RateLimit-Policy": '60;w=60;comment="ip_per_minute", 3;w=86400;comment="messages_per_day"',
    }
    await limits.admit(FREE, "1.1.1.1", run_id="b")
    await limits.admit(FREE, "1.1.1.1", run_id="c")
    with pytest.raises(RateLimitedError) as info:
        await limits.admit(FREE, "1.1.1.1", run_id="d")
    err = info.value
    assert err.status_code == 429
    assert err.body() == {
        "error": "rate_limit",
        "message": err.body()["message"],
        "retryAfter": int(MIDNIGHT - NOON),
        "limit": "messages_per_day",
    }
    assert err.headers["Retry-After"] == str(int(MIDNIGHT - NOON))
    assert err.headers["RateLimit-Remaining"] == "0"
    assert err.headers["RateLimit-Limit"] == "3"
    assert "RateLimit-Policy" in err.headers


async def test_every_key_expires_by_itself(backend: Backend) -> None:
    if backend.redis is None:
        pytest.skip("memory state has no keys to inspect")
    # One request per minute: the GCRA key then lives 60 s (at 1000/min it would rightly vanish in 60 ms).
    limits = backend.limits(rate_ip_per_minute=1, tokens_per_day={"free": 1000})
    await limits.admit(FREE, "1.1.1.1", run_id="a", estimate_tokens=10)
    keys = [k async for k in backend.redis.scan_iter(match=f"{backend.prefix}:*")]
    assert len(keys) == 5, keys  # ip, msg, runs, tok, hold
    for key in keys:
        assert await backend.redis.pttl(key) > 0, key


# -- backend failure --------------------------------------------------------------------------------------


def unreachable_redis() -> aioredis.Redis:
    # No retries: a refused connection should fail the call at once, not after redis-py's default backoff.
    return aioredis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))


async def test_unreachable_redis_fails_closed_by_default() -> None:
    client = unreachable_redis()
    limits = Limits(RedisRateLimiter(client))
    try:
        with pytest.raises(BackendUnavailableError) as info:
            await limits.admit(FREE, "1.1.1.1", run_id="a")
        assert info.value.status_code == 503
        # refresh and settle of a run admitted earlier log and return: they never raise.
        admission = await Limits(MemoryRateLimiter(), tokens_per_day={"free": 10}).admit(FREE, "1.1.1.1", run_id="a")
        await limits.refresh(admission)
        await limits.settle(admission, Usage(output_tokens=5))
        leased = await Limits(MemoryRateLimiter()).admit(FREE, "1.1.1.1", run_id="b")
        assert await limits.refresh_many([leased]) is None  # unknown, not lapsed: the caller keeps trying
    finally:
        await client.aclose()


async def test_unreachable_redis_fails_open_when_configured() -> None:
    client = unreachable_redis()
    limits = Limits(RedisRateLimiter(client), fail_open=True)
    try:
        admission = await limits.admit(FREE, "1.1.1.1", run_id="a")
        assert not admission.enforced
        assert admission.headers == {}
        await limits.refresh(admission)
        await limits.settle(admission, Usage(output_tokens=5))
    finally:
        await client.aclose()
