"""The reading side: follow a conversation's stream from a cursor until it ends.

Every HTTP response that streams, the first one included, is one of these readers. A reader never talks
to the run: it reads the buffer, and checks the run's lease when the buffer is quiet, so a producer that
died (its instance crashed) ends the reader with an error within a few seconds instead of a hang; the
first reader to notice also has the dead run's answer stored (`on_lost`).

With `CHAT_ABANDON_AFTER_SECONDS` on, a reader also marks its run as watched (`RunRegistry.touch_reader`)
while it follows, wherever the run is produced: a run nobody reads for that long is stopped (a closed tab).

When this instance shuts down, a reader of a run produced elsewhere has nothing to wait for here: it stops
after the last whole batch, without a final frame (`StreamHandoffError`), and its client reconnects, with
its cursor, to an instance that stays.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from chatstream.errors import AppError, ShuttingDownError, StreamGoneError

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Awaitable, Callable

    from chatstream.runs.registry import RunRegistry
    from chatstream.streams.base import StreamBuffer, StreamEntry

__all__ = ["PING", "PRODUCER_LOST", "FinalBatch", "ProducerLostError", "StreamHandoffError", "follow"]

PING = None
"""Yielded by `follow` when the stream has been silent for a ping interval."""


PRODUCER_LOST = "the instance producing this answer stopped; the answer is incomplete"
"""The error a reader ends with, and the stored answer carries, when the run's producer died."""

log = logging.getLogger("chatstream.streams")


class FinalBatch(list["StreamEntry"]):
    """The stream's last batch, its final frame included: `follow` yields it and ends. A reader that knows
    it can write its own end with it (the response's last write), rather than after it."""

    __slots__ = ()


class ProducerLostError(AppError):
    status_code = 502
    code = "producer_lost"


class StreamHandoffError(ShuttingDownError):
    """This instance is shutting down and the run is produced elsewhere: the reader ends cleanly after its
    last whole batch, with no final frame, so the client resumes from its cursor on another instance (the
    AI SDK sees a stream without `finish`; a non-streaming answer becomes a 503 to retry)."""


async def follow(
    buffer: StreamBuffer,
    registry: RunRegistry,
    stream_id: str,
    run_id: str,
    after: str | None,
    *,
    ping_interval: float,
    poll: float = 1.0,
    is_local: Callable[[str], bool] | None = None,
    on_lost: Callable[[str, str], Awaitable[object]] | None = None,
    draining: Callable[[], bool] | None = None,
    watch: float = 0.0,
) -> AsyncGenerator[list[StreamEntry] | None, None]:
    """Yield batches of entries after `after` until the stream's final one; `PING` after each silent interval.

    Raises `StreamGoneError` when the stream disappears and `ProducerLostError` when its run's lease
    lapsed without a final frame. `is_local(run_id)` says the run executes in this process: then it is
    alive by definition, and the lease is not consulted (an overloaded event loop can be late with a
    heartbeat; that must not end the streams of runs that are still going).

    `on_lost(stream_id, run_id)` is awaited when the producer is found dead: it stores the partial answer
    and ends the stream with its error frame (exactly once across instances), which this reader then
    relays like any frame. `draining()` true while this instance shuts down: a run produced elsewhere is
    then left with `StreamHandoffError` after the last whole batch.

    `watch` (`abandon_after_seconds`; 0: off, no extra call) marks the run as read for that long, renewed
    every third of it while this reader follows (`RunRegistry.touch_reader`).
    """
    cursor = after
    task = asyncio.current_task()
    last_sent = time.monotonic()
    block = min(poll, ping_interval)
    touched = -float("inf")
    if watch > 0:
        block = min(block, watch / 3)  # a quiet stream must not keep this reader from renewing its mark
    while True:
        if watch > 0 and time.monotonic() - touched >= watch / 3:
            touched = time.monotonic()
            try:
                await registry.touch_reader(run_id, ttl=watch)
            except AppError as exc:  # the worst case is a run stopped early; never the reader's end
                log.warning("could not mark run %s as read: %s", run_id, exc.message)
        result = await buffer.read(stream_id, cursor, block=block)
        if task is not None and task.cancelling():
            # redis-py's own `wait_for` (Python 3.11, gh-86296) can drop a cancel() that lands as a command
            # completes: a reader cancelled by its client's disconnect, or by a timeout, would read on to the
            # stream's end. Nothing here catches a cancel to go on, so a pending one is honoured.
            raise asyncio.CancelledError
        if result is None:
            raise StreamGoneError("the stream expired or was deleted")
        if result.entries:
            yield FinalBatch(result.entries) if result.done else result.entries
            cursor = result.entries[-1].cursor
            last_sent = time.monotonic()
        if result.done:
            return
        local = is_local is not None and is_local(run_id)
        if draining is not None and not local and draining():
            raise StreamHandoffError("this instance is shutting down; resume the stream on another one")
        if result.entries:
            continue
        if time.monotonic() - last_sent >= ping_interval:
            yield PING
            last_sent = time.monotonic()
        if not local and await registry.active(stream_id) != run_id:
            # The lease is gone. The run writes its final frames before releasing it, so read once more:
            # if the end is there it was a normal finish racing this check.
            result = await buffer.read(stream_id, cursor)
            if result is not None and not result.done and on_lost is not None:
                try:
                    await on_lost(stream_id, run_id)
                except AppError as exc:  # the reader still ends with the error, only the answer is not stored
                    log.warning("could not store the answer of lost run %s: %s", run_id, exc.message)
                except Exception:  # a reader always ends with a whole frame, whatever recovery did
                    log.exception("storing the answer of lost run %s failed", run_id)
                # The end is in the stream now (written by us or by another reader that got there first);
                # wait a little for it rather than inventing a different one.
                result = await buffer.read(stream_id, cursor, block=poll)
            if result is not None:
                if result.entries:
                    yield FinalBatch(result.entries) if result.done else result.entries
                if result.done:
                    return
            raise ProducerLostError(PRODUCER_LOST)
