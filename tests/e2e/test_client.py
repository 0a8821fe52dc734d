"""The Python client against a real server, through a proxy that breaks its connections mid-answer.

Ten forced disconnects in one answer (TCP resets at arbitrary bytes: inside headers, chunks, SSE frames):
the client resumes each time from the last whole event (`Last-Event-ID`), and the answer it assembles is
the stored one, token for token, nothing lost or repeated. Also: the sync client, the plain shape, typed
errors, and the JSON routes.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chatstream.client import (
    AsyncChatClient,
    ChatClient,
    ChatSendParts,
    ChatSendPlain,
    NotFoundError,
    RateLimitError,
    RetryPolicy,
    StreamLostError,
)
from chatstream.protocol.bodies import PlainDelta, PlainDone
from chatstream.protocol.chunks import Finish, Start, TextDelta
from tests.support.proxy import DroppingProxy
from tests.support.server import TOKEN, ServerProcess

pytestmark = pytest.mark.e2e

TOKENS = 300
PROMPT = f"mock:tokens={TOKENS} mock:delay=4"
EXPECTED = "".join(f"t{i} " for i in range(TOKENS))
FAST = RetryPolicy(retries=5, backoff=0.05, max_backoff=0.5)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with ServerProcess() as proc:
        yield proc


def cut_at(n: int) -> int:
    """Connection n is reset after this many bytes of its answer (600 to 1,700: past the headers, at no
    particular frame boundary). Ten of them cover about half of the answer's ~25 kB."""
    return 600 + (n * 397) % 1100


async def test_ten_disconnects_in_one_answer_lose_and_repeat_nothing(server: ServerProcess) -> None:
    with DroppingProxy(server.port, cuts=10, after=cut_at) as proxy:
        async with AsyncChatClient(proxy.url, token=TOKEN, retry=FAST) as client:
            stream = client.send(ChatSendParts.of(PROMPT))
            chunks = [chunk async for chunk in stream]
            stored = await client.messages(stream.thread_id or "")
    assert proxy.dropped == 10 and stream.reconnects >= 10
    text = "".join(c.delta for c in chunks if isinstance(c, TextDelta))
    assert text == EXPECTED
    assert sum(isinstance(c, Start) for c in chunks) == 1 and isinstance(chunks[-1], Finish)
    answer = stored.messages[-1]
    assert answer.role == "assistant" and answer.text == text


def test_the_sync_client_resumes_too(server: ServerProcess) -> None:
    with (
        DroppingProxy(server.port, cuts=4, after=cut_at) as proxy,
        ChatClient(proxy.url, token=TOKEN, retry=FAST) as client,
    ):
        stream = client.send(PROMPT)
        text = stream.text()
        assert text == EXPECTED and proxy.dropped == 4
        assert client.messages(stream.thread_id).messages[-1].text == EXPECTED


async def test_a_plain_answer_resumes_as_plain_events(server: ServerProcess) -> None:
    with DroppingProxy(server.port, cuts=3, after=cut_at) as proxy:
        async with AsyncChatClient(proxy.url, token=TOKEN, retry=FAST) as client:
            events = [e async for e in client.send(ChatSendPlain(message=PROMPT))]
    assert proxy.dropped == 3
    assert "".join(e.text for e in events if isinstance(e, PlainDelta)) == EXPECTED
    done = events[-1]
    assert isinstance(done, PlainDone) and done.response == EXPECTED and done.finish_reason == "stop"


async def test_a_stream_that_cannot_be_resumed_says_so(server: ServerProcess) -> None:
    # Every connection after the first is cut before its headers: the resume attempts run out.
    with DroppingProxy(server.port, cuts=100, after=lambda n: 900 if n == 0 else 1) as proxy:
        async with AsyncChatClient(proxy.url, token=TOKEN, retry=RetryPolicy(retries=3, backoff=0.01)) as client:
            stream = client.send(PROMPT)
            with pytest.raises(StreamLostError) as lost:
                async for _ in stream:
                    pass
    assert lost.value.thread_id == stream.thread_id and proxy.connections == 1 + 3


async def test_json_routes_and_typed_errors(server: ServerProcess) -> None:
    async with AsyncChatClient(server.url, token=TOKEN) as client:
        stream = client.send("mock:tokens=3")
        assert await stream.text() == "t0 t1 t2 "
        thread = stream.thread_id
        assert thread is not None
        assert thread in [c.id for c in (await client.conversations(limit=100)).conversations]
        assert (await client.stop(thread)).stopped is False
        assert [c async for c in client.resume(thread, last_event_id=stream.last_event_id)] == []
        assert (await client.truncate(thread, 1)).kept == 1
        assert (await client.delete(thread)).success is True
        with pytest.raises(NotFoundError) as missing:
            await client.messages(thread)
        assert missing.value.status == 404 and missing.value.error == "conversation not found"


async def test_a_429_carries_retry_after_and_the_limit() -> None:
    with ServerProcess({"CHAT_QUOTA_PREMIUM_PER_DAY": "1"}) as limited:
        async with AsyncChatClient(limited.url, token=TOKEN) as client:
            await client.send("mock:tokens=1").text()
            with pytest.raises(RateLimitError) as refused:
                await client.send("mock:tokens=1").text()
    assert refused.value.status == 429 and refused.value.limit == "messages_per_day"
    assert refused.value.retry_after is not None and refused.value.retry_after > 0
