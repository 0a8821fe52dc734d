"""A resumable answer stream: Server-Sent Events in, typed events out, reconnecting when the connection drops.

Every event the server sends carries `id: <cursor>`. The stream remembers the id of the last event it has
received whole; when the connection drops (a reset, a truncated body, a read timeout, the stream ending
without its end marker) it asks `GET /api/chat/{thread_id}/stream` with `Last-Event-ID: <that id>` and goes
on with the event after it, so nothing is lost or repeated. Reconnection backs off (`backoff * 2**n`, capped)
and gives up after `retries` attempts in a row that bring no event (`StreamLostError`); an event resets the
count.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import httpx
import msgspec

from chatstream.client.errors import StreamLostError, error_for
from chatstream.protocol.bodies import (
    AnswerSource,
    PlainDelta,
    PlainDone,
    PlainError,
    PlainEvent,
    PlainMetadata,
    PlainReasoning,
    PlainStatus,
)
from chatstream.protocol.chunks import (
    Chunk,
    DataStatus,
    ErrorChunk,
    Finish,
    ReasoningDelta,
    SourceUrl,
    Start,
    TextDelta,
    decode_chunk,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

__all__ = ["ChatStream", "RetryPolicy"]

E = TypeVar("E")

_plain_decoder: msgspec.json.Decoder[PlainEvent] = msgspec.json.Decoder(PlainEvent)


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """How a dropped stream reconnects: up to `retries` attempts in a row that bring no event, waiting
    `backoff * 2**(attempt - 1)` seconds (at most `max_backoff`) before each."""

    retries: int = 5
    backoff: float = 0.2
    max_backoff: float = 5.0

    def delay(self, attempt: int) -> float:
        return float(min(self.max_backoff, self.backoff * 2 ** (attempt - 1)))


class _Event(msgspec.Struct, frozen=True):
    id: str | None
    data: str


async def _sse(response: httpx.Response) -> AsyncIterator[_Event]:
    """The events of an SSE body, each once it is whole (a blank line ended it); comments are skipped."""
    data: list[str] = []
    event_id: str | None = None
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield _Event(event_id, "\n".join(data))
            data, event_id = [], None
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            data.append(value)
        elif field == "id" and "\x00" not in value:
            event_id = value
    # A body that ends without the blank line ends mid-event: that event is incomplete and not yielded.


def _ui(data: str) -> Chunk | None:
    return None if data == "[DONE]" else decode_chunk(data.encode())


class _PlainFromUI:
    """The plain dialect's events for UI chunks, when a plain answer resumes through the (UI) stream route."""

    def __init__(self, text_so_far: list[str]) -> None:
        self.text = text_so_far
        self.sources: list[AnswerSource] = []

    def __call__(self, chunk: Chunk) -> PlainEvent | None:
        match chunk:
            case TextDelta(delta=delta):
                return PlainDelta(text=delta)
            case ReasoningDelta(delta=delta):
                return PlainReasoning(text=delta)
            case Start(message_metadata=meta):
                meta = meta or {}
                return PlainMetadata(
                    conversation_id=meta.get("conversationId"), provider=meta.get("provider"), model=meta.get("model")
                )
            case DataStatus(data=status):
                return msgspec.convert({"type": "status", **status}, PlainStatus)
            case SourceUrl(source_id=source_id, url=url, title=title):
                self.sources.append(AnswerSource(source_id=source_id, url=url, title=title))
                return None
            case Finish(message_metadata=meta, finish_reason=reason):
                meta = meta or {}
                usage = meta.get("usage")
                return msgspec.convert(
                    {
                        "type": "done",
                        "response": "".join(self.text),
                        "conversationId": meta.get("conversationId"),
                        "provider": meta.get("provider"),
                        "model": meta.get("model"),
                        "usage": usage,
                        "finishReason": reason,
                        "sources": msgspec.to_builtins(self.sources),
                    },
                    PlainDone,
                )
            case ErrorChunk(error_text=text):
                return PlainError(error=text)
            case _:
                return None


