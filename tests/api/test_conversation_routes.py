"""Conversation management over ASGI: cursors, paging back, PATCH, votes, preferences, message metadata."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from chatstream import create_app
from chatstream.models import Conversation, Message, MessagePart, Role
from chatstream.providers.mock import MockProvider
from tests.api.conftest import ALICE, BOB
from tests.api.test_chat import send, wait_idle
from tests.support.settings import make_settings, services_of


async def seed(client: AsyncTestClient[Any], n: int, *, messages: int = 0) -> list[str]:
    """`n` conversations of Alice's, c0 oldest; each with `messages` alternating user/assistant messages."""
    store = services_of(client.app).store
    for i in range(n):
        await store.put_conversation(
            Conversation(id=f"c{i}", user_id="alice", updated_at=1_000 + i, visibility="public" if i % 2 else "private")
        )
    for m in range(messages):
        role: Role = "user" if m % 2 == 0 else "assistant"
        part = (MessagePart(type="text", text=f"m{m}"),)
        await store.save_message(Message(id=f"m{m}", conversation_id="c0", role=role, parts=part))
    return [f"c{i}" for i in range(n)]


def ids(body: dict[str, Any]) -> list[str]:
    return [c["id"] for c in body["conversations"]]


async def test_conversation_cursors_and_visibility(client: AsyncTestClient[Any]) -> None:
    await seed(client, 7)
    got = (await client.get("/api/chat/conversations?limit=3", headers=ALICE)).json()
    assert ids(got) == ["c6", "c5", "c4"]
    assert got["hasMore"] is True
    got = (await client.get("/api/chat/conversations?limit=3&starting_after=c4", headers=ALICE)).json()
    assert (ids(got), got["hasMore"]) == (["c3", "c2", "c1"], True)
    got = (await client.get("/api/chat/conversations?limit=3&starting_after=c1", headers=ALICE)).json()
    assert (ids(got), got["hasMore"]) == (["c0"], False)
    got = (await client.get("/api/chat/conversations?limit=2&ending_before=c2", headers=ALICE)).json()
    assert (ids(got), got["hasMore"]) == (["c4", "c3"], True)
    got = (await client.get("/api/chat/conversations?limit=2&ending_before=c4", headers=ALICE)).json()
    assert (ids(got), got["hasMore"]) == (["c6", "c5"], False)
    got = (await client.get("/api/chat/conversations?visibility=public", headers=ALICE)).json()
    assert ids(got) == ["c5", "c3", "c1"]
    for query, message in [
        ("starting_after=c1&ending_before=c3", "only one of"),
        ("starting_after=nope", "unknown cursor"),
        ("visibility=secret", "visibility must be"),
        ("starting_after=a%0Ab", "invalid starting_after"),
    ]:
        response = await client.get(f"/api/chat/conversations?{query}", headers=ALICE)
        assert response.status_code == 400, query
        assert message in response.json()["error"]
    # Bob's conversation is not a cursor for Alice.
    await services_of(client.app).store.put_conversation(Conversation(id="b0", user_id="bob"))
    response = await client.get("/api/chat/conversations?starting_after=b0", headers=ALICE)
    assert response.status_code == 400


async def test_messages_page_back(client: AsyncTestClient[Any]) -> None:
    await seed(client, 1, messages=7)
    got = (await client.get("/api/chat/messages?conversationId=c0&limit=3", headers=ALICE)).json()
    assert ([m["id"] for m in got["messages"]], got["hasMore"]) == (["m4", "m5", "m6"], True)
    got = (await client.get("/api/chat/messages?conversationId=c0&limit=3&before=m4", headers=ALICE)).json()
    assert ([m["id"] for m in got["messages"]], got["hasMore"]) == (["m1", "m2", "m3"], True)
    got = (await client.get("/api/chat/messages?conversationId=c0&limit=3&before=m1", headers=ALICE)).json()
    assert ([m["id"] for m in got["messages"]], got["hasMore"]) == (["m0"], False)
    response = await client.get("/api/chat/messages?conversationId=c0&before=zz", headers=ALICE)
    assert response.status_code == 400


