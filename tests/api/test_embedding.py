"""The server inside a host: as a Litestar plugin, mounted under a path in Starlette, behind a WSGI adapter."""

from __future__ import annotations

from typing import Any

import httpx
from litestar import Litestar, get
from litestar.testing import AsyncTestClient
from starlette.applications import Starlette
from starlette.routing import Mount

from chatstream import ChatPlugin, create_app
from chatstream.models import Principal
from tests.api.conftest import ALICE, make_settings
from tests.support.sse import parse_frames, text_of

PARTS = {"parts": [{"type": "text", "text": "mock:tokens=3"}]}


@get("/host/ping")
async def host_ping() -> dict[str, str]:
    return {"host": "ok"}


async def test_litestar_plugin_adds_routes_beside_the_hosts_own() -> None:
    host = Litestar(route_handlers=[host_ping], plugins=[ChatPlugin(make_settings())])
    async with AsyncTestClient(host) as client:
        assert (await client.get("/host/ping")).json() == {"host": "ok"}
        r = await client.post("/api/chat", json=PARTS, headers=ALICE)
        assert r.status_code == 200
        assert text_of(parse_frames(r.text)) == "t0 t1 t2 "


async def test_host_authenticate_callable_replaces_tokens() -> None:
    async def authenticate(request: Any) -> Principal | None:
        user = request.headers.get("x-host-user")
        return Principal(user_id=user, tier="premium") if user else None

    app = create_app(make_settings(), authenticate=authenticate)
    async with AsyncTestClient(app) as client:
        assert (await client.post("/api/chat", json=PARTS, headers=ALICE)).status_code == 401
        r = await client.post("/api/chat", json=PARTS, headers={"x-host-user": "carol"})
        assert r.status_code == 200
        listed = await client.get("/api/chat/conversations", headers={"x-host-user": "carol"})
        assert [c["userId"] for c in listed.json()["conversations"]] == ["carol"]


async def test_mounted_under_a_path_in_starlette() -> None:
    chat = create_app(make_settings())
    host = Starlette(routes=[Mount("/chat", app=chat)])  # type: ignore[arg-type]
    # Starlette does not run a mounted app's lifespan: the services open on first use.
    transport = httpx.ASGITransport(app=host)
    async with httpx.AsyncClient(transport=transport, base_url="http://host") as client:
        r = await client.post("/chat/api/chat", json=PARTS, headers=ALICE)
        assert r.status_code == 200
        assert text_of(parse_frames(r.text)) == "t0 t1 t2 "
        assert (await client.get("/chat/readyz")).json()["status"] == "ready"


def test_under_a_wsgi_host_through_an_asgi_to_wsgi_adapter() -> None:
    from a2wsgi import ASGIMiddleware

    wsgi: Any = ASGIMiddleware(create_app(make_settings()))  # type: ignore[arg-type]
    with httpx.Client(transport=httpx.WSGITransport(app=wsgi), base_url="http://host") as client:
        r = client.post("/api/chat", json=PARTS, headers=ALICE)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert text_of(parse_frames(r.text)) == "t0 t1 t2 "
        thread = r.headers["x-thread-id"]
        messages = client.get("/api/chat/messages", params={"conversationId": thread}, headers=ALICE).json()
        assert [m["role"] for m in messages["messages"]] == ["user", "assistant"]
