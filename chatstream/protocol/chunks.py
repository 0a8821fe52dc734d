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
    "DataPart",
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
    "TaggedChunk",
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


class DataPart(msgspec.Struct, kw_only=True, frozen=True):
    """A transient data part of any name: `{"type": "data-<name>", "data": ..., "transient": true}`.

    What a tool streams to the client alongside the answer (a document's content as `data-textDelta`, a
    `data-suggestion`): the AI SDK hands it to `onData` and never adds it to the message, and neither does
    our fold (`ChunkAssembler`), so it is not stored. Not a tagged member of the union (its tag is open), so
    `decode_chunk` falls back to it for a `data-*` type the union does not name.
    """

    type: str
    """`data-<name>`: the AI SDK validates `data` against the `dataPartSchemas` entry for `<name>`."""
    data: Any
    transient: bool = True

    def __post_init__(self) -> None:
        if not self.type.startswith("data-") or len(self.type) == len("data-"):
            raise ValueError(f"a data part's type is data-<name>, not {self.type!r}")

    @property
    def name(self) -> str:
        """`<name>` of `data-<name>`."""
        return self.type[len("data-") :]


class MessageMetadata(_Chunk, tag="message-metadata", frozen=True):
    message_metadata: dict[str, Any]


class Finish(_Chunk, tag="finish", frozen=True):
    finish_reason: FinishReason | None = None
    message_metadata: dict[str, Any] | None = None


class Abort(_Chunk, tag="abort", frozen=True):
    reason: str | None = None


class ErrorChunk(_Chunk, tag="error", frozen=True):
    error_text: str


TaggedChunk = (
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

Chunk = TaggedChunk | DataPart
"""Every chunk a run writes: the tagged union, plus `DataPart` (a `data-*` part of any other name)."""

encode_chunk = msgspec.json.Encoder().encode
_decoder: msgspec.json.Decoder[TaggedChunk] = msgspec.json.Decoder(TaggedChunk)
_data_decoder: msgspec.json.Decoder[DataPart] = msgspec.json.Decoder(DataPart)


_DATA_PREFIX = b'{"type":"data-'
_NAMED_DATA = (b'{"type":"data-status"', b'{"type":"data-conversation"')


def decode_chunk(data: bytes) -> Chunk:
    """Decode one stored chunk (for dialects other than the UI stream). A `data-*` type the union does not
    name is a `DataPart`: told by its prefix when `encode_chunk` wrote it (`type` first), else tried second."""
    if data.startswith(_DATA_PREFIX) and not data.startswith(_NAMED_DATA):
        return _data_decoder.decode(data)
    try:
        return _decoder.decode(data)
    except msgspec.ValidationError:
        if b'"data-' not in data[:40]:
            raise
        return _data_decoder.decode(data)
