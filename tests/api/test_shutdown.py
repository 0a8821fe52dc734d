"""Shutdown and lost answers through the in-process app (memory backends): the drain, the final write retried
while the store is away, the lost answer of a dead producer, and the one log line per run end.

The cross-process versions (SIGTERM, SIGKILL, a Redis restart) are in `tests/e2e/test_shutdown.py`.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from chatstream import ChatPlugin, create_app
from chatstream.errors import BackendUnavailableError
from chatstream.models import Conversation, Message
from chatstream.protocol.chunks import Start, StartStep, TextDelta, TextStart, encode_chunk
from chatstream.providers.mock import MockProvider
from chatstream.store.memory import MemoryConversationStore
from chatstream.streams.reader import PRODUCER_LOST
from tests.support.settings import ALICE, make_settings, services_of
from tests.support.sse import Frame, parse_frames, text_of

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from litestar import Litestar

    from chatstream.api.deps import Services


def body(text: str, thread: str | None = None) -> dict[str, Any]:
    return {"parts": [{"type": "text", "text": text}], **({"threadId": thread} if thread else {})}


async def messages(client: AsyncTestClient[Any], thread: str) -> list[dict[str, Any]]:
    r = await client.get("/api/chat/messages", params={"conversationId": thread}, headers=ALICE)
    result: list[dict[str, Any]] = r.json()["messages"]
    return result


async def until(predicate: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


def finish(frames: list[Frame]) -> dict[str, Any]:
    ends = [f.data for f in frames if f.type == "finish"]
    assert len(ends) == 1, frames
    result: dict[str, Any] = ends[0]
    return result


@asynccontextmanager
async def in_loop(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """The app served in the test's own event loop (the test client runs it in a thread of its own), so a
    test can drain it while requests are in flight."""
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]  # Litestar's scope types are narrower
    async with app.lifespan(), httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


async def test_drain_refuses_new_runs_lets_running_ones_finish_and_stops_the_rest() -> None:
    settings = make_settings(shutdown_grace_seconds=1.0, title_generation=False)
    app = create_app(settings, providers={"mock": MockProvider()})
    plugin = app.plugins.get(ChatPlugin)
    async with in_loop(app) as client:
        services = services_of(app)
        short = asyncio.create_task(client.post("/api/chat", json=body("mock:tokens=5 mock:delay=40"), headers=ALICE))
        long = asyncio.create_task(client.post("/api/chat", json=body("mock:tokens=500 mock:delay=20"), headers=ALICE))
        await until(lambda: services.runs.active_tasks == 2)
        # A run produced by "another instance": its lease is held, but not by a run of this process.
        await services.store.put_conversation(Conversation(id="remote", user_id="alice"))
        await services.buffer.create("remote", "run-elsewhere")
        await services.registry.acquire("remote", "run-elsewhere", ttl=60)

        drain = asyncio.create_task(plugin.drain())
        await until(lambda: services.runs.draining)
        refused = await client.post("/api/chat", json=body("hello"), headers=ALICE)
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["code"] == "shutting_down"
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["status"] == "draining"
        assert (await client.get("/healthz")).status_code == 200  # alive: an orchestrator must not kill it early
        resume = await client.get("/api/chat/remote/stream", headers=ALICE)
        assert resume.status_code == 503  # nothing to follow here: resume on an instance that stays

        short_frames = parse_frames((await short).text)
        long_response = await long
        long_frames = parse_frames(long_response.text)
        await asyncio.wait_for(drain, 10)
        assert services.runs.active_tasks == 0

        assert finish(short_frames)["finishReason"] == "stop"  # finished within the grace
        assert short_frames[-1].data == "[DONE]"
        ended = finish(long_frames)
        assert ended["finishReason"] == "interrupted"  # stopped at the end of the grace, like a user stop
        assert ended["messageMetadata"]["endedBy"] == "shutdown"
        assert long_frames[-1].data == "[DONE]"
        assert 0 < sum(f.type == "text-delta" for f in long_frames) < 500
        stored = (
            await client.get(
                "/api/chat/messages", params={"conversationId": long_response.headers["x-thread-id"]}, headers=ALICE
            )
        ).json()["messages"]
        assert stored[-1]["role"] == "assistant"
        assert stored[-1]["finishReason"] == "interrupted"
        assert "".join(p.get("text", "") for p in stored[-1]["parts"] if p["type"] == "text") == text_of(long_frames)


async def test_a_draining_reader_of_a_remote_run_ends_after_whole_frames_without_an_end() -> None:
    app = create_app(make_settings(title_generation=False), providers={"mock": MockProvider()})
    plugin = app.plugins.get(ChatPlugin)
    async with in_loop(app) as client:
        services = services_of(app)
        await services.store.put_conversation(Conversation(id="remote", user_id="alice"))
        await services.buffer.create("remote", "run-elsewhere")
        await services.registry.acquire("remote", "run-elsewhere", ttl=60)
        await services.buffer.append("remote", [encode_chunk(Start(message_id="m1")), encode_chunk(StartStep())])
        reader = asyncio.create_task(client.get("/api/chat/remote/stream", headers=ALICE))
        await asyncio.sleep(0.3)
        assert not reader.done()  # following the live run
        await asyncio.wait_for(plugin.drain(), 5)  # no run of its own: done at once
        frames = parse_frames((await asyncio.wait_for(reader, 5)).text)
        # What it had, whole, and no error, finish or [DONE]: the client resumes from its cursor elsewhere.
        assert [f.type for f in frames] == ["start", "start-step"]
        assert [f.id for f in frames] == ["1", "2"]


class FlakyStore(MemoryConversationStore):
    """Fails to store assistant messages while `down`, like Redis during a restart."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.attempts = 0
        self.buffer_done_at_store: bool | None = None
        self.services: Services | None = None

    async def save_message(self, message: Message) -> None:
        if message.role == "assistant":
            self.attempts += 1
            if self.attempts <= self.failures:
                raise BackendUnavailableError("conversation store unavailable: connection refused")
            if self.services is not None:
                info = await self.services.buffer.info(message.conversation_id)
                self.buffer_done_at_store = info is not None and info.done
        await super().save_message(message)


