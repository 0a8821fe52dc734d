"""Hostile and sloppy input through the ASGI app: ids outside the grammar on every route, JSON nested too
deeply, data URLs that break late or carry a forbidden type, a reused Idempotency-Key, the continuation
field, 401 challenges, JWT claims, and the `runs_started` metric. Every refusal is a 4xx JSON error and
stores nothing."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import time
from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import pytest
from litestar.testing import AsyncTestClient

from chatstream import create_app
from chatstream.providers.mock import MockProvider
from chatstream.settings import Secret
from tests.api.conftest import ALICE, BOB, make_settings
from tests.support.settings import services_of
from tests.support.sse import parse_frames, text_of

PARTS = {"parts": [{"type": "text", "text": "Hello"}]}
BAD_IDS = ["💥", "a\r\nSet-Cookie: x=1", "\u0000", "a/b", "x" * 5000, "", "a b"]


async def snapshot(client: AsyncTestClient[Any]) -> dict[str, list[str]]:
    """Everything stored for both users: conversation id -> its message ids."""
    store = services_of(client.app).store
    found: dict[str, list[str]] = {}
    for user in ("alice", "bob"):
        for conversation in await store.list_conversations(user, limit=100):
            found[conversation.id] = [m.id for m in await store.list_messages(conversation.id)]
    return found


async def snapshot_http(client: AsyncTestClient[Any]) -> dict[str, list[str]]:
    """`snapshot` through the API: for backends bound to the app's own event loop (Redis)."""
    found: dict[str, list[str]] = {}
    for auth in (ALICE, BOB):
        listed = (await client.get("/api/chat/conversations", params={"limit": 100}, headers=auth)).json()
        for conversation in listed["conversations"]:
            r = await client.get("/api/chat/messages", params={"conversationId": conversation["id"]}, headers=auth)
            found[conversation["id"]] = [m["id"] for m in r.json()["messages"]]
    return found


async def wait_idle(client: AsyncTestClient[Any], thread: str) -> None:
    registry = services_of(client.app).registry
    for _ in range(500):
        if await registry.active(thread) is None:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("run did not end")


def assert_json_error(r: Any, status: int | tuple[int, ...], error: str | None = None) -> None:
    statuses = (status,) if isinstance(status, int) else status
    assert r.status_code in statuses, (r.status_code, r.text)
    body = r.json()
    assert isinstance(body["error"], str)
    if error is not None:
        assert body["error"] == error


# --- ids in bodies -------------------------------------------------------------------------------------------


def _bodies(bad: str) -> list[tuple[str, dict[str, Any]]]:
    user = {"id": "u1", "role": "user", "parts": [{"type": "text", "text": "hi"}]}
    return [
        ("threadId", {**PARTS, "threadId": bad}),
        ("conversationId", {**PARTS, "conversationId": bad}),
        ("conversationId", {"message": "hi", "conversationId": bad}),
        ("threadId", {"message": "hi", "threadId": bad}),
        ("id", {"id": bad, "messages": [user]}),
        ("messages[].id", {"id": "fresh", "messages": [{**user, "id": bad}]}),
        ("messageId", {"id": "fresh", "messages": [user], "messageId": bad}),
        ("id", {"id": bad, "message": user, "selectedChatModel": "mock-1"}),
        ("message.id", {"id": "fresh", "message": {**user, "id": bad}, "selectedChatModel": "mock-1"}),
    ]


@pytest.mark.parametrize("bad", BAD_IDS)
async def test_a_bad_body_id_is_a_400_naming_the_field_and_stores_nothing(
    client: AsyncTestClient[Any], bad: str
) -> None:
    for field, body in _bodies(bad):
        r = await client.post("/api/chat", json=body, headers=ALICE)
        assert_json_error(r, 400, f"invalid {field}")
        assert await snapshot(client) == {}, (field, body)


@pytest.mark.parametrize("bad", BAD_IDS[:5])
async def test_a_bad_id_into_an_existing_conversation_adds_nothing(client: AsyncTestClient[Any], bad: str) -> None:
    await client.post("/api/chat", json={**PARTS, "threadId": "keep"}, headers=ALICE)
    await wait_idle(client, "keep")
    before = await snapshot(client)
    user = {"id": bad, "role": "user", "parts": [{"type": "text", "text": "again"}]}
    r = await client.post("/api/chat", json={"id": "keep", "messages": [user]}, headers=ALICE)
    assert_json_error(r, 400, "invalid messages[].id")
    assert await snapshot(client) == before


