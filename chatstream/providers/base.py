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
    "OutputSchema",
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


class OutputSchema(msgspec.Struct, frozen=True, kw_only=True):
    """Structured output: the answer is one JSON object matching `schema`.

    Whatever the wire format asks for it with (OpenAI's `response_format: json_schema`, Anthropic's forced
    tool call), the adapter streams the object's JSON text as `ModelText`, so a caller reads every provider's
    structured answer the same way (and still validates it: a model may break the schema)."""

    name: str
    """`[A-Za-z0-9_-]{1,64}`: the schema's name on the wire (OpenAI's `json_schema.name`, Anthropic's tool)."""
    schema: dict[str, Any]
    """JSON schema of the object: `type: object`, every property required, `additionalProperties: false`
    (what OpenAI's strict mode demands)."""
    description: str | None = None


class ProviderRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One model call: the conversation so far (stored messages, incl. the assistant message in progress
    whose tool parts carry results) and the tools on offer."""

    model: str
    messages: tuple[Message, ...]
    system: str | None = None
    tools: tuple[ToolSpec, ...] = ()
    max_output_tokens: int | None = None
    output: OutputSchema | None = None
    """Ask for structured output (see `OutputSchema`); None: a free-form answer."""


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
    generates_images: bool
    """Whether the backend can generate images (the document tools' `image` kind). None of ours can: False."""

    def stream(self, request: ProviderRequest) -> AsyncIterator[ModelEvent]:
        """Stream one model response. Raises `ProviderError` subclasses; retries only before the first event."""
        ...

    async def aclose(self) -> None: ...
