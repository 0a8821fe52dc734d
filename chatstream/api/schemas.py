"""The four request shapes of `POST /api/chat` (SPEC §3.1), each one Struct, all normalised into `ChatRequest`.

Shapes are told apart in order: `parts` (seed 000), `messages` without `message` (AI SDK transport),
`message` as an object (ai-chatbot, seed 002), `message` as a string (plain, seed 001).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Literal

import msgspec

from chatstream.errors import BadRequestError, PayloadTooLargeError
from chatstream.models import ApprovalDecision, ChatRequest, MessagePart, Mood

__all__ = ["ApproveBody", "Seed003Body", "parse_chat_body", "parse_json"]

MAX_FILE_BYTES = 10 * 1024 * 1024
"""Largest file (decoded) a data URL may carry."""

_ALLOWED_PARTS = ("text", "file")


class _Selectors(msgspec.Struct, kw_only=True, rename="camel"):
    provider: str | None = None
    model: str | None = None
    mood: Mood = "normal"
    web_search: bool = False
    channel: str = "api"


class PartIn(msgspec.Struct, kw_only=True, rename="camel"):
    type: str
    text: str | None = None
    media_type: str | None = None
    url: str | None = None
    filename: str | None = None


class PartsBody(_Selectors, kw_only=True, rename="camel"):
    parts: list[PartIn]
    thread_id: str | None = None


class UIMessageIn(msgspec.Struct, kw_only=True):
    id: str | None = None
    role: Literal["system", "user", "assistant"]
    parts: list[dict[str, Any]] = []
    metadata: Any = None


class TransportBody(_Selectors, kw_only=True, rename="camel"):
    id: str
    messages: list[UIMessageIn]
    trigger: str = "submit-message"
    message_id: str | None = None


class ChatbotBody(_Selectors, kw_only=True, rename="camel"):
    id: str
    message: UIMessageIn
    selected_chat_model: str
    selected_visibility_type: Literal["public", "private"] = "private"
    messages: list[UIMessageIn] | None = None


class PlainBody(_Selectors, kw_only=True, rename="camel"):
    message: str
    conversation_id: str | None = None
    image: str | None = None
    image_mime_type: str | None = None
    stream: bool = False


class ApproveBody(msgspec.Struct, kw_only=True, rename="camel"):
    run_id: str | None = None
    thread_id: str | None = None
    tool_call_id: str | None = None
    approved: bool | None = None
    message_id: str | None = None
    reason: str | None = None


class Seed003Body(msgspec.Struct, kw_only=True, rename="camel"):
    content: str
    model_id: str
    user_id: str | None = None
    workflow_id: str | None = None


_decoder = msgspec.json.Decoder()


def parse_json(body: bytes) -> Any:
    try:
        return _decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise BadRequestError(f"invalid JSON body: {exc}") from exc


def _convert(obj: Any, shape: Any) -> Any:
    try:
        return msgspec.convert(obj, shape)
    except msgspec.ValidationError as exc:
        raise BadRequestError(f"invalid request: {exc}") from exc


def check_data_url(url: str) -> None:
    """Files travel as base64 data URLs; they must be well-formed and within the size limit."""
    header, sep, payload = url.partition(",")
    if not (url.startswith("data:") and sep and header.endswith(";base64")):
        raise BadRequestError("file url must be a base64 data URL (data:<mediaType>;base64,...)")
    if len(payload) * 3 // 4 > MAX_FILE_BYTES:
        raise PayloadTooLargeError(f"file exceeds {MAX_FILE_BYTES} bytes")
    try:
        base64.b64decode(payload[: 4096 - 4096 % 4] or "", validate=True)
    except binascii.Error as exc:
        raise BadRequestError("file data URL is not valid base64") from exc


def _content_parts(raw: list[PartIn]) -> tuple[MessagePart, ...]:
    parts = []
    for part in raw:
        if part.type == "text":
            if part.text is None:
                raise BadRequestError("text parts need a text field")
            parts.append(MessagePart(type="text", text=part.text))
        elif part.type == "file":
            if not part.url or not part.media_type:
                raise BadRequestError("file parts need mediaType and url")
            check_data_url(part.url)
            parts.append(MessagePart(type="file", media_type=part.media_type, url=part.url, filename=part.filename))
        else:
            raise BadRequestError(f"unsupported part type {part.type!r} (expected one of {list(_ALLOWED_PARTS)})")
    if not any(p.type == "text" and p.text for p in parts) and not any(p.type == "file" for p in parts):
        raise BadRequestError("parts must contain a text or file part")
    return tuple(parts)


def _ui_parts(message: UIMessageIn) -> tuple[MessagePart, ...]:
    """User content from a UIMessage: text and file parts; everything else is client-side state."""
    wanted = [p for p in message.parts if isinstance(p, dict) and p.get("type") in _ALLOWED_PARTS]
    return _content_parts(_convert(wanted, list[PartIn]))


def _approvals(message: UIMessageIn) -> tuple[ApprovalDecision, ...]:
    decisions = []
    for part in message.parts:
        approval = part.get("approval") if isinstance(part, dict) else None
        if (
            isinstance(part, dict)
            and str(part.get("type", "")).startswith("tool-")
            and part.get("state") == "approval-responded"
            and isinstance(approval, dict)
        ):
            decisions.append(
                ApprovalDecision(
                    tool_call_id=part.get("toolCallId"),
                    approval_id=approval.get("id"),
                    approved=approval.get("approved") is True,
                    reason=approval.get("reason"),
                )
            )
    return tuple(decisions)


def parse_chat_body(obj: Any, *, accept_sse: bool) -> ChatRequest:
    """Decide the shape and normalise it. Raises `BadRequestError` with a message a client can act on."""
    if not isinstance(obj, dict):
        raise BadRequestError("request body must be a JSON object")
    if "system" in obj:
        raise BadRequestError("system prompts are set by the server, not the client")
    if "parts" in obj:
        if not isinstance(obj["parts"], list) or not obj["parts"]:
            raise BadRequestError("parts must be a non-empty array")
        parts_body: PartsBody = _convert(obj, PartsBody)
        return ChatRequest(
            parts=_content_parts(parts_body.parts), conversation_id=parts_body.thread_id, **_selectors(parts_body)
        )
    if "messages" in obj and "message" not in obj:
        transport: TransportBody = _convert(obj, TransportBody)
        if not transport.messages:
            raise BadRequestError("messages must be a non-empty array")
        last = transport.messages[-1]
        if last.role == "assistant":
            approvals = _approvals(last)
            if not approvals:
                raise BadRequestError("the last message must be the user's, or carry tool approval responses")
            return ChatRequest(
                parts=(),
                conversation_id=transport.id,
                message_id=last.id or transport.message_id,
                approvals=approvals,
                **_selectors(transport),
            )
        if last.role != "user":
            raise BadRequestError("the last message must be the user's")
        return ChatRequest(
            parts=_ui_parts(last), conversation_id=transport.id, message_id=last.id, **_selectors(transport)
        )
    message = obj.get("message")
    if isinstance(message, dict):
        chatbot: ChatbotBody = _convert(obj, ChatbotBody)
        if chatbot.message.role != "user":
            raise BadRequestError("message must have role user")
        return ChatRequest(
            parts=_ui_parts(chatbot.message),
            conversation_id=chatbot.id,
            message_id=chatbot.message.id,
            visibility=chatbot.selected_visibility_type,
            **{**_selectors(chatbot), "model": chatbot.selected_chat_model},
        )
    if isinstance(message, str):
        plain: PlainBody = _convert(obj, PlainBody)
        if not plain.message.strip():
            raise BadRequestError("message must not be empty")
        parts = [MessagePart(type="text", text=plain.message)]
        if plain.image:
            media_type = plain.image_mime_type or "image/png"
            url = plain.image if plain.image.startswith("data:") else f"data:{media_type};base64,{plain.image}"
            check_data_url(url)
            parts.append(MessagePart(type="file", media_type=media_type, url=url))
        return ChatRequest(
            parts=tuple(parts),
            conversation_id=plain.conversation_id,
            dialect="plain",
            stream=plain.stream or accept_sse,
            **_selectors(plain),
        )
    raise BadRequestError("parts must be a non-empty array")


def _selectors(body: _Selectors) -> dict[str, Any]:
    return {
        "provider": body.provider,
        "model": body.model,
        "mood": body.mood,
        "web_search": body.web_search,
        "channel": body.channel,
    }
