"""Abandoned runs (`CHAT_ABANDON_AFTER_SECONDS`): a run nobody reads for that long is stopped, so a closed
tab does not keep spending provider tokens. A resume within the window keeps it going.

Readers mark the run as read (`RunRegistry.touch_reader`: a key with a TTL of the window in Redis, so a
reader on any instance counts), renewing the mark every third of the window while they follow the stream
(`chatstream.streams.reader.follow`). The run checks the mark every quarter of the window and, when it has
lapsed, stops like a user stop: its answer stored with finishReason "interrupted", its final frame saying
`endedBy: "abandoned"`. Off (0, the default), none of this costs a call.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from chatstream.errors import AppError

if TYPE_CHECKING:
    from chatstream.runs.registry import RunRegistry

__all__ = ["until_abandoned"]

log = logging.getLogger("chatstream.runs")


async def until_abandoned(registry: RunRegistry, run_id: str, window: float) -> None:
    """Return once no reader has marked `run_id` as read for `window` seconds.

    The run marks itself read as it starts (its first reader is the response that started it, on its way),
    so it stops within 1.25 windows of its last reader. A registry that cannot answer never abandons a run:
    a stop would cost the user an answer to save some tokens.
    """
    marked = failing = False
    while True:
        try:
            if not marked:
                await registry.touch_reader(run_id, ttl=window)
                marked = True
            elif not await registry.reader_seen(run_id):
                return
            failing = False
        except AppError as exc:
            if not failing:
                failing = True
                log.warning("run %s: its readers cannot be tracked (%s); not abandoned meanwhile", run_id, exc.message)
        await asyncio.sleep(window / 4)
