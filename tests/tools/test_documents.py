"""The document tools in process, with the mock provider: createDocument and updateDocument stream a nested
generation as transient data parts and store versions; requestSuggestions asks for structured output; a
nested call is charged to the run and ends with it (stop, timeout)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

import msgspec
import pytest
from asgi_lifespan import LifespanManager

from chatstream import create_app
from chatstream.models import Document, Usage
from chatstream.providers.base import ModelFinish, ModelText, ModelToolCall, ModelToolCallStart, ModelUsage
from chatstream.providers.mock import MockProvider
from chatstream.tools.documents import CREATED, CUMULATIVE_EVERY, UPDATED, document_tools
from chatstream.tools.suggestions import SUGGESTIONS_OUTPUT
from chatstream.tools.weather import weather_tool
from tests.api.test_lifecycle import AppClient
from tests.support.asgi import idle, services
from tests.support.sse import Frame, parse_frames, text_of
from tests.tools.conftest import ALICE, BOB, FakeWeather, make_settings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from chatstream.settings import Settings
    from chatstream.store.base import DocumentStore

pytestmark = pytest.mark.timeout(30)

DATA_HEAD = ["data-kind", "data-id", "data-title", "data-clear"]


@contextlib.asynccontextmanager
async def serve(mock: MockProvider, settings: Settings | None = None) -> AsyncIterator[AppClient]:
    app = create_app(
        settings or make_settings(),
        providers={"mock": mock},
        tools=[weather_tool(FakeWeather()), *document_tools()],
    )
    async with LifespanManager(app), AppClient(app) as client:  # type: ignore[arg-type]
        yield client


async def send(client: AppClient, text: str, thread: str, headers: dict[str, str] = ALICE) -> list[Frame]:
    r = await client.post(
        "/api/chat", json={"parts": [{"type": "text", "text": text}], "threadId": thread}, headers=headers
    )
    assert r.status_code == 200, r.text
    await idle(client, thread)
    return [f for f in parse_frames(r.text) if f.data != "[DONE]"]


def documents(client: AppClient) -> DocumentStore:
    return services(client).runs.deps.documents


def data_parts(frames: list[Frame]) -> list[dict[str, Any]]:
    return [f.data for f in frames if (f.type or "").startswith("data-") and f.type not in ("data-status",)]


async def stored_answer(client: AppClient, thread: str) -> Any:
    return (await services(client).store.list_messages(thread))[-1]


def call(name: str, arguments: dict[str, Any], call_id: str = "c1") -> list[Any]:
    args = msgspec.json.encode(arguments).decode()
    return [
        ModelToolCallStart(id=call_id, name=name),
        ModelToolCall(id=call_id, name=name, arguments=args),
        ModelUsage(usage=Usage(input_tokens=10, output_tokens=5)),
        ModelFinish(reason="tool-calls"),
    ]


def text(*pieces: str, output_tokens: int | None = None) -> list[Any]:
    events: list[Any] = [ModelText(text=p) for p in pieces]
    if output_tokens is not None:
        events.append(ModelUsage(usage=Usage(input_tokens=7, output_tokens=output_tokens)))
    return [*events, ModelFinish(reason="stop")]


async def test_an_essay_request_streams_its_document_as_text_deltas_and_stores_it() -> None:
    """Done when: a chat asking for an essay stores a document whose content arrived as data-textDelta, in order."""
    mock = MockProvider()  # directive-less: the mock calls createDocument for an essay, as the demo does
    async with serve(mock) as client:
        frames = await send(client, "Write an essay about rivers", "t-essay")
        parts = [p for p in data_parts(frames) if p["type"] != "data-conversation"]
        kinds = [p["type"] for p in parts]
        assert kinds[:4] == DATA_HEAD
        assert kinds[-1] == "data-finish"
        deltas = [p["data"] for p in parts if p["type"] == "data-textDelta"]
        assert len(deltas) > 3 and kinds[4:-1] == ["data-textDelta"] * len(deltas)
        assert all(p["transient"] is True for p in parts)
        head = {p["type"]: p["data"] for p in parts[:4]}
        assert head["data-kind"] == "text" and head["data-title"] == "Rivers" and head["data-clear"] is None

        document = await documents(client).get_document(head["data-id"])
        assert document is not None
        assert document.content == "".join(deltas)
        assert (document.title, document.kind, document.user_id) == ("Rivers", "text", "alice")

        # The data parts come between the call's input and its output, and the model gets the chatbot's result.
        types = [f.type for f in frames]
        assert types.index("tool-input-available") < types.index("data-kind")
        assert types.index("data-finish") < types.index("tool-output-available")
        output = next(f.data["output"] for f in frames if f.type == "tool-output-available")
        assert output == {"id": document.id, "title": "Rivers", "kind": "text", "content": CREATED}
        assert "I ran the tool 1 time(s)" in text_of(frames)

        # The nested call: same model, the text prompt, the title as the prompt, no tools.
        outer, nested, final = mock.requests
        assert nested.model == outer.model and nested.tools == () and nested.output is None
        assert nested.system is not None and nested.system.startswith("Write about the given topic")
        assert [m.text for m in nested.messages] == ["Rivers"]
        assert any(p.output == output for p in final.messages[-1].parts if p.type == "tool-createDocument")

        # Nothing transient is stored with the answer.
        answer = await stored_answer(client, "t-essay")
        assert not [p for p in answer.parts if p.type.startswith("data-")]
        assert [p.type for p in answer.parts if p.type != "step-start"] == ["tool-createDocument", "text"]


async def test_update_document_writes_a_second_version_and_refuses_someone_elses() -> None:
    mock = MockProvider(
        script=[
            call("createDocument", {"title": "Notes", "kind": "text"}),
            text("First ", "draft."),
            text("Created."),
        ]
    )
    async with serve(mock) as client:
        frames = await send(client, "make notes", "t-upd")
        document_id = next(p["data"] for p in data_parts(frames) if p["type"] == "data-id")
        mock.enqueue(
            call("updateDocument", {"id": document_id, "description": "make it longer"}),
            text("Second, ", "longer ", "draft."),
            text("Updated."),
        )
        frames = await send(client, "longer please", "t-upd")
        kinds = [p["type"] for p in data_parts(frames) if p["type"] != "data-conversation"]
        assert kinds == ["data-clear", "data-textDelta", "data-textDelta", "data-textDelta", "data-finish"]
        output = next(f.data["output"] for f in frames if f.type == "tool-output-available")
        assert output == {"id": document_id, "title": "Notes", "kind": "text", "content": UPDATED}
        versions = await documents(client).list_versions(document_id)
        assert [v.content for v in versions] == ["First draft.", "Second, longer draft."]
        assert versions[0].created_at < versions[1].created_at
        # The rewrite was given the current content and the description.
        nested = mock.requests[4]
        assert nested.system is not None and nested.system.endswith("First draft.")
        assert [m.text for m in nested.messages] == ["make it longer"]

        # Bob cannot update Alice's document: a tool error to the model, no new version, no generation.
        mock.enqueue(call("updateDocument", {"id": document_id, "description": "vandalise"}), text("Sorry."))
        frames = await send(client, "update it", "t-bob", headers=BOB)
        errors = [f.data["errorText"] for f in frames if f.type == "tool-output-error"]
        assert errors == [f"no document with id {document_id!r}"]
        assert not [p for p in data_parts(frames) if p["type"] != "data-conversation"]
        assert len(await documents(client).list_versions(document_id)) == 2
        assert len(mock.requests) == 8  # the call and the answer: no nested generation


async def test_code_streams_the_content_so_far_without_its_fence() -> None:
    code = "```python\n" + "".join(f"print({i})  # line {i}\n" for i in range(12)) + "```"
    pieces = [code[i : i + 7] for i in range(0, len(code), 7)]
    mock = MockProvider(
        script=[call("createDocument", {"title": "Counter", "kind": "code"}), text(*pieces), text("ok")]
    )
    async with serve(mock) as client:
        frames = await send(client, "code please", "t-code")
        deltas = [p["data"] for p in data_parts(frames) if p["type"] == "data-codeDelta"]
        bare = "".join(f"print({i})  # line {i}\n" for i in range(12)).rstrip("\n")
        assert deltas[-1] == bare
        assert all(bare.startswith(d.rstrip("`").rstrip("\n")) or d.startswith("print") for d in deltas)
        assert not any(d.startswith("```") for d in deltas)
        assert 1 < len(deltas) <= len(code) // CUMULATIVE_EVERY + 2  # cumulative, so not one per piece
        document_id = next(p["data"] for p in data_parts(frames) if p["type"] == "data-id")
        document = await documents(client).get_document(document_id)
        assert document is not None and document.content == bare and document.kind == "code"
        assert "Python" in (mock.requests[1].system or "")


async def test_image_documents_need_a_provider_that_generates_images() -> None:
    mock = MockProvider(script=[call("createDocument", {"title": "A cat", "kind": "image"}), text("Cannot.")])
    async with serve(mock) as client:
        frames = await send(client, "draw a cat", "t-img")
        errors = [f.data["errorText"] for f in frames if f.type == "tool-output-error"]
        assert errors == ["this model cannot generate images: choose the kind text, code or sheet"]
        assert not [p for p in data_parts(frames) if p["type"] != "data-conversation"]
        assert len(mock.requests) == 2

    capable = MockProvider(
        generates_images=True,
        script=[call("createDocument", {"title": "A cat", "kind": "image"}), text("iVBORw0KGgo", "AAAA"), text("ok")],
    )
    async with serve(capable) as client:
        frames = await send(client, "draw a cat", "t-img2")
        parts = {p["type"]: p["data"] for p in data_parts(frames)}
        assert parts["data-kind"] == "image" and parts["data-imageDelta"] == "iVBORw0KGgoAAAA"


async def _seed(client: AppClient, content: str, user: str = "alice") -> Document:
    return await documents(client).save_document(
        Document(id="doc-1", created_at=1_700_000_000_000, title="Essay", content=content, kind="text", user_id=user)
    )


async def test_request_suggestions_asks_for_structured_output_and_stores_each() -> None:
    mock = MockProvider()  # answers structured output from the schema, its sentences taken from the prompt
    mock.enqueue(call("requestSuggestions", {"documentId": "doc-1"}))
    async with serve(mock) as client:
        document = await _seed(client, "Rivers flow. They is wet! Fish live in them.")
        frames = await send(client, "suggest edits", "t-sug")
        nested = mock.requests[1]
        assert nested.output == SUGGESTIONS_OUTPUT and nested.tools == ()
        assert [m.text for m in nested.messages] == [document.content]
        sent = [p["data"] for p in data_parts(frames) if p["type"] == "data-suggestion"]
        assert [s["originalText"] for s in sent] == ["Rivers flow.", "They is wet!", "Fish live in them."]
        stored = await documents(client).list_suggestions("doc-1")
        # Stored as streamed (the store orders by creation time, then by id: these share a millisecond).
        assert sorted((s.id, s.original_text, s.suggested_text) for s in stored) == sorted(
            (s["id"], s["originalText"], s["suggestedText"]) for s in sent
        )
        assert all(s.document_created_at == document.created_at and s.user_id == "alice" for s in stored)
        assert set(sent[0]) == {
            "id",
            "documentId",
            "originalText",
            "suggestedText",
            "description",
            "isResolved",
            "createdAt",
        }
        output = next(f.data["output"] for f in frames if f.type == "tool-output-available")
        assert output["id"] == "doc-1" and output["message"].startswith("3 suggestion")


async def test_invalid_structured_output_is_a_tool_error_and_stores_nothing() -> None:
    mock = MockProvider(
        script=[call("requestSuggestions", {"documentId": "doc-1"}), text('{"suggestions": [{"nope"'), text("x")]
    )
    async with serve(mock) as client:
        await _seed(client, "One sentence.")
        frames = await send(client, "suggest", "t-bad")
        errors = [f.data["errorText"] for f in frames if f.type == "tool-output-error"]
        assert len(errors) == 1 and errors[0].startswith("the model's suggestions were not valid")
        assert await documents(client).list_suggestions("doc-1") == []


async def test_a_nested_call_is_charged_to_the_run() -> None:
    # Reported usage: outer call 10 in / 5 out, nested 7 / 40, final answer 7 / 3.
    mock = MockProvider(
        script=[
            call("createDocument", {"title": "T", "kind": "text"}),
            text("Some ", "content.", output_tokens=40),
            text("Done.", output_tokens=3),
        ]
    )
    async with serve(mock) as client:
        frames = await send(client, "doc", "t-charge")
        usage = frames[-1].data["messageMetadata"]["usage"]
        assert usage == {"inputTokens": 24, "outputTokens": 48}
        assert (await stored_answer(client, "t-charge")).usage == Usage(input_tokens=24, output_tokens=48)


async def test_a_nested_call_that_reports_nothing_is_charged_an_estimate() -> None:
    content = "x" * 41  # 11 tokens estimated
    mock = MockProvider(
        script=[call("createDocument", {"title": "T", "kind": "text"}), text(content), text("Done.", output_tokens=3)]
    )
    async with serve(mock) as client:
        frames = await send(client, "doc", "t-est")
        usage = frames[-1].data["messageMetadata"]["usage"]
        assert usage == {"inputTokens": 17, "outputTokens": 5 + 11 + 3, "estimated": True}


async def test_a_budget_counts_nested_calls() -> None:
    """The user's daily token budget settles on the run's usage, nested calls included: without the nested
    call's 30 tokens the first run would have used 6 of 40, and the second send would be admitted."""
    mock = MockProvider(
        script=[call("createDocument", {"title": "T", "kind": "text"}), text("c", output_tokens=30), text("ok")]
    )
    settings = make_settings(tokens_per_day={"premium": 40}, token_estimate=5)
    async with serve(mock, settings) as client:
        frames = await send(client, "doc", "t-b1")
        assert frames[-1].data["messageMetadata"]["usage"]["outputTokens"] == 5 + 30 + 1  # "ok" estimated
        r = await client.post(
            "/api/chat", json={"parts": [{"type": "text", "text": "again"}], "threadId": "t-b2"}, headers=ALICE
        )
        assert r.status_code == 429, r.text  # 4 left, less than the 5 a run reserves


