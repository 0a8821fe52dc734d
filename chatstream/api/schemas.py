"""The four request shapes of `POST /api/chat` (SPEC §3.1), each one Struct, all normalised into `ChatRequest`.

Shapes are told apart in order: `parts` (seed 000), `messages` without `message` (AI SDK transport),
`message` as an object (ai-chatbot, seed 002), `message` as a string (plain, seed 001).
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import msgspec

from chatstream.errors import BadRequestError, PayloadTooLargeError
from chatstream.models import ApprovalDecision, ChatRequest, MessagePart, Mood, is_valid_id
from chatstream.settings import FILE_MEDIA_TYPES

if TYPE_CHECKING:
    from collections.abc import Collection

__all__ = ["ApproveBody", "Seed003Body", "check_id", "parse_chat_body", "parse_json"]

MAX_FILE_BYTES = 10 * 1024 * 1024
"""Largest file (decoded) a data URL may carry."""

MAX_JSON_DEPTH = 64
"""Deepest nesting of arrays and objects a request body may have (SPEC §3): deeper is a 400, never a
RecursionError on the way through decoding, conversion or re-encoding."""

_ALLOWED_PARTS = ("text", "file")


class _Selectors(msgspec.Struct, kw_only=True, rename="camel"):
    provider: str | None = None
    model: str | None = None
    mood: Mood | None = None
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
    conversation_id: str | None = None
    """The plain shape's name for `threadId`: a client mixing shapes still continues its conversation."""


class UIMessageIn(msgspec.Struct, kw_only=True):
    id: str | None = None
    role: Literal["system", "user", "assistant"]
    parts: list[dict[str, Any]] = []
    metadata: Any = None


class TransportBody(_Selectors, kw_only=True, rename="camel"):
    id: str
    messages: list[UIMessageIn]
    trigger: Literal["submit-message", "regenerate-message"] = "submit-message"
    message_id: str | None = None
    selected_chat_model: str | None = None
    """Seed 002's approval flow sends `messages` with its selectors: they mean what they do with `message`."""
    selected_visibility_type: Literal["public", "private"] | None = None


class ChatbotBody(_Selectors, kw_only=True, rename="camel"):
    id: str
    message: UIMessageIn
    selected_chat_model: str
    selected_visibility_type: Literal["public", "private"] = "private"
    messages: list[UIMessageIn] | None = None


class PlainBody(_Selectors, kw_only=True, rename="camel"):
    message: str
    conversation_id: str | None = None
    thread_id: str | None = None
    """The parts shape's name for `conversationId`: a client mixing shapes still continues its conversation."""
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
    dialect: Literal["ui", "plain", "seed003"] = "ui"
    """The stream dialect of the continuation: the AI SDK UI message stream, plain events, or seed-003 events."""


class Seed003Body(msgspec.Struct, kw_only=True, rename="camel"):
    content: str
    model_id: str | None = None
    """The model to answer with; absent: the workflow's, else the chat's."""
    user_id: str | None = None
    workflow_id: str | None = None
    web_search: bool = False
    """Our selector, as on every other shape: the web tools, whose results end up in `end.sources`."""


T = TypeVar("T")

_decoder = msgspec.json.Decoder()


def parse_json(body: bytes) -> Any:
    """Decode a JSON body; malformed, or nested deeper than `MAX_JSON_DEPTH`, is a `BadRequestError`."""
    try:
        obj = _decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise BadRequestError(f"invalid JSON body: {exc}") from exc
    except RecursionError as exc:
        # msgspec bounds its own recursion by the interpreter's limit (about 1,000 levels), far past ours.
        raise BadRequestError("JSON nested too deeply") from exc
    # Nesting N deep needs N opening brackets in the bytes, so a small body with at most MAX_JSON_DEPTH of
    # them (most sends: a few messages and a text) skips the walk. Past _COUNT_BELOW bytes counting costs
    # more than walking: a large body is mostly one base64 string, which the walk never looks into.
    kind = type(obj)
    if (
        (kind is dict or kind is list)
        and (len(body) > _COUNT_BELOW or body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH)
        and not _fits(obj, MAX_JSON_DEPTH)
    ):
        raise BadRequestError("JSON nested too deeply")
    return obj


_COUNT_BELOW = 16 * 1024
"""Bodies up to this size are bracket-counted before any walk (two `bytes.count`, ~0.4 ns a byte each)."""


def _fits(container: Any, budget: int) -> bool:
    """Whether `container` nests at most `budget` levels; recursion stops at `budget`, so it stays shallow."""
    if budget == 0:
        return False
    for value in container.values() if type(container) is dict else container:
        kind = type(value)
        if (kind is dict or kind is list) and not _fits(value, budget - 1):
            return False
    return True


