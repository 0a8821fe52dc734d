"""The writing side of a stream buffer: batches frames so a remote buffer sees one write per batch.

Batching is Nagle-like: a frame written while no write is in flight goes out at once (no added latency
to the first token), and frames that arrive while a write is in flight, or within `window` seconds after
it, ride together in the next one. With the memory buffer every frame is appended at once, deferred
ones aside.

A frame written with `defer=True` (a run's `start`, `start-step`: frames with no content) does not start a
write itself: it waits, at most `defer_window` seconds, for the next frame that does, and goes out with it.
A run's first token then leaves in the stream's first write, where it used to queue behind two writes of
preamble (and each run start saves a round trip). With the memory buffer, a reader then wakes once for the
preamble and the first token, after the provider request went out, where it woke twice before it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from chatstream.errors import StreamGoneError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from chatstream.streams.base import StreamBuffer

__all__ = ["StreamWriter"]


class StreamWriter:
    def __init__(
        self, buffer: StreamBuffer, stream_id: str, *, batched: bool, window: float = 0.0, defer_window: float = 0.025
    ) -> None:
        self._buffer = buffer
        self._stream_id = stream_id
        self._batched = batched
        self._window = window
        self._defer_window = defer_window
        self._deferred: asyncio.TimerHandle | None = None
        """Set while deferred frames wait in `_pending` for a frame that starts the write."""
        self._pending: list[bytes] = []
        # The flusher waits on one future at a time: `_idle` for the next frame, `_pause` for the window (only
        # close() cuts that one short). Plain futures: an Event and `asyncio.wait` per batch cost more than
        # the rest of a paced frame's write (`bench/frame_cost.py`).
        self._idle: asyncio.Future[None] | None = None
        self._pause: asyncio.Future[None] | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._failure: Exception | None = None
        self._closing = False
        self.writes = 0
        """Buffer writes made, for the benchmark's writes-per-token figure."""

    async def write(self, frame: bytes, *, defer: bool = False) -> None:
        """Queue one encoded frame; with an unbatched buffer, append it now. `defer`: let it wait (up to
        `defer_window`) for the next frame written without it."""
        if self._failure is not None:
            raise self._failure
        self._pending.append(frame)
        if defer:
            if self._deferred is None and (self._flusher is None or self._idle is not None):
                self._deferred = asyncio.get_running_loop().call_later(self._defer_window, self._kick)
            return
        if not self._batched:  # appended now, with the deferred frames waiting before it
            self._cancel_deferred()
            frames, self._pending = self._pending, []
            self.writes += 1
            await self._append(frames)
            return
        self._kick()

    def _cancel_deferred(self) -> None:
        if self._deferred is not None:
            self._deferred.cancel()
            self._deferred = None

    def _kick(self) -> None:
        """Have the pending frames written: start the flusher, or wake it (a write in flight takes them next)."""
        self._cancel_deferred()
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_loop(), name=f"flush:{self._stream_id}")
        elif self._idle is not None:
            _resolve(self._idle)

    async def _flush_loop(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                if not self._pending and not self._closing:
                    self._idle = loop.create_future()
                    try:
                        await self._idle
                    finally:
                        self._idle = None
                if self._closing:
                    return  # close() writes what is pending together with the final frames
                batch, self._pending = self._pending, []
                self.writes += 1
                await self._append(batch)
                if self._window and not self._closing:
                    # Let frames accumulate; close() cuts the wait short.
                    self._pause = loop.create_future()
                    timer = loop.call_later(self._window, _resolve, self._pause)
                    try:
                        await self._pause
                    finally:
                        timer.cancel()
                        self._pause = None
        except Exception as exc:  # noqa: BLE001 - surfaced to the producer on its next write or at close
            self._failure = exc

    async def close(self, final: Sequence[bytes]) -> None:
        """Write what is pending plus `final` frames, in order, ending the stream.

        The flusher is never cancelled mid-append (that could lose or repeat a batch): it is asked to
        stop and awaited.
        """
        self._cancel_deferred()
        if self._flusher is not None:
            self._closing = True
            for waiting in (self._idle, self._pause):
                if waiting is not None:
                    _resolve(waiting)
            await self._flusher
            self._flusher = None
        if self._failure is not None:
            raise self._failure
        batch, self._pending = [*self._pending, *final], []
        self.writes += 1
        await self._append(batch, final=True)

    async def _append(self, frames: Sequence[bytes], *, final: bool = False) -> None:
        try:
            await self._buffer.append(self._stream_id, frames, final=final)
        except KeyError as exc:
            # The stream was deleted with its conversation (or taken over): the run ends like any refused
            # write, not as an internal error with a traceback.
            raise StreamGoneError("the stream was deleted or taken over by another run") from exc


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
