"""`StreamBuffer` on Redis Streams: one stream per conversation, shared by every instance.

Layout: `{prefix}:stream:{id}` is a Redis Stream, `{prefix}:streammeta:{id}` a hash (run id, done flag,
last applied batch number). One `append` call is one entry holding the whole batch (the producer
coalesces frames over a few milliseconds), so Redis sees one write per batch, not per token.

Cursors: frame `k` of entry `<id>` has cursor `<id>.<k>`; the last frame of an entry is just `<id>`, so
a reader that consumed a whole entry resumes with a plain XREAD/XRANGE after it. A cursor inside an
entry re-reads that one entry (`XRANGE id id`) and drops the frames already seen.

Every key carries a TTL: `idle_ttl` while the run writes (an abandoned stream of a crashed instance
vanishes by itself), `ttl` after the final append.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from app.redis_client import load_script, max_block_seconds, unavailable
from app.streams.base import ReadResult, StreamEntry, StreamInfo

if TYPE_CHECKING:
    from collections.abc import Sequence

    import redis.asyncio as aioredis

__all__ = ["RedisStreamBuffer"]

_CURSOR = re.compile(r"(\d+)(?:-(\d+))?(?:\.(\d+))?")
_LUA = "app.streams.lua"


class RedisStreamBuffer:
    """Resumable frame log on Redis Streams; see the module docstring for the key layout and cursors."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        prefix: str = "chat",
        ttl: float = 60.0,
        idle_ttl: float = 600.0,
        maxlen: int = 100_000,
        read_count: int = 10_000,
    ) -> None:
        """Args:
        redis: a client from `app.redis_client.connect_redis` (bytes responses).
        prefix: first part of every key.
        ttl: seconds a stream lives after its final append.
        idle_ttl: seconds a stream lives after its last append while it is open (crash safety net; must
            exceed the longest gap between two appends, i.e. the run timeout).
        maxlen: approximate cap on entries per stream (a safety bound; a run never gets near it).
        read_count: most entries one `read` returns; the caller reads again for the rest.
        """
        self._redis = redis
        self._prefix = prefix
        self.ttl = ttl
        self._ttl_ms = max(1, int(ttl * 1000))
        self._idle_ms = max(1, int(idle_ttl * 1000))
        self._maxlen = maxlen
        self._count = read_count
        self._max_block = max_block_seconds(redis)
        self._create = load_script(redis, _LUA, "create.lua")
        self._append = load_script(redis, _LUA, "append.lua")
        self._read = load_script(redis, _LUA, "read.lua")
        # Batch numbers of the streams this instance produces, for idempotent appends (see append.lua).
        self._seq: dict[str, int] = {}

    def _key(self, kind: str, stream_id: str) -> str:
        return f"{self._prefix}:{kind}:{stream_id}"

    def _keys(self, stream_id: str) -> list[str]:
        return [self._key("stream", stream_id), self._key("streammeta", stream_id)]

    async def create(self, stream_id: str, run_id: str) -> None:
        with unavailable("stream buffer"):
            await self._create(keys=self._keys(stream_id), args=[run_id, self._idle_ms])
        self._seq[stream_id] = 0

    async def append(self, stream_id: str, frames: Sequence[bytes], *, final: bool = False) -> None:
        seq = self._seq.get(stream_id)
        if seq is not None:
            seq += 1
            self._seq[stream_id] = seq
        args: list[bytes | int] = [
            seq or 0,
            int(final),
            b"\n".join(frames),
            len(frames),
            self._maxlen,
            self._ttl_ms,
            self._idle_ms,
        ]
        try:
            with unavailable("stream buffer"):
                status = await self._append(keys=self._keys(stream_id), args=args)
        finally:
            if final:
                self._seq.pop(stream_id, None)
        if status == -1:
            self._seq.pop(stream_id, None)
            raise KeyError(f"stream {stream_id!r} is not open")

    async def read(self, stream_id: str, after: str | None, *, block: float = 0.0) -> ReadResult | None:
        entry_id, index = _parse(after)
        keys = self._keys(stream_id)
        with unavailable("stream buffer"):
            reply = await self._read(keys=keys, args=[entry_id, int(index is not None), self._count])
        if reply is None:
            return None
        run_id, done_flag, partial, rest = reply
        entries: list[StreamEntry] = []
        final = False
        for raw in partial:
            final = _decode(raw, entries, skip=(index or 0) + 1)
        for raw in rest:
            final = _decode(raw, entries)
        # done: the entries end with the final one, or the cursor already sits at the end of a done stream.
        # (When COUNT cut `rest` short, its last entry is not the final one and done stays False.)
        done = final or (done_flag == b"1" and not rest)
        if entries or done or block <= 0:
            return ReadResult(entries, done)
        last_id = rest[-1][0].decode() if rest else entry_id or "0-0"
        return await self._wait(stream_id, after, last_id, run_id, block)

    async def _wait(
        self, stream_id: str, after: str | None, last_id: str, run_id: bytes, block: float
    ) -> ReadResult | None:
        """Block on XREAD after `last_id`; None when the stream was replaced or removed meanwhile."""
        ms = max(1, int(min(block, self._max_block) * 1000))
        with unavailable("stream buffer"):
            reply = await self._redis.xread({self._key("stream", stream_id): last_id}, count=self._count, block=ms)
        if not reply:
            # Timed out. The stream may have been deleted, replaced or expired while we waited (none of
            # which wakes XREAD), so look again without blocking; that answers None in those cases.
            return await self.read(stream_id, after, block=0.0)
        entries: list[StreamEntry] = []
        final = False
        for raw in _stream_entries(reply):
            fields = _fields(raw[1])
            marker = fields.get(b"r")
            if marker is not None and marker != run_id:
                return None  # a new run took the stream over while we waited (memory twin: same)
            final = _decode(raw, entries)
        return ReadResult(entries, final)

    async def info(self, stream_id: str) -> StreamInfo | None:
        with unavailable("stream buffer"):
            run_id, done = await self._redis.hmget(self._key("streammeta", stream_id), ["run", "done"])
        if not isinstance(run_id, bytes):
            return None
        return StreamInfo(run_id=run_id.decode(), done=done == b"1")

    async def delete(self, stream_id: str) -> None:
        self._seq.pop(stream_id, None)
        with unavailable("stream buffer"):
            await self._redis.delete(*self._keys(stream_id))

    async def ping(self) -> None:
        with unavailable("stream buffer"):
            await self._redis.ping()

    async def aclose(self) -> None:
        """The client belongs to the caller (it is shared by every Redis backend); nothing to close."""
        self._seq.clear()


