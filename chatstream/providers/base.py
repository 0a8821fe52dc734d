"""The provider contract: a request in, a stream of model events out. No Litestar, no HTTP layer here.

Adapters translate their wire format into `ModelEvent`s and their exceptions into `chatstream.errors.ProviderError`
subclasses; vendor SDK types never leave the adapter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from chatstream.models import FinishReason, Message, Usage

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = [
    "ModelEvent",
    "ModelFinish",
    "ModelReasoning",
    "ModelReasoningEnd",
    "ModelReasoningSignature",
    "ModelText",
    "ModelToolCall",
    "ModelToolCallDelta",
    "ModelToolCallStart",
    "ModelUsage",
    "Provider",
    "ProviderRequest",
    "ToolSpec",
]


class ToolSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A tool as the model sees it."""

    name: str
    description: str
    parameters: dict[str, Any]
    """JSON schema of the input object."""


class ProviderRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One model call: the conversation so far (stored messages, incl. the assistant message in progress
    whose tool parts carry results) and the tools on offer."""

    model: str
    messages: tuple[Message, ...]
    system: str | None = None
    tools: tuple[ToolSpec, ...] = ()
    max_output_tokens: int | None = None


class _ModelEvent(msgspec.Struct, tag_field="kind", frozen=True, kw_only=True):
    pass


class ModelText(_ModelEvent, tag="text", frozen=True):
    text: str


class ModelReasoning(_ModelEvent, tag="reasoning", frozen=True):
    text: str


class ModelReasoningSignature(_ModelEvent, tag="reasoning-signature", frozen=True):
    """Anthropic's thinking signature (or redacted thinking data), to be sent back on the next turn."""

    signature: str
    redacted: bool = False


class ModelReasoningEnd(_ModelEvent, tag="reasoning-end", frozen=True):
    """The reasoning block in progress is complete: reasoning after it is a new part. Anthropic requires each
    `thinking` and `redacted_thinking` block back as it came, so blocks in a row must not be merged."""


class ModelToolCallStart(_ModelEvent, tag="tool-call-start", frozen=True):
    id: str
    name: str


class ModelToolCallDelta(_ModelEvent, tag="tool-call-delta", frozen=True):
    id: str
    delta: str


class ModelToolCall(_ModelEvent, tag="tool-call", frozen=True):
    """A complete tool call; `arguments` is the raw JSON text the model produced (may be invalid)."""

    id: str
    name: str
    arguments: str


class ModelUsage(_ModelEvent, tag="usage", frozen=True):
    usage: Usage


class ModelFinish(_ModelEvent, tag="finish", frozen=True):
    reason: FinishReason


ModelEvent = (
    ModelText
    | ModelReasoning
    | ModelReasoningSignature
    | ModelReasoningEnd
    | ModelToolCallStart
    | ModelToolCallDelta
    | ModelToolCall
    | ModelUsage
    | ModelFinish
)


class Provider(Protocol):
    """An LLM backend."""

    name: str

    def stream(self, request: ProviderRequest) -> AsyncIterator[ModelEvent]:
        """Stream one model response. Raises `ProviderError` subclasses; retries only before the first event."""
        ...

    async def aclose(self) -> None: ...