class ChatStream(Generic[E]):
    """The events of one answer, in order, each once: `async for event in stream`.

    `thread_id` and `run_id` are known once the first response arrived; `last_event_id` is the id of the last
    event received; `reconnects` counts the times the stream was resumed after a drop.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        open_first: Callable[[], Awaitable[httpx.Response]],
        *,
        plain: bool = False,
        retry: RetryPolicy,
        retry_first: bool = False,
        thread_id: str | None = None,
        last_event_id: str | None = None,
    ) -> None:
        self._http = http
        self._open_first = open_first
        self._plain = plain
        self._retry = retry
        self._retry_first = retry_first
        """Whether the first request may be sent again when it got no answer (it has an Idempotency-Key)."""
        self.thread_id = thread_id
        self.run_id: str | None = None
        self.last_event_id = last_event_id
        self.reconnects = 0
        self._response: httpx.Response | None = None
        self._iterator: AsyncIterator[E] | None = None

    def __aiter__(self) -> AsyncIterator[E]:
        if self._iterator is None:
            self._iterator = self._events()
        return self._iterator

    async def text(self) -> str:
        """Read the stream to its end; the answer's text."""
        parts: list[str] = []
        async for event in self:
            if isinstance(event, TextDelta):
                parts.append(event.delta)
            elif isinstance(event, PlainDelta):
                parts.append(event.text)
        return "".join(parts)

    async def aclose(self) -> None:
        """Stop reading (the run goes on on the server: `stop()` ends it)."""
        if self._iterator is not None:
            await self._iterator.aclose()  # type: ignore[attr-defined]
        if self._response is not None:
            await self._response.aclose()

    async def _open(self, first: bool) -> httpx.Response | None:
        """The first response, or a resumed one; None when there is nothing to resume (204)."""
        if first:
            response = await self._open_first()
        else:
            if self.thread_id is None:
                raise StreamLostError("no thread id to resume", thread_id=None, last_event_id=self.last_event_id)
            headers = {"accept": "text/event-stream"}
            if self.last_event_id is not None:
                headers["last-event-id"] = self.last_event_id
            request = self._http.build_request("GET", f"/api/chat/{self.thread_id}/stream", headers=headers)
            response = await self._http.send(request, stream=True)
        if response.status_code == 204:
            await response.aclose()
            return None
        if response.status_code >= 400:
            content = await response.aread()
            await response.aclose()
            raise error_for(response.status_code, content, dict(response.headers))
        self.thread_id = response.headers.get("x-thread-id", self.thread_id)
        self.run_id = response.headers.get("x-run-id", self.run_id)
        return response

    async def _events(self) -> AsyncIterator[E]:
        plain = self._plain
        text: list[str] = []
        from_ui = _PlainFromUI(text)
        resumed = self.last_event_id is not None and self.thread_id is not None
        attempt = 0
        while True:
            try:
                response = await self._open(first=not resumed)
            except httpx.TransportError:
                response = None
                if not resumed and not self._retry_first:
                    raise  # the request may never have reached the server, and sending it again is not safe
            else:
                if response is None:
                    if self.last_event_id is None and not resumed:
                        return  # nothing to resume was asked for and there is none
                    raise StreamLostError(
                        "the stream is gone (its run ended longer ago than the buffer keeps it)",
                        thread_id=self.thread_id,
                        last_event_id=self.last_event_id,
                    )
                self._response = response
                try:
                    async for event in _sse(response):
                        item: Any
                        if plain and not resumed:
                            item = _plain_decoder.decode(event.data)
                        else:
                            chunk = _ui(event.data)
                            if chunk is None:  # [DONE]
                                return
                            item = from_ui(chunk) if plain else chunk
                        if event.id is not None:
                            self.last_event_id = event.id
                        attempt = 0
                        if item is None:
                            continue
                        if isinstance(item, PlainDelta):
                            text.append(item.text)
                        yield item
                        if plain and isinstance(item, PlainDone | PlainError):
                            return
                except httpx.TransportError:
                    pass  # dropped mid-stream: resume below
                finally:
                    await response.aclose()
                    self._response = None
            # The connection dropped, or the body ended without the stream's end: resume after the last event
            # (or, when the first request got no answer, send it again: its Idempotency-Key makes that safe).
            resumed = resumed or self.thread_id is not None
            attempt += 1
            if attempt > self._retry.retries:
                raise StreamLostError(
                    f"the stream dropped and {self._retry.retries} attempts in a row to resume it failed",
                    thread_id=self.thread_id,
                    last_event_id=self.last_event_id,
                )
            await asyncio.sleep(self._retry.delay(attempt))
            self.reconnects += 1