async def test_patch_conversation(client: AsyncTestClient[Any]) -> None:
    await seed(client, 1)
    response = await client.patch(
        "/api/chat/conversations/c0", json={"title": "  Trip   plans ", "visibility": "public"}, headers=ALICE
    )
    assert response.status_code == 200, response.text
    assert response.json()["conversation"]["title"] == "Trip plans"
    stored = await services_of(client.app).store.get_conversation("c0")
    assert stored is not None
    assert (stored.title, stored.visibility, stored.title_source) == ("Trip plans", "public", "user")
    for body, status in [
        ({}, 400),
        ({"visibility": "everyone"}, 400),
        ({"title": ""}, 400),
        ({"title": "x" * 201}, 400),
        ({"color": "red"}, 400),
    ]:
        assert (await client.patch("/api/chat/conversations/c0", json=body, headers=ALICE)).status_code == status
    # Someone else's (even public) is 403; unknown is 404; a refused patch changed nothing.
    assert (await client.patch("/api/chat/conversations/c0", json={"title": "x"}, headers=BOB)).status_code == 403
    assert (await client.patch("/api/chat/conversations/zz", json={"title": "x"}, headers=ALICE)).status_code == 404
    stored = await services_of(client.app).store.get_conversation("c0")
    assert stored is not None
    assert stored.title == "Trip plans"


async def test_votes(client: AsyncTestClient[Any]) -> None:
    await seed(client, 1, messages=4)
    vote = {"chatId": "c0", "messageId": "m1", "type": "up"}
    assert (await client.patch("/api/vote", json=vote, headers=ALICE)).status_code == 200
    assert (await client.patch("/api/vote", json={**vote, "messageId": "m3"}, headers=ALICE)).status_code == 200
    assert (await client.patch("/api/vote", json={**vote, "type": "down"}, headers=ALICE)).status_code == 200
    got = await client.get("/api/vote?chatId=c0", headers=ALICE)
    assert got.json() == [
        {"chatId": "c0", "messageId": "m1", "isUpvoted": False},
        {"chatId": "c0", "messageId": "m3", "isUpvoted": True},
    ]
    for body, status in [
        ({**vote, "type": "sideways"}, 400),
        ({**vote, "messageId": "m0"}, 400),  # a user message
        ({**vote, "messageId": "nope"}, 404),
        ({**vote, "chatId": "nope"}, 404),
        ({"chatId": "c0"}, 400),
    ]:
        assert (await client.patch("/api/vote", json=body, headers=ALICE)).status_code == status, body
    assert (await client.patch("/api/vote", json=vote, headers=BOB)).status_code == 403
    assert (await client.get("/api/vote?chatId=c0", headers=BOB)).status_code == 403
    assert (await client.get("/api/vote", headers=ALICE)).status_code == 400
    # Truncating away a voted message takes its vote; deleting the conversation takes the rest.
    await client.post("/api/chat/conversations/c0/truncate", json={"keep": 1}, headers=ALICE)
    assert (await client.get("/api/vote?chatId=c0", headers=ALICE)).json() == [
        {"chatId": "c0", "messageId": "m3", "isUpvoted": True}
    ]
    await client.delete("/api/chat/conversations/c0", headers=ALICE)
    assert await services_of(client.app).store.list_votes("c0") == []


async def test_preferences_are_validated_and_resolve() -> None:
    settings = make_settings()
    app = create_app(settings, providers={"mock": MockProvider(), "other": MockProvider(name="other")})
    async with AsyncTestClient(app) as client:
        got = (await client.get("/api/chat/preferences", headers=ALICE)).json()
        assert got["provider"] is None
        assert got["resolved"]["provider"] == "mock"
        response = await client.put(
            "/api/chat/preferences", json={"provider": "other", "mood": "friendly"}, headers=ALICE
        )
        assert response.status_code == 200, response.text
        got = (await client.get("/api/chat/preferences", headers=ALICE)).json()
        assert (got["provider"], got["mood"], got["resolved"]["provider"]) == ("other", "friendly", "other")
        # Bob's are his own.
        assert (await client.get("/api/chat/preferences", headers=BOB)).json()["provider"] is None
        for body in [
            {"provider": "nope"},
            {"model": "no-such-model"},
            {"provider": "default"},
            {"mood": "grumpy"},
            {"temperature": 2},
        ]:
            response = await client.put("/api/chat/preferences", json=body, headers=ALICE)
            assert response.status_code == 400, body
        assert (await client.get("/api/chat/preferences", headers=ALICE)).json()["provider"] == "other"


async def test_user_message_metadata_is_stored(client: AsyncTestClient[Any]) -> None:
    body = {
        "id": "t-meta",
        "messages": [{"id": "u1", "role": "user", "parts": [{"type": "text", "text": "hi"}], "metadata": {"k": [1]}}],
        "trigger": "submit-message",
    }
    response = await send(client, body)
    assert response.status_code == 200
    await wait_idle(client, "t-meta")
    got = (await client.get("/api/chat/messages?conversationId=t-meta", headers=ALICE)).json()
    assert got["messages"][0]["metadata"] == {"k": [1]}


@pytest.mark.parametrize("path", ["/api/vote", "/api/chat/preferences"])
async def test_new_routes_need_auth(client: AsyncTestClient[Any], path: str) -> None:
    assert (await client.get(path)).status_code == 401
