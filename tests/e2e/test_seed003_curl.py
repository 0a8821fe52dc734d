"""Seed 003's own example, run exactly as the seed writes it: curl with `-b cookies.txt` against a real server
process on localhost:3026, once the chat exists. The session cookie carries a static token, and the answer
comes from the fake OpenAI upstream (`gpt-4`, the model the example names)."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.fakes.upstream import FakeUpstream
from tests.support.server import ServerProcess
from tests.support.sse import parse_frames

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

PORT = 3026
CHAT_ID = "550e8400-e29b-41d4-a716-446655440000"
SESSION_TOKEN = "seed003-session-token"

# Verbatim from seed 003 ("Example Request").
SEED_EXAMPLE = """curl -X POST "http://localhost:3026/api/chats/550e8400-e29b-41d4-a716-446655440000/messages/stream" \\
  -H "Accept: text/event-stream" \\
  -H "Content-Type: application/json" \\
  -b cookies.txt \\
  --data '{
    "content": "Explain quantum computing",
    "modelId": "gpt-4",
    "userId": "user-123"
  }'
"""


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream.start(tokens=5) as upstream:
        yield upstream


@pytest.fixture(scope="module")
def server(fake: FakeUpstream) -> Iterator[tuple[ServerProcess, str]]:
    if not _port_free(PORT):
        pytest.skip(f"port {PORT} (the seed's) is taken on this machine")
    ns = fake.namespace()
    env = {
        "CHAT_AUTH_TOKENS": f"{SESSION_TOKEN}:user-123:free",
        "CHAT_SESSION_COOKIE": "session",
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": f"{fake.url}/{ns}/v1",
        "CHAT_TITLE_GENERATION": "false",
    }
    with ServerProcess(env, port=PORT) as proc:
        yield proc, ns


def test_the_seed_example_works_as_written(
    server: tuple[ServerProcess, str], fake: FakeUpstream, tmp_path: Path
) -> None:
    proc, ns = server
    auth = {"Authorization": f"Bearer {SESSION_TOKEN}"}
    # The chat exists first (the example posts into it).
    created = httpx.post(
        f"{proc.url}/api/chats", json={"chatId": CHAT_ID, "title": "Quantum"}, headers=auth, timeout=10
    )
    assert created.status_code == 201, created.text
    # What a browser session leaves behind, as curl's cookie jar (Netscape format).
    (tmp_path / "cookies.txt").write_text(
        "# Netscape HTTP Cookie File\n"
        + "\t".join(["localhost", "FALSE", "/", "FALSE", "0", "session", SESSION_TOKEN])
        + "\n"
    )
    done = subprocess.run(
        ["bash", "-c", SEED_EXAMPLE], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    frames = [f.data for f in parse_frames(done.stdout)]
    kinds = [f["type"] for f in frames]
    assert kinds[0] == "start" and kinds[-1] == "end" and "content" in kinds, done.stdout
    assert set(kinds) == {"start", "content", "end"}
    assert frames[0]["messageId"] == frames[-1]["messageId"]
    answer = "".join(f["delta"] for f in frames if f["type"] == "content")
    assert answer
    # The model the example names answered, with the example's message.
    (call,) = fake.requests(ns)
    assert call["body"]["model"] == "gpt-4"
    assert "Explain quantum computing" in json.dumps(call["body"]["messages"])
    listed = httpx.get(f"{proc.url}/api/chats/{CHAT_ID}/messages", headers=auth, timeout=10).json()
    assert [(m["role"], m["content"]) for m in listed["messages"]] == [
        ("user", "Explain quantum computing"),
        ("assistant", answer),
    ]


def test_without_the_cookie_the_example_is_refused(server: tuple[ServerProcess, str], tmp_path: Path) -> None:
    (tmp_path / "cookies.txt").write_text("# Netscape HTTP Cookie File\n")
    done = subprocess.run(
        ["bash", "-c", SEED_EXAMPLE.replace("curl -X POST", "curl -s -o /dev/null -w '%{http_code}' -X POST")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.stdout == "401"
