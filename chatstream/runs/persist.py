"""The writes a run cannot afford to lose, and the one log line of its end.

A run's answer exists only in its memory until it is stored. When Redis (the store, the buffer) is away at
that moment, giving up would lose an answer the client has seen, so `until_stored` retries it, with
backoff, for `Settings.store_retry_seconds`, and says what it does in the log. Everything it retries must
be idempotent (a message is replaced by id, a conversation by id).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from chatstream.errors import BackendUnavailableError, StreamGoneError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from chatstream.streams.base import StreamBuffer
    from chatstream.streams.producer import StreamWriter

__all__ = ["close_stream", "log_run_end", "until_stored"]

log = logging.getLogger("chatstream.runs")

_FIRST_DELAY = 0.05
_MAX_DELAY = 2.0


async def until_stored(op: Callable[[], Awaitable[object]], *, what: str, run_id: str, seconds: float) -> None:
    """Await `op()` until it succeeds, retrying `BackendUnavailableError` for up to `seconds`.

    Raises the last `BackendUnavailableError` once the time is up, and any other error at once (a retry
    cannot fix it).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    delay = _FIRST_DELAY
    attempts = 0
    while True:
        try:
            await op()
        except BackendUnavailableError as exc:
            attempts += 1
            if attempts == 1:
                log.warning(
                    "run %s could not store its %s (%s); keeping it in memory and retrying for up to %.0fs",
                    run_id,
                    what,
                    exc.message,
                    seconds,
                )
            if loop.time() + delay > deadline:
                log.error("run %s gave up storing its %s after %d attempts: %s", run_id, what, attempts, exc.message)
                raise
            try:
                await asyncio.sleep(delay)
            except asyncio.CancelledError:
                log.error("run %s: its %s was never stored (cancelled while the store was away)", run_id, what)
                raise
            delay = min(delay * 2, _MAX_DELAY)
            continue
        if attempts:
            log.info("run %s stored its %s after %d failed attempts", run_id, what, attempts)
        return


async def close_stream(
    writer: StreamWriter, buffer: StreamBuffer, stream_id: str, run_id: str, final: Sequence[bytes], *, seconds: float
) -> None:
    """Write a run's final frames (after what `writer` holds); while the buffer is away, retry them alone.

    A failed write's outcome is unknown (Redis may have applied it), so the frames pending in the writer are
    not sent again: readers may miss a few frames before the end, never see one twice. The retry names the
    run, so it never lands in the stream of the conversation's next run.
    """
    try:
        await writer.close(final)
        return
    except StreamGoneError:
        log.warning("run %s: its stream was ended or taken over; its final frames are dropped", run_id)
        return
    except BackendUnavailableError as exc:
        log.warning("run %s could not write its final frames (%s); retrying", run_id, exc.message)

    async def append() -> None:
        await buffer.append(stream_id, final, final=True, run_id=run_id)

    try:
        await until_stored(append, what="final frames", run_id=run_id, seconds=seconds)
    except KeyError:
        log.warning("run %s: its stream is gone; its final frames are dropped", run_id)


def log_run_end(
    *,
    run: str,
    thread: str,
    user: str,
    provider: str,
    model: str,
    finish_reason: str,
    output_tokens: int,
    duration_ms: float | None,
    **more: object,
) -> None:
    """One structured line per run end, for the access-log formatter to render (logger `chatstream.runs`).

    The conversation goes in the record as `thread_id`: `thread` is a `LogRecord` attribute already (the OS
    thread), and `logging` refuses an `extra` that would overwrite it.
    """
    log.info(
        "run ended",
        extra={
            "run": run,
            "thread_id": thread,
            "user": user,
            "provider": provider,
            "model": model,
            "finish_reason": finish_reason,
            "output_tokens": output_tokens,
            "duration_ms": None if duration_ms is None else round(duration_ms, 1),
            **more,
        },
    )
