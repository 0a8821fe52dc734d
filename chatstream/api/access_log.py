"""One access-log line per request on our routes, on the `chatstream.access` logger.

An ASGI middleware on our router (the host's own routes are the host's to log). The line is written when the
response has been sent, so a streamed answer's duration is the whole stream. Nothing is done per body
message beyond passing it on, and nothing at all while the logger is disabled for INFO.

The structured fields go in `extra=` (`method`, `path`, `status`, `duration_ms`, `user_id`, `thread_id`,
`run_id`) for a JSON formatter, and into the message for a plain-text one. The user is the principal the
`chat_principal` dependency resolved (stashed in the scope's state); thread and run come from the response's
`X-Thread-Id` / `X-Run-Id` headers.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from litestar.enums import ScopeType

from chatstream.metrics import REQUEST_RECEIVED
from chatstream.models import Principal

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from litestar.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["PRINCIPAL_STATE_KEY", "AccessLogMiddleware"]

log = logging.getLogger("chatstream.access")

PRINCIPAL_STATE_KEY = "chat_principal"
"""Where `provide_principal` leaves the principal in `scope["state"]` for this middleware."""


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        REQUEST_RECEIVED.set(started)  # for `chat_run_start_seconds`, whether or not this line is logged
        if not log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        status = 500  # what the exception handlers outside us answer when nothing was sent
        thread_id: str | None = None
        run_id: str | None = None

        # A plain function handing back `send`'s awaitable: no extra coroutine per streamed body message.
        def send_and_note(message: Message) -> Awaitable[None]:
            nonlocal status, thread_id, run_id
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", ()):
                    lowered = name.lower()
                    if lowered == b"x-thread-id":
                        thread_id = value.decode("latin-1")
                    elif lowered == b"x-run-id":
                        run_id = value.decode("latin-1")
            return send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            duration_ms = round((time.perf_counter() - started) * 1000, 1)
            principal = scope.get("state", {}).get(PRINCIPAL_STATE_KEY)
            user_id = principal.user_id if isinstance(principal, Principal) else None
            # The path the client sent: under a mount, Litestar rewrites scope["path"] without the prefix.
            raw = scope.get("raw_path")
            path = raw.decode("latin-1") if raw else scope["path"]
            fields: dict[str, Any] = {
                "method": scope["method"],
                "path": path,
                "status": status,
                "duration_ms": duration_ms,
                "user_id": user_id,
                "thread_id": thread_id,
                "run_id": run_id,
            }
            log.info(
                "%s %s %d %.1fms user=%s thread=%s run=%s",
                scope["method"],
                path,
                status,
                duration_ms,
                user_id or "-",
                thread_id or "-",
                run_id or "-",
                extra=fields,
            )
