"""An in-process copy of the streams this instance produces, so its own readers need no Redis round trips.

`RedisStreamBuffer` records a batch here only after Redis has stored it, with the cursors Redis assigned,
and wakes the local readers; a reader on this instance is then served from memory, while a reader on
another instance (or one holding a cursor the copy does not know) reads Redis. Both see the same frames
under the same cursors, because the copy holds nothing Redis does not.

A copy serves only while it is certainly identical to Redis and to the current run:

- it is detached (readers go back to Redis) when a write's outcome is unknown (Redis failed mid-call),
  and when the stream sees no write for `idle_ttl` (its Redis keys have expired by then);
- it stops taking new readers at the final frame. Another instance may start the conversation's next
  run right after, and nothing tells this one, so a finished copy could serve a stale run; readers
  already waiting on it still get the end from it. A later read of the finished run costs one Redis read.

Known race: if this instance stalls past its run lease and another instance starts a new run on the same
conversation, the open copy keeps answering for the old run until this instance's next append, which
Redis refuses (the run id no longer matches); the copy is then dropped and its waiting readers get None.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections import deque
from typing import TYPE_CHECKING

from chatstream.streams.base import ReadResult, StreamEntry

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["MIRROR_MISS", "LocalMirror", "MirroredStream"]


class _Miss(enum.Enum):
    MISS = "miss"


MIRROR_MISS = _Miss.MISS
"""`LocalMirror.read` cannot answer; read Redis instead."""

_START = ("0", "0-0")


class MirroredStream:
    """The frames of one run as Redis stored them, with `cursor -> position after it`."""

    __slots__ = ("cursors", "done", "frames", "gone", "index", "live", "run_id", "touched", "waiters")

    def __init__(self, run_id: str, now: float) -> None:
        self.run_id = run_id
        # Parallel lists of str and bytes, not a list of `StreamEntry` tuples: those would be objects the
        # cyclic GC tracks and rescans (measured: 10x the cost of `record` with a few thousand frames).
        self.cursors: list[str] = []
        self.frames: list[bytes] = []
        self.index: dict[str, int] = {}
        self.done = False
        self.live = True
        """False once detached: it no longer answers; waiting readers go to Redis."""
        self.gone = False
        """Deleted or replaced by a new run: a reader waiting on it gets None (as with the memory twin)."""
        self.touched = now
        self.waiters: set[asyncio.Future[None]] = set()

    def record(self, entry_id: str, frames: Sequence[bytes], final: bool) -> None:
        """Add the frames of the Redis entry `entry_id` (frame k: `<id>.<k>`, the last one `<id>`)."""
        cursors, index = self.cursors, self.index
        position = len(cursors)
        for k in range(len(frames) - 1):
            cursor = f"{entry_id}.{k}"
            cursors.append(cursor)
            position += 1
            index[cursor] = position
        if frames:
            cursors.append(entry_id)
            index[entry_id] = position + 1
            self.frames += frames
        if final:
            self.done = True
        self.wake()

    def wake(self) -> None:
        waiters, self.waiters = self.waiters, set()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


class LocalMirror:
    """The mirrored streams of one `RedisStreamBuffer`, by stream id (only streams it created)."""

    def __init__(self, *, idle_ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._idle_ttl = idle_ttl
        self._clock = clock
        self._streams: dict[str, MirroredStream] = {}
        # Every opened copy, swept two at a time on each `open` (O(1)): dead ones are dropped, idle ones
        # detached, live ones rotated to the back. It stays within about twice the number of open streams.
        self._sweep: deque[tuple[str, MirroredStream]] = deque()

    def __len__(self) -> int:
        return len(self._streams)

    def get(self, stream_id: str) -> MirroredStream | None:
        return self._streams.get(stream_id)

    def open(self, stream_id: str, run_id: str) -> MirroredStream:
        """Start the copy of a stream this instance just created in Redis, replacing any older one."""
        now = self._clock()
        for _ in range(min(2, len(self._sweep))):
            key, stream = self._sweep.popleft()
            if self._streams.get(key) is not stream:
                continue
            if now - stream.touched > self._idle_ttl:
                self.detach(key, stream)
            else:
                self._sweep.append((key, stream))
        self.drop(stream_id)
        stream = self._streams[stream_id] = MirroredStream(run_id, now)
        self._sweep.append((stream_id, stream))
        return stream

    def record(
        self, stream_id: str, stream: MirroredStream, entry_id: str, frames: Sequence[bytes], final: bool
    ) -> None:
        """Add a batch Redis stored (`entry_id` '' when it created no entry); a final one ends new reads."""
        if not stream.live:
            return
        stream.touched = self._clock()
        if entry_id:
            stream.record(entry_id, frames, final)
        if final:
            # Readers already waiting hold `stream` and were just woken with the end; new ones go to Redis.
            stream.live = False
            if self._streams.get(stream_id) is stream:
                del self._streams[stream_id]

    def detach(self, stream_id: str, stream: MirroredStream) -> None:
        """Stop answering from `stream` (its contents may differ from Redis); waiting readers go to Redis."""
        stream.live = False
        if self._streams.get(stream_id) is stream:
            del self._streams[stream_id]
        stream.wake()

    def drop(self, stream_id: str) -> None:
        """The stream was deleted or replaced: readers waiting on the old copy get None."""
        stream = self._streams.pop(stream_id, None)
        if stream is not None:
            stream.live = False
            stream.gone = True
            stream.wake()

    def clear(self) -> None:
        for stream_id in list(self._streams):
            self.drop(stream_id)
        self._sweep.clear()

    async def read(self, stream: MirroredStream, after: str | None, block: float) -> ReadResult | _Miss | None:
        """Frames after `after` from the copy, waiting up to `block` s for some; `MIRROR_MISS` when the copy
        cannot answer (unknown cursor, or detached while waiting)."""
        if after is None or after in _START:
            start = 0
        else:
            found = stream.index.get(after)
            if found is None:
                return MIRROR_MISS  # an alias ("17" for "17-0"), an older run's cursor, or not recorded yet
            start = found
        if start >= len(stream.cursors) and not stream.done and block > 0:
            loop = asyncio.get_running_loop()
            waiter: asyncio.Future[None] = loop.create_future()
            stream.waiters.add(waiter)
            timer = loop.call_later(block, _expire, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                stream.waiters.discard(waiter)
            if stream.gone:
                return None
            if not stream.live and not stream.done:
                return MIRROR_MISS
        cursors, frames = stream.cursors, stream.frames
        entries = [StreamEntry(cursors[i], frames[i]) for i in range(start, len(cursors))]
        return ReadResult(entries, stream.done)


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