def check_id(value: str | None, field: str) -> None:
    """Refuse a client-chosen id outside `chatstream.models.ID_GRAMMAR` with `400 {"error": "invalid <field>"}`.

    Called before anything is written: a refused id leaves nothing behind. None (an absent optional id) passes.
    """
    if value is not None and not is_valid_id(value):
        raise BadRequestError(f"invalid {field}")


def decode_body(raw: bytes, shape: type[T]) -> T:
    """A JSON body (empty: `{}`) as `shape`; malformed or mistyped is a `BadRequestError` naming the problem."""
    result: T = _convert(parse_json(raw) if raw.strip() else {}, shape)
    return result


def _convert(obj: Any, shape: Any) -> Any:
    try:
        return msgspec.convert(obj, shape)
    except msgspec.ValidationError as exc:
        raise BadRequestError(f"invalid request: {exc}") from exc


def _bare_media_type(value: str) -> str:
    """`Text/Plain; charset=utf-8` -> `text/plain`: parameters and case say nothing about the kind of file."""
    return value.partition(";")[0].strip().lower()


def check_data_url(url: str, media_type: str | None, allowed: Collection[str] = FILE_MEDIA_TYPES) -> None:
    """Files travel as base64 data URLs. The whole URL is checked, since providers get it verbatim: its media
    type is in `allowed` and agrees with the part's `media_type` (when given), all of its base64 is valid, and
    the decoded file is within `MAX_FILE_BYTES`."""
    header, sep, payload = url.partition(",")
    if not (url.startswith("data:") and sep and header.endswith(";base64")):
        raise BadRequestError("file url must be a base64 data URL (data:<mediaType>;base64,...)")
    declared = _bare_media_type(header[len("data:") : -len(";base64")])
    if declared not in allowed:
        raise BadRequestError(
            f"file media type {declared[:100]!r} is not allowed (allowed: {', '.join(sorted(allowed))})"
        )
    if media_type is not None and _bare_media_type(media_type) != declared:
        raise BadRequestError("file mediaType does not match the media type of its data URL")
    if len(payload) * 3 // 4 > MAX_FILE_BYTES:
        raise PayloadTooLargeError(f"file exceeds {MAX_FILE_BYTES} bytes")
    try:
        # All of it: a provider refuses a file whose base64 breaks anywhere, and by then the run has started.
        data = base64.b64decode(payload, validate=True)
    except ValueError as exc:  # binascii.Error, or a str that is not ASCII
        raise BadRequestError("file data URL is not valid base64") from exc
    if len(data) > MAX_FILE_BYTES:
        raise PayloadTooLargeError(f"file exceeds {MAX_FILE_BYTES} bytes")


def _content_parts(raw: list[PartIn], media_types: Collection[str]) -> tuple[MessagePart, ...]:
    parts = []
    for part in raw:
        if part.type == "text":
            if part.text is None:
                raise BadRequestError("text parts need a text field")
            parts.append(MessagePart(type="text", text=part.text))
        elif part.type == "file":
            if not part.url or not part.media_type:
                raise BadRequestError("file parts need mediaType and url")
            check_data_url(part.url, part.media_type, media_types)
            parts.append(MessagePart(type="file", media_type=part.media_type, url=part.url, filename=part.filename))
        else:
            raise BadRequestError(f"unsupported part type {part.type!r} (expected one of {list(_ALLOWED_PARTS)})")
    if not any(p.type == "text" and p.text for p in parts) and not any(p.type == "file" for p in parts):
        raise BadRequestError("parts must contain a text or file part")
    return tuple(parts)


def _ui_parts(message: UIMessageIn, media_types: Collection[str]) -> tuple[MessagePart, ...]:
    """User content from a UIMessage: text and file parts; everything else is client-side state."""
    wanted = [p for p in message.parts if isinstance(p, dict) and p.get("type") in _ALLOWED_PARTS]
    return _content_parts(_convert(wanted, list[PartIn]), media_types)


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
            tool_call_id, approval_id, reason = part.get("toolCallId"), approval.get("id"), approval.get("reason")
            # Typed here, since these dicts are the client's: a number where an id belongs is a 400, not a
            # value that breaks a comparison or a stored record further on.
            if tool_call_id is not None and not is_valid_id(tool_call_id):
                raise BadRequestError("invalid toolCallId")
            if approval_id is not None and not is_valid_id(approval_id):
                raise BadRequestError("invalid approval.id")
            if reason is not None and not isinstance(reason, str):
                raise BadRequestError("approval.reason must be a string")
            decisions.append(
                ApprovalDecision(
                    tool_call_id=tool_call_id,
                    approval_id=approval_id,
                    approved=approval.get("approved") is True,
                    reason=reason,
                )
            )
    return tuple(decisions)