async def test_approve_checks_every_id(client: AsyncTestClient[Any]) -> None:
    good = {"runId": "run-1", "threadId": "t1", "toolCallId": "call-1", "messageId": "m1", "approved": True}
    for field in ("runId", "threadId", "toolCallId", "messageId"):
        for bad in BAD_IDS[:5]:
            r = await client.post("/api/chat/approve", json={**good, field: bad}, headers=ALICE)
            assert_json_error(r, 400, f"invalid {field}")
    assert await snapshot(client) == {}


async def test_server_chosen_ids_match_the_grammar(client: AsyncTestClient[Any]) -> None:
    from chatstream.models import is_valid_id

    r = await client.post("/api/chat", json=PARTS, headers=ALICE)
    thread = r.headers["x-thread-id"]
    await wait_idle(client, thread)
    assert is_valid_id(thread) and is_valid_id(r.headers["x-run-id"])
    assert all(is_valid_id(m) for m in (await snapshot(client))[thread])


# --- ids in paths and queries --------------------------------------------------------------------------------

# Raw, percent-encoded path segments: what a client can put on the wire.
BAD_SEGMENTS = ["%ff", "%00", "%F0%9F%92%A5", "a%0D%0ASet-Cookie:%20x=1", "a%2Fb", "x" * 5000, "a%20b", "%C3%A9"]


@pytest.mark.parametrize("segment", BAD_SEGMENTS)
async def test_a_bad_path_id_is_a_4xx_json_error_on_every_route(client: AsyncTestClient[Any], segment: str) -> None:
    requests = [
        ("GET", f"/api/chat/{segment}/stream", None),
        ("POST", f"/api/chat/{segment}/stop", None),
        ("POST", f"/api/chats/{segment}/messages/stream", {"content": "x", "modelId": "mock-1"}),
        ("DELETE", f"/api/chat/conversations/{segment}", None),
        ("POST", f"/api/chat/conversations/{segment}/truncate", {"keep": 0}),
    ]
    for method, path, body in requests:
        r = await client.request(method, path, json=body, headers=ALICE)
        assert_json_error(r, (400, 404))
        assert "x-thread-id" not in r.headers
    assert await snapshot(client) == {}


@pytest.mark.parametrize("bad", BAD_IDS[:5])
async def test_a_bad_query_id_is_a_400(client: AsyncTestClient[Any], bad: str) -> None:
    r = await client.delete("/api/chat", params={"id": bad}, headers=ALICE)
    assert_json_error(r, 400, "invalid id")
    r = await client.get("/api/chat/messages", params={"conversationId": bad}, headers=ALICE)
    assert_json_error(r, 400, "invalid conversationId")


async def test_path_ids_are_checked_before_anything_else(client: AsyncTestClient[Any]) -> None:
    # The id is refused first, so a malformed one never reaches the store or the header.
    r = await client.get("/api/chat/%ff/stream", headers={**ALICE, "Last-Event-ID": "garbage"})
    assert_json_error(r, 400, "invalid threadId")
    r = await client.post("/api/chats/%ff/messages/stream", content=b"{", headers=ALICE)
    assert_json_error(r, 400, "invalid chatId")


# --- JSON depth ----------------------------------------------------------------------------------------------


