"""The one place that builds a redis-py asyncio client, loads Lua scripts and maps Redis errors onto
`BackendUnavailableError`; shared by every Redis backend (streams, runs, limits, store).

Single Redis or Redis Cluster: `connect_redis` returns a `redis.asyncio.Redis`, or a
`redis.asyncio.cluster.RedisCluster` for a `redis+cluster://` URL or `cluster=True` (`CHAT_REDIS_CLUSTER`).
The backends run the same code on both. Every key comes from `chatstream.keys.Keys`, whose hash tags put
everything of one conversation (or one user) on one slot, and every script is given all its keys in `KEYS`
and touches one slot, which is what Redis Cluster requires. Where one call carries the work of many owners
(a process's stream writes, lease renewals), `slot_groups` splits it by slot on a cluster and keeps it whole
on a single Redis, and `Script.many` sends one call per group: one pipeline per node, all nodes at once.

On a single Redis, script calls keep one round trip in flight per client; the calls concurrent requests make
meanwhile go out together as one pipeline when it returns (`_Batcher`): a burst of run starts pays redis-py's
per-call cost (a pooled connection, a write, a read) once per round trip rather than once per call. Each call
keeps its own reply or error; calls of one task stay in order, since a task awaits each before the next.

Every Redis backend wraps its calls in `unavailable()`, so callers above the backends only ever see the
app's error tree (STYLE §7). The client reconnects by itself: a failed connection is dropped from the pool
and the next command opens a new one (a cluster client also re-reads the slot map), so nothing here needs
to notice that Redis came back.
"""

from __future__ import annotations

import asyncio
import importlib.resources
import weakref
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.crc import key_slot
from redis.exceptions import (
    ClusterDownError,
    ConnectionError as RedisConnectionError,
    NoScriptError,
    RedisClusterException,
    SlotNotCoveredError,
    TimeoutError as RedisTimeoutError,
    TryAgainError,
)

from chatstream.errors import BackendUnavailableError, ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from redis.commands.core import AsyncScript

__all__ = [
    "DEFAULT_SOCKET_TIMEOUT",
    "RedisClient",
    "Script",
    "connect_redis",
    "is_cluster",
    "is_unavailable",
    "load_script",
    "max_block_seconds",
    "raise_unavailable",
    "slot_groups",
    "unavailable",
]

RedisClient: TypeAlias = "aioredis.Redis | RedisCluster"
"""What every Redis backend takes: one Redis, or a Redis Cluster."""

DEFAULT_SOCKET_TIMEOUT = 30.0
"""Seconds a command may wait for its reply. Blocking reads (XREAD BLOCK) are clamped below it."""

_CLUSTER_SCHEMES = {"redis+cluster://": "redis://", "rediss+cluster://": "rediss://"}
T = TypeVar("T")


class _Cluster(RedisCluster):
    """`RedisCluster` that initializes (learns the slot map) before its first command runs.

    With redis-py 8.1, commands started at once on a fresh asyncio cluster client (a `gather`, a burst of
    requests right after start-up) resolved their command policy before waiting for the initialization the
    first of them began, and some then failed on closed connections (`'NoneType' object has no attribute
    'writelines'`). Waiting for the initialization first avoids it.
    """

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        if self._initialize:
            _ = await self.initialize()
        return await super().execute_command(*args, **kwargs)


def connect_redis(
    url: str,
    *,
    cluster: bool | None = None,
    socket_timeout: float = DEFAULT_SOCKET_TIMEOUT,
    connect_timeout: float = 2.0,
    retries: int = 2,
    max_connections: int = 5_000,
) -> RedisClient:
    """A client for `url` with bounded timeouts and a short jittered retry on connection errors.

    Args:
        url: `redis://`, `rediss://` or `unix://`; `redis+cluster://host:port` (or `rediss+cluster://`) names
            one node of a Redis Cluster, from which the client learns the others.
        cluster: True for a Redis Cluster whatever the scheme (`CHAT_REDIS_CLUSTER`); None: by the scheme.

    Retries are few and short on purpose: when Redis is really down, a request should fail fast with
    `BackendUnavailableError` (503) rather than hang; the pool reconnects on the next command once Redis
    is back. `decode_responses` stays False because frames and records are bytes.

    `max_connections` is large because every reader blocked in XREAD BLOCK holds a pooled connection
    for the length of its wait (redis-py's default pool of 100 raises "Too many connections" beyond
    that); 1,000 concurrent streams need about 1,000 connections, well under Redis's 10,000 clients. On a
    cluster the bound is per node.

    Raises:
        ConfigError: a cluster with a redis-py older than 8 (the first with pub/sub on the asyncio cluster
            client, which stop signals use).
    """
    for scheme, plain in _CLUSTER_SCHEMES.items():
        if url.startswith(scheme):
            url, cluster = plain + url[len(scheme) :], True
    common: dict[str, Any] = {
        "decode_responses": False,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": connect_timeout,
        "socket_keepalive": True,
        "health_check_interval": 15,
        "retry": Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), retries),
        "max_connections": max_connections,
    }
    if cluster:
        if int(redis.__version__.split(".")[0]) < 8:
            raise ConfigError(
                f"Redis Cluster needs redis-py >= 8 (installed: {redis.__version__}): pip install 'redis>=8'"
            )
        return _Cluster.from_url(url, **common)
    return aioredis.Redis.from_url(url, **common)


