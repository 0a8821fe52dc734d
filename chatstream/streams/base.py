"""The resumable stream buffer: what a run writes and every HTTP response reads.

Semantics follow Redis Streams: each frame gets a cursor (an opaque, ordered string); a reader asks for
frames after a cursor and may block until new ones arrive; a stream ends with `final=True` and then
expires `ttl` seconds later. One stream per conversation: a new run replaces the previous stream.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Protocol

import msgspec

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["ReadResult", "StreamBuffer", "StreamEntry", "StreamInfo"]


class StreamEntry(NamedTuple):
    cursor: str
    data: bytes


class ReadResult(msgspec.Struct, frozen=True):
    """Frames after the requested cursor, in order. `done`: the stream has ended and nothing follows them."""

    entries: list[StreamEntry]
    done: bool


class StreamInfo(msgspec.Struct, frozen=True):
    run_id: str
    done: bool


class StreamBuffer(Protocol):
    """Append-only, resumable per-conversation frame log."""

    async def create(self, stream_id: str, run_id: str) -> None:
        """Start an empty stream for `run_id`, discarding whatever `stream_id` held before."""
        ...

    async def append(
        self, stream_id: str, frames: Sequence[bytes], *, final: bool = False, run_id: str | None = None
    ) -> None:
        """Append frames in order, in one write. `final` ends the stream and starts its expiry.

        Raises `KeyError` when the stream is not open (missing, ended, or taken over by a new run). `run_id`
        makes that check explicit for an instance that did not create the stream: another instance ending
        a dead producer's stream must never write into the conversation's next run.
        """
        ...

    async def read(self, stream_id: str, after: str | None, *, block: float = 0.0) -> ReadResult | None:
        """Frames after `after` (None: from the start), waiting up to `block` seconds for some.

        Returns None when the stream does not exist (never created, expired or deleted). Raises
        `ValueError` for a cursor this backend cannot have produced.
        """
        ...

    async def info(self, stream_id: str) -> StreamInfo | None:
        """The stream's run and whether it has ended; None when there is no stream."""
        ...

    async def delete(self, stream_id: str) -> None:
        """Remove the stream now (conversation deleted)."""
        ...

    async def ping(self) -> None:
        """Raise `BackendUnavailableError` when the backend is unreachable."""
        ...

    async def aclose(self) -> None: ...
