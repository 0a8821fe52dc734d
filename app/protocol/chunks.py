"""The internal event sequence of a run, one tagged union.

Its vocabulary is the AI SDK UI message stream (`../shared/protocol.md`): each Struct encodes, unchanged,
to one chunk of that protocol. A run encodes each event once (`encode_chunk`); the bytes are what the
stream buffer stores and what UI-stream readers send. Other dialects decode and translate them.
"""

from __future__ import annotations

from typing import Any

import msgspec

from app.models import FinishReason

__all__ = [
    "Abort",
    "Chunk",
    "DataConversation",
    "DataStatus",
    "ErrorChunk",
    "File",
    "Finish",
    "FinishStep",
    "MessageMetadata",
    "ReasoningDelta",
    "ReasoningEnd",
    "ReasoningStart",
    "SourceUrl",
    "Start",
    "StartStep",
    "TextDelta",
    "TextEnd",
    "TextStart",
    "ToolApprovalRequest",
    "ToolInputAvailable",
    "ToolInputDelta",
    "ToolInputError",
    "ToolInputStart",
    "ToolOutputAvailable",
    "ToolOutputDenied",
    "ToolOutputError",
    "decode_chunk",
    "encode_chunk",
]


class _Chunk(msgspec.Struct, tag_field="type", kw_only=True, frozen=True, rename="camel", omit_defaults=True):
    pass


class Start(_Chunk, tag="start"):
    message_id: str | None = None
    message_metadata: dict[str, Any] | None = None


class StartStep(_Chunk, tag="start-step"):
    pass


class FinishStep(_Chunk, tag="finish-step"):
    pass


class TextStart(_Chunk, tag="text-start"):
    id: str


class TextDelta(_Chunk, tag="text-delta"):
    id: str
    delta: str


class TextEnd(_Chunk, tag="text-end"):
    id: str


class ReasoningStart(_Chunk, tag="reasoning-start"):
    id: str


class ReasoningDelta(_Chunk, tag="reasoning-delta"):
    id: str
    delta: str


class ReasoningEnd(_Chunk, tag="reasoning-end"):
    id: str
    provider_metadata: dict[str, Any] | None = None


class ToolInputStart(_Chunk, tag="tool-input-start"):
    tool_call_id: str
    tool_name: str


class ToolInputDelta(_Chunk, tag="tool-input-delta"):
    tool_call_id: str
    input_text_delta: str


class ToolInputAvailable(_Chunk, tag="tool-input-available"):
    tool_call_id: str
    tool_name: str
    input: Any


class ToolInputError(_Chunk, tag="tool-input-error"):
    tool_call_id: str
    tool_name: str
    input: Any
    error_text: str


class ToolApprovalRequest(_Chunk, tag="tool-approval-request"):
    approval_id: str
    tool_call_id: str


class ToolOutputAvailable(_Chunk, tag="tool-output-available"):
    tool_call_id: str
    output: Any


class ToolOutputError(_Chunk, tag="tool-output-error"):
    tool_call_id: str
    error_text: str


class ToolOutputDenied(_Chunk, tag="tool-output-denied"):
    tool_call_id: str


class SourceUrl(_Chunk, tag="source-url"):
    source_id: str
    url: str
    title: str | None = None


class File(_Chunk, tag="file"):
    url: str
    media_type: str


class DataStatus(_Chunk, tag="data-status"):
    """A transient status line: a tool running, a web search (`data-status` per SPEC §3.2)."""

    data: dict[str, Any]
    transient: bool = True


class DataConversation(_Chunk, tag="data-conversation"):
    """The conversation id and, once known, its title. The fixed `id` makes a later one replace the first."""

    data: dict[str, Any]
    id: str = "conversation"


class MessageMetadata(_Chunk, tag="message-metadata"):
    message_metadata: dict[str, Any]


class Finish(_Chunk, tag="finish"):
    finish_reason: FinishReason | None = None
    message_metadata: dict[str, Any] | None = None


class Abort(_Chunk, tag="abort"):
    reason: str | None = None


class ErrorChunk(_Chunk, tag="error"):
    error_text: str


Chunk = (
    Start
    | StartStep
    | FinishStep
    | TextStart
    | TextDelta
    | TextEnd
    | ReasoningStart
    | ReasoningDelta
    | ReasoningEnd
    | ToolInputStart
    | ToolInputDelta
    | ToolInputAvailable
    | ToolInputError
    | ToolApprovalRequest
    | ToolOutputAvailable
    | ToolOutputError
    | ToolOutputDenied
    | SourceUrl
    | File
    | DataStatus
    | DataConversation
    | MessageMetadata
    | Finish
    | Abort
    | ErrorChunk
)

encode_chunk = msgspec.json.Encoder().encode
_decoder: msgspec.json.Decoder[Chunk] = msgspec.json.Decoder(Chunk)  # type: ignore[arg-type]


def decode_chunk(data: bytes) -> Chunk:
    """Decode one stored chunk (for dialects other than the UI stream)."""
    return _decoder.decode(data)
