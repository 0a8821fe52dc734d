"""The JSON bodies the HTTP API answers with, and the events of the plain and seed-003 stream dialects.

The handlers build these as plain dicts (msgspec encodes them at the edge); these Structs are their typed
view, one per shape: the OpenAPI document is generated from them (`chatstream.api.openapi`) and the Python
client (`chatstream.client`) decodes into them. Fields that are sometimes absent have defaults, so decoding
never fails on what the server leaves out; unknown fields are ignored, so a newer server's additions do not
break an older client. `tests/api/test_openapi.py` checks real answers against them.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from chatstream.models import Conversation, Message, MessagePart, Mood, Role, Usage, Visibility

__all__ = [
    "AnswerSource",
    "ApiError",
    "ChatCreated",
    "ChatMessage",
    "ChatMessagePage",
    "ConversationDeleted",
    "ConversationPage",
    "ConversationUpdated",
    "DeletedChat",
    "DeletedChatInfo",
    "Health",
    "MessagePage",
    "ModelInfo",
    "ModelList",
    "PlainAnswer",
    "PlainDelta",
    "PlainDone",
    "PlainError",
    "PlainEvent",
    "PlainMetadata",
    "PlainReasoning",
    "PlainStatus",
    "PreferencesView",
    "ProviderInfo",
    "Readiness",
    "ResolvedModel",
    "Seed003ApprovalRequired",
    "Seed003Content",
    "Seed003End",
    "Seed003Error",
    "Seed003Event",
    "Seed003Start",
    "Seed003ToolCall",
    "Seed003ToolResult",
    "StopResult",
    "Truncated",
    "UnconfiguredProvider",
]


class _Body(msgspec.Struct, kw_only=True, frozen=True, rename="camel"):
    pass


class ApiError(_Body, frozen=True):
    """Every JSON error: `{"error": <message>}` plus, where they apply, `code` (a stable machine name), and on
    a 429 `message`, `retryAfter` (seconds) and `limit` (which limit). Other fields may accompany it
    (`details` on a validation error, `provider` on a provider error)."""

    error: str
    code: str | None = None
    message: str | None = None
    retry_after: int | None = None
    limit: str | None = None
    details: Any = None
    provider: str | None = None


class ConversationPage(_Body, frozen=True):
    """`GET /api/chat/conversations`: most recently updated first; `hasMore` says whether another page lies
    in the direction asked (`starting_after`: older, `ending_before`: newer)."""

    conversations: list[Conversation]
    has_more: bool


class MessagePage(_Body, frozen=True):
    """`GET /api/chat/messages`: the most recent `limit` messages (before `before`), oldest first;
    `hasMore` says whether older ones remain."""

    conversation_id: str
    messages: list[Message]
    has_more: bool


class ChatCreated(_Body, frozen=True):
    """`POST /api/chats` (seed 003): the new chat."""

    chat_id: str
    title: str | None
    """The title given, else null (one is generated from the first message)."""
    created_at: str
    """ISO 8601, UTC (`...Z`)."""


class ChatMessage(_Body, frozen=True):
    """A message of a seed-003 chat: its text as `content`, its full parts (AI SDK UIMessage parts) beside it."""

    id: str
    role: Role
    content: str
    created_at: str
    """ISO 8601, UTC (`...Z`)."""
    model_id: str | None = None
    """The model that wrote an answer; null for the user's messages."""
    parts: list[MessagePart] = []


class ChatMessagePage(_Body, frozen=True):
    """`GET /api/chats/{chatId}/messages`: the most recent `limit` messages (before `before`), oldest first;
    `hasMore` says whether older ones remain."""

    chat_id: str
    messages: list[ChatMessage]
    has_more: bool


class ConversationUpdated(_Body, frozen=True):
    conversation: Conversation


class ConversationDeleted(_Body, frozen=True):
    success: bool
    conversation_id: str


class Truncated(_Body, frozen=True):
    """`keep` most recent messages kept (`kept` of them were there), `deleted` removed."""

    success: bool
    conversation_id: str
    kept: int
    deleted: int


class StopResult(_Body, frozen=True):
    """`stopped` is false (and `runId` null) when no generation was running."""

    stopped: bool
    run_id: str | None
    thread_id: str


class DeletedChatInfo(_Body, frozen=True):
    id: str
    title: str | None
    user_id: str
    visibility: Visibility
    created_at: str
    """ISO 8601, UTC (`...Z`)."""


class DeletedChat(_Body, frozen=True):
    deleted_chat: DeletedChatInfo


class ResolvedModel(_Body, frozen=True):
    provider: str
    model: str


