"""In-process `StreamBuffer`: the default, and the twin of the Redis one. Cursors are frame counts."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from typing import TYPE_CHECKING

from chatstream.streams.base import ReadResult, StreamEntry, StreamInfo

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["MemoryStreamBuffer"]


class _Stream:
    __slots__ = ("done", "expires_at", "frames", "run_id", "waiters")

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.frames: list[bytes] = []
        self.done = False
        self.expires_at: float | None = None
        # One future per blocked reader, woken (and dropped) by the next change: no Event, task or
        # `wait_for` per read, which was most of a paced frame's reading cost (`bench/frame_cost.py`).
        self.waiters: list[asyncio.Future[None]] = []

    def wake(self) -> None:
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class MemoryStreamBuffer:
    """Streams live in a dict; a finished stream expires `ttl` seconds after its final append."""

    def __init__(self, *, ttl: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._streams: dict[str, _Stream] = {}
        # Ended streams in order of expiry (the TTL is constant, so ending order is expiry order):
        # sweeping pops only what has expired, never scans every stream.
        self._ended: deque[tuple[float, str, _Stream]] = deque()

    def _get(self, stream_id: str) -> _Stream | None:
        stream = self._streams.get(stream_id)
        if stream is not None and stream.expires_at is not None and self._clock() >= stream.expires_at:
            del self._streams[stream_id]
            return None
        return stream

    def _sweep(self) -> None:
        now = self._clock()
        while self._ended and self._ended[0][0] <= now:
            _, key, stream = self._ended.popleft()
            if self._streams.get(key) is stream:
                del self._streams[key]

    async def create(self, stream_id: str, run_id: str) -> None:
        self._sweep()
        old = self._streams.get(stream_id)
        self._streams[stream_id] = _Stream(run_id)
        if old is not None:
            old.wake()

    async def append(
        self, stream_id: str, frames: Sequence[bytes], *, final: bool = False, run_id: str | None = None
    ) -> None:
        stream = self._get(stream_id)
        if stream is None or stream.done or (run_id is not None and stream.run_id != run_id):
            raise KeyError(f"stream {stream_id!r} is not open")
        stream.frames.extend(frames)
        if final:
            stream.done = True
            stream.expires_at = self._clock() + self.ttl
            self._ended.append((stream.expires_at, stream_id, stream))
        if stream.waiters:
            stream.wake()

    async def read(self, stream_id: str, after: str | None, *, block: float = 0.0) -> ReadResult | None:
        start = _parse(after)
        stream = self._get(stream_id)
        if stream is None:
            return None
        if start >= len(stream.frames) and not stream.done and block > 0:
            loop = asyncio.get_running_loop()
            waiter: asyncio.Future[None] = loop.create_future()
            stream.waiters.append(waiter)
            timer = loop.call_later(block, _expire, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                if stream.waiters:  # timed out or cancelled, not woken: forget it
                    with contextlib.suppress(ValueError):
                        stream.waiters.remove(waiter)
            if self._streams.get(stream_id) is not stream:
                return None  # deleted or replaced by a new run while we waited
        frames = stream.frames
        entries = [StreamEntry(str(i), frames[i - 1]) for i in range(start + 1, len(frames) + 1)]
        return ReadResult(entries, stream.done)

    async def info(self, stream_id: str) -> StreamInfo | None:
        stream = self._get(stream_id)
        return None if stream is None else StreamInfo(run_id=stream.run_id, done=stream.done)

    async def delete(self, stream_id: str) -> None:
        stream = self._streams.pop(stream_id, None)
        if stream is not None:
            stream.wake()

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        self._streams.clear()


def _parse(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not cursor.isdigit():
        raise ValueError(f"invalid cursor {cursor!r}")
    return int(cursor)
