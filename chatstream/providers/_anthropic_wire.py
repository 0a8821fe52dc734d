"""Anthropic messages wire format: request mapping and the `message_start … message_stop` event state machine.

Extended thinking: thinking text streams as `ModelReasoning`; the block's signature (or a redacted block's
data) as `ModelReasoningSignature`; the end of each such block as `ModelReasoningEnd`. The run engine stores
each block as its own reasoning part, with `provider_metadata={"anthropic": {"signature": ...}}` (or
`{"anthropic": {"redactedData": ...}}`), and this mapper sends every one back, in order and unchanged, on the
next request, which Anthropic requires to continue a tool loop with thinking.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from chatstream.models import FinishReason, Usage
from chatstream.providers._history import AssistantStep, assistant_steps, decode_text_file, parse_data_url
from chatstream.providers.base import (
    ModelEvent,
    ModelFinish,
    ModelReasoning,
    ModelReasoningEnd,
    ModelReasoningSignature,
    ModelText,
    ModelToolCall,
    ModelToolCallDelta,
    ModelToolCallStart,
    ModelUsage,
)

if TYPE_CHECKING:
    from chatstream.models import Message, MessagePart
    from chatstream.providers.base import ProviderRequest, ToolSpec

__all__ = ["ERROR_STATUS", "EventState", "build_messages", "build_tools"]

# Anthropic's error `type` -> the HTTP status it stands for, so in-stream errors go through the one table.
ERROR_STATUS: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


# --- request ------------------------------------------------------------------------------------------------


def build_messages(request: ProviderRequest) -> list[dict[str, Any]]:
    """The `messages` array. Consecutive same-role turns are merged (tool results then the next user text)."""
    out: list[dict[str, Any]] = []
    for message in request.messages:
        if message.role == "user":
            _append(out, "user", _user_blocks(message))
        elif message.role == "assistant":
            for step in assistant_steps(message):
                _append(out, "assistant", _assistant_blocks(step))
                if step.calls:
                    results = [
                        {"type": "tool_result", "tool_use_id": c.id, "content": c.result, "is_error": c.is_error}
                        for c in step.calls
                    ]
                    _append(out, "user", results)
    return out


def build_tools(tools: tuple[ToolSpec, ...]) -> list[dict[str, Any]]:
    return [{"name": t.name, "description": t.description, "input_schema": t.parameters} for t in tools]


def _append(out: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    if not blocks:
        return
    if out and out[-1]["role"] == role:
        out[-1]["content"].extend(blocks)
    else:
        out.append({"role": role, "content": blocks})


def _user_blocks(message: Message) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for part in message.parts:
        if part.type == "text" and part.text:
            blocks.append({"type": "text", "text": part.text})
        elif part.type == "file" and part.url:
            blocks.append(_file_block(part))
    return blocks


def _file_block(part: MessagePart) -> dict[str, Any]:
    url = part.url or ""
    parsed = parse_data_url(url)
    media_type = part.media_type or (parsed[0] if parsed else "")
    if parsed is None:
        if media_type.startswith("image/"):
            return {"type": "image", "source": {"type": "url", "url": url}}
        return {"type": "text", "text": f"[attached file {part.filename or url}]"}
    data = parsed[1]
    if media_type.startswith("image/"):
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    if media_type == "application/pdf":
        return {"type": "document", "source": {"type": "base64", "media_type": media_type, "data": data}}
    text = decode_text_file(data) if media_type.startswith("text/") or media_type == "application/json" else None
    if text is not None:
        return {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": text},
            "title": part.filename or "attachment",
        }
    return {"type": "text", "text": f"[attached file {part.filename or ''} ({media_type}) cannot be read here]"}


def _assistant_blocks(step: AssistantStep) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for part in step.reasoning:
        meta = (part.provider_metadata or {}).get("anthropic") or {}
        if meta.get("redactedData"):
            blocks.append({"type": "redacted_thinking", "data": meta["redactedData"]})
        elif meta.get("signature"):
            # An empty `thinking` is what Claude sends when thinking display is omitted; it goes back as it came.
            blocks.append({"type": "thinking", "thinking": part.text or "", "signature": meta["signature"]})
        # Reasoning without a signature (another provider's, or cut off) would be rejected: it is dropped.
    if step.text.strip():
        blocks.append({"type": "text", "text": step.text})
    for call in step.calls:
        value = call.input if isinstance(call.input, dict) else ({} if call.input is None else {"input": call.input})
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": value})
    return blocks


# --- response -----------------------------------------------------------------------------------------------


class _Usage(msgspec.Struct):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None


class _Message(msgspec.Struct):
    usage: _Usage | None = None


class MessageStart(msgspec.Struct):
    message: _Message


class _Block(msgspec.Struct):
    type: str
    id: str | None = None
    name: str | None = None
    text: str | None = None
    thinking: str | None = None
    signature: str | None = None
    data: str | None = None


class BlockStart(msgspec.Struct):
    index: int
    content_block: _Block


class _BlockDelta(msgspec.Struct):
    type: str
    text: str | None = None
    thinking: str | None = None
    signature: str | None = None
    partial_json: str | None = None


class BlockDelta(msgspec.Struct):
    index: int
    delta: _BlockDelta


class BlockStop(msgspec.Struct):
    index: int


class _MessageDeltaBody(msgspec.Struct):
    stop_reason: str | None = None


class MessageDelta(msgspec.Struct):
    delta: _MessageDeltaBody
    usage: _Usage | None = None


class _ErrorDetail(msgspec.Struct):
    type: str = "api_error"
    message: str | None = None


class StreamError(msgspec.Struct):
    error: _ErrorDetail


DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    "message_start": msgspec.json.Decoder(MessageStart),
    "content_block_start": msgspec.json.Decoder(BlockStart),
    "content_block_delta": msgspec.json.Decoder(BlockDelta),
    "content_block_stop": msgspec.json.Decoder(BlockStop),
    "message_delta": msgspec.json.Decoder(MessageDelta),
    "error": msgspec.json.Decoder(StreamError),
}

_FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool-calls",
    "refusal": "content-filter",
}


class EventState:
    """Turns the decoded events of one response into `ModelEvent`s."""

    def __init__(self) -> None:
        self._tools: dict[int, tuple[str, str, list[str]]] = {}  # block index -> (id, name, argument pieces)
        self._reasoning: set[int] = set()  # indexes of open thinking / redacted_thinking blocks
        self.input_tokens = 0
        self.output_tokens: int | None = None
        self.stop_reason: str | None = None

    def feed(self, event: object) -> list[ModelEvent]:
        match event:
            case BlockDelta(index=index, delta=delta):
                if delta.type == "text_delta" and delta.text:
                    return [ModelText(text=delta.text)]
                if delta.type == "thinking_delta" and delta.thinking:
                    return [ModelReasoning(text=delta.thinking)]
                if delta.type == "signature_delta" and delta.signature:
                    return [ModelReasoningSignature(signature=delta.signature)]
                if delta.type == "input_json_delta" and delta.partial_json and index in self._tools:
                    call_id, _name, pieces = self._tools[index]
                    pieces.append(delta.partial_json)
                    return [ModelToolCallDelta(id=call_id, delta=delta.partial_json)]
                return []
            case BlockStart(index=index, content_block=block):
                return self._block_start(index, block)
            case BlockStop(index=index):
                if index in self._reasoning:
                    self._reasoning.discard(index)
                    return [ModelReasoningEnd()]
                if index in self._tools:
                    call_id, name, pieces = self._tools.pop(index)
                    return [ModelToolCall(id=call_id, name=name, arguments="".join(pieces) or "{}")]
                return []
            case MessageStart(message=message):
                if message.usage is not None:
                    usage = message.usage
                    self.input_tokens = (
                        (usage.input_tokens or 0)
                        + (usage.cache_creation_input_tokens or 0)
                        + (usage.cache_read_input_tokens or 0)
                    )
                    self.output_tokens = usage.output_tokens
                return []
            case MessageDelta(delta=delta, usage=usage):
                self.stop_reason = delta.stop_reason or self.stop_reason
                if usage is not None and usage.output_tokens is not None:
                    self.output_tokens = usage.output_tokens
                return []
        return []

    def _block_start(self, index: int, block: _Block) -> list[ModelEvent]:
        if block.type == "tool_use" and block.id and block.name:
            self._tools[index] = (block.id, block.name, [])
            return [ModelToolCallStart(id=block.id, name=block.name)]
        if block.type == "redacted_thinking":
            self._reasoning.add(index)
            return [ModelReasoningSignature(signature=block.data, redacted=True)] if block.data else []
        if block.type == "text" and block.text:
            return [ModelText(text=block.text)]
        if block.type == "thinking":
            self._reasoning.add(index)
            return [ModelReasoning(text=block.thinking)] if block.thinking else []
        return []

    def finish(self) -> list[ModelEvent]:
        events: list[ModelEvent] = []
        for call_id, name, pieces in self._tools.values():  # blocks never closed: complete them anyway
            events.append(ModelToolCall(id=call_id, name=name, arguments="".join(pieces) or "{}"))
        self._tools.clear()
        events.append(ModelUsage(usage=Usage(input_tokens=self.input_tokens, output_tokens=self.output_tokens or 0)))
        events.append(ModelFinish(reason=_FINISH.get(self.stop_reason or "", "other")))
        return events