def is_cluster(client: RedisClient) -> bool:
    """Whether `client` talks to a Redis Cluster (keys of different slots may live on different nodes)."""
    return isinstance(client, RedisCluster)


def slot_groups(client: RedisClient, items: Sequence[T], key: Callable[[T], str]) -> list[list[T]]:
    """`items` split by the slot of `key(item)`, each group in the items' order; on a single Redis, one group.

    How a call that carries the work of many conversations or users (a process's stream writes, its lease
    renewals) becomes one script call per slot on a cluster, while a single Redis keeps one call for all.
    """
    if not is_cluster(client):
        return [list(items)] if items else []
    groups: dict[int, list[T]] = {}
    for item in items:
        groups.setdefault(key_slot(key(item).encode()), []).append(item)
    return list(groups.values())


class _Batcher:
    """Script calls on a single Redis: one round trip in flight, the calls made meanwhile sent together next.

    A call made while none is in flight goes out at once, as one `EVALSHA` (redis-py loads the script if
    Redis lost it): alone, a call costs what it did without batching. Calls made while one is in flight
    queue up; when it returns, they go out together as one pipeline, and so on, Nagle-like (as the stream
    buffer batches its writes). A burst of run starts pays redis-py's per-call cost (a pooled connection, a
    write and a read, ~150-300 us of CPU here) once per round trip rather than once per call. Calls Redis
    answers with NOSCRIPT (it restarted) are sent again once their scripts are loaded; a connection failure
    fails every call of its batch, as it would have failed each; a caller cancelled while queued is left out.
    """

    __slots__ = ("_busy", "_client", "_pending", "_sending")

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._pending: list[tuple[Script, Sequence[str], Sequence[Any], asyncio.Future[Any]]] = []
        self._busy: asyncio.AbstractEventLoop | None = None
        """The loop a round trip is in flight on; None: none is."""
        self._sending: set[asyncio.Task[None]] = set()

    async def call(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        loop = asyncio.get_running_loop()
        if self._busy is loop:
            future: asyncio.Future[Any] = loop.create_future()
            self._pending.append((script, keys, args, future))
            return await future
        # None in flight (or only on a loop that is gone, as when tests run one loop after another).
        self._busy, self._pending = loop, []
        try:
            return await script._script(keys=keys, args=args)
        finally:
            self._next(loop)

    def _next(self, loop: asyncio.AbstractEventLoop) -> None:
        """A round trip ended: send what queued meanwhile, or mark none in flight."""
        batch = [call for call in self._pending if not call[3].done()]
        self._pending = []
        if not batch or loop.is_closed():
            self._busy = None
            return
        task = loop.create_task(self._send(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[tuple[Script, Sequence[str], Sequence[Any], asyncio.Future[Any]]]) -> None:
        try:
            if len(batch) == 1:
                script, keys, args, _ = batch[0]
                replies: list[Any] = [await script._script(keys=keys, args=args)]
            else:
                replies = await _evalsha_all(self._client, [(script, keys, args) for script, keys, args, _ in batch])
        except Exception as exc:  # noqa: BLE001 - not handled here: each caller raises it, as its own call would
            for *_, future in batch:
                if not future.done():
                    future.set_exception(exc)
        except BaseException:  # this task was cancelled (the loop is closing): so are the calls it carried
            for *_, future in batch:
                future.cancel()
            raise
        else:
            for (*_, future), reply in zip(batch, replies, strict=True):
                if future.done():
                    continue
                if isinstance(reply, BaseException):
                    future.set_exception(reply)
                else:
                    future.set_result(reply)
        finally:
            self._next(asyncio.get_running_loop())


async def _evalsha_all(client: RedisClient, calls: Sequence[tuple[Script, Sequence[str], Sequence[Any]]]) -> list[Any]:
    """One reply per `(script, keys, args)` call, in order, pipelined (one pipeline per node on a cluster); a call
    that failed has its exception in its place. Calls Redis answered with NOSCRIPT (a node restarted or failed
    over: its script cache is empty) are sent again once their scripts are loaded."""
    replies = await _pipelined(client, calls)
    missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
    if missing:
        for script in {id(calls[i][0]): calls[i][0] for i in missing}.values():
            await client.script_load(script._script.script)
        for i, reply in zip(missing, await _pipelined(client, [calls[i] for i in missing]), strict=True):
            replies[i] = reply
    return replies


async def _pipelined(client: RedisClient, calls: Sequence[tuple[Script, Sequence[str], Sequence[Any]]]) -> list[Any]:
    # A plain EVALSHA command: a cluster pipeline blocks its `evalsha` method, not the command.
    pipe: Any = client.pipeline(transaction=False)  # queued commands return the pipeline
    for script, keys, args in calls:
        pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
    return list(await pipe.execute(raise_on_error=False))


_batchers: weakref.WeakKeyDictionary[Any, _Batcher] = weakref.WeakKeyDictionary()


def _batcher(client: RedisClient) -> _Batcher | None:
    """The client's batcher; None on a cluster (its calls go to the nodes of their slots, one by one)."""
    if is_cluster(client):
        return None
    batcher = _batchers.get(client)
    if batcher is None:
        assert isinstance(client, aioredis.Redis)
        batcher = _batchers[client] = _Batcher(client)
    return batcher


class Script:
    """A Lua script of a Redis backend: `await script(keys, args)` is one `EVALSHA` (the script is loaded
    again after a Redis restart or failover; on a single Redis, batched with the calls made while another is in
    flight), `await script.many(calls)` one call per `(keys, args)`."""

    __slots__ = ("_batcher", "_client", "_script")

    def __init__(self, client: RedisClient, source: str) -> None:
        self._client = client
        self._script: AsyncScript = client.register_script(source)
        self._batcher = _batcher(client)

    @property
    def sha(self) -> str:
        """The script's SHA1, for `EVALSHA` queued in a pipeline."""
        sha: str = self._script.sha
        return sha

    async def __call__(self, keys: Sequence[str], args: Sequence[Any]) -> Any:
        if self._batcher is not None:
            return await self._batcher.call(self, keys, args)
        return await self._script(keys=keys, args=args)

    async def many(self, calls: Sequence[tuple[Sequence[str], Sequence[Any]]]) -> list[Any]:
        """One reply per call, in order; a call that failed has its exception in its place (the others
        stand). One call is sent as is; more go out pipelined, one pipeline per node, the nodes at once.
        Calls with keys of several slots are refused on a cluster: split them with `slot_groups` first."""
        if len(calls) <= 1:
            return [await self(*calls[0])] if calls else []
        return await _evalsha_all(self._client, [(self, keys, args) for keys, args in calls])


def load_script(client: RedisClient, package: str, name: str) -> Script:
    """The Lua script `name` shipped in `package`, for `client`: how every Redis backend loads its scripts."""
    return Script(client, importlib.resources.files(package).joinpath(name).read_text(encoding="utf-8"))


def max_block_seconds(client: RedisClient, default: float = 10.0) -> float:
    """The longest a blocking read may wait without tripping the client's own socket timeout."""
    if isinstance(client, RedisCluster):
        kwargs = client.get_connection_kwargs()
    else:
        kwargs = client.connection_pool.connection_kwargs
    timeout = kwargs.get("socket_timeout")
    if isinstance(timeout, int | float) and timeout > 0:
        return max(0.001, min(default, timeout - 1.0))
    return default


def is_unavailable(exc: BaseException) -> bool:
    """Whether `exc` means Redis cannot be reached now (rather than a bug): connection and timeout errors,
    and on a cluster a node down, a slot not served, a resharding in progress or no node reachable."""
    if isinstance(exc, RedisConnectionError | RedisTimeoutError | ClusterDownError | TryAgainError):
        return True
    if isinstance(exc, SlotNotCoveredError):
        return True
    return isinstance(exc, RedisClusterException) and isinstance(
        exc.__cause__, RedisConnectionError | RedisTimeoutError | OSError
    )


@contextmanager
def unavailable(what: str = "redis") -> Iterator[None]:
    """Translate redis-py's "cannot reach Redis" errors (`is_unavailable`) into `BackendUnavailableError`."""
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError, ClusterDownError, TryAgainError, RedisClusterException) as exc:
        if not is_unavailable(exc):
            raise
        raise BackendUnavailableError(f"{what} unavailable: {exc}") from exc


def raise_unavailable(reply: Any, what: str = "redis") -> Any:
    """A reply of `Script.many`: returned as is, or its exception raised (as `BackendUnavailableError` when
    Redis could not be reached)."""
    if isinstance(reply, BaseException):
        with unavailable(what):
            raise reply
    return reply
