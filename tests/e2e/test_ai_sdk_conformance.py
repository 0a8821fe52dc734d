"""AI SDK protocol conformance: the real `ai` npm client (`tests/node/conformance.mjs`) against a real server.

The script drives `DefaultChatTransport`, `readUIMessageStream` and a headless `AbstractChat` (what `useChat`
wraps), validates every chunk with the SDK's own `parseJsonEventStream` + `uiMessageChunkSchema`, and
checks order, headers, assembled messages, resume and tool approval. See the script's header for the checks.

Skipped only when `node` is not installed; with node present but `tests/node/node_modules` missing the tests
fail and say to run `make node`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import TYPE_CHECKING

import pytest

from tests.support.server import ROOT, TOKEN, ServerProcess, free_port

if TYPE_CHECKING:
    from collections.abc import Iterator

NODE = shutil.which("node")
NODE_DIR = ROOT / "tests" / "node"
SCRIPT = NODE_DIR / "conformance.mjs"
SCRIPT_TIMEOUT = 60.0

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.node,
    pytest.mark.timeout(SCRIPT_TIMEOUT + 40),
    pytest.mark.skipif(NODE is None, reason="node is not installed"),
]


def run_conformance(server: ServerProcess, *checks: str) -> None:
    """Run the script for `checks` against `server`; fail with its whole report unless it exits 0."""
    assert NODE is not None
    if not (NODE_DIR / "node_modules" / "ai" / "package.json").is_file():
        pytest.fail("tests/node/node_modules is missing the `ai` package: run `make node`", pytrace=False)
    env = {
        **os.environ,
        "BASE_URL": server.url,
        "TOKEN": TOKEN,
        "CHECKS": ",".join(checks),
        "CONFORMANCE_TIMEOUT_MS": str(int((SCRIPT_TIMEOUT - 5) * 1000)),
    }
    try:
        proc = subprocess.run(
            [NODE, str(SCRIPT)],
            cwd=NODE_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=SCRIPT_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        pytest.fail(f"conformance.mjs timed out after {SCRIPT_TIMEOUT} s\n{out}{server_log(server)}", pytrace=False)
    if proc.returncode != 0:
        pytest.fail(
            f"conformance.mjs CHECKS={','.join(checks)} exited {proc.returncode}\n"
            f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}{server_log(server)}",
            pytrace=False,
        )


def server_log(server: ServerProcess, limit: int = 4000) -> str:
    try:
        text = server.log.read_text(errors="replace")
    except OSError:
        return ""
    return f"\n--- server log (last {limit} chars) ---\n{text[-limit:]}"


def no_weather_backend() -> dict[str, str]:
    """Point get_weather at a closed local port: no network here, so the tool fails fast (`output-error`)."""
    dead = f"http://127.0.0.1:{free_port()}"
    return {"CHAT_WEATHER_GEOCODING_URL": f"{dead}/v1/search", "CHAT_WEATHER_FORECAST_URL": f"{dead}/v1/forecast"}


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with ServerProcess(env=no_weather_backend()) as proc:
        yield proc


@pytest.fixture(scope="module")
def approval_server() -> Iterator[ServerProcess]:
    with ServerProcess(env={**no_weather_backend(), "CHAT_APPROVAL_TOOLS": "get_weather"}) as proc:
        yield proc


def test_stream_headers_resume_and_errors(server: ServerProcess) -> None:
    """sendMessages + readUIMessageStream; abort mid-stream and reconnectToStream (replay from `start`, every
    token once), Chat.resumeStream, reconnect after completion; unknown chat -> null; a mid-answer error."""
    run_conformance(server, "basic", "resume", "unknown", "errors")


def test_conversation_data_part_is_replaced_not_duplicated(server: ServerProcess) -> None:
    """The start-of-stream and title `data-conversation` chunks assemble into ONE part (same `id`)."""
    run_conformance(server, "datapart")


def test_server_executed_tool_call(server: ServerProcess) -> None:
    """get_weather (no approval) runs on the server; the Chat sees input -> output/error -> next step's text."""
    run_conformance(server, "tools")


def test_tool_approval_round_trip(approval_server: ServerProcess) -> None:
    """approval-requested; addToolApprovalResponse + sendAutomaticallyWhen continues the SAME message (approve
    and deny)."""
    run_conformance(approval_server, "approval")
