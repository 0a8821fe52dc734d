"""A run survives its own event loop stalling for longer than its liveness lease, with a real redis-server.

The provider blocks the loop (`time.sleep`) mid-answer for longer than the old 3 s concurrency lease. The
run must still hold its concurrency slot afterwards (a second run over `max_concurrent_runs` is refused),
must not be told its conversation is gone (nobody claimed it meanwhile), and must finish normally.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import TYPE_CHECKING
from uuid import uuid4

import pytest
import redis.asyncio as aioredis
from litestar.testing import AsyncTestClient

from chatstream import create_app
from chatstream.errors import RateLimitedError
from chatstream.models import ChatRequest, MessagePart, Principal
from chatstream.providers.base import ModelFinish, ModelText
from tests.support.settings import make_settings, services_of

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from chatstream.api.deps import Services
    from chatstream.providers.base import ModelEvent, ProviderRequest

pytestmark = [pytest.mark.redis, pytest.mark.timeout(60)]

STALL = 4.0
"""Longer than 3 heartbeats: the liveness lease lapses during it, and so did the old concurrency lease."""
TOKENS = 40


class StallingProvider:
    """Streams TOKENS words, 50 ms apart, and blocks the whole event loop for STALL seconds after the fifth."""

    name = "mock"
    generates_images = False

    def __init__(self) -> None:
        self.stalled = False

    async def stream(self, request: ProviderRequest) -> AsyncIterator[ModelEvent]:
        for i in range(TOKENS):
            if i == 5 and not self.stalled:
                time.sleep(STALL)  # a saturated loop, or a paused process
                self.stalled = True
            await asyncio.sleep(0.05)
            yield ModelText(text=f"w{i} ")
        yield ModelFinish(reason="stop")

    async def aclose(self) -> None:
        return None


@pytest.fixture
async def redis_url() -> AsyncIterator[tuple[str, str]]:
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.skip("REDIS_URL is not set")
    prefix = f"test:{uuid4().hex}"
    yield url, prefix
    client = aioredis.Redis.from_url(url)
    keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=500)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def until_idle(services: Services) -> None:
    while services.runs.active_tasks:
        await asyncio.sleep(0.05)


def ask(text: str) -> ChatRequest:
    return ChatRequest(parts=(MessagePart(type="text", text=text),))


async def test_a_stalled_loop_keeps_the_runs_leases(redis_url: tuple[str, str]) -> None:
    url, prefix = redis_url
    provider = StallingProvider()
    settings = make_settings(
        redis_url=url, redis_prefix=prefix, max_concurrent_runs=1, heartbeat_seconds=1.0, title_generation=False
    )
    alice = Principal(user_id="alice", tier="premium")
    app = create_app(settings, providers={"mock": provider})
    async with AsyncTestClient(app) as client:
        services = services_of(app)
        first = await services.runs.start(alice, ask("hello"), ip="127.0.0.1")
        while not provider.stalled:
            await asyncio.sleep(0.05)
        # The loop just came back from a 4 s stall, with the run still streaming (its last ~1.7 s).
        with pytest.raises(RateLimitedError) as info:
            await services.runs.start(alice, ask("a second run over the limit"), ip="127.0.0.1")
        assert info.value.limit == "concurrent_runs"
        # Its liveness lapsed during the stall, but nobody claimed the conversation: it is alive again.
        for _ in range(20):
            if await services.registry.active(first.conversation_id) == first.run_id:
                break
            await asyncio.sleep(0.05)
        assert await services.registry.active(first.conversation_id) == first.run_id
        assert services.runs.active_tasks == 1
        await until_idle(services)
        message = await services.store.get_message(first.conversation_id, first.message_id)
        assert message is not None
        assert message.finish_reason == "stop"
        assert message.error is None
        assert message.text == "".join(f"w{i} " for i in range(TOKENS))
        assert services.metrics.leases_lost == {}
        assert services.metrics.loop_lag.total >= STALL - 1.5  # the ticker saw the stall
        metrics = (await client.get("/metrics")).text
        assert 'chat_leases_lost_total{lease="concurrency"} 0' in metrics
        assert "chat_event_loop_lag_seconds_bucket" in metrics
        # And the slot was released at the end: the user may start a run again.
        again = await services.runs.start(alice, ask("hi again"), ip="127.0.0.1")
        await until_idle(services)
        stored = await services.store.get_message(again.conversation_id, again.message_id)
        assert stored is not None
        assert stored.finish_reason == "stop"
