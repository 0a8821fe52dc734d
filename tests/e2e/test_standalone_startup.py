"""The standalone server as a real process: what a mistake at start-up prints (one line, exit 2, under
`python -m app` and under `uvicorn app.main:app` alike), and its JSON log lines."""

from __future__ import annotations

import json
import os
import socket
import sys
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.support.server import AUTH, ROOT, ServerProcess, free_port

if TYPE_CHECKING:
    import subprocess
    from pathlib import Path

pytestmark = pytest.mark.e2e

COMMANDS = {
    "python -m app": [sys.executable, "-m", "app", "--port", "{port}"],
    "uvicorn app.main:app": [sys.executable, "-m", "uvicorn", "app.main:app", "--port", "{port}"],
}


def _run(command: list[str], env: dict[str, str], port: int) -> subprocess.CompletedProcess[str]:
    import subprocess

    base = {k: v for k, v in os.environ.items() if not k.startswith(("CHAT_", "OPENAI_", "ANTHROPIC_", "HOST", "PORT"))}
    base.pop("REDIS_URL", None)
    return subprocess.run(
        [arg.replace("{port}", str(port)) for arg in command],
        cwd=ROOT,
        env={**base, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )


def _without_anthropic(tmp_path: Path) -> dict[str, str]:
    """An `anthropic` that fails to import, first on the path: as if `chatstream[anthropic]` were not installed."""
    (tmp_path / "anthropic").mkdir()
    (tmp_path / "anthropic" / "__init__.py").write_text("raise ImportError('not installed (test)')\n")
    return {"ANTHROPIC_API_KEY": "sk-ant-test", "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}


@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
@pytest.mark.parametrize(
    ("case", "line"),
    [
        ("bad value", "error: invalid configuration: Expected `int`, got `str` - at `$.max_steps`"),
        # Found by the plugin or the provider setup, not by reading the settings:
        ("missing SDK", "error: anthropic is not installed: pip install 'chatstream[anthropic]'"),
        ("default not served", "error: CHAT_DEFAULT_PROVIDER='groq' is not configured: set GROQ_API_KEY"),
    ],
)
@pytest.mark.timeout(60)
def test_a_configuration_error_is_one_line_and_exit_2(command: list[str], case: str, line: str, tmp_path: Path) -> None:
    env = {
        "bad value": {"CHAT_MAX_STEPS": "abc"},
        "missing SDK": _without_anthropic(tmp_path),
        "default not served": {"CHAT_DEFAULT_PROVIDER": "groq"},
    }[case]

    done = _run(command, env, free_port())

    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [line]  # no traceback, no banner
    assert done.stdout == ""


def test_a_busy_port_is_said_before_any_banner() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]

        done = _run(COMMANDS["python -m app"], {}, port)

    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"error: port {port} on 127.0.0.1 is already in use"]


@pytest.mark.timeout(60)
def test_json_logs_are_one_object_per_line_with_the_access_fields() -> None:
    server = ServerProcess({"CHAT_LOG_FORMAT": "json"})
    with server, httpx.Client(base_url=server.url) as client:
        r = client.post("/api/chat", json={"parts": [{"type": "text", "text": "mock:tokens=2"}]}, headers=AUTH)
        assert r.status_code == 200
        assert client.post("/api/chat", json={"parts": [{"type": "text", "text": "hi"}]}).status_code == 401

    lines = [json.loads(line) for line in server.log.read_text().splitlines() if line.strip()]
    assert all({"ts", "level", "logger", "msg"} <= set(line) for line in lines)
    assert any(line["logger"] == "app" and "chatstream on http://127.0.0.1" in line["msg"] for line in lines)
    # A streamed answer's line is written once its last byte is sent, which may come after the next request's.
    access = [line for line in lines if line["logger"] == "chatstream.access" and line["method"] == "POST"]
    access.sort(key=lambda a: a["status"])
    assert [(a["path"], a["status"], a["user_id"]) for a in access] == [
        ("/api/chat", 200, "alice"),
        ("/api/chat", 401, None),
    ]
    assert access[0]["thread_id"] == r.headers["x-thread-id"] and access[0]["run_id"] == r.headers["x-run-id"]
    assert isinstance(access[0]["duration_ms"], float)
