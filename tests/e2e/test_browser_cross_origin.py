"""A browser page on another origin chats with chatstream inside the FastAPI example host, in real headless Chromium.

The host (`examples/fastapi_host`, chatstream mounted at `/chat`, the mock provider) allows one origin,
`http://127.0.0.1:<A>`. `tests/node/browser/serve.mjs` serves the page (page.html, and page.js bundled with
the real `ai` package by esbuild) on port A and on a second port, an origin the host does not allow.
`tests/node/browser.mjs` drives `/usr/bin/chromium` with playwright-core (fresh profile) through both pages:

- the allowed page sends `mock:tokens=5` with `DefaultChatTransport` and a bearer token, reads the streamed
  answer and the exposed `X-Thread-Id`, then `reconnectToStream` for that thread (`GET .../{id}/stream`);
- the other page sends the same: the preflight gets no `Access-Control-Allow-Origin`, the fetch rejects, and
  the POST never reaches the server.

Then the store is asked (`GET /chat/api/chat/conversations`, `/messages`) what it holds.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.conformance import NODE, NODE_DIR, run_node, server_log
from tests.support.server import AUTH, ROOT, TOKEN, Process, clean_environ, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.node]

CHROMIUM = Path("/usr/bin/chromium")
HOST_DIR = ROOT / "examples" / "fastapi_host"
UVICORN = (sys.executable, "-m", "uvicorn", "app.main:app", "--host=127.0.0.1", "--port={port}", "--log-level=warning")
PROMPT = "mock:tokens=5"
EXPECTED = "t0 t1 t2 t3 t4 "
SCRIPT_TIMEOUT = 75.0


def host_env(allowed_origin: str) -> dict[str, str]:
    env = {
        **clean_environ(),
        "CHAT_AUTH_TOKENS": f"{TOKEN}:alice:premium",
        "CHAT_MOCK_PROVIDER": "true",
        "CHAT_CORS_ORIGINS": allowed_origin,
        "CHAT_RATE_IP_PER_MINUTE": "100000",
    }
    env.pop("PYTHONPATH", None)  # the example directory (the working directory) provides `app`
    return env


def log_of(*processes: Process) -> str:
    return "".join(server_log(p) for p in processes)


def run_browser(host: Process, pages: Process, denied_port: int) -> dict[str, Any]:
    assert NODE is not None
    env = {
        **clean_environ(),
        "CHAT_API": f"{host.url}/chat/api/chat",
        "TOKEN": TOKEN,
        "ALLOWED_PAGE": f"{pages.url}/",
        "DENIED_PAGE": f"http://127.0.0.1:{denied_port}/",
        "PROMPT": PROMPT,
        "CHROMIUM": str(CHROMIUM),
        "BROWSER_TIMEOUT_MS": str(int((SCRIPT_TIMEOUT - 15) * 1000)),
        "SCREENSHOT_DIR": str(ROOT / ".pytest_cache"),
    }
    stdout = run_node("browser.mjs", env, timeout=SCRIPT_TIMEOUT, what="browser.mjs", logs=lambda: log_of(host, pages))
    report: dict[str, Any] = json.loads(stdout)
    return report


@pytest.mark.timeout(120)
@pytest.mark.skipif(NODE is None, reason="node is not installed")
@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is missing (apt-get install chromium)")
def test_a_page_on_another_origin_chats_through_the_ai_sdk_and_a_disallowed_origin_is_refused() -> None:
    assert NODE is not None
    for package in ("ai", "esbuild", "playwright-core"):
        if not (NODE_DIR / "node_modules" / package / "package.json").is_file():
            pytest.fail(f"tests/node/node_modules is missing `{package}`: run `make node`", pytrace=False)
    allowed_port = free_port()
    denied_port = free_port()
    while denied_port == allowed_port:
        denied_port = free_port()
    allowed_origin = f"http://127.0.0.1:{allowed_port}"

    host = Process(UVICORN, env=host_env(allowed_origin), cwd=HOST_DIR, name="browser-fastapi_host")
    pages = Process(
        [NODE, "browser/serve.mjs", "{port}", str(denied_port)],
        env=clean_environ(),
        cwd=NODE_DIR,
        port=allowed_port,
        name="browser-pages",
    )
    try:
        host.launch()
        pages.launch()
        host.wait_ready()
        pages.wait_ready()
        report = run_browser(host, pages, denied_port)

        with httpx.Client(base_url=f"{host.url}/chat", headers=AUTH, timeout=10) as http:
            listed = http.get("/api/chat/conversations")
            assert listed.status_code == 200, listed.text
            conversations = [c["id"] for c in listed.json()["conversations"]]
            allowed, denied = report["allowed"], report["denied"]
            context = f"\n{json.dumps(report, indent=2)}{log_of(host, pages)}"

            # The allowed origin: the answer streamed to the page, the thread id was readable, the resume replayed.
            assert allowed["status"] == "done", context
            result = allowed["result"]
            assert result["origin"] == allowed_origin
            assert result["text"] == EXPECTED, context
            thread = result["threadId"]
            assert thread == allowed["chatId"], context  # the chat's own id (the request body's `id`)
            assert conversations == [thread], context  # the store's only conversation is this page's
            post, reconnect = result["responses"]
            assert (post["method"], post["status"], post["threadId"]) == ("POST", 200, thread), context
            assert post["contentType"].startswith("text/event-stream")
            assert reconnect["method"] == "GET"
            assert reconnect["url"] == f"{host.url}/chat/api/chat/{thread}/stream"
            assert (reconnect["status"], reconnect["threadId"]) == (200, thread), context
            assert result["chunkTypes"][0] == "start"
            assert result["chunkTypes"][-1] == "finish"
            assert result["chunkTypes"].count("text-delta") == 5
            resumed = result["resumed"]
            assert resumed is not None, context
            assert (resumed["text"], resumed["messageId"]) == (EXPECTED, result["messageId"]), context
            assert resumed["chunkTypes"] == result["chunkTypes"]
            assert allowed["pageErrors"] == []
            assert allowed["failedRequests"] == [], context

            # The store holds the exchange (the assistant's message is written as the run ends: allow a moment).
            deadline = time.monotonic() + 5
            while True:
                r = http.get("/api/chat/messages", params={"conversationId": thread})
                assert r.status_code == 200, r.text
                messages = r.json()["messages"]
                if len(messages) == 2 or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            texts = [(m["role"], "".join(p.get("text", "") for p in m["parts"])) for m in messages]
            assert texts == [("user", PROMPT), ("assistant", EXPECTED)], context

            # The other origin: the browser refused it (the SDK's fetch and a plain fetch both rejected) at the
            # preflight, so the POST never reached the server.
            assert denied["status"] == "done", context
            refused = denied["result"]
            assert refused["origin"] == f"http://127.0.0.1:{denied_port}"
            assert refused["rejected"] is True, context
            assert refused["error"]["name"] == "TypeError", context
            assert refused["fetchError"]["name"] == "TypeError", context
            assert refused["responses"] == []
            assert denied["chatId"] not in conversations
            assert any("CORS policy" in m["text"] for m in denied["console"]), context
            assert [r["error"] for r in denied["failedRequests"]] == ["net::ERR_FAILED"] * 2, context
    finally:
        pages.stop()
        host.stop()