def deep(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


@pytest.mark.parametrize("depth", [65, 5000, 100_000])
async def test_deep_json_is_a_400_on_every_json_route(client: AsyncTestClient[Any], depth: int) -> None:
    await client.post("/api/chat", json={**PARTS, "threadId": "t1"}, headers=ALICE)
    await wait_idle(client, "t1")
    before = await snapshot(client)
    for path in (
        "/api/chat",
        "/api/chat/approve",
        "/api/chats/t1/messages/stream",
        "/api/chat/conversations/t1/truncate",
    ):
        r = await client.post(path, content=deep(depth), headers={**ALICE, "content-type": "application/json"})
        assert_json_error(r, 400, "JSON nested too deeply")
    assert await snapshot(client) == before


async def test_a_body_64_deep_is_accepted(client: AsyncTestClient[Any]) -> None:
    metadata = b"[" * 60 + b"]" * 60  # 64 levels with the object, messages, message
    body = b'{"id":"d64","messages":[{"id":"u1","role":"user","metadata":' + metadata
    body += b',"parts":[{"type":"text","text":"hi"}]}]}'
    r = await client.post("/api/chat", content=body, headers={**ALICE, "content-type": "application/json"})
    assert r.status_code == 200, r.text


# --- data URLs -----------------------------------------------------------------------------------------------


def file_part(url: str, media_type: str = "image/png") -> dict[str, Any]:
    return {"parts": [{"type": "text", "text": "look"}, {"type": "file", "mediaType": media_type, "url": url}]}


async def test_data_urls_are_validated_whole(client: AsyncTestClient[Any]) -> None:
    payload = base64.b64encode(bytes(8000)).decode()
    late = payload[:6000] + "*" + payload[6001:]
    cases = [
        (file_part(f"data:image/png;base64,{late}"), "file data URL is not valid base64"),
        (file_part(f"data:image/svg+xml;base64,{payload}", "image/svg+xml"), None),
        (file_part(f"data:text/html;base64,{payload}", "text/html"), None),
        (file_part(f"data:image/jpeg;base64,{payload}", "image/png"), None),
        ({"message": "look", "image": late}, "file data URL is not valid base64"),
        ({"message": "look", "image": payload, "imageMimeType": "application/x-msdownload"}, None),
    ]
    for body, error in cases:
        r = await client.post("/api/chat", json={**body, "threadId": "files"}, headers=ALICE)
        assert_json_error(r, 400, error)
    assert await snapshot(client) == {}
    ok = await client.post("/api/chat", json=file_part(f"data:image/png;base64,{payload}"), headers=ALICE)
    assert ok.status_code == 200


async def test_file_media_types_are_configurable() -> None:
    pdf = base64.b64encode(b"%PDF-1.4").decode()
    app = create_app(make_settings(file_media_types=("image/png",)))
    async with AsyncTestClient(app) as c:
        r = await c.post(
            "/api/chat", json=file_part(f"data:application/pdf;base64,{pdf}", "application/pdf"), headers=ALICE
        )
        assert_json_error(r, 400)
        assert "is not allowed (allowed: image/png)" in r.json()["error"]


# --- Idempotency-Key -----------------------------------------------------------------------------------------


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def idem_client(request: pytest.FixtureRequest, mock: MockProvider) -> AsyncIterator[AsyncTestClient[Any]]:
    if request.param == "memory":
        async with AsyncTestClient(create_app(make_settings(), providers={"mock": mock})) as c:
            yield c
        return
    from chatstream.redis_client import connect_redis

    # The app opens its own client from `redis_url`: the test client runs it on another event loop.
    prefix = f"test:{uuid4().hex}"
    try:
        settings = make_settings(redis_url=os.environ["REDIS_URL"], redis_prefix=prefix)
        async with AsyncTestClient(create_app(settings, providers={"mock": mock})) as c:
            yield c
    finally:
        redis = connect_redis(os.environ["REDIS_URL"])
        keys = [k async for k in redis.scan_iter(match=f"{prefix}:*", count=500)]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


async def test_idempotency_key_reused_with_a_different_body_is_a_422(
    idem_client: AsyncTestClient[Any], mock: MockProvider
) -> None:
    key = {**ALICE, "Idempotency-Key": f"k-{uuid4().hex}"}
    body = {"parts": [{"type": "text", "text": "mock:tokens=3"}], "threadId": "idem-422"}
    first = await idem_client.post("/api/chat", json=body, headers=key)
    assert first.status_code == 200
    # The whole stream was read, so both messages are stored (the answer before the stream's last frame).
    before = await snapshot_http(idem_client)
    assert len(before["idem-422"]) == 2
    different = [
        {**body, "parts": [{"type": "text", "text": "something else"}]},
        {**body, "threadId": "idem-other"},
        {"message": "mock:tokens=3", "conversationId": "idem-422"},  # another dialect: another request
    ]
    for other in different:
        r = await idem_client.post("/api/chat", json=other, headers=key)
        assert_json_error(r, 422, "idempotency key reused with a different request")
    assert await snapshot_http(idem_client) == before
    # The same request again still joins its own run, however its JSON is spelled.
    retry = await idem_client.post("/api/chat", json={"threadId": "idem-422", "parts": body["parts"]}, headers=key)
    assert retry.status_code == 200
    assert retry.headers["x-run-id"] == first.headers["x-run-id"]
    assert text_of(parse_frames(retry.text)) == text_of(parse_frames(first.text)) == "t0 t1 t2 "
    assert len(mock.requests) == 1
    # Another user's identical key is another key.
    assert (
        await idem_client.post("/api/chat", json={**PARTS}, headers={**BOB, "Idempotency-Key": key["Idempotency-Key"]})
    ).status_code == 200


async def test_a_retry_asking_json_instead_of_a_stream_is_the_same_request(client: AsyncTestClient[Any]) -> None:
    key = {**ALICE, "Idempotency-Key": "k-accept"}
    body = {"message": "mock:tokens=2", "conversationId": "idem-accept"}
    first = await client.post("/api/chat", json=body, headers=key)
    assert first.json()["response"] == "t0 t1 "
    again = await client.post("/api/chat", json=body, headers={**key, "Accept": "text/event-stream"})
    assert again.status_code == 200 and again.headers["x-run-id"] == first.headers["x-run-id"]


async def test_a_value_stored_before_fingerprints_still_answers_retries(client: AsyncTestClient[Any]) -> None:
    # A registry value from a deployment without fingerprints has three words; its retries still join it.
    first = await client.post("/api/chat", json={**PARTS, "threadId": "legacy"}, headers=ALICE)
    await wait_idle(client, "legacy")
    services = services_of(client.app)
    msg = parse_frames(first.text)[0].data["messageId"]
    value = f"legacy {first.headers['x-run-id']} {msg}"
    assert await services.registry.claim_idempotency("idem:alice:old-key", value, ttl=60) is None
    r = await client.post(
        "/api/chat", json={**PARTS, "threadId": "other"}, headers={**ALICE, "Idempotency-Key": "old-key"}
    )
    assert r.status_code == 200 and r.headers["x-run-id"] == first.headers["x-run-id"]


@pytest.mark.parametrize("key", [b"x" * 256, "ключ".encode(), b"a\tb"])
async def test_a_malformed_idempotency_key_is_a_400(client: AsyncTestClient[Any], key: bytes) -> None:
    headers: dict[str, Any] = {**ALICE, "Idempotency-Key": key}
    r = await client.post("/api/chat", json=PARTS, headers=headers)
    assert_json_error(r, 400)
    assert "Idempotency-Key" in r.json()["error"]
    assert await snapshot(client) == {}


# --- one continuation field ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({**PARTS, "conversationId": "cont-1"}, {**PARTS, "conversationId": "cont-1"}),
        ({"message": "hi", "threadId": "cont-1"}, {"message": "again", "threadId": "cont-1"}),
        ({**PARTS, "threadId": "cont-1"}, {"message": "again", "threadId": "cont-1"}),
        ({"message": "hi", "conversationId": "cont-1"}, {**PARTS, "conversationId": "cont-1"}),
    ],
)
async def test_either_continuation_field_continues_the_conversation(
    client: AsyncTestClient[Any], first: dict[str, Any], second: dict[str, Any]
) -> None:
    for body in (first, second):
        r = await client.post("/api/chat", json=body, headers=ALICE)
        assert r.status_code == 200 and r.headers["x-thread-id"] == "cont-1"
        await wait_idle(client, "cont-1")
    stored = await snapshot(client)
    assert list(stored) == ["cont-1"]
    assert len(stored["cont-1"]) == 4


