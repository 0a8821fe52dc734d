"""The stored assistant message, built part by part (`MessageBuilder`) from the chunks a run writes
(`ChunkAssembler`): live, as the run writes them, and again from the stream buffer for an answer whose
producer died before storing it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from chatstream.models import Message, MessagePart, Usage
from chatstream.protocol.chunks import (
    Chunk,
    File,
    FinishStep,
    ReasoningDelta,
    ReasoningEnd,
    ReasoningStart,
    SourceUrl,
    Start,
    StartStep,
    TextDelta,
    TextEnd,
    TextStart,
    ToolApprovalRequest,
    ToolInputAvailable,
    ToolInputDelta,
    ToolInputError,
    ToolInputStart,
    ToolOutputAvailable,
    ToolOutputDenied,
    ToolOutputError,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["ChunkAssembler", "MessageBuilder"]


class MessageBuilder:
    """Accumulates an assistant message. Text arrives in many small pieces: they are joined once, when a
    part closes, never re-concatenated per token."""

    def __init__(self, message_id: str, conversation_id: str, parts: Iterable[MessagePart] = ()) -> None:
        self.message_id = message_id
        self.conversation_id = conversation_id
        self.parts: list[MessagePart] = list(parts)
        self._open_kind: str | None = None
        self._pieces: list[str] = []
        self._open_meta: dict[str, Any] | None = None
        self.usage = Usage()

    def _close(self) -> None:
        if self._open_kind is not None:
            self.parts.append(
                MessagePart(type=self._open_kind, text="".join(self._pieces), provider_metadata=self._open_meta)
            )
            self._open_kind, self._pieces, self._open_meta = None, [], None

    def _piece(self, kind: str, text: str) -> None:
        if self._open_kind != kind:
            self._close()
            self._open_kind = kind
        self._pieces.append(text)

    def text(self, delta: str) -> None:
        self._piece("text", delta)

    def reasoning(self, delta: str) -> None:
        self._piece("reasoning", delta)

    def reasoning_metadata(self, metadata: dict[str, Any]) -> None:
        if self._open_kind != "reasoning":
            self._piece("reasoning", "")
        self._open_meta = metadata

    def end_part(self) -> None:
        """Close the open text or reasoning part: what comes next starts a new one, even of the same kind."""
        self._close()

    def step_start(self) -> None:
        self._close()
        self.parts.append(MessagePart(type="step-start"))

    def tool(self, tool_call_id: str, tool_name: str, **fields: Any) -> None:
        """Add a tool part, or update the one with this call id (its state moves forward)."""
        self._close()
        for i, part in enumerate(self.parts):
            if part.tool_call_id == tool_call_id:
                self.parts[i] = msgspec.structs.replace(part, **fields)
                return
        self.parts.append(MessagePart(type=f"tool-{tool_name}", tool_call_id=tool_call_id, **fields))

    def tool_part(self, tool_call_id: str) -> MessagePart | None:
        return next((p for p in self.parts if p.tool_call_id == tool_call_id), None)

    @property
    def text_so_far(self) -> str:
        done = "".join(p.text or "" for p in self.parts if p.type == "text")
        return done + ("".join(self._pieces) if self._open_kind == "text" else "")

    def message(self, **fields: Any) -> Message:
        """The message as it stands (open text is included, and stays open)."""
        parts = list(self.parts)
        if self._open_kind is not None:
            parts.append(
                MessagePart(type=self._open_kind, text="".join(self._pieces), provider_metadata=self._open_meta)
            )
        return Message(
            id=self.message_id,
            conversation_id=self.conversation_id,
            role="assistant",
            parts=tuple(parts),
            usage=self.usage,
            **fields,
        )

    def finish(self) -> None:
        self._close()


class ChunkAssembler:
    """Folds UI message stream chunks into a `MessageBuilder` the way the AI SDK client builds its message
    (`processUIMessageStream`). The one place chunks become stored parts: a live run folds each chunk it
    writes (`RunOutput`), and a dead producer's answer is rebuilt from its stream buffer with the same fold
    (`recover_lost_answer`), so the two cannot disagree.

    Also tracks what is still open (a text or reasoning part, a step), so whoever ends a stream its producer
    left unfinished can close it well formed (`closing_chunks`).
    """

    def __init__(self, conversation_id: str, base: Message | None = None) -> None:
        """`base`: the stored message this stream continues (an answer resumed after a tool approval)."""
        self.conversation_id = conversation_id
        self.base = base
        self.builder: MessageBuilder | None = None
        self.metadata: dict[str, Any] = {}
        """The `start` chunk's message metadata (run, provider, model)."""
        self.text_id: str | None = None
        """The open text part's id."""
        self.reasoning_id: str | None = None
        """The open reasoning part's id."""
        self.step_open = False

    def begin(self, message_id: str) -> MessageBuilder:
        """Start the message `message_id`: when it is `base`, its parts and usage carry on."""
        base = self.base if self.base is not None and self.base.id == message_id else None
        self.builder = MessageBuilder(message_id, self.conversation_id, base.parts if base else ())
        if base is not None and base.usage is not None:
            self.builder.usage = base.usage
        return self.builder

    def _require(self) -> MessageBuilder:
        if self.builder is None:  # a stream always opens with `start`; be lenient about one that did not
            self.builder = MessageBuilder("", self.conversation_id)
        return self.builder

    def apply(self, chunk: Chunk) -> None:
        # The deltas come first: a run writes one per token, and each `case` is an isinstance check.
        match chunk:
            case TextDelta(delta=delta):
                (self.builder or self._require()).text(delta)
            case ReasoningDelta(delta=delta):
                (self.builder or self._require()).reasoning(delta)
            case ToolInputDelta():
                pass  # the input is stored whole, once it is available
            case Start(message_id=message_id, message_metadata=metadata):
                # A live run begins its message before its `start` (`RunOutput`): that one carries on.
                if self.builder is None or self.builder.message_id != (message_id or ""):
                    self.begin(message_id or "")
                self.metadata = dict(metadata or {})
            case _:
                self._apply_other(chunk)

    def _apply_other(self, chunk: Chunk) -> None:
        builder = self._require()
        match chunk:
            case StartStep():
                builder.step_start()
                self.step_open = True
            case FinishStep():
                builder.finish()
                self.step_open = False
            case TextStart(id=part_id):
                builder.finish()
                self.text_id = part_id
            case TextEnd():
                builder.finish()
                self.text_id = None
            case ReasoningStart(id=part_id):
                builder.finish()
                self.reasoning_id = part_id
            case ReasoningEnd(provider_metadata=metadata):
                if metadata:
                    builder.reasoning_metadata(metadata)
                builder.finish()
                self.reasoning_id = None
            case ToolInputStart(tool_call_id=call_id, tool_name=name):
                builder.tool(call_id, name, state="input-streaming")
            case ToolInputAvailable(tool_call_id=call_id, tool_name=name, input=value):
                builder.tool(call_id, name, state="input-available", input=value)
            case ToolInputError(tool_call_id=call_id, tool_name=name, input=value, error_text=text):
                builder.tool(call_id, name, state="output-error", input=value, error_text=text)
            case ToolApprovalRequest(tool_call_id=call_id, approval_id=approval_id):
                self._update_tool(call_id, state="approval-requested", approval={"id": approval_id})
            case ToolOutputAvailable(tool_call_id=call_id, output=output):
                self._update_tool(call_id, state="output-available", output=output)
            case ToolOutputError(tool_call_id=call_id, error_text=text):
                self._update_tool(call_id, state="output-error", error_text=text)
            case ToolOutputDenied(tool_call_id=call_id):
                part = builder.tool_part(call_id)
                approval = {**part.approval, "approved": False} if part is not None and part.approval else None
                self._update_tool(call_id, state="output-denied", approval=approval)
            case File(url=url, media_type=media_type):
                builder.finish()
                builder.parts.append(MessagePart(type="file", url=url, media_type=media_type))
            case SourceUrl(source_id=source_id, url=url, title=title):
                builder.finish()
                builder.parts.append(MessagePart(type="source-url", source_id=source_id, url=url, title=title))
            case _:
                pass  # finish, error, metadata and transient data parts add nothing to the stored parts

    def _update_tool(self, call_id: str, **fields: Any) -> None:
        builder = self._require()
        part = builder.tool_part(call_id)
        if part is not None and part.tool_name is not None:  # an output without its call: nothing to attach to
            builder.tool(call_id, part.tool_name, **fields)

    def closing_chunks(self) -> list[Chunk]:
        """What a well-formed stream still needs before its error: the open part's end, then the step's."""
        closing: list[Chunk] = []
        if self.text_id is not None:
            closing.append(TextEnd(id=self.text_id))
        if self.reasoning_id is not None:
            closing.append(ReasoningEnd(id=self.reasoning_id))
        if self.step_open:
            closing.append(FinishStep())
        return closing
