"""What a tool handler reaches of its run (`chatstream.tools.base.ToolRun`): the run's stream, for transient
data parts, and nested model calls on the run's provider and model, charged to the run.

A nested call runs inside the handler, so inside the run's work task: the run's stop, supersede, abandonment
and timeout cancel it like a model step (the deadline is the run's, not a fresh one). Its usage is added to
the answer's (`RunOutput.add_usage`), which is what the run's limits settle on (`Run._end` → `on_end`); a call
that reported none (cut short, or a provider that never reports usage) is charged the estimate the run's own
steps are, ceil(characters / 4), and the final frame's usage then says `"estimated": true`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chatstream.models import Message, MessagePart, Usage, new_id
from chatstream.providers.base import ModelText, ModelUsage, ProviderRequest
from chatstream.runs.steps import estimate_tokens

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from chatstream.protocol.chunks import DataPart
    from chatstream.providers.base import OutputSchema, Provider
    from chatstream.runs.output import RunOutput
    from chatstream.store.base import DocumentStore

__all__ = ["NestedRun"]


class NestedRun:
    """One run's `ToolRun`, shared by its tool calls."""

    def __init__(
        self,
        out: RunOutput,
        provider: Provider,
        model: str,
        conversation_id: str,
        documents: DocumentStore,
        *,
        on_estimate: Callable[[int], None],
    ) -> None:
        """`on_estimate(tokens)`: a nested call reported no usage and is charged `tokens` (estimated)."""
        self._out = out
        self._provider = provider
        self._model = model
        self._conversation_id = conversation_id
        self._documents = documents
        self._on_estimate = on_estimate

    @property
    def documents(self) -> DocumentStore:
        return self._documents

    @property
    def generates_images(self) -> bool:
        return self._provider.generates_images

    async def write(self, part: DataPart) -> None:
        await self._out.write(part)

    async def generate(
        self,
        *,
        system: str,
        prompt: str,
        output: OutputSchema | None = None,
        on_text: Callable[[str], Awaitable[None]] | None = None,
    ) -> str:
        message = Message(
            id=new_id("msg-"),
            conversation_id=self._conversation_id,
            role="user",
            parts=(MessagePart(type="text", text=prompt),),
        )
        request = ProviderRequest(model=self._model, messages=(message,), system=system, output=output)
        pieces: list[str] = []
        streamed = reported = 0
        try:
            async for event in self._provider.stream(request):
                match event:
                    case ModelText(text=text):
                        streamed += len(text)
                        pieces.append(text)
                        if on_text is not None:
                            await on_text(text)
                    case ModelUsage(usage=usage):
                        reported += usage.output_tokens
                        self._out.add_usage(usage)
                    case _:
                        pass  # reasoning and finish add nothing to what is generated
        finally:
            # Also when cut short (stopped, timed out, failed): what it streamed is charged.
            if reported == 0 and (estimate := estimate_tokens(streamed)):
                self._out.add_usage(Usage(output_tokens=estimate))
                self._on_estimate(estimate)
        return "".join(pieces)
