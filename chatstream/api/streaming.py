"""Turning a conversation's stream buffer into an HTTP response, in a given dialect."""

from __future__ import annotations

import asyncio
import itertools
from typing import TYPE_CHECKING, Any

import msgspec
from litestar import Response
from litestar.enums import MediaType
from litestar.response import Stream
from litestar.response.streaming import ASGIStreamingResponse
from litestar.utils.helpers import get_enum_string_value

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
from chatstream.streams.reader import FinalBatch, StreamHandoffError, follow

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable

    from litestar import Request
    from litestar.background_tasks import BackgroundTask, BackgroundTasks
    from litestar.datastructures.cookie import Cookie
    from litestar.response.base import ASGIResponse
    from litestar.types import HTTPResponseBodyEvent, Receive, ReceiveMessage, Send, TypeEncodersMap

    from chatstream.api.deps import Services
    from chatstream.models import Message

__all__ = ["EventStream", "collect_answer", "sse_response", "stored_chunks", "stored_response"]

_LAST_BODY: HTTPResponseBodyEvent = {"type": "http.response.body", "body": b"", "more_body": False}


class _LastChunk(bytes):
    """A body's last chunk: `EventStream` sends it as the response's end."""

    __slots__ = ()


class EventStream(Stream):
    """Litestar's `Stream` for an SSE body, sent by `_ASGIEventStream` (below). The route's signature, the
    OpenAPI document and the headers, cookies and status Litestar adds are as for `Stream`."""

    __slots__ = ()

    def to_asgi_response(
        self,
        app: Any,
        request: Request[Any, Any, Any],
        *,
        background: BackgroundTask | BackgroundTasks | None = None,
        cookies: Iterable[Cookie] | None = None,
        encoded_headers: Iterable[tuple[bytes, bytes]] | None = None,
        headers: dict[str, str] | None = None,
        is_head_response: bool = False,
        media_type: MediaType | str | None = None,
        status_code: int | None = None,
        type_encoders: TypeEncodersMap | None = None,
    ) -> ASGIResponse:
        # As `Stream.to_asgi_response`, with our ASGI response (the iterator is always an async iterator).
        return _ASGIEventStream(
            background=self.background or background,
            content_length=0,
            cookies=self.cookies if cookies is None else itertools.chain(self.cookies, cookies),
            encoded_headers=encoded_headers,
            encoding=self.encoding,
            headers={**headers, **self.headers} if headers is not None else self.headers,
            is_head_response=is_head_response,
            iterator=self.iterator,  # type: ignore[arg-type]
            media_type=get_enum_string_value(media_type or self.media_type or MediaType.JSON),
            status_code=self.status_code or status_code,
        )


class _ASGIEventStream(ASGIStreamingResponse):
    """Sends the body in the handler's own task, and a client's disconnect cancels it.

    Litestar's streaming response runs an anyio task group per response (a task for the body, one listening for
    the disconnect, cancel scopes around both): about 5% of a run start's CPU (`bench/run_start.py`). Here one
    future waits for `receive()`, and a disconnect cancels this task, which then ends quietly. Every body message
    is a `bytes` frame from `_body`, sent as it is.
    """

    __slots__ = ()

    async def send_body(self, send: Send, receive: Receive) -> None:
        task = asyncio.current_task()
        assert task is not None
        watch = _DisconnectWatch(task, receive)
        try:
            ended = False
            async for chunk in self.iterator:
                if ended:
                    continue  # nothing follows the last chunk (`_body` yields none after it)
                if type(chunk) is _LastChunk:
                    # The stream's end in the response's last write (with the chunked body's terminator).
                    watch.stop()  # a server may answer `receive()` with a disconnect once the response is complete
                    await send({"type": "http.response.body", "body": chunk, "more_body": False})
                    ended = True
                    continue
                event: HTTPResponseBodyEvent = {"type": "http.response.body", "body": chunk, "more_body": True}  # type: ignore[typeddict-item]
                await send(event)
            if not ended:
                watch.stop()
                await send(_LAST_BODY)
        except asyncio.CancelledError:
            if watch.disconnected and task.uncancel() == 0:
                return  # our own cancellation: the client left
            raise
        finally:
            watch.stop()


class _DisconnectWatch:
    """Cancels `task` when `receive()` says the client disconnected; `stop()` before the task goes on alone."""

    __slots__ = ("_future", "_receive", "_task", "disconnected")

    def __init__(self, task: asyncio.Task[Any], receive: Receive) -> None:
        self._task = task
        self._receive = receive
        self.disconnected = False
        self._future: asyncio.Future[ReceiveMessage] | None = None
        self._listen()

    def _listen(self) -> None:
        self._future = asyncio.ensure_future(self._receive())
        self._future.add_done_callback(self._received)

    def _received(self, future: asyncio.Future[ReceiveMessage]) -> None:
        if future is not self._future:
            return  # stopped meanwhile
        if future.cancelled() or future.exception() is not None:
            self._future = None  # nothing more to learn from `receive`: the body goes on until it ends
            return
        if future.result()["type"] == "http.disconnect":
            self._future = None
            self.disconnected = True
            self._task.cancel()
        else:
            self._listen()  # a message we do not use (the request body was read before the response)

    def stop(self) -> None:
        future, self._future = self._future, None
        if future is not None and not future.done():
            future.cancel()


_SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}  # no hop-by-hop headers: WSGI hosts


async def _body(
    services: Services, stream_id: str, run_id: str, after: str | None, dialect: Dialect
) -> AsyncIterator[bytes]:
    ended = False
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
            if out and isinstance(batch, FinalBatch):
                # The final frames, the end marker and the body's end: one write where they were three. The
                # loop goes on to `follow`'s end (it ends at once): a generator left open is closed by the loop
                # later, through a thread-safe wake-up and a task of its own.
                yield _LastChunk(b"".join((*out, dialect.end())))
                ended = True
                continue
            if out:
                yield out[0] if len(out) == 1 else b"".join(out)
    except StreamHandoffError:
        # This instance shuts down and another produces the run: end after the last whole frame, with no
        # error and no end marker, so the client resumes from its cursor elsewhere.
        return
    except AppError as exc:
        yield dialect.error(exc.message, exc.code)
    if ended:
        return
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
    return EventStream(
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
