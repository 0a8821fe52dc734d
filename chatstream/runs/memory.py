"""In-process `RunRegistry`: leases and stop signals for a single instance."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["MemoryRunRegistry"]


class MemoryRunRegistry:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._leases: dict[str, tuple[str, float]] = {}  # conversation -> (run_id, expires_at)
        self._stops: dict[str, asyncio.Event] = {}
        self._idempotency: dict[str, tuple[str, float]] = {}

    def _holder(self, conversation_id: str) -> str | None:
        lease = self._leases.get(conversation_id)
        if lease is None:
            return None
        if self._clock() >= lease[1]:
            del self._leases[conversation_id]
            return None
        return lease[0]

    async def acquire(self, conversation_id: str, run_id: str, *, ttl: float) -> str | None:
        holder = self._holder(conversation_id)
        if holder is not None:
            return holder
        self._leases[conversation_id] = (run_id, self._clock() + ttl)
        return None

    async def heartbeat(self, conversation_id: str, run_id: str, *, ttl: float) -> bool:
        if self._holder(conversation_id) != run_id:
            return False
        self._leases[conversation_id] = (run_id, self._clock() + ttl)
        return True

    async def release(self, conversation_id: str, run_id: str) -> None:
        if self._holder(conversation_id) == run_id:
            del self._leases[conversation_id]
        self._stops.pop(run_id, None)

    async def active(self, conversation_id: str) -> str | None:
        return self._holder(conversation_id)

    async def request_stop(self, conversation_id: str) -> str | None:
        run_id = self._holder(conversation_id)
        if run_id is not None:
            self._stops.setdefault(run_id, asyncio.Event()).set()
        return run_id

    async def wait_stop(self, run_id: str) -> None:
        await self._stops.setdefault(run_id, asyncio.Event()).wait()

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
