"""The OpenAI-compatible adapter through the real `openai` SDK against the fake upstream, for every provider
name that uses it: what goes on the wire (path, auth, headers, body) and the exact events that come back."""

from __future__ import annotations

import pytest

from chatstream.errors import ProviderResponseError
from chatstream.models import Usage
from chatstream.providers.base import (
    ModelFinish,
    ModelReasoning,
    ModelText,
    ModelToolCall,
    ModelToolCallDelta,
    ModelToolCallStart,
    ModelUsage,
    ToolSpec,
)
from tests.providers.conftest import KEY, Upstream, collect, collect_until_error, request, user

WEATHER = ToolSpec(
    name="getWeather",
    description="Weather for a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)

TEXT_EVENTS = [
    ModelText(text="Hello"),
    ModelText(text="! How"),
    ModelText(text=" can I help? 👋"),
    ModelUsage(usage=Usage(input_tokens=19, output_tokens=10)),
    ModelFinish(reason="stop"),
]


@pytest.mark.parametrize("split", ["event", 7, 1])
async def test_text_stream_is_decoded_in_any_network_split(upstream: Upstream, split: object) -> None:
    upstream.enqueue({"transcript": "openai_text.sse", "split": split})
    provider = upstream.provider("openai")

    events = await collect(provider, request(user("hi"), system="Be brief.", max_output_tokens=100))

    assert events == TEXT_EVENTS
    [seen] = upstream.requests()
    assert seen["method"] == "POST"
    assert seen["path"] == f"/{upstream.ns}/v1/chat/completions"
    assert seen["headers"]["authorization"] == f"Bearer {KEY}"
    assert seen["body"] == {
        "model": "gpt-4o",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_completion_tokens": 100,  # OpenAI's row: its reasoning models reject `max_tokens`
    }


async def test_parallel_tool_calls_stream_their_arguments(upstream: Upstream) -> None:
    upstream.enqueue({"transcript": "openai_tool_calls.sse"})
    provider = upstream.provider("openai")

    events = await collect(provider, request(user("Weather in Paris and Rome?"), tools=(WEATHER,)))

    assert events == [
        ModelToolCallStart(id="call_Paris1", name="getWeather"),
        ModelToolCallDelta(id="call_Paris1", delta='{"ci'),
        ModelToolCallDelta(id="call_Paris1", delta='ty": "Paris"}'),
        ModelToolCallStart(id="call_Rome2", name="getWeather"),
        ModelToolCallDelta(id="call_Rome2", delta='{"city": "Rome"}'),
        ModelToolCall(id="call_Paris1", name="getWeather", arguments='{"city": "Paris"}'),
        ModelToolCall(id="call_Rome2", name="getWeather", arguments='{"city": "Rome"}'),
        ModelUsage(usage=Usage(input_tokens=81, output_tokens=46)),
        ModelFinish(reason="tool-calls"),
    ]
    [seen] = upstream.requests()
    assert seen["body"]["tools"] == [
        {
            "type": "function",
            "function": {"name": "getWeather", "description": "Weather for a city", "parameters": WEATHER.parameters},
        }
    ]


async def test_groq_row_reads_reasoning_field(upstream: Upstream) -> None:
    upstream.enqueue({"transcript": "groq_reasoning.sse"})
    provider = upstream.provider("groq")

    events = await collect(provider, request(user("2+2?"), model="qwen-qwq-32b", max_output_tokens=50))

    assert events == [
        ModelReasoning(text="The user wants"),
        ModelReasoning(text=" 2+2."),
        ModelText(text="4"),
        ModelUsage(usage=Usage(input_tokens=14, output_tokens=9)),
        ModelFinish(reason="stop"),
    ]
    [seen] = upstream.requests()
    assert seen["path"] == f"/{upstream.ns}/v1/chat/completions"
    assert seen["headers"]["authorization"] == f"Bearer {KEY}"
    assert seen["body"]["max_tokens"] == 50  # compatible servers get the classic field
    assert "max_completion_tokens" not in seen["body"]


async def test_google_row_reads_reasoning_content_and_whole_tool_calls(upstream: Upstream) -> None:
    # Gemini's compatible endpoint sends each call whole, without `index`, and says "stop" after them.
    upstream.enqueue({"transcript": "gemini_reasoning_tool.sse"})
    provider = upstream.provider("google")

    events = await collect(provider, request(user("Paris and Rome?"), model="gemini-2.5-flash", tools=(WEATHER,)))

    assert events == [
        ModelReasoning(text="Need the weather tool."),
        ModelToolCallStart(id="function-call-1478", name="getWeather"),
        ModelToolCallDelta(id="function-call-1478", delta='{"city":"Paris"}'),
        ModelToolCallStart(id="function-call-1479", name="getWeather"),
        ModelToolCallDelta(id="function-call-1479", delta='{"city":"Rome"}'),
        ModelToolCall(id="function-call-1478", name="getWeather", arguments='{"city":"Paris"}'),
        ModelToolCall(id="function-call-1479", name="getWeather", arguments='{"city":"Rome"}'),
        ModelUsage(usage=Usage(input_tokens=40, output_tokens=22)),
        ModelFinish(reason="tool-calls"),
    ]
    [seen] = upstream.requests()
    assert seen["path"] == f"/{upstream.ns}/v1/chat/completions"
    assert seen["headers"]["authorization"] == f"Bearer {KEY}"


async def test_ollama_row_needs_no_key_and_maps_stop_after_tool_call(upstream: Upstream) -> None:
    upstream.enqueue({"transcript": "ollama_tool_call.sse"})
    provider = upstream.provider("ollama", key=None)

    events = await collect(provider, request(user("Oslo?"), model="llama3.2", tools=(WEATHER,)))

    assert events == [
        ModelToolCallStart(id="call_x1y2z3", name="getWeather"),
        ModelToolCallDelta(id="call_x1y2z3", delta='{"city":"Oslo"}'),
        ModelToolCall(id="call_x1y2z3", name="getWeather", arguments='{"city":"Oslo"}'),
        ModelUsage(usage=Usage(input_tokens=150, output_tokens=18)),
        ModelFinish(reason="tool-calls"),
    ]
    [seen] = upstream.requests()
    assert seen["path"] == f"/{upstream.ns}/v1/chat/completions"
    assert KEY not in seen["headers"].get("authorization", "")


async def test_openrouter_row_sends_attribution_headers_and_surfaces_midstream_error(upstream: Upstream) -> None:
    upstream.enqueue({"transcript": "openrouter_midstream_error.sse"})
    provider = upstream.provider("openrouter")

    events, error = await collect_until_error(provider, request(model="anthropic/claude-sonnet-4.5"))

    assert events == [ModelText(text="Partial"), ModelText(text=" answer")]
    assert isinstance(error, ProviderResponseError)
    assert error.upstream_status == 502
    assert "Provider returned error" in error.message
    [seen] = upstream.requests()  # tokens were relayed: never retried
    assert seen["path"] == f"/{upstream.ns}/v1/chat/completions"
    assert seen["headers"]["authorization"] == f"Bearer {KEY}"
    assert seen["headers"]["http-referer"].startswith("https://")
    assert seen["headers"]["x-title"] == "chatstream"
    assert seen["body"]["model"] == "anthropic/claude-sonnet-4.5"


async def test_openrouter_error_chunk_usage_and_the_finish_before_it_are_relayed(upstream: Upstream) -> None:
    upstream.enqueue({"transcript": "openrouter_length_then_error.sse"})

    events, error = await collect_until_error(upstream.provider("openrouter"), request(model="google/gemini-2.5-flash"))

    assert events == [
        ModelText(text="The long"),
        ModelText(text=" answer"),
        ModelUsage(usage=Usage(input_tokens=31, output_tokens=64)),  # carried by the error chunk
        ModelFinish(reason="length"),  # sent before the error, not the error chunk's own "error"
    ]
    assert isinstance(error, ProviderResponseError)
    assert "Provider disconnected unexpectedly" in error.message


async def test_error_chunk_before_any_content_is_still_retried(upstream: Upstream) -> None:
    # Relaying the usage of a failed first attempt would count as the first event and forbid the retry.
    error_chunk = (
        'data: {"id":"gen-1","object":"chat.completion.chunk","error":{"code":502,"message":"Provider returned'
        ' error"},"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}],'
        '"usage":{"prompt_tokens":12,"completion_tokens":0,"total_tokens":12}}\n\n'
    )
    upstream.enqueue({"events": [error_chunk]}, {"transcript": "openai_text.sse"})

    events = await collect(upstream.provider("openrouter"), request(model="openai/gpt-4o-mini"))

    assert events == TEXT_EVENTS
    assert len(upstream.requests()) == 2


async def test_generated_stream_of_many_tokens(upstream: Upstream) -> None:
    provider = upstream.provider("openai")

    events = await collect(provider, request(model="gpt-4o"))  # nothing queued: the fake generates 8 tokens

    assert [e for e in events if isinstance(e, ModelText)] == [ModelText(text=f"t{i} ") for i in range(8)]
    assert events[-2:] == [ModelUsage(usage=Usage(input_tokens=12, output_tokens=8)), ModelFinish(reason="stop")]
