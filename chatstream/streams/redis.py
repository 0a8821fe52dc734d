"""`StreamBuffer` on Redis Streams: one stream per conversation, shared by every instance.

Layout (`chatstream.keys`): `{prefix}:{c:<id>}:stream` is a Redis Stream, `{prefix}:{c:<id>}:streammeta` a
hash (run id, done flag, last applied batch number; each entry also carries its batch number). Both carry
the conversation's hash tag, so on a Redis Cluster they share a slot with the rest of the conversation.
One `append` call is one entry holding the whole batch (the producer coalesces frames while its previous
write is in flight).

Writes: one round trip in flight per instance (Nagle-like). An `append` made while nothing is in flight
is sent at once; batches appended while a call is in flight queue up, and the next round trip carries all
of them, of every stream. On a single Redis that is one `EVALSHA append_many.lua` for all of them. On a
Redis Cluster a script may only touch one slot, so the round trip carries one `append_many.lua` call per
slot (`chatstream.redis_client.slot_groups`), pipelined per node and sent to every node at once: still one
round trip in time, one write per node. Redis sees a few writes per round trip time, not one per stream
and token. Each caller awaits its own batch's outcome; on a cluster a node that fails fails only the
batches of its slots.

Reads: readers on the instance that produces a stream are served from its `LocalMirror` (see
`chatstream.streams.mirror`), filled after each write with the cursors Redis assigned and woken by it; every
other read (another instance, a cursor the copy does not know, a finished run) goes to Redis.

Cursors: frame `k` of entry `<id>` has cursor `<id>.<k>`; the last frame of an entry is just `<id>`, so
a reader that consumed a whole entry resumes with a plain XREAD/XRANGE after it. A cursor inside an
entry re-reads that one entry (`XRANGE id id`) and drops the frames already seen.

Every key carries a TTL: `idle_ttl` while the run writes (an abandoned stream of a crashed instance
vanishes by itself), `ttl` after the final append.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import TYPE_CHECKING, Any

from chatstream.keys import Keys
from chatstream.redis_client import load_script, max_block_seconds, raise_unavailable, slot_groups, unavailable
from chatstream.streams.base import ReadResult, StreamEntry, StreamInfo
from chatstream.streams.mirror import MIRROR_MISS, LocalMirror, MirroredStream

if TYPE_CHECKING:
    from collections.abc import Sequence

    from chatstream.redis_client import RedisClient

__all__ = ["RedisStreamBuffer"]

_CURSOR = re.compile(r"(\d+)(?:-(\d+))?(?:\.(\d+))?")
_LUA = "chatstream.streams.lua"


class _Writing:
    """A stream this instance created: its run and the number of its last batch."""

    __slots__ = ("run_id", "seq")

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.seq = 0


class _Batch:
    """One `append` call waiting for (or riding) a round trip."""

    __slots__ = ("final", "frames", "future", "mirror", "run_id", "seq", "stream_id")

    def __init__(
        self,
        stream_id: str,
        frames: Sequence[bytes],
        final: bool,
        writing: _Writing | None,
        mirror: MirroredStream | None,
        future: asyncio.Future[None],
    ) -> None:
        self.stream_id = stream_id
        self.frames = frames
        self.final = final
        # Numbered at call time, so batches of one stream keep the order of the `append` calls.
        self.run_id = writing.run_id if writing is not None else ""
        self.seq = writing.seq if writing is not None else 0
        self.mirror = mirror
        self.future = future


class RedisStreamBuffer:
    """Resumable frame log on Redis Streams; see the module docstring for the key layout and cursors."""

    def __init__(
        self,
        redis: RedisClient,
        *,
        prefix: str = "chat",
        ttl: float = 60.0,
        idle_ttl: float = 600.0,
        maxlen: int = 100_000,
        read_count: int = 10_000,
        max_batches: int = 256,
    ) -> None:
        """Args:
        redis: a client from `chatstream.redis_client.connect_redis` (bytes responses; one Redis or a cluster).
        prefix: first part of every key.
        ttl: seconds a stream lives after its final append.
        idle_ttl: seconds a stream lives after its last append while it is open (crash safety net; must
            exceed the longest gap between two appends, i.e. the run timeout).
        maxlen: approximate cap on entries per stream (a safety bound; a run never gets near it).
        read_count: most entries one `read` returns; the caller reads again for the rest.
        max_batches: most batches one write round trip carries (it keeps one Lua call short).
        """
        self._redis = redis
        self._keyspace = Keys(prefix)
        self.ttl = ttl
        self._ttl_ms = max(1, int(ttl * 1000))
        self._idle_ms = max(1, int(idle_ttl * 1000))
        self._maxlen = maxlen
        self._count = read_count
        self._max_block = max_block_seconds(redis)
        self._create = load_script(redis, _LUA, "create.lua")
        self._append_many = load_script(redis, _LUA, "append_many.lua")
        self._read = load_script(redis, _LUA, "read.lua")
        self._max_batches = max_batches
        # Run and batch number of the streams this instance produces, for idempotent appends that a
        # stream taken over by another run refuses (see append_many.lua).
        self._writing: dict[str, _Writing] = {}
        self._mirror = LocalMirror(idle_ttl=idle_ttl)
        self._queue: list[_Batch] = []
        self._busy = False
        """A write round trip is in flight (from an `append` caller or from `_sender`)."""
        self._sender: asyncio.Task[None] | None = None
        self.write_calls = 0
        """Write round trips made (each carries one or more batches), for the benchmarks."""

    def _key(self, kind: str, stream_id: str) -> str:
        return self._keyspace.conversation(stream_id, kind)

    def _keys(self, stream_id: str) -> list[str]:
        return [self._key("stream", stream_id), self._key("streammeta", stream_id)]

    def _stream_key(self, batch: _Batch) -> str:
        return self._key("stream", batch.stream_id)

    async def create(self, stream_id: str, run_id: str) -> None:
        with unavailable("stream buffer"):
            await self._create(keys=self._keys(stream_id), args=[run_id, self._idle_ms])
        self._writing[stream_id] = _Writing(run_id)
        self._mirror.open(stream_id, run_id)

    async def append(
        self, stream_id: str, frames: Sequence[bytes], *, final: bool = False, run_id: str | None = None
    ) -> None:
        writing = self._writing.get(stream_id)
        mirror = self._mirror.get(stream_id)
        if run_id is not None:
            # Not the run this instance writes (if any): neither its numbering nor its copy applies.
            if writing is not None and writing.run_id != run_id:
                writing = None
            if mirror is not None and mirror.run_id != run_id:
                mirror = None
        if writing is not None:
            writing.seq += 1
            if final:
                del self._writing[stream_id]
        elif run_id is not None:
            # A stream another instance created: append_many checks the run (seq 0 leaves the batch
            # unnumbered, so a retried call could repeat it; these are one-off final frames).
            writing = _Writing(run_id)
        batch = _Batch(stream_id, frames, final, writing, mirror, asyncio.get_running_loop().create_future())
        if self._busy:
            self._queue.append(batch)  # rides the round trip after the one in flight
            await batch.future
            return
        # Nothing in flight: send this batch now, from this coroutine (no task hop on the first token's
        # path). The call carries only this batch, so a cancelled caller abandons no one else's.
        self._busy = True
        try:
            await self._send_batches([batch])
        finally:
            if self._queue:
                # What queued meanwhile goes out from a task, so this caller returns now.
                self._sender = asyncio.create_task(self._send(), name="stream-buffer-writes")
            else:
                self._busy = False
        await batch.future  # already settled: returns, or raises this batch's error

    async def _send(self) -> None:
        """Send queued batches, one round trip at a time, until the queue is empty."""
        try:
            while self._queue:
                batches = self._queue[: self._max_batches]
                del self._queue[: self._max_batches]
                await self._send_batches(batches)
        except asyncio.CancelledError:
            for batch in self._queue:  # shutting down: their callers stop waiting
                batch.future.cancel()
            self._queue.clear()
            raise
        finally:
            # No await between the empty-queue check and this, so no batch is left without a sender.
            self._busy = False
            self._sender = None

    async def _send_batches(self, batches: list[_Batch]) -> None:
        # One group on a single Redis; on a cluster one per slot, each its own script call (see the module
        # docstring), all sent in this one round trip.
        groups = slot_groups(self._redis, batches, self._stream_key)
        calls = [self._call(group) for group in groups]
        self.write_calls += 1
        try:
            with unavailable("stream buffer"):
                if len(calls) == 1:  # a single Redis (or one slot): one call, as is
                    replies = [await self._append_many(keys=calls[0][0], args=calls[0][1])]
                else:
                    replies = await self._append_many.many(calls)
        except BaseException as exc:
            self._fail(batches, exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        for group, reply in zip(groups, replies, strict=True):
            try:
                settled = raise_unavailable(reply, "stream buffer")
            except Exception as exc:  # noqa: BLE001 - this group's node failed: its batches get its error
                self._fail(group, exc)
                continue
            for batch, outcome in zip(group, settled, strict=True):
                self._settle(batch, outcome)

    def _call(self, batches: list[_Batch]) -> tuple[list[str], list[bytes | int | str]]:
        keys: list[str] = []
        args: list[bytes | int | str] = [self._maxlen, self._ttl_ms, self._idle_ms]
        for batch in batches:
            keys += self._keys(batch.stream_id)
            args += [batch.run_id, batch.seq, int(batch.final), len(batch.frames), b"\n".join(batch.frames)]
        return keys, args

    def _fail(self, batches: list[_Batch], exc: BaseException) -> None:
        """The outcome is unknown (the call may have been applied before the reply was lost): every caller
        gets the error, and their copies may now lack what Redis holds, so they stop serving."""
        for batch in batches:
            self._forget(batch)
            if batch.future.done():
                continue
            if isinstance(exc, asyncio.CancelledError):
                batch.future.cancel()
            else:
                batch.future.set_exception(exc)

    def _settle(self, batch: _Batch, reply: Any) -> None:
        """Record one batch's outcome in the mirror (before its caller resumes), then resolve its caller."""
        if reply == -1:
            # Not open: missing, ended, or a new run took the stream over. The copy no longer matches.
            writing = self._writing.get(batch.stream_id)
            if writing is not None and writing.run_id == batch.run_id:
                del self._writing[batch.stream_id]
            if batch.mirror is not None and self._mirror.get(batch.stream_id) is batch.mirror:
                self._mirror.drop(batch.stream_id)
            if not batch.future.done():
                batch.future.set_exception(KeyError(f"stream {batch.stream_id!r} is not open"))
            return
        if batch.mirror is not None:
            self._mirror.record(batch.stream_id, batch.mirror, reply.decode(), batch.frames, batch.final)
        if not batch.future.done():
            batch.future.set_result(None)

    def _forget(self, batch: _Batch) -> None:
        if batch.mirror is not None:
            self._mirror.detach(batch.stream_id, batch.mirror)

    async def read(self, stream_id: str, after: str | None, *, block: float = 0.0) -> ReadResult | None:
        mirrored = self._mirror.get(stream_id)
        if mirrored is not None:
            local = await self._mirror.read(mirrored, after, block)
            if local is not MIRROR_MISS:
                return local
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
            if final:
                # Nothing after a run's final entry is its own: the conversation's next run may already have
                # started in the same stream (a send right after the end, or right after a lost run's end).
                break
            if entry_id and _is_marker(raw):
                # A new run's first entry after the reader's cursor: the run it follows was replaced (the
                # memory twin and a blocked read answer the same), never a stream to read on into.
                return None
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
        self._writing.pop(stream_id, None)
        self._mirror.drop(stream_id)
        with unavailable("stream buffer"):
            await self._redis.delete(*self._keys(stream_id))

    async def ping(self) -> None:
        with unavailable("stream buffer"):
            await self._redis.ping()

    async def aclose(self) -> None:
        """Let the write in flight finish and wake local readers; the client belongs to the caller."""
        if self._sender is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._sender)
        self._writing.clear()
        self._mirror.clear()


