"""Schemathesis against a real `python -m app`: the served OpenAPI document, fuzzed with every check.

Bounded and reproducible: 30 examples per operation, one worker, a fixed seed, every phase (coverage,
fuzzing, stateful), well under two minutes. It must find no server error (no 5xx) and no response that
breaks the document (status, content type, headers, JSON bodies and every SSE event's `data`), and the
document must be exact the other way too: what it calls valid is accepted, what it calls invalid refused.
What the fuzzer must be told beyond the document (the configured models, a caller's own id, the transport's
last message) is in `schemathesis_hooks.py`; the few documented 400s that depend on stored state are in
`schemathesis.toml`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.server import ROOT, TOKEN, ServerProcess

pytestmark = pytest.mark.e2e

HERE = Path(__file__).parent
EXAMPLES = 30
SEED = 1


@pytest.mark.timeout(240)
def test_schemathesis_finds_no_server_error_and_no_schema_violation() -> None:
    # Limits out of the way: a 429 is documented, but a fuzzer stopped by quotas tests nothing else.
    env = {"CHAT_QUOTA_PREMIUM_PER_DAY": "10000000", "CHAT_MAX_CONCURRENT_RUNS": "1000"}
    with ServerProcess(env) as server:
        command = [
            sys.executable,
            "-c",
            "import sys; from schemathesis.cli import schemathesis; sys.exit(schemathesis())",
            "--config-file",
            str(HERE / "schemathesis.toml"),
            "--no-color",
            "run",
            f"{server.url}/schema/openapi.json",
            "--checks=all",
            f"--max-examples={EXAMPLES}",
            f"--seed={SEED}",
            "--workers=1",
            "--request-timeout=20",
            f"--header=Authorization: Bearer {TOKEN}",
        ]
        run_env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.e2e.schemathesis_hooks", "PYTHONPATH": str(ROOT)}
        done = subprocess.run(command, cwd=ROOT, env=run_env, capture_output=True, text=True, timeout=200)
    report = done.stdout + done.stderr
    (ROOT / ".pytest_cache").mkdir(exist_ok=True)
    (ROOT / ".pytest_cache" / "schemathesis.log").write_text(report)
    assert done.returncode == 0, report[-20000:]
    assert "Tested: 26" in report, report[-5000:]
    assert " passed" in report and "failed" not in report.split("SUMMARY")[-1], report[-5000:]