def _parse(cursor: str | None) -> tuple[str, int | None]:
    """`(entry id or '' for the start, index inside the entry or None when the entry was consumed)`."""
    if cursor is None or cursor in ("0", "0-0"):
        return "", None
    match = _CURSOR.fullmatch(cursor) if len(cursor) <= 64 else None
    if match is None:
        raise ValueError(f"invalid cursor {cursor!r}")
    ms, seq, index = match.groups()
    return f"{int(ms)}-{int(seq or 0)}", None if index is None else int(index)


def _fields(flat: Any) -> dict[bytes, bytes]:
    if isinstance(flat, dict):
        return flat
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _decode(raw: Any, out: list[StreamEntry], *, skip: int = 0) -> bool:
    """Append the frames of one raw entry (from index `skip`) to `out`; True when it is the final entry."""
    entry_id = raw[0].decode()
    fields = _fields(raw[1])
    blob = fields.get(b"f")
    if blob is not None:
        frames = blob.split(b"\n")
        last = len(frames) - 1
        for k in range(skip, len(frames)):
            out.append(StreamEntry(entry_id if k == last else f"{entry_id}.{k}", frames[k]))
    return fields.get(b"d") == b"1"


def _stream_entries(reply: Any) -> list[Any]:
    """The entries of the one stream in an XREAD reply: `[[key, [(id, fields), ...]]]` (RESP2)."""
    return list(reply[0][1])