def _continuation(thread_id: str | None, conversation_id: str | None) -> str | None:
    """The conversation a parts or plain send continues: `threadId` and `conversationId` mean the same."""
    check_id(thread_id, "threadId")
    check_id(conversation_id, "conversationId")
    if thread_id is not None and conversation_id is not None and thread_id != conversation_id:
        raise BadRequestError("threadId and conversationId name different conversations")
    return thread_id if thread_id is not None else conversation_id


def parse_chat_body(obj: Any, *, accept_sse: bool, media_types: Collection[str] = FILE_MEDIA_TYPES) -> ChatRequest:
    """Decide the shape and normalise it. Raises `BadRequestError` with a message a client can act on.

    `media_types` are those a file part may carry (`Settings.file_media_types`). Every id the request names
    is checked against `ID_GRAMMAR` here, before anything is stored."""
    if not isinstance(obj, dict):
        raise BadRequestError("request body must be a JSON object")
    if "system" in obj:
        raise BadRequestError("system prompts are set by the server, not the client")
    if "parts" in obj:
        if not isinstance(obj["parts"], list) or not obj["parts"]:
            raise BadRequestError("parts must be a non-empty array")
        parts_body: PartsBody = _convert(obj, PartsBody)
        conversation_id = _continuation(parts_body.thread_id, parts_body.conversation_id)
        return ChatRequest(
            parts=_content_parts(parts_body.parts, media_types),
            conversation_id=conversation_id,
            **_selectors(parts_body),
        )
    if "messages" in obj and "message" not in obj:
        transport: TransportBody = _convert(obj, TransportBody)
        if not transport.messages:
            raise BadRequestError("messages must be a non-empty array")
        last = transport.messages[-1]
        check_id(transport.id, "id")
        check_id(transport.message_id, "messageId")
        check_id(last.id, "messages[].id")
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
        regenerate = None
        if transport.trigger == "regenerate-message":
            # The client drops the answer it regenerates and sends the history before it: the server removes
            # that answer (named by `messageId`, else the last one) and whatever follows it.
            regenerate = transport.message_id or ""
        return ChatRequest(
            parts=_ui_parts(last, media_types),
            conversation_id=transport.id,
            message_id=last.id,
            metadata=last.metadata,
            regenerate=regenerate,
            **_selectors(transport),
        )
    message = obj.get("message")
    if isinstance(message, dict):
        chatbot: ChatbotBody = _convert(obj, ChatbotBody)
        if chatbot.message.role != "user":
            raise BadRequestError("message must have role user")
        check_id(chatbot.id, "id")
        check_id(chatbot.message.id, "message.id")
        return ChatRequest(
            parts=_ui_parts(chatbot.message, media_types),
            conversation_id=chatbot.id,
            message_id=chatbot.message.id,
            visibility=chatbot.selected_visibility_type,
            metadata=chatbot.message.metadata,
            **{**_selectors(chatbot), "model": chatbot.selected_chat_model},
        )
    if isinstance(message, str):
        plain: PlainBody = _convert(obj, PlainBody)
        if not plain.message.strip():
            raise BadRequestError("message must not be empty")
        conversation_id = _continuation(plain.thread_id, plain.conversation_id)
        parts = [MessagePart(type="text", text=plain.message)]
        if plain.image:
            if plain.image.startswith("data:"):
                url = plain.image
                media_type = plain.image_mime_type or _bare_media_type(url[len("data:") :].partition(",")[0])
            else:
                media_type = plain.image_mime_type or "image/png"
                url = f"data:{media_type};base64,{plain.image}"
            check_data_url(url, media_type, media_types)
            parts.append(MessagePart(type="file", media_type=media_type, url=url))
        return ChatRequest(
            parts=tuple(parts),
            conversation_id=conversation_id,
            dialect="plain",
            stream=plain.stream or accept_sse,
            **_selectors(plain),
        )
    raise BadRequestError("parts must be a non-empty array")


def _selectors(body: _Selectors) -> dict[str, Any]:
    selected: dict[str, Any] = {
        "provider": body.provider,
        "model": body.model,
        "mood": body.mood,
        "web_search": body.web_search,
        "channel": body.channel,
    }
    if isinstance(body, TransportBody):
        if body.model is None and body.selected_chat_model is not None:
            selected["model"] = body.selected_chat_model
        if body.selected_visibility_type is not None:
            selected["visibility"] = body.selected_visibility_type
    return selected
