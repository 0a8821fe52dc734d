"""Wire-neutral reading of stored messages, shared by the adapters' request mappers.

An assistant message may hold several steps (split at `step-start` parts); each step is reasoning, text and
tool calls, and a tool part whose state carries an output stands for both the call and its result.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

import msgspec

# msgspec resolves Struct annotations at runtime, so `MessagePart` (a field type below) is a real import.
from chatstream.models import MessagePart

if TYPE_CHECKING:
    from chatstream.models import Message

__all__ = ["AssistantStep", "ToolExchange", "assistant_steps", "decode_text_file", "parse_data_url"]

_JSON = msgspec.json.Encoder()

DENIED = "The user denied this tool call."
INCOMPLETE = "The tool call did not complete; no result is available."


class ToolExchange(msgspec.Struct, kw_only=True):
    """One tool call the model made, and what the model is told came back."""

    id: str
    name: str
    input: Any
    result: str
    is_error: bool = False

    @property
    def arguments(self) -> str:
        return _JSON.encode(self.input if self.input is not None else {}).decode()


class AssistantStep(msgspec.Struct, kw_only=True):
    reasoning: list[MessagePart] = msgspec.field(default_factory=list)
    text: str = ""
    calls: list[ToolExchange] = msgspec.field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.reasoning or self.text or self.calls)


def assistant_steps(message: Message) -> list[AssistantStep]:
    """The steps of one assistant message, in order; empty steps dropped."""
    steps = [AssistantStep()]
    for part in message.parts:
        step = steps[-1]
        if part.type == "step-start":
            if not step.empty:
                steps.append(AssistantStep())
        elif part.type == "text" and part.text:
            step.text += part.text
        elif part.type == "reasoning":
            step.reasoning.append(part)
        elif part.tool_name and part.tool_call_id:
            step.calls.append(_exchange(part))
    return [s for s in steps if not s.empty]


def _exchange(part: MessagePart) -> ToolExchange:
    name = part.tool_name or "tool"
    call_id = part.tool_call_id or ""
    state = part.state or ""
    if state == "output-available":
        output = part.output
        result = output if isinstance(output, str) else _JSON.encode(output).decode()
        return ToolExchange(id=call_id, name=name, input=part.input, result=result)
    if state == "output-error":
        return ToolExchange(id=call_id, name=name, input=part.input, result=part.error_text or "error", is_error=True)
    denied = state == "output-denied" or (
        state == "approval-responded" and part.approval is not None and part.approval.get("approved") is False
    )
    if denied:
        reason = part.approval.get("reason") if part.approval else None
        return ToolExchange(id=call_id, name=name, input=part.input, result=f"{DENIED} {reason or ''}".strip())
    # A call without a result (an interrupted run): every wire format rejects an unanswered call, so the
    # model is told plainly that there is no result rather than the call being silently dropped.
    return ToolExchange(id=call_id, name=name, input=part.input, result=INCOMPLETE, is_error=True)


def parse_data_url(url: str) -> tuple[str, str] | None:
    """`data:<media type>;base64,<data>` -> (media type, base64 data); None for anything else."""
    if not url.startswith("data:"):
        return None
    header, sep, data = url[5:].partition(",")
    if not sep or not header.endswith(";base64"):
        return None
    return header[: -len(";base64")].split(";", 1)[0] or "application/octet-stream", data


def decode_text_file(data: str) -> str | None:
    """The text of a base64 text attachment, or None when it is not valid UTF-8 base64."""
    try:
        return base64.b64decode(data, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
