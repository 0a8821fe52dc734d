"""POST /api/chat through the ASGI app: shapes, stream format, storage, errors."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from chatstream.models import Usage
from chatstream.providers.base import ModelFinish, ModelReasoning, ModelText, ModelUsage
from chatstream.providers.mock import MockProvider
from tests.api.conftest import ALICE, BOB
from tests.support.settings import make_settings, services_of
from tests.support.sse import Frame, parse_frames, text_of

PARTS = {"parts": [{"type": "text", "text": "Hello"}]}


async def send(client: AsyncTestClient[Any], body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    return await client.post("/api/chat", json=body, headers={**ALICE, **(headers or {})})


async def wait_idle(client: AsyncTestClient[Any], thread: str) -> None:
    """Wait until the conversation's run has released it (its stream ended)."""
    for _ in range(200):
        services = services_of(client.app)
        if await services.registry.active(thread) is None:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("run did not end")


def types(frames: list[Frame]) -> list[str | None]:
    return [f.type for f in frames]


async def test_parts_request_streams_ui_message_stream(client: AsyncTestClient[Any], mock: MockProvider) -> None:
    mock.enqueue(
        [
            ModelText(text="Hi "),
            ModelText(text="there"),
            ModelUsage(usage=Usage(input_tokens=3, output_tokens=2)),
            ModelFinish(reason="stop"),
        ]
    )
    r = await send(client, PARTS)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["x-vercel-ai-ui-message-stream"] == "v1"
    assert r.headers["x-accel-buffering"] == "no"
    thread = r.headers["x-thread-id"]
    frames = parse_frames(r.text)
    assert frames[-1].data == "[DONE]"
    body = frames[:-1]
    assert types(body) == [
        "start",
        "data-conversation",
        "start-step",
        "text-start",
        "text-delta",
        "text-delta",
        "text-end",
        "finish-step",
        "data-conversation",
        "finish",
    ]
    # Every buffered frame carries a strictly increasing cursor.
    ids = [int(f.id) for f in body if f.id is not None]
    assert ids == sorted(ids) and len(ids) == len(body)
    assert text_of(body) == "Hi there"
    assert body[0].data["messageMetadata"]["conversationId"] == thread
    finish = body[-1].data
    assert finish["finishReason"] == "stop"
    assert finish["messageMetadata"]["usage"] == {"inputTokens": 3, "outputTokens": 2}
    assert body[-2].data["data"] == {"conversationId": thread, "title": "Hello"}

    messages = (await client.get("/api/chat/messages", params={"conversationId": thread}, headers=ALICE)).json()
    roles = [(m["role"], m["parts"]) for m in messages["messages"]]
    assert roles[0] == ("user", [{"type": "text", "text": "Hello"}])
    assert roles[1][0] == "assistant"
    assert [p for p in roles[1][1] if p["type"] == "text"] == [{"type": "text", "text": "Hi there"}]
    assert messages["messages"][1]["id"] == body[0].data["messageId"]


async def test_ai_sdk_transport_body(client: AsyncTestClient[Any]) -> None:
    body = {
        "id": "chat-1",
        "trigger": "submit-message",
        "messages": [
            {"id": "u1", "role": "user", "parts": [{"type": "text", "text": "first"}]},
            {"id": "a1", "role": "assistant", "parts": [{"type": "text", "text": "reply"}]},
            {"id": "u2", "role": "user", "parts": [{"type": "text", "text": "second question"}]},
        ],
    }
    r = await send(client, body)
    assert r.status_code == 200
    assert r.headers["x-thread-id"] == "chat-1"
    assert "second question" in text_of(parse_frames(r.text))
    stored = (await client.get("/api/chat/messages", params={"conversationId": "chat-1"}, headers=ALICE)).json()
    # The server's history is authoritative: only the new user message is stored, not the client's copy.
    assert [m["id"] for m in stored["messages"] if m["role"] == "user"] == ["u2"]


async def test_chatbot_shape_and_unknown_model(client: AsyncTestClient[Any]) -> None:
    message = {"id": "m1", "role": "user", "parts": [{"type": "text", "text": "weather?"}]}
    ok = await send(
        client, {"id": "c-bot", "message": message, "selectedChatModel": "mock-1", "selectedVisibilityType": "public"}
    )
    assert ok.status_code == 200
    conversations = (await client.get("/api/chat/conversations", headers=ALICE)).json()["conversations"]
    assert [c["visibility"] for c in conversations if c["id"] == "c-bot"] == ["public"]
    bad = await send(
        client,
        {
            "id": "c-bot2",
            "message": message,
            "selectedChatModel": "gpt-nonexistent",
            "selectedVisibilityType": "private",
        },
    )
    assert bad.status_code == 400
    assert "gpt-nonexistent" in bad.json()["error"]


