"""The internal event sequence of a run, one tagged union.

Its vocabulary is the AI SDK UI message stream (`../shared/protocol.md`): each Struct encodes, unchanged,
to one chunk of that protocol. A run encodes each event once (`encode_chunk`); the bytes are what the
stream buffer stores and what UI-stream readers send. Other dialects decode and translate them.
"""

from __future__ import annotations

from typing import Any

import msgspec

from chatstream.models import FinishReason

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


class Start(_Chunk, tag="start", frozen=True):
    message_id: str | None = None
    message_metadata: dict[str, Any] | None = None


class StartStep(_Chunk, tag="start-step", frozen=True):
    pass


class FinishStep(_Chunk, tag="finish-step", frozen=True):
    pass


class TextStart(_Chunk, tag="text-start", frozen=True):
    id: str


class TextDelta(_Chunk, tag="text-delta", frozen=True):
    id: str
    delta: str


class TextEnd(_Chunk, tag="text-end", frozen=True):
    id: str


class ReasoningStart(_Chunk, tag="reasoning-start", frozen=True):
    id: str


class ReasoningDelta(_Chunk, tag="reasoning-delta", frozen=True):
    id: str
    delta: str


class ReasoningEnd(_Chunk, tag="reasoning-end", frozen=True):
    id: str
    provider_metadata: dict[str, Any] | None = None


class ToolInputStart(_Chunk, tag="tool-input-start", frozen=True):
    tool_call_id: str
    tool_name: str


class ToolInputDelta(_Chunk, tag="tool-input-delta", frozen=True):
    tool_call_id: str
    input_text_delta: str


class ToolInputAvailable(_Chunk, tag="tool-input-available", frozen=True):
    tool_call_id: str
    tool_name: str
    input: Any


class ToolInputError(_Chunk, tag="tool-input-error", frozen=True):
    tool_call_id: str
    tool_name: str
    input: Any
    error_text: str


class ToolApprovalRequest(_Chunk, tag="tool-approval-request", frozen=True):
    approval_id: str
    tool_call_id: str


class ToolOutputAvailable(_Chunk, tag="tool-output-available", frozen=True):
    tool_call_id: str
    output: Any


class ToolOutputError(_Chunk, tag="tool-output-error", frozen=True):
    tool_call_id: str
    error_text: str


class ToolOutputDenied(_Chunk, tag="tool-output-denied", frozen=True):
    tool_call_id: str


class SourceUrl(_Chunk, tag="source-url", frozen=True):
    source_id: str
    url: str
    title: str | None = None


class File(_Chunk, tag="file", frozen=True):
    url: str
    media_type: str


# Data chunks keep their defaults on the wire: `transient` and the fixed `id` mean something to the client.
class DataStatus(_Chunk, tag="data-status", frozen=True, omit_defaults=False):
    """A transient status line: a tool running, a web search (`data-status` per SPEC §3.2)."""

    data: dict[str, Any]
    transient: bool = True


class DataConversation(_Chunk, tag="data-conversation", frozen=True, omit_defaults=False):
    """The conversation id and, once known, its title. The fixed `id` makes a later one replace the first."""

    data: dict[str, Any]
    id: str = "conversation"


class MessageMetadata(_Chunk, tag="message-metadata", frozen=True):
    message_metadata: dict[str, Any]


class Finish(_Chunk, tag="finish", frozen=True):
    finish_reason: FinishReason | None = None
    message_metadata: dict[str, Any] | None = None


class Abort(_Chunk, tag="abort", frozen=True):
    reason: str | None = None


class ErrorChunk(_Chunk, tag="error", frozen=True):
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
_decoder: msgspec.json.Decoder[Chunk] = msgspec.json.Decoder(Chunk)


def decode_chunk(data: bytes) -> Chunk:
    """Decode one stored chunk (for dialects other than the UI stream)."""
    return _decoder.decode(data)
