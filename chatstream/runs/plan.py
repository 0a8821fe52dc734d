"""What a run is made of: the shared services (`RunDeps`), what to run (`RunSpec`), how the service launches
it (`RunPlan`) and where a client reads it (`RunHandle`).

Plain values, importing no other part of the run engine, so the executor, the approvals and the service can
all use them without importing each other.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

import msgspec

from chatstream.metrics import Metrics
from chatstream.models import ApprovalDecision, Conversation, Message, Mood, SuspendedRun, Workflow
from chatstream.providers.base import Provider
from chatstream.runs.registry import RunRegistry
from chatstream.settings import Settings
from chatstream.store.base import ConversationStore, DocumentStore
from chatstream.streams.base import StreamBuffer
from chatstream.tools.base import ToolRegistry

__all__ = ["RunDeps", "RunHandle", "RunPlan", "RunSpec", "TitleJob"]

TitleJob = Callable[[], Coroutine[Any, Any, str]]
"""Generates a new conversation's title while its first answer streams."""


def _memory_documents() -> DocumentStore:
    from chatstream.store.memory import MemoryDocumentStore

    return MemoryDocumentStore()


class RunDeps(msgspec.Struct, kw_only=True):
    """The shared services a run uses (one set per app)."""

    settings: Settings
    buffer: StreamBuffer
    batched: bool
    store: ConversationStore
    registry: RunRegistry
    tools: ToolRegistry
    system_prompt: Callable[[str, bool], str | None]
    metrics: Metrics = msgspec.field(default_factory=Metrics)
    documents: DocumentStore = msgspec.field(default_factory=_memory_documents)
    """Where the document tools keep what they write (`createDocument`, `updateDocument`, `requestSuggestions`)."""


class RunSpec(msgspec.Struct, frozen=True, kw_only=True):
    """What to run: who, where, with which model."""

    run_id: str
    conversation: Conversation
    user_id: str
    provider: str
    model: str
    message_id: str
    mood: Mood = "normal"
    web_search: bool = False
    tools_enabled: bool = True
    step: int = 0
    """Steps already taken (a resumed run continues counting)."""
    workflow: Workflow | None = None
    """A seed-003 workflow preset: its system text, tool list and step limit apply to every model step."""


class RunPlan(msgspec.Struct, frozen=True, kw_only=True):
    """Everything `RunService` launches a run with, once admission has decided what the run is."""

    spec: RunSpec
    provider: Provider
    new: bool = False
    """The run's conversation is new: stored at launch, and its history is `user_message` alone."""
    user_message: Message | None = None
    """The message this run answers, stored at launch (None when resuming: the answer continues)."""
    title: TitleJob | None = None
    resume: SuspendedRun | None = None
    """The suspended run this one continues, with `decisions` for its pending tool calls."""
    decisions: Sequence[ApprovalDecision] = ()
    base: Message | None = None
    """The stored answer this run continues (a resumed run carries on its parts and usage)."""
    before_start: Callable[[], Awaitable[object]] | None = None
    """Runs once the conversation is held and the limits admit the run, before anything is written."""
    supersedes: bool = False
    """A send: under `busy_policy="supersede"` a run still generating in the conversation is stopped (on any
    instance) and this one starts once it has stored its answer and let go."""
    rewind: Callable[[], Awaitable[str]] | None = None
    """Regenerate or edit: finds, once the conversation is held (and before the limits charge anything), the
    stored message from which history is removed before this run starts, or raises to refuse the request.
    The removal is one atomic store step; `user_message`, when given, takes the removed messages' place."""


class RunHandle(msgspec.Struct, frozen=True, kw_only=True):
    """Where a client reads the run: the conversation's stream, from the start."""

    conversation_id: str
    run_id: str
    message_id: str
    provider: str
    model: str
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    replay: bool = False
    """True when an idempotent retry was answered with an earlier run."""
