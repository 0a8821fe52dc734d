"""Shutdown and faults with real processes: SIGTERM drains, SIGKILL of a producer, a Redis restart.

Two `python -m app` processes share one Redis (`REDIS_URL`, marker `redis`); the Redis restart test starts
its own redis-server, with an append-only file so that what was stored before the restart (the user
message, the conversation) is still there after it, as in any deployment that persists its Redis. The mock
provider is driven by directives in the message (`mock:tokens=N mock:delay=MS`).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any
from uuid import uuid4

import httpx
import pytest
import redis

from chatstream.streams.reader import PRODUCER_LOST
from tests.support.server import AUTH, ServerProcess, free_port
from tests.support.sse import Frame, iter_frames, text_of

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

GRACE = 3.0
FAST = {"CHAT_HEARTBEAT_SECONDS": "0.5", "CHAT_TITLE_GENERATION": "false", "CHAT_SHUTDOWN_GRACE_SECONDS": str(GRACE)}
LONG = "mock:tokens=3000 mock:delay=20"  # a minute unless stopped


def chat_body(text: str, thread: str | None = None) -> dict[str, Any]:
    return {"parts": [{"type": "text", "text": text}], **({"threadId": thread} if thread else {})}


@pytest.fixture
def shared_redis() -> Iterator[tuple[str, str]]:
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.skip("REDIS_URL is not set")
    prefix = f"test:{uuid4().hex}"
    yield url, prefix
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=500))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def pair(shared_redis: tuple[str, str]) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two fresh instances per test: these tests end them."""
    url, prefix = shared_redis
    env = {"REDIS_URL": url, "CHAT_REDIS_PREFIX": prefix, **FAST}
    a, b = ServerProcess(env), ServerProcess(env)
    try:
        a.start()
        b.start()
        yield a, b
    finally:
        a.kill()
        b.kill()


