"""Turning a conversation's stream buffer into an HTTP response, in a given dialect."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar.response import Stream

from app.errors import AppError
from app.protocol.chunks import ErrorChunk, Finish, TextDelta, decode_chunk
from app.protocol.dialects import Dialect, UIDialect
from app.protocol.sse import PING, UI_STREAM_HEADERS
from app.streams.reader import follow

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from app.api.deps import Services

__all__ = ["collect_answer", "sse_response"]

_SSE_HEADERS = {"cache-control": "no-cache", "connection": "keep-alive", "x-accel-buffering": "no"}


async def _body(
    services: Services, stream_id: str, run_id: str, after: str | None, dialect: Dialect
) -> AsyncIterator[bytes]:
    try:
        async for batch in follow(
            services.buffer,
            services.registry,
            stream_id,
            run_id,
            after,
            ping_interval=services.settings.ping_interval_seconds,
        ):
            if batch is None:
                yield PING
                continue
            # One send per buffer read: a reader that fell behind catches up in a few large writes.
            out = [frame for entry in batch if (frame := dialect.entry(entry.cursor, entry.data))]
            if out:
                yield out[0] if len(out) == 1 else b"".join(out)
    except AppError as exc:
        yield dialect.error(exc.message, exc.code)
    end = dialect.end()
    if end:
        yield end


def sse_response(
    services: Services,
    stream_id: str,
    run_id: str,
    *,
    after: str | None = None,
    dialect: Dialect | None = None,
    headers: dict[str, str] | None = None,
) -> Stream:
    """Stream a conversation's buffer from `after` (None: the start) until its end."""
    dialect = dialect or UIDialect()
    base = UI_STREAM_HEADERS if isinstance(dialect, UIDialect) else _SSE_HEADERS
    return Stream(
        content=_body(services, stream_id, run_id, after, dialect),
        media_type="text/event-stream",
        headers={**base, **(headers or {})},
    )


async def collect_answer(services: Services, stream_id: str, run_id: str) -> dict[str, Any]:
    """Read a run to its end and return the non-streaming JSON answer (seed 001)."""
    text: list[str] = []
    result: dict[str, Any] = {}
    async for batch in follow(
        services.buffer,
        services.registry,
        stream_id,
        run_id,
        None,
        ping_interval=services.settings.ping_interval_seconds,
    ):
        for entry in batch or ():
            _collect(entry.data, text, result)
    return {"response": "".join(text), **result}


def _collect(data: bytes, text: list[str], result: dict[str, Any]) -> None:
    match decode_chunk(data):
        case TextDelta(delta=delta):
            text.append(delta)
        case Finish(message_metadata=meta, finish_reason=reason):
            meta = meta or {}
            result |= {
                "conversationId": meta.get("conversationId"),
                "provider": meta.get("provider"),
                "model": meta.get("model"),
                "usage": meta.get("usage"),
                "finishReason": reason,
            }
        case ErrorChunk(error_text=message):
            result["error"] = message
        case _:
            pass
