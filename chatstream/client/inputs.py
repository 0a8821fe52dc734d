"""What the client sends: the four shapes of `POST /api/chat` and the approval, as typed Structs.

They encode to the bodies the OpenAPI document names (`ChatSendParts`, ..., `ChatApproveInput`); fields left
at their defaults are not sent, so the server's defaults apply. `ChatSendParts.of("Hello")` is the short way
to send a text.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

__all__ = [
    "ChatApproveInput",
    "ChatSendChatbot",
    "ChatSendInput",
    "ChatSendParts",
    "ChatSendPlain",
    "ChatSendTransport",
    "ContentPart",
    "FilePart",
    "TextPart",
    "UIMessage",
]

Mood = Literal["serious", "friendly", "normal"]


class TextPart(msgspec.Struct, tag="text", tag_field="type", kw_only=True, frozen=True):
    text: str


class FilePart(
    msgspec.Struct, tag="file", tag_field="type", kw_only=True, frozen=True, rename="camel", omit_defaults=True
):
    """A file as a base64 data URL (`data:image/png;base64,...`) of one of the server's allowed media types."""

    media_type: str
    url: str
    filename: str | None = None


ContentPart = TextPart | FilePart


class _Selectors(msgspec.Struct, kw_only=True, frozen=True, rename="camel", omit_defaults=True):
    provider: str | None = None
    """A configured provider (`GET /api/models`), or `"default"` for the user's preference."""
    model: str | None = None
    """`gpt-4o`, or `provider/model`."""
    mood: Mood | None = None
    web_search: bool = False
    channel: str | None = None


class ChatSendParts(_Selectors, frozen=True):
    """Seed 000: the message as content parts; `thread_id` continues a conversation."""

    parts: list[ContentPart]
    thread_id: str | None = None

    @classmethod
    def of(cls, text: str, *, thread_id: str | None = None, **selectors: Any) -> ChatSendParts:
        return cls(parts=[TextPart(text=text)], thread_id=thread_id, **selectors)


class UIMessage(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """An AI SDK UIMessage: `parts` as the AI SDK shapes them (`{"type": "text", "text": ...}`, tool parts)."""

    role: Literal["system", "user", "assistant"]
    parts: list[dict[str, Any]] = []
    id: str | None = None
    metadata: Any = None


class ChatSendTransport(_Selectors, frozen=True):
    """What the AI SDK's `DefaultChatTransport` sends: the conversation `id` and its messages, the new one last."""

    id: str
    messages: list[UIMessage]
    trigger: Literal["submit-message", "regenerate-message"] = "submit-message"
    message_id: str | None = None


class ChatSendChatbot(_Selectors, frozen=True):
    """The Vercel ai-chatbot's body (seed 002): one new user message and the model it chose."""

    id: str
    message: UIMessage
    selected_chat_model: str
    selected_visibility_type: Literal["public", "private"] = "private"


class ChatSendPlain(_Selectors, frozen=True):
    """Seed 001: a plain text message; its answer streams as plain events (`chatstream.protocol.bodies`)."""

    message: str
    conversation_id: str | None = None
    image: str | None = None
    """Base64, or a data URL."""
    image_mime_type: str | None = None
    stream: bool = True


ChatSendInput = ChatSendParts | ChatSendTransport | ChatSendChatbot | ChatSendPlain


class ChatApproveInput(msgspec.Struct, kw_only=True, frozen=True, rename="camel", omit_defaults=True):
    """Approve (or deny) the pending tool call `tool_call_id` (None: every pending call) of a suspended run."""

    run_id: str
    thread_id: str
    approved: bool
    tool_call_id: str | None = None
    reason: str | None = None
