"""Run the AI SDK conformance script (`tests/node/conformance.mjs`, the real `ai` npm client) against a server.

Shared by `tests/e2e/test_ai_sdk_conformance.py` (the standalone server) and `tests/e2e/test_example_hosts.py`
(chatstream under a prefix inside the example hosts).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable

import pytest

from tests.support.server import ROOT, TOKEN, Process

NODE = shutil.which("node")
NODE_DIR = ROOT / "tests" / "node"
SCRIPT = NODE_DIR / "conformance.mjs"
SCRIPT_TIMEOUT = 60.0


def run_conformance(
    server: Process, *checks: str, base_url: str | None = None, env: dict[str, str] | None = None
) -> None:
    """Run the script for `checks` against `server` (at `base_url`, default its root URL); fail with its whole
    report unless it exits 0. `env`: more variables for the script (the lifecycle checks' FAKE_URL, FAKE_NS)."""
    assert NODE is not None
    if not (NODE_DIR / "node_modules" / "ai" / "package.json").is_file():
        pytest.fail("tests/node/node_modules is missing the `ai` package: run `make node`", pytrace=False)
    script_env = {
        **os.environ,
        "BASE_URL": base_url or server.url,
        "TOKEN": TOKEN,
        "CHECKS": ",".join(checks),
        "CONFORMANCE_TIMEOUT_MS": str(int((SCRIPT_TIMEOUT - 5) * 1000)),
        **(env or {}),
    }
    run_node(
        SCRIPT.name,
        script_env,
        timeout=SCRIPT_TIMEOUT,
        what=f"conformance.mjs CHECKS={','.join(checks)}",
        logs=lambda: server_log(server),
    )


def run_node(script: str, env: dict[str, str], *, timeout: float, what: str, logs: Callable[[], str]) -> str:
    """Run `node script` in tests/node; its stdout, or fail the test with its whole report and the servers'
    logs (read only then, so they hold what the script's requests did)."""
    assert NODE is not None
    try:
        proc = subprocess.run(
            [NODE, script], cwd=NODE_DIR, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        pytest.fail(f"{what} timed out after {timeout} s\n{out}{logs()}", pytrace=False)
    if proc.returncode != 0:
        pytest.fail(
            f"{what} exited {proc.returncode}\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}{logs()}",
            pytrace=False,
        )
    return proc.stdout


def server_log(server: Process, limit: int = 4000) -> str:
    try:
        text = server.log.read_text(errors="replace")
    except OSError:
        return ""
    return f"\n--- server log (last {limit} chars) ---\n{text[-limit:]}"
