"""The performance metrics on `/metrics`: run start cost (`chat_run_start_seconds`) and event-loop lag
(`chat_event_loop_lag_seconds`, sampled by the lifespan's sampler whether or not runs execute)."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from litestar.testing import AsyncTestClient

from chatstream import create_app
from chatstream.metrics import LAG_SAMPLE_SECONDS, Metrics, sample_loop_lag
from tests.api.conftest import ALICE
from tests.support.settings import make_settings


def _value(text: str, sample: str) -> float:
    match = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.MULTILINE)
    assert match is not None, f"{sample} not in:\n{text}"
    return float(match.group(1))


async def test_run_start_cost_is_observed_once_per_started_run(client: AsyncTestClient[Any]) -> None:
    for thread in ("p1", "p2"):
        r = await client.post(
            "/api/chat", json={"parts": [{"type": "text", "text": "mock:tokens=2"}], "id": thread}, headers=ALICE
        )
        assert r.status_code == 200
    text = (await client.get("/metrics")).text
    assert "# TYPE chat_run_start_seconds histogram" in text
    assert _value(text, "chat_run_start_seconds_count") == 2
    assert 0 < _value(text, "chat_run_start_seconds_sum") < 2 * 5.0  # seconds: from arrival to the task started
    assert _value(text, 'chat_run_start_seconds_bucket{le="+Inf"}') == 2
    # A request that starts no run observes nothing.
    assert (await client.post("/api/chat", json={"parts": [{"type": "text", "text": "x"}]})).status_code == 401
    assert _value((await client.get("/metrics")).text, "chat_run_start_seconds_count") == 2


async def test_event_loop_lag_is_sampled_from_the_lifespan() -> None:
    async with AsyncTestClient(create_app(make_settings())) as client:
        await asyncio.sleep(LAG_SAMPLE_SECONDS * 2.5)
        text = (await client.get("/metrics")).text
    assert "# TYPE chat_event_loop_lag_seconds histogram" in text
    assert _value(text, "chat_event_loop_lag_seconds_count") >= 2  # no run needed


async def test_the_lag_sampler_sees_a_blocked_loop() -> None:
    metrics = Metrics()
    sampler = asyncio.create_task(sample_loop_lag(metrics, interval=0.05))
    try:
        await asyncio.sleep(0.12)
        time.sleep(0.3)  # block the loop, as a CPU-bound burst of run starts does
        await asyncio.sleep(0.12)
    finally:
        sampler.cancel()
    assert metrics.loop_lag.count >= 3
    assert 0.25 <= metrics.loop_lag.total < 1.0