async def test_plain_shape_json_and_sse(client: AsyncTestClient[Any], mock: MockProvider) -> None:
    mock.enqueue([ModelText(text="Plain "), ModelText(text="answer"), ModelFinish(reason="stop")])
    r = await send(client, {"message": "hi", "mood": "friendly"})
    assert r.status_code == 200
    data = r.json()
    assert data["response"] == "Plain answer"
    assert data["provider"] == "mock" and data["model"] == "mock-1"
    assert data["conversationId"] == r.headers["x-thread-id"]

    mock.enqueue([ModelReasoning(text="hmm"), ModelText(text="Streamed"), ModelFinish(reason="stop")])
    r = await send(client, {"message": "again", "conversationId": data["conversationId"], "stream": True})
    frames = parse_frames(r.text)
    assert [f.type for f in frames] == ["metadata", "reasoning", "delta", "done"]
    assert frames[0].data == {
        "type": "metadata",
        "conversationId": data["conversationId"],
        "provider": "mock",
        "model": "mock-1",
    }
    assert frames[-1].data["response"] == "Streamed"


async def test_accept_header_selects_streaming_for_plain(client: AsyncTestClient[Any]) -> None:
    r = await send(client, {"message": "hi"}, headers={"Accept": "text/event-stream"})
    assert r.headers["content-type"].startswith("text/event-stream")
    assert parse_frames(r.text)[-1].type == "done"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"parts": []}, "parts must be a non-empty array"),
        ({"parts": "nope"}, "parts must be a non-empty array"),
        ({}, "parts must be a non-empty array"),
        ({"parts": [{"type": "image", "url": "x"}]}, "unsupported part type"),
        ({"parts": [{"type": "file", "mediaType": "image/png", "url": "http://example.com/a.png"}]}, "data URL"),
        ({"message": "hi", "system": "be evil"}, "system prompts"),
        ({"message": "   "}, "message must not be empty"),
        ({"message": "hi", "mood": "angry"}, "invalid request"),
        ({"message": "hi", "provider": "nope"}, "unknown provider"),
    ],
)
async def test_bad_input_is_a_clear_400(client: AsyncTestClient[Any], body: dict[str, Any], message: str) -> None:
    r = await send(client, body)
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]


async def test_invalid_json_is_400(client: AsyncTestClient[Any]) -> None:
    r = await client.post("/api/chat", content=b"{not json", headers={**ALICE, "content-type": "application/json"})
    assert r.status_code == 400
    assert "invalid JSON" in r.json()["error"]


async def test_auth_is_required_and_never_open(client: AsyncTestClient[Any]) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}):
        r = await client.post("/api/chat", json=PARTS, headers=headers)
        assert r.status_code == 401
        assert r.json() == {"error": "unauthorized"}
    assert (await client.get("/api/chat/conversations")).status_code == 401


async def test_other_users_conversation_is_403_missing_is_404(client: AsyncTestClient[Any]) -> None:
    r = await send(client, {**PARTS, "threadId": "alice-thread"})
    assert r.status_code == 200
    await wait_idle(client, "alice-thread")
    as_bob = await client.post("/api/chat", json={**PARTS, "threadId": "alice-thread"}, headers=BOB)
    assert as_bob.status_code == 403
    assert (
        await client.get("/api/chat/messages", params={"conversationId": "alice-thread"}, headers=BOB)
    ).status_code == 403
    assert (await client.delete("/api/chat/conversations/alice-thread", headers=BOB)).status_code == 403
    assert (await client.post("/api/chat/alice-thread/stop", headers=BOB)).status_code == 403
    assert (await client.get("/api/chat/alice-thread/stream", headers=BOB)).status_code == 403
    assert (await client.get("/api/chat/messages", params={"conversationId": "nope"}, headers=ALICE)).status_code == 404
    assert (await client.delete("/api/chat/conversations/nope", headers=ALICE)).status_code == 404


@pytest.mark.parametrize("settings", [make_settings(busy_policy="reject")])
async def test_second_send_while_running_is_409(client: AsyncTestClient[Any]) -> None:
    # With `busy_policy="reject"`. The test client serialises requests, so hold the conversation's lease the
    # way a running run does; tests/api/test_lifecycle.py races real concurrent requests (supersede).
    assert (await send(client, {**PARTS, "threadId": "busy"})).status_code == 200
    await wait_idle(client, "busy")
    registry = services_of(client.app).registry
    assert await registry.acquire("busy", "run-elsewhere", ttl=30) is None
    second = await send(client, {**PARTS, "threadId": "busy"})
    assert second.status_code == 409
    assert second.json()["code"] == "run_active"
    await registry.release("busy", "run-elsewhere")
    assert (await send(client, {**PARTS, "threadId": "busy"})).status_code == 200


