"""End to end through a real uvicorn process on 127.0.0.1: streaming, resume, stop, errors, conversations."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from tests.support.server import AUTH, OTHER_AUTH, ServerProcess
from tests.support.sse import Frame, iter_frames, parse_frames, text_of

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with ServerProcess({"CHAT_STREAM_TTL_SECONDS": "1.5", "CHAT_PING_INTERVAL_SECONDS": "0.3"}) as proc:
        yield proc


@pytest.fixture
async def http(server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, headers=AUTH, timeout=10) as client:
        yield client


def slow(tokens: int, delay_ms: int, thread: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"parts": [{"type": "text", "text": f"mock:tokens={tokens} mock:delay={delay_ms}"}]}
    if thread:
        body["threadId"] = thread
    return body


def expected(tokens: int) -> str:
    return "".join(f"t{i} " for i in range(tokens))


async def read_some(http: httpx.AsyncClient, body: dict[str, Any], count: int) -> tuple[str, list[Frame]]:
    """POST, read `count` frames, then drop the connection."""
    frames: list[Frame] = []
    async with http.stream("POST", "/api/chat", json=body) as r:
        assert r.status_code == 200
        thread = r.headers["x-thread-id"]
        async for frame in iter_frames(r):
            frames.append(frame)
            if len(frames) >= count:
                break
    return thread, frames


async def test_stream_end_to_end(http: httpx.AsyncClient) -> None:
    r = await http.post("/api/chat", json={"parts": [{"type": "text", "text": "Hello"}]})
    assert r.status_code == 200
    assert r.headers["x-vercel-ai-ui-message-stream"] == "v1"
    frames = parse_frames(r.text)
    assert frames[0].type == "start"
    assert frames[-2].type == "finish"
    assert frames[-1].data == "[DONE]"
    assert "mock provider" in text_of(frames)


async def test_resume_mid_stream_from_cursor_loses_and_repeats_nothing(http: httpx.AsyncClient) -> None:
    thread, first = await read_some(http, slow(30, 20), 12)
    cursor = first[-1].id
    assert cursor is not None
    async with http.stream("GET", f"/api/chat/{thread}/stream", headers={"Last-Event-ID": cursor}) as r:
        assert r.status_code == 200
        rest = [f async for f in iter_frames(r)]
    assert rest[0].id is not None
    assert int(rest[0].id) == int(cursor) + 1
    assert text_of(first) + text_of(rest) == expected(30)
    assert rest[-1].data == "[DONE]"
    # ?cursor= is the same as Last-Event-ID.
    r2 = await http.get(f"/api/chat/{thread}/stream", params={"cursor": cursor})
    assert text_of(first) + text_of(parse_frames(r2.text)) == expected(30)


async def test_disconnect_does_not_stop_the_run_and_plain_resume_replays_from_start(
    http: httpx.AsyncClient,
) -> None:
    thread, first = await read_some(http, slow(20, 20), 5)
    async with http.stream("GET", f"/api/chat/{thread}/stream") as r:
        replay = [f async for f in iter_frames(r)]
    assert replay[0].type == "start"
    assert replay[0].data == first[0].data
    assert text_of(replay) == expected(20)
    stored = (await http.get("/api/chat/messages", params={"conversationId": thread})).json()["messages"]
    assert stored[-1]["role"] == "assistant"
    assert [p["text"] for p in stored[-1]["parts"] if p["type"] == "text"] == [expected(20)]


async def test_resume_after_end_within_ttl_then_204_after_expiry(http: httpx.AsyncClient) -> None:
    r = await http.post("/api/chat", json=slow(5, 0))
    thread = r.headers["x-thread-id"]
    again = await http.get(f"/api/chat/{thread}/stream")
    assert again.status_code == 200
    assert text_of(parse_frames(again.text)) == expected(5)
    await asyncio.sleep(1.8)
    gone = await http.get(f"/api/chat/{thread}/stream")
    assert gone.status_code == 204
    assert (await http.get("/api/chat/never-existed/stream")).status_code == 204


async def test_stop_from_a_second_connection(http: httpx.AsyncClient, server: ServerProcess) -> None:
    frames: list[Frame] = []
    async with http.stream("POST", "/api/chat", json=slow(200, 20)) as r:
        thread = r.headers["x-thread-id"]
        async with httpx.AsyncClient(base_url=server.url, headers=AUTH) as other:
            async for frame in iter_frames(r):
                frames.append(frame)
                if len(frames) == 10:
                    stopped = (await other.post(f"/api/chat/{thread}/stop")).json()
                    assert stopped["stopped"] is True
    finish = next(f for f in frames if f.type == "finish")
    assert finish.data["finishReason"] == "interrupted"
    produced = text_of(frames)
    assert 0 < len(produced) < len(expected(200))
    stored = (await http.get("/api/chat/messages", params={"conversationId": thread})).json()["messages"]
    assert stored[-1]["finishReason"] == "interrupted"
    assert [p["text"] for p in stored[-1]["parts"] if p["type"] == "text"] == [produced]
    # Nothing active any more: a stop is a no-op, and the conversation takes a new message.
    assert (await http.post(f"/api/chat/{thread}/stop")).json()["stopped"] is False


async def test_concurrent_send_supersedes_and_reconnect_works(http: httpx.AsyncClient) -> None:
    """The default busy policy: a send while an answer streams stops it (stored as interrupted) and starts anew;
    a reconnect then follows the new answer."""
    thread, _ = await read_some(http, slow(300, 20, "race-thread"), 3)
    second = await http.post("/api/chat", json={"parts": [{"type": "text", "text": "hi"}], "threadId": thread})
    assert second.status_code == 200, second.text
    assert parse_frames(second.text)[-2].data["finishReason"] == "stop"
    messages = (await http.get("/api/chat/messages", params={"conversationId": thread})).json()["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[1]["finishReason"] == "interrupted"
    resumed = await http.get(f"/api/chat/{thread}/stream")
    assert text_of(parse_frames(resumed.text)) == text_of(parse_frames(second.text))


async def test_keepalive_ping_during_silence(http: httpx.AsyncClient) -> None:
    async with http.stream("POST", "/api/chat", json=slow(2, 900)) as r:
        raw = b""
        async for chunk in r.aiter_bytes():
            raw += chunk
    assert b": ping\n\n" in raw
    assert text_of(parse_frames(raw.decode())) == expected(2)


async def test_auth_ownership_and_limits_over_http(http: httpx.AsyncClient, server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url) as anon:
        r = await anon.post("/api/chat", json={"parts": [{"type": "text", "text": "x"}]})
        assert r.status_code == 401
        assert r.json() == {"error": "unauthorized"}
    r = await http.post("/api/chat", json={"parts": [{"type": "text", "text": "mine"}], "threadId": "alice-only"})
    assert r.status_code == 200
    async with httpx.AsyncClient(base_url=server.url, headers=OTHER_AUTH) as bob:
        assert (await bob.get("/api/chat/messages", params={"conversationId": "alice-only"})).status_code == 403
        assert (await bob.get("/api/chat/alice-only/stream")).status_code == 403
        assert (await bob.post("/api/chat/alice-only/stop")).status_code == 403
        assert (await bob.delete("/api/chat/conversations/alice-only")).status_code == 403
        assert (await bob.get("/api/chat/conversations")).json()["conversations"] == []
    assert (await http.delete("/api/chat/conversations/nope")).status_code == 404
    huge = {"parts": [{"type": "text", "text": "x" * (21 * 1024 * 1024)}]}
    r = await http.post("/api/chat", json=huge)
    assert r.status_code == 413
    assert "error" in r.json()


async def test_conversation_endpoints(http: httpx.AsyncClient) -> None:
    thread = f"conv-{time.time_ns()}"
    for i in range(3):
        r = await http.post("/api/chat", json={"message": f"question {i}", "conversationId": thread, "channel": "web"})
        assert r.status_code == 200
        assert r.json()["conversationId"] == thread
    listed = (await http.get("/api/chat/conversations", params={"channel": "web", "limit": 100})).json()
    assert thread in [c["id"] for c in listed["conversations"]]
    assert all(c["channel"] == "web" for c in listed["conversations"])
    for bad in ("0", "101", "abc"):
        r = await http.get("/api/chat/conversations", params={"limit": bad})
        assert r.status_code == 400
        assert "limit" in r.json()["error"]
        r = await http.get("/api/chat/messages", params={"conversationId": thread, "limit": bad})
        assert r.status_code == 400
    messages = (await http.get("/api/chat/messages", params={"conversationId": thread})).json()["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"] * 3
    assert [m["createdAt"] for m in messages] == sorted(m["createdAt"] for m in messages)
    last_two = (await http.get("/api/chat/messages", params={"conversationId": thread, "limit": 2})).json()
    assert [m["id"] for m in last_two["messages"]] == [m["id"] for m in messages[-2:]]

    r = await http.post(f"/api/chat/conversations/{thread}/truncate", json={"keep": 4})
    assert r.json() == {"success": True, "conversationId": thread, "kept": 4, "deleted": 2}
    r = await http.post(f"/api/chat/conversations/{thread}/truncate", json={"keep": 10})
    assert r.json() == {"success": True, "conversationId": thread, "kept": 4, "deleted": 0}
    assert (await http.post(f"/api/chat/conversations/{thread}/truncate", json={"keep": -1})).status_code == 400
    assert (await http.post(f"/api/chat/conversations/{thread}/truncate", json={})).status_code == 400
    r = await http.post(f"/api/chat/conversations/{thread}/truncate", json={"keep": 0})
    assert r.json() == {"success": True, "conversationId": thread, "kept": 0, "deleted": 4}

    r = await http.delete(f"/api/chat/conversations/{thread}")
    assert r.json() == {"success": True, "conversationId": thread}
    assert (await http.get("/api/chat/messages", params={"conversationId": thread})).status_code == 404


async def test_health_and_readiness(http: httpx.AsyncClient) -> None:
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    ready = await http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    metrics = (await http.get("/metrics")).text
    assert "chat_active_runs" in metrics


@pytest.mark.parametrize("backend", ["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def test_a_client_that_leaves_ends_its_reader_and_the_server_logs_no_error(backend: str) -> None:
    """The response notices the disconnect (`api/streaming.py`): its reader stops renewing the run's read mark,
    so with `CHAT_ABANDON_AFTER_SECONDS` the unread run is stopped long before its end; a reader that went on
    reading into the void would have kept it going for the whole 8 s."""
    env = {"CHAT_ABANDON_AFTER_SECONDS": "1", "CHAT_TITLE_GENERATION": "false"}
    if backend == "redis":
        url = os.environ.get("REDIS_URL")
        if not url:
            pytest.skip("REDIS_URL is not set")
        env |= {"REDIS_URL": url, "CHAT_REDIS_PREFIX": f"leaves{time.monotonic_ns()}"}
    with ServerProcess(env) as proc:
        async with httpx.AsyncClient(base_url=proc.url, headers=AUTH, timeout=10) as http:
            started = time.monotonic()
            thread, first = await read_some(http, slow(400, 20), 5)
            assert [f.type for f in first[:1]] == ["start"]
            answer: dict[str, Any] = {}
            while time.monotonic() - started < 5:
                r = await http.get("/api/chat/messages", params={"conversationId": thread})
                messages = r.json()["messages"]
                if messages[-1]["role"] == "assistant":
                    answer = messages[-1]
                    break
                await asyncio.sleep(0.1)
            assert answer.get("finishReason") == "interrupted", answer
            # A stream that is read to its end on the same server still ends normally.
            r = await http.post("/api/chat", json=slow(5, 0))
            assert parse_frames(r.text)[-2].data["finishReason"] == "stop"
    log = proc.log.read_text()
    assert "Traceback" not in log and "Exception in ASGI application" not in log, log
