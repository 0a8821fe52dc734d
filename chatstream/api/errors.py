"""The exception handlers: every error is `{"error": "<message>", ...}` JSON, never a stack trace.

They sit on our router only, so a host keeps its own error format for its own routes. The standalone app
also installs them app-wide, for what never reaches a router (404 and 405 on unknown routes).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from litestar import MediaType, Response
from litestar.exceptions import HTTPException, ValidationException

from chatstream.errors import AppError

if TYPE_CHECKING:
    from collections.abc import Callable

    from litestar import Request
    from litestar.types import ExceptionHandlersMap

__all__ = ["exception_handlers"]

log = logging.getLogger("chatstream.api")


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    body: dict[str, Any] = {"error": str(exc.detail) if exc.detail else "error"}
    if isinstance(exc, ValidationException) and exc.extra:
        body["details"] = exc.extra
    if exc.status_code == 413:
        body["error"] = "request body too large"
    return Response(body, status_code=exc.status_code, headers=exc.headers, media_type=MediaType.JSON)


def _internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return Response({"error": "internal server error"}, status_code=500, media_type=MediaType.JSON)


def exception_handlers(count: Callable[[str], None] | None = None) -> ExceptionHandlersMap:
    """Handlers for our errors; `count` is told each refusal's code (for `/metrics`)."""

    def app_error(request: Request[Any, Any, Any], exc: AppError) -> Response[Any]:
        if count is not None:
            count(f"refused:{exc.code}")
        if exc.status_code >= 500:
            log.warning("%s %s -> %s %s", request.method, request.url.path, exc.status_code, exc.message)
        return Response(exc.body(), status_code=exc.status_code, headers=exc.headers, media_type=MediaType.JSON)

    return {AppError: app_error, HTTPException: _http_error, Exception: _internal_error}
