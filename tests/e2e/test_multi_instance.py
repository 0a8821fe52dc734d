"""Two `python -m app` processes sharing one Redis: resume, stop and crash across instances; Redis restart.
The cross-instance tests run twice: on one Redis and on a Redis Cluster (`REDIS_CLUSTER_URL`).

The mock provider is driven by directives in the message (`mock:tokens=N mock:delay=MS`) so runs last
long enough to interleave. Markers: `e2e` (starts processes) and `redis` (needs `REDIS_URL`; the restart
test starts its own redis-server on a free port instead).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import weakref
from typing import TYPE_CHECKING, Any
from uuid import uuid4

import httpx
import pytest
import redis

from tests.support.redis_targets import TARGETS, delete_prefix, server_redis_url
from tests.support.server import AUTH, ServerProcess, free_port
from tests.support.sse import Frame, iter_frames, text_of

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

FAST_LEASE = {"CHAT_HEARTBEAT_SECONDS": "0.5", "CHAT_TITLE_GENERATION": "false"}


@pytest.fixture(scope="module", params=TARGETS)
def pair(request: pytest.FixtureRequest) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two instances for the whole module (starting one takes seconds); tests use fresh conversations. Once
    on one Redis, once on a Redis Cluster (`tests.support.redis_targets`)."""
    kind: str = request.param
    url = server_redis_url(kind)
    prefix = f"test:{uuid4().hex}"
    env = {"REDIS_URL": url, "CHAT_REDIS_PREFIX": prefix, **FAST_LEASE}
    a, b = ServerProcess(env), ServerProcess(env)
    try:
        a.start()
        b.start()
        yield a, b
    finally:
        a.stop()
        b.stop()
        delete_prefix(kind, prefix)


_iterators: weakref.WeakKeyDictionary[httpx.Response, AsyncIterator[Frame]] = weakref.WeakKeyDictionary()
"""Keyed by the response itself: keyed by `id()`, a later test's response could get an earlier one's id, and
with it that response's finished iterator (its stream then read as empty)."""


def frames_of(response: httpx.Response) -> AsyncIterator[Frame]:
    """One frame iterator per response, so a test can read part of a stream and then the rest."""
    frames = _iterators.get(response)
    if frames is None:
        frames = _iterators[response] = iter_frames(response)
    return frames


def chat_body(text: str) -> dict[str, Any]:
    return {"parts": [{"type": "text", "text": text}]}


async def read_until(stream: AsyncIterator[Frame], frames: list[Frame], *, deltas: int) -> None:
    """Collect frames until `deltas` text deltas have arrived (or the stream ends)."""
    async for frame in stream:
        frames.append(frame)
        if sum(f.type == "text-delta" for f in frames) >= deltas:
            return


async def read_all(stream: AsyncIterator[Frame]) -> list[Frame]:
    return [frame async for frame in stream]


@pytest.mark.redis
async def test_resume_on_another_instance_mid_stream(pair: tuple[ServerProcess, ServerProcess]) -> None:
    a, b = pair
    async with httpx.AsyncClient(timeout=30, headers=AUTH) as client:
        first: list[Frame] = []
        async with client.stream("POST", f"{a.url}/api/chat", json=chat_body("hi mock:tokens=80 mock:delay=15")) as r:
            assert r.status_code == 200
            thread = r.headers["x-thread-id"]
            await read_until(frames_of(r), first, deltas=10)
        cursor = first[-1].id
        assert cursor is not None
        resumed = client.stream("GET", f"{b.url}/api/chat/{thread}/stream", headers={"Last-Event-ID": cursor})
        async with resumed as r:
            assert r.status_code == 200
            rest = await read_all(frames_of(r))
        async with client.stream("GET", f"{b.url}/api/chat/{thread}/stream") as r:
            replay = await read_all(frames_of(r))
    assert rest[-1].data == "[DONE]"
    assert any(f.type == "finish" for f in rest)
    ids = [f.id for f in first + rest if f.id is not None]
    assert len(ids) == len(set(ids)), "a frame was repeated across the reconnect"
    assert text_of(first) + text_of(rest) == text_of(replay)
    assert len(text_of(replay).split()) >= 80 or sum(f.type == "text-delta" for f in replay) >= 80
    assert [f.id for f in first + rest] == [f.id for f in replay]


