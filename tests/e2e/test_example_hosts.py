"""The example hosts under `examples/`, each started as a real process, with chatstream embedded under `/chat`.

- `litestar_host`: `ChatPlugin(path="/chat")` in a Litestar app, served by uvicorn;
- `fastapi_host`: `create_app()` mounted at `/chat` in FastAPI (lifespans chained), served by uvicorn;
- `flask_host`: `create_app()` behind `a2wsgi` at `/chat` through werkzeug's `DispatcherMiddleware`, served
  by waitress.

Each example's top-level package is `app`, like the repository's standalone server: a host runs from its own
directory without the repository root on PYTHONPATH (chatstream comes from the venv's editable install), and
`test_the_examples_own_app_package_is_the_one_imported` checks which `app` that imports.

For every host: its own routes, dependency, error format and `/healthz` are what the example defines;
chatstream's API works under the prefix (stream, resume from a cursor, conversations, our JSON errors); CORS
applies to our routes only; and the AI SDK client (`tests/node/conformance.mjs`) passes against `.../chat`.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.support.conformance import NODE, SCRIPT_TIMEOUT, run_conformance
from tests.support.server import AUTH, ROOT, Process, clean_environ
from tests.support.sse import Frame, iter_frames, parse_frames, text_of

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

pytestmark = pytest.mark.e2e

EXAMPLES = ROOT / "examples"
ORIGIN = "http://localhost:3000"
HOST_ENV = {
    "CHAT_AUTH_TOKENS": "test-token:alice:premium",
    "CHAT_MOCK_PROVIDER": "true",
    "CHAT_CORS_ORIGINS": ORIGIN,
    "CHAT_RATE_IP_PER_MINUTE": "100000",
}
UVICORN = (sys.executable, "-m", "uvicorn", "app.main:app", "--host=127.0.0.1", "--port={port}", "--log-level=warning")


@dataclass(frozen=True)
class Host:
    name: str
    command: tuple[str, ...]
    error_key: str
    """The key of the host's own error bodies."""
    not_found: str
    """The host's message for a 404."""
    prefix_is_ours: bool
    """Whether an unknown path under `/chat` is answered by chatstream (a mount) or by the host (the plugin)."""

    @property
    def cwd(self) -> Path:
        return EXAMPLES / self.name

    def error(self, message: str, **extra: str) -> dict[str, str]:
        return {self.error_key: message, **extra}


HOSTS = [
    Host("litestar_host", UVICORN, "host_error", "not found", prefix_is_ours=False),
    Host("fastapi_host", UVICORN, "host_detail", "Not Found", prefix_is_ours=True),
    Host(
        "flask_host",
        # `python -m waitress`, not the `waitress-serve` script: the script appends the working directory to
        # sys.path after the editable install's entry for the repository root: `app` would be the standalone server.
        (sys.executable, "-m", "waitress", "--listen=127.0.0.1:{port}", "--threads=8", "app.main:app"),
        "host_error",
        "not found",
        prefix_is_ours=True,
    ),
]


def host_env() -> dict[str, str]:
    env = {**clean_environ(), **HOST_ENV}
    env.pop("PYTHONPATH", None)  # the example directory (the working directory) provides `app`
    return env


@dataclass
class Running:
    host: Host
    process: Process


@pytest.fixture(scope="module")
def processes() -> Iterator[dict[str, Process]]:
    """All three hosts, started side by side (their imports take a second or so each)."""
    started = {h.name: Process(h.command, env=host_env(), cwd=h.cwd, name=h.name) for h in HOSTS}
    try:
        for process in started.values():
            process.launch()
        for process in started.values():
            process.wait_ready()
        yield started
    finally:
        for process in started.values():
            process.stop()


@pytest.fixture(params=HOSTS, ids=[h.name for h in HOSTS])
def running(request: pytest.FixtureRequest, processes: dict[str, Process]) -> Running:
    host: Host = request.param
    return Running(host, processes[host.name])


@pytest.fixture
async def http(running: Running) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=running.process.url, timeout=10) as client:
        yield client


def body(text: str) -> dict[str, Any]:
    return {"parts": [{"type": "text", "text": text}]}


def expected(tokens: int) -> str:
    return "".join(f"t{i} " for i in range(tokens))


