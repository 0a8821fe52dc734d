"""Upstream HTTP status -> `ProviderError` subclass, in one table shared by every adapter.

Adapters catch their SDK's exceptions and call `error_for_status` (or build a timeout/transport error);
nothing else decides which error an upstream status becomes.
"""

from __future__ import annotations

import email.utils
import math
import time
from typing import TYPE_CHECKING

from app.errors import (
    ProviderAuthError,
    ProviderBadRequestError,
    ProviderError,
    ProviderRateLimitError,
    ProviderResponseError,
    ProviderTimeoutError,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["error_for_status", "parse_retry_after"]

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
