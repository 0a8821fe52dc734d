"""Domain records shared by every layer. Only the stdlib and msgspec here.

Stored records follow msgspec's schema-evolution rules: new fields get defaults, field types never change,
and nothing stored is `array_like`. Field names are camelCase on the wire (`rename="camel"`), matching the
AI SDK's UIMessage so stored parts go back to clients unchanged.
"""

from __future__ import annotations

import itertools
import os
import re
import time
import uuid
from typing import Any, Literal

import msgspec

__all__ = [
    "ID_GRAMMAR",
    "ChatRequest",
    "Conversation",
    "Document",
    "DocumentKind",
    "FinishReason",
    "Message",
    "MessagePart",
    "PendingToolCall",
    "Preferences",
    "Principal",
    "Role",
    "Suggestion",
    "SuspendedRun",
    "Usage",
    "Vote",
    "Workflow",
    "is_valid_id",
    "new_id",
    "now_ms",
]

Role = Literal["system", "user", "assistant"]
Visibility = Literal["public", "private"]
Mood = Literal["serious", "friendly", "normal"]
DocumentKind = Literal["text", "code", "sheet", "image"]
FinishReason = Literal["stop", "length", "content-filter", "tool-calls", "error", "interrupted", "other"]


ID_GRAMMAR = "[A-Za-z0-9._:-]{1,128}"
"""The one grammar of every client-chosen id (thread, chat, conversation, message, run, tool call), SPEC §3.

Ids travel where arbitrary text is dangerous or breaks things: response headers (`X-Thread-Id`, where CR/LF
would split the response and non-Latin-1 cannot be encoded), Redis keys (`{prefix}:{kind}:{id}`, where `{`
`}` would change a cluster hash tag), URL paths (`/` and `%`), and log lines. So: ASCII letters, digits and
`. _ : -`, 1 to 128 characters. The server's own ids (`new_id`) match it too.
"""

_ID = re.compile(ID_GRAMMAR)


def is_valid_id(value: object) -> bool:
    """Whether `value` is a string in `ID_GRAMMAR` (whole-string match: no trailing newline slips through)."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None


_PROCESS = os.urandom(8).hex()
_counter = itertools.count()


def new_id(prefix: str = "") -> str:
    """A unique id; `prefix` makes ids self-describing in logs (`run-…`, `msg-…`). Without a prefix, a UUID4.

    Prefixed ids are a random per-process part plus a counter: unique across instances without a
    `urandom` call per id (a few per request add up on the hot path of starting runs).
    """
    if not prefix:
        return str(uuid.uuid4())
    return f"{prefix}{_PROCESS}{next(_counter):x}"


def now_ms() -> int:
    return int(time.time() * 1000)


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling: resolved from a token, a JWT, or the host's `authenticate` callable."""

    user_id: str
    tier: str = "free"


class Usage(msgspec.Struct, frozen=True, kw_only=True, rename="camel", omit_defaults=True):
    input_tokens: int = 0
    output_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
        )


class MessagePart(msgspec.Struct, frozen=True, kw_only=True, rename="camel", omit_defaults=True):
    """One part of a message, shaped like an AI SDK UIMessage part.

    `type` is `text`, `reasoning`, `file`, `source-url`, `step-start`, `data-<name>` or `tool-<toolName>`; tool
    type names are open-ended, so this is one Struct with optional fields rather than a tagged union.
    """

    type: str
    text: str | None = None
    media_type: str | None = None
    url: str | None = None
    filename: str | None = None
    tool_call_id: str | None = None
    state: str | None = None
    input: Any = None
    output: Any = None
    error_text: str | None = None
    approval: dict[str, Any] | None = None
    data: Any = None
    provider_metadata: dict[str, Any] | None = None
    source_id: str | None = None
    """`source-url` parts (citations): the source's id; its `url` and `title` are the fields of those names."""
    title: str | None = None

    @property
    def tool_name(self) -> str | None:
        return self.type[5:] if self.type.startswith("tool-") else None


class Message(msgspec.Struct, frozen=True, kw_only=True, rename="camel", omit_defaults=True):
    """A stored chat message."""

    id: str
    conversation_id: str
    role: Role
    parts: tuple[MessagePart, ...] = ()
    created_at: int = msgspec.field(default_factory=now_ms)
    provider: str | None = None
    model: str | None = None
    usage: Usage | None = None
    finish_reason: str | None = None
    error: str | None = None
    run_id: str | None = None
    metadata: Any = None
    """The client's own message metadata (an AI SDK UIMessage's `metadata`), stored and returned as sent."""

    @property
    def text(self) -> str:
        return "".join(p.text or "" for p in self.parts if p.type == "text")


