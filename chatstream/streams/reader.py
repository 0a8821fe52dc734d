"""The reading side: follow a conversation's stream from a cursor until it ends.

Every HTTP response that streams, the first one included, is one of these readers. A reader never talks
to the run: it reads the buffer, and checks the run's lease when the buffer is quiet, so a producer that
died (its instance crashed) ends the reader with an error within a few seconds instead of a hang.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from chatstream.errors import AppError, StreamGoneError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from chatstream.runs.registry import RunRegistry
    from chatstream.streams.base import StreamBuffer, StreamEntry

__all__ = ["PING", "ProducerLostError", "follow"]

PING = None
"""Yielded by `follow` when the stream has been silent for a ping interval."""


class ProducerLostError(AppError):
    status_code = 502
    code = "producer_lost"


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
) -> AsyncIterator[list[StreamEntry] | None]:
    """Yield batches of entries after `after` until the stream's final one; `PING` after each silent interval.

    Raises `StreamGoneError` when the stream disappears and `ProducerLostError` when its run's lease
    lapsed without a final frame. `is_local(run_id)` says the run executes in this process: then it is
    alive by definition, and the lease is not consulted (an overloaded event loop can be late with a
    heartbeat; that must not end the streams of runs that are still going).
    """
    cursor = after
    last_sent = time.monotonic()
    while True:
        result = await buffer.read(stream_id, cursor, block=min(poll, ping_interval))
        if result is None:
            raise StreamGoneError("the stream expired or was deleted")
        if result.entries:
            yield result.entries
            cursor = result.entries[-1].cursor
            last_sent = time.monotonic()
        if result.done:
            return
        if result.entries:
            continue
        if time.monotonic() - last_sent >= ping_interval:
            yield PING
            last_sent = time.monotonic()
        if (is_local is None or not is_local(run_id)) and await registry.active(stream_id) != run_id:
            # The lease is gone. The run writes its final frames before releasing it, so read once more:
            # if the end is there it was a normal finish racing this check.
            result = await buffer.read(stream_id, cursor)
            if result is not None:
                if result.entries:
                    yield result.entries
                if result.done:
                    return
            raise ProducerLostError("the instance producing this stream stopped; the answer is incomplete")
