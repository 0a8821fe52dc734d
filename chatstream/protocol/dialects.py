"""One encoder per stream dialect (SPEC §3.2), all fed the same stored chunks.

The UI message stream sends the stored bytes as they are. The plain (seed 001) and seed-003 dialects
decode each chunk and translate it; their readers keep a little state (the answer so far, tool names).

A tool's transient `data-*` parts (`DataPart`: a document's content as `data-textDelta`, a `data-suggestion`)
reach UI-stream clients only. The plain and seed-003 dialects drop them: their vocabularies have no event
for them, and what the tool did is in its `tool_result` (seed 003) and in `GET /api/document` either way.
"""

from __future__ import annotations

from typing import Any, Protocol

import msgspec

from chatstream.protocol.chunks import (
    DataStatus,
    ErrorChunk,
    Finish,
    ReasoningDelta,
    SourceUrl,
    Start,
    TextDelta,
    ToolApprovalRequest,
    ToolInputAvailable,
    ToolInputStart,
    ToolOutputAvailable,
    ToolOutputDenied,
    ToolOutputError,
    decode_chunk,
    encode_chunk,
)
from chatstream.protocol.sse import DONE, frame, frame_data

__all__ = ["Dialect", "PlainDialect", "Seed003Dialect", "UIDialect", "dialect_for", "source_json"]

_encode = msgspec.json.Encoder().encode


def source_json(source: SourceUrl) -> dict[str, Any]:
    """A citation as the plain and seed-003 dialects list it: `{sourceId, url, title}`."""
    return {"sourceId": source.source_id, "url": source.url, "title": source.title}


class Dialect(Protocol):
    def entry(self, cursor: str, data: bytes) -> bytes | None:
        """The SSE bytes for one stored chunk, or None when the dialect has nothing to say for it."""
        ...

    def error(self, message: str, code: str) -> bytes: ...

    def end(self) -> bytes: ...


class UIDialect:
    """AI SDK UI message stream: stored chunks verbatim, `[DONE]` at the end."""

    def entry(self, cursor: str, data: bytes) -> bytes | None:
        return frame(cursor, data)

    def error(self, message: str, code: str) -> bytes:
        return frame_data(encode_chunk(ErrorChunk(error_text=message)))

    def end(self) -> bytes:
        return DONE


class PlainDialect:
    """Seed 001: metadata, delta, reasoning, status, done, error."""

    def __init__(self) -> None:
        self._text: list[str] = []
        self._meta: dict[str, Any] = {}
        self._sources: list[dict[str, Any]] = []

    def entry(self, cursor: str, data: bytes) -> bytes | None:
        event: dict[str, Any]
        match decode_chunk(data):
            case TextDelta(delta=delta):
                self._text.append(delta)
                event = {"type": "delta", "text": delta}
            case ReasoningDelta(delta=delta):
                event = {"type": "reasoning", "text": delta}
            case Start(message_metadata=meta):
                self._meta = meta or {}
                event = {
                    "type": "metadata",
                    "conversationId": self._meta.get("conversationId"),
                    "provider": self._meta.get("provider"),
                    "model": self._meta.get("model"),
                }
            case DataStatus(data=status):
                event = {"type": "status", **status}
            case SourceUrl() as source:
                self._sources.append(source_json(source))
                return None
            case Finish(message_metadata=meta, finish_reason=reason):
                meta = meta or {}
                event = {
                    "type": "done",
                    "response": "".join(self._text),
                    "conversationId": meta.get("conversationId"),
                    "provider": meta.get("provider"),
                    "model": meta.get("model"),
                    "usage": meta.get("usage"),
                    "finishReason": reason,
                    "sources": self._sources,
                }
            case ErrorChunk(error_text=text):
                event = {"type": "error", "error": text}
            case _:
                return None
        return frame(cursor, _encode(event))

    def error(self, message: str, code: str) -> bytes:
        return frame_data(_encode({"type": "error", "error": message, "code": code}))

    def end(self) -> bytes:
        return b""


class Seed003Dialect:
    """Seed 003: start, content, tool_call, tool_result, end, error; and ours, `approval_required
    {toolCallId, toolName, toolArgs, runId}` for a call waiting for a human (before the `end` of the run that
    suspends: `POST /api/chat/approve` with that `runId` continues it)."""

    def __init__(self) -> None:
        self._tools: dict[str, str] = {}
        self._args: dict[str, Any] = {}
        self._message_id: str | None = None
        self._run_id: str | None = None
        self._sources: list[dict[str, Any]] = []

    def entry(self, cursor: str, data: bytes) -> bytes | None:
        event: dict[str, Any]
        match decode_chunk(data):
            case TextDelta(delta=delta):
                event = {"type": "content", "delta": delta}
            case Start(message_id=message_id, message_metadata=meta):
                self._message_id = message_id
                self._run_id = (meta or {}).get("runId")
                event = {"type": "start", "messageId": message_id}
            case ToolInputStart(tool_call_id=call_id, tool_name=name):
                self._tools[call_id] = name
                return None
            case ToolInputAvailable(tool_call_id=call_id, tool_name=name, input=args):
                self._tools[call_id] = name
                self._args[call_id] = args
                event = {"type": "tool_call", "toolName": name, "toolArgs": args}
            case ToolApprovalRequest(tool_call_id=call_id):
                event = {
                    "type": "approval_required",
                    "toolCallId": call_id,
                    "toolName": self._tools.get(call_id),
                    "toolArgs": self._args.get(call_id),
                    "runId": self._run_id,
                }
            case ToolOutputAvailable(tool_call_id=call_id, output=output):
                event = {"type": "tool_result", "toolName": self._tools.get(call_id), "result": output}
            case ToolOutputError(tool_call_id=call_id, error_text=text):
                event = {"type": "tool_result", "toolName": self._tools.get(call_id), "result": {"error": text}}
            case ToolOutputDenied(tool_call_id=call_id):
                event = {"type": "tool_result", "toolName": self._tools.get(call_id), "result": {"denied": True}}
            case SourceUrl() as source:
                self._sources.append(source_json(source))
                return None
            case Finish():
                event = {"type": "end", "messageId": self._message_id}
                if self._sources:
                    event["sources"] = self._sources
            case ErrorChunk(error_text=text):
                event = {"type": "error", "error": "stream_error", "message": text}
            case _:
                return None
        return frame(cursor, _encode(event))

    def error(self, message: str, code: str) -> bytes:
        return frame_data(_encode({"type": "error", "error": code, "message": message}))

    def end(self) -> bytes:
        return b""


def dialect_for(name: str) -> Dialect:
    if name == "plain":
        return PlainDialect()
    if name == "seed003":
        return Seed003Dialect()
    return UIDialect()
