"""Upstream HTTP status -> `ProviderError` subclass, in one table shared by every adapter.

Adapters run their SDK calls inside `sdk_errors(...)`, which turns the SDK's exceptions into ours through
`error_for_status` (or a timeout/transport error); nothing else decides which error an upstream status
becomes.
"""

from __future__ import annotations

import contextlib
import email.utils
import math
import time
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import httpx2

from chatstream.errors import (
    ProviderAuthError,
    ProviderBadRequestError,
    ProviderError,
    ProviderRateLimitError,
    ProviderResponseError,
    ProviderTimeoutError,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

__all__ = ["SdkExceptions", "error_detail", "error_for_status", "parse_retry_after", "sdk_errors"]

# status -> (error class, retryable). Anything not listed: 5xx are retryable response errors, other 4xx are
# bad requests. 529 is Anthropic's "overloaded"; 408 and 504 are the upstream timing out on its side.
_STATUS_TABLE: dict[int, tuple[type[ProviderError], bool]] = {
    400: (ProviderBadRequestError, False),
    401: (ProviderAuthError, False),
    402: (ProviderAuthError, False),
    403: (ProviderAuthError, False),
    404: (ProviderBadRequestError, False),
    408: (ProviderTimeoutError, True),
    409: (ProviderResponseError, True),
    413: (ProviderBadRequestError, False),
    422: (ProviderBadRequestError, False),
    429: (ProviderRateLimitError, True),
    500: (ProviderResponseError, True),
    502: (ProviderResponseError, True),
    503: (ProviderResponseError, True),
    504: (ProviderTimeoutError, True),
    529: (ProviderResponseError, True),
}

_DESCRIPTION: dict[type[ProviderError], str] = {
    ProviderAuthError: "rejected our credentials",
    ProviderBadRequestError: "rejected the request",
    ProviderRateLimitError: "is rate limiting us",
    ProviderTimeoutError: "timed out",
    ProviderResponseError: "failed",
}


def error_for_status(
    status: int, detail: str | None, *, provider: str, retry_after: float | None = None
) -> ProviderError:
    """The error for an upstream HTTP status (or an in-stream error carrying one)."""
    cls, retryable = _STATUS_TABLE.get(
        status, (ProviderResponseError, True) if status >= 500 else (ProviderBadRequestError, False)
    )
    message = f"{provider} {_DESCRIPTION[cls]} (HTTP {status})"
    if detail:
        message = f"{message}: {detail[:300]}"
    if cls is ProviderRateLimitError:
        return ProviderRateLimitError(message, provider=provider, upstream_status=status, retry_after=retry_after)
    return cls(message, provider=provider, upstream_status=status, retryable=retryable)


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the upstream asked us to wait: `retry-after-ms` (OpenAI, Anthropic), then `retry-after`
    as seconds or an HTTP date. None when absent or unparsable."""
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except ValueError:
            continue
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    value = headers.get("retry-after")
    if value:
        parsed = email.utils.parsedate_tz(value)
        if parsed is not None:
            return max(0.0, email.utils.mktime_tz(parsed) - time.time())
    return None


class SdkExceptions(NamedTuple):
    """An SDK's exception classes (the openai and anthropic SDKs have the same tree, not the same classes)."""

    status: type[Exception]
    """Non-2xx answer: has `status_code`, `body`, `message`, `response`."""
    timeout: type[Exception]
    connection: type[Exception]
    base: type[Exception]


@contextlib.contextmanager
def sdk_errors(provider: str, sdk: SdkExceptions) -> Iterator[None]:
    """Translate the SDK's exceptions (and httpx2's) raised inside the block into `ProviderError`s."""
    try:
        yield
    except sdk.status as exc:
        failed = cast("Any", exc)
        raise error_for_status(
            failed.status_code,
            error_detail(failed.body, failed.message),
            provider=provider,
            retry_after=parse_retry_after(failed.response.headers),
        ) from exc
    # The timeout classes subclass the connection ones: timeouts first.
    except (sdk.timeout, httpx2.TimeoutException) as exc:
        refused = _aiohttp_connection_error(exc)
        if refused is not None:
            raise ProviderResponseError(
                f"connection to {provider} failed: {type(refused).__name__}", provider=provider, retryable=True
            ) from exc
        raise ProviderTimeoutError(f"{provider} timed out", provider=provider, retryable=True) from exc
    except (sdk.connection, httpx2.TransportError) as exc:
        raise ProviderResponseError(
            f"connection to {provider} failed: {type(exc).__name__}", provider=provider, retryable=True
        ) from exc
    except sdk.base as exc:
        raise ProviderResponseError(f"{provider} failed: {exc}", provider=provider) from exc


def _aiohttp_connection_error(exc: BaseException) -> BaseException | None:
    """The aiohttp error under a "timeout" that was none: the SDKs' aiohttp transport maps every
    `ClientConnectionError` (a refused connection, a reset) to httpx2's `ConnectTimeout`."""
    cause = exc.__cause__
    while cause is not None:
        if type(cause).__module__.startswith("aiohttp"):
            return None if isinstance(cause, TimeoutError) else cause
        cause = cause.__cause__
    return None


def error_detail(body: object, fallback: str) -> str:
    """The upstream's own error message out of its JSON body: `{"error": {"message"}}` (OpenAI, Anthropic),
    `{"error": "..."}`, or Gemini's list-wrapped variant."""
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return cast("str", error["message"])
        if isinstance(error, str):
            return error
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return error_detail(body[0], fallback)
    return fallback
