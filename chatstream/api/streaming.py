"""Turning a conversation's stream buffer into an HTTP response, in a given dialect."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from litestar import Response
from litestar.response import Stream

from chatstream.errors import AppError
from chatstream.protocol.chunks import (
    Chunk,
    ErrorChunk,
    Finish,
    FinishStep,
    ReasoningDelta,
    ReasoningEnd,
    ReasoningStart,
    SourceUrl,
    Start,
    StartStep,
    TextDelta,
    TextEnd,
    TextStart,
    ToolInputAvailable,
    ToolOutputAvailable,
    ToolOutputDenied,
    ToolOutputError,
    decode_chunk,
    encode_chunk,
)
from chatstream.protocol.dialects import Dialect, UIDialect, source_json
from chatstream.protocol.sse import PING, UI_STREAM_HEADERS
from chatstream.streams.reader import StreamHandoffError, follow

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from chatstream.api.deps import Services
    from chatstream.models import Message

__all__ = ["collect_answer", "sse_response", "stored_chunks", "stored_response"]

_SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}  # no hop-by-hop headers: WSGI hosts


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
            is_local=services.runs.is_local,
            on_lost=services.runs.recover_lost,
            draining=services.runs.local.is_draining,
            watch=services.settings.abandon_after_seconds,
        ):
            if batch is None:
                yield PING
                continue
            # One send per buffer read: a reader that fell behind catches up in a few large writes.
            out = [frame for entry in batch if (frame := dialect.entry(entry.cursor, entry.data))]
            if out:
                yield out[0] if len(out) == 1 else b"".join(out)
    except StreamHandoffError:
        # This instance shuts down and another produces the run: end after the last whole frame, with no
        # error and no end marker, so the client resumes from its cursor elsewhere.
        return
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
        is_local=services.runs.is_local,
        on_lost=services.runs.recover_lost,
        # A StreamHandoffError here is a 503 with Retry-After: the retry gets the answer on another instance.
        draining=services.runs.local.is_draining,
        watch=services.settings.abandon_after_seconds,
    ):
        for entry in batch or ():
            _collect(entry.data, text, result)
    return {"response": "".join(text), "sources": [], **result}


def _collect(data: bytes, text: list[str], result: dict[str, Any]) -> None:
    match decode_chunk(data):
        case TextDelta(delta=delta):
            text.append(delta)
        case SourceUrl() as source:
            result.setdefault("sources", []).append(source_json(source))
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


def stored_chunks(message: Message) -> list[Chunk]:
    """A stored assistant message as the chunks that would build it: for an idempotent retry whose run's
    stream has expired (SPEC §3.1: it gets the stored result)."""
    meta = {
        "conversationId": message.conversation_id,
        "runId": message.run_id,
        "provider": message.provider,
        "model": message.model,
    }
    chunks: list[Chunk] = [Start(message_id=message.id, message_metadata=meta)]
    in_step = False
    for i, part in enumerate(message.parts):
        if part.type == "step-start":
            if in_step:
                chunks.append(FinishStep())
            chunks.append(StartStep())
            in_step = True
        elif part.type == "text" and part.text:
            chunks += [TextStart(id=f"s{i}"), TextDelta(id=f"s{i}", delta=part.text), TextEnd(id=f"s{i}")]
        elif part.type == "reasoning" and (part.text or part.provider_metadata):
            # A redacted thinking block has no text, only its data in the metadata: replay it whole.
            chunks.append(ReasoningStart(id=f"s{i}"))
            if part.text:
                chunks.append(ReasoningDelta(id=f"s{i}", delta=part.text))
            chunks.append(ReasoningEnd(id=f"s{i}", provider_metadata=part.provider_metadata))
        elif part.type == "source-url" and part.url:
            chunks.append(SourceUrl(source_id=part.source_id or f"s{i}", url=part.url, title=part.title))
        elif part.tool_call_id and part.tool_name:
            chunks.append(
                ToolInputAvailable(tool_call_id=part.tool_call_id, tool_name=part.tool_name, input=part.input)
            )
            if part.state == "output-available":
                chunks.append(ToolOutputAvailable(tool_call_id=part.tool_call_id, output=part.output))
            elif part.state == "output-error":
                chunks.append(ToolOutputError(tool_call_id=part.tool_call_id, error_text=part.error_text or ""))
            elif part.state == "output-denied":
                chunks.append(ToolOutputDenied(tool_call_id=part.tool_call_id))
    if in_step:
        chunks.append(FinishStep())
    if message.error:
        chunks.append(ErrorChunk(error_text=message.error))
    else:
        usage = msgspec.to_builtins(message.usage) if message.usage else None
        chunks.append(
            Finish(
                finish_reason=message.finish_reason or "stop",  # type: ignore[arg-type]
                message_metadata={**meta, "usage": usage},
            )
        )
    return chunks


def stored_response(
    message: Message, dialect: Dialect, *, stream: bool, headers: dict[str, str]
) -> Response[Any] | Stream:
    """Serve a stored answer in the request's dialect, or as the non-streaming JSON answer."""
    chunks = [encode_chunk(c) for c in stored_chunks(message)]
    if not stream:
        text: list[str] = []
        result: dict[str, Any] = {}
        for data in chunks:
            _collect(data, text, result)
        answer = {"response": "".join(text), "sources": [], **result}
        return Response(answer, status_code=502 if "error" in answer else 200, headers=headers)
    frames = [frame for i, data in enumerate(chunks, 1) if (frame := dialect.entry(str(i), data))]
    end = dialect.end()
    base = UI_STREAM_HEADERS if isinstance(dialect, UIDialect) else _SSE_HEADERS
    return Stream(content=[b"".join([*frames, end])], media_type="text/event-stream", headers={**base, **headers})
