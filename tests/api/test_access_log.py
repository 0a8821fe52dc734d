"""The access log: one `chatstream.access` line per request on our routes, with its structured fields."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from chatstream.api import access_log
from chatstream.providers.base import ModelFinish, ModelText
from tests.api.conftest import ALICE

if TYPE_CHECKING:
    import pytest
    from litestar.testing import AsyncTestClient

    from chatstream.providers.mock import MockProvider


def _access(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "chatstream.access"]


async def test_chat_request_is_one_line_with_user_thread_and_run(
    client: AsyncTestClient[Any], mock: MockProvider, caplog: pytest.LogCaptureFixture
) -> None:
    mock.enqueue([ModelText(text="Hi"), ModelFinish(reason="stop")])
    caplog.set_level(logging.INFO, logger="chatstream.access")

    r = await client.post("/api/chat", json={"parts": [{"type": "text", "text": "hello"}]}, headers=ALICE)

    assert r.status_code == 200
    [line] = _access(caplog)
    thread, run = r.headers["x-thread-id"], r.headers["x-run-id"]
    fields = {k: vars(line)[k] for k in ("method", "path", "status", "user_id", "thread_id", "run_id")}
    assert fields == {
        "method": "POST",
        "path": "/api/chat",
        "status": 200,
        "user_id": "alice",
        "thread_id": thread,
        "run_id": run,
    }
    duration = vars(line)["duration_ms"]
    assert isinstance(duration, float) and duration >= 0
    assert line.getMessage() == f"POST /api/chat 200 {duration:.1f}ms user=alice thread={thread} run={run}"


async def test_unauthorized_request_is_logged_without_a_user(
    client: AsyncTestClient[Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="chatstream.access")

    r = await client.post("/api/chat", json={"parts": [{"type": "text", "text": "hello"}]})

    assert r.status_code == 401
    [line] = _access(caplog)
    fields = {k: vars(line)[k] for k in ("method", "path", "status", "user_id", "thread_id", "run_id")}
    assert fields == {
        "method": "POST",
        "path": "/api/chat",
        "status": 401,
        "user_id": None,
        "thread_id": None,
        "run_id": None,
    }
    assert line.getMessage().startswith("POST /api/chat 401 ")
    assert line.getMessage().endswith(" user=- thread=- run=-")


async def test_no_work_while_the_logger_is_off(
    client: AsyncTestClient[Any], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[object] = []
    monkeypatch.setattr(access_log.log, "info", lambda *a, **kw: calls.append(a))
    caplog.set_level(logging.WARNING, logger="chatstream.access")

    assert (await client.get("/healthz")).status_code == 200
    assert calls == []  # not even the call: the fields are never gathered

    caplog.set_level(logging.INFO, logger="chatstream.access")
    assert (await client.get("/healthz")).status_code == 200
    assert len(calls) == 1


async def test_under_a_mount_the_line_has_the_path_the_client_sent(caplog: pytest.LogCaptureFixture) -> None:
    import httpx
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from chatstream import create_app
    from tests.api.conftest import make_settings

    host = Starlette(routes=[Mount("/chat", app=create_app(make_settings()))])  # type: ignore[arg-type]
    caplog.set_level(logging.INFO, logger="chatstream.access")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=host), base_url="http://host") as client:
        r = await client.get("/chat/api/chat/conversations", headers=ALICE)
    assert r.status_code == 200
    [line] = _access(caplog)
    assert vars(line)["path"] == "/chat/api/chat/conversations"
