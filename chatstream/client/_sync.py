"""`ChatClient`: `AsyncChatClient` for code without an event loop.

It runs the async client on an event loop of its own, one step at a time, so both share every line of the
stream and resume logic. Not for use inside a running event loop (use `AsyncChatClient` there), nor from
several threads at once.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from chatstream.client._async import AsyncChatClient

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Coroutine, Iterator
    from types import TracebackType

    import httpx

    from chatstream.client._stream import ChatStream, RetryPolicy
    from chatstream.client.inputs import (
        ChatApproveInput,
        ChatSendChatbot,
        ChatSendInput,
        ChatSendParts,
        ChatSendPlain,
        ChatSendTransport,
    )
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
    from chatstream.protocol.chunks import Chunk

__all__ = ["ChatClient", "SyncChatStream"]

E = TypeVar("E")
T = TypeVar("T")


class SyncChatStream(Generic[E]):
    """`ChatStream` for a `for` loop; its attributes (`thread_id`, `last_event_id`, ...) are the same."""

    def __init__(self, loop: asyncio.AbstractEventLoop, stream: ChatStream[E]) -> None:
        self._loop = loop
        self._stream = stream
        self._iterator: AsyncIterator[E] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def __iter__(self) -> Iterator[E]:
        iterator = self._stream.__aiter__()
        while True:
            try:
                yield self._loop.run_until_complete(iterator.__anext__())
            except StopAsyncIteration:
                return

    def text(self) -> str:
        return self._loop.run_until_complete(self._stream.text())

    def close(self) -> None:
        self._loop.run_until_complete(self._stream.aclose())


class ChatClient:
    """The synchronous client: the same arguments and methods as `AsyncChatClient`, without `await`."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        token: str | None = None,
        retry: RetryPolicy | None = None,
        timeout: httpx.Timeout | float | None = None,
    ) -> None:
        self._loop = asyncio.new_event_loop()
        options: dict[str, Any] = {"token": token, "retry": retry}
        if timeout is not None:
            options["timeout"] = timeout
        self._client = AsyncChatClient(base_url, **options)

    def _run(self, call: Coroutine[Any, Any, T]) -> T:
        return self._loop.run_until_complete(call)

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if not self._loop.is_closed():
            self._run(self._client.aclose())
            self._loop.close()

    @overload
    def send(self, message: ChatSendPlain, *, idempotency_key: str | None = None) -> SyncChatStream[PlainEvent]: ...

    @overload
    def send(
        self,
        message: str | ChatSendParts | ChatSendTransport | ChatSendChatbot,
        *,
        idempotency_key: str | None = None,
    ) -> SyncChatStream[Chunk]: ...

    def send(self, message: str | ChatSendInput, *, idempotency_key: str | None = None) -> SyncChatStream[Any]:
        return SyncChatStream(self._loop, self._client.send(message, idempotency_key=idempotency_key))

    def approve(self, decision: ChatApproveInput) -> SyncChatStream[Chunk]:
        return SyncChatStream(self._loop, self._client.approve(decision))

    def resume(self, thread_id: str, *, last_event_id: str | None = None) -> SyncChatStream[Chunk]:
        return SyncChatStream(self._loop, self._client.resume(thread_id, last_event_id=last_event_id))

    def stop(self, thread_id: str) -> StopResult:
        return self._run(self._client.stop(thread_id))

    def conversations(self, **filters: Any) -> ConversationPage:
        return self._run(self._client.conversations(**filters))

    def messages(self, conversation_id: str, *, limit: int | None = None, before: str | None = None) -> MessagePage:
        return self._run(self._client.messages(conversation_id, limit=limit, before=before))

    def delete(self, conversation_id: str) -> ConversationDeleted:
        return self._run(self._client.delete(conversation_id))

    def truncate(self, conversation_id: str, keep: int) -> Truncated:
        return self._run(self._client.truncate(conversation_id, keep))

    def preferences(self) -> PreferencesView:
        return self._run(self._client.preferences())

    def models(self) -> ModelList:
        return self._run(self._client.models())
