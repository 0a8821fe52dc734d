"""Citations: every result the model receives from `web_search` and every page `web_fetch` returns is a
`source-url` part `{sourceId, url, title}`, once per URL per answer (both halves of an approved run), right
after the tool's output, stored in the message, and listed by the plain (`done.sources`) and seed-003
(`end.sources`) dialects.

The built-in tools run for real: `web_search` is the Brave backend pointed (`CHAT_WEB_SEARCH_URL`) at a
local fake (`tests.fakes.web`) that also serves the pages, which `web_fetch` may read because private
addresses are allowed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from chatstream import create_app
from chatstream.providers.base import ModelFinish, ModelText, ModelToolCall
from chatstream.providers.mock import MockProvider
from chatstream.settings import Secret
from chatstream.tools.base import Source, Tool, ToolContext
from chatstream.tools.web_fetch import page_sources
from chatstream.tools.web_search import search_sources
from tests.fakes.web import fake_web
from tests.support.sse import parse_frames
from tests.tools.conftest import ALICE, chat, frames_of, make_settings, of_type, types, wait_idle


@pytest.fixture(scope="module")
def web() -> Iterator[str]:
    with fake_web() as base:
        yield base


@pytest.fixture
async def client(web: str, mock: MockProvider) -> AsyncIterator[AsyncTestClient[Any]]:
    settings = make_settings(
        web_search_api_key=Secret("k"), web_search_url=f"{web}/search", web_fetch_allow_private=True
    )
    async with AsyncTestClient(create_app(settings, providers={"mock": mock})) as c:
        yield c


def call(call_id: str, name: str, **arguments: Any) -> ModelToolCall:
    return ModelToolCall(id=call_id, name=name, arguments=json.dumps(arguments))


def research(mock: MockProvider, web: str) -> None:
    """Search; then search the same again while fetching a result (/a) and another page (/c); then answer."""
    mock.enqueue(
        [call("c1", "web_search", query="pages"), ModelFinish(reason="tool-calls")],
        [
            call("c2", "web_search", query="pages"),
            call("c3", "web_fetch", url=f"{web}/a"),
            call("c4", "web_fetch", url=f"{web}/c"),
            ModelFinish(reason="tool-calls"),
        ],
        [ModelText(text="See the sources."), ModelFinish(reason="stop")],
    )


def expected(web: str) -> list[dict[str, Any]]:
    return [
        {"sourceId": "source-1", "url": f"{web}/a", "title": "Result A"},
        {"sourceId": "source-2", "url": f"{web}/b", "title": "Result B"},
        {"sourceId": "source-3", "url": f"{web}/c", "title": "Page C"},
    ]


async def test_ui_stream_cites_each_page_once(client: AsyncTestClient[Any], mock: MockProvider, web: str) -> None:
    research(mock, web)
    r = await chat(client, "find pages", webSearch=True)
    frames = frames_of(r)
    sources = [{k: v for k, v in f.data.items() if k != "type"} for f in frames if f.type == "source-url"]
    assert sources == expected(web)
    # Right after the output of the search that found them.
    first = types(frames).index("source-url")
    assert (frames[first - 1].type, frames[first - 1].data["toolCallId"]) == ("tool-output-available", "c1")
    assert types(frames)[first : first + 2] == ["source-url", "source-url"]
    thread = r.headers["x-thread-id"]
    await wait_idle(client, thread)
    listed = await client.get("/api/chat/messages", params={"conversationId": thread}, headers=ALICE)
    answer = listed.json()["messages"][-1]
    stored = [{k: v for k, v in p.items() if k != "type"} for p in answer["parts"] if p["type"] == "source-url"]
    assert stored == expected(web)


async def test_plain_dialect_lists_sources(client: AsyncTestClient[Any], mock: MockProvider, web: str) -> None:
    research(mock, web)
    r = await client.post("/api/chat", json={"message": "find pages", "webSearch": True, "stream": True}, headers=ALICE)
    events = [f.data for f in parse_frames(r.text)]
    done = [e for e in events if e["type"] == "done"]
    assert len(done) == 1 and done[0]["sources"] == expected(web)
    await wait_idle(client, r.headers["x-thread-id"])
    # Not streamed: the JSON answer lists them too.
    research(mock, web)
    r = await client.post("/api/chat", json={"message": "find pages", "webSearch": True}, headers=ALICE)
    assert r.status_code == 200, r.text
    assert r.json()["sources"] == expected(web)


class KbInput(msgspec.Struct):
    query: str


def kb_tool(web: str, name: str = "kb_search", *, needs_approval: bool = False) -> Tool[KbInput]:
    """A host's own tool with its own output shape: it declares how to read the sources from it."""

    async def handler(data: KbInput, ctx: ToolContext) -> dict[str, Any]:
        return {"hits": [{"link": f"{web}/a", "name": "Article A"}, {"link": "javascript:alert(1)", "name": "x"}]}

    def sources(output: Any) -> list[Source]:
        return [Source(hit["link"], hit["name"]) for hit in output["hits"]]

    return Tool(name, "Search the knowledge base.", KbInput, handler, needs_approval=needs_approval, sources=sources)


