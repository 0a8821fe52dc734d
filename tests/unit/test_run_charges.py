"""What a run is charged (`chatstream.runs.steps`): the provider's output tokens when it reported them, else
ceil(streamed characters / 4); what it cites (`RunOutput.cite`); and how both land in the stored message."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
import pytest

from chatstream.api.streaming import stored_chunks
from chatstream.models import Message, MessagePart, Usage
from chatstream.protocol.chunks import SourceUrl
from chatstream.providers.base import (
    ModelEvent,
    ModelFinish,
    ModelReasoning,
    ModelText,
    ModelToolCall,
    ModelToolCallDelta,
    ModelToolCallStart,
    ModelUsage,
)
from chatstream.runs.assembly import ChunkAssembler
from chatstream.runs.output import RunOutput
from chatstream.runs.steps import ModelStep, estimate_tokens
from chatstream.streams.memory import MemoryStreamBuffer

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence


@pytest.mark.parametrize(("chars", "tokens"), [(0, 0), (1, 1), (4, 1), (5, 2), (8, 2), (197, 50)])
def test_estimate_is_a_quarter_of_the_characters_rounded_up(chars: int, tokens: int) -> None:
    assert estimate_tokens(chars) == tokens


async def events(items: Sequence[ModelEvent], *, fail: bool = False) -> AsyncIterator[ModelEvent]:
    for item in items:
        yield item
    if fail:
        raise RuntimeError("the stream broke")


async def output(base: Message | None = None) -> RunOutput:
    buffer = MemoryStreamBuffer(ttl=60)
    await buffer.create("c", "run-1")
    return RunOutput(buffer, "c", "m1", base=base, batched=False)


def step(out: RunOutput) -> ModelStep:
    return ModelStep(out, {}, step=1, first_token=lambda: None)


async def test_a_step_without_usage_is_charged_what_it_streamed() -> None:
    out = await output()
    model = step(out)
    await model.stream(
        events(
            [
                ModelReasoning(text="hmm"),  # 3
                ModelText(text="Hello, world"),  # 12
                ModelToolCallStart(id="k1", name="x"),
                ModelToolCallDelta(id="k1", delta='{"a":'),  # 5
                ModelToolCall(id="k1", name="x", arguments='{"a": 1}'),  # 8 in all: 3 more
                ModelToolCall(id="k2", name="x", arguments="{}"),  # never streamed in pieces: 2
            ]
        )
    )
    assert (model.streamed, model.reported) == (25, 0)
    assert model.estimate() == 7


async def test_the_providers_usage_wins_when_it_reported_some() -> None:
    out = await output()
    model = step(out)
    await model.stream(
        events([ModelText(text="x" * 400), ModelUsage(usage=Usage(output_tokens=3)), ModelFinish(reason="stop")])
    )
    assert model.estimate() == 0
    assert out.usage == Usage(output_tokens=3)


async def test_a_step_cut_short_still_knows_what_it_streamed() -> None:
    model = step(await output())
    with pytest.raises(RuntimeError):
        await model.stream(events([ModelText(text="abcdefghi")], fail=True))
    assert model.estimate() == 3


async def test_run_usage_leaves_out_what_the_first_half_was_charged() -> None:
    base = Message(id="m1", conversation_id="c", role="assistant", usage=Usage(input_tokens=10, output_tokens=7))
    out = await output(base)
    out.add_usage(Usage(input_tokens=4, output_tokens=2))
    assert out.usage == Usage(input_tokens=14, output_tokens=9)  # the stored answer shows both halves
    assert out.run_usage == Usage(input_tokens=4, output_tokens=2)  # this run is charged its own


async def test_each_url_is_cited_once_per_answer_both_halves_included() -> None:
    first = Message(
        id="m1",
        conversation_id="c",
        role="assistant",
        parts=(MessagePart(type="source-url", source_id="source-1", url="https://a.test/", title="A"),),
    )
    out = await output(first)
    await out.cite("https://a.test/", "A again")
    await out.cite("https://b.test/", "B")
    await out.cite("https://b.test/", "B")
    await out.cite("https://c.test/", "")
    sources = [p for p in out.message().parts if p.type == "source-url"]
    assert [(p.source_id, p.url, p.title) for p in sources] == [
        ("source-1", "https://a.test/", "A"),
        ("source-2", "https://b.test/", "B"),
        ("source-3", "https://c.test/", None),
    ]


def test_source_url_parts_fold_and_replay() -> None:
    message = Message(
        id="m1",
        conversation_id="c",
        role="assistant",
        parts=(
            MessagePart(type="step-start"),
            MessagePart(type="tool-web_search", tool_call_id="k1", state="output-available", input={}, output={}),
            MessagePart(type="source-url", source_id="source-1", url="https://a.test/", title="A"),
            MessagePart(type="source-url", source_id="source-2", url="https://b.test/"),
            MessagePart(type="step-start"),
            MessagePart(type="text", text="See A."),
        ),
        finish_reason="stop",
    )
    chunks = stored_chunks(message)
    assert [c for c in chunks if isinstance(c, SourceUrl)] == [
        SourceUrl(source_id="source-1", url="https://a.test/", title="A"),
        SourceUrl(source_id="source-2", url="https://b.test/"),
    ]
    assembler = ChunkAssembler("c")
    for chunk in chunks:
        assembler.apply(chunk)
    assert assembler.builder is not None
    assembler.builder.finish()
    assert assembler.builder.parts == list(message.parts)
    assert msgspec.to_builtins(message.parts[2]) == {
        "type": "source-url",
        "sourceId": "source-1",
        "url": "https://a.test/",
        "title": "A",
    }
