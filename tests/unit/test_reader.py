"""The reader's liveness rule: a lapsed lease ends a remote producer's stream, never a local one's."""

from __future__ import annotations

import asyncio

import pytest

from chatstream.runs.memory import MemoryRunRegistry
from chatstream.streams.memory import MemoryStreamBuffer
from chatstream.streams.reader import ProducerLostError, follow


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
