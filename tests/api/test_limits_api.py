"""Limits as the HTTP API applies them: which routes they cover and what a 429 looks like."""

from __future__ import annotations

from litestar.testing import AsyncTestClient

from chatstream import create_app
from tests.api.conftest import ALICE, make_settings

PARTS = {"parts": [{"type": "text", "text": "hi"}]}


async def test_daily_quota_429_and_reads_are_not_limited() -> None:
    app = create_app(make_settings(quota_per_day={"free": 20, "premium": 2}))
    async with AsyncTestClient(app) as client:
        for i in range(2):
            ok = await client.post("/api/chat", json={**PARTS, "threadId": f"q{i}"}, headers=ALICE)
            assert ok.status_code == 200
            assert ok.headers["ratelimit-remaining"] == str(1 - i)
            assert "ratelimit-limit" in ok.headers
        denied = await client.post("/api/chat", json={**PARTS, "threadId": "q9"}, headers=ALICE)
        assert denied.status_code == 429
        body = denied.json()
        assert body["error"] == "rate_limit"
        assert body["limit"] == "messages_per_day"
        assert int(denied.headers["retry-after"]) == body["retryAfter"] > 0
        assert denied.headers["ratelimit-remaining"] == "0"
        # Nothing was stored for the denied request, and reads are not limited.
        assert (
            await client.get("/api/chat/messages", params={"conversationId": "q9"}, headers=ALICE)
        ).status_code == 404
        for _ in range(5):
            assert (await client.get("/api/chat/conversations", headers=ALICE)).status_code == 200


async def test_ip_rate_limit_covers_every_run_starting_route() -> None:
    app = create_app(make_settings(rate_ip_per_minute=2))
    async with AsyncTestClient(app) as client:
        assert (await client.post("/api/chat", json={**PARTS, "threadId": "ip"}, headers=ALICE)).status_code == 200
        seed = await client.post(
            "/api/chats/ip/messages/stream", json={"content": "x", "modelId": "mock-1"}, headers=ALICE
        )
        assert seed.status_code == 200
        third = await client.post("/api/chat", json=PARTS, headers=ALICE)
        assert third.status_code == 429
        assert third.json()["limit"] == "ip_per_minute"
        assert 0 < int(third.headers["retry-after"]) <= 60
        assert "ratelimit-policy" in third.headers
        assert (await client.get("/api/chat/ip/stream", headers=ALICE)).status_code in (200, 204)
