"""Seed 003 on its own: creating chats, streaming into them, reading them back; the userId check; session
cookies with their CSRF rules; workflow presets; the `approval_required` event and its continuation; the
host's bot check."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from chatstream import Settings, create_app
from chatstream.errors import ConfigError
from chatstream.providers.base import (
    ModelEvent,
    ModelFinish,
    ModelText,
    ModelToolCall,
    ModelToolCallStart,
    ProviderRequest,
)
from chatstream.providers.mock import MockProvider
from chatstream.settings import ProviderSettings, Secret
from chatstream.tools.base import Tool
from chatstream.tools.weather import weather_tool
from tests.api.conftest import ALICE, BOB
from tests.fakes.upstream import FakeUpstream
from tests.support.settings import make_settings, services_of
from tests.support.sse import parse_frames
from tests.tools.conftest import FakeWeather, Ledger

pytestmark = pytest.mark.timeout(30)

ORIGIN = "https://app.example.com"
COOKIE = "chat_session"
WORKFLOW = "3f1c2a9e-5b7d-4e2a-9c1f-0a6b8d4e2f10"
TOOL_FREE = "7d6e5f4a-3b2c-4d1e-8f9a-0b1c2d3e4f5a"


async def wait_idle(client: AsyncTestClient[Any], chat_id: str) -> None:
    services = services_of(client.app)
    for _ in range(500):
        if await services.registry.active(chat_id) is None:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("run did not end")


def events(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return [f.data for f in parse_frames(response.text)]


async def create(client: AsyncTestClient[Any], body: dict[str, Any] | None = None, **headers: str) -> str:
    r = await client.post("/api/chats", json=body or {}, headers=headers or ALICE)
    assert r.status_code == 201, r.text
    chat_id: str = r.json()["chatId"]
    return chat_id


async def stream(client: AsyncTestClient[Any], chat_id: str, body: dict[str, Any], **kw: Any) -> Any:
    kw.setdefault("headers", ALICE)
    return await client.post(f"/api/chats/{chat_id}/messages/stream", json=body, **kw)


def tool_call(name: str, args: dict[str, Any], call_id: str = "call_1") -> list[ModelEvent]:
    return [
        ModelToolCallStart(id=call_id, name=name),
        ModelToolCall(id=call_id, name=name, arguments=json.dumps(args)),
        ModelFinish(reason="tool-calls"),
    ]


ANSWER: list[ModelEvent] = [ModelText(text="Quantum"), ModelText(text=" computing"), ModelFinish(reason="stop")]


# -- chats: create, stream, read back ---------------------------------------------------------------


@pytest.fixture
def settings() -> Settings:
    return make_settings(title_generation=False)


async def test_create_stream_and_list_messages(client: AsyncTestClient[Any], mock: MockProvider) -> None:
    r = await client.post("/api/chats", json={"title": "  Physics   questions ", "modelId": "mock-1"}, headers=ALICE)
    assert r.status_code == 201
    created = r.json()
    assert set(created) == {"chatId", "title", "createdAt"}
    assert uuid.UUID(created["chatId"]) and created["title"] == "Physics questions"
    assert created["createdAt"].endswith("Z")
    chat_id = created["chatId"]
    # A new chat has no messages yet, and is filed under the seed-003 channel.
    empty = await client.get(f"/api/chats/{chat_id}/messages", headers=ALICE)
    assert empty.json() == {"chatId": chat_id, "messages": [], "hasMore": False}
    listed = await client.get("/api/chat/conversations", params={"channel": "seed003"}, headers=ALICE)
    assert [c["id"] for c in listed.json()["conversations"]] == [chat_id]

    mock.enqueue(ANSWER)
    # No modelId: the chat's model answers.
    got = events(await stream(client, chat_id, {"content": "Explain quantum computing"}))
    assert [e["type"] for e in got] == ["start", "content", "content", "end"]
    assert got[0]["messageId"] == got[-1]["messageId"]
    await wait_idle(client, chat_id)

    r = await client.get(f"/api/chats/{chat_id}/messages", headers=ALICE)
    assert r.status_code == 200
    page = r.json()
    assert page["chatId"] == chat_id and page["hasMore"] is False
    user, answer = page["messages"]
    assert (user["role"], user["content"], user["modelId"]) == ("user", "Explain quantum computing", None)
    assert (answer["role"], answer["content"], answer["modelId"]) == ("assistant", "Quantum computing", "mock-1")
    assert answer["id"] == got[0]["messageId"]
    assert answer["createdAt"].endswith("Z") and answer["parts"]
    # Paging back: the most recent one, then the one before it.
    last = (await client.get(f"/api/chats/{chat_id}/messages", params={"limit": 1}, headers=ALICE)).json()
    assert [m["id"] for m in last["messages"]] == [answer["id"]] and last["hasMore"] is True
    before = await client.get(f"/api/chats/{chat_id}/messages", params={"before": answer["id"]}, headers=ALICE)
    assert [m["id"] for m in before.json()["messages"]] == [user["id"]]


async def test_chat_errors(client: AsyncTestClient[Any]) -> None:
    unknown_model = await client.post("/api/chats", json={"modelId": "gpt-nope"}, headers=ALICE)
    assert unknown_model.status_code == 400 and "unknown model" in unknown_model.json()["error"]
    for body in ({"title": "   "}, {"title": 5}, {"chatId": "a/b"}, {"surprise": 1}):
        r = await client.post("/api/chats", json=body, headers=ALICE)
        assert r.status_code == 400, body
    assert (await client.post("/api/chats", content=b"{", headers=ALICE)).status_code == 400
    assert (await client.post("/api/chats", json={})).status_code == 401
    # Unknown chats: 404 for the stream (as before) and for the listing.
    missing = str(uuid.uuid4())
    assert (await stream(client, missing, {"content": "x", "modelId": "mock-1"})).status_code == 404
    assert (await client.get(f"/api/chats/{missing}/messages", headers=ALICE)).status_code == 404
    # Someone else's chat: 403 to read and to write.
    chat_id = await create(client)
    assert (await client.get(f"/api/chats/{chat_id}/messages", headers=BOB)).status_code == 403
    assert (await stream(client, chat_id, {"content": "x"}, headers=BOB)).status_code == 403
    limit = await client.get(f"/api/chats/{chat_id}/messages", params={"limit": 0}, headers=ALICE)
    assert limit.status_code == 400
    # A chosen id: taken is 409, whoever has it.
    chosen = str(uuid.uuid4())
    assert (await create(client, {"chatId": chosen})) == chosen
    for headers in (ALICE, BOB):
        assert (await client.post("/api/chats", json={"chatId": chosen}, headers=headers)).status_code == 409


async def test_user_id_must_be_the_callers(client: AsyncTestClient[Any], mock: MockProvider) -> None:
    chat_id = await create(client)
    r = await stream(client, chat_id, {"content": "x", "modelId": "mock-1", "userId": "bob"})
    assert r.status_code == 403 and r.json()["error"] == "userId does not match the authenticated user"
    assert (await client.get(f"/api/chats/{chat_id}/messages", headers=ALICE)).json()["messages"] == []
    assert mock.requests == []
    mock.enqueue(ANSWER)
    ok = events(await stream(client, chat_id, {"content": "x", "modelId": "mock-1", "userId": "alice"}))
    assert ok[-1]["type"] == "end"


async def test_untitled_chat_is_titled_by_its_first_message() -> None:
    async with AsyncTestClient(create_app(make_settings())) as client:
        chat_id = await create(client)
        assert "title" not in (await client.get("/api/chat/conversations", headers=ALICE)).json()["conversations"][0]
        events(await stream(client, chat_id, {"content": "Explain quantum computing", "modelId": "mock-1"}))
        await wait_idle(client, chat_id)
        (listed,) = (await client.get("/api/chat/conversations", headers=ALICE)).json()["conversations"]
        assert listed.get("title")
        # A title the user gave is kept.
        titled = await create(client, {"title": "Mine"})
        events(await stream(client, titled, {"content": "Explain quantum computing", "modelId": "mock-1"}))
        await wait_idle(client, titled)
        page = (await client.get("/api/chat/conversations", headers=ALICE)).json()["conversations"]
        assert {c["id"]: c["title"] for c in page}[titled] == "Mine"


# -- session cookies and CSRF -----------------------------------------------------------------------


def cookie_client(app: Any, token: str = "alice-token") -> AsyncTestClient[Any]:
    client = AsyncTestClient(app)
    client.cookies.set(COOKIE, token)
    return client


@pytest.fixture
async def cookied(mock: MockProvider) -> AsyncIterator[AsyncTestClient[Any]]:
    settings = make_settings(title_generation=False, session_cookie=COOKIE, cors_origins=(ORIGIN,))
    async with cookie_client(create_app(settings, providers={"mock": mock})) as client:
        yield client


async def chats_of(client: AsyncTestClient[Any], headers: dict[str, str]) -> list[str]:
    r = await client.get("/api/chat/conversations", headers=headers)
    return [c["id"] for c in r.json()["conversations"]]


async def test_cookie_authenticates_and_writes_need_json_and_origin(
    cookied: AsyncTestClient[Any], mock: MockProvider
) -> None:
    # A read needs nothing more than the cookie.
    assert (await cookied.get("/api/chat/conversations")).status_code == 200
    # A write: JSON and an allowed Origin.
    ok = await cookied.post("/api/chats", json={"title": "by cookie"}, headers={"Origin": ORIGIN})
    assert ok.status_code == 201
    chat_id = ok.json()["chatId"]
    assert await chats_of(cookied, ALICE) == [chat_id]

    refusals: list[dict[str, Any]] = [
        # No JSON content type (what a cross-site form sends).
        {"content": b'{"title": "x"}', "headers": {"Origin": ORIGIN, "Content-Type": "text/plain"}},
        {"content": b"title=x", "headers": {"Origin": ORIGIN, "Content-Type": "application/x-www-form-urlencoded"}},
        {"content": b'{"title": "x"}', "headers": {"Origin": ORIGIN}},
        # Another site's Origin, or none.
        {"json": {"title": "x"}, "headers": {"Origin": "https://evil.example"}},
        {"json": {"title": "x"}, "headers": {}},
    ]
    for kw in refusals:
        r = await cookied.post("/api/chats", **kw)
        assert r.status_code == 403, kw
        assert r.json()["code"] == "csrf"
    # Refused streams, deletes and preference writes store nothing and run nothing.
    bad_stream = await cookied.post(
        f"/api/chats/{chat_id}/messages/stream",
        content=json.dumps({"content": "hi", "modelId": "mock-1"}).encode(),
        headers={"Origin": ORIGIN, "Content-Type": "text/plain"},
    )
    assert bad_stream.status_code == 403
    assert (
        await cookied.delete("/api/chat", params={"id": chat_id}, headers={"Origin": "https://evil.example"})
    ).status_code == 403
    assert (await cookied.put("/api/chat/preferences", json={"model": "mock-1"})).status_code == 403
    assert await chats_of(cookied, ALICE) == [chat_id]
    assert (await cookied.get(f"/api/chats/{chat_id}/messages")).json()["messages"] == []
    assert (await cookied.get("/api/chat/preferences")).json()["model"] is None
    assert mock.requests == []

    # The stream by cookie, as a browser page of ours sends it.
    mock.enqueue(ANSWER)
    got = events(
        await cookied.post(
            f"/api/chats/{chat_id}/messages/stream",
            json={"content": "hi", "modelId": "mock-1", "userId": "alice"},
            headers={"Origin": ORIGIN, "Accept": "text/event-stream"},
        )
    )
    assert [e["type"] for e in got] == ["start", "content", "content", "end"]


async def test_header_beats_cookie(cookied: AsyncTestClient[Any]) -> None:
    # Bob's header with Alice's cookie: Bob's request (and no CSRF rule: the header is no ambient credential).
    r = await cookied.post("/api/chats", json={}, headers=BOB)
    assert r.status_code == 201
    assert r.json()["chatId"] in await chats_of(cookied, BOB)
    assert await chats_of(cookied, ALICE) == []
    # A bad header is a 401 even with a good cookie: the cookie is not a fallback.
    bad = await cookied.get("/api/chat/conversations", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    # A bad cookie alone is a 401 too.
    cookied.cookies.set(COOKIE, "nope")
    assert (await cookied.get("/api/chat/conversations")).status_code == 401


async def test_cookie_is_ignored_unless_configured(mock: MockProvider) -> None:
    async with cookie_client(create_app(make_settings(), providers={"mock": mock})) as client:
        assert (await client.get("/api/chat/conversations")).status_code == 401


async def test_cookie_carries_jwts_and_without_cors_origins_only_json_is_required(mock: MockProvider) -> None:
    jwt = pytest.importorskip("jwt")
    secret = "s" * 32
    settings = make_settings(session_cookie=COOKIE, jwt_secret=Secret(secret), title_generation=False)
    token = jwt.encode({"sub": "carol", "exp": 4_000_000_000}, secret, algorithm="HS256")
    async with cookie_client(create_app(settings, providers={"mock": mock}), token) as client:
        r = await client.post("/api/chats", json={})  # no Origin: none is configured to check against
        assert r.status_code == 201
        listed = (await client.get("/api/chat/conversations")).json()["conversations"]
        assert [c["userId"] for c in listed] == ["carol"]
        r = await client.post("/api/chats", content=b"{}", headers={"Content-Type": "text/plain"})
        assert r.status_code == 403


def test_session_cookie_name_is_checked() -> None:
    with pytest.raises(ConfigError, match="CHAT_SESSION_COOKIE"):
        Settings.from_env({"CHAT_SESSION_COOKIE": "bad name;", "CHAT_AUTH_TOKENS": "t:u"})
    assert Settings.from_env({"CHAT_SESSION_COOKIE": "sid"}).session_cookie == "sid"


# -- workflows ----------------------------------------------------------------------------------------


def write_workflows(tmp_path: Path, *presets: dict[str, Any]) -> str:
    path = tmp_path / "workflows.json"
    path.write_text(json.dumps(list(presets)))
    return str(path)


RESEARCH: dict[str, Any] = {
    "id": WORKFLOW,
    "name": "Weather desk",
    "system": "You are the weather desk. Always answer in haiku.",
    "tools": ["getWeather"],
    "model": "gpt-4o-mini",
    "maxSteps": 2,
}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream.start(tokens=3) as upstream:
        yield upstream


@pytest.fixture
async def upstream_client(fake: FakeUpstream, tmp_path: Path) -> AsyncIterator[tuple[AsyncTestClient[Any], str]]:
    ns = fake.namespace()
    settings = make_settings(
        title_generation=False,
        providers={"openai": ProviderSettings(api_key=Secret("sk-test"), base_url=f"{fake.url}/{ns}/v1")},
        workflows_path=write_workflows(tmp_path, RESEARCH),
    )
    tools: list[Tool[Any]] = [weather_tool(FakeWeather()), Ledger().tool()]
    async with AsyncTestClient(create_app(settings, tools=tools)) as client:
        yield client, ns


async def test_workflow_reaches_the_upstream(
    upstream_client: tuple[AsyncTestClient[Any], str], fake: FakeUpstream
) -> None:
    client, ns = upstream_client
    chat_id = await create(client, {"modelId": "gpt-4o"})
    # Without the workflow: both tools, the chat's model, our system prompt alone.
    events(await stream(client, chat_id, {"content": "Hello"}))
    await wait_idle(client, chat_id)
    # With it (any case of its UUID): its text added to the system prompt, its tools only, its model.
    got = events(await stream(client, chat_id, {"content": "Weather?", "workflowId": WORKFLOW.upper()}))
    assert got[-1]["type"] == "end"
    await wait_idle(client, chat_id)
    # The workflow's model was for that message only: the chat stays on its own.
    events(await stream(client, chat_id, {"content": "And now?"}))
    await wait_idle(client, chat_id)
    # The request naming a model wins over the workflow's.
    events(await stream(client, chat_id, {"content": "Again", "workflowId": WORKFLOW, "modelId": "gpt-4.1"}))
    await wait_idle(client, chat_id)
    plain, preset, after, named = (r["body"] for r in fake.requests(ns))
    assert after["model"] == "gpt-4o" and "weather desk" not in json.dumps(after["messages"][0])

    def system_of(body: dict[str, Any]) -> str:
        return "\n".join(m["content"] for m in body["messages"] if m["role"] == "system")

    def tools_of(body: dict[str, Any]) -> list[str]:
        return sorted(t["function"]["name"] for t in body.get("tools", []))

    assert "weather desk" not in system_of(plain)
    assert tools_of(plain) == ["getWeather", "transfer"] and plain["model"] == "gpt-4o"
    assert system_of(preset).endswith(RESEARCH["system"]) and len(system_of(preset)) > len(RESEARCH["system"])
    assert tools_of(preset) == ["getWeather"]
    assert preset["model"] == "gpt-4o-mini"
    assert named["model"] == "gpt-4.1" and tools_of(named) == ["getWeather"]
    assert RESEARCH["system"] in system_of(named)


async def test_workflow_id_errors(upstream_client: tuple[AsyncTestClient[Any], str], fake: FakeUpstream) -> None:
    client, ns = upstream_client
    chat_id = await create(client, {"modelId": "gpt-4o"})
    unknown = await stream(client, chat_id, {"content": "x", "workflowId": str(uuid.uuid4())})
    assert unknown.status_code == 404 and unknown.json() == {"error": "workflow not found"}
    for bad in ("research", "3f1c2a9e5b7d4e2a9c1f0a6b8d4e2f10x", ""):
        r = await stream(client, chat_id, {"content": "x", "workflowId": bad})
        assert r.status_code == 400 and r.json()["error"] == "workflowId must be a UUID", bad
    r = await stream(client, chat_id, {"content": "x", "workflowId": 7})
    assert r.status_code == 400
    assert (await client.get(f"/api/chats/{chat_id}/messages", headers=ALICE)).json()["messages"] == []
    assert fake.requests(ns) == []


async def test_workflow_caps_steps_and_survives_approval(mock: MockProvider, tmp_path: Path) -> None:
    ledger = Ledger()
    preset: dict[str, Any] = {
        "id": WORKFLOW,
        "name": "Payments",
        "system": "Only move money when asked.",
        "tools": ["transfer"],
        "maxSteps": 2,
    }
    settings = make_settings(title_generation=False, workflows_path=write_workflows(tmp_path, preset))
    async with AsyncTestClient(create_app(settings, providers={"mock": mock}, tools=[ledger.tool()])) as client:
        chat_id = await create(client, {"modelId": "mock-1"})
        mock.enqueue(tool_call("transfer", {"to": "bob", "amount": 5}))
        got = events(await stream(client, chat_id, {"content": "Pay bob 5", "workflowId": WORKFLOW}))
        assert [e["type"] for e in got] == ["start", "tool_call", "approval_required", "end"]
        required = got[2]
        assert required == {
            "type": "approval_required",
            "toolCallId": "call_1",
            "toolName": "transfer",
            "toolArgs": {"to": "bob", "amount": 5},
            "runId": required["runId"],
        }
        assert required["runId"].startswith("run-")
        await wait_idle(client, chat_id)
        # The continuation keeps the workflow: the model's next call (its second step) still has the
        # workflow's text and tools, and a third step would exceed its maxSteps.
        mock.enqueue(tool_call("transfer", {"to": "bob", "amount": 6}, call_id="call_2"))
        r = await client.post(
            "/api/chat/approve",
            json={
                "runId": required["runId"],
                "threadId": chat_id,
                "toolCallId": "call_1",
                "approved": True,
                "dialect": "seed003",
            },
            headers=ALICE,
        )
        cont = events(r)
        assert [e["type"] for e in cont] == [
            "start",
            "tool_call",
            "tool_result",
            "tool_call",
            "approval_required",
            "end",
        ]
        assert cont[2] == {
            "type": "tool_result",
            "toolName": "transfer",
            "result": {"ok": True, "to": "bob", "amount": 5},
        }
        assert [t[:2] for t in ledger.transfers] == [("bob", 5)]
        second: ProviderRequest = mock.requests[-1]
        assert second.system is not None and second.system.endswith(preset["system"])
        assert [t.name for t in second.tools] == ["transfer"]
        await wait_idle(client, chat_id)
        # Approving the second call: the workflow's maxSteps (2) is reached, so no third model step.
        calls = len(mock.requests)
        r = await client.post(
            "/api/chat/approve",
            json={"runId": cont[4]["runId"], "threadId": chat_id, "approved": True, "dialect": "seed003"},
            headers=ALICE,
        )
        last = events(r)
        assert [e["type"] for e in last] == ["start", "tool_call", "tool_result", "end"]
        assert len(mock.requests) == calls
        assert [t[:2] for t in ledger.transfers] == [("bob", 5), ("bob", 6)]


async def test_approval_required_in_seed003_then_ui_continuation_by_default(mock: MockProvider, tmp_path: Path) -> None:
    weather = FakeWeather()
    settings = make_settings(title_generation=False, approval_tools=("getWeather",))
    async with AsyncTestClient(create_app(settings, providers={"mock": mock}, tools=[weather_tool(weather)])) as client:
        chat_id = await create(client, {"modelId": "mock-1"})
        mock.enqueue(tool_call("getWeather", {"city": "Paris"}))
        got = events(await stream(client, chat_id, {"content": "Weather in Paris?"}))
        assert [e["type"] for e in got][-2:] == ["approval_required", "end"]
        await wait_idle(client, chat_id)
        mock.enqueue(ANSWER)
        r = await client.post(
            "/api/chat/approve", json={"runId": got[-2]["runId"], "threadId": chat_id, "approved": False}, headers=ALICE
        )
        frames = parse_frames(r.text)
        assert r.headers["x-vercel-ai-ui-message-stream"] == "v1"
        assert frames[-1].data == "[DONE]"
        assert "tool-output-denied" in [f.type for f in frames]
        assert weather.asked == []
        bad = await client.post(
            "/api/chat/approve", json={"runId": "run-x", "threadId": chat_id, "dialect": "klingon"}, headers=ALICE
        )
        assert bad.status_code == 400


def test_workflow_files_are_checked(tmp_path: Path) -> None:
    def app_with(content: str) -> Any:
        path = tmp_path / "w.json"
        path.write_text(content)
        return create_app(make_settings(workflows_path=str(path)))

    good = {"id": WORKFLOW, "name": "n", "system": "s", "tools": []}
    cases = {
        "not valid JSON": "[{",
        "Expected `array`": "{}",
        "missing required field `tools`": json.dumps([{"id": WORKFLOW, "name": "n", "system": "s"}]),
        "unknown field `maxstep`": json.dumps([{**good, "maxstep": 3}]),
        "is not a UUID": json.dumps([{**good, "id": "research"}]),
        "is used twice": json.dumps([good, {**good, "id": WORKFLOW.upper()}]),
        "maxSteps must be at least 1": json.dumps([{**good, "maxSteps": 0}]),
    }
    for message, content in cases.items():
        with pytest.raises(ConfigError, match=message):
            app_with(content)
    with pytest.raises(ConfigError, match="cannot read the file"):
        create_app(make_settings(workflows_path=str(tmp_path / "missing.json")))
    assert Settings.from_env({"CHAT_WORKFLOWS": "/x.json"}).workflows_path == "/x.json"


@pytest.mark.parametrize(
    ("preset", "message"),
    [
        ({"tools": ["webSearchPro"]}, "unknown tool 'webSearchPro'"),
        ({"model": "gpt-nope"}, "unknown model"),
        ({"provider": "openai"}, "not configured"),
    ],
)
async def test_workflow_tools_and_models_are_checked_at_start_up(
    tmp_path: Path, preset: dict[str, Any], message: str
) -> None:
    path = write_workflows(tmp_path, {"id": TOOL_FREE, "name": "n", "system": "s", "tools": [], **preset})
    app = create_app(make_settings(workflows_path=path))
    # The lifespan runs in a task group: the error may come wrapped in an ExceptionGroup.
    with pytest.raises((ConfigError, ExceptionGroup)) as caught:
        async with AsyncTestClient(app):
            pass
    if isinstance(caught.value, ExceptionGroup):
        assert caught.group_contains(ConfigError, match=message, depth=None)
    else:
        assert caught.match(message)


# -- the host's bot check -----------------------------------------------------------------------------


async def test_bot_check_refuses_run_starts_before_anything_is_stored(mock: MockProvider) -> None:
    asked: list[str] = []

    async def is_bot(request: Any) -> bool:
        asked.append(request.url.path)
        return bool(request.headers.get("x-bot") == "1")

    # One message a day: a refused request must not use it up.
    settings = make_settings(title_generation=False, quota_per_day={"premium": 1})
    bot = {**ALICE, "x-bot": "1"}
    async with AsyncTestClient(create_app(settings, providers={"mock": mock}, bot_check=is_bot)) as client:
        chat_id = await create(client, {"modelId": "mock-1"})  # creating a chat starts no run
        refused = [
            await client.post(
                "/api/chat", json={"parts": [{"type": "text", "text": "hi"}], "threadId": "b1"}, headers=bot
            ),
            await client.post("/api/chat", json={"message": "hi", "conversationId": "b2"}, headers=bot),
            await stream(client, chat_id, {"content": "hi"}, headers=bot),
            await client.post("/api/chat/approve", json={"runId": "run-1", "threadId": chat_id}, headers=bot),
            await client.post(f"/api/chat/conversations/{chat_id}/regenerate", json={}, headers=bot),
        ]
        for r in refused:
            assert (r.status_code, r.json()) == (401, {"error": "bot detected"})
        assert len(asked) == len(refused)
        assert await chats_of(client, ALICE) == [chat_id]
        assert (await client.get(f"/api/chats/{chat_id}/messages", headers=ALICE)).json()["messages"] == []
        assert mock.requests == []
        # A human gets through, on the quota the bot did not touch; reads never ask the check.
        mock.enqueue(ANSWER)
        assert events(await stream(client, chat_id, {"content": "hi"}))[-1]["type"] == "end"
        asked.clear()
        assert (await client.get(f"/api/chats/{chat_id}/messages", headers=bot)).status_code == 200
        assert asked == []


async def test_sync_bot_check(mock: MockProvider) -> None:
    app = create_app(make_settings(), providers={"mock": mock}, bot_check=lambda request: True)
    async with AsyncTestClient(app) as client:
        r = await client.post("/api/chat", json={"parts": [{"type": "text", "text": "hi"}]}, headers=ALICE)
        assert (r.status_code, r.json()) == (401, {"error": "bot detected"})


async def test_denied_call_in_the_seed003_continuation(mock: MockProvider) -> None:
    weather = FakeWeather()
    settings = make_settings(title_generation=False, approval_tools=("getWeather",))
    async with AsyncTestClient(create_app(settings, providers={"mock": mock}, tools=[weather_tool(weather)])) as client:
        chat_id = await create(client, {"modelId": "mock-1"})
        mock.enqueue(tool_call("getWeather", {"city": "Paris"}))
        got = events(await stream(client, chat_id, {"content": "Weather in Paris?"}))
        await wait_idle(client, chat_id)
        mock.enqueue(ANSWER)
        body = {"runId": got[-2]["runId"], "threadId": chat_id, "approved": False, "dialect": "seed003"}
        cont = events(await client.post("/api/chat/approve", json=body, headers=ALICE))
        assert [e["type"] for e in cont] == ["start", "tool_call", "tool_result", "content", "content", "end"]
        assert cont[2] == {"type": "tool_result", "toolName": "getWeather", "result": {"denied": True}}
        assert weather.asked == []
        # Decided once: the same decision again is a 409.
        again = await client.post("/api/chat/approve", json=body, headers=ALICE)
        assert again.status_code == 409
