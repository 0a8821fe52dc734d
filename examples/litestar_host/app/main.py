"""The host's own Litestar app: its routes, its `principal` dependency, its error format, its `/healthz`.

chatstream is two lines (marked below). `ChatPlugin` adds one Router under `/chat` with our routes,
dependencies (named `chat_services` and `chat_principal`, so they never clash with the host's `principal`),
exception handlers and CORS; the host's own routes, dependencies, handlers and `/healthz` are untouched.
Our ops routes stay at their defaults, under the prefix (`/chat/healthz`, `/chat/readyz`, `/chat/metrics`):
the prefix already keeps them apart from the host's `/healthz`. Pass `health_path=None` (and `ready_path`,
`metrics_path`) to leave them out.

Run from this directory: `uvicorn app.main:app` (see README.md for the environment).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Litestar, MediaType, Request, Response, get
from litestar.di import Provide
from litestar.exceptions import NotFoundException

from chatstream import ChatPlugin, Settings  # chatstream (1/2)

ITEMS = {1: "first item", 2: "second item"}


@dataclass
class HostUser:
    name: str
    role: str


class QuotaExceededError(Exception):
    """The host's own domain error, rendered by the host's own handler."""


async def provide_principal(request: Request[Any, Any, Any]) -> HostUser:
    """The host's own dependency: who is calling, from the `X-User` header (a stand-in for real auth)."""
    name = request.headers.get("x-user", "anonymous")
    return HostUser(name=name, role="admin" if name == "root" else "member")


@get("/healthz", media_type=MediaType.JSON)
async def healthz() -> dict[str, str]:
    return {"host": "healthy"}


@get("/me")
async def me(principal: HostUser) -> dict[str, str]:
    return {"name": principal.name, "role": principal.role}


@get("/items/{item_id:int}")
async def item(item_id: int) -> dict[str, Any]:
    if item_id not in ITEMS:
        raise NotFoundException(f"item {item_id}")
    return {"id": item_id, "name": ITEMS[item_id]}


@get("/quota")
async def quota(principal: HostUser) -> dict[str, str]:
    raise QuotaExceededError(principal.name)


def not_found(request: Request[Any, Any, Any], exc: NotFoundException) -> Response[dict[str, str]]:
    return Response({"host_error": "not found", "path": request.url.path}, status_code=404)


def quota_exceeded(request: Request[Any, Any, Any], exc: QuotaExceededError) -> Response[dict[str, str]]:
    return Response({"host_error": "quota exceeded", "user": str(exc)}, status_code=429)


app = Litestar(
    route_handlers=[healthz, me, item, quota],
    dependencies={"principal": Provide(provide_principal)},
    exception_handlers={NotFoundException: not_found, QuotaExceededError: quota_exceeded},
    plugins=[ChatPlugin(Settings.from_env(), path="/chat")],  # chatstream (2/2)
)
