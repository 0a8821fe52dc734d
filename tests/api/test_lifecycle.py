"""The conversation lifecycle a chat UI drives, in process: regenerate, edit, a send that supersedes a
running answer, sticky models and preferences, titles from creation, honest token charges."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from litestar import Litestar

from chatstream import Settings, create_app
from chatstream.providers.mock import MockProvider
from tests.api.conftest import ALICE
from tests.support.settings import make_settings, services_of

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

# Litestar's test client serialises requests; these tests race a send against a running answer, so they use
# httpx's ASGI transport on the test's own event loop, which runs requests concurrently.


class AppClient(httpx.AsyncClient):
    """A client of one app, which it names for tests that reach into its services."""

    def __init__(self, app: Litestar) -> None:
        # The app itself, not `LifespanManager.app`: that one hands every request the same lifespan `state`
        # dict, where Litestar keeps per-request flags (two concurrent requests would see each other's
        # "response started").
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        super().__init__(transport=transport, base_url="http://test", timeout=30)
        self.app = app


async def wait_idle(client: AppClient, thread: str) -> None:
    """Wait until the conversation's run has released it (its stream ended)."""
    for _ in range(500):
        if await services_of(client.app).registry.active(thread) is None:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("run did not end")


@contextlib.asynccontextmanager
async def serve(settings: Settings, **providers: MockProvider) -> AsyncIterator[AppClient]:
    app = create_app(settings, providers=providers or {"mock": MockProvider()})
    async with LifespanManager(app), AppClient(app) as client:  # type: ignore[arg-type]
        yield client


@pytest.fixture
def mock() -> MockProvider:
    return MockProvider()


@pytest.fixture
async def client(mock: MockProvider) -> AsyncIterator[AppClient]:
    async with serve(make_settings(), mock=mock) as c:
        yield c


async def send(client: AppClient, body: dict[str, Any]) -> httpx.Response:
    return await client.post("/api/chat", json=body, headers=ALICE)


def ui(chat_id: str, text: str, *, mid: str, trigger: str = "submit-message", **extra: Any) -> dict[str, Any]:
    """An AI SDK transport body whose last message is the user's `text` (earlier history left out: the
    server's stored history is authoritative)."""
    message = {"id": mid, "role": "user", "parts": [{"type": "text", "text": text}]}
    return {"id": chat_id, "messages": [message], "trigger": trigger, **extra}


async def stored(client: AppClient, chat_id: str) -> list[dict[str, Any]]:
    got = await client.get(f"/api/chat/messages?conversationId={chat_id}&limit=100", headers=ALICE)
    assert got.status_code == 200, got.text
    messages: list[dict[str, Any]] = got.json()["messages"]
    return messages


def text(message: dict[str, Any]) -> str:
    return "".join(p.get("text", "") for p in message["parts"] if p["type"] == "text")


def sent_history(mock: MockProvider) -> list[tuple[str, str]]:
    """What the model received in its last request: (role, text) per message. The answer being built rides
    last, empty in a first step: the provider adapters drop empty steps, and so does this."""
    messages = mock.requests[-1].messages
    return [(m.role, m.text) for m in messages if m.role != "assistant" or any(p.type != "step-start" for p in m.parts)]


async def turn(client: AppClient, body: dict[str, Any]) -> None:
    response = await send(client, body)
    assert response.status_code == 200, response.text
    await wait_idle(client, body["id"])


async def test_regenerate_replaces_the_answer(client: AppClient, mock: MockProvider) -> None:
    await turn(client, ui("t-re", "question", mid="u1"))
    [_, first] = await stored(client, "t-re")
    await turn(client, ui("t-re", "question", mid="u1", trigger="regenerate-message", messageId=first["id"]))
    messages = await stored(client, "t-re")
    assert [(m["role"], m["id"] == first["id"]) for m in messages] == [("user", False), ("assistant", False)]
    assert sent_history(mock) == [("user", "question")]
    # Regenerating without a messageId replaces the last answer.
    await turn(client, ui("t-re", "question", mid="u1", trigger="regenerate-message"))
    assert [m["role"] for m in await stored(client, "t-re")] == ["user", "assistant"]
    assert sent_history(mock) == [("user", "question")]