def test_the_examples_own_app_package_is_the_one_imported() -> None:
    """From an example's directory with the hosts' environment, `app` (and `app.main`) is the example's, not the
    repository's standalone server, and chatstream is found (the venv's editable install). Found, not imported:
    the hosts' own routes below show the rest."""
    probe = "import importlib.util as u; print(*(u.find_spec(m).origin for m in ('app', 'app.main', 'chatstream')))"
    for host in HOSTS:
        done = subprocess.run(
            [sys.executable, "-c", probe], cwd=host.cwd, env=host_env(), capture_output=True, text=True, check=True
        )
        assert done.stdout.split() == [
            str(host.cwd / "app" / "__init__.py"),
            str(host.cwd / "app" / "main.py"),
            str(ROOT / "chatstream" / "__init__.py"),
        ], host.name


async def test_host_routes_dependency_errors_and_healthz_are_the_hosts(
    http: httpx.AsyncClient, running: Running
) -> None:
    host = running.host
    r = await http.get("/healthz")
    assert (r.status_code, r.json()) == (200, {"host": "healthy"})
    r = await http.get("/me", headers={"X-User": "carol"})
    assert (r.status_code, r.json()) == (200, {"name": "carol", "role": "member"})
    assert (await http.get("/me")).json() == {"name": "anonymous", "role": "member"}
    assert (await http.get("/me", headers={"X-User": "root"})).json() == {"name": "root", "role": "admin"}
    r = await http.get("/items/1")
    assert (r.status_code, r.json()) == (200, {"id": 1, "name": "first item"})
    for path in ("/items/9", "/nope", "/api/chat"):  # the last: our routes exist only under the prefix
        r = await http.get(path)
        assert (r.status_code, r.json()) == (404, host.error(host.not_found, path=path)), path
    r = await http.get("/quota", headers={"X-User": "dave"})
    assert (r.status_code, r.json()) == (429, host.error("quota exceeded", user="dave"))
    # Our CORS is on our routes only.
    r = await http.get("/healthz", headers={"Origin": ORIGIN})
    assert "access-control-allow-origin" not in r.headers
    r = await http.options("/me", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"})
    assert "access-control-allow-origin" not in r.headers


async def test_our_ops_routes_and_errors_under_the_prefix(http: httpx.AsyncClient, running: Running) -> None:
    assert (await http.get("/chat/healthz")).json() == {"status": "ok"}
    ready = await http.get("/chat/readyz")
    assert (ready.status_code, ready.json()["status"]) == (200, "ready")
    r = await http.post("/chat/api/chat", json=body("hi"))
    assert (r.status_code, r.json()) == (401, {"error": "unauthorized"})
    # Our own 404 keeps our format, whatever the host does with its 404s.
    r = await http.get("/chat/api/chat/messages", params={"conversationId": "never-existed"}, headers=AUTH)
    assert r.status_code == 404
    assert set(r.json()) == {"error"}
    # An unknown path under the prefix: a mount belongs to us, the plugin's router leaves routing 404s to the host.
    r = await http.get("/chat/nope")
    assert r.status_code == 404
    if running.host.prefix_is_ours:
        assert set(r.json()) == {"error"}
    else:
        assert r.json() == running.host.error(running.host.not_found, path="/chat/nope")


async def test_stream_resume_from_cursor_and_conversations_under_the_prefix(http: httpx.AsyncClient) -> None:
    r = await http.post("/chat/api/chat", json=body("mock:tokens=5"), headers=AUTH)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["x-vercel-ai-ui-message-stream"] == "v1"
    thread = r.headers["x-thread-id"]
    frames = parse_frames(r.text)
    assert frames[0].type == "start"
    assert [f.type for f in frames[-2:]] == ["finish", None]
    assert frames[-1].data == "[DONE]"
    assert text_of(frames) == expected(5)

    # Resume after the 6th frame: exactly the frames after it, each once.
    cursor = frames[5].id
    assert cursor is not None
    r = await http.get(f"/chat/api/chat/{thread}/stream", headers={**AUTH, "Last-Event-ID": cursor})
    assert r.status_code == 200
    assert r.headers["x-thread-id"] == thread
    rest = parse_frames(r.text)
    assert [(f.id, f.data) for f in rest] == [(f.id, f.data) for f in frames[6:]]

    listed = await http.get("/chat/api/chat/conversations", headers=AUTH)
    assert listed.status_code == 200
    assert thread in [c["id"] for c in listed.json()["conversations"]]
    assert (await http.get(f"/chat/api/chat/{thread}/stream")).status_code == 401


async def test_stream_is_incremental_and_resumes_after_a_dropped_connection(http: httpx.AsyncClient) -> None:
    """Frames arrive as they are produced (no server buffers the response whole, waitress included), and a
    client that drops mid-stream resumes from its cursor without a gap or a repeat."""
    first: list[tuple[float, Frame]] = []
    started = time.monotonic()
    async with http.stream("POST", "/chat/api/chat", json=body("mock:tokens=20 mock:delay=40"), headers=AUTH) as r:
        assert r.status_code == 200
        thread = r.headers["x-thread-id"]
        async for frame in iter_frames(r):
            first.append((time.monotonic() - started, frame))
            if sum(f.type == "text-delta" for _, f in first) == 6:
                break
    deltas = [t for t, f in first if f.type == "text-delta"]
    # Six tokens 40 ms apart: the first arrived well before the sixth (a buffered response brings all at once).
    assert deltas[-1] - deltas[0] > 0.1, deltas
    cursor = first[-1][1].id
    assert cursor is not None
    async with http.stream(
        "GET", f"/chat/api/chat/{thread}/stream", headers={**AUTH, "Last-Event-ID": cursor}
    ) as resumed:
        assert resumed.status_code == 200
        rest = [f async for f in iter_frames(resumed)]
    assert rest[0].id is not None
    assert int(rest[0].id) == int(cursor) + 1
    assert text_of([f for _, f in first]) + text_of(rest) == expected(20)
    assert rest[-1].data == "[DONE]"


async def test_cors_on_our_routes(http: httpx.AsyncClient) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,authorization",
    }
    r = await http.options("/chat/api/chat", headers={"Origin": ORIGIN, **preflight})
    assert 200 <= r.status_code < 300
    assert r.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in r.headers["access-control-allow-methods"]
    allowed = {h.strip() for h in r.headers["access-control-allow-headers"].split(",")}
    assert {"content-type", "authorization"} <= allowed

    r = await http.post("/chat/api/chat", json=body("mock:tokens=2"), headers={**AUTH, "Origin": ORIGIN})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == ORIGIN
    exposed = {h.strip().lower() for h in r.headers["access-control-expose-headers"].split(",")}
    assert "x-thread-id" in exposed

    evil = "http://evil.example"
    r = await http.options("/chat/api/chat", headers={"Origin": evil, **preflight})
    assert "access-control-allow-origin" not in r.headers
    r = await http.post("/chat/api/chat", json=body("mock:tokens=1"), headers={**AUTH, "Origin": evil})
    assert "access-control-allow-origin" not in r.headers


@pytest.mark.node
@pytest.mark.timeout(SCRIPT_TIMEOUT + 40)
@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_ai_sdk_client_under_the_prefix(running: Running) -> None:
    """The real `ai` client with `api: <host>/chat/api/chat`: send, abort and reconnect, resume, unknown chat."""
    run_conformance(running.process, "basic", "resume", "unknown", base_url=f"{running.process.url}/chat")


WSGI_SERVER = """
import sys
import waitress
from a2wsgi import ASGIMiddleware
from chatstream import Settings, create_app
waitress.serve(ASGIMiddleware(create_app(Settings.from_env())), listen=sys.argv[1])
"""


def test_event_stream_under_plain_waitress() -> None:
    """Our event streams carry no hop-by-hop header (PEP 3333): waitress refused `Connection: keep-alive`."""
    command = [sys.executable, "-c", WSGI_SERVER, "127.0.0.1:{port}"]
    with Process(command, env=host_env(), cwd=EXAMPLES, name="wsgi-chat") as process:
        r = httpx.post(f"{process.url}/api/chat", json=body("mock:tokens=2"), headers=AUTH, timeout=10)
    assert r.status_code == 200
    assert text_of(parse_frames(r.text)) == expected(2)
