"""Redis stream buffer across instances: the local copy and the shared write round trips.

"Another instance" is a second `RedisStreamBuffer` on its own client and the same Redis. Commands are
counted by wrapping the producing client's `execute_command` (every command, scripts included, goes
through it), so the tests hold on fakeredis and on real Redis alike.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from chatstream.errors import BackendUnavailableError
from chatstream.streams.reader import ProducerLostError, follow
from chatstream.streams.redis import RedisStreamBuffer

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from chatstream.streams.base import ReadResult
    from tests.contract.conftest import Env

pytestmark = pytest.mark.parametrize(
    "env", ["fakeredis", pytest.param("redis", marks=pytest.mark.redis)], indirect=True
)


def frames(*texts: str) -> list[bytes]:
    return [f'{{"t":"{t}"}}'.encode() for t in texts]


def data(result: ReadResult | None) -> list[bytes]:
    assert result is not None
    return [e.data for e in result.entries]


class Commands:
    """The commands one client sends, by name; EVALSHA calls by script (sha)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, buffer: RedisStreamBuffer) -> None:
        self.names: list[str] = []
        self.scripts: list[str] = []
        client = buffer._redis
        original: Callable[..., Awaitable[Any]] = client.execute_command

        async def counting(*args: Any, **options: Any) -> Any:
            name = str(args[0]).upper()
            self.names.append(name)
            if name == "EVALSHA":
                self.scripts.append(str(args[1]))
            return await original(*args, **options)

        monkeypatch.setattr(client, "execute_command", counting)
        self._append_sha = buffer._append_many.sha

    @property
    def reads(self) -> list[str]:
        """Every command that is not an append round trip."""
        return [n for n in self.names if n != "EVALSHA"] + [s for s in self.scripts if s != self._append_sha]

    @property
    def append_calls(self) -> int:
        return self.scripts.count(self._append_sha)

    def clear(self) -> None:
        self.names.clear()
        self.scripts.clear()


async def producer(env: Env) -> RedisStreamBuffer:
    """The producing instance, its scripts loaded (a first EVALSHA may need a SCRIPT LOAD and a resend)."""
    buffer = env.stream_buffer()
    assert isinstance(buffer, RedisStreamBuffer)
    await buffer.create("warm-up", "run-0")
    await buffer.append("warm-up", [], final=True)
    await buffer.read("warm-up", None)
    return buffer


async def read_to_end(buffer: RedisStreamBuffer, sid: str, after: str | None = None) -> list[bytes]:
    seen: list[bytes] = []
    while True:
        result = await buffer.read(sid, after, block=2.0)
        assert result is not None
        seen += data(result)
        if result.entries:
            after = result.entries[-1].cursor
        if result.done:
            return seen


# -- the local copy ---------------------------------------------------------------------------------------