async def test_regenerate_an_earlier_answer(client: AppClient, mock: MockProvider) -> None:
    await turn(client, ui("t-re2", "one", mid="u1"))
    await turn(client, ui("t-re2", "two", mid="u2"))
    first_answer = (await stored(client, "t-re2"))[1]["id"]
    await turn(client, ui("t-re2", "one", mid="u1", trigger="regenerate-message", messageId=first_answer))
    messages = await stored(client, "t-re2")
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[0]["id"] == "u1"
    assert sent_history(mock) == [("user", "one")]


async def test_edit_drops_what_follows(client: AppClient, mock: MockProvider) -> None:
    await turn(client, ui("t-ed", "one", mid="u1"))
    await turn(client, ui("t-ed", "two", mid="u2"))
    await turn(client, ui("t-ed", "one, edited", mid="u1", messageId="u1"))
    messages = await stored(client, "t-ed")
    assert [(m["role"], m["id"]) for m in messages][:1] == [("user", "u1")]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert text(messages[0]) == "one, edited"
    assert sent_history(mock) == [("user", "one, edited")]
    # Editing the second message of a longer conversation keeps what came before it.
    await turn(client, ui("t-ed", "three", mid="u3"))
    await turn(client, ui("t-ed", "three, edited", mid="u3", messageId="u3"))
    messages = await stored(client, "t-ed")
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert [r for r, _ in sent_history(mock)] == ["user", "assistant", "user"]
    assert sent_history(mock)[-1] == ("user", "three, edited")


async def test_regenerate_route(client: AppClient, mock: MockProvider) -> None:
    await turn(client, ui("t-rr", "hello", mid="u1"))
    old = (await stored(client, "t-rr"))[1]["id"]
    response = await client.post("/api/chat/conversations/t-rr/regenerate", json={}, headers=ALICE)
    assert response.status_code == 200, response.text
    assert response.headers["x-vercel-ai-ui-message-stream"] == "v1"
    await wait_idle(client, "t-rr")
    messages = await stored(client, "t-rr")
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[1]["id"] != old
    assert sent_history(mock) == [("user", "hello")]
    for body, status in [({"messageId": "u1"}, 400), ({"messageId": "nope"}, 404), ({"extra": 1}, 400)]:
        got = await client.post("/api/chat/conversations/t-rr/regenerate", json=body, headers=ALICE)
        assert got.status_code == status, (body, got.text)
    assert (await client.post("/api/chat/conversations/zz/regenerate", json={}, headers=ALICE)).status_code == 404
    assert [m["role"] for m in await stored(client, "t-rr")] == ["user", "assistant"]  # refused: nothing changed


async def test_a_send_supersedes_the_running_answer(client: AppClient, mock: MockProvider) -> None:
    # The first response is read in the background (a test client returns once the body is complete).
    first = asyncio.create_task(send(client, ui("t-sup", "long mock:tokens=400 mock:delay=10", mid="u1")))
    await asyncio.sleep(0.3)  # some 30 tokens of the first answer are out
    second = await send(client, ui("t-sup", "something else", mid="u2"))
    assert second.status_code == 200, second.text
    assert (await first).status_code == 200
    assert '"finishReason":"interrupted"' in (await first).text  # its readers saw its end
    await wait_idle(client, "t-sup")
    messages = await stored(client, "t-sup")
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[1]["finishReason"] == "interrupted"
    assert text(messages[1]).startswith("t0 t1 t2 t3 ")
    assert messages[3]["finishReason"] == "stop"
    assert [r for r, _ in sent_history(mock)] == ["user", "assistant", "user"]