class PreferencesView(_Body, frozen=True):
    """The stored preferences (null where unset) and what a send naming no model resolves to now."""

    provider: str | None
    model: str | None
    mood: Mood | None
    resolved: ResolvedModel


class ProviderInfo(_Body, frozen=True):
    name: str
    default_model: str
    models: list[str]
    open_catalog: bool
    """Whether the provider serves models beyond `models` (any id it is given)."""


class ModelInfo(_Body, frozen=True):
    id: str
    """`provider/model`."""
    model: str
    provider: str
    reasoning: bool
    default: bool


class UnconfiguredProvider(_Body, frozen=True):
    name: str
    set: str
    """The environment variable that would enable it."""


class ModelList(_Body, frozen=True):
    default: ResolvedModel
    providers: list[ProviderInfo]
    models: list[ModelInfo]
    unconfigured: list[UnconfiguredProvider]


class AnswerSource(_Body, frozen=True):
    source_id: str
    url: str
    title: str | None = None


class PlainAnswer(_Body, frozen=True):
    """The non-streamed answer of a plain send (no `stream: true`, no `Accept: text/event-stream`). With
    `error` (status 502) the generation failed, and `response` is what was produced before it."""

    response: str
    sources: list[AnswerSource] = []
    conversation_id: str | None = None
    provider: str | None = None
    model: str | None = None
    usage: Usage | None = None
    finish_reason: str | None = None
    error: str | None = None


class Health(_Body, frozen=True):
    status: str


class Readiness(_Body, frozen=True):
    """`status` is `ready` (200), `unavailable` or `draining` (503); `checks` names each backend's state."""

    status: Literal["ready", "unavailable", "draining"]
    checks: dict[str, str]


# The plain dialect (SPEC §3.2): `data: {"type": ...}` frames.
class _PlainEvent(msgspec.Struct, tag_field="type", kw_only=True, frozen=True, rename="camel"):
    pass


class PlainMetadata(_PlainEvent, tag="metadata", frozen=True):
    """First: where the answer comes from."""

    conversation_id: str | None = None
    provider: str | None = None
    model: str | None = None


class PlainDelta(_PlainEvent, tag="delta", frozen=True):
    text: str


class PlainReasoning(_PlainEvent, tag="reasoning", frozen=True):
    text: str


class PlainStatus(_PlainEvent, tag="status", frozen=True):
    """A tool running, a web search; other fields may accompany it (`toolCallId`, `runId`)."""

    status: str
    tool: str | None = None


class PlainDone(_PlainEvent, tag="done", frozen=True):
    """Last: the whole answer."""

    response: str
    conversation_id: str | None = None
    provider: str | None = None
    model: str | None = None
    usage: Usage | None = None
    finish_reason: str | None = None
    sources: list[AnswerSource] = []


class PlainError(_PlainEvent, tag="error", frozen=True):
    error: str
    code: str | None = None


PlainEvent = PlainMetadata | PlainDelta | PlainReasoning | PlainStatus | PlainDone | PlainError


# The seed-003 dialect.
class _Seed003Event(msgspec.Struct, tag_field="type", kw_only=True, frozen=True, rename="camel"):
    pass


class Seed003Start(_Seed003Event, tag="start", frozen=True):
    message_id: str | None = None


class Seed003Content(_Seed003Event, tag="content", frozen=True):
    delta: str


class Seed003ToolCall(_Seed003Event, tag="tool_call", frozen=True):
    tool_name: str
    tool_args: Any = None


class Seed003ToolResult(_Seed003Event, tag="tool_result", frozen=True):
    """`result` is the tool's output; `{"error": ...}` when it failed, `{"denied": true}` when a human denied it."""

    tool_name: str | None = None
    result: Any = None


class Seed003ApprovalRequired(_Seed003Event, tag="approval_required", frozen=True):
    """Ours (the seed has no approval): the call waits for a human. `POST /api/chat/approve {runId, threadId:
    <chatId>, toolCallId, approved, dialect: "seed003"}` continues it; the stream then ends."""

    tool_call_id: str
    tool_name: str | None = None
    tool_args: Any = None
    run_id: str | None = None


class Seed003End(_Seed003Event, tag="end", frozen=True):
    message_id: str | None = None
    sources: list[AnswerSource] = []


class Seed003Error(_Seed003Event, tag="error", frozen=True):
    error: str
    """`stream_error` for a failed generation, else the error's code."""
    message: str


Seed003Event = (
    Seed003Start
    | Seed003Content
    | Seed003ToolCall
    | Seed003ToolResult
    | Seed003ApprovalRequired
    | Seed003End
    | Seed003Error
)
