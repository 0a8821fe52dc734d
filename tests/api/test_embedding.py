"""The server inside a host: as a Litestar plugin, mounted under a path in Starlette, behind a WSGI adapter.

The plugin must leave the host alone: its dependencies, error format, health route and OpenAPI stay its own.
Real host processes (each with its own `app` package) are in tests/e2e/test_example_hosts.py.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from litestar import Litestar, Request, Response, get
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotFoundException
from litestar.testing import AsyncTestClient
from starlette.applications import Starlette
from starlette.routing import Mount

from chatstream import ChatPlugin, create_app
from chatstream.errors import ConfigError
from chatstream.models import Principal
from chatstream.settings import Settings
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


class HostUser:
    def __init__(self, name: str) -> None:
        self.name = name


async def host_principal(request: Request[Any, Any, Any]) -> HostUser:
    return HostUser(request.headers.get("x-user", "anonymous"))


@get("/me")
async def host_me(principal: NamedDependency[HostUser]) -> dict[str, str]:
    return {"me": principal.name}


@get("/healthz")
async def host_healthz() -> dict[str, str]:
    return {"host": "healthy"}


def host_not_found(request: Request[Any, Any, Any], exc: NotFoundException) -> Response[dict[str, str]]:
    return Response({"host_error": "nothing here"}, status_code=404)


def make_host(plugin: ChatPlugin) -> Litestar:
    """A host with its own `principal` dependency, 404 format and `/healthz`: all of them names we also use."""
    return Litestar(
        route_handlers=[host_me, host_healthz, host_ping],
        dependencies={
            "principal": Provide(host_principal),
            "services": Provide(lambda: "host services", sync_to_thread=False),
        },
        exception_handlers={NotFoundException: host_not_found},
        plugins=[plugin],
    )


async def test_plugin_under_a_prefix_leaves_the_hosts_dependencies_errors_and_health_alone() -> None:
    async with AsyncTestClient(make_host(ChatPlugin(make_settings(), path="/chat"))) as client:
        # The host's own routes, dependency, error format and health route, exactly as without us.
        assert (await client.get("/me", headers={"x-user": "carol", **ALICE})).json() == {"me": "carol"}
        assert (await client.get("/healthz")).json() == {"host": "healthy"}
        missing = await client.get("/nowhere")
        assert (missing.status_code, missing.json()) == (404, {"host_error": "nothing here"})
        # Ours, under the prefix, with our own error format.
        r = await client.post("/chat/api/chat", json=PARTS, headers=ALICE)
        assert r.status_code == 200
        assert text_of(parse_frames(r.text)) == "t0 t1 t2 "
        denied = await client.post("/chat/api/chat", json=PARTS)
        assert (denied.status_code, denied.json()["error"]) == (401, denied.json()["error"])
        assert "error" in denied.json() and "host_error" not in denied.json()
        assert (await client.get("/chat/healthz")).json() == {"status": "ok"}
        assert (await client.get("/chat/api/models", headers=ALICE)).json()["default"]["provider"] == "mock"
        assert (await client.post("/api/chat", json=PARTS, headers=ALICE)).status_code == 404  # not at the root


async def test_plugin_at_the_root_beside_a_host_healthz_with_ours_turned_off() -> None:
    plugin = ChatPlugin(make_settings(), health_path=None, metrics_path="/chat-metrics")
    async with AsyncTestClient(make_host(plugin)) as client:
        assert (await client.get("/healthz")).json() == {"host": "healthy"}
        assert (await client.get("/me")).json() == {"me": "anonymous"}
        assert (await client.post("/api/chat", json=PARTS, headers=ALICE)).status_code == 200
        metrics = await client.get("/chat-metrics")
        assert metrics.status_code == 200 and "chat_runs" in metrics.text
        assert (await client.get("/metrics")).json() == {"host_error": "nothing here"}


async def test_ops_routes_follow_settings() -> None:
    settings = make_settings(ready_path="/ops/ready", metrics_path=None, models_path=None)
    async with AsyncTestClient(create_app(settings)) as client:
        assert (await client.get("/ops/ready")).json()["status"] == "ready"
        assert (await client.get("/readyz")).status_code == 404
        assert (await client.get("/metrics")).status_code == 404
        assert (await client.get("/api/models", headers=ALICE)).status_code == 404
        assert (await client.get("/healthz")).json() == {"status": "ok"}


async def test_host_openapi_lists_our_routes_under_the_chat_tag() -> None:
    async with AsyncTestClient(make_host(ChatPlugin(make_settings(), path="/chat"))) as client:
        paths = (await client.get("/schema/openapi.json")).json()["paths"]
    ours = {path: ops for path, ops in paths.items() if path.startswith("/chat/")}
    assert "/chat/api/chat" in ours and "/chat/api/chat/{thread_id}/stream" in ours
    assert all(op["tags"] == ["chat"] for ops in ours.values() for op in ops.values())
    assert "tags" not in paths["/me"]["get"]


async def test_two_plugins_in_one_host_keep_their_own_services() -> None:
    first, second = ChatPlugin(make_settings(), path="/a"), ChatPlugin(make_settings(), path="/b")
    async with AsyncTestClient(Litestar(plugins=[first, second])) as client:
        r = await client.post("/a/api/chat", json=PARTS, headers=ALICE)
        thread = r.headers["x-thread-id"]
        listed_a = await client.get("/a/api/chat/conversations", headers=ALICE)
        listed_b = await client.get("/b/api/chat/conversations", headers=ALICE)
    assert [c["id"] for c in listed_a.json()["conversations"]] == [thread]
    assert listed_b.json()["conversations"] == []
    assert first.services is None and second.services is None  # closed with the lifespan


def test_no_auth_configured_refuses_to_start() -> None:
    with pytest.raises(ConfigError) as refused:
        ChatPlugin(Settings(mock_provider=True))
    for name in ("CHAT_AUTH_TOKENS", "CHAT_JWT_SECRET", "authenticate="):
        assert name in refused.value.message
    with pytest.raises(ConfigError):
        create_app(Settings.from_env({"CHAT_MOCK_PROVIDER": "true"}))


def test_no_provider_configured_refuses_to_start() -> None:
    with pytest.raises(ConfigError, match="no provider configured"):
        create_app(make_settings(mock_provider=False))


CORS = {"Origin": "http://localhost:3000"}
PREFLIGHT = {
    **CORS,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "content-type,authorization,idempotency-key",
}


async def test_cors_preflight_and_exposed_headers_on_our_routes_only() -> None:
    plugin = ChatPlugin(make_settings(cors_origins=("http://localhost:3000",)), path="/chat")
    async with AsyncTestClient(make_host(plugin)) as client:
        pre = await client.options("/chat/api/chat", headers=PREFLIGHT)
        assert pre.status_code == 204
        assert pre.headers["access-control-allow-origin"] == "http://localhost:3000"
        assert pre.headers["access-control-allow-credentials"] == "true"
        assert {"POST", "GET", "DELETE"} <= {m.strip() for m in pre.headers["access-control-allow-methods"].split(",")}
        allowed = {h.strip() for h in pre.headers["access-control-allow-headers"].split(",")}
        assert {"authorization", "content-type", "last-event-id", "idempotency-key"} <= allowed
        resume_pre = await client.options(
            "/chat/api/chat/abc/stream",
            headers={**CORS, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "last-event-id"},
        )
        assert resume_pre.status_code == 204

        r = await client.post("/chat/api/chat", json=PARTS, headers={**ALICE, **CORS})
        assert r.headers["access-control-allow-origin"] == "http://localhost:3000"
        exposed = {h.strip().lower() for h in r.headers["access-control-expose-headers"].split(",")}
        assert {"x-thread-id", "x-run-id", "retry-after", "ratelimit-limit", "ratelimit-policy"} <= exposed
        assert "origin" in r.headers["vary"].lower()

        other = await client.options("/chat/api/chat", headers={**PREFLIGHT, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
        # The host's routes get no CORS from us.
        host = await client.get("/healthz", headers=CORS)
        assert "access-control-allow-origin" not in host.headers


async def test_cors_any_origin_sends_no_credentials_and_is_off_by_default() -> None:
    async with AsyncTestClient(create_app(make_settings(cors_origins=("*",)))) as client:
        pre = await client.options("/api/chat", headers={**PREFLIGHT, "Origin": "https://anywhere.example"})
        assert pre.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in pre.headers
    async with AsyncTestClient(create_app(make_settings())) as client:
        r = await client.post("/api/chat", json=PARTS, headers={**ALICE, **CORS})
        assert "access-control-allow-origin" not in r.headers


def test_redis_url_without_the_redis_extra_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "redis", None)  # as if chatstream[redis] were not installed
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)
    with pytest.raises(ConfigError, match=r"pip install 'chatstream\[redis\]'"):
        ChatPlugin(make_settings(redis_url="redis://127.0.0.1:1/0"))
