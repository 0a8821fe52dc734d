"""Hostile ids and bodies against a real `python -m app` (uvicorn): what the ASGI test client cannot send.

Raw sockets carry what httpx refuses to put on the wire (a percent-encoded NUL or CR/LF in the path,
header-injection ids). Each request must get a complete 4xx JSON answer, never a 500 and never a
dropped connection, and nothing may be stored: the conversation list is empty afterwards.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.server import AUTH, OTHER_AUTH, ServerProcess

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with ServerProcess() as proc:
        yield proc


class RawResponse:
    def __init__(self, raw: bytes) -> None:
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        self.status = int(lines[0].split()[1]) if lines[0].startswith(b"HTTP/") else 0
        self.headers = [line.decode("latin-1") for line in lines[1:]]

    def header(self, name: str) -> list[str]:
        prefix = name.lower() + ":"
        return [h.split(":", 1)[1].strip() for h in self.headers if h.lower().startswith(prefix)]

    def json(self) -> Any:
        return json.loads(self.body)


def raw_request(
    server: ServerProcess, method: str, target: bytes, body: bytes = b"", *, auth: dict[str, str] = AUTH
) -> RawResponse:
    """One request on its own connection, exactly these bytes on the wire; the whole answer, read to EOF."""
    head = b"%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: %s\r\nConnection: close\r\n" % (
        method.encode(),
        target,
        auth["Authorization"].encode(),
    )
    if body:
        head += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head + b"\r\n" + body)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    raw = b"".join(chunks)
    assert raw, f"{method} {target!r}: the connection closed without a response"
    return RawResponse(raw)


def stored_conversations(server: ServerProcess) -> list[str]:
    r = httpx.get(f"{server.url}/api/chat/conversations", params={"limit": 100}, headers=AUTH, timeout=10)
    assert r.status_code == 200
    return [c["id"] for c in r.json()["conversations"]]


def assert_refused(r: RawResponse, statuses: tuple[int, ...] = (400,)) -> None:
    assert r.status in statuses, (r.status, r.body[:300])
    assert isinstance(r.json()["error"], str)
    assert r.header("set-cookie") == []
    assert r.header("x-thread-id") == []


PATH_IDS = [b"%ff", b"%00", b"%F0%9F%92%A5", b"a%0D%0ASet-Cookie:%20x=1", b"a%00b", b"x" * 5000, b"%C3%A9"]


@pytest.mark.parametrize("segment", PATH_IDS)
def test_bad_path_ids_get_a_4xx_json_answer(server: ServerProcess, segment: bytes) -> None:
    requests = [
        ("GET", b"/api/chat/%s/stream" % segment, b""),
        ("POST", b"/api/chat/%s/stop" % segment, b""),
        ("POST", b"/api/chats/%s/messages/stream" % segment, b'{"content":"x","modelId":"mock-1"}'),
        ("DELETE", b"/api/chat/conversations/%s" % segment, b""),
        ("POST", b"/api/chat/conversations/%s/truncate" % segment, b'{"keep":0}'),
        ("DELETE", b"/api/chat?id=%s" % segment, b""),
        ("GET", b"/api/chat/messages?conversationId=%s" % segment, b""),
    ]
    for method, target, body in requests:
        assert_refused(raw_request(server, method, target, body), (400, 404))
    assert stored_conversations(server) == []


BODY_IDS = ["💥", "a\r\nSet-Cookie: x=1", "\u0000", "a/b", "x" * 5000]


@pytest.mark.parametrize("bad", BODY_IDS)
def test_bad_body_ids_are_refused_and_store_nothing(server: ServerProcess, bad: str) -> None:
    user = {"id": "u1", "role": "user", "parts": [{"type": "text", "text": "hi"}]}
    bodies = [
        ("threadId", {"parts": [{"type": "text", "text": "hi"}], "threadId": bad}),
        ("conversationId", {"message": "hi", "conversationId": bad}),
        ("id", {"id": bad, "messages": [user]}),
        ("id", {"id": bad, "message": user, "selectedChatModel": "mock-1"}),
        ("messages[].id", {"id": "fresh", "messages": [{**user, "id": bad}]}),
    ]
    for field, body in bodies:
        # msgspec-encoded, so "\u0000" and CR/LF travel as JSON escapes, exactly as a hostile client sends them.
        r = raw_request(server, "POST", b"/api/chat", json.dumps(body).encode())
        assert_refused(r)
        assert r.json()["error"] == f"invalid {field}"
    approve = {"runId": bad, "threadId": "t1"}
    assert_refused(raw_request(server, "POST", b"/api/chat/approve", json.dumps(approve).encode()))
    assert stored_conversations(server) == []


def test_deep_json_is_a_400(server: ServerProcess) -> None:
    for depth in (65, 5000, 500_000):
        body = b"[" * depth + b"]" * depth
        r = raw_request(server, "POST", b"/api/chat", body)
        assert_refused(r)
        assert r.json()["error"] == "JSON nested too deeply"
    assert stored_conversations(server) == []


def test_a_good_request_still_works(server: ServerProcess) -> None:
    # Bob's: the other tests check that alice has nothing stored, in whatever order they run.
    body = json.dumps({"parts": [{"type": "text", "text": "hello"}], "threadId": "fine.id:1"}).encode()
    r = raw_request(server, "POST", b"/api/chat", body, auth=OTHER_AUTH)
    assert r.status == 200
    assert r.header("x-thread-id") == ["fine.id:1"]
    listed = httpx.get(f"{server.url}/api/chat/conversations", headers=OTHER_AUTH, timeout=10).json()
    assert [c["id"] for c in listed["conversations"]] == ["fine.id:1"]


@pytest.mark.parametrize("target", [b"/api/chat/\xff/stream", b"/api/chat/a\x00b/stream"])
def test_raw_bytes_in_the_path_are_refused_by_the_server(server: ServerProcess, target: bytes) -> None:
    # Not percent-encoded: uvicorn's HTTP parser answers 400 itself before any ASGI app runs (so the
    # body is its plain text, not our JSON); what matters is an answer, and nothing stored.
    r = raw_request(server, "GET", target)
    assert r.status == 400
    assert stored_conversations(server) == []
