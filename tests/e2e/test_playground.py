"""The standalone server's playground (`/`) in real headless Chromium: a person's session, scripted.

`tests/node/playground.mjs` drives the page (app/playground, `useChat` with `resume: true`) through
playwright-core against a real `python -m app`: send (and regenerate), reload in the middle of an answer,
approve and deny a tool call, an answer that fails mid-stream, stop then send. Here its report is checked,
and so is what the server stored. The page's bundle must be what its pinned packages build.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.playground import STATIC
from tests.support.conformance import NODE, NODE_DIR, run_node, server_log
from tests.support.server import AUTH, ROOT, TOKEN, ServerProcess, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.node]

CHROMIUM = Path("/usr/bin/chromium")
PLAYGROUND = ROOT / "app" / "playground"
SCRIPT_TIMEOUT = 150.0


def expected(tokens: int) -> str:
    return "".join(f"t{i} " for i in range(tokens))


def texts(shown: dict[str, Any], role: str) -> list[str]:
    return [m["text"] for m in shown["messages"] if m["role"] == role]


@pytest.mark.timeout(60)
@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_the_committed_bundle_is_what_the_pinned_packages_build(tmp_path: Path) -> None:
    if not (PLAYGROUND / "node_modules" / "esbuild" / "package.json").is_file():
        pytest.fail("app/playground/node_modules is missing: run `make node`", pytrace=False)
    assert NODE is not None
    out = tmp_path / "app.js"
    subprocess.run([NODE, "build.mjs", str(out)], cwd=PLAYGROUND, check=True, timeout=50, capture_output=True)
    assert out.read_bytes() == (STATIC / "app.js").read_bytes(), (
        "app/playground/static/app.js is stale: make playground"
    )


@pytest.mark.timeout(200)
@pytest.mark.skipif(NODE is None, reason="node is not installed")
@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is missing (apt-get install chromium)")
def test_a_session_in_the_playground() -> None:
    if not (NODE_DIR / "node_modules" / "playwright-core" / "package.json").is_file():
        pytest.fail("tests/node/node_modules is missing playwright-core: run `make node`", pytrace=False)
    dead = f"http://127.0.0.1:{free_port()}"  # getWeather fails fast: no network here
    env = {
        "CHAT_APPROVAL_TOOLS": "getWeather",
        "CHAT_WEATHER_GEOCODING_URL": f"{dead}/v1/search",
        "CHAT_WEATHER_FORECAST_URL": f"{dead}/v1/forecast",
    }
    with ServerProcess(env) as server:
        script_env = {
            **os.environ,
            "BASE_URL": server.url,
            "TOKEN": TOKEN,
            "CHROMIUM": str(CHROMIUM),
            "SCREENSHOT_DIR": str(ROOT / ".pytest_cache"),
        }
        out = run_node(
            "playground.mjs", script_env, timeout=SCRIPT_TIMEOUT, what="playground.mjs", logs=lambda: server_log(server)
        )
        report: dict[str, Any] = json.loads(out)
        stored = {}
        for name in ("reload", "stop"):
            thread = report["scenarios"][name]["after"]["thread"]
            r = httpx.get(f"{server.url}/api/chat/messages", params={"conversationId": thread}, headers=AUTH)
            stored[name] = r.json()["messages"]
    scenarios = report["scenarios"]
    assert report["pageErrors"] == [] and report["console"] == [] and report["refused"] == [], report
    assert report["origins"] == [server.url], "the page loads nothing from elsewhere"

    first, regenerated = scenarios["send"]["first"], scenarios["send"]["regenerated"]
    assert texts(first, "assistant") == [expected(5)] and first["messages"][-1]["reasoning"]
    assert "mock/mock-1" in first["models"] and first["thread"] in first["conversations"]
    assert texts(regenerated, "assistant") == [expected(5)]
    assert regenerated["messages"][-1]["id"] != first["messages"][-1]["id"]

    reload = scenarios["reload"]
    assert expected(60).startswith(reload["midway"]) and reload["midway"] != expected(60)
    assert texts(reload["after"], "user") == ["mock:tokens=60 mock:delay=40"]
    assert texts(reload["after"], "assistant") == [expected(60)]  # resumed: nothing missing, nothing twice
    assert [m["role"] for m in stored["reload"]] == ["user", "assistant"]
    assert "".join(p.get("text", "") for p in stored["reload"][-1]["parts"] if p["type"] == "text") == expected(60)

    for name, outcome in (("approve", {"output-available", "output-error"}), ("deny", {"output-denied"})):
        requested, decided = scenarios[name]["requested"], scenarios[name]["decided"]
        assert requested["messages"][-1]["tools"] == ["approval-requested"], name
        assert set(decided["messages"][-1]["tools"]) <= outcome and decided["messages"][-1]["tools"], name
        assert decided["messages"][-1]["text"], f"{name}: the answer continues after the decision"
        assert [m["role"] for m in decided["messages"]] == ["user", "assistant"], name

    failed = scenarios["error"]
    assert failed["error"] == "mock stream broke mid-answer" and failed["status"] == "error"
    assert texts(failed, "assistant") == [expected(5)]

    stopped, after = scenarios["stop"]["stopped"], scenarios["stop"]["after"]
    partial = texts(stopped, "assistant")[0]
    assert partial and expected(300).startswith(partial) and partial != expected(300)
    assert texts(after, "user") == ["mock:tokens=300 mock:delay=30", "mock:tokens=3"]
    assert texts(after, "assistant")[-1] == expected(3)
    assert stored["stop"][1]["finishReason"] == "interrupted" and stored["stop"][-1]["finishReason"] == "stop"
