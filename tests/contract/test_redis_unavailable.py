"""Redis down: every Redis backend raises `BackendUnavailableError`; Redis back: they work again by themselves.

The recovery test starts its own `redis-server` on a free port (never the shared one), stops it and
restarts it on the same port.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from typing import TYPE_CHECKING

import pytest

from chatstream.errors import BackendUnavailableError
from chatstream.models import Conversation, SuspendedRun
from chatstream.redis_client import connect_redis
from chatstream.runs.redis import RedisRunRegistry
from chatstream.store.redis import RedisConversationStore
from chatstream.streams.redis import RedisStreamBuffer

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator

    from chatstream.redis_client import RedisClient

REDIS_SERVER = shutil.which("redis-server")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run_id() -> SuspendedRun:
    return SuspendedRun(
        run_id="r1", conversation_id="c1", user_id="u", message_id="m", pending=(), step=0, provider="p", model="m"
    )


def operations(client: RedisClient) -> dict[str, Callable[[], Awaitable[object]]]:
    buffer = RedisStreamBuffer(client, prefix="t")
    store = RedisConversationStore(client, prefix="t")
    registry = RedisRunRegistry(client, prefix="t")
    return {
        "buffer.create": lambda: buffer.create("s", "r"),
        "buffer.append": lambda: buffer.append("s", [b"{}"]),
        "buffer.read": lambda: buffer.read("s", None),
        "buffer.read_block": lambda: buffer.read("s", None, block=0.2),
        "buffer.info": lambda: buffer.info("s"),
        "buffer.delete": lambda: buffer.delete("s"),
        "buffer.ping": buffer.ping,
        "store.get": lambda: store.get_conversation("c1"),
        "store.put": lambda: store.put_conversation(Conversation(id="c1", user_id="u")),
        "store.list": lambda: store.list_conversations("u"),
        "store.delete": lambda: store.delete_conversation("c1"),
        "store.messages": lambda: store.list_messages("c1"),
        "store.truncate": lambda: store.truncate("c1", 1),
        "store.save_run": lambda: store.save_suspended_run(run_id()),
        "store.take_run": lambda: store.take_suspended_run("r1"),
        "store.ping": store.ping,
        "registry.acquire": lambda: registry.acquire("c1", "r1", ttl=5),
        "registry.heartbeat": lambda: registry.heartbeat("c1", "r1", ttl=5),
        "registry.renew": lambda: registry.renew([("c1", "r1"), ("c2", "r2")], ttl=5, hold=60),
        "registry.active": lambda: registry.active("c1"),
        "registry.stop": lambda: registry.request_stop("c1"),
        "registry.wait_stop": lambda: registry.wait_stop("r1"),
        "registry.claim": lambda: registry.claim_idempotency("k", "v", ttl=5),
        "registry.release": lambda: registry.release("c1", "r1"),
        "registry.ping": registry.ping,
    }


async def test_unreachable_redis_raises_backend_unavailable() -> None:
    client = connect_redis(f"redis://127.0.0.1:{free_port()}/0", connect_timeout=0.5)
    try:
        for name, op in operations(client).items():
            started = time.monotonic()
            with pytest.raises(BackendUnavailableError) as info:
                await asyncio.wait_for(op(), 5.0)
            assert info.value.status_code == 503
            assert info.value.__cause__ is not None, name
            assert time.monotonic() - started < 3.0, f"{name} took too long to fail"
    finally:
        await client.aclose()


@pytest.fixture
def redis_server() -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        args = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(proc)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    return proc
            time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    start.port = port  # type: ignore[attr-defined]
    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(5)


@pytest.mark.timeout(60)
async def test_backends_recover_when_redis_returns(redis_server: Callable[[], subprocess.Popen[bytes]]) -> None:
    server = redis_server()
    client = connect_redis(f"redis://127.0.0.1:{redis_server.port}/0", connect_timeout=0.5)  # type: ignore[attr-defined]
    buffer = RedisStreamBuffer(client, prefix="t")
    store = RedisConversationStore(client, prefix="t")
    registry = RedisRunRegistry(client, prefix="t")
    try:
        await buffer.create("s", "run-1")
        await buffer.append("s", [b'{"n":1}'])
        assert await registry.acquire("c1", "run-1", ttl=60) is None
        waiter = asyncio.create_task(registry.wait_stop("run-1"))
        await asyncio.sleep(0.2)

        server.terminate()
        server.wait(5)
        with pytest.raises(BackendUnavailableError):
            await buffer.append("s", [b'{"n":2}'])
        with pytest.raises(BackendUnavailableError):
            # "s" is no longer served from this instance's local copy: the failed write detached it.
            await buffer.read("s", None)
        with pytest.raises(BackendUnavailableError):
            await store.put_conversation(Conversation(id="c1", user_id="u"))
        with pytest.raises(BackendUnavailableError):
            await registry.ping()
        assert not waiter.done()

        redis_server()  # same port, empty data (no persistence)
        deadline = time.monotonic() + 10
        while True:
            try:
                await buffer.ping()
                break
            except BackendUnavailableError:
                assert time.monotonic() < deadline, "the client never reconnected"
                await asyncio.sleep(0.1)
        await buffer.create("s", "run-2")
        await buffer.append("s", [b'{"n":2}'], final=True)
        result = await buffer.read("s", None)
        assert result is not None
        assert [e.data for e in result.entries] == [b'{"n":2}']
        await store.put_conversation(Conversation(id="c1", user_id="u", updated_at=5))
        assert [c.id for c in await store.list_conversations("u")] == ["c1"]
        # The waiter's subscription survived the restart: a stop published now still reaches it.
        assert await registry.acquire("c1", "run-1", ttl=60) is None
        stopper = RedisRunRegistry(client, prefix="t")
        deadline = time.monotonic() + 10
        while not waiter.done():
            assert time.monotonic() < deadline, "stop never reached the waiter after the restart"
            assert await stopper.request_stop("c1") == "run-1"
            await asyncio.sleep(0.2)
        await waiter
        await stopper.aclose()
    finally:
        await registry.aclose()
        await client.aclose()
