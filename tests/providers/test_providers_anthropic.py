"""The Anthropic adapter through the real `anthropic` SDK against the fake upstream: the `claude` row,
extended thinking with signatures, redacted thinking, streamed tool input."""

from __future__ import annotations

from chatstream.models import Usage
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
    ToolSpec,
)
from tests.providers.conftest import KEY, Upstream, collect, request, user

# The three reasoning blocks of `anthropic_redacted_sequence.sse`.
REDACTED_1 = "EmwKAhgBEgyFirstRedactedBlockDataAAAAIjDx4mPnZ5sQ7vB5URjqpPkNRj2YfWXGmKDxH4"
REDACTED_2 = "EmwKAhgBEgySecondRedactedBlockDataBBBBIjCtE3rAFBa8cr3qpPkNRj2YfWXGmKDxH4mP"
SIGNATURE_3 = "EqQBCgIYAhIMThirdBlockSignatureCCCCGgxBdjrkzLoky3dl1pkiMOYds"

WEATHER = ToolSpec(
    name="getWeather",
    description="Weather for a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)


async def test_text_stream_and_request_shape(upstream: Upstream) -> None:
    upstream.enqueue({"transcript": "anthropic_text.sse", "split": 5})
    provider = upstream.provider("claude")

    events = await collect(provider, request(user("hi"), model="claude-sonnet-4-6", system="Be brief."))

    assert events == [
        ModelText(text="Hello"),
        ModelText(text="! How can I help?"),
        ModelUsage(usage=Usage(input_tokens=25, output_tokens=12)),
        ModelFinish(reason="stop"),
    ]
    [seen] = upstream.requests()
    assert seen["path"] == f"/{upstream.ns}/v1/messages"
    # The SDK owns auth: this version sends the key as a bearer token (older ones used `x-api-key`).
    assert seen["headers"].get("x-api-key") == KEY or seen["headers"]["authorization"] == f"Bearer {KEY}"
    assert seen["headers"]["anthropic-version"]
    assert seen["body"] == {
        "model": "claude-sonnet-4-6",
        "max_tokens": 4096,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        "stream": True,
    }


async def test_thinking_signature_and_streamed_tool_input(upstream: Upstream) -> None:
    upstream.enqueue({"transcript": "anthropic_thinking_tool.sse"})
    provider = upstream.provider("claude")

    events = await collect(
        provider, request(user("Weather in Paris?"), model="claude-sonnet-4-6-thinking", tools=(WEATHER,))
    )

    assert events == [
        ModelReasoning(text="The user asks about Paris weather."),
        ModelReasoning(text=" I should call the tool."),
        ModelReasoningSignature(signature="EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"),
        ModelReasoningEnd(),
        ModelText(text="Let me check."),
        ModelToolCallStart(id="toolu_01T1x1fJ34qAmk2tNTrN7Up6", name="getWeather"),
        ModelToolCallDelta(id="toolu_01T1x1fJ34qAmk2tNTrN7Up6", delta='{"city": "Pa'),
        ModelToolCallDelta(id="toolu_01T1x1fJ34qAmk2tNTrN7Up6", delta='ris"}'),
        ModelToolCall(id="toolu_01T1x1fJ34qAmk2tNTrN7Up6", name="getWeather", arguments='{"city": "Paris"}'),
        # input_tokens counts cached input too: 400 + 100 read from cache.
        ModelUsage(usage=Usage(input_tokens=500, output_tokens=89)),
        ModelFinish(reason="tool-calls"),
    ]
    [seen] = upstream.requests()
    body = seen["body"]
    assert body["model"] == "claude-sonnet-4-6"  # our `-thinking` suffix is not an Anthropic id
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 4096}
    assert body["max_tokens"] > body["thinking"]["budget_tokens"]
    assert body["tools"] == [
        {"name": "getWeather", "description": "Weather for a city", "input_schema": WEATHER.parameters}
    ]


async def test_redacted_thinking_and_length_finish(upstream: Upstream) -> None:
    upstream.enqueue({"transcript": "anthropic_redacted.sse"})

    events = await collect(upstream.provider("claude"), request(model="claude-opus-4-6"))

    assert events == [
        ModelReasoningSignature(
            signature="EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpPkNRj2YfWXGmKDxH4mPnZ5sQ7vB5URj",
            redacted=True,
        ),
        ModelReasoningEnd(),
        ModelText(text="Done."),
        ModelUsage(usage=Usage(input_tokens=30, output_tokens=7)),
        ModelFinish(reason="length"),
    ]


async def test_each_thinking_block_ends_on_its_own(upstream: Upstream) -> None:
    upstream.enqueue({"transcript": "anthropic_redacted_sequence.sse"})

    events = await collect(upstream.provider("claude"), request(model="claude-sonnet-4-6-thinking"))

    assert events == [
        ModelReasoningSignature(signature=REDACTED_1, redacted=True),
        ModelReasoningEnd(),
        ModelReasoningSignature(signature=REDACTED_2, redacted=True),
        ModelReasoningEnd(),
        ModelReasoning(text="Two blocks were redacted;"),
        ModelReasoning(text=" answer briefly."),
        ModelReasoningSignature(signature=SIGNATURE_3),
        ModelReasoningEnd(),
        ModelText(text="Here is the answer."),
        ModelUsage(usage=Usage(input_tokens=42, output_tokens=57)),
        ModelFinish(reason="stop"),
    ]


async def test_adaptive_thinking_where_enabled_is_deprecated(upstream: Upstream) -> None:
    upstream.enqueue({"transcript": "anthropic_text.sse"})

    await collect(upstream.provider("claude"), request(model="claude-opus-4-6-thinking"))

    [seen] = upstream.requests()
    assert seen["body"]["model"] == "claude-opus-4-6"
    assert seen["body"]["thinking"] == {"type": "adaptive"}


async def test_generated_stream(upstream: Upstream) -> None:
    events = await collect(upstream.provider("claude"), request(model="claude-haiku-4-5"))

    assert [e for e in events if isinstance(e, ModelText)] == [ModelText(text=f"t{i} ") for i in range(8)]
    assert events[-1] == ModelFinish(reason="stop")
