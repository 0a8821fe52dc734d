"""The one error tree. The HTTP status is a class attribute; `chatstream.api.errors` renders it as JSON.

AppError (500)
 ├── ConfigError                 bad configuration, raised at start-up
 ├── BadRequestError (400)
 ├── UnauthorizedError (401)
 │    └── BotDetectedError (401)  the host's bot check refused a run-starting request
 ├── ForbiddenError (403)
 ├── NotFoundError (404)
 ├── ConflictError (409)
 ├── PayloadTooLargeError (413)
 ├── IdempotencyKeyReusedError (422)  an Idempotency-Key sent again with a different request
 ├── RateLimitedError (429)      retry_after, limit
 ├── StreamGoneError (410)
 ├── BackendUnavailableError (503)
 ├── ShuttingDownError (503)     this instance drains (SIGTERM): try another one; Retry-After
 └── ProviderError (502)         provider, upstream_status, retryable
      ├── ProviderTimeoutError (504)
      ├── ProviderRateLimitError (429)  retry_after
      ├── ProviderAuthError (502)
      ├── ProviderBadRequestError (400)
      └── ProviderResponseError (502)   an error inside an upstream stream
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AppError",
    "BackendUnavailableError",
    "BadRequestError",
    "BotDetectedError",
    "ConfigError",
    "ConflictError",
    "ForbiddenError",
    "IdempotencyKeyReusedError",
    "NotFoundError",
    "PayloadTooLargeError",
    "ProviderAuthError",
    "ProviderBadRequestError",
    "ProviderError",
    "ProviderRateLimitError",
    "ProviderResponseError",
    "ProviderTimeoutError",
    "RateLimitedError",
    "ShuttingDownError",
    "StreamGoneError",
    "UnauthorizedError",
]


class AppError(Exception):
    """Base of every error the server raises on purpose."""

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, /, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra
        self.headers: dict[str, str] = {}

    def body(self) -> dict[str, Any]:
        """The JSON body: `{"error": message}` plus extra fields (SPEC §3)."""
        return {"error": self.message, **self.extra}


class ConfigError(AppError):
    code = "config_error"


class BadRequestError(AppError):
    status_code = 400
    code = "bad_request"


class UnauthorizedError(AppError):
    status_code = 401
    code = "unauthorized"

    def __init__(self, message: str = "unauthorized", *, invalid_token: bool = False, **extra: Any) -> None:
        super().__init__(message, **extra)
        # RFC 7235 §3.1: a 401 names its scheme. RFC 6750 §3: `error="invalid_token"` only when a token was
        # presented and refused; a request without credentials gets the bare challenge.
        challenge = 'Bearer realm="chatstream"'
        self.headers = {"WWW-Authenticate": f'{challenge}, error="invalid_token"' if invalid_token else challenge}


class BotDetectedError(UnauthorizedError):
    """Seed 002's `401 {"error": "bot detected"}`: the host's `bot_check` said the caller is a bot."""

    code = "bot_detected"

    def __init__(self, message: str = "bot detected", **extra: Any) -> None:
        super().__init__(message, **extra)


class ForbiddenError(AppError):
    status_code = 403
    code = "forbidden"

    def __init__(self, message: str = "forbidden", **extra: Any) -> None:
        super().__init__(message, **extra)


class NotFoundError(AppError):
    status_code = 404
    code = "not_found"


class ConflictError(AppError):
    status_code = 409
    code = "conflict"


class PayloadTooLargeError(AppError):
    status_code = 413
    code = "payload_too_large"


class IdempotencyKeyReusedError(AppError):
    """The key already belongs to a different request: answering with that request's result would be wrong,
    and starting a second run would break the key's promise (Stripe answers the same way)."""

    status_code = 422
    code = "idempotency_key_reused"

    def __init__(self, message: str = "idempotency key reused with a different request", **extra: Any) -> None:
        super().__init__(message, **extra)


class RateLimitedError(AppError):
    """A limit was reached. `retry_after` is the real number of seconds until a slot frees."""

    status_code = 429
    code = "rate_limit"

    def __init__(self, message: str, *, retry_after: int, limit: str, headers: dict[str, str] | None = None) -> None:
        super().__init__("rate_limit", message=message, retryAfter=retry_after, limit=limit)
        self.retry_after = retry_after
        self.limit = limit
        self.headers = {"Retry-After": str(retry_after), **(headers or {})}


class StreamGoneError(AppError):
    status_code = 410
    code = "stream_gone"


class BackendUnavailableError(AppError):
    status_code = 503
    code = "backend_unavailable"


class ShuttingDownError(AppError):
    """This instance is draining for shutdown: it starts no run. Another instance can take the request at
    once (a load balancer retries a 503 elsewhere), so `Retry-After` is short rather than this instance's
    remaining drain time."""

    status_code = 503
    code = "shutting_down"

    def __init__(self, message: str = "this instance is shutting down; retry on another one", **extra: Any) -> None:
        super().__init__(message, code=self.code, **extra)
        self.headers = {"Retry-After": "1"}


class ProviderError(AppError):
    """An upstream LLM provider failed."""

    status_code = 502
    code = "provider_error"

    def __init__(
        self, message: str, *, provider: str, upstream_status: int | None = None, retryable: bool = False
    ) -> None:
        super().__init__(message, code=self.code, provider=provider)
        self.provider = provider
        self.upstream_status = upstream_status
        self.retryable = retryable


class ProviderTimeoutError(ProviderError):
    status_code = 504
    code = "provider_timeout"


class ProviderRateLimitError(ProviderError):
    status_code = 429
    code = "provider_rate_limit"

    def __init__(
        self, message: str, *, provider: str, upstream_status: int | None = 429, retry_after: float | None = None
    ) -> None:
        super().__init__(message, provider=provider, upstream_status=upstream_status, retryable=True)
        self.retry_after = retry_after
        if retry_after is not None:
            self.extra["retryAfter"] = max(1, round(retry_after))
            self.headers = {"Retry-After": str(max(1, round(retry_after)))}


class ProviderAuthError(ProviderError):
    code = "provider_auth"


class ProviderBadRequestError(ProviderError):
    status_code = 400
    code = "provider_bad_request"


class ProviderResponseError(ProviderError):
    code = "provider_response"
