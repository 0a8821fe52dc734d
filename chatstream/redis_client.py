"""The one place that builds a redis-py asyncio client and maps its errors onto `BackendUnavailableError`.

Every Redis backend wraps its calls in `unavailable()`, so callers above the backends only ever see the
app's error tree (STYLE §7). The client reconnects by itself: a failed connection is dropped from the pool
and the next command opens a new one, so nothing here needs to notice that Redis came back.
"""

from __future__ import annotations

import importlib.resources
from contextlib import contextmanager
from typing import TYPE_CHECKING

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError, TimeoutError as RedisTimeoutError

from chatstream.errors import BackendUnavailableError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from redis.commands.core import AsyncScript

__all__ = ["DEFAULT_SOCKET_TIMEOUT", "connect_redis", "load_script", "max_block_seconds", "unavailable"]

DEFAULT_SOCKET_TIMEOUT = 30.0
"""Seconds a command may wait for its reply. Blocking reads (XREAD BLOCK) are clamped below it."""


def connect_redis(
    url: str,
    *,
    socket_timeout: float = DEFAULT_SOCKET_TIMEOUT,
    connect_timeout: float = 2.0,
    retries: int = 2,
    max_connections: int = 5_000,
) -> aioredis.Redis:
    """A client for `url` with bounded timeouts and a short jittered retry on connection errors.

    Retries are few and short on purpose: when Redis is really down, a request should fail fast with
    `BackendUnavailableError` (503) rather than hang; the pool reconnects on the next command once Redis
    is back. `decode_responses` stays False because frames and records are bytes.

    `max_connections` is large because every reader blocked in XREAD BLOCK holds a pooled connection
    for the length of its wait (redis-py's default pool of 100 raises "Too many connections" beyond
    that); 1,000 concurrent streams need about 1,000 connections, well under Redis's 10,000 clients.
    """
    return aioredis.Redis.from_url(
        url,
        decode_responses=False,
        socket_timeout=socket_timeout,
        socket_connect_timeout=connect_timeout,
        socket_keepalive=True,
        health_check_interval=15,
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), retries),
        max_connections=max_connections,
    )


@contextmanager
def unavailable(what: str = "redis") -> Iterator[None]:
    """Translate redis-py's connection and timeout errors into `BackendUnavailableError`."""
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError) as exc:
        raise BackendUnavailableError(f"{what} unavailable: {exc}") from exc


def load_script(client: aioredis.Redis, package: str, name: str) -> AsyncScript:
    """Register the Lua script `name` shipped in `package` (EVALSHA, reloaded after a Redis restart)."""
    source = importlib.resources.files(package).joinpath(name).read_text(encoding="utf-8")
    return client.register_script(source)


def max_block_seconds(client: aioredis.Redis, default: float = 10.0) -> float:
    """The longest a blocking read may wait without tripping the client's own socket timeout."""
    timeout = client.connection_pool.connection_kwargs.get("socket_timeout")
    if isinstance(timeout, int | float) and timeout > 0:
        return max(0.001, min(default, timeout - 1.0))
    return default
