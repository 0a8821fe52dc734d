"""In-process `RunRegistry`: leases and stop signals for a single instance."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["MemoryRunRegistry"]


class MemoryRunRegistry:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # conversation -> (run_id, alive until, held until); see `RunRegistry` for the two clocks.
        self._leases: dict[str, tuple[str, float, float]] = {}
        self._stops: dict[str, asyncio.Event] = {}
        self._idempotency: dict[str, tuple[str, float]] = {}
        self._readers: dict[str, float] = {}  # run -> seen until

    def _lease(self, conversation_id: str) -> tuple[str, float, float] | None:
        """The conversation's lease while it is held (alive or not); an expired one is dropped."""
        lease = self._leases.get(conversation_id)
        if lease is not None and self._clock() >= max(lease[1], lease[2]):
            del self._leases[conversation_id]
            return None
        return lease

    def _holder(self, conversation_id: str) -> str | None:
        """The run holding the conversation if it is alive."""
        lease = self._lease(conversation_id)
        if lease is None or self._clock() >= lease[1]:
            return None
        return lease[0]

    def _claim(self, conversation_id: str, run_id: str, ttl: float, hold: float | None) -> None:
        now = self._clock()
        self._leases[conversation_id] = (run_id, now + ttl, now + (ttl if hold is None else hold))

    async def acquire(self, conversation_id: str, run_id: str, *, ttl: float, hold: float | None = None) -> str | None:
        holder = self._holder(conversation_id)
        if holder is not None:
            return holder
        self._claim(conversation_id, run_id, ttl, hold)
        return None

    async def heartbeat(self, conversation_id: str, run_id: str, *, ttl: float, hold: float | None = None) -> bool:
        return (await self.renew([(conversation_id, run_id)], ttl=ttl, hold=hold))[0]

    async def renew(self, leases: Sequence[tuple[str, str]], *, ttl: float, hold: float | None = None) -> list[bool]:
        held: list[bool] = []
        for conversation_id, run_id in leases:
            lease = self._lease(conversation_id)
            ok = lease is not None and lease[0] == run_id
            if ok:
                self._claim(conversation_id, run_id, ttl, hold)
            held.append(ok)
        return held

    async def release(self, conversation_id: str, run_id: str) -> None:
        lease = self._lease(conversation_id)
        if lease is not None and lease[0] == run_id:
            del self._leases[conversation_id]
        self._stops.pop(run_id, None)
        self._readers.pop(run_id, None)

    async def active(self, conversation_id: str) -> str | None:
        return self._holder(conversation_id)

    async def request_stop(self, conversation_id: str) -> str | None:
        run_id = self._holder(conversation_id)
        if run_id is not None:
            self._stops.setdefault(run_id, asyncio.Event()).set()
        return run_id

    async def wait_stop(self, run_id: str) -> None:
        await self._stops.setdefault(run_id, asyncio.Event()).wait()

    async def touch_reader(self, run_id: str, *, ttl: float) -> None:
        now = self._clock()
        if len(self._readers) >= 1024 and run_id not in self._readers:
            # A reader may touch once more after its run released: forget whatever has lapsed.
            self._readers = {r: until for r, until in self._readers.items() if until > now}
        self._readers[run_id] = now + ttl

    async def reader_seen(self, run_id: str) -> bool:
        return self._clock() < self._readers.get(run_id, 0.0)

    async def claim_idempotency(self, key: str, value: str, *, ttl: float) -> str | None:
        now = self._clock()
        existing = self._idempotency.get(key)
        if existing is not None and now < existing[1]:
            return existing[0]
        self._idempotency[key] = (value, now + ttl)
        return None

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        return None