# --- 401 and JWTs --------------------------------------------------------------------------------------------


async def test_a_401_carries_a_bearer_challenge(client: AsyncTestClient[Any]) -> None:
    for path in ("/api/chat/conversations", "/api/models"):
        bare = await client.get(path)
        assert_json_error(bare, 401, "unauthorized")
        assert bare.headers["www-authenticate"] == 'Bearer realm="chatstream"'
        wrong = await client.get(path, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert wrong.headers["www-authenticate"] == 'Bearer realm="chatstream", error="invalid_token"'
    r = await client.post("/api/chat", json=PARTS)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")


SECRET = "s3cret-key-for-tests-0123456789ab"


def jwt_token(**claims: Any) -> dict[str, str]:
    import jwt

    return {"Authorization": f"Bearer {jwt.encode(claims, SECRET, algorithm='HS256')}"}


async def test_jwts_need_exp_and_a_subject() -> None:
    later, earlier = int(time.time()) + 600, int(time.time()) - 600
    async with AsyncTestClient(create_app(make_settings(jwt_secret=Secret(SECRET)))) as c:

        async def status(headers: dict[str, str]) -> int:
            return (await c.get("/api/chat/conversations", headers=headers)).status_code

        assert await status(jwt_token(sub="carol", exp=later)) == 200
        assert await status(jwt_token(sub="carol")) == 401  # no exp: refused by default
        assert await status(jwt_token(sub="carol", exp=earlier)) == 401
        for sub in ("", "   "):
            assert await status(jwt_token(sub=sub, exp=later)) == 401
    async with AsyncTestClient(create_app(make_settings(jwt_secret=Secret(SECRET), jwt_require_exp=False))) as c:
        assert (await c.get("/api/chat/conversations", headers=jwt_token(sub="carol"))).status_code == 200
        # Without the requirement an `exp` that is there is still enforced.
        assert (await c.get("/api/chat/conversations", headers=jwt_token(sub="carol", exp=earlier))).status_code == 401
        assert (await c.get("/api/chat/conversations", headers=jwt_token(sub="", exp=later))).status_code == 401


def test_jwt_require_exp_from_the_environment() -> None:
    from chatstream.settings import Settings

    assert Settings.from_env({}).jwt_require_exp is True
    assert Settings.from_env({"CHAT_JWT_REQUIRE_EXP": "false"}).jwt_require_exp is False
    custom = Settings.from_env({"CHAT_FILE_MEDIA_TYPES": "image/png, application/pdf"})
    assert custom.file_media_types == ("image/png", "application/pdf")
    from chatstream.errors import ConfigError

    for bad in ("image", "Image/PNG", "text/plain;charset=utf-8"):
        with pytest.raises(ConfigError, match="CHAT_FILE_MEDIA_TYPES"):
            Settings.from_env({"CHAT_FILE_MEDIA_TYPES": bad})


# --- runs_started ----------------------------------------------------------------------------------------------


def runs_started(metrics: str) -> int:
    match = re.search(r'chat_requests_total\{kind="runs_started"\} (\d+)', metrics)
    return int(match.group(1)) if match else 0


async def test_runs_started_counts_every_route_that_starts_a_run() -> None:
    from tests.tools.conftest import Ledger

    ledger = Ledger()
    app = create_app(make_settings(title_generation=False), tools=[ledger.tool()])
    async with AsyncTestClient(app) as c:

        async def count() -> int:
            return runs_started((await c.get("/metrics")).text)

        ask = 'mock:tool=transfer mock:args={"to":"bob","amount":5} pay'
        r = await c.post("/api/chat", json={"parts": [{"type": "text", "text": ask}], "threadId": "rs"}, headers=ALICE)
        frames = parse_frames(r.text)
        run_id = frames[0].data["messageMetadata"]["runId"]
        call = next(f.data["toolCallId"] for f in frames if f.type == "tool-approval-request")
        await wait_idle(c, "rs")
        assert await count() == 1
        approved = await c.post(
            "/api/chat/approve",
            json={"runId": run_id, "threadId": "rs", "toolCallId": call, "approved": True},
            headers=ALICE,
        )
        assert approved.status_code == 200 and ledger.transfers
        await wait_idle(c, "rs")
        assert await count() == 2
        seed003 = await c.post(
            "/api/chats/rs/messages/stream", json={"content": "more", "modelId": "mock-1"}, headers=ALICE
        )
        assert seed003.status_code == 200
        await wait_idle(c, "rs")
        assert await count() == 3
        # An idempotent retry answered with an earlier run starts none.
        key = {**ALICE, "Idempotency-Key": "rs-key"}
        await c.post("/api/chat", json={**PARTS, "threadId": "rs"}, headers=key)
        await wait_idle(c, "rs")
        await c.post("/api/chat", json={**PARTS, "threadId": "rs"}, headers=key)
        assert await count() == 4