@pytest.mark.redis
async def test_stop_on_another_instance(pair: tuple[ServerProcess, ServerProcess]) -> None:
    a, b = pair
    async with httpx.AsyncClient(timeout=30, headers=AUTH) as client:
        frames: list[Frame] = []
        body = chat_body("hi mock:tokens=1000 mock:delay=20")  # 20 s unless stopped
        async with client.stream("POST", f"{a.url}/api/chat", json=body) as r:
            thread = r.headers["x-thread-id"]
            await read_until(frames_of(r), frames, deltas=3)
            stopped = await client.post(f"{b.url}/api/chat/{thread}/stop")
            assert stopped.status_code == 200
            assert stopped.json()["stopped"] is True
            started = time.monotonic()
            frames += await read_all(frames_of(r))
            elapsed = time.monotonic() - started
    assert elapsed < 3.0
    assert frames[-1].data == "[DONE]"
    assert sum(f.type == "text-delta" for f in frames) < 500
    async with httpx.AsyncClient(timeout=10, headers=AUTH) as client:
        # The conversation is free again, from either instance.
        again = await client.post(f"{b.url}/api/chat", json={**chat_body("again"), "threadId": thread})
        assert again.status_code == 200


@pytest.mark.redis
async def test_second_send_supersedes_from_any_instance(pair: tuple[ServerProcess, ServerProcess]) -> None:
    """The default busy policy: a send on B while A generates stops A's run; A's reader sees it end."""
    a, b = pair
    async with httpx.AsyncClient(timeout=30, headers=AUTH) as client:
        frames: list[Frame] = []
        async with client.stream("POST", f"{a.url}/api/chat", json=chat_body("hi mock:tokens=300 mock:delay=10")) as r:
            thread = r.headers["x-thread-id"]
            await read_until(frames_of(r), frames, deltas=2)
            clash = await client.post(f"{b.url}/api/chat", json={**chat_body("second"), "threadId": thread})
            assert clash.status_code == 200, clash.text
            await read_until(frames_of(r), frames, deltas=10_000)
        finish = [f.data for f in frames if f.type == "finish"]
        assert finish and finish[-1]["finishReason"] == "interrupted"


@pytest.mark.redis
async def test_reader_ends_with_error_when_the_producer_dies(pair: tuple[ServerProcess, ServerProcess]) -> None:
    a, b = pair
    async with httpx.AsyncClient(timeout=30, headers=AUTH) as client:
        frames: list[Frame] = []
        async with client.stream("POST", f"{a.url}/api/chat", json=chat_body("hi mock:tokens=2000 mock:delay=20")) as r:
            thread = r.headers["x-thread-id"]
            await read_until(frames_of(r), frames, deltas=2)
        async with client.stream("GET", f"{b.url}/api/chat/{thread}/stream") as r:
            assert r.status_code == 200
            follower: list[Frame] = []
            await read_until(frames_of(r), follower, deltas=5)
            a.kill()
            killed = time.monotonic()
            follower += await asyncio.wait_for(read_all(frames_of(r)), 10)
            elapsed = time.monotonic() - killed
    a.start()  # leave the pair whole for whatever runs next
    assert elapsed < 5.0, f"the reader took {elapsed:.1f}s to notice the dead producer"
    assert any(f.type == "error" for f in follower)
    assert follower[-1].data == "[DONE]"


@pytest.fixture
def own_redis() -> Iterator[tuple[int, list[subprocess.Popen[bytes]]]]:
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    procs: list[subprocess.Popen[bytes]] = []
    yield port, procs
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(5)


def start_redis(port: int, procs: list[subprocess.Popen[bytes]]) -> None:
    server = shutil.which("redis-server")
    assert server is not None
    args = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    procs.append(subprocess.Popen(args, stdout=subprocess.DEVNULL))
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 5
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    client.close()


async def test_instance_recovers_after_a_redis_restart(own_redis: tuple[int, list[subprocess.Popen[bytes]]]) -> None:
    port, procs = own_redis
    start_redis(port, procs)
    plain = {"message": "hello"}  # the plain shape without streaming answers JSON
    with ServerProcess({"REDIS_URL": f"redis://127.0.0.1:{port}/0", **FAST_LEASE}) as app:
        async with httpx.AsyncClient(timeout=30, headers=AUTH) as client:
            ok = await client.post(f"{app.url}/api/chat", json=plain)
            assert ok.status_code == 200, ok.text
            assert ok.json()["response"]
            assert (await client.get(f"{app.url}/readyz")).status_code == 200

            procs[-1].terminate()
            procs[-1].wait(5)
            down = await client.post(f"{app.url}/api/chat", json=plain)
            assert down.status_code == 503, down.text
            assert (await client.get(f"{app.url}/readyz")).status_code == 503

            start_redis(port, procs)
            deadline = time.monotonic() + 10
            while True:
                back = await client.post(f"{app.url}/api/chat", json=plain)
                if back.status_code == 200:
                    break
                assert back.status_code == 503, back.text
                assert time.monotonic() < deadline, "the instance never recovered"
                await asyncio.sleep(0.2)
            assert back.json()["response"]