async def test_body_too_large_is_413() -> None:
    from chatstream import create_app
    from tests.api.conftest import make_settings

    app = create_app(make_settings(max_body_bytes=1024))
    async with AsyncTestClient(app) as c:
        big = {"parts": [{"type": "text", "text": "x" * 4096}]}
        r = await c.post("/api/chat", json=big, headers=ALICE)
        assert r.status_code == 413
        assert "error" in r.json()


async def test_provider_error_mid_stream_keeps_partial_answer(client: AsyncTestClient[Any]) -> None:
    r = await send(client, {"parts": [{"type": "text", "text": "mock:tokens=10 mock:fail=4"}]})
    frames = parse_frames(r.text)
    assert text_of(frames) == "t0 t1 t2 t3 "
    assert frames[-2].type == "error"
    kinds = types(frames)
    assert kinds.count("start-step") == kinds.count("finish-step") == 1  # closed before the error ends it
    assert kinds.index("finish-step") < kinds.index("error")
    assert "broke" in frames[-2].data["errorText"]
    assert frames[-1].data == "[DONE]"
    thread = r.headers["x-thread-id"]
    stored = (await client.get("/api/chat/messages", params={"conversationId": thread}, headers=ALICE)).json()
    assistant = stored["messages"][-1]
    assert assistant["role"] == "assistant"
    assert assistant["error"] == "mock stream broke mid-answer"
    assert [p["text"] for p in assistant["parts"] if p["type"] == "text"] == ["t0 t1 t2 t3 "]


async def test_provider_error_before_first_token_in_plain_json(client: AsyncTestClient[Any]) -> None:
    r = await send(client, {"message": "mock:error=boom"})
    assert r.status_code == 502
    assert "boom" in r.json()["error"]


async def test_idempotency_key_never_starts_a_second_run(client: AsyncTestClient[Any], mock: MockProvider) -> None:
    headers = {"Idempotency-Key": "k-1"}
    first = await send(client, {**PARTS, "threadId": "idem"}, headers)
    second = await send(client, {**PARTS, "threadId": "idem"}, headers)
    assert first.status_code == second.status_code == 200
    assert first.headers["x-run-id"] == second.headers["x-run-id"]
    assert text_of(parse_frames(first.text)) == text_of(parse_frames(second.text))
    assert len(mock.requests) == 1
    stored = (await client.get("/api/chat/messages", params={"conversationId": "idem"}, headers=ALICE)).json()
    assert [m["role"] for m in stored["messages"]] == ["user", "assistant"]


async def test_seed003_dialect(client: AsyncTestClient[Any], mock: MockProvider) -> None:
    assert (
        await client.post("/api/chats/nope/messages/stream", json={"content": "x", "modelId": "mock-1"}, headers=ALICE)
    ).status_code == 404
    await send(client, {**PARTS, "threadId": "s3"})
    await wait_idle(client, "s3")
    mock.enqueue([ModelText(text="Quantum"), ModelText(text=" computing"), ModelFinish(reason="stop")])
    r = await client.post(
        "/api/chats/s3/messages/stream",
        json={"content": "Explain", "modelId": "mock-1", "userId": "alice"},
        headers=ALICE,
    )
    frames = parse_frames(r.text)
    assert [f.data["type"] for f in frames] == ["start", "content", "content", "end"]
    assert frames[0].data["messageId"] == frames[-1].data["messageId"]
    assert [f.data["delta"] for f in frames[1:3]] == ["Quantum", " computing"]
    wrong_user = await client.post(
        "/api/chats/s3/messages/stream", json={"content": "x", "modelId": "mock-1", "userId": "mallory"}, headers=ALICE
    )
    assert wrong_user.status_code == 403


async def test_delete_chat_cascades(client: AsyncTestClient[Any]) -> None:
    await send(client, {**PARTS, "threadId": "gone"})
    await wait_idle(client, "gone")
    r = await client.delete("/api/chat", params={"id": "gone"}, headers=ALICE)
    assert r.status_code == 200
    deleted = r.json()["deletedChat"]
    assert deleted["id"] == "gone" and deleted["userId"] == "alice" and deleted["visibility"] == "private"
    assert deleted["createdAt"].endswith("Z")
    assert (await client.get("/api/chat/messages", params={"conversationId": "gone"}, headers=ALICE)).status_code == 404
    assert (await client.get("/api/chat/gone/stream", headers=ALICE)).status_code == 204
    assert (await client.delete("/api/chat", headers=ALICE)).status_code == 400


