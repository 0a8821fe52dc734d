"""The stream writer batches for a remote buffer without delaying the first frame."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from chatstream.streams.memory import MemoryStreamBuffer
from chatstream.streams.producer import StreamWriter


class SlowBuffer(MemoryStreamBuffer):
    """A memory buffer whose appends take a while, like a network round trip; records each batch."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    async def append(
        self, stream_id: str, frames: Sequence[bytes], *, final: bool = False, run_id: str | None = None
    ) -> None:
        self.batches.append(len(frames))
        await asyncio.sleep(0.01)
        await super().append(stream_id, frames, final=final, run_id=run_id)


async def test_unbatched_writes_each_frame_at_once() -> None:
    buffer = MemoryStreamBuffer()
    await buffer.create("s", "r")
    writer = StreamWriter(buffer, "s", batched=False)
    await writer.write(b"1")
    result = await buffer.read("s", None)
    assert result is not None
    assert [e.data for e in result.entries] == [b"1"]
    await writer.close([b"end"])
    result = await buffer.read("s", None)
    assert result is not None
    assert result.done
    assert [e.data for e in result.entries] == [b"1", b"end"]


async def test_batched_first_frame_goes_out_immediately_then_frames_coalesce() -> None:
    buffer = SlowBuffer()
    await buffer.create("s", "r")
    writer = StreamWriter(buffer, "s", batched=True, window=0.0)
    await writer.write(b"0")
    await asyncio.sleep(0)  # the flusher starts the first append right away
    assert buffer.batches == [1]
    for i in range(1, 100):
        await writer.write(str(i).encode())
    await writer.close([b"end"])
    result = await buffer.read("s", None)
    assert result is not None
    assert [e.data for e in result.entries] == [str(i).encode() for i in range(100)] + [b"end"]
    assert result.done
    # 101 frames in a handful of writes: order kept, nothing lost or repeated.
    assert sum(buffer.batches) == 101
    assert len(buffer.batches) <= 3
    assert writer.writes == len(buffer.batches)


async def test_close_never_cancels_an_append_in_flight() -> None:
    buffer = SlowBuffer()
    await buffer.create("s", "r")
    writer = StreamWriter(buffer, "s", batched=True, window=0.05)
    for i in range(10):
        await writer.write(str(i).encode())
        await asyncio.sleep(0.002)
    await writer.close([b"end"])
    result = await buffer.read("s", None)
    assert result is not None
    assert [e.data for e in result.entries] == [str(i).encode() for i in range(10)] + [b"end"]


async def _with_preamble(buffer: MemoryStreamBuffer, *, batched: bool) -> StreamWriter:
    """A writer on a new stream of `buffer` that has written a run's preamble (`start`, `start-step`), deferred."""
    await buffer.create("s", "r")
    writer = StreamWriter(buffer, "s", batched=batched, defer_window=5.0)
    await writer.write(b"start", defer=True)
    await writer.write(b"start-step", defer=True)
    return writer


async def test_deferred_frames_ride_with_the_next_frame() -> None:
    """A run's preamble (`defer=True`) starts no write: its first token goes out in the stream's first write."""
    buffer = SlowBuffer()
    writer = await _with_preamble(buffer, batched=True)
    await asyncio.sleep(0.02)
    assert buffer.batches == []  # nothing written yet, well past an append's time
    await writer.write(b"token")
    await asyncio.sleep(0)
    assert buffer.batches == [3]
    await writer.close([b"end"])
    result = await buffer.read("s", None)
    assert result is not None and result.done
    assert [e.data for e in result.entries] == [b"start", b"start-step", b"token", b"end"]


async def test_deferred_frames_go_out_alone_after_the_window() -> None:
    """When no content follows (a model slow to its first token), the preamble goes out after `defer_window`."""
    buffer = SlowBuffer()
    await buffer.create("s", "r")
    writer = StreamWriter(buffer, "s", batched=True, defer_window=0.03)
    await writer.write(b"start", defer=True)
    await asyncio.sleep(0.01)
    assert buffer.batches == []
    await asyncio.sleep(0.05)
    assert buffer.batches == [1]
    result = await buffer.read("s", None)
    assert result is not None and [e.data for e in result.entries] == [b"start"]
    # Deferred while a write is idle again: the same; and close() writes whatever still waits, in order.
    await writer.write(b"start-step", defer=True)
    await writer.close([b"end"])
    result = await buffer.read("s", None)
    assert result is not None and result.done
    assert [e.data for e in result.entries] == [b"start", b"start-step", b"end"]


async def test_unbatched_deferred_frames_ride_with_the_next_frame_or_go_after_the_window() -> None:
    """The memory buffer too: the preamble waits for the first token (one reader wake-up, one client write)."""
    buffer = MemoryStreamBuffer()
    writer = await _with_preamble(buffer, batched=False)
    result = await buffer.read("s", None)
    assert result is not None and result.entries == []
    await writer.write(b"token")
    result = await buffer.read("s", None)
    assert result is not None and [e.data for e in result.entries] == [b"start", b"start-step", b"token"]
    # Alone: out after the window; close() writes what still waits, in order.
    writer = StreamWriter(buffer, "s", batched=False, defer_window=0.03)
    await writer.write(b"finish-step", defer=True)
    await asyncio.sleep(0.08)
    result = await buffer.read("s", "3")
    assert result is not None and [e.data for e in result.entries] == [b"finish-step"]
    await writer.write(b"start-step-2", defer=True)
    await writer.close([b"end"])
    result = await buffer.read("s", "4")
    assert result is not None and result.done
    assert [e.data for e in result.entries] == [b"start-step-2", b"end"]
