"""A send supersedes a running answer across instances: B generates, a send on A stops it (wherever it runs),
B's readers see its end, its partial answer is stored as interrupted, and A streams the new answer.

Two real `python -m app` processes on one Redis (`REDIS_URL`), then on a Redis Cluster (`REDIS_CLUSTER_URL`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import httpx
import pytest

from tests.support.redis_targets import TARGETS, delete_prefix, server_redis_url
from tests.support.server import AUTH, ServerProcess
from tests.support.sse import parse_frames, text_of

pytestmark = [pytest.mark.e2e, pytest.mark.redis, pytest.mark.timeout(90)]


@pytest.fixture(params=TARGETS)
def env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    prefix = f"test:{uuid4().hex}"
    yield {
        "REDIS_URL": server_redis_url(request.param),
        "CHAT_REDIS_PREFIX": prefix,
        "CHAT_TITLE_GENERATION": "false",
        "CHAT_HEARTBEAT_SECONDS": "0.5",
    }
    delete_prefix(request.param, prefix)


def ui(chat_id: str, mid: str, text: str) -> dict[str, Any]:
    return {
        "id": chat_id,
        "trigger": "submit-message",
        "messages": [{"id": mid, "role": "user", "parts": [{"type": "text", "text": text}]}],
    }


def test_a_send_on_a_supersedes_the_run_on_b(env: dict[str, str]) -> None:
    chat = f"sup-{uuid4().hex[:8]}"
    with ServerProcess(env) as a, ServerProcess(env) as b:
        first: dict[str, Any] = {}
        started = threading.Event()

        def read_first() -> None:
            body = ui(chat, "u1", "a long answer mock:tokens=2000 mock:delay=5")
            with httpx.stream("POST", f"{b.url}/api/chat", json=body, headers=AUTH, timeout=60) as r:
                first["status"] = r.status_code
                chunks = []
                for text in r.iter_text():
                    chunks.append(text)
                    if "t20 " in "".join(chunks):
                        started.set()
                first["raw"] = "".join(chunks)
            started.set()

        reader = threading.Thread(target=read_first)
        reader.start()
        assert started.wait(30), "the first answer never started"
        second = httpx.post(f"{a.url}/api/chat", json=ui(chat, "u2", "something else"), headers=AUTH, timeout=60)
        reader.join(30)
        assert second.status_code == 200, second.text
        assert first["status"] == 200
        # B's reader saw the stopped answer end, well formed, as interrupted.
        frames = parse_frames(first["raw"])
        assert frames[-1].data == "[DONE]"
        finish = [f.data for f in frames if f.type == "finish"]
        assert finish and finish[-1]["finishReason"] == "interrupted", first["raw"][-500:]
        # A streamed the new answer in full.
        new = parse_frames(second.text)
        assert [f.data for f in new if f.type == "finish"][-1]["finishReason"] == "stop"
        assert "something else" in text_of(new[:-1])
        stored = httpx.get(f"{a.url}/api/chat/messages", params={"conversationId": chat}, headers=AUTH).json()
        messages = stored["messages"]
        assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
        assert [m["id"] for m in messages][::2] == ["u1", "u2"]
        assert messages[1]["finishReason"] == "interrupted"
        assert "t20 " in "".join(p.get("text", "") for p in messages[1]["parts"])
        assert messages[3]["finishReason"] == "stop"