async def test_the_final_write_is_retried_until_the_store_is_back(caplog: pytest.LogCaptureFixture) -> None:
    store = FlakyStore(failures=4)
    app = create_app(make_settings(title_generation=False), providers={"mock": MockProvider()}, store=store)
    async with AsyncTestClient(app) as client:
        store.services = services_of(app)
        with caplog.at_level(logging.INFO, logger="chatstream.runs"):
            r = await client.post("/api/chat", json=body("mock:tokens=3"), headers=ALICE)
        frames = parse_frames(r.text)
        assert finish(frames)["finishReason"] == "stop"
        assert store.attempts == 5
        assert store.buffer_done_at_store is False  # stored before the final frames: whoever saw the end finds it
        stored = await messages(client, r.headers["x-thread-id"])
        assert [m["role"] for m in stored] == ["user", "assistant"]
        assert stored[1]["parts"][-1]["text"] == "t0 t1 t2 "
    assert "keeping it in memory and retrying" in caplog.text
    assert "stored its answer after 4 failed attempts" in caplog.text


async def test_the_retry_is_bounded_and_the_loss_logged(caplog: pytest.LogCaptureFixture) -> None:
    store = FlakyStore(failures=10_000)
    settings = make_settings(title_generation=False, store_retry_seconds=0.3)
    app = create_app(settings, providers={"mock": MockProvider()}, store=store)
    async with AsyncTestClient(app) as client:
        with caplog.at_level(logging.INFO, logger="chatstream.runs"):
            r = await asyncio.wait_for(client.post("/api/chat", json=body("mock:tokens=3"), headers=ALICE), 10)
        frames = parse_frames(r.text)
        assert frames[-2].type == "error"  # the reader still ends, never hangs
        assert frames[-1].data == "[DONE]"
        services = services_of(app)
        assert await services.registry.active(r.headers["x-thread-id"]) is None  # the conversation is free again
    assert "gave up storing its answer" in caplog.text


async def lost_run(services: Services, thread: str) -> None:
    """What a producer on a dead instance left: the user message, an open stream, no lease."""
    await services.store.put_conversation(Conversation(id=thread, user_id="alice"))
    await services.store.save_message(
        Message(id="u1", conversation_id=thread, role="user", parts=(), run_id=None, created_at=1)
    )
    await services.buffer.create(thread, "run-dead")
    chunks = [
        Start(message_id="m-dead", message_metadata={"runId": "run-dead", "provider": "mock", "model": "mock-1"}),
        StartStep(),
        TextStart(id="t1"),
        TextDelta(id="t1", delta="half an "),
        TextDelta(id="t1", delta="answer"),
    ]
    await services.buffer.append(thread, [encode_chunk(c) for c in chunks])


async def test_a_reader_that_finds_the_producer_dead_stores_its_answer_once() -> None:
    app = create_app(make_settings(title_generation=False), providers={"mock": MockProvider()})
    async with AsyncTestClient(app) as client:
        await lost_run(services_of(app), "t-lost")
        readers = await asyncio.gather(*(client.get("/api/chat/t-lost/stream", headers=ALICE) for _ in range(3)))
        for r in readers:
            frames = parse_frames(r.text)
            assert text_of(frames) == "half an answer"
            assert [f.type for f in frames[-4:-1]] == ["text-end", "finish-step", "error"]
            assert frames[-2].data["errorText"] == PRODUCER_LOST
            assert frames[-1].data == "[DONE]"
        stored = await messages(client, "t-lost")
        assert [(m["id"], m["role"]) for m in stored] == [("u1", "user"), ("m-dead", "assistant")]
        assert stored[1]["finishReason"] == "error"
        assert stored[1]["error"] == PRODUCER_LOST
        assert stored[1]["parts"] == [{"type": "step-start"}, {"type": "text", "text": "half an answer"}]


async def test_the_next_send_stores_a_lost_answer_before_its_own_message() -> None:
    app = create_app(make_settings(title_generation=False), providers={"mock": MockProvider()})
    async with AsyncTestClient(app) as client:
        await lost_run(services_of(app), "t-next")
        r = await client.post("/api/chat", json=body("mock:tokens=2", thread="t-next"), headers=ALICE)
        assert r.status_code == 200
        assert finish(parse_frames(r.text))["finishReason"] == "stop"
        stored = await messages(client, "t-next")
        assert [m["role"] for m in stored] == ["user", "assistant", "user", "assistant"]
        assert stored[1]["id"] == "m-dead"
        assert stored[1]["error"] == PRODUCER_LOST


async def test_one_log_line_per_run_end(caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(make_settings(title_generation=False), providers={"mock": MockProvider()})
    async with AsyncTestClient(app) as client:
        with caplog.at_level(logging.INFO, logger="chatstream.runs"):
            r = await client.post("/api/chat", json=body("mock:tokens=3"), headers=ALICE)
    ended = [rec for rec in caplog.records if rec.name == "chatstream.runs" and rec.getMessage() == "run ended"]
    assert len(ended) == 1
    record: Any = ended[0]
    assert record.run == r.headers["x-run-id"]
    assert record.thread_id == r.headers["x-thread-id"]
    assert (record.user, record.provider, record.model) == ("alice", "mock", "mock-1")
    assert record.finish_reason == "stop"
    assert record.output_tokens == 3
    assert record.duration_ms >= 0
