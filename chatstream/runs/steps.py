"""One model call of a run: the provider's events streamed into the run's output as chunks, and what the
call is charged.

Charging. A step is charged the output tokens its provider reported; a step whose provider reported none
(one cut short by a stop, a supersede, abandonment, the run's timeout or an error: providers report usage
at the end of their stream; or a provider that never reports usage) is charged an estimate from what it
streamed: its text, reasoning and tool-input characters, ceil(characters / 4), so at least 1 token for
anything streamed (`estimate_tokens`). A non-empty answer is never charged 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chatstream.protocol.chunks import (
    ReasoningDelta,
    ReasoningStart,
    TextDelta,
    TextStart,
    ToolInputAvailable,
    ToolInputDelta,
    ToolInputError,
    ToolInputStart,
)
from chatstream.providers.base import (
    ModelFinish,
    ModelReasoning,
    ModelReasoningEnd,
    ModelReasoningSignature,
    ModelText,
    ModelToolCall,
    ModelToolCallDelta,
    ModelToolCallStart,
    ModelUsage,
)
from chatstream.runs.tooling import ToolCall

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Mapping

    from chatstream.models import FinishReason
    from chatstream.providers.base import ModelEvent
    from chatstream.runs.output import RunOutput
    from chatstream.tools.base import Tool

__all__ = ["CHARS_PER_TOKEN", "ModelStep", "estimate_tokens"]

CHARS_PER_TOKEN = 4
"""The usual rule of thumb for English text with BPE tokenizers (OpenAI, Anthropic, Llama)."""


def estimate_tokens(chars: int) -> int:
    """The output tokens `chars` streamed characters stand for: ceil(chars / 4); 0 only for nothing."""
    return -(-chars // CHARS_PER_TOKEN) if chars > 0 else 0


class ModelStep:
    """Streams one model call into `out`: its text, reasoning and tool calls, and its usage.

    After `stream` (also when it raised or was cancelled): `calls` are the tool calls to execute (those with
    invalid input too: their error is the result the model sees next step), `finish` the finish reason the
    model reported, if any, and `estimate()` what the step is charged on top of the provider's usage.
    """

    def __init__(
        self, out: RunOutput, offered: Mapping[str, Tool[Any]], *, step: int, first_token: Callable[[], None]
    ) -> None:
        self.out = out
        self.offered = offered
        self.step = step
        self.first_token = first_token
        """Called when a text or reasoning part opens (not per token)."""
        self.calls: list[ToolCall] = []
        self.finish: FinishReason | None = None
        self.streamed = 0
        """Characters of text, reasoning and tool input streamed."""
        self.reported = 0
        """Output tokens the provider reported."""

    def estimate(self) -> int:
        """Output tokens to charge on top of the reported ones: the estimate when the provider reported none."""
        return estimate_tokens(self.streamed) if self.reported == 0 else 0

    async def stream(self, events: AsyncIterator[ModelEvent]) -> None:
        out = self.out
        write = out.write
        # Part ids only need to be unique within the message; short ones keep every delta frame small.
        part_ids = (f"{self.step}-{n}" for n in range(1_000_000))
        # Counted in locals (one addition per token), handed over however the stream ends.
        streamed = reported = 0
        call_chars: dict[str, int] = {}
        # Which text or reasoning part is open is the output's to know (`text_id`, `reasoning_id`): opening
        # one ends the other (`end_part`), and so does a tool call.
        try:
            async for event in events:
                match event:
                    case ModelText(text=text):
                        streamed += len(text)
                        part_id = out.text_id
                        if part_id is None:
                            self.first_token()
                            await out.end_part()
                            part_id = f"t{next(part_ids)}"
                            await write(TextStart(id=part_id))
                        await write(TextDelta(id=part_id, delta=text))
                    case ModelReasoning(text=text):
                        streamed += len(text)
                        part_id = out.reasoning_id
                        if part_id is None:
                            self.first_token()
                            await out.end_part()
                            part_id = f"r{next(part_ids)}"
                            await write(ReasoningStart(id=part_id))
                        await write(ReasoningDelta(id=part_id, delta=text))
                    case ModelReasoningSignature(signature=signature, redacted=redacted):
                        if out.reasoning_id is None:  # a redacted block has no text: it opens its part here
                            self.first_token()
                            await out.end_part()
                            await write(ReasoningStart(id=f"r{next(part_ids)}"))
                        key = "redactedData" if redacted else "signature"
                        out.reasoning_metadata({"anthropic": {key: signature}})
                    case ModelReasoningEnd():
                        if out.reasoning_id is not None:
                            await out.end_part()  # the next block is a part of its own, with its own metadata
                    case ModelToolCallStart(id=call_id, name=name):
                        await out.end_part()
                        await write(ToolInputStart(tool_call_id=call_id, tool_name=name))
                    case ModelToolCallDelta(id=call_id, delta=delta):
                        streamed += len(delta)
                        call_chars[call_id] = call_chars.get(call_id, 0) + len(delta)
                        await write(ToolInputDelta(tool_call_id=call_id, input_text_delta=delta))
                    case ModelToolCall(id=call_id, name=name, arguments=arguments):
                        streamed += max(0, len(arguments) - call_chars.get(call_id, 0))  # sent whole, not streamed
                        await out.end_part()
                        call = ToolCall.parse(call_id, name, arguments, self.offered)
                        if call.error is not None:
                            await write(
                                ToolInputError(
                                    tool_call_id=call_id, tool_name=name, input=call.input, error_text=call.error
                                )
                            )
                        else:
                            await write(ToolInputAvailable(tool_call_id=call_id, tool_name=name, input=call.input))
                        self.calls.append(call)
                    case ModelUsage(usage=usage):
                        reported += usage.output_tokens
                        out.add_usage(usage)
                    case ModelFinish(reason=reason):
                        self.finish = reason
        finally:
            self.streamed, self.reported = streamed, reported