class Reader:
    """One open SSE response, read in steps."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.frames: list[Frame] = []
        self._frames: AsyncIterator[Frame] = iter_frames(response)
        self.ended_at: float | None = None

    @property
    def thread(self) -> str:
        return self.response.headers["x-thread-id"]

    async def until_deltas(self, n: int) -> None:
        async for frame in self._frames:
            self.frames.append(frame)
            if sum(f.type == "text-delta" for f in self.frames) >= n:
                return
        raise AssertionError(f"the stream ended after {len(self.frames)} frames")

    async def to_end(self, timeout: float = 30.0) -> list[Frame]:
        async def rest() -> None:
            async for frame in self._frames:
                self.frames.append(frame)

        await asyncio.wait_for(rest(), timeout)
        self.ended_at = time.monotonic()
        return self.frames


async def open_reader(stack: AsyncExitStack, client: httpx.AsyncClient, method: str, url: str, **kw: Any) -> Reader:
    response = await stack.enter_async_context(client.stream(method, url, **kw))
    assert response.status_code == 200, await response.aread()
    return Reader(response)


def finish_of(frames: list[Frame]) -> dict[str, Any]:
    ends = [f.data for f in frames if f.type == "finish"]
    assert len(ends) == 1, [f.type for f in frames[-5:]]
    result: dict[str, Any] = ends[0]
    return result


async def assistant_messages(client: httpx.AsyncClient, url: str, thread: str) -> list[dict[str, Any]]:
    r = await client.get(f"{url}/api/chat/messages", params={"conversationId": thread})
    assert r.status_code == 200, r.text
    return [m for m in r.json()["messages"] if m["role"] == "assistant"]


def stored_text(message: dict[str, Any]) -> str:
    return "".join(p.get("text", "") for p in message["parts"] if p["type"] == "text")


@pytest.mark.redis
async def test_sigterm_drains_and_every_reader_gets_its_runs_final_frames(
    pair: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = pair
    assert a.proc is not None
    async with httpx.AsyncClient(timeout=30, headers=AUTH) as client, AsyncExitStack() as stack:
        # On A: a run short enough to finish within the grace, and one that must be stopped at its end.
        short = await open_reader(
            stack, client, "POST", f"{a.url}/api/chat", json=chat_body("mock:tokens=60 mock:delay=25")
        )
        long = await open_reader(stack, client, "POST", f"{a.url}/api/chat", json=chat_body(LONG))
        await long.until_deltas(3)
        long_on_b = await open_reader(stack, client, "GET", f"{b.url}/api/chat/{long.thread}/stream")
        # On B: a run that a reader on A follows; A's shutdown is none of its business.
        remote = await open_reader(stack, client, "POST", f"{b.url}/api/chat", json=chat_body(LONG))
        await remote.until_deltas(3)
        remote_on_a = await open_reader(stack, client, "GET", f"{a.url}/api/chat/{remote.thread}/stream")
        for reader in (short, long_on_b, remote_on_a):
            await reader.until_deltas(3)

        a.proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        ends = asyncio.gather(short.to_end(), long.to_end(), long_on_b.to_end(), remote_on_a.to_end(10))

        # Draining: still serving, admitting nothing, and saying so to the load balancer.
        await asyncio.sleep(0.3)
        refused = await client.post(f"{a.url}/api/chat", json=chat_body("hello"))
        assert refused.status_code == 503, refused.text
        assert refused.headers["retry-after"] == "1"
        ready = await client.get(f"{a.url}/readyz")
        assert (ready.status_code, ready.json()["status"]) == (503, "draining")

        await ends
        assert a.proc.wait(timeout=GRACE + 15) is not None  # and then it exits

        assert finish_of(short.frames)["finishReason"] == "stop"
        for reader in (long, long_on_b):  # the same instance and another one: the same end
            assert finish_of(reader.frames)["finishReason"] == "interrupted"
            assert finish_of(reader.frames)["messageMetadata"]["endedBy"] == "shutdown"
            assert reader.frames[-1].data == "[DONE]"
        assert text_of(long.frames) == text_of(long_on_b.frames)
        assert long.ended_at is not None
        assert GRACE - 0.5 <= long.ended_at - signalled <= GRACE + 8

        # The reader of B's run left A soon, after whole frames, without an end: its client resumes elsewhere.
        assert remote_on_a.ended_at is not None
        assert remote_on_a.ended_at - signalled < 2.5
        assert all(f.type not in ("finish", "error") and f.data != "[DONE]" for f in remote_on_a.frames)
        cursor = remote_on_a.frames[-1].id
        assert cursor is not None
        resumed = await open_reader(
            stack, client, "GET", f"{b.url}/api/chat/{remote.thread}/stream", headers={"Last-Event-ID": cursor}
        )
        await resumed.until_deltas(2)
        assert (await client.post(f"{b.url}/api/chat/{remote.thread}/stop")).json()["stopped"] is True
        await resumed.to_end()
        ids = [f.id for f in remote_on_a.frames + resumed.frames if f.id is not None]
        assert len(ids) == len(set(ids)), "a frame was repeated across the hand-off"
        assert finish_of(resumed.frames)["finishReason"] == "interrupted"

        # What the readers saw is what is stored.
        [stopped] = await assistant_messages(client, b.url, long.thread)
        assert stopped["finishReason"] == "interrupted"
        assert stored_text(stopped) == text_of(long.frames)
        [finished] = await assistant_messages(client, b.url, short.thread)
        assert finished["finishReason"] == "stop"
        assert stored_text(finished) == text_of(short.frames)


@pytest.mark.redis
async def test_sigkill_of_the_producer_stores_its_partial_answer_exactly_once(
    pair: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = pair
    async with httpx.AsyncClient(timeout=30, headers=AUTH) as client, AsyncExitStack() as stack:
        producer = await open_reader(stack, client, "POST", f"{a.url}/api/chat", json=chat_body(LONG))
        await producer.until_deltas(5)
        thread = producer.thread
        message_id = producer.frames[0].data["messageId"]
        readers = [await open_reader(stack, client, "GET", f"{b.url}/api/chat/{thread}/stream") for _ in range(3)]
        for reader in readers:
            await reader.until_deltas(5)

        a.kill()

        async def next_send() -> httpx.Response:
            # Refused while the dead run still looks alive; then this send, too, finds it dead.
            while True:
                r = await client.post(f"{b.url}/api/chat", json=chat_body("mock:tokens=3", thread))
                if r.status_code != 409:
                    return r
                await asyncio.sleep(0.05)

        sending = asyncio.ensure_future(next_send())
        await asyncio.gather(*(r.to_end(15) for r in readers))
        send = await asyncio.wait_for(sending, 15)
        assert send.status_code == 200, send.text

        for reader in readers:
            assert reader.frames[-1].data == "[DONE]"
            errors = [f.data for f in reader.frames if f.type == "error"]
            assert len(errors) == 1, [f.type for f in reader.frames[-4:]]
        # Every reader saw the same answer up to the end (none read on into the next run).
        seen = {text_of(r.frames) for r in readers}
        assert len(seen) == 1

        r = await client.get(f"{b.url}/api/chat/messages", params={"conversationId": thread})
        stored = r.json()["messages"]
        assert [m["role"] for m in stored] == ["user", "assistant", "user", "assistant"]
        lost = [m for m in stored if m["id"] == message_id]
        assert len(lost) == 1, "the lost answer was stored more than once"
        assert (lost[0]["finishReason"], lost[0]["error"]) == ("error", PRODUCER_LOST)
        assert stored_text(lost[0]) == seen.pop()
        assert len(stored_text(lost[0]).split()) >= 5


def start_redis(port: int, directory: Path) -> subprocess.Popen[bytes]:
    server = shutil.which("redis-server")
    assert server is not None
    args = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(directory)]
    args += ["--appendonly", "yes", "--appendfsync", "always"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            if client.ping():
                break
        except (redis.ConnectionError, redis.BusyLoadingError):
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
    client.close()
    return proc


async def test_a_redis_restart_mid_answer_loses_no_answer(tmp_path: Path) -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    procs = [start_redis(port, tmp_path)]
    env = {"REDIS_URL": f"redis://127.0.0.1:{port}/0", **FAST, "CHAT_STORE_RETRY_SECONDS": "30"}
    try:
        with ServerProcess(env) as app:
            async with httpx.AsyncClient(timeout=30, headers=AUTH) as client:
                async with client.stream("POST", f"{app.url}/api/chat", json=chat_body(LONG)) as response:
                    reader = Reader(response)
                    await reader.until_deltas(10)
                    procs[0].terminate()  # a restart: down for a while, then back with what it persisted
                    procs[0].wait(10)
                    await reader.to_end(15)  # the client sees the failure, and the end of its stream
                assert any(f.type == "error" for f in reader.frames)
                await asyncio.sleep(1.5)
                procs.append(start_redis(port, tmp_path))

                deadline = time.monotonic() + 20
                while True:
                    r = await client.get(f"{app.url}/api/chat/messages", params={"conversationId": reader.thread})
                    if r.status_code == 200 and len(r.json()["messages"]) == 2:
                        break
                    assert time.monotonic() < deadline, f"the answer was never stored: {r.status_code} {r.text}"
                    await asyncio.sleep(0.2)
                user, answer = r.json()["messages"]
                assert user["role"] == "user"
                assert answer["role"] == "assistant"
                assert answer["finishReason"] == "error"
                # Everything the client saw, and perhaps the few tokens in flight when Redis went away.
                assert stored_text(answer).startswith(text_of(reader.frames))
                assert len(text_of(reader.frames).split()) >= 10
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)
