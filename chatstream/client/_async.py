"""`AsyncChatClient`: the chat server's API over httpx, answers as typed events that survive dropped connections."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, TypeVar, overload

import httpx
import msgspec

from chatstream.client._stream import ChatStream, RetryPolicy
from chatstream.client.errors import error_for
from chatstream.client.inputs import ChatSendParts, ChatSendPlain
from chatstream.protocol.bodies import (
    ConversationDeleted,
    ConversationPage,
    MessagePage,
    ModelList,
    PlainEvent,
    PreferencesView,
    StopResult,
    Truncated,
)

if TYPE_CHECKING:
    from types import TracebackType

    from chatstream.client.inputs import ChatApproveInput, ChatSendChatbot, ChatSendInput, ChatSendTransport
    from chatstream.protocol.chunks import Chunk

__all__ = ["AsyncChatClient"]

T = TypeVar("T")

_encode = msgspec.json.Encoder().encode
_JSON = {"content-type": "application/json"}
_SSE = {"accept": "text/event-stream", **_JSON}


class AsyncChatClient:
    """A client of one chatstream server.

    Args:
        base_url: where the server's routes are (`http://127.0.0.1:8000`, or `https://host/chat` when it is
            mounted under `/chat`).
        token: the bearer token.
        retry: how a dropped answer stream reconnects (`RetryPolicy()`: 5 attempts, backoff from 0.2 s).
        timeout: httpx's; the read timeout must exceed the server's ping interval (15 s) for idle streams.
        http: an `httpx.AsyncClient` to use instead of one of our own (its base URL and auth are the caller's).

    Use it as an async context manager, or `aclose()` it.
    """

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        token: str | None = None,
        retry: RetryPolicy | None = None,
        timeout: httpx.Timeout | float = httpx.Timeout(30.0, connect=10.0),  # noqa: B008 - immutable
        http: httpx.AsyncClient | None = None,
    ) -> None:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self._own = http is None
        self._http = http or httpx.AsyncClient(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout)
        self.retry = retry or RetryPolicy()

    async def __aenter__(self) -> AsyncChatClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own:
            await self._http.aclose()

    # Streams ---------------------------------------------------------------------------------------------

    @overload
    def send(self, message: ChatSendPlain, *, idempotency_key: str | None = None) -> ChatStream[PlainEvent]: ...

    @overload
    def send(
        self,
        message: str | ChatSendParts | ChatSendTransport | ChatSendChatbot,
        *,
        idempotency_key: str | None = None,
    ) -> ChatStream[Chunk]: ...

    def send(self, message: str | ChatSendInput, *, idempotency_key: str | None = None) -> ChatStream[Any]:
        """Send a message (a text, or any of the four shapes) and stream the answer: UI message chunks
        (`chatstream.protocol.chunks`), or plain events for `ChatSendPlain`. The send carries an
        `Idempotency-Key` (a new one unless given), so a request that got no answer is sent again safely."""
        body = ChatSendParts.of(message) if isinstance(message, str) else message
        headers = {**_SSE, "idempotency-key": idempotency_key or uuid.uuid4().hex}
        content = _encode(body)

        async def open_first() -> httpx.Response:
            request = self._http.build_request("POST", "/api/chat", content=content, headers=headers)
            return await self._http.send(request, stream=True)

        plain = isinstance(body, ChatSendPlain)
        return ChatStream(self._http, open_first, plain=plain, retry=self.retry, retry_first=True)

    def approve(self, decision: ChatApproveInput) -> ChatStream[Chunk]:
        """Approve or deny a pending tool call; the continuation streams as UI message chunks."""
        content = _encode(decision)

        async def open_first() -> httpx.Response:
            request = self._http.build_request("POST", "/api/chat/approve", content=content, headers=_SSE)
            return await self._http.send(request, stream=True)

        return ChatStream(self._http, open_first, retry=self.retry)

    def resume(self, thread_id: str, *, last_event_id: str | None = None) -> ChatStream[Chunk]:
        """The conversation's active (or just finished) stream, after `last_event_id` (None: from the start);
        it yields nothing when there is none."""

        async def open_first() -> httpx.Response:
            headers = {"accept": "text/event-stream"}
            if last_event_id is not None:
                headers["last-event-id"] = last_event_id
            request = self._http.build_request("GET", f"/api/chat/{thread_id}/stream", headers=headers)
            return await self._http.send(request, stream=True)

        return ChatStream(self._http, open_first, retry=self.retry, thread_id=thread_id)

    # JSON routes -----------------------------------------------------------------------------------------

    async def _call(self, kind: type[T], method: str, path: str, **kwargs: Any) -> T:
        response = await self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise error_for(response.status_code, response.content, dict(response.headers))
        return msgspec.json.decode(response.content, type=kind)

    async def stop(self, thread_id: str) -> StopResult:
        """Stop the conversation's active generation (its partial answer is stored)."""
        return await self._call(StopResult, "POST", f"/api/chat/{thread_id}/stop")

    async def conversations(
        self,
        *,
        limit: int | None = None,
        channel: str | None = None,
        visibility: str | None = None,
        starting_after: str | None = None,
        ending_before: str | None = None,
    ) -> ConversationPage:
        """The caller's conversations, most recently updated first (`starting_after`: the older page)."""
        params = _params(
            limit=limit,
            channel=channel,
            visibility=visibility,
            starting_after=starting_after,
            ending_before=ending_before,
        )
        return await self._call(ConversationPage, "GET", "/api/chat/conversations", params=params)

    async def messages(
        self, conversation_id: str, *, limit: int | None = None, before: str | None = None
    ) -> MessagePage:
        """The most recent `limit` messages of a conversation (before `before`), oldest first."""
        params = _params(conversationId=conversation_id, limit=limit, before=before)
        return await self._call(MessagePage, "GET", "/api/chat/messages", params=params)

    async def delete(self, conversation_id: str) -> ConversationDeleted:
        """Delete a conversation and everything under it."""
        return await self._call(ConversationDeleted, "DELETE", f"/api/chat/conversations/{conversation_id}")

    async def truncate(self, conversation_id: str, keep: int) -> Truncated:
        """Keep the `keep` most recent messages of a conversation."""
        path = f"/api/chat/conversations/{conversation_id}/truncate"
        return await self._call(Truncated, "POST", path, content=_encode({"keep": keep}), headers=_JSON)

    async def preferences(self) -> PreferencesView:
        return await self._call(PreferencesView, "GET", "/api/chat/preferences")

    async def models(self) -> ModelList:
        """The configured providers and models."""
        return await self._call(ModelList, "GET", "/api/models")


def _params(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}
