"""The client's errors: one per status class, with the server's `{"error": ...}` body.

ChatAPIError                  any answer that is not a success
 ├── BadRequestError (400)
 ├── AuthenticationError (401)
 ├── PermissionDeniedError (403)
 ├── NotFoundError (404)
 ├── ConflictError (409)
 ├── PayloadTooLargeError (413)
 ├── UnprocessableEntityError (422)
 ├── RateLimitError (429)      retry_after (seconds), limit (which one)
 └── ServerError (5xx)          retry_after when the server gave one (503)
StreamLostError               a stream could not be resumed (retries used up, or it expired)
"""

from __future__ import annotations

import msgspec

from chatstream.protocol.bodies import ApiError

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "ChatAPIError",
    "ConflictError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitError",
    "ServerError",
    "StreamLostError",
    "UnprocessableEntityError",
    "error_for",
]


class ChatAPIError(Exception):
    """The server refused a request. `status` is the HTTP status, `error` the server's message, `body` the
    whole decoded error (`code`, ... where the server sent them)."""

    def __init__(self, status: int, body: ApiError, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status}: {body.error}")
        self.status = status
        self.body = body
        self.error = body.error
        self.code = body.code
        self.headers = headers or {}


class BadRequestError(ChatAPIError):
    pass


class AuthenticationError(ChatAPIError):
    pass


class PermissionDeniedError(ChatAPIError):
    pass


class NotFoundError(ChatAPIError):
    pass


class ConflictError(ChatAPIError):
    pass


class PayloadTooLargeError(ChatAPIError):
    pass


class UnprocessableEntityError(ChatAPIError):
    pass


def _retry_after(body: ApiError, headers: dict[str, str]) -> float | None:
    if body.retry_after is not None:
        return float(body.retry_after)
    raw = headers.get("retry-after")
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


class RateLimitError(ChatAPIError):
    """A limit or quota is reached: `retry_after` seconds until a slot frees, `limit` names which."""

    def __init__(self, status: int, body: ApiError, headers: dict[str, str] | None = None) -> None:
        super().__init__(status, body, headers)
        self.retry_after = _retry_after(body, self.headers)
        self.limit = body.limit
        self.message = body.message


class ServerError(ChatAPIError):
    """A 5xx: `retry_after` when the server said when to retry (503 while it shuts down)."""

    def __init__(self, status: int, body: ApiError, headers: dict[str, str] | None = None) -> None:
        super().__init__(status, body, headers)
        self.retry_after = _retry_after(body, self.headers)


class StreamLostError(Exception):
    """The connection dropped and the stream could not be resumed: `reason` says why; `last_event_id` is the
    last event received (`resume(thread_id, last_event_id=...)` can try again while the buffer lasts)."""

    def __init__(self, reason: str, *, thread_id: str | None, last_event_id: str | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.thread_id = thread_id
        self.last_event_id = last_event_id


_BY_STATUS: dict[int, type[ChatAPIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def error_for(status: int, content: bytes, headers: dict[str, str]) -> ChatAPIError:
    """The error for a refused request, from its status and (JSON) body."""
    try:
        body = msgspec.json.decode(content, type=ApiError)
    except msgspec.DecodeError:
        text = content.decode("utf-8", "replace").strip()
        body = ApiError(error=text[:500] or f"HTTP {status}")
    kind = _BY_STATUS.get(status) or (ServerError if status >= 500 else ChatAPIError)
    return kind(status, body, headers)