async def test_seed003_end_lists_sources_of_a_host_tool(web: str) -> None:
    mock = MockProvider()
    app = create_app(make_settings(), providers={"mock": mock}, tools=[kb_tool(web)])
    async with AsyncTestClient(app) as client:
        r = await chat(client, "hello", threadId="s3-cite")
        await wait_idle(client, "s3-cite")
        mock.enqueue(
            [call("k1", "kb_search", query="a"), call("k2", "kb_search", query="a"), ModelFinish(reason="tool-calls")],
            [ModelText(text="Found it."), ModelFinish(reason="stop")],
        )
        r = await client.post(
            "/api/chats/s3-cite/messages/stream", json={"content": "look it up", "modelId": "mock-1"}, headers=ALICE
        )
        events = [f.data for f in parse_frames(r.text)]
        assert events[-1]["type"] == "end"
        # Only http(s) links are citations; two calls with the same hit cite it once.
        assert events[-1]["sources"] == [{"sourceId": "source-1", "url": f"{web}/a", "title": "Article A"}]


async def test_a_resumed_run_does_not_cite_again(web: str) -> None:
    """Cited before the approval, cited again by the approved call: one part in the answer."""
    mock = MockProvider()
    tools = [kb_tool(web), kb_tool(web, "kb_gated", needs_approval=True)]
    async with AsyncTestClient(create_app(make_settings(), providers={"mock": mock}, tools=tools)) as client:
        mock.enqueue(
            [call("k1", "kb_search", query="a"), call("k2", "kb_gated", query="a"), ModelFinish(reason="tool-calls")],
            [ModelText(text="Done."), ModelFinish(reason="stop")],
        )
        r = await chat(client, "look it up")
        frames = frames_of(r)
        assert len(of_type(frames, "source-url")) == 1
        assert "tool-approval-request" in types(frames)
        thread, run = r.headers["x-thread-id"], frames[0].data["messageMetadata"]["runId"]
        await wait_idle(client, thread)
        r = await client.post(
            "/api/chat/approve",
            json={"runId": run, "threadId": thread, "toolCallId": "k2", "approved": True},
            headers=ALICE,
        )
        frames = frames_of(r)
        assert [f.data["toolCallId"] for f in frames if f.type == "tool-output-available"] == ["k2"]
        assert "source-url" not in types(frames)
        await wait_idle(client, thread)
        listed = await client.get("/api/chat/messages", params={"conversationId": thread}, headers=ALICE)
        parts = listed.json()["messages"][-1]["parts"]
        assert [p["url"] for p in parts if p["type"] == "source-url"] == [f"{web}/a"]


def test_source_extractors_read_the_builtin_outputs() -> None:
    search = {"query": "q", "results": [{"title": "T", "url": "https://x.test/1"}, {"url": "https://x.test/2"}, {}]}
    assert list(search_sources(search)) == [Source("https://x.test/1", "T"), Source("https://x.test/2", None)]
    assert list(search_sources("not a dict")) == []
    assert page_sources({"url": "https://x.test/p", "title": None, "text": ""}) == [Source("https://x.test/p", None)]
    assert page_sources({"error": "x"}) == []
