"""The runs executing in this process, and how they end when it shuts down.

Shutdown is a drain (SPEC §7): from its start no run is admitted (`draining`), running runs get a grace
period to finish, then the rest are stopped like a user stop (their answer stored with finishReason
"interrupted", their final frames written), so every reader of this instance gets a whole end before its
connection closes. Only a run that does not end within `STOP_WAIT` of its stop is cancelled.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chatstream.runs.executor import Run

__all__ = ["STOP_WAIT", "LocalRuns"]

log = logging.getLogger("chatstream.runs")

STOP_WAIT = 8.0
"""Seconds a stopped run gets to end: it may wait up to 5 s for its title, then stores and writes its end."""

_CANCEL_WAIT = 1.0


class LocalRuns:
    """The background tasks of this process's runs, by task, with the draining state of the process."""

    def __init__(self) -> None:
        self._tasks: dict[asyncio.Task[None], Run] = {}
        self._ids: set[str] = set()
        self._draining = False
        self._hurry = asyncio.Event()
        self._drain: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, run: Run) -> None:
        """Execute `run` in the background, independent of any connection."""
        run_id = run.spec.run_id
        task = asyncio.create_task(run.execute(), name=f"run:{run_id}")
        self._tasks[task] = run
        self._ids.add(run_id)
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        run = self._tasks.pop(task, None)
        if run is not None:
            self._ids.discard(run.spec.run_id)

    def is_local(self, run_id: str) -> bool:
        """True while `run_id` executes in this process."""
        return run_id in self._ids

    @property
    def draining(self) -> bool:
        return self._draining

    def is_draining(self) -> bool:
        """`draining`, as a callable for readers (they ask on every quiet poll)."""
        return self._draining

    async def drain(self, grace: float, *, stop_wait: float = STOP_WAIT) -> None:
        """Start no run from now on; give the running ones `grace` seconds, stop the rest, and return once
        none is left (or `stop_wait` seconds after the stop). Concurrent calls share one drain."""
        self._draining = True
        if self._drain is None:
            self._drain = asyncio.create_task(self._run_drain(grace, stop_wait), name="runs-drain")
        await asyncio.shield(self._drain)

    def hurry(self) -> None:
        """Cut the grace period short (a second signal): the drain stops every run now."""
        self._draining = True
        self._hurry.set()

    async def _run_drain(self, grace: float, stop_wait: float) -> None:
        loop = asyncio.get_running_loop()
        if self._tasks:
            log.info("draining: %d run(s) get up to %.0fs to finish", len(self._tasks), grace)
        deadline = loop.time() + grace
        hurry = asyncio.ensure_future(self._hurry.wait())
        try:
            # One finished run at a time, re-reading the set: a run admitted just before the drain began
            # (its request was past the check) is waited for too.
            while self._tasks and not self._hurry.is_set() and (remaining := deadline - loop.time()) > 0:
                await asyncio.wait({*self._tasks, hurry}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
        finally:
            hurry.cancel()
        if not self._tasks:
            return
        log.info("draining: stopping %d run(s) still running", len(self._tasks))
        deadline = loop.time() + stop_wait
        while self._tasks and (remaining := deadline - loop.time()) > 0:
            for run in list(self._tasks.values()):
                run.request_stop(shutdown=True)
            await asyncio.wait(set(self._tasks), timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
        if self._tasks:
            log.warning("draining: %d run(s) did not end within %.0fs of their stop", len(self._tasks), stop_wait)

    async def aclose(self) -> None:
        """The server is gone (lifespan shutdown): whatever grace there was is over. Stop what still runs,
        and cancel what does not end after `STOP_WAIT`."""
        self.hurry()
        await self.drain(0.0)
        pending = set(self._tasks)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=_CANCEL_WAIT)
