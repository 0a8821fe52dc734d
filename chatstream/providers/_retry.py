"""Retry an upstream call only while nothing has reached the client yet.

Once the first event is yielded, a retry would repeat or contradict tokens the client already has, so a
failure after that point surfaces as-is. Before it, retryable errors (429, 5xx, overload, timeouts, a refused
connection, an in-stream error that arrives before any content) are retried with jittered exponential
backoff, honouring the upstream's Retry-After up to a cap. The SDKs' own retries are switched off
(`max_retries=0`) so that this is the one policy, and so that in-stream errors are covered too.
"""

from __future__ import annotations

import asyncio
import logging
import random
from contextlib import aclosing
from typing import TYPE_CHECKING, TypeVar

import msgspec

from chatstream.errors import ProviderError, ProviderRateLimitError

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable

__all__ = ["RetryPolicy", "stream_with_retries"]

log = logging.getLogger("chatstream.providers")

T = TypeVar("T")


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """How often and how long to wait before the first token (OpenAI SDK defaults: 2 retries, 0.5 -> 8 s)."""

    max_retries: int = 2
    initial_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 20.0
    """An upstream asking us to wait longer than this gets its error (with `retryAfter`) passed to the client
    instead: a run is bounded (60 s by default) and a client can decide better than a silent wait."""

    def delay(self, retries_done: int, error: ProviderError) -> float | None:
        """Seconds to wait before the next attempt, or None to give up and raise `error`."""
        if not error.retryable or retries_done >= self.max_retries:
            return None
        if isinstance(error, ProviderRateLimitError) and error.retry_after is not None:
            return error.retry_after if error.retry_after <= self.max_retry_after else None
        backoff = min(self.initial_delay * 2.0**retries_done, self.max_delay)
        return backoff * (1 - 0.25 * random.random())  # noqa: S311 - jitter, not cryptography


async def stream_with_retries(
    attempt: Callable[[], AsyncGenerator[T, None]],
    policy: RetryPolicy,
    *,
    provider: str,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> AsyncIterator[T]:
    """Run `attempt()` and relay its events, starting over on a retryable error raised before the first one."""
    retries = 0
    while True:
        started = False
        try:
            async with aclosing(attempt()) as events:
                async for event in events:
                    started = True
                    yield event
            return
        except ProviderError as exc:
            wait = None if started else policy.delay(retries, exc)
            if wait is None:
                raise
            log.warning("%s: %s; retry %d in %.2fs", provider, exc.message, retries + 1, wait)
        retries += 1
        await sleep(wait)