async def test_a_local_reader_follows_without_redis_reads(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    buffer = await producer(env)
    await buffer.create("s", "run-1")
    commands = Commands(monkeypatch, buffer)
    reader = asyncio.create_task(read_to_end(buffer, "s"))
    sent: list[bytes] = []
    for i in range(10):
        await asyncio.sleep(0.01)  # the reader is waiting on the copy for every batch
        batch = frames(*(f"{i}.{k}" for k in range(i % 3 + 1)))
        sent += batch
        await buffer.append("s", batch)
    await buffer.append("s", frames("end"), final=True)
    assert await asyncio.wait_for(reader, 10) == [*sent, *frames("end")]
    assert commands.reads == []  # only the appends' round trips: every read came from the copy
    assert commands.append_calls == 11


async def test_cursors_from_the_copy_equal_cursors_from_redis(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    local, other = await producer(env), env.remote_stream_buffer()
    await local.create("s", "run-1")
    await local.append("s", frames("a", "b", "c"))
    await local.append("s", [])  # no entry, no cursor
    await local.append("s", frames("d"))
    await local.append("s", frames("e", "f"))
    commands = Commands(monkeypatch, local)
    mirrored = await local.read("s", None)
    assert commands.reads == []
    from_redis = await other.read("s", None)
    assert mirrored is not None
    assert from_redis is not None
    assert mirrored.entries == from_redis.entries
    assert (mirrored.done, from_redis.done) == (False, False)
    # Resume from every cursor the copy handed out, on either instance (mid-batch cursors included).
    for i, entry in enumerate(mirrored.entries):
        assert data(await other.read("s", entry.cursor)) == data(mirrored)[i + 1 :], f"other, after #{i}"
        assert (await local.read("s", entry.cursor)) == (await other.read("s", entry.cursor))
    assert commands.reads == []
    # After the final batch new reads of the producing instance go to Redis; the answer is the same.
    await local.append("s", frames("g", "end"), final=True)
    assert await local.read("s", None) == await other.read("s", None)
    assert commands.reads != []


async def test_resume_on_another_instance_from_a_copy_cursor_while_live(env: Env) -> None:
    local, other = await producer(env), env.remote_stream_buffer()
    await local.create("s", "run-1")
    await local.append("s", frames("a", "b", "c"))
    head = await local.read("s", None)
    assert head is not None
    cursor = head.entries[1].cursor  # mid-batch
    follower = asyncio.create_task(read_to_end(other, "s", cursor))
    await asyncio.sleep(0.05)
    await local.append("s", frames("d"))
    await local.append("s", frames("e"), final=True)
    assert await asyncio.wait_for(follower, 10) == frames("c", "d", "e")


async def test_a_finished_copy_never_hides_a_newer_run_of_another_instance(env: Env) -> None:
    local, other = await producer(env), env.remote_stream_buffer()
    await local.create("s", "run-1")
    await local.append("s", frames("old"), final=True)
    await other.create("s", "run-2")
    await other.append("s", frames("new"))
    assert data(await local.read("s", None)) == frames("new")
    info = await local.info("s")
    assert info is not None
    assert info.run_id == "run-2"


async def test_a_run_taken_over_elsewhere_refuses_the_old_producer(env: Env) -> None:
    """The old producer (its lease lapsed while it stalled) can no longer write into the new run."""
    local, other = await producer(env), env.remote_stream_buffer()
    await local.create("s", "run-1")
    await local.append("s", frames("a"))
    head = await local.read("s", None)
    assert head is not None
    waiting = asyncio.create_task(local.read("s", head.entries[-1].cursor, block=5.0))
    await other.create("s", "run-2")
    with pytest.raises(KeyError):
        await local.append("s", frames("late"))
    assert await asyncio.wait_for(waiting, 2) is None  # as with a stream replaced on this instance
    assert data(await other.read("s", None)) == []


async def test_a_lost_reply_fails_every_caller_and_detaches_their_copies(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    local, other = await producer(env), env.remote_stream_buffer()
    for sid in ("s1", "s2"):
        await local.create(sid, "run-1")
    real = local._append_many

    async def applied_then_lost(**kwargs: Any) -> Any:
        await real(**kwargs)
        raise RedisConnectionError("connection lost before the reply")

    monkeypatch.setattr(local, "_append_many", applied_then_lost)
    results = await asyncio.gather(
        local.append("s1", frames("a")), local.append("s2", frames("b")), return_exceptions=True
    )
    assert all(isinstance(r, BackendUnavailableError) for r in results)
    monkeypatch.setattr(local, "_append_many", real)
    # The copies may now lack what Redis holds, so the producing instance reads Redis, like any other.
    await local.append("s1", frames("c"))
    assert data(await local.read("s1", None)) == frames("a", "c")
    assert await local.read("s1", None) == await other.read("s1", None)
    assert data(await local.read("s2", None)) == frames("b")


# -- one write round trip for many streams ------------------------------------------------------------------


async def test_concurrent_appends_to_many_streams_share_round_trips(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    local, other = await producer(env), env.remote_stream_buffer()
    sids = [f"s{i}" for i in range(20)]
    for sid in sids:
        await local.create(sid, "run-1")
    commands = Commands(monkeypatch, local)
    await asyncio.gather(*(local.append(sid, frames(sid)) for sid in sids))
    assert commands.append_calls < len(sids)
    assert commands.append_calls <= 2  # the first goes at once; the rest queue behind it and ride one call
    for sid in sids:
        assert data(await other.read(sid, None)) == frames(sid)


async def test_order_within_a_stream_is_kept_in_a_shared_round_trip(env: Env) -> None:
    local, other = await producer(env), env.remote_stream_buffer()
    await local.create("s", "run-1")
    await local.create("t", "run-1")
    reader = asyncio.create_task(read_to_end(local, "s"))
    await asyncio.sleep(0.01)
    calls = local.write_calls
    await asyncio.gather(
        *(local.append("s", frames(f"s{i}")) for i in range(50)),
        *(local.append("t", frames(f"t{i}")) for i in range(50)),
    )
    assert local.write_calls - calls < 10
    await local.append("s", [], final=True)
    expected = frames(*(f"s{i}" for i in range(50)))
    assert await asyncio.wait_for(reader, 10) == expected
    assert data(await other.read("s", None)) == expected
    assert data(await other.read("t", None)) == frames(*(f"t{i}" for i in range(50)))


async def test_a_retried_round_trip_applies_nothing_twice(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """redis-py resends a command whose reply was lost: the same call, batches of several streams."""
    local, other = await producer(env), env.remote_stream_buffer()
    await local.create("s", "run-1")
    await local.create("t", "run-1")
    replies: list[tuple[Any, Any]] = []
    real = local._append_many

    async def sent_twice(**kwargs: Any) -> Any:
        first = await real(**kwargs)
        retried = await real(**kwargs)
        replies.append((first, retried))
        return retried  # the buffer records what the retry answered

    monkeypatch.setattr(local, "_append_many", sent_twice)
    await asyncio.gather(
        local.append("s", frames("a", "b")),
        local.append("t", frames("x")),
        local.append("s", frames("c")),
        local.append("s", frames("d")),
    )
    await local.append("t", frames("y"), final=True)
    assert max(len(first) for first, _ in replies) == 3  # one call carried two batches of "s" and one of "t"
    for first, retried in replies:
        assert retried == first  # the same entry ids, so the copy records them right; nothing appended twice
    assert data(await local.read("s", None)) == frames("a", "b", "c", "d")
    assert await local.read("s", None) == await other.read("s", None)  # same cursors from the copy
    assert data(await other.read("s", None)) == frames("a", "b", "c", "d")
    assert data(await other.read("t", None)) == frames("x", "y")


# -- crash safety -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["another instance", "the producing instance"])
async def test_a_reader_ends_when_the_producer_dies(env: Env, where: str) -> None:
    """The producer stops writing and heartbeating without a final frame: readers end within seconds."""
    local = await producer(env)
    reader_buffer = env.remote_stream_buffer() if where == "another instance" else local
    registry = env.run_registry()
    assert await registry.acquire("s", "run-1", ttl=0.5) is None
    await local.create("s", "run-1")
    await local.append("s", frames("a", "b"))
    seen: list[bytes] = []

    async def read_along() -> None:
        async for batch in follow(reader_buffer, env.run_registry(), "s", "run-1", None, ping_interval=1.0, poll=0.2):
            seen.extend(e.data for e in batch or ())

    started = time.monotonic()
    with pytest.raises(ProducerLostError):
        await read_along()
    assert time.monotonic() - started < 5.0
    assert seen == frames("a", "b")
