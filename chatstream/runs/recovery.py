"""The answer of a run whose producer died, rebuilt from its stream and stored, exactly once.

A producing instance that is killed (SIGKILL, OOM, a lost node) never stores the partial answer its clients
saw. Whoever notices first that its liveness lapsed (a reader on another instance, or the next send into
the conversation) calls `recover_lost_answer`: it reads the run's whole stream from the buffer, folds the
chunks into the message the clients built (`ChunkAssembler`), stores it with finishReason "error" and
`PRODUCER_LOST`, and ends the stream with that error so every reader (and every later resume) sees the
same end. `ConversationStore.save_message_once` makes the store step atomic across instances: of several
racing recoverers one stores, the rest do nothing; a producer that comes back afterwards replaces the
message with its own (same id).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import msgspec

from chatstream.protocol.chunks import Chunk, ErrorChunk, Start, decode_chunk, encode_chunk
from chatstream.runs.assembly import ChunkAssembler
from chatstream.streams.reader import PRODUCER_LOST

if TYPE_CHECKING:
    from chatstream.models import Message
    from chatstream.store.base import ConversationStore
    from chatstream.streams.base import StreamBuffer

__all__ = ["recover_lost_answer"]


async def recover_lost_answer(
    buffer: StreamBuffer, store: ConversationStore, conversation_id: str, run_id: str
) -> Message | None:
    """Store the partial answer of `run_id`, whose producer is known dead, and end its stream.

    Returns the stored message, or None when there was nothing to do: the stream ended, belongs to another
    run, or the answer of this run is already stored (by its producer or by another recoverer). The caller
    must have seen the run's liveness lapse; this does not check it.
    """
    info = await buffer.info(conversation_id)
    if info is None or info.done or info.run_id != run_id:
        return None
    chunks = await _read_chunks(buffer, conversation_id)
    if chunks is None:
        return None
    start = next((c for c in chunks if isinstance(c, Start)), None)
    # The stream may have been taken over between `info` and the reads: only this run's own `start` counts.
    if start is None or not start.message_id or (start.message_metadata or {}).get("runId") != run_id:
        return None
    existing = await store.get_message(conversation_id, start.message_id)
    if existing is not None and existing.run_id == run_id:
        return None  # cheap early exit; save_message_once is what makes it exact
    assembler = ChunkAssembler(conversation_id, base=existing)
    for chunk in chunks:
        assembler.apply(chunk)
    assert assembler.builder is not None  # `start` was among the chunks
    assembler.builder.finish()
    metadata = assembler.metadata
    message = assembler.builder.message(
        provider=metadata.get("provider"),
        model=metadata.get("model"),
        finish_reason="error",
        error=PRODUCER_LOST,
        run_id=run_id,
    )
    if not await store.save_message_once(message):
        return None
    closing = [*assembler.closing_chunks(), ErrorChunk(error_text=PRODUCER_LOST)]
    # Named after the run: if the conversation's next run has taken the stream meanwhile, nothing is written.
    with contextlib.suppress(KeyError):
        await buffer.append(conversation_id, [encode_chunk(c) for c in closing], final=True, run_id=run_id)
    return message


async def _read_chunks(buffer: StreamBuffer, conversation_id: str) -> list[Chunk] | None:
    """Every chunk of the stream, from its start; None when it ended or vanished while being read."""
    chunks: list[Chunk] = []
    cursor: str | None = None
    while True:
        result = await buffer.read(conversation_id, cursor)
        if result is None or result.done:
            return None
        if not result.entries:
            return chunks
        for entry in result.entries:
            with contextlib.suppress(msgspec.DecodeError):  # every frame is ours; skip rather than fail on one
                chunks.append(decode_chunk(entry.data))
        cursor = result.entries[-1].cursor
