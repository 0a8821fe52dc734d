"""`LeaseKeeper`: one ticker renews every local run's leases in one call per backend and tick, and nothing
outlives its run. Memory backends behind spies that count calls; the Redis round trips are counted in
tests/contract/test_lease_batching.py and tests/e2e/test_idle_redis.py."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from typing import TYPE_CHECKING

import pytest

from chatstream.errors import BackendUnavailableError
from chatstream.limits import Limits, MemoryRateLimiter
from chatstream.metrics import Metrics
from chatstream.models import Principal
from chatstream.runs.leases import MAX_IN_FLIGHT, LeaseKeeper
from chatstream.runs.memory import MemoryRunRegistry

if TYPE_CHECKING:
    from collections.abc import Sequence

    from chatstream.limits import Admission

TICK = 0.05
USER = Principal(user_id="alice", tier="free")


class SpyRegistry(MemoryRunRegistry):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[tuple[str, str]]] = []
        self.fail = False

    async def renew(self, leases: Sequence[tuple[str, str]], *, ttl: float, hold: float | None = None) -> list[bool]:
        self.calls.append(list(leases))
        if self.fail:
            raise BackendUnavailableError("run registry unavailable: test")
        return await super().renew(leases, ttl=ttl, hold=hold)


class SpyLimits(Limits):
    def __init__(self, *, lease_ttl: float = 60.0) -> None:
        super().__init__(
            MemoryRateLimiter(), rate_ip_per_minute=0, quota_per_day={}, max_concurrent_runs=1000, lease_ttl=lease_ttl
        )
        self.calls: list[list[str]] = []

    async def refresh_many(self, admissions: Sequence[Admission]) -> list[bool] | None:
        self.calls.append([a.run_id for a in admissions])
        return await super().refresh_many(admissions)


def ticking(keeper: LeaseKeeper) -> bool:
    return keeper.ticking  # a call, so that mypy does not pin the property after an assert


def keeper(registry: SpyRegistry, limits: Limits | None = None, *, hold: float = 60.0) -> LeaseKeeper:
    return LeaseKeeper(registry, limits, interval=TICK, ttl=3 * TICK, hold=hold, metrics=Metrics())


async def ticks(n: float) -> None:
    await asyncio.sleep(n * TICK + TICK / 2)


async def test_many_runs_one_renewal_call_per_tick() -> None:
    registry = SpyRegistry()
    limits = SpyLimits()
    # Slots are renewed every quarter of `hold`: every 0.2 s (4 ticks) here, every tick for liveness.
    leases = keeper(registry, limits, hold=0.8)
    kept = []
    for i in range(50):
        assert await registry.acquire(f"c{i}", f"run-{i}", ttl=3 * TICK, hold=0.8) is None
        admission = await limits.admit(USER, "1.1.1.1", run_id=f"run-{i}")
        kept.append(leases.keep(f"c{i}", f"run-{i}", admission))
    started = time.monotonic()
    await ticks(10)
    elapsed = time.monotonic() - started
    assert 8 <= len(registry.calls) <= elapsed / TICK + 1  # one call per tick, not one per run
    assert all(len(call) == 50 for call in registry.calls)
    assert 1 <= len(limits.calls) <= 3
    assert all(len(call) == 50 for call in limits.calls)
    # Renewed all along: the liveness (3 ticks) would have lapsed long ago without the ticker.
    assert await registry.active("c7") == "run-7"
    for k in kept:
        k.cancel()
    await leases.aclose()


async def test_an_idle_keeper_has_no_task_and_makes_no_call() -> None:
    registry = SpyRegistry()
    leases = keeper(registry)
    assert not ticking(leases)
    kept = leases.keep("c1", "run-1")
    assert ticking(leases)
    await ticks(2)
    kept.cancel()
    kept.cancel()  # idempotent
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert not leases.ticking  # the last run's cancel ends the ticker at once, not at its next tick
    calls = len(registry.calls)
    await ticks(4)
    assert len(registry.calls) == calls
    leases.keep("c2", "run-2").cancel()  # and a new run starts it again
    await leases.aclose()


async def test_a_run_task_that_ends_without_cancel_is_no_longer_renewed() -> None:
    """The old bug: a per-run heartbeat whose cancel() was lost (Python 3.11 `wait_for`) beat forever."""
    registry = SpyRegistry()
    leases = keeper(registry)

    async def run() -> None:
        leases.keep("c1", "run-1")
        await asyncio.sleep(2 * TICK)  # ends without letting go of its leases

    await asyncio.create_task(run())
    await ticks(2)
    assert not leases.ticking
    assert len(leases) == 0
    calls = len(registry.calls)
    await ticks(3)
    assert len(registry.calls) == calls


async def test_a_run_whose_conversation_was_claimed_is_reported_once(caplog: pytest.LogCaptureFixture) -> None:
    registry = SpyRegistry()
    metrics = Metrics()
    leases = LeaseKeeper(registry, None, interval=TICK, ttl=3 * TICK, hold=60.0, metrics=metrics)
    assert await registry.acquire("c1", "run-1", ttl=3 * TICK, hold=60) is None
    kept = leases.keep("c1", "run-1")
    registry._leases["c1"] = ("run-2", time.monotonic() + 60, time.monotonic() + 60)  # another run claimed it
    with caplog.at_level(logging.INFO, logger="chatstream.runs"):
        await ticks(5)
    assert kept.lost
    assert metrics.leases_lost["run"] == 1
    assert sum("lost conversation c1" in r.getMessage() for r in caplog.records) == 1
    assert all(("c1", "run-1") not in call for call in registry.calls[1:])  # no longer renewed
    kept.cancel()
    await leases.aclose()


async def test_a_lapsed_concurrency_slot_is_reported_once(caplog: pytest.LogCaptureFixture) -> None:
    registry = SpyRegistry()
    limits = SpyLimits()
    metrics = Metrics()
    leases = LeaseKeeper(registry, limits, interval=TICK, ttl=3 * TICK, hold=0.2, metrics=metrics)
    admission = await limits.admit(USER, "1.1.1.1", run_id="run-1")
    await limits.settle(admission, None)  # the slot is gone while the run still executes
    assert await registry.acquire("c1", "run-1", ttl=3 * TICK, hold=0.2) is None
    kept = leases.keep("c1", "run-1", admission)
    with caplog.at_level(logging.INFO, logger="chatstream.runs"):
        await ticks(12)  # the slot is due every 0.05 s (hold / 4): many renewals
    assert kept.slot_lost
    assert metrics.leases_lost["concurrency"] == 1
    assert sum("had lapsed" in r.getMessage() for r in caplog.records) == 1
    assert limits.calls == [["run-1"]]  # no longer renewed once it lapsed
    assert not kept.lost
    kept.cancel()
    await leases.aclose()


async def test_a_run_dropped_during_its_renewal_counts_no_loss() -> None:
    """The run let go (and released) while a renewal was on its way: its False is no loss."""
    metrics = Metrics()

    class Releasing(SpyRegistry):
        async def renew(
            self, leases: Sequence[tuple[str, str]], *, ttl: float, hold: float | None = None
        ) -> list[bool]:
            kept.cancel()
            await self.release("c1", "run-1")
            return await super().renew(leases, ttl=ttl, hold=hold)

    registry = Releasing()
    leases = LeaseKeeper(registry, None, interval=TICK, ttl=3 * TICK, hold=60.0, metrics=metrics)
    assert await registry.acquire("c1", "run-1", ttl=1, hold=60) is None
    kept = leases.keep("c1", "run-1")
    await ticks(2)
    assert registry.calls == [[("c1", "run-1")]]
    assert not kept.lost
    assert metrics.leases_lost["run"] == 0
    await leases.aclose()


async def test_failures_are_logged_once_per_outage(caplog: pytest.LogCaptureFixture) -> None:
    registry = SpyRegistry()
    leases = keeper(registry)
    assert await registry.acquire("c1", "run-1", ttl=60) is None
    kept = leases.keep("c1", "run-1")
    registry.fail = True
    with caplog.at_level(logging.INFO, logger="chatstream.runs"):
        await ticks(4)
        assert leases.ticking  # a failing backend never stops the ticker
        registry.fail = False
        await ticks(2)
    messages = [r.getMessage() for r in caplog.records]
    assert len(registry.calls) >= 5
    assert sum("could not renew" in m for m in messages) == 1
    assert sum("work again" in m for m in messages) == 1
    assert not kept.lost
    kept.cancel()
    await leases.aclose()


async def test_loop_lag_is_measured_by_the_ticker() -> None:
    registry = SpyRegistry()
    metrics = Metrics()
    leases = LeaseKeeper(registry, None, interval=TICK, ttl=3 * TICK, hold=60.0, metrics=metrics)
    kept = leases.keep("c1", "run-1")
    await ticks(2)
    time.sleep(0.3)  # the event loop is blocked: the next tick is ~0.25 s late
    await ticks(2)
    assert metrics.loop_lag.count >= 3
    assert metrics.loop_lag.total >= 0.2
    assert "chat_event_loop_lag_seconds_count" in metrics.render(active_runs=1)
    calls = len(registry.calls)
    await ticks(2)
    assert len(registry.calls) - calls <= 3  # after the stall, back to the beat: no burst of catch-up ticks
    kept.cancel()
    await leases.aclose()


async def test_aclose_stops_the_ticker_with_runs_still_kept() -> None:
    registry = SpyRegistry()
    leases = keeper(registry)
    leases.keep("c1", "run-1")
    await ticks(1)
    await leases.aclose()
    assert not leases.ticking
    calls = len(registry.calls)
    await ticks(2)
    assert len(registry.calls) == calls


async def test_slow_answers_do_not_slow_the_beat() -> None:
    """Renewals leave at the tick rate even when answers take longer than a tick (a saturated loop), and no
    more than `MAX_IN_FLIGHT` wait for an answer at once (a hung Redis does not pile them up)."""
    sent: list[float] = []
    waiting = 0
    most = 0

    class Slow(SpyRegistry):
        async def renew(
            self, leases: Sequence[tuple[str, str]], *, ttl: float, hold: float | None = None
        ) -> list[bool]:
            nonlocal waiting, most
            sent.append(time.monotonic())
            waiting += 1
            most = max(most, waiting)
            try:
                await asyncio.sleep(3.5 * TICK)  # each answer arrives 3.5 ticks later
                return await super().renew(leases, ttl=ttl, hold=hold)
            finally:
                waiting -= 1

    registry = Slow()
    leases = keeper(registry)
    kept = leases.keep("c1", "run-1")
    await ticks(10)
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert len(sent) >= 8
    assert max(gaps) < 3 * TICK  # about one per tick, not one per answer (4.5 ticks)
    assert most == 4

    class Hung(SpyRegistry):
        async def renew(
            self, leases: Sequence[tuple[str, str]], *, ttl: float, hold: float | None = None
        ) -> list[bool]:
            sent.append(time.monotonic())
            await asyncio.Event().wait()
            return []

    kept.cancel()
    await leases.aclose()
    sent.clear()
    hung = keeper(Hung())
    hung.keep("c1", "run-1")
    await ticks(MAX_IN_FLIGHT + 4)
    assert len(sent) == MAX_IN_FLIGHT
    await hung.aclose()  # also cancels the renewals still waiting


async def test_slots_follow_the_limiters_own_lease() -> None:
    """Limits built with a shorter lease than the keeper's hold still get renewed in time."""
    registry = SpyRegistry()
    limits = SpyLimits(lease_ttl=8 * TICK)
    leases = keeper(registry, limits, hold=60.0)
    admission = await limits.admit(USER, "1.1.1.1", run_id="run-1")
    assert await registry.acquire("c1", "run-1", ttl=3 * TICK, hold=60) is None
    kept = leases.keep("c1", "run-1", admission)
    await ticks(16)  # twice the slot's lease
    assert not kept.slot_lost
    assert await limits.refresh_many([admission]) == [True]
    kept.cancel()
    await leases.aclose()
