"""Redis stream buffer details the contract suite cannot see: batching into one entry, retry safety, keys."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import fakeredis
import pytest

from chatstream.streams.redis import RedisStreamBuffer, _parse

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


@pytest.fixture
async def redis() -> AsyncIterator[Any]:
    client = fakeredis.FakeAsyncRedis()
    yield client
    await client.aclose()


async def test_one_append_is_one_stream_entry(redis: fakeredis.FakeAsyncRedis) -> None:
    buffer = RedisStreamBuffer(redis, prefix="p")
    await buffer.create("s", "run-1")
    await buffer.append("s", [b'{"a":1}', b'{"a":2}', b'{"a":3}'])
    await buffer.append("s", [b'{"a":4}'], final=True)
    # The run marker entry, then one entry per append.
    assert await redis.xlen("p:{c:s}:stream") == 3
    assert 0 < await redis.pttl("p:{c:s}:stream") <= 60_000
    assert 0 < await redis.pttl("p:{c:s}:streammeta") <= 60_000


async def test_a_retried_append_is_applied_once(redis: fakeredis.FakeAsyncRedis) -> None:
    """redis-py retries a command whose reply was lost; the batch number makes the retry a no-op that
    still answers with the entry id the first attempt created."""
    buffer = RedisStreamBuffer(redis, prefix="p")
    await buffer.create("s", "run-1")
    keys = ["p:{c:s}:stream", "p:{c:s}:streammeta"]
    head: list[bytes | int | str] = [1000, 60_000, 600_000]
    args = [*head, "run-1", 1, 0, 1, b'{"a":1}']
    [first] = await buffer._append_many(keys=keys, args=args)
    assert isinstance(first, bytes)
    assert first
    assert await buffer._append_many(keys=keys, args=args) == [first]
    # The buffer's own counter continues after the batch it already sent.
    buffer._writing["s"].seq = 1
    await buffer.append("s", [b'{"a":2}'], final=True)
    [final_id] = await buffer._append_many(keys=keys, args=[*head, "run-1", 2, 1, 0, b""])  # retried final
    assert isinstance(final_id, bytes)
    assert final_id > first
    assert await buffer._append_many(keys=keys, args=[*head, "run-1", 1, 0, 1, b"{}"]) == [first]  # older one
    result = await buffer.read("s", None)
    assert result is not None
    assert [e.data for e in result.entries] == [b'{"a":1}', b'{"a":2}']
    assert result.entries[-1].cursor == final_id.decode()
    assert result.done is True


async def test_open_streams_carry_the_idle_ttl(redis: fakeredis.FakeAsyncRedis) -> None:
    buffer = RedisStreamBuffer(redis, prefix="p", ttl=5, idle_ttl=100)
    await buffer.create("s", "run-1")
    await buffer.append("s", [b"{}"])
    assert 5_000 < await redis.pttl("p:{c:s}:stream") <= 100_000


@pytest.mark.parametrize(
    ("cursor", "parsed"),
    [
        (None, ("", None)),
        ("0", ("", None)),
        ("0-0", ("", None)),
        ("17-3", ("17-3", None)),
        ("17-3.0", ("17-3", 0)),
        ("17", ("17-0", None)),
    ],
)
def test_cursor_parsing(cursor: str | None, parsed: tuple[str, int | None]) -> None:
    assert _parse(cursor) == parsed


@pytest.mark.parametrize(
    "cursor",
    [
        "999999999999999999999999999999",
        "18446744073709551616",
        "1-18446744073709551616",
        "99999999999999999999-0.1",
        "18446744073709551615-18446744073709551615",
    ],
)
def test_cursors_outside_redis_stream_ids_are_refused(cursor: str) -> None:
    # Redis answers these with an error inside the read script (a 500 on resume); they are the client's error.
    with pytest.raises(ValueError, match="invalid cursor"):
        _parse(cursor)


def test_the_largest_readable_cursor_parses() -> None:
    assert _parse("18446744073709551615-18446744073709551614") == ("18446744073709551615-18446744073709551614", None)
