"""`python -m app` as a real process: its command line, its refusals, and several workers on one port."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest

from tests.fakes.upstream import FakeUpstream
from tests.support.server import AUTH, ROOT, ServerProcess, free_port
from tests.support.sse import parse_frames, text_of

pytestmark = pytest.mark.e2e


def _run(argv: list[str], env: dict[str, str] | None = None, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CHAT_", "OPENAI_", "ANTHROPIC_", "HOST", "PORT"))}
    base.pop("REDIS_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "app", *argv],
        cwd=ROOT,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_help_lists_the_options() -> None:
    done = _run(["--help"])
    assert done.returncode == 0
    for option in ("--host", "--port", "--workers", "--log-level", "--reload"):
        assert option in done.stdout


def test_refuses_the_demo_token_on_every_interface() -> None:
    done = _run(["--host", "0.0.0.0", "--port", str(free_port())])
    assert done.returncode == 2
    assert "refusing to serve the demo token" in done.stderr and "CHAT_AUTH_TOKENS" in done.stderr


def test_several_workers_need_redis() -> None:
    done = _run(["--workers", "2", "--port", str(free_port())])
    assert done.returncode == 2
    assert "--workers needs REDIS_URL" in done.stderr


def test_workers_auto_is_one_per_core() -> None:
    from app.__main__ import parse_args

    assert parse_args(["--workers", "auto"]).workers == (os.cpu_count() or 1)
    assert parse_args([]).workers == 1


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="`auto` is one worker on one core")
def test_workers_auto_needs_redis_too() -> None:
    done = _run(["--workers", "auto", "--port", str(free_port())])
    assert done.returncode == 2
    assert "--workers needs REDIS_URL" in done.stderr


def test_port_from_the_command_line_and_the_demo_token_on_loopback() -> None:
    port = free_port()
    server = ServerProcess({"CHAT_AUTH_TOKENS": ""}, port=free_port())
    server.env.pop("CHAT_AUTH_TOKENS")
    server.url = f"http://127.0.0.1:{port}"
    server.argv = ["--port", str(port)]
    with server:
        r = httpx.post(
            f"{server.url}/api/chat",
            json={"parts": [{"type": "text", "text": "mock:tokens=2"}]},
            headers={"Authorization": "Bearer demo-token"},
        )
        assert r.status_code == 200
        assert text_of(parse_frames(r.text)) == "t0 t1 "
    log = server.log.read_text()
    assert "demo token 'demo-token'" in log and "the mock provider answers" in log


@pytest.mark.redis
@pytest.mark.timeout(60)
def test_two_workers_share_one_port_and_one_redis() -> None:
    server = ServerProcess({"REDIS_URL": os.environ["REDIS_URL"], "CHAT_REDIS_PREFIX": f"w{time.time_ns()}"})
    server.argv = ["--workers", "2"]
    with server:
        threads = []
        for _ in range(6):  # new connections: the kernel spreads them over both workers
            with httpx.Client(base_url=server.url, headers=AUTH) as client:
                r = client.post("/api/chat", json={"parts": [{"type": "text", "text": "mock:tokens=2"}]})
                assert r.status_code == 200
                threads.append(r.headers["x-thread-id"])
        for thread in threads:
            with httpx.Client(base_url=server.url, headers=AUTH) as client:
                listed = client.get("/api/chat/messages", params={"conversationId": thread})
                assert [m["role"] for m in listed.json()["messages"]] == ["user", "assistant"]
                assert client.get(f"/api/chat/{thread}/stream").status_code == 200  # resumable from any worker
    assert "workers: 2" in server.log.read_text()


@pytest.mark.redis
@pytest.mark.timeout(60)
@pytest.mark.parametrize("command", ["python -m app", "uvicorn --factory"])
def test_workers_log_as_quietly_as_one_process(command: str) -> None:
    """Each worker is a fresh interpreter: it applies the standalone logging itself (where it builds its app,
    whichever entry point), so the SDK's HTTP client logs no line per upstream request (httpx2's
    `HTTP Request: POST ...` at INFO), while our own INFO lines (access log, run ends) are there."""
    with FakeUpstream.start() as upstream:
        ns = upstream.namespace()
        server = ServerProcess(
            {
                "REDIS_URL": os.environ["REDIS_URL"],
                "CHAT_REDIS_PREFIX": f"wq{time.time_ns()}",
                "OLLAMA_BASE_URL": f"{upstream.url}/{ns}/v1",
                "CHAT_TITLE_GENERATION": "false",
            }
        )
        server.argv = ["--workers", "2"]
        if command == "uvicorn --factory":
            server.command = [sys.executable, "-m", "uvicorn", "--factory", "app.server:build_app", "--no-access-log"]
            server.argv += ["--port", str(server.port)]
        with server:
            for _ in range(6):  # new connections: the kernel spreads them over both workers
                with httpx.Client(base_url=server.url, headers=AUTH) as client:
                    body = {"parts": [{"type": "text", "text": "hi"}], "provider": "ollama", "model": "m-tokens-2"}
                    assert client.post("/api/chat", json=body).status_code == 200
        assert len(upstream.requests(ns)) == 6
    log = server.log.read_text()
    assert log.count("INFO chatstream.access: POST /api/chat 200") == 6
    assert "HTTP Request" not in log and "httpx" not in log, log
