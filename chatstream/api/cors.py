"""CORS for our routes only: a browser app on another origin (a Next.js `useChat` page) can call us.

An ASGI middleware on our router rather than Litestar's app-wide `cors_config`, which would change the
host's own routes. Preflights are answered here, before routing to a handler.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar.enums import ScopeType

if TYPE_CHECKING:
    from litestar.types import ASGIApp, HTTPResponseBodyEvent, HTTPResponseStartEvent, Message, Receive, Scope, Send

__all__ = ["ALLOWED_HEADERS", "EXPOSED_HEADERS", "CORSMiddleware"]

ALLOWED_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
# The request headers we read; anything else a browser asks to send is not ours to allow.
ALLOWED_HEADERS = ("authorization", "content-type", "last-event-id", "idempotency-key", "accept")
EXPOSED_HEADERS = (
    "X-Thread-Id, X-Run-Id, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, RateLimit-Policy"
)
_MAX_AGE = "600"


class CORSMiddleware:
    """`origins`: exact origins, or `("*",)` for any origin without credentials."""

    def __init__(self, app: ASGIApp, origins: tuple[str, ...]) -> None:
        self.app = app
        self.any_origin = origins == ("*",)
        self.origins = frozenset(o.rstrip("/") for o in origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        origin = _header(scope, b"origin")
        if origin is None or not (self.any_origin or origin in self.origins):
            await self.app(scope, receive, send)
            return
        common = self._common(origin)
        if scope.get("method") == "OPTIONS" and _header(scope, b"access-control-request-method") is not None:
            await self._preflight(scope, send, common)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                headers += [*common, (b"access-control-expose-headers", EXPOSED_HEADERS.encode())]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_cors)

    def _common(self, origin: str) -> list[tuple[bytes, bytes]]:
        if self.any_origin:
            return [(b"access-control-allow-origin", b"*")]
        # Echoing one allowed origin: caches must key on it.
        return [
            (b"access-control-allow-origin", origin.encode()),
            (b"access-control-allow-credentials", b"true"),
            (b"vary", b"Origin"),
        ]

    async def _preflight(self, scope: Scope, send: Send, common: list[tuple[bytes, bytes]]) -> None:
        requested = _header(scope, b"access-control-request-headers") or ""
        asked = [h.strip().lower() for h in requested.split(",") if h.strip()]
        refused = [h for h in asked if h not in ALLOWED_HEADERS]
        status = 400 if refused else 204
        headers = [
            *common,
            (b"access-control-allow-methods", ALLOWED_METHODS.encode()),
            (b"access-control-allow-headers", ", ".join(ALLOWED_HEADERS).encode()),
            (b"access-control-max-age", _MAX_AGE.encode()),
            (b"content-length", b"0"),
        ]
        start: HTTPResponseStartEvent = {"type": "http.response.start", "status": status, "headers": headers}
        await send(start)
        body: HTTPResponseBodyEvent = {"type": "http.response.body", "body": b"", "more_body": False}
        await send(body)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None