async def test_public_conversation_readable_not_writable(client: AsyncTestClient[Any]) -> None:
    message = {"id": "m1", "role": "user", "parts": [{"type": "text", "text": "shared"}]}
    await send(
        client, {"id": "pub", "message": message, "selectedChatModel": "mock-1", "selectedVisibilityType": "public"}
    )
    await wait_idle(client, "pub")
    read = await client.get("/api/chat/messages", params={"conversationId": "pub"}, headers=BOB)
    assert read.status_code == 200
    assert json.dumps(read.json()).count("shared") >= 1
    assert (await client.post("/api/chat", json={**PARTS, "threadId": "pub"}, headers=BOB)).status_code == 403
    assert (await client.post("/api/chat/conversations/pub/truncate", json={"keep": 0}, headers=BOB)).status_code == 403


async def test_models_endpoint_lists_configured_providers(client: AsyncTestClient[Any]) -> None:
    r = await client.get("/api/models", headers=ALICE)
    assert r.status_code == 200
    assert "mock-1" in str(r.json())
    assert (await client.get("/api/models")).status_code == 401


async def test_idempotent_retry_after_the_stream_expired_gets_the_stored_result() -> None:
    from chatstream import create_app
    from tests.api.conftest import make_settings

    mock = MockProvider()
    app = create_app(make_settings(stream_ttl_seconds=0.05), providers={"mock": mock})
    async with AsyncTestClient(app) as c:
        headers = {**ALICE, "Idempotency-Key": "late-retry"}
        body = {"parts": [{"type": "text", "text": "mock:tokens=4"}], "threadId": "idem-late"}
        first = await c.post("/api/chat", json=body, headers=headers)
        await wait_idle(c, "idem-late")
        await asyncio.sleep(0.1)
        assert (await c.get("/api/chat/idem-late/stream", headers=ALICE)).status_code == 204  # expired
        again = await c.post("/api/chat", json=body, headers=headers)
        assert again.status_code == 200
        assert again.headers["x-run-id"] == first.headers["x-run-id"]
        frames = parse_frames(again.text)
        assert text_of(frames) == "t0 t1 t2 t3 "
        assert frames[0].data["messageId"] == parse_frames(first.text)[0].data["messageId"]
        assert frames[-2].data["finishReason"] == "stop"
        assert frames[-1].data == "[DONE]"
        plain = await c.post(
            "/api/chat",
            json={"message": "mock:tokens=2", "conversationId": "idem-late"},
            headers={**ALICE, "Idempotency-Key": "late-json"},
        )
        await wait_idle(c, "idem-late")
        await asyncio.sleep(0.1)
        plain_again = await c.post(
            "/api/chat",
            json={"message": "mock:tokens=2", "conversationId": "idem-late"},
            headers={**ALICE, "Idempotency-Key": "late-json"},
        )
        assert plain_again.json()["response"] == plain.json()["response"] == "t0 t1 "
        assert len(mock.requests) == 2


async def test_hs256_jwt_bearer_tokens() -> None:
    import jwt

    from chatstream import create_app
    from chatstream.settings import Secret
    from tests.api.conftest import make_settings

    app = create_app(make_settings(jwt_secret=Secret("s3cret-key-for-tests-0123456789ab")))
    exp = int(time.time()) + 3600  # tokens need an `exp` by default (CHAT_JWT_REQUIRE_EXP)
    good = jwt.encode(
        {"sub": "carol", "tier": "premium", "exp": exp}, "s3cret-key-for-tests-0123456789ab", algorithm="HS256"
    )
    forged = jwt.encode({"sub": "carol", "exp": exp}, "another-secret-key-0123456789abcdef", algorithm="HS256")
    no_sub = jwt.encode({"tier": "premium", "exp": exp}, "s3cret-key-for-tests-0123456789ab", algorithm="HS256")
    async with AsyncTestClient(app) as c:
        r = await c.post("/api/chat", json=PARTS, headers={"Authorization": f"Bearer {good}"})
        assert r.status_code == 200
        listed = await c.get("/api/chat/conversations", headers={"Authorization": f"Bearer {good}"})
        assert [x["userId"] for x in listed.json()["conversations"]] == ["carol"]
        for token in (forged, no_sub, good + "x"):
            assert (
                await c.post("/api/chat", json=PARTS, headers={"Authorization": f"Bearer {token}"})
            ).status_code == 401
        # Static tokens still work beside JWTs.
        assert (await c.get("/api/chat/conversations", headers=ALICE)).status_code == 200


