"""The model ↔ tools loop of a run: steps, bounds, concurrency, invalid input, reasoning models."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from chatstream.models import Usage
from chatstream.providers.base import ModelFinish, ModelText, ModelToolCall, ModelToolCallStart, ModelUsage
from chatstream.providers.mock import MockProvider
from chatstream.settings import Settings
from chatstream.tools.base import Tool, ToolContext, ToolError
from tests.support.settings import services_of
from tests.support.sse import text_of
from tests.tools.conftest import ALICE, FakeWeather, chat, frames_of, make_settings, of_type, types, wait_idle

WEATHER = 'mock:tool=getWeather mock:args={"city":"Paris"}'


def call(call_id: str, name: str, arguments: str) -> list[Any]:
    return [ModelToolCallStart(id=call_id, name=name), ModelToolCall(id=call_id, name=name, arguments=arguments)]


def answer(text: str) -> list[Any]:
    return [ModelText(text=text), ModelUsage(usage=Usage(input_tokens=1, output_tokens=1)), ModelFinish(reason="stop")]


async def stored_assistant(client: AsyncTestClient[Any], thread: str) -> dict[str, Any]:
    r = await client.get("/api/chat/messages", params={"conversationId": thread}, headers=ALICE)
    messages = [m for m in r.json()["messages"] if m["role"] == "assistant"]
    assert len(messages) == 1, messages
    message: dict[str, Any] = messages[0]
    return message


async def test_three_step_tool_loop(client: AsyncTestClient[Any], weather: FakeWeather, mock: MockProvider) -> None:
    r = await chat(client, f"{WEATHER} mock:steps=3 weather please")
    frames = frames_of(r)
    kinds = types(frames)
    assert kinds.count("start-step") == kinds.count("finish-step") == 4  # 3 tool steps, then the answer
    for kind in ("tool-input-start", "tool-input-available", "tool-output-available", "data-status"):
        assert kinds.count(kind) == 3, kind
    assert kinds.count("tool-input-delta") == 6  # the mock streams the arguments in two pieces
    assert weather.asked == ["Paris", "Paris", "Paris"]
    # Per call: input start -> deltas -> input available -> running status -> output, inside its step.
    first = kinds.index("tool-input-start")
    assert kinds[first : first + 7] == [
        "tool-input-start",
        "tool-input-delta",
        "tool-input-delta",
        "tool-input-available",
        "data-status",
        "tool-output-available",
        "finish-step",
    ]
    assert of_type(frames, "data-status")[0]["data"] == {
        "status": "running",
        "tool": "getWeather",
        "toolCallId": "call_1",
    }
    assert of_type(frames, "tool-output-available")[0]["output"]["temperature"] == 21.5
    assert text_of(frames).startswith("I ran the tool 3 time(s).")
    assert frames[-1].data["finishReason"] == "stop"
    assert len(mock.requests) == 4
    assert [t.name for t in mock.requests[0].tools] == ["getWeather", "transfer", "sleep"]

    await wait_idle(client, r.headers["x-thread-id"])
    stored = await stored_assistant(client, r.headers["x-thread-id"])
    tool_parts = [p for p in stored["parts"] if p["type"] == "tool-getWeather"]
    assert [p["state"] for p in tool_parts] == ["output-available"] * 3
    assert [p["type"] for p in stored["parts"]].count("step-start") == 4


async def test_step_bound_ends_the_run_cleanly(client: AsyncTestClient[Any], mock: MockProvider) -> None:
    r = await chat(client, f"{WEATHER} mock:steps=50")
    frames = frames_of(r)
    assert len(mock.requests) == 5
    assert types(frames).count("start-step") == types(frames).count("finish-step") == 5
    assert types(frames).count("tool-output-available") == 5
    finish = frames[-1].data
    assert finish["type"] == "finish"
    assert finish["finishReason"] == "tool-calls"
    assert finish["messageMetadata"]["endedBy"] == "max_steps"


async def test_step_bound_is_configurable(mock: MockProvider, tools: list[Tool[Any]]) -> None:
    from chatstream import create_app

    app = create_app(make_settings(max_steps=2), providers={"mock": mock}, tools=tools)
    async with AsyncTestClient(app) as client:
        frames = frames_of(await chat(client, f"{WEATHER} mock:steps=50"))
    assert len(mock.requests) == 2
    assert frames[-1].data["messageMetadata"]["endedBy"] == "max_steps"


async def test_run_timeout_with_a_slow_tool(mock: MockProvider, tools: list[Tool[Any]]) -> None:
    from chatstream import create_app

    app = create_app(make_settings(run_timeout_seconds=0.5), providers={"mock": mock}, tools=tools)
    async with AsyncTestClient(app) as client:
        started = time.monotonic()
        r = await chat(client, 'mock:tool=sleep mock:args={"seconds":20}')
        elapsed = time.monotonic() - started
        frames = frames_of(r)
        await wait_idle(client, r.headers["x-thread-id"])
        stored = await stored_assistant(client, r.headers["x-thread-id"])
    assert elapsed < 5
    finish = frames[-1].data
    assert finish["finishReason"] == "other"
    assert finish["messageMetadata"]["endedBy"] == "timeout"
    assert of_type(frames, "data-status")  # the tool had started
    assert stored["finishReason"] == "other"


async def test_parallel_tool_calls_run_concurrently(mock: MockProvider, settings: Settings) -> None:
    from chatstream import create_app

    barrier = asyncio.Barrier(3)
    seen: list[str] = []

    class WaitInput(msgspec.Struct):
        name: str

    async def meet(data: WaitInput, ctx: ToolContext) -> str:
        # Each call waits for the other two: only concurrent execution gets past the barrier in time.
        async with asyncio.timeout(2):
            await barrier.wait()
        seen.append(ctx.tool_call_id)
        return data.name

    mock.enqueue(
        [*call("a", "meet", '{"name":"a"}'), *call("b", "meet", '{"name":"b"}'), *call("c", "meet", '{"name":"c"}')],
        answer("all met"),
    )
    app = create_app(settings, providers={"mock": mock}, tools=[Tool("meet", "Meet.", WaitInput, meet)])
    async with AsyncTestClient(app) as client:
        frames = frames_of(await chat(client, "go"))
    outputs = of_type(frames, "tool-output-available")
    assert sorted(o["output"] for o in outputs) == ["a", "b", "c"]
    assert sorted(seen) == ["a", "b", "c"]
    assert text_of(frames) == "all met"
    # All three results are in the history of the second model call.
    parts = mock.requests[1].messages[-1].parts
    assert sorted(p.tool_call_id or "" for p in parts if p.state == "output-available") == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ('{"town":"Paris"}', "invalid input"),
        ('{"city": 42}', "invalid input"),
        ('{"city": "Par', "not valid JSON"),
    ],
)
async def test_invalid_input_is_reported_to_the_model(
    client: AsyncTestClient[Any], mock: MockProvider, weather: FakeWeather, arguments: str, error: str
) -> None:
    mock.enqueue(call("c1", "getWeather", arguments), answer("sorry"))
    frames = frames_of(await chat(client, "weather"))
    errors = of_type(frames, "tool-input-error")
    assert len(errors) == 1
    assert errors[0]["toolCallId"] == "c1" and errors[0]["toolName"] == "getWeather"
    assert error in errors[0]["errorText"]
    assert "tool-output-available" not in types(frames) and "data-status" not in types(frames)
    assert weather.asked == []
    assert frames[-1].data["finishReason"] == "stop"
    # The model saw the error on its next step.
    failed = [p for p in mock.requests[1].messages[-1].parts if p.tool_call_id == "c1"]
    assert failed[0].state == "output-error" and error in (failed[0].error_text or "")


async def test_unknown_tool_is_reported_to_the_model(client: AsyncTestClient[Any], mock: MockProvider) -> None:
    mock.enqueue(call("c1", "launch_rockets", "{}"), answer("ok"))
    frames = frames_of(await chat(client, "go"))
    assert "unknown tool" in of_type(frames, "tool-input-error")[0]["errorText"]
    assert text_of(frames) == "ok"


async def test_failing_tool_becomes_tool_output_error(mock: MockProvider, settings: Settings) -> None:
    from chatstream import create_app

    class Empty(msgspec.Struct):
        pass

    async def broken(data: Empty, ctx: ToolContext) -> None:
        raise ToolError("the backend is down")

    async def crashing(data: Empty, ctx: ToolContext) -> None:
        raise RuntimeError("boom")

    mock.enqueue([*call("a", "broken", "{}"), *call("b", "crashing", "{}")], answer("noted"))
    tools = [Tool("broken", "", Empty, broken), Tool("crashing", "", Empty, crashing)]
    async with AsyncTestClient(create_app(settings, providers={"mock": mock}, tools=tools)) as client:
        frames = frames_of(await chat(client, "go"))
    errors = {e["toolCallId"]: e["errorText"] for e in of_type(frames, "tool-output-error")}
    assert errors == {"a": "the backend is down", "b": "RuntimeError: boom"}
    assert text_of(frames) == "noted"


async def test_reasoning_models_get_no_tools(client: AsyncTestClient[Any], mock: MockProvider) -> None:
    r = await chat(client, f"{WEATHER} hi", model="mock-thinking")
    frames = frames_of(r)
    assert mock.requests[0].tools == ()
    assert "tool-input-start" not in types(frames)
    # Even if such a model calls a tool anyway, nothing runs.
    mock.enqueue(call("c1", "getWeather", '{"city":"Paris"}'), answer("ok"))
    await wait_idle(client, r.headers["x-thread-id"])
    frames = frames_of(await chat(client, "again", model="mock-thinking", threadId=r.headers["x-thread-id"]))
    assert "unknown tool" in of_type(frames, "tool-input-error")[0]["errorText"]


async def test_web_tools_only_with_web_search(mock: MockProvider, settings: Settings) -> None:
    from chatstream import create_app

    class Q(msgspec.Struct):
        q: str

    ran: list[str] = []

    async def search(data: Q, ctx: ToolContext) -> str:
        ran.append(data.q)
        return "found"

    tools = [Tool("search", "Search.", Q, search, web=True)]
    async with AsyncTestClient(create_app(settings, providers={"mock": mock}, tools=tools)) as client:
        # Not offered without webSearch, and a call to it anyway is refused, not run.
        mock.enqueue(call("c1", "search", '{"q":"x"}'), answer("ok"))
        r = await chat(client, "hi")
        assert mock.requests[0].tools == ()
        assert "unknown tool" in of_type(frames_of(r), "tool-input-error")[0]["errorText"]
        assert ran == []
        await wait_idle(client, r.headers["x-thread-id"])
        mock.enqueue(call("c2", "search", '{"q":"y"}'), answer("ok"))
        frames = frames_of(await chat(client, "hi", webSearch=True))
    assert [t.name for t in mock.requests[2].tools] == ["search"]
    assert of_type(frames, "tool-output-available")[0]["output"] == "found"
    assert ran == ["y"]


async def test_tool_context_names_the_caller(client: AsyncTestClient[Any], mock: MockProvider) -> None:
    seen: list[ToolContext] = []
    services = services_of(client.app)

    class Empty(msgspec.Struct):
        pass

    async def who(data: Empty, ctx: ToolContext) -> str:
        seen.append(ctx)
        return ctx.user_id

    # Hosts may register tools on a running app's registry too.
    services.tools.register(Tool("who", "", Empty, who))
    mock.enqueue(call("c1", "who", "{}"), answer("ok"))
    r = await chat(client, "who am I")
    frames = frames_of(r)
    assert of_type(frames, "tool-output-available")[0]["output"] == "alice"
    assert seen[0].conversation_id == r.headers["x-thread-id"] and seen[0].tool_call_id == "c1"
    assert seen[0].run_id == r.headers["x-run-id"]
