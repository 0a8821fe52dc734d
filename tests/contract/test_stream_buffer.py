"""The `StreamBuffer` contract: memory, fakeredis and real Redis behave the same.

On Redis every test runs twice: reading on the producing instance (served from its local copy of the
stream where it can) and reading on another instance (always Redis), so both read paths keep the contract.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import pytest

from chatstream.protocol.sse import valid_cursor

if TYPE_CHECKING:
    from chatstream.streams.base import StreamBuffer
    from tests.contract.conftest import Env


@pytest.fixture(params=["local", "remote"])
def stream_buffer(env: Env, request: pytest.FixtureRequest) -> StreamBuffer:
    if request.param == "local":
        return env.stream_buffer()
    if not env.is_redis:
        pytest.skip("one process: there is no other instance")
    return env.split_stream_buffer()


def frames(*texts: str) -> list[bytes]:
    return [f'{{"t":"{t}"}}'.encode() for t in texts]


def texts(result: object) -> list[str]:
    assert result is not None
    return [e.data.decode()[6:-2] for e in result.entries]  # type: ignore[attr-defined]


async def fill(buffer: StreamBuffer, sid: str = "s") -> None:
    await buffer.create(sid, "run-1")
    await buffer.append(sid, frames("a", "b", "c"))
    await buffer.append(sid, frames("d"))
    await buffer.append(sid, frames("e", "f"))


async def test_missing_stream_reads_none(stream_buffer: StreamBuffer) -> None:
    assert await stream_buffer.read("nope", None) is None
    assert await stream_buffer.read("nope", None, block=0.05) is None
    assert await stream_buffer.info("nope") is None


async def test_created_stream_is_empty_and_open(stream_buffer: StreamBuffer) -> None:
    await stream_buffer.create("s", "run-1")
    result = await stream_buffer.read("s", None)
    assert result is not None
    assert result.entries == []
    assert result.done is False
    info = await stream_buffer.info("s")
    assert info is not None
    assert (info.run_id, info.done) == ("run-1", False)


async def test_frames_come_back_in_order_with_valid_unique_cursors(stream_buffer: StreamBuffer) -> None:
    await fill(stream_buffer)
    result = await stream_buffer.read("s", None)
    assert texts(result) == ["a", "b", "c", "d", "e", "f"]
    assert result is not None
    cursors = [e.cursor for e in result.entries]
    assert len(set(cursors)) == 6
    assert all(valid_cursor(c) for c in cursors)
    assert result.done is False


async def test_resume_from_every_cursor_including_mid_batch(stream_buffer: StreamBuffer) -> None:
    await fill(stream_buffer)
    everything = await stream_buffer.read("s", None)
    assert everything is not None
    for i, entry in enumerate(everything.entries):
        rest = await stream_buffer.read("s", entry.cursor)
        assert rest is not None
        assert rest.entries == everything.entries[i + 1 :], f"after cursor #{i}"


async def test_cursor_zero_means_from_the_start(stream_buffer: StreamBuffer) -> None:
    await fill(stream_buffer)
    assert texts(await stream_buffer.read("s", "0")) == ["a", "b", "c", "d", "e", "f"]


async def test_final_append_ends_the_stream(stream_buffer: StreamBuffer) -> None:
    await fill(stream_buffer)
    await stream_buffer.append("s", frames("g", "end"), final=True)
    result = await stream_buffer.read("s", None)
    assert result is not None
    assert texts(result) == ["a", "b", "c", "d", "e", "f", "g", "end"]
    assert result.done is True
    # At the end of a done stream: nothing more, and done, without waiting.
    started = time.monotonic()
    tail = await stream_buffer.read("s", result.entries[-1].cursor, block=2.0)
    assert tail is not None
    assert (tail.entries, tail.done) == ([], True)
    assert time.monotonic() - started < 1.0
    # Mid-stream reads of a done stream are done too (nothing follows what they return).
    middle = await stream_buffer.read("s", result.entries[2].cursor)
    assert middle is not None
    assert middle.done is True
    assert texts(middle) == ["d", "e", "f", "g", "end"]
    # Mid-batch inside the final entry.
    last_batch = await stream_buffer.read("s", result.entries[-2].cursor)
    assert last_batch is not None
    assert (texts(last_batch), last_batch.done) == (["end"], True)
    info = await stream_buffer.info("s")
    assert info is not None
    assert info.done is True


async def test_final_append_without_frames(stream_buffer: StreamBuffer) -> None:
    await fill(stream_buffer)
    before = await stream_buffer.read("s", None)
    assert before is not None
    await stream_buffer.append("s", [], final=True)
    after = await stream_buffer.read("s", before.entries[-1].cursor)
    assert after is not None
    assert (after.entries, after.done) == ([], True)
    whole = await stream_buffer.read("s", None)
    assert whole is not None
    assert (len(whole.entries), whole.done) == (6, True)


async def test_append_requires_an_open_stream(stream_buffer: StreamBuffer) -> None:
    with pytest.raises(KeyError):
        await stream_buffer.append("never-created", frames("x"))
    await stream_buffer.create("s", "run-1")
    await stream_buffer.append("s", frames("x"), final=True)
    with pytest.raises(KeyError):
        await stream_buffer.append("s", frames("y"))
    result = await stream_buffer.read("s", None)
    assert texts(result) == ["x"]


async def test_blocking_read_wakes_on_append(stream_buffer: StreamBuffer) -> None:
    await fill(stream_buffer)
    head = await stream_buffer.read("s", None)
    assert head is not None
    cursor = head.entries[-1].cursor

    async def later() -> None:
        await asyncio.sleep(0.15)
        await stream_buffer.append("s", frames("g", "h"))

    task = asyncio.create_task(later())
    started = time.monotonic()
    result = await stream_buffer.read("s", cursor, block=5.0)
    elapsed = time.monotonic() - started
    await task
    assert texts(result) == ["g", "h"]
    assert result is not None
    assert result.done is False
    assert 0.1 <= elapsed < 2.0


async def test_blocking_read_wakes_on_final_without_frames(stream_buffer: StreamBuffer) -> None:
    await fill(stream_buffer)
    head = await stream_buffer.read("s", None)
    assert head is not None

    async def later() -> None:
        await asyncio.sleep(0.1)
        await stream_buffer.append("s", [], final=True)

    task = asyncio.create_task(later())
    started = time.monotonic()
    result = await stream_buffer.read("s", head.entries[-1].cursor, block=5.0)
    await task
    assert result is not None
    assert (result.entries, result.done) == ([], True)
    assert time.monotonic() - started < 2.0


async def test_blocking_read_times_out_empty(stream_buffer: StreamBuffer) -> None:
    await fill(stream_buffer)
    head = await stream_buffer.read("s", None)
    assert head is not None
    started = time.monotonic()
    result = await stream_buffer.read("s", head.entries[-1].cursor, block=0.3)
    elapsed = time.monotonic() - started
    assert result is not None
    assert (result.entries, result.done) == ([], False)
    assert 0.25 <= elapsed < 2.0


async def test_blocking_read_from_start_of_empty_stream(stream_buffer: StreamBuffer) -> None:
    await stream_buffer.create("s", "run-1")

    async def later() -> None:
        await asyncio.sleep(0.1)
        await stream_buffer.append("s", frames("first"))

    task = asyncio.create_task(later())
    result = await stream_buffer.read("s", None, block=5.0)
    await task
    assert texts(result) == ["first"]


async def test_many_concurrent_readers_all_wake(stream_buffer: StreamBuffer) -> None:
    await stream_buffer.create("s", "run-1")
    readers = [asyncio.create_task(stream_buffer.read("s", None, block=5.0)) for _ in range(20)]
    await asyncio.sleep(0.1)
    await stream_buffer.append("s", frames("x", "y"))
    results = await asyncio.wait_for(asyncio.gather(*readers), 5.0)
    assert all(texts(r) == ["x", "y"] for r in results)


async def test_follower_sees_every_frame_once(stream_buffer: StreamBuffer) -> None:
    """A reader following live, slower than the writer, loses and repeats nothing."""
    await stream_buffer.create("s", "run-1")
    sent = [f"t{i}" for i in range(200)]

    async def produce() -> None:
        for i in range(0, 200, 7):
            await stream_buffer.append("s", frames(*sent[i : i + 7]))
            await asyncio.sleep(0)
        await stream_buffer.append("s", [], final=True)

    async def follow() -> list[str]:
        seen: list[str] = []
        cursor: str | None = None
        while True:
            result = await stream_buffer.read("s", cursor, block=2.0)
            assert result is not None
            seen.extend(texts(result))
            if result.entries:
                cursor = result.entries[-1].cursor
            if result.done:
                return seen
            await asyncio.sleep(0.002)

    producer = asyncio.create_task(produce())
    seen = await asyncio.wait_for(follow(), 20.0)
    await producer
    assert seen == sent


async def test_stream_expires_ttl_after_final(env: Env) -> None:
    buffer = env.stream_buffer(ttl=0.3)
    await buffer.create("s", "run-1")
    await buffer.append("s", frames("a"), final=True)
    await env.elapse(0.1)
    assert texts(await buffer.read("s", None)) == ["a"]
    await env.elapse(0.4)
    assert await buffer.read("s", None) is None
    assert await buffer.info("s") is None


async def test_open_stream_does_not_expire_at_ttl(env: Env) -> None:
    buffer = env.stream_buffer(ttl=0.2)
    await buffer.create("s", "run-1")
    await buffer.append("s", frames("a"))
    await env.elapse(0.4)
    assert texts(await buffer.read("s", None)) == ["a"]


async def test_create_replaces_the_previous_stream(stream_buffer: StreamBuffer) -> None:
    await fill(stream_buffer)
    await stream_buffer.append("s", frames("z"), final=True)
    await stream_buffer.create("s", "run-2")
    info = await stream_buffer.info("s")
    assert info is not None
    assert (info.run_id, info.done) == ("run-2", False)
    await stream_buffer.append("s", frames("new"))
    result = await stream_buffer.read("s", None)
    assert texts(result) == ["new"]
    assert result is not None
    assert result.done is False


async def test_reader_blocked_on_replaced_stream_gets_none(stream_buffer: StreamBuffer) -> None:
    await fill(stream_buffer)
    head = await stream_buffer.read("s", None)
    assert head is not None

    async def replace() -> None:
        await asyncio.sleep(0.1)
        await stream_buffer.create("s", "run-2")
        await stream_buffer.append("s", frames("other run"))

    task = asyncio.create_task(replace())
    result = await stream_buffer.read("s", head.entries[-1].cursor, block=1.0)
    await task
    assert result is None


async def test_delete_removes_the_stream(stream_buffer: StreamBuffer) -> None:
    await fill(stream_buffer)
    await stream_buffer.delete("s")
    assert await stream_buffer.read("s", None) is None
    assert await stream_buffer.info("s") is None
    await stream_buffer.delete("s")  # idempotent
    with pytest.raises(KeyError):
        await stream_buffer.append("s", frames("x"))


async def test_reader_blocked_on_deleted_stream_gets_none(stream_buffer: StreamBuffer) -> None:
    await fill(stream_buffer)
    head = await stream_buffer.read("s", None)
    assert head is not None

    async def delete() -> None:
        await asyncio.sleep(0.1)
        await stream_buffer.delete("s")

    task = asyncio.create_task(delete())
    result = await stream_buffer.read("s", head.entries[-1].cursor, block=0.5)
    await task
    assert result is None


async def test_streams_are_independent(stream_buffer: StreamBuffer) -> None:
    await fill(stream_buffer, "one")
    await stream_buffer.create("two", "run-2")
    await stream_buffer.append("two", frames("only"), final=True)
    assert texts(await stream_buffer.read("one", None)) == ["a", "b", "c", "d", "e", "f"]
    assert texts(await stream_buffer.read("two", None)) == ["only"]
    await stream_buffer.delete("two")
    assert await stream_buffer.read("one", None) is not None


async def test_frame_bytes_round_trip(stream_buffer: StreamBuffer) -> None:
    payloads = ['{"text":"héllo \\u2028 ✓"}'.encode(), b'{"a":[1,2,{"b":null}]}', b'{"s":"x\\ny"}']
    await stream_buffer.create("s", "run-1")
    await stream_buffer.append("s", payloads)
    result = await stream_buffer.read("s", None)
    assert result is not None
    assert [e.data for e in result.entries] == payloads


@pytest.mark.parametrize("cursor", ["abc", "1:2", "-", "1-2-3", "1..2", " 1", "1e5"])
async def test_invalid_cursor_is_a_value_error(stream_buffer: StreamBuffer, cursor: str) -> None:
    await fill(stream_buffer)
    with pytest.raises(ValueError, match="cursor"):
        await stream_buffer.read("s", cursor)