async def test_reject_policy_keeps_the_409() -> None:
    async with serve(make_settings(busy_policy="reject")) as client:
        first = asyncio.create_task(send(client, ui("t-rej", "long mock:tokens=200 mock:delay=10", mid="u1")))
        await asyncio.sleep(0.2)
        second = await send(client, ui("t-rej", "again", mid="u2"))
        assert second.status_code == 409
        assert second.json()["code"] == "run_active"
        await client.post("/api/chat/t-rej/stop", headers=ALICE)
        assert (await first).status_code == 200
        await wait_idle(client, "t-rej")


async def test_models_are_sticky_and_default_means_the_users() -> None:
    main, other = MockProvider(), MockProvider(name="other")
    async with serve(make_settings(title_generation=False), mock=main, other=other) as client:
        await turn(client, ui("t-st", "hi", mid="u1", provider="other"))
        await turn(client, ui("t-st", "again", mid="u2"))  # names nothing: stays on `other`
        assert len(other.requests) == 2 and not main.requests
        conversation = await services_of(client.app).store.get_conversation("t-st")
        assert conversation is not None and conversation.provider == "other"
        await turn(client, ui("t-st", "switch", mid="u3", provider="mock"))  # naming one switches, and sticks
        await turn(client, ui("t-st", "stay", mid="u4"))
        assert len(main.requests) == 2
        conversation = await services_of(client.app).store.get_conversation("t-st")
        assert conversation is not None and conversation.provider == "mock"
        # `default` is the user's default: their preference, else the server's.
        await client.put("/api/chat/preferences", json={"provider": "other"}, headers=ALICE)
        await turn(client, ui("t-st", "default please", mid="u5", provider="default"))
        assert len(other.requests) == 3
        await turn(client, ui("t-new", "fresh", mid="n1"))  # a new conversation naming nothing: the preference
        assert len(other.requests) == 4


async def test_seed002_messages_shape_keeps_its_selectors() -> None:
    main, other = MockProvider(), MockProvider(name="other")
    async with serve(make_settings(title_generation=False), mock=main, other=other) as client:
        body = ui("t-002", "hi", mid="u1", selectedChatModel="other/mock-1", selectedVisibilityType="public")
        await turn(client, body)
        assert len(other.requests) == 1
        conversation = await services_of(client.app).store.get_conversation("t-002")
        assert conversation is not None and conversation.visibility == "public"


async def test_a_new_conversation_has_a_title_at_once(client: AppClient) -> None:
    response = await send(client, ui("t-title", "Plan a trip to Lisbon mock:delay=5", mid="u1"))
    assert response.status_code == 200
    listed = (await client.get("/api/chat/conversations", headers=ALICE)).json()["conversations"]
    assert listed[0]["id"] == "t-title"
    assert listed[0]["title"]
    await wait_idle(client, "t-title")


@pytest.mark.parametrize("how", ["stop", "supersede"])
async def test_a_token_budget_cannot_be_passed_by_stopping_runs(how: str) -> None:
    # 30 output tokens a day: each stopped run streams well over that (about 5 characters per token here).
    async with serve(make_settings(tokens_per_day={"premium": 30}, token_estimate=10)) as client:
        statuses = []
        for i in range(5):
            task = asyncio.create_task(send(client, ui(f"t-b{i}", "go mock:tokens=400 mock:delay=5", mid="u1")))
            await asyncio.sleep(0.4)  # ~80 tokens streamed
            if task.done():  # refused at once
                statuses.append((await task).status_code)
                break
            if how == "stop":
                await client.post(f"/api/chat/t-b{i}/stop", headers=ALICE)
            else:
                await send(client, ui(f"t-b{i}", "short mock:tokens=1", mid="u2"))
            statuses.append((await task).status_code)
            await wait_idle(client, f"t-b{i}")
        assert statuses[-1] == 429, statuses
        assert statuses.count(200) <= 2, statuses
        answer = (await stored(client, "t-b0"))[1]
        assert answer["usage"]["outputTokens"] > 0