def slow_document(n: int = 400) -> list[list[Any]]:
    return [call("createDocument", {"title": "Long", "kind": "text"}), text(*(f"w{i} " for i in range(n)))]


async def test_a_stop_during_the_nested_generation_ends_it_and_stores_no_version() -> None:
    mock = MockProvider(delay=0.01, script=slow_document())  # 4 s of content at 10 ms a piece
    async with serve(mock) as client:
        loop = asyncio.get_running_loop()
        started = loop.time()
        task = asyncio.create_task(
            client.post(
                "/api/chat", json={"parts": [{"type": "text", "text": "long doc"}], "threadId": "t-stop"}, headers=ALICE
            )
        )
        buffer = services(client).buffer
        for _ in range(300):  # until the content streams
            result = await buffer.read("t-stop", None)
            if result is not None and any(b"data-textDelta" in e.data for e in result.entries):
                break
            await asyncio.sleep(0.01)
        assert (await client.post("/api/chat/t-stop/stop", headers=ALICE)).status_code == 200
        r = await task
        await idle(client, "t-stop")
        elapsed = loop.time() - started
        frames = [f for f in parse_frames(r.text) if f.data != "[DONE]"]
        deltas = [f for f in frames if f.type == "data-textDelta"]
        assert 0 < len(deltas) < 400 and elapsed < 3.5
        assert frames[-1].type == "finish" and frames[-1].data["finishReason"] == "interrupted"
        assert not [f for f in frames if f.type in ("data-finish", "tool-output-available", "tool-output-error")]
        document_id = next(f.data["data"] for f in frames if f.type == "data-id")
        assert await documents(client).list_versions(document_id) == []
        # What the nested call streamed before the stop is charged (estimated: a cut-short call reports nothing).
        usage = frames[-1].data["messageMetadata"]["usage"]
        assert usage["estimated"] is True and usage["outputTokens"] > 5
        await asyncio.sleep(0.1)
        assert len(mock.requests) == 2  # no further model call after the stop


async def test_the_runs_timeout_cuts_a_nested_generation_short() -> None:
    mock = MockProvider(delay=0.01, script=slow_document())
    async with serve(mock, make_settings(run_timeout_seconds=0.5)) as client:
        frames = await send(client, "long doc", "t-timeout")
        assert frames[-1].data["messageMetadata"]["endedBy"] == "timeout"
        deltas = [f for f in frames if f.type == "data-textDelta"]
        assert 0 < len(deltas) < 100
        document_id = next(f.data["data"] for f in frames if f.type == "data-id")
        assert await documents(client).list_versions(document_id) == []
