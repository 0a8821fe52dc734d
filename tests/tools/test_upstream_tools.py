"""The tool loop and approval through the real SDK adapters, against the fake OpenAI/Anthropic upstream
(a separate process replaying recorded tool-call streams, then generating a text answer)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from chatstream import create_app
from chatstream.settings import ProviderSettings, Secret
from chatstream.tools.weather import weather_tool
from tests.fakes.upstream import FakeUpstream
from tests.support.sse import text_of
from tests.tools.conftest import ALICE, FakeWeather, chat, frames_of, make_settings, of_type, types, wait_idle


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream.start(tokens=4) as upstream:
        yield upstream


@pytest.fixture
def ns(fake: FakeUpstream) -> str:
    return fake.namespace()


@pytest.fixture
async def client(fake: FakeUpstream, ns: str, weather: FakeWeather) -> AsyncIterator[AsyncTestClient[Any]]:
    settings = make_settings(
        providers={"openai": ProviderSettings(api_key=Secret("sk-test"), base_url=f"{fake.url}/{ns}/v1")}
    )
    async with AsyncTestClient(create_app(settings, tools=[weather_tool(weather)])) as c:
        yield c


async def test_openai_parallel_tool_calls_then_answer(
    client: AsyncTestClient[Any], fake: FakeUpstream, ns: str, weather: FakeWeather
) -> None:
    fake.enqueue(ns, {"transcript": "openai_tool_calls.sse"})  # then a generated text answer
    frames = frames_of(await chat(client, "Weather in Paris and Rome?", provider="openai", model="gpt-4o"))
    assert [a["toolCallId"] for a in of_type(frames, "tool-input-available")] == ["call_Paris1", "call_Rome2"]
    assert sorted(o["toolCallId"] for o in of_type(frames, "tool-output-available")) == ["call_Paris1", "call_Rome2"]
    assert sorted(weather.asked) == ["Paris", "Rome"]
    assert types(frames).count("start-step") == 2
    assert text_of(frames)
    assert frames[-1].data["finishReason"] == "stop"
    first, second = fake.requests(ns)
    assert [t["function"]["name"] for t in first["body"]["tools"]] == ["getWeather"]
    results = {m["tool_call_id"]: m["content"] for m in second["body"]["messages"] if m["role"] == "tool"}
    assert set(results) == {"call_Paris1", "call_Rome2"}
    assert "21.5" in results["call_Paris1"]


async def test_anthropic_tool_call_approved(fake: FakeUpstream, ns: str, weather: FakeWeather) -> None:
    settings = make_settings(
        providers={"claude": ProviderSettings(api_key=Secret("sk-ant-test"), base_url=f"{fake.url}/{ns}")},
        approval_tools=("getWeather",),
    )
    async with AsyncTestClient(create_app(settings, tools=[weather_tool(weather)])) as client:
        fake.enqueue(ns, {"transcript": "anthropic_thinking_tool.sse"})
        r = await chat(client, "Weather in Paris?", provider="claude", model="claude-sonnet-4-6")
        frames = frames_of(r)
        (request,) = of_type(frames, "tool-approval-request")
        assert request["toolCallId"] == "toolu_01T1x1fJ34qAmk2tNTrN7Up6"
        assert weather.asked == []
        thread, run = r.headers["x-thread-id"], frames[0].data["messageMetadata"]["runId"]
        await wait_idle(client, thread)
        r = await client.post(
            "/api/chat/approve", json={"runId": run, "threadId": thread, "approved": True}, headers=ALICE
        )
        frames = frames_of(r)
    assert of_type(frames, "tool-output-available")[0]["toolCallId"] == request["toolCallId"]
    assert weather.asked == ["Paris"]
    assert text_of(frames) and frames[-1].data["finishReason"] == "stop"
    # The continuation sent the tool result back, after the thinking block with its signature.
    blocks = [
        b
        for m in fake.requests(ns)[-1]["body"]["messages"]
        for b in (m["content"] if isinstance(m["content"], list) else [])
    ]
    kinds = [b["type"] for b in blocks]
    assert kinds.index("thinking") < kinds.index("tool_use") < kinds.index("tool_result")
    assert blocks[kinds.index("thinking")]["signature"]
    assert blocks[kinds.index("tool_result")]["tool_use_id"] == request["toolCallId"]


async def test_openai_denied_call_is_reported_to_the_model(fake: FakeUpstream, ns: str, weather: FakeWeather) -> None:
    settings = make_settings(
        providers={"openai": ProviderSettings(api_key=Secret("sk-test"), base_url=f"{fake.url}/{ns}/v1")},
        approval_tools=("getWeather",),
    )
    async with AsyncTestClient(create_app(settings, tools=[weather_tool(weather)])) as client:
        fake.enqueue(ns, {"transcript": "openai_tool_calls.sse"})
        r = await chat(client, "Weather?", provider="openai", model="gpt-4o")
        frames = frames_of(r)
        assert len(of_type(frames, "tool-approval-request")) == 2
        thread, run = r.headers["x-thread-id"], frames[0].data["messageMetadata"]["runId"]
        await wait_idle(client, thread)
        r = await client.post(
            "/api/chat/approve", json={"runId": run, "threadId": thread, "approved": False}, headers=ALICE
        )
        frames = frames_of(r)
    assert sorted(d["toolCallId"] for d in of_type(frames, "tool-output-denied")) == ["call_Paris1", "call_Rome2"]
    assert weather.asked == []
    assert text_of(frames) and frames[-1].data["finishReason"] == "stop"
    results = [m for m in fake.requests(ns)[-1]["body"]["messages"] if m["role"] == "tool"]
    assert len(results) == 2 and all("denied" in m["content"] for m in results)
