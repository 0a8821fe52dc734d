"""A run's output: each chunk is written to the stream and folded into the message the run stores, in one call.

This is the AI SDK's model (`processUIMessageStream`): the message is derived from the chunk stream, never
kept in step with it by hand. The fold is `ChunkAssembler`, the same one that rebuilds a dead producer's
answer from its stream buffer, so a live answer and a recovered one cannot disagree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chatstream.models import Usage
from chatstream.protocol.chunks import (
    Chunk,
    DataConversation,
    ReasoningEnd,
    SourceUrl,
    Start,
    StartStep,
    TextEnd,
    encode_chunk,
)
from chatstream.runs.assembly import ChunkAssembler
from chatstream.runs.persist import close_stream
from chatstream.streams.producer import StreamWriter

if TYPE_CHECKING:
    from collections.abc import Sequence

    from chatstream.models import Message
    from chatstream.runs.assembly import MessageBuilder
    from chatstream.streams.base import StreamBuffer

__all__ = ["RunOutput"]

_PREAMBLE = (Start, DataConversation, StartStep)
"""What a run writes before its content: nothing a reader waits for, so it rides with the first token."""


class RunOutput:
    """The stream of one run and the assistant message folded from it.

    `write(chunk)` folds the chunk, then writes it. Folding first means a write that fails (the buffer is
    away, the stream was taken over) still leaves the chunk in the message the run stores on its way out:
    the stored answer is never behind what a reader may have seen.

    What no chunk carries has a method of its own: the model's usage (`add_usage`), a human's decision on a
    tool call (`record_decision`), and the provider metadata of a reasoning part, which rides on its end
    (`reasoning_metadata`). Citations (`cite`) are chunks, written once per URL per answer.
    """

    def __init__(
        self,
        buffer: StreamBuffer,
        stream_id: str,
        message_id: str,
        *,
        base: Message | None = None,
        batched: bool,
        window: float = 0.0,
    ) -> None:
        """`base`: the stored message this run continues (its parts and usage carry on)."""
        self._buffer = buffer
        self._stream_id = stream_id
        self._writer = StreamWriter(buffer, stream_id, batched=batched, window=window)
        self._fold = ChunkAssembler(stream_id, base)
        # Begun before the `start` chunk, so there is a message to store whatever happens first.
        builder = self._fold.begin(message_id)
        self._reasoning_meta: dict[str, Any] | None = None
        # What the answer carried before this run (a run resumed after an approval): charged by that run.
        self._base_usage = builder.usage
        # URLs cited in this answer, its first half's too: each is a `source-url` part once.
        self._cited = {p.url for p in builder.parts if p.type == "source-url" and p.url}

    async def write(self, chunk: Chunk) -> None:
        """Fold `chunk` into the message and write it to the stream (encoded once). A frame with no content
        waits briefly for the content that follows (`StreamWriter`'s `defer`)."""
        self._fold.apply(chunk)
        await self._writer.write(encode_chunk(chunk), defer=isinstance(chunk, _PREAMBLE))

    # -- what is open ----------------------------------------------------------------------------------

    @property
    def text_id(self) -> str | None:
        """The open text part's id."""
        return self._fold.text_id

    @property
    def reasoning_id(self) -> str | None:
        """The open reasoning part's id."""
        return self._fold.reasoning_id

    def reasoning_metadata(self, metadata: dict[str, Any]) -> None:
        """Provider metadata for the open reasoning part (a signature): written with the part's end."""
        self._reasoning_meta = metadata

    async def cite(self, url: str, title: str | None) -> None:
        """Write a `source-url` chunk for `url`, unless this answer cites it already (either half of it)."""
        if url in self._cited:
            return
        self._cited.add(url)  # before the write: parallel tool calls citing the same page write it once
        await self.write(SourceUrl(source_id=f"source-{len(self._cited)}", url=url, title=title or None))

    async def end_part(self) -> None:
        """End the open text or reasoning part, if any: what comes next is a part of its own."""
        if self._fold.text_id is not None:
            await self.write(TextEnd(id=self._fold.text_id))
        if self._fold.reasoning_id is not None:
            metadata, self._reasoning_meta = self._reasoning_meta, None
            await self.write(ReasoningEnd(id=self._fold.reasoning_id, provider_metadata=metadata))

    def closing_chunks(self) -> list[Chunk]:
        """What a run cut short (error, stop, timeout) still writes so the stream stays well formed."""
        return self._fold.closing_chunks()

    async def close(self, final: Sequence[Chunk], *, run_id: str, seconds: float) -> None:
        """Write the final chunks after what is pending, ending the stream (`close_stream`: retried while
        the buffer is away, for up to `seconds`). The answer is stored before this, so these fold nothing
        that is kept."""
        for chunk in final:
            self._fold.apply(chunk)
        frames = [encode_chunk(c) for c in final]
        await close_stream(self._writer, self._buffer, self._stream_id, run_id, frames, seconds=seconds)

    # -- what no chunk carries -------------------------------------------------------------------------

    @property
    def _builder(self) -> MessageBuilder:
        builder = self._fold.builder
        assert builder is not None  # begun in __init__
        return builder

    @property
    def usage(self) -> Usage:
        """The answer's usage, the part before this run included (what the stored message shows)."""
        return self._builder.usage

    @property
    def run_usage(self) -> Usage:
        """What this run used: `usage` without what the answer carried before it (charged by its own run)."""
        usage, base = self._builder.usage, self._base_usage
        if base == Usage():
            return usage
        return Usage(
            input_tokens=max(0, usage.input_tokens - base.input_tokens),
            output_tokens=max(0, usage.output_tokens - base.output_tokens),
        )

    def add_usage(self, usage: Usage) -> None:
        self._builder.usage = self._builder.usage + usage

    def record_decision(self, tool_call_id: str, tool_name: str, approval: dict[str, Any]) -> None:
        """A human's decision on a tool call (`approval-responded`, with `approval` as given: its reason too).
        A denial's `tool-output-denied` then keeps that approval."""
        self._builder.tool(tool_call_id, tool_name, state="approval-responded", approval=approval)

    def message(self, **fields: Any) -> Message:
        """The message as it stands (an open part is included, and stays open)."""
        return self._builder.message(**fields)
