"""OpenAI chat-completions wire format: request mapping and the incremental chunk -> `ModelEvent` state machine.

Only the fields we read are declared (msgspec skips the rest without building them). Compatible servers
differ in small ways this code absorbs: Gemini sends a whole tool call in one delta and may omit `index`,
Ollama reports `finish_reason: "stop"` after tool calls, reasoning arrives as `reasoning` (Groq, OpenRouter,
Ollama) or `reasoning_content` (DeepSeek-style servers, Gemini).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from chatstream.models import FinishReason, Usage
from chatstream.providers._history import assistant_steps, decode_text_file, parse_data_url
from chatstream.providers.base import (
    ModelEvent,
    ModelFinish,
    ModelReasoning,
    ModelText,
    ModelToolCall,
    ModelToolCallDelta,
    ModelToolCallStart,
    ModelUsage,
)

if TYPE_CHECKING:
    from chatstream.models import Message, MessagePart
    from chatstream.providers.base import ProviderRequest, ToolSpec
    from chatstream.providers.catalog import ReasoningField

__all__ = ["ChatChunk", "ChunkState", "build_messages", "build_tools", "decode_chunk"]


# --- request ------------------------------------------------------------------------------------------------


def build_messages(request: ProviderRequest) -> list[dict[str, Any]]:
    """The `messages` array: system prompt, then each stored message as one or more wire messages."""
    out: list[dict[str, Any]] = []
    if request.system:
        out.append({"role": "system", "content": request.system})
    for message in request.messages:
        if message.role == "user":
            out.append({"role": "user", "content": _user_content(message)})
        elif message.role == "assistant":
            out.extend(_assistant_messages(message))
        # Stored `system` messages are never replayed: the system prompt is the server's, per request.
    return out


def build_tools(tools: tuple[ToolSpec, ...]) -> list[dict[str, Any]]:
    return [
        {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}
        for t in tools
    ]


def _user_content(message: Message) -> str | list[dict[str, Any]]:
    if all(p.type == "text" for p in message.parts):
        # Plain string content is the form every compatible server accepts.
        return message.text
    content: list[dict[str, Any]] = []
    for part in message.parts:
        if part.type == "text" and part.text:
            content.append({"type": "text", "text": part.text})
        elif part.type == "file" and part.url:
            content.append(_file_content(part))
    return content


def _file_content(part: MessagePart) -> dict[str, Any]:
    url = part.url or ""
    media_type = part.media_type or ""
    parsed = parse_data_url(url)
    if parsed is not None:
        media_type = part.media_type or parsed[0]
    if media_type.startswith("image/"):
        return {"type": "image_url", "image_url": {"url": url}}
    if media_type == "application/pdf" and parsed is not None:
        return {"type": "file", "file": {"filename": part.filename or "document.pdf", "file_data": url}}
    if parsed is not None and (media_type.startswith("text/") or media_type in ("application/json", "text/csv")):
        text = decode_text_file(parsed[1])
        if text is not None:
            return {"type": "text", "text": f"<file name={part.filename or 'attachment'!r}>\n{text}\n</file>"}
    return {"type": "text", "text": f"[attached file {part.filename or ''} ({media_type}) cannot be read here]"}


def _assistant_messages(message: Message) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for step in assistant_steps(message):
        if not step.text and not step.calls:
            continue  # reasoning alone is not replayed to the OpenAI family
        turn: dict[str, Any] = {"role": "assistant", "content": step.text or None}
        if step.calls:
            turn["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in step.calls
            ]
        out.append(turn)
        # No `is_error` flag on this wire format: the text says it.
        out.extend(
            {"role": "tool", "tool_call_id": c.id, "content": f"Error: {c.result}" if c.is_error else c.result}
            for c in step.calls
        )
    return out


# --- response -----------------------------------------------------------------------------------------------


class _Function(msgspec.Struct):
    name: str | None = None
    arguments: str | None = None


class _ToolCallDelta(msgspec.Struct):
    index: int | None = None
    id: str | None = None
    function: _Function | None = None


class _Delta(msgspec.Struct):
    content: str | None = None
    reasoning: str | None = None
    reasoning_content: str | None = None
    tool_calls: list[_ToolCallDelta] | None = None


class _Choice(msgspec.Struct):
    delta: _Delta | None = None
    finish_reason: str | None = None


class _Usage(msgspec.Struct):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class ErrorBody(msgspec.Struct):
    message: str | None = None
    code: int | str | None = None
    type: str | None = None


class ChatChunk(msgspec.Struct):
    """One `chat.completion.chunk` (or an in-stream `{"error": ...}` as OpenRouter sends them)."""

    choices: list[_Choice] | None = None
    usage: _Usage | None = None
    error: ErrorBody | None = None


decode_chunk = msgspec.json.Decoder(ChatChunk).decode

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool-calls",
    "function_call": "tool-calls",
    "content_filter": "content-filter",
}


class _Call:
    __slots__ = ("args", "done", "id", "name", "started")

    def __init__(self, call_id: str) -> None:
        self.id = call_id
        self.name = ""
        self.args: list[str] = []
        self.started = False
        self.done = False


class ChunkState:
    """Turns the chunks of one response into `ModelEvent`s; `finish()` closes the response."""

    def __init__(self, reasoning_field: ReasoningField | None) -> None:
        self._reasoning_first = reasoning_field != "reasoning_content"
        self._calls: list[_Call] = []
        self._by_index: dict[int, _Call] = {}
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self._relayed = False  # any event produced yet (after that, the attempt can no longer be retried)

    def feed(self, chunk: ChatChunk) -> list[ModelEvent]:
        events: list[ModelEvent] = []
        self._read_usage(chunk)
        for choice in chunk.choices or ():
            delta = choice.delta
            if delta is not None:
                # Servers that send both fields send the same text twice: read one, the other only as a fallback.
                if self._reasoning_first:
                    reasoning = delta.reasoning or delta.reasoning_content
                else:
                    reasoning = delta.reasoning_content or delta.reasoning
                if reasoning:
                    events.append(ModelReasoning(text=reasoning))
                if delta.content:
                    events.append(ModelText(text=delta.content))
                if delta.tool_calls:
                    for call_delta in delta.tool_calls:
                        self._tool_delta(call_delta, events)
            if choice.finish_reason:
                self.finish_reason = choice.finish_reason
                self._complete_calls(events)
        if events:
            self._relayed = True
        return events

    def interrupted(self, chunk: ChatChunk) -> list[ModelEvent]:
        """What is still owed when the stream fails with `chunk` (an error chunk): the usage it carries and a
        finish reason sent before it, as OpenRouter does (`finish_reason: "length"`, then the error with
        `usage`). Nothing before the first relayed event, so that a failed first attempt can still be retried."""
        if not self._relayed:
            return []
        self._read_usage(chunk)
        events: list[ModelEvent] = []
        if self.usage is not None:
            events.append(ModelUsage(usage=self.usage))
        reason = _FINISH.get(self.finish_reason or "")  # the error chunk's own `finish_reason: "error"` is not fed
        if reason is not None:
            events.append(ModelFinish(reason=reason))
        return events

    def _read_usage(self, chunk: ChatChunk) -> None:
        if chunk.usage is not None:
            self.usage = Usage(
                input_tokens=chunk.usage.prompt_tokens or 0, output_tokens=chunk.usage.completion_tokens or 0
            )

    def _tool_delta(self, delta: _ToolCallDelta, events: list[ModelEvent]) -> None:
        last = self._calls[-1] if self._calls else None
        call = self._by_index.get(delta.index) if delta.index is not None else last
        # A new id at a known index is a new call: Gemini numbers every parallel call 0 (or not at all).
        if call is None or (delta.id and delta.id != call.id) or call.done:
            call = _Call(delta.id or f"call_{len(self._calls) + 1}")
            self._calls.append(call)
            self._by_index[delta.index if delta.index is not None else len(self._calls) - 1] = call
        function = delta.function
        if function is not None and function.name and not call.name:
            call.name = function.name
        if function is not None and function.arguments:
            call.args.append(function.arguments)
            if call.started:
                events.append(ModelToolCallDelta(id=call.id, delta=function.arguments))
        if not call.started and call.name:
            call.started = True
            events.append(ModelToolCallStart(id=call.id, name=call.name))
            if call.args:
                events.append(ModelToolCallDelta(id=call.id, delta="".join(call.args)))

    def _complete_calls(self, events: list[ModelEvent]) -> None:
        for call in self._calls:
            if call.done:
                continue
            call.done = True
            if not call.started:
                call.started = True
                events.append(ModelToolCallStart(id=call.id, name=call.name or "unknown"))
            events.append(ModelToolCall(id=call.id, name=call.name or "unknown", arguments="".join(call.args) or "{}"))

    def finish(self) -> list[ModelEvent]:
        """The closing events: any calls not yet completed, usage if reported, then the finish reason."""
        events: list[ModelEvent] = []
        self._complete_calls(events)
        if self.usage is not None:
            events.append(ModelUsage(usage=self.usage))
        reason = _FINISH.get(self.finish_reason or "", "other")
        if self._calls and reason == "stop":
            reason = "tool-calls"  # Ollama and Gemini say "stop" after a tool call
        events.append(ModelFinish(reason=reason))
        return events