def _parse(cursor: str | None) -> tuple[str, int | None]:
    """`(entry id or '' for the start, index inside the entry or None when the entry was consumed)`."""
    if cursor is None or cursor in ("0", "0-0"):
        return "", None
    match = _CURSOR.fullmatch(cursor) if len(cursor) <= 64 else None
    if match is None:
        raise ValueError(f"invalid cursor {cursor!r}")
    ms, seq, index = match.groups()
    entry = (int(ms), int(seq or 0))
    # Redis stream ids are two unsigned 64-bit numbers, and reads are exclusive of the cursor's entry, so
    # the very last id cannot be read past: outside that range is the client's error, not Redis's.
    if entry[0] > _U64 or entry[1] > _U64 or entry == (_U64, _U64):
        raise ValueError(f"invalid cursor {cursor!r}")
    return f"{entry[0]}-{entry[1]}", None if index is None else int(index)


_U64 = 2**64 - 1


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


def _is_marker(raw: Any) -> bool:
    """Whether a raw entry is a run's first one (`r`, written by create.lua and nothing else)."""
    fields = raw[1]
    return b"r" in fields if isinstance(fields, dict) else bool(fields) and fields[0] == b"r"


def _stream_entries(reply: Any) -> list[Any]:
    """The entries of the one stream in an XREAD reply: `[[key, [(id, fields), ...]]]` (RESP2)."""
    return list(reply[0][1])
