"""Keeping this process's runs alive: one ticker renews every local run's leases, in one round trip a tick.

A run holds three expiring leases, on two clocks (see `chatstream.runs.registry`):

- its conversation's liveness (`3 x heartbeat_seconds`): renewed every tick (`heartbeat_seconds`). Readers
  on other instances check it, so a producer whose process died is seen dead within ~3 s, and the next send
  into its conversation may claim it;
- its hold on the conversation and its user's concurrency slot (`run_lease_seconds`, 60 s): renewed, the
  hold every tick, the slot every quarter of the lease. An event loop stalled or a process paused for
  seconds loses neither: the concurrent-runs limit never under-counts, and a producer whose liveness lapsed
  while nobody claimed its conversation carries on. The price: a crashed instance's runs keep their users'
  slots until they lapse, up to `run_lease_seconds`.

One ticker per process, not a task per run: per-run tasks were one timer and two round trips per run per
second (2,000/s at 1,000 streams), and late together when the loop is saturated. And a cancelled task is not a
stopped one: redis-py writes through `asyncio.wait_for`, which on Python 3.11 drops a `cancel()` that lands as
the write completes (gh-86296), so per-run heartbeat loops outlived their runs and refreshed forever. Here a
run is renewed only while it is kept and its task is alive, and letting go (`KeptRun.cancel`) is a plain,
synchronous removal; the ticker stops when the last run goes, so an idle process sends Redis nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chatstream.limits import Admission, Limits
    from chatstream.metrics import Metrics
    from chatstream.runs.registry import RunRegistry

__all__ = ["KeptRun", "LeaseKeeper"]

log = logging.getLogger("chatstream.runs")

SLOT_RENEWALS = 4
"""Concurrency slots are renewed this many times per `run_lease_seconds`."""

MAX_IN_FLIGHT = 8
"""Renewals sent and not yet answered, at most. Ticks do not wait for answers, because Redis renews when it
receives the command, not when this process gets round to the answer: at 1,000 streams on one core handling
an answer took 1-5 s (measured), and a tick that waited, or skipped while two were unanswered, left gaps of up
to 7 s against a 3 s liveness. The bound only matters when Redis hangs: then at most this many wait (each
until the client's socket timeout) and ticks skip."""


class KeptRun:
    """One run whose leases the keeper renews, from `LeaseKeeper.keep` until `cancel()`."""

    __slots__ = ("_keeper", "admission", "conversation_id", "lost", "run_id", "slot_lost", "task")

    def __init__(
        self,
        keeper: LeaseKeeper,
        conversation_id: str,
        run_id: str,
        admission: Admission | None,
        task: asyncio.Task[object] | None,
    ) -> None:
        self._keeper = keeper
        self.conversation_id = conversation_id
        self.run_id = run_id
        self.admission = admission
        self.task = task
        self.lost = False
        """The conversation was claimed by another run (this one's liveness had lapsed): no longer renewed."""
        self.slot_lost = False
        """The concurrency slot lapsed while the run executed: no longer renewed."""

    def cancel(self) -> None:
        """Stop renewing (idempotent). Call it before releasing the leases, so no renewal follows a release."""
        self._keeper._drop(self)


class LeaseKeeper:
    """Renews the leases of this process's runs; see the module docstring.

    Args:
        registry: where the conversation leases live.
        limits: where the concurrency slots live; None without limits.
        interval: seconds between ticks (`heartbeat_seconds`).
        ttl: liveness lease in seconds (`3 x interval`).
        hold: hold lease in seconds (`run_lease_seconds`); slots are renewed every quarter of the shorter of
            it and `limits.lease_ttl` (the same setting, when built by the factory).
        metrics: receives the loop lag and the leases lost.
    """

    def __init__(
        self,
        registry: RunRegistry,
        limits: Limits | None,
        *,
        interval: float,
        ttl: float,
        hold: float,
        metrics: Metrics,
    ) -> None:
        self._registry = registry
        self._limits = limits
        self._interval = interval
        self._ttl = ttl
        self._hold = hold
        # The limiter's own TTL, whatever built it: renewing on `hold`'s cadence could outlast a shorter one.
        self._slot_every = min(hold, limits.lease_ttl if limits is not None else hold) / SLOT_RENEWALS
        self._metrics = metrics
        self._kept: dict[str, KeptRun] = {}
        self._task: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._closed = False
        self._failing = False

    def __len__(self) -> int:
        return len(self._kept)

    @property
    def ticking(self) -> bool:
        """Whether the ticker task exists (only while runs are kept)."""
        return self._task is not None

    def keep(self, conversation_id: str, run_id: str, admission: Admission | None = None) -> KeptRun:
        """Renew `run_id`'s leases from the next tick until `cancel()`, or until the calling task ends (a
        run task that dies without reaching its `cancel()` is dropped at the next tick)."""
        kept = KeptRun(self, conversation_id, run_id, admission, asyncio.current_task())
        self._kept[run_id] = kept
        if self._task is None and not self._closed:
            self._task = asyncio.create_task(self._tick(), name="lease-keeper")
        return kept

    def _drop(self, kept: KeptRun) -> None:
        if self._kept.get(kept.run_id) is kept:
            del self._kept[kept.run_id]
            if not self._kept:
                self._wake.set()  # the ticker ends now rather than at its next tick

    async def aclose(self) -> None:
        """Stop the ticker (shutdown). Leases of runs still kept then lapse by themselves."""
        self._closed = True
        self._wake.set()
        for task in [self._task, *self._in_flight]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + self._interval
        slots_due = loop.time() + self._slot_every
        try:
            # The loop's own condition ends it, not a cancel(): see the module docstring.
            while True:
                await self._sleep_until(due)
                self._prune()
                if self._closed or not self._kept:
                    return
                now = loop.time()
                self._metrics.loop_lag.observe(max(0.0, now - due))
                if len(self._in_flight) < MAX_IN_FLIGHT:
                    slots = now >= slots_due
                    renewal = asyncio.create_task(self._renew(slots=slots), name="lease-renewal")
                    self._in_flight.add(renewal)
                    renewal.add_done_callback(self._in_flight.discard)
                    if slots:
                        slots_due = now + self._slot_every
                # Late, keep the beat; after a stall, renew once and go back to it: never two sends within
                # half a beat (a burst of catch-up ticks would only add load to a loop that is behind).
                due = max(due + self._interval, loop.time() + self._interval / 2)
        finally:
            if self._task is asyncio.current_task():
                self._task = None

    async def _sleep_until(self, deadline: float) -> None:
        delay = deadline - asyncio.get_running_loop().time()
        if delay <= 0 or self._wake.is_set():
            self._wake.clear()
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._wake.wait()
        self._wake.clear()

    def _prune(self) -> None:
        for kept in [k for k in self._kept.values() if k.task is not None and k.task.done()]:
            del self._kept[kept.run_id]

    async def _renew(self, *, slots: bool) -> None:
        batch = list(self._kept.values())
        runs = [k for k in batch if not k.lost]
        owed = [k for k in batch if slots and k.admission is not None and not k.slot_lost]
        limits = self._limits if owed else None
        started = asyncio.get_running_loop().time()
        renewed, refreshed = await asyncio.gather(
            self._registry.renew([(k.conversation_id, k.run_id) for k in runs], ttl=self._ttl, hold=self._hold),
            limits.refresh_many([k.admission for k in owed if k.admission is not None]) if limits else _none(),
            return_exceptions=True,
        )
        self._metrics.lease_renewal.observe(asyncio.get_running_loop().time() - started)
        if isinstance(renewed, BaseException):
            if not isinstance(renewed, Exception):
                raise renewed
            # Once per outage, not once per tick: the ticker retries every beat anyway.
            if not self._failing:
                self._failing = True
                log.warning("could not renew the leases of %d run(s): %r", len(runs), renewed)
        else:
            if self._failing:
                self._failing = False
                log.info("lease renewals work again")
            for kept, held in zip(runs, renewed, strict=True):
                # A run dropped meanwhile released its lease itself: its False is no loss.
                if not held and not kept.lost and self._kept.get(kept.run_id) is kept:
                    kept.lost = True
                    self._metrics.leases_lost["run"] += 1
                    log.warning(
                        "run %s lost conversation %s: its liveness lapsed and another run claimed it",
                        kept.run_id,
                        kept.conversation_id,
                    )
        if isinstance(refreshed, BaseException):
            if not isinstance(refreshed, Exception):
                raise refreshed
            log.warning("could not renew the concurrency leases of %d run(s): %r", len(owed), refreshed)
        elif refreshed is not None:
            for kept, ok in zip(owed, refreshed, strict=True):
                if not ok and not kept.slot_lost and self._kept.get(kept.run_id) is kept:
                    kept.slot_lost = True
                    self._metrics.leases_lost["concurrency"] += 1
                    log.warning("concurrency lease of run %s had lapsed while it ran", kept.run_id)


async def _none() -> None:
    return None
