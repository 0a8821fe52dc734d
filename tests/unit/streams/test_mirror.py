"""`LocalMirror`: what the producing instance's copy of a stream answers, and when it stops answering."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from chatstream.streams.base import ReadResult, StreamEntry
from chatstream.streams.mirror import MIRROR_MISS, LocalMirror


@dataclass
class Clock:
    now: float = 100.0

    def __call__(self) -> float:
        return self.now


def test_cursors_follow_redis_entry_ids() -> None:
    mirror = LocalMirror(idle_ttl=10)
    stream = mirror.open("s", "run-1")
    mirror.record("s", stream, "5-0", [b"a", b"b", b"c"], False)
    mirror.record("s", stream, "", [], False)  # no entry made: nothing to record
    mirror.record("s", stream, "7-1", [b"d"], False)
    assert list(zip(stream.cursors, stream.frames, strict=True)) == [
        StreamEntry("5-0.0", b"a"),
        StreamEntry("5-0.1", b"b"),
        StreamEntry("5-0", b"c"),
        StreamEntry("7-1", b"d"),
    ]
    assert stream.index == {"5-0.0": 1, "5-0.1": 2, "5-0": 3, "7-1": 4}


async def test_reads_after_known_cursors_and_misses_unknown_ones() -> None:
    mirror = LocalMirror(idle_ttl=10)
    stream = mirror.open("s", "run-1")
    mirror.record("s", stream, "5-0", [b"a", b"b"], False)
    assert await mirror.read(stream, None, 0) == ReadResult(
        [StreamEntry("5-0.0", b"a"), StreamEntry("5-0", b"b")], False
    )
    assert await mirror.read(stream, "0", 0) == await mirror.read(stream, None, 0)
    assert await mirror.read(stream, "5-0.0", 0) == ReadResult([StreamEntry("5-0", b"b")], False)
    assert await mirror.read(stream, "5-0", 0) == ReadResult([], False)
    assert await mirror.read(stream, "5", 0) is MIRROR_MISS  # an alias of 5-0: Redis answers it
    assert await mirror.read(stream, "4-0", 0) is MIRROR_MISS


async def test_a_final_batch_wakes_waiters_and_ends_new_reads() -> None:
    mirror = LocalMirror(idle_ttl=10)
    stream = mirror.open("s", "run-1")
    waiter = asyncio.create_task(mirror.read(stream, None, 5.0))
    await asyncio.sleep(0)
    mirror.record("s", stream, "5-0", [b"end"], True)
    assert await asyncio.wait_for(waiter, 1) == ReadResult([StreamEntry("5-0", b"end")], True)
    assert mirror.get("s") is None  # another instance may start the next run: new reads go to Redis


async def test_detached_waiters_go_to_redis_and_dropped_ones_get_none() -> None:
    mirror = LocalMirror(idle_ttl=10)
    one = mirror.open("one", "run-1")
    two = mirror.open("two", "run-1")
    to_redis = asyncio.create_task(mirror.read(one, None, 5.0))
    gone = asyncio.create_task(mirror.read(two, None, 5.0))
    await asyncio.sleep(0)
    mirror.detach("one", one)
    mirror.drop("two")
    assert await asyncio.wait_for(to_redis, 1) is MIRROR_MISS
    assert await asyncio.wait_for(gone, 1) is None
    assert (mirror.get("one"), mirror.get("two")) == (None, None)


async def test_a_blocking_read_times_out_empty() -> None:
    mirror = LocalMirror(idle_ttl=10)
    stream = mirror.open("s", "run-1")
    assert await mirror.read(stream, None, 0.05) == ReadResult([], False)
    assert stream.waiters == set()


def test_an_idle_copy_is_detached_by_later_opens() -> None:
    clock = Clock()
    mirror = LocalMirror(idle_ttl=10, clock=clock)
    idle = mirror.open("idle", "run-1")
    busy = mirror.open("busy", "run-1")
    clock.now += 11
    mirror.record("busy", busy, "1-0", [b"x"], False)
    mirror.open("new", "run-1")
    assert mirror.get("idle") is None
    assert not idle.live
    assert mirror.get("busy") is busy
    for i in range(20):  # finished copies leave the sweep queue as it turns: it stays small
        stream = mirror.open(f"s{i}", "run-1")
        mirror.record(f"s{i}", stream, "1-0", [b"x"], True)
    assert len(mirror._sweep) <= 2 * len(mirror) + 2