class Conversation(msgspec.Struct, frozen=True, kw_only=True, rename="camel", omit_defaults=True):
    """A stored conversation (a thread, a chat)."""

    id: str
    user_id: str
    title: str | None = None
    title_source: Literal["heuristic", "generated", "user"] | None = None
    """Where `title` came from: the heuristic one is replaced by the generated one when it lands; a title the
    user set (`PATCH`) is never replaced."""
    channel: str = "api"
    visibility: Visibility = "private"
    created_at: int = msgspec.field(default_factory=now_ms)
    updated_at: int = msgspec.field(default_factory=now_ms)
    provider: str | None = None
    model: str | None = None
    pending_run_id: str | None = None
    """A run suspended for tool approval; a new message supersedes it (its calls count as denied)."""


class Vote(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """A user's vote on an assistant message, in the Vercel chatbot's shape (`GET /api/vote`)."""

    chat_id: str
    message_id: str
    is_upvoted: bool


class Preferences(msgspec.Struct, frozen=True, kw_only=True, rename="camel", omit_defaults=True):
    """A user's defaults: what `provider: "default"` (or a send naming no model) resolves to."""

    user_id: str
    provider: str | None = None
    model: str | None = None
    mood: Mood | None = None
    updated_at: int = msgspec.field(default_factory=now_ms)


class Workflow(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """A seed-003 workflow preset (`CHAT_WORKFLOWS`), chosen by a message's `workflowId`.

    Its `system` text is added to the system prompt, `tools` (names) restricts the tools offered, `provider` and
    `model` apply unless the request names a model, and `max_steps` lowers the run's step limit. A run suspended
    for approval keeps it (`SuspendedRun.workflow`), so the continuation runs under the same preset.
    """

    id: str
    """A UUID."""
    name: str
    system: str
    tools: tuple[str, ...]
    provider: str | None = None
    model: str | None = None
    max_steps: int | None = None


class ChatRequest(msgspec.Struct, frozen=True, kw_only=True):
    """The one internal form every request shape of `POST /api/chat` normalises into."""

    parts: tuple[MessagePart, ...]
    conversation_id: str | None = None
    message_id: str | None = None
    provider: str | None = None
    model: str | None = None
    mood: Mood | None = None
    """None: the user's preferred mood, else `normal`."""
    web_search: bool = False
    channel: str = "api"
    visibility: Visibility = "private"
    dialect: Literal["ui", "plain", "seed003"] = "ui"
    stream: bool = True
    approvals: tuple[ApprovalDecision, ...] = ()
    """Tool approval decisions carried by an AI SDK request (`approval-responded` tool parts)."""
    metadata: Any = None
    """The user message's own metadata (AI SDK UIMessage `metadata`), stored with it."""
    regenerate: str | None = None
    """Generate this answer anew (`trigger: "regenerate-message"`): the id of the assistant message to replace,
    or `""` for the conversation's last answer. The answer and everything after it are removed first."""
    workflow: Workflow | None = None
    """The seed-003 workflow preset the run follows (system text, tools, step limit)."""


class ApprovalDecision(msgspec.Struct, frozen=True, kw_only=True):
    tool_call_id: str | None = None
    approval_id: str | None = None
    approved: bool = False
    reason: str | None = None


class PendingToolCall(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """A tool call the model made that waits for a human decision."""

    tool_call_id: str
    tool_name: str
    input: Any = None
    approval_id: str | None = None
    needs_approval: bool = True


class SuspendedRun(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """A run paused for tool approval; everything needed to resume it on any instance.

    The assistant message produced so far (with its tool parts in `approval-requested` state) is stored
    as a normal message under `message_id`; this record holds the rest of the loop's state.
    """

    run_id: str
    conversation_id: str
    user_id: str
    message_id: str
    pending: tuple[PendingToolCall, ...]
    step: int
    provider: str
    model: str
    mood: Mood = "normal"
    web_search: bool = False
    created_at: int = msgspec.field(default_factory=now_ms)
    workflow: Workflow | None = None
    """The workflow preset the run follows; the continuation follows it too."""


class Document(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """One version of a document (an artifact the document tools write, or a client saves), in the Vercel
    chatbot's shape. A document is all the versions with its `id`, oldest first; `created_at` (epoch ms)
    tells them apart, so a store keeps it strictly increasing per document."""

    id: str
    created_at: int
    title: str
    content: str | None
    kind: DocumentKind
    user_id: str


class Suggestion(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """An edit the model suggests for a document version (`requestSuggestions`), in the chatbot's shape."""

    id: str
    document_id: str
    document_created_at: int
    """The version it was made for: deleting that version (`DELETE /api/document?timestamp=`) deletes it."""
    original_text: str
    suggested_text: str
    description: str | None
    user_id: str
    is_resolved: bool = False
    created_at: int = msgspec.field(default_factory=now_ms)
