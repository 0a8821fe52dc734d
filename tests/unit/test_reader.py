"""The reader's liveness rule: a lapsed lease ends a remote producer's stream, never a local one's; the
first reader to see it has the answer stored; a draining instance hands remote runs off cleanly."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from chatstream.errors import BackendUnavailableError
from chatstream.runs.memory import MemoryRunRegistry
from chatstream.streams.memory import MemoryStreamBuffer
from chatstream.streams.reader import ProducerLostError, StreamHandoffError, follow


async def _read_all(buffer: MemoryStreamBuffer, registry: MemoryRunRegistry, local: bool) -> list[bytes]:
    out: list[bytes] = []
    async for batch in follow(
        buffer,
        registry,
        "c",
        "run-1",
        None,
        ping_interval=10,
        poll=0.02,
        is_local=lambda run_id: local and run_id == "run-1",
    ):
        out += [e.data for e in batch or ()]
    return out


async def test_lapsed_lease_of_a_remote_producer_ends_the_reader() -> None:
    buffer, registry = MemoryStreamBuffer(), MemoryRunRegistry()
    await buffer.create("c", "run-1")  # no lease held: as if its instance died
    await buffer.append("c", [b"a"])
    with pytest.raises(ProducerLostError):
        await asyncio.wait_for(_read_all(buffer, registry, local=False), 2)


async def test_a_local_run_is_alive_whatever_its_lease_says() -> None:
    buffer, registry = MemoryStreamBuffer(), MemoryRunRegistry()
    await buffer.create("c", "run-1")
    reader = asyncio.create_task(_read_all(buffer, registry, local=True))
    await asyncio.sleep(0.1)  # several polls with no lease: a remote reader would have given up
    assert not reader.done()
    await buffer.append("c", [b"a", b"b"], final=True)
    assert await asyncio.wait_for(reader, 2) == [b"a", b"b"]


async def test_a_draining_instance_hands_a_remote_run_off_after_whole_batches() -> None:
    buffer, registry = MemoryStreamBuffer(), MemoryRunRegistry()
    await buffer.create("c", "run-1")
    await registry.acquire("c", "run-1", ttl=60)  # alive, produced by another instance
    await buffer.append("c", [b"a", b"b"])
    draining = False
    out: list[bytes] = []

    async def read() -> None:
        async for batch in follow(
            buffer, registry, "c", "run-1", None, ping_interval=10, poll=0.02, draining=lambda: draining
        ):
            out.extend(e.data for e in batch or ())

    reader = asyncio.create_task(read())
    await asyncio.sleep(0.1)
    assert not reader.done()  # not draining: it follows the live run
    draining = True
    with pytest.raises(StreamHandoffError):
        await asyncio.wait_for(reader, 2)
    assert out == [b"a", b"b"]  # everything it read was sent whole; nothing invented at the end


async def test_a_draining_instance_keeps_serving_its_own_runs_to_their_end() -> None:
    buffer, registry = MemoryStreamBuffer(), MemoryRunRegistry()
    await buffer.create("c", "run-1")
    out: list[bytes] = []

    async def read() -> None:
        async for batch in follow(
            buffer,
            registry,
            "c",
            "run-1",
            None,
            ping_interval=10,
            poll=0.02,
            is_local=lambda run_id: True,
            draining=lambda: True,
        ):
            out.extend(e.data for e in batch or ())

    reader = asyncio.create_task(read())
    await asyncio.sleep(0.1)
    assert not reader.done()
    await buffer.append("c", [b"finish"], final=True)
    await asyncio.wait_for(reader, 2)
    assert out == [b"finish"]


async def test_a_lost_producer_is_reported_and_its_end_relayed_from_the_stream() -> None:
    buffer, registry = MemoryStreamBuffer(), MemoryRunRegistry()
    await buffer.create("c", "run-1")  # no lease: its instance died
    await buffer.append("c", [b"a"])
    lost: list[tuple[str, str]] = []

    async def on_lost(stream_id: str, run_id: str) -> None:
        lost.append((stream_id, run_id))
        await buffer.append(stream_id, [b"error"], final=True, run_id=run_id)  # what recovery writes

    out: list[bytes] = []
    async for batch in follow(buffer, registry, "c", "run-1", None, ping_interval=10, poll=0.02, on_lost=on_lost):
        out.extend(e.data for e in batch or ())
    assert lost == [("c", "run-1")]
    assert out == [b"a", b"error"]  # the stream's own end, not a ProducerLostError


async def test_a_failing_recovery_still_ends_the_reader_with_the_error() -> None:
    buffer, registry = MemoryStreamBuffer(), MemoryRunRegistry()
    await buffer.create("c", "run-1")

    async def on_lost(stream_id: str, run_id: str) -> None:
        raise BackendUnavailableError("store unavailable")

    with pytest.raises(ProducerLostError):
        async for _ in follow(buffer, registry, "c", "run-1", None, ping_interval=10, poll=0.02, on_lost=on_lost):
            pass


class SwallowingBuffer(MemoryStreamBuffer):
    """A buffer whose blocked read drops a cancel() and returns normally, as redis-py's own `wait_for` can on
    Python 3.11 (gh-86296) when the cancel lands as a command completes."""

    async def read(self, stream_id: str, after: str | None, *, block: float = 0.0) -> Any:
        try:
            return await super().read(stream_id, after, block=block)
        except asyncio.CancelledError:
            return await super().read(stream_id, after)


async def test_a_cancel_the_buffer_dropped_still_ends_the_reader() -> None:
    """A reader cancelled by its client's disconnect (or a timeout) stops, even when the buffer swallowed the
    cancel: it would otherwise read on to the end of the stream."""
    buffer, registry = SwallowingBuffer(), MemoryRunRegistry()
    await buffer.create("c", "run-1")
    await buffer.append("c", [b"a"])
    reader = asyncio.create_task(_read_all(buffer, registry, local=True))
    await asyncio.sleep(0.05)  # blocked in a read
    reader.cancel()
    await asyncio.sleep(0.05)
    await buffer.append("c", [b"b"], final=True)
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(reader, 2)
