"""`RunRegistry` on Redis: leases, cross-instance stop and idempotency keys shared by every instance.

Keys: `{prefix}:run:{conversation}` holds the active run id with a short PX lease, its liveness, that
readers check; `{prefix}:hold:{conversation}` names the same run with a long PX lease, its holding (see
`chatstream.runs.registry`); the producer's process renews both for all its runs in one `renew.lua` call.
The liveness key keeps its name and meaning from before holding existed, so instances of an older version
sharing the Redis during a rolling deploy still see each other's runs.
`{prefix}:stopreq:{run}` records a stop request and `{prefix}:stop:{run}` is the channel that announces
it; `{prefix}:idem:{key}` binds an idempotency key.

Stop delivery. One PubSub connection per registry carries every `wait_stop` subscription and one
dispatcher task fans messages out to per-run `asyncio.Event`s, so 1,000 waiting runs cost one
connection, not 1,000. A waiter subscribes, waits for Redis to confirm the subscription, and only then
checks the request key: a stop whose PUBLISH went out before the subscription was live has already
written that key (stop.lua writes the key first), so it is never lost. After the PubSub connection is
re-established redis-py re-subscribes, and each re-subscription re-checks its request key, covering
stops published while the connection was down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from chatstream.redis_client import load_script, unavailable

if TYPE_CHECKING:
    from collections.abc import Sequence

    import redis.asyncio as aioredis
    from redis.asyncio.client import PubSub

__all__ = ["RedisRunRegistry"]

_LUA = "chatstream.runs.lua"
_log = logging.getLogger(__name__)


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


class RedisRunRegistry:
    """Run leases, stop signals and idempotency claims in Redis; see the module docstring."""

    def __init__(self, redis: aioredis.Redis, *, prefix: str = "chat", stop_ttl: float = 300.0) -> None:
        """Args:
        redis: a client from `chatstream.redis_client.connect_redis`.
        prefix: first part of every key.
        stop_ttl: seconds a stop request stays visible to a run that has not subscribed yet.
        """
        self._redis = redis
        self._prefix = prefix
        self._stop_ms = _ms(stop_ttl)
        self._acquire = load_script(redis, _LUA, "acquire.lua")
        self._renew = load_script(redis, _LUA, "renew.lua")
        self._release = load_script(redis, _LUA, "release.lua")
        self._stop = load_script(redis, _LUA, "stop.lua")
        self._claim = load_script(redis, _LUA, "claim.lua")
        self._pubsub: PubSub | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._waiters: dict[bytes, set[asyncio.Event]] = {}  # channel -> events of its waiters
        self._subscribed: set[bytes] = set()  # channels whose subscription Redis confirmed
        self._confirming: dict[bytes, asyncio.Future[None]] = {}
        self._unsubscribe: set[bytes] = set()  # channels without waiters, dropped by the dispatcher
        self._background: set[asyncio.Task[None]] = set()

    def _key(self, kind: str, ident: str) -> str:
        return f"{self._prefix}:{kind}:{ident}"

    async def acquire(self, conversation_id: str, run_id: str, *, ttl: float, hold: float | None = None) -> str | None:
        keys = [self._key("run", conversation_id), self._key("hold", conversation_id)]
        with unavailable("run registry"):
            holder = await self._acquire(keys=keys, args=[run_id, _ms(ttl), _ms(ttl if hold is None else hold)])
        return None if holder is None else _text(holder)

    async def heartbeat(self, conversation_id: str, run_id: str, *, ttl: float, hold: float | None = None) -> bool:
        return (await self.renew([(conversation_id, run_id)], ttl=ttl, hold=hold))[0]

    async def renew(self, leases: Sequence[tuple[str, str]], *, ttl: float, hold: float | None = None) -> list[bool]:
        if not leases:
            return []
        keys: list[str] = []
        args: list[str | int] = [_ms(ttl), _ms(ttl if hold is None else hold)]
        for conversation_id, run_id in leases:
            keys += [self._key("run", conversation_id), self._key("hold", conversation_id)]
            args.append(run_id)
        with unavailable("run registry"):
            reply = await self._renew(keys=keys, args=args)
        return [flag == "1" for flag in _text(reply)]

    async def release(self, conversation_id: str, run_id: str) -> None:
        keys = [self._key("run", conversation_id), self._key("hold", conversation_id), self._key("stopreq", run_id)]
        with unavailable("run registry"):
            await self._release(keys=keys, args=[run_id])

    async def active(self, conversation_id: str) -> str | None:
        with unavailable("run registry"):
            holder = await self._redis.get(self._key("run", conversation_id))
        return None if holder is None else _text(holder)

    async def request_stop(self, conversation_id: str) -> str | None:
        with unavailable("run registry"):
            run = await self._stop(keys=[self._key("run", conversation_id)], args=[self._prefix, self._stop_ms])
        return None if run is None else _text(run)

    async def wait_stop(self, run_id: str) -> None:
        channel = self._key("stop", run_id).encode()
        event = asyncio.Event()
        waiters = self._waiters.setdefault(channel, set())
        waiters.add(event)
        self._unsubscribe.discard(channel)
        try:
            await self._subscribe(channel)
            with unavailable("run registry"):
                requested = await self._redis.exists(self._key("stopreq", run_id))
            if not requested:
                await event.wait()
        finally:
            waiters.discard(event)
            if not waiters and self._waiters.get(channel) is waiters:
                del self._waiters[channel]
                self._unsubscribe.add(channel)

    async def _subscribe(self, channel: bytes) -> None:
        """Return once Redis has confirmed a subscription to `channel`."""
        if channel in self._subscribed:
            return
        confirmed = self._confirming.get(channel)
        if confirmed is None:
            confirmed = self._confirming[channel] = asyncio.get_running_loop().create_future()
            if self._pubsub is None:
                self._pubsub = self._redis.pubsub()
            try:
                with unavailable("run registry"):
                    await self._pubsub.subscribe(channel)
            except BaseException:
                self._confirming.pop(channel, None)
                raise
            if self._dispatcher is None or self._dispatcher.done():
                self._dispatcher = asyncio.create_task(self._dispatch(), name="run-registry-stop-dispatcher")
        await asyncio.shield(confirmed)

    async def _dispatch(self) -> None:
        """Read the shared PubSub connection forever, fanning stop messages out to waiters."""
        pubsub = self._pubsub
        assert pubsub is not None
        delay = 0.05
        while True:
            try:
                message = await pubsub.get_message(timeout=1.0)
                if self._unsubscribe:
                    await self._flush_unsubscribes(pubsub)
            except RedisError as exc:  # connection lost: redis-py reconnects and re-subscribes on the next read
                _log.warning("stop channel connection failed (%s); retrying in %.2fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            delay = 0.05
            if message is not None:
                self._handle(message)

    def _handle(self, message: dict[str, Any]) -> None:
        kind, channel = message["type"], message["channel"]
        if kind == "message":
            for event in self._waiters.get(channel, ()):
                event.set()
        elif kind == "subscribe":
            confirmed = self._confirming.pop(channel, None)
            if confirmed is not None:
                if not confirmed.done():
                    confirmed.set_result(None)
            elif channel in self._subscribed and channel in self._waiters:
                # A re-subscription after a reconnect: a stop may have been published while we were
                # away, and only its request key remembers it.
                task = asyncio.create_task(self._recheck(channel))
                self._background.add(task)
                task.add_done_callback(self._background.discard)
            self._subscribed.add(channel)
        elif kind == "unsubscribe":
            self._subscribed.discard(channel)

    async def _flush_unsubscribes(self, pubsub: PubSub) -> None:
        # Checked and removed synchronously before the command goes out: a waiter arriving afterwards
        # finds the channel unconfirmed and subscribes again (its SUBSCRIBE follows our UNSUBSCRIBE).
        channels = [c for c in self._unsubscribe if c not in self._waiters]
        self._unsubscribe.clear()
        if channels:
            self._subscribed.difference_update(channels)
            await pubsub.unsubscribe(*channels)

    async def _recheck(self, channel: bytes) -> None:
        run_id = channel.decode()[len(self._prefix) + len(":stop:") :]
        try:
            requested = await self._redis.exists(self._key("stopreq", run_id))
        except RedisError as exc:
            _log.warning("stop re-check for %s failed: %s", run_id, exc)
            return
        if requested:
            for event in self._waiters.get(channel, ()):
                event.set()

    async def claim_idempotency(self, key: str, value: str, *, ttl: float) -> str | None:
        with unavailable("run registry"):
            existing = await self._claim(keys=[self._key("idem", key)], args=[value, _ms(ttl)])
        return None if existing is None else _text(existing)

    async def ping(self) -> None:
        with unavailable("run registry"):
            await self._redis.ping()

    async def aclose(self) -> None:
        """Stop the dispatcher and close the PubSub connection; the client itself belongs to the caller."""
        for task in [self._dispatcher, *self._background]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._dispatcher = None
        for confirmed in self._confirming.values():
            confirmed.cancel()
        self._confirming.clear()
        if self._pubsub is not None:
            with contextlib.suppress(RedisError):
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]
            self._pubsub = None
        self._subscribed.clear()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
