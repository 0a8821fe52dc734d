"""Builds the stored assistant message from what a run produces, part by part."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from chatstream.models import Message, MessagePart, Usage

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["MessageBuilder"]


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
