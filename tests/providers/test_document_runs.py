"""The document tools end to end through the real adapters against the fake OpenAI and Anthropic upstreams:
the model's tool call → the nested generation on the same provider and model → data parts, in order → the
stored document → the tool result the model receives in the next request → its final answer."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING, Any

import pytest
from asgi_lifespan import LifespanManager

from chatstream import create_app
from chatstream.models import Document
from chatstream.settings import ProviderSettings, Secret
from chatstream.tools.documents import CREATED, UPDATED
from tests.api.test_lifecycle import AppClient
from tests.providers.conftest import KEY, Upstream
from tests.support.asgi import idle, services
from tests.support.settings import ALICE, make_settings
from tests.support.sse import Frame, parse_frames, text_of

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from chatstream.store.base import DocumentStore

pytestmark = pytest.mark.timeout(30)

MODELS = {"openai": "gpt-4o", "claude": "claude-sonnet-4-6"}
ESSAY = ["# Rivers\n\n", "Rivers ", "flow ", "to ", "the ", "sea."]


@contextlib.asynccontextmanager
async def serve(upstream: Upstream, name: str, **settings: Any) -> AsyncIterator[AppClient]:
    app = create_app(
        make_settings(
            providers={name: ProviderSettings(api_key=Secret(KEY), base_url=upstream.base_url(name))},
            title_generation=False,  # the fake's request log then holds the run's requests only
            **settings,
        )
    )
    async with LifespanManager(app), AppClient(app) as client:  # type: ignore[arg-type]
        yield client


def body(name: str, text: str, thread: str) -> dict[str, Any]:
    return {"parts": [{"type": "text", "text": text}], "threadId": thread, "provider": name, "model": MODELS[name]}


async def chat(client: AppClient, name: str, text: str, thread: str) -> list[Frame]:
    r = await client.post("/api/chat", json=body(name, text, thread), headers=ALICE)
    assert r.status_code == 200, r.text
    await idle(client, thread)
    frames = parse_frames(r.text)
    assert frames[-1].data == "[DONE]"
    return frames[:-1]


def documents(client: AppClient) -> DocumentStore:
    return services(client).runs.deps.documents


def tool_parts(frames: list[Frame]) -> list[dict[str, Any]]:
    """The tools' data parts (not the run's own `data-conversation` and `data-status`)."""
    return [f.data for f in frames if (f.type or "").startswith("data-") and f.type not in _RUNS_OWN]


_RUNS_OWN = ("data-conversation", "data-status")


def tool_results(name: str, request: dict[str, Any]) -> dict[str, Any]:
    """The tool results a request carries back to the model, by call id, decoded."""
    messages = request["body"]["messages"]
    if name == "openai":
        return {m["tool_call_id"]: json.loads(m["content"]) for m in messages if m["role"] == "tool"}
    return {
        b["tool_use_id"]: json.loads(b["content"])
        for m in messages
        if m["role"] == "user" and isinstance(m["content"], list)
        for b in m["content"]
        if b.get("type") == "tool_result"
    }


def system_of(name: str, request: dict[str, Any]) -> str:
    if name == "openai":
        return str(request["body"]["messages"][0]["content"])
    return str(request["body"]["system"])


@pytest.mark.parametrize("name", ["openai", "claude"])
async def test_create_then_update_a_document(upstream: Upstream, name: str) -> None:
    create = json.dumps({"title": "Rivers", "kind": "text"})
    upstream.enqueue(
        {"tool_call": {"id": "call_doc1", "name": "createDocument", "arguments": create}},
        {"text": ESSAY, "usage": {"input": 30, "output": 40}},
        {"text": ["Your ", "essay ", "is ready."]},
    )
    async with serve(upstream, name) as client:
        frames = await chat(client, name, "Write an essay about rivers", "t-doc")

        parts = tool_parts(frames)
        assert [p["type"] for p in parts] == [
            "data-kind",
            "data-id",
            "data-title",
            "data-clear",
            *["data-textDelta"] * len(ESSAY),
            "data-finish",
        ]
        assert [p["data"] for p in parts if p["type"] == "data-textDelta"] == ESSAY  # in order, as streamed
        document_id = parts[1]["data"]
        document = await documents(client).get_document(document_id)
        assert document is not None
        assert (document.content, document.title, document.kind, document.user_id) == (
            "".join(ESSAY),
            "Rivers",
            "text",
            "alice",
        )
        assert text_of(frames) == "Your essay is ready."
        finish = frames[-1].data
        assert finish["finishReason"] == "stop"
        # Charged: the tool call (20 in / 10 out), the nested generation (30 / 40) and the answer (12 / 3).
        assert finish["messageMetadata"]["usage"] == {"inputTokens": 62, "outputTokens": 53}

        first, nested, final = upstream.requests()
        offered = [t["function"]["name"] if name == "openai" else t["name"] for t in first["body"]["tools"]]
        assert {"getWeather", "createDocument", "updateDocument", "requestSuggestions"} <= set(offered)
        # The nested call: same model, no tools, the text prompt, the title as the user's message.
        assert nested["body"]["model"] == MODELS[name] and "tools" not in nested["body"]
        assert system_of(name, nested).startswith("Write about the given topic.")
        assert nested["body"]["messages"][-1]["content"] in ("Rivers", [{"type": "text", "text": "Rivers"}])
        expected = {"id": document_id, "title": "Rivers", "kind": "text", "content": CREATED}
        assert tool_results(name, final) == {"call_doc1": expected}

        # The answer is stored without any of the transient parts.
        answer = (await services(client).store.list_messages("t-doc"))[-1]
        assert [p.type for p in answer.parts if p.type != "step-start"] == ["tool-createDocument", "text"]

        # updateDocument: a second version, from the current content and the description.
        update = json.dumps({"id": document_id, "description": "Add a conclusion."})
        upstream.enqueue(
            {"tool_call": {"id": "call_doc2", "name": "updateDocument", "arguments": update}},
            {"text": ["# Rivers\n\n", "Rivers flow.\n\n", "In short: water."]},
            {"text": ["Updated."]},
        )
        frames = await chat(client, name, "Add a conclusion", "t-doc")
        parts = tool_parts(frames)
        assert [p["type"] for p in parts] == ["data-clear", *["data-textDelta"] * 3, "data-finish"]
        versions = await documents(client).list_versions(document_id)
        assert [v.content for v in versions] == ["".join(ESSAY), "# Rivers\n\nRivers flow.\n\nIn short: water."]
        _, _, _, _, rewrite, final = upstream.requests()
        assert system_of(name, rewrite).endswith("".join(ESSAY))
        expected = {"id": document_id, "title": "Rivers", "kind": "text", "content": UPDATED}
        assert tool_results(name, final)["call_doc2"] == expected


SUGGESTED = {
    "suggestions": [
        {"originalSentence": "Rivers flow.", "suggestedSentence": "Rivers run.", "description": "Livelier verb."},
        {"originalSentence": "They is wet.", "suggestedSentence": "They are wet.", "description": "Agreement."},
    ]
}


@pytest.mark.parametrize("name", ["openai", "claude"])
async def test_request_suggestions_through_structured_output(upstream: Upstream, name: str) -> None:
    answer = json.dumps(SUGGESTED)
    # OpenAI answers a json_schema response_format with content; Anthropic with the forced tool's input.
    nested: dict[str, Any] = (
        {"text": [answer[i : i + 20] for i in range(0, len(answer), 20)]}
        if name == "openai"
        else {"tool_call": {"id": "toolu_s", "name": "suggestions", "arguments": answer, "pieces": 5}}
    )
    async with serve(upstream, name) as client:
        document = await documents(client).save_document(
            Document(
                id="doc-9",
                created_at=1_700_000_000_000,
                title="Rivers",
                content="Rivers flow. They is wet.",
                kind="text",
                user_id="alice",
            )
        )
        args = json.dumps({"documentId": "doc-9"})
        upstream.enqueue(
            {"tool_call": {"id": "call_s", "name": "requestSuggestions", "arguments": args}}, nested, {"text": ["OK."]}
        )
        frames = await chat(client, name, "Suggest edits", "t-sug")

        sent = [p["data"] for p in tool_parts(frames) if p["type"] == "data-suggestion"]
        assert [(s["originalText"], s["suggestedText"]) for s in sent] == [
            ("Rivers flow.", "Rivers run."),
            ("They is wet.", "They are wet."),
        ]
        stored = await documents(client).list_suggestions("doc-9")
        assert sorted(s.id for s in stored) == sorted(s["id"] for s in sent)
        assert all(s.document_created_at == document.created_at for s in stored)

        _, request, final = upstream.requests()
        if name == "openai":
            form = request["body"]["response_format"]
            assert form["type"] == "json_schema" and form["json_schema"]["name"] == "suggestions"
            assert form["json_schema"]["strict"] is True
        else:
            assert request["body"]["tool_choice"] == {"type": "tool", "name": "suggestions"}
            assert [t["name"] for t in request["body"]["tools"]] == ["suggestions"]
        assert request["body"]["messages"][-1]["content"] in (
            document.content,
            [{"type": "text", "text": document.content}],
        )
        result = tool_results(name, final)["call_s"]
        assert result["id"] == "doc-9" and result["message"].startswith("2 suggestion")


@pytest.mark.parametrize("name", ["openai", "claude"])
async def test_a_stop_during_the_nested_generation_ends_it(upstream: Upstream, name: str) -> None:
    create = json.dumps({"title": "Long", "kind": "text"})
    upstream.enqueue(
        {"tool_call": {"id": "call_long", "name": "createDocument", "arguments": create}},
        {"text": [f"w{i} " for i in range(300)], "delay_ms": 20},  # 6 s of content
    )
    async with serve(upstream, name) as client:
        loop = asyncio.get_running_loop()
        started = loop.time()
        task = asyncio.create_task(client.post("/api/chat", json=body(name, "long", "t-stop"), headers=ALICE))
        buffer = services(client).buffer
        for _ in range(500):
            result = await buffer.read("t-stop", None)
            if result is not None and sum(b"data-textDelta" in e.data for e in result.entries) >= 3:
                break
            await asyncio.sleep(0.01)
        assert (await client.post("/api/chat/t-stop/stop", headers=ALICE)).status_code == 200
        r = await task
        await idle(client, "t-stop")
        frames = [f for f in parse_frames(r.text) if f.data != "[DONE]"]
        assert loop.time() - started < 4
        deltas = [f for f in frames if f.type == "data-textDelta"]
        assert 3 <= len(deltas) < 300
        assert frames[-1].data["finishReason"] == "interrupted"
        assert not [f for f in frames if f.type in ("data-finish", "tool-output-available", "tool-output-error")]
        document_id = next(f.data["data"] for f in frames if f.type == "data-id")
        assert await documents(client).list_versions(document_id) == []  # a stopped generation stores nothing
        assert frames[-1].data["messageMetadata"]["usage"]["estimated"] is True  # the cut-short call is charged
        assert len(upstream.requests()) == 2