async def test_serverless_mode_never_resumes() -> None:
    from chatstream import create_app
    from tests.api.conftest import make_settings

    async with AsyncTestClient(create_app(make_settings(resumable_streams=False))) as c:
        r = await c.post("/api/chat", json={**PARTS, "threadId": "sl"}, headers=ALICE)
        assert text_of(parse_frames(r.text))
        assert (await c.get("/api/chat/sl/stream", headers=ALICE)).status_code == 204


async def test_oversized_data_url_is_413_and_nothing_is_stored(client: AsyncTestClient[Any]) -> None:
    payload = "A" * (11 * 1024 * 1024 * 4 // 3)  # decodes to ~11 MiB, past the 10 MiB file limit
    body = {
        "parts": [
            {"type": "text", "text": "look"},
            {"type": "file", "mediaType": "image/png", "url": f"data:image/png;base64,{payload}"},
        ],
        "threadId": "big-file",
    }
    r = await send(client, body)
    assert r.status_code == 413
    assert "file exceeds" in r.json()["error"]
    assert (
        await client.get("/api/chat/messages", params={"conversationId": "big-file"}, headers=ALICE)
    ).status_code == 404


async def test_metrics_report_runs_tokens_first_token_and_refusals(client: AsyncTestClient[Any]) -> None:
    await send(client, {"parts": [{"type": "text", "text": "mock:tokens=3"}], "threadId": "m1"})
    await wait_idle(client, "m1")
    assert (await client.post("/api/chat", json=PARTS)).status_code == 401
    text = (await client.get("/metrics")).text
    assert 'chat_runs_ended_total{outcome="done"} 1' in text
    assert 'chat_tokens_total{kind="output"} 3' in text
    assert "chat_first_token_seconds_count 1" in text
    assert 'chat_requests_total{kind="refused:unauthorized"} 1' in text
    assert 'chat_requests_total{kind="runs_started"} 1' in text


async def test_a_failing_stop_signal_does_not_end_the_answer() -> None:
    from chatstream import create_app
    from chatstream.errors import BackendUnavailableError
    from chatstream.runs.memory import MemoryRunRegistry
    from tests.api.conftest import make_settings

    class NoStopSignal(MemoryRunRegistry):
        async def wait_stop(self, run_id: str) -> None:
            raise BackendUnavailableError("pub/sub is down")

    app = create_app(make_settings(), registry=NoStopSignal())
    async with AsyncTestClient(app) as c:
        r = await c.post(
            "/api/chat", json={"parts": [{"type": "text", "text": "mock:tokens=5 mock:delay=5"}]}, headers=ALICE
        )
        frames = parse_frames(r.text)
        assert text_of(frames) == "t0 t1 t2 t3 t4 "
        assert frames[-2].data["finishReason"] == "stop"


@pytest.mark.parametrize(
    "directive", ["mock:delay=abc", "mock:delay=", "mock:steps=x", "mock:fail=abc", "mock:tokens=abc"]
)
async def test_malformed_mock_directives_are_ignored(client: AsyncTestClient[Any], directive: str) -> None:
    r = await client.post("/api/chat", json={"message": f"hello {directive}"}, headers=ALICE)
    assert r.status_code == 200
    assert r.json()["response"] and "error" not in r.json()


async def test_deleting_a_generating_conversation_leaves_no_answer_for_the_ids_next_owner(
    client: AsyncTestClient[Any], caplog: pytest.LogCaptureFixture
) -> None:
    import asyncio

    body = {"parts": [{"type": "text", "text": "mock:tokens=200 mock:delay=5"}], "threadId": "shared-1"}
    streaming = asyncio.ensure_future(client.post("/api/chat", json=body, headers=ALICE))
    for _ in range(100):
        if (await client.get("/api/chat/messages", params={"conversationId": "shared-1"}, headers=ALICE)).is_success:
            break
        await asyncio.sleep(0.01)
    assert (await client.delete("/api/chat/conversations/shared-1", headers=ALICE)).status_code == 200
    await streaming
    await asyncio.sleep(0.2)  # the run ends after the delete
    bob = {"parts": [{"type": "text", "text": "mine"}], "threadId": "shared-1"}
    assert (await client.post("/api/chat", json=bob, headers=BOB)).status_code == 200
    listed = await client.get("/api/chat/messages", params={"conversationId": "shared-1"}, headers=BOB)
    messages = listed.json()["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[0]["parts"][0]["text"] == "mine"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
