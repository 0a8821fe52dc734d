"""Every Python example in the README runs when pasted: each block is executed and its app exercised."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.support.server import ROOT, ServerProcess

ALL_BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
CLIENT_BLOCKS = [b for b in ALL_BLOCKS if "chatstream.client" in b]
"""Examples of the Python client: run against a real server (the standalone one, on a free port)."""
BLOCKS = [b for b in ALL_BLOCKS if b not in CLIENT_BLOCKS]
ENV = {"CHAT_AUTH_TOKENS": "demo-token:demo:premium", "CHAT_MOCK_PROVIDER": "true"}
CHAT = {"parts": [{"type": "text", "text": "mock:tokens=2"}]}
AUTH = {"Authorization": "Bearer demo-token"}


def test_the_readme_has_python_examples() -> None:
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("source", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
async def test_readme_example_runs(source: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(source, "README.md", "exec"), namespace)  # our own README
    app = namespace["app"]
    prefix = "/chat" if "/chat" in source else ""
    if hasattr(app, "wsgi_app"):  # Flask: through its WSGI interface
        with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://host") as client:
            r = client.post(f"{prefix}/api/chat", json=CHAT, headers=AUTH)
    else:
        from asgi_lifespan import LifespanManager

        async with LifespanManager(app) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://host") as client:
                r = await client.post(f"{prefix}/api/chat", json=CHAT, headers=AUTH)
    assert r.status_code == 200, r.text
    assert '"delta":"t0 "' in r.text


def test_the_readme_has_a_client_example() -> None:
    assert CLIENT_BLOCKS and all(len(block.strip().splitlines()) <= 16 for block in CLIENT_BLOCKS)


@pytest.mark.e2e
@pytest.mark.parametrize("source", CLIENT_BLOCKS, ids=[f"client{i}" for i in range(len(CLIENT_BLOCKS))])
def test_readme_client_example_runs(source: str, capsys: pytest.CaptureFixture[str]) -> None:
    with ServerProcess({"CHAT_AUTH_TOKENS": "demo-token:demo:premium"}) as server:
        code = source.replace("http://127.0.0.1:8000", server.url)
        exec(compile(code, "README.md", "exec"), {"__name__": "readme_client_example"})  # our own README
    printed = capsys.readouterr().out
    assert printed.strip(), "the example printed nothing"
    answer = printed.splitlines()[0]
    assert answer and printed.rstrip().endswith(answer.rstrip())  # streamed, then the stored answer
