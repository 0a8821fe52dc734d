"""`RunRegistry` on Redis: leases, cross-instance stop and idempotency keys shared by every instance.

Keys (`chatstream.keys`): `{prefix}:{c:<conversation>}:run` holds the active run id with a short PX lease,
its liveness, that readers check; `{prefix}:{c:<conversation>}:hold` names the same run with a long PX
lease, its holding (see `chatstream.runs.registry`); the producer's process renews both for all its runs in
one round trip (`renew.lua`; on a Redis Cluster one call per slot, pipelined per node, every node at once).
`{prefix}:{r:<run>}:stopreq` records a stop request and `{prefix}:{r:<run>}:stop` is the channel that
announces it; `{prefix}:{k:<key>}` binds an idempotency key (the caller's whole key, such as
`idem:<user>:<header>`: nothing is added to it). The stop keys carry the run's tag rather than the
conversation's because the producer waits for its stop by run id alone (`wait_stop(run_id)`).

Steps across slots, and what a crash between them leaves:

- `request_stop`: read the conversation's lease (its slot), then `stop.lua` in the run's slot writes the
  request and publishes it. A crash in between writes nothing: the stop is lost, the caller got an error
  and asks again. A run that ended in between is stopped after its end, which changes nothing.
- `release`: `release.lua` drops the leases (conversation slot) and the stop request is deleted (run slot),
  both at once. A crash in between leaves a stop request of an ended run, which expires after `stop_ttl`.
  On a single Redis both are one call (`release.lua` is given the stop request too).
- Starting a run (`chatstream.runs.service`) claims the conversation here (`acquire`, the conversation's
  slot), then charges the user (`Limits.admit`: the user's slot and the address's at once, see
  `chatstream.limits.redis`); a refused charge releases the claim. These were separate calls on a single
  Redis too, so a cluster adds no crash window: a crash after the claim leaves a lease nobody renews (its
  liveness lapses within three heartbeats, and the next send claims the conversation), a crash after the
  charge leaves the charge (the concurrency lease lapses after its TTL, the message counts as sent).

Stop delivery. One PubSub connection per registry (on a cluster: per node) carries every `wait_stop`
subscription and one dispatcher fans messages out to per-run `asyncio.Event`s, so 1,000 waiting runs cost
one connection, not 1,000. A waiter subscribes, waits for Redis to confirm the subscription, and only then
checks the request key: a stop whose PUBLISH went out before the subscription was live has already
written that key (stop.lua writes the key first), so it is never lost. After the PubSub connection is
re-established redis-py re-subscribes, and each re-subscription re-checks its request key, covering
stops published while the connection was down.

On a Redis Cluster of Redis >= 7 stops are sharded pub/sub (`SPUBLISH` from stop.lua, `SSUBSCRIBE`): a
message goes to the node owning the run's slot only, not to every node over the cluster bus. redis-py (8+)
keeps one PubSub connection per node that holds subscriptions (`ClusterPubSub`), re-subscribes them after a
reconnect and moves them when a slot moves; this registry reads each of those connections in its own task
(a round-robin read would wait out one node's timeout before reading the next). Older clusters get plain
`PUBLISH`/`SUBSCRIBE`, which Redis broadcasts to every node. A single Redis uses plain pub/sub too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from chatstream.keys import Keys
from chatstream.redis_client import is_cluster, load_script, raise_unavailable, slot_groups, unavailable

if TYPE_CHECKING:
    from collections.abc import Sequence

    from redis.asyncio.client import PubSub
    from redis.asyncio.cluster import ClusterPubSub

    from chatstream.redis_client import RedisClient

__all__ = ["RedisRunRegistry"]

_LUA = "chatstream.runs.lua"
_log = logging.getLogger(__name__)
_SUPERVISE_SECONDS = 1.0
"""How often the cluster dispatcher looks for node connections without a reader (after a slot moved)."""
_UNSUBSCRIBE_SECONDS = 0.25
"""Stop channels without waiters are unsubscribed together, at most this often while stop messages flow."""


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


class RedisRunRegistry:
    """Run leases, stop signals and idempotency claims in Redis; see the module docstring."""

    def __init__(self, redis: RedisClient, *, prefix: str = "chat", stop_ttl: float = 300.0) -> None:
        """Args:
        redis: a client from `chatstream.redis_client.connect_redis` (one Redis or a cluster).
        prefix: first part of every key.
        stop_ttl: seconds a stop request stays visible to a run that has not subscribed yet.
        """
        self._redis = redis
        self._keys = Keys(prefix)
        self._cluster = is_cluster(redis)
        self._sharded: bool | None = None  # sharded pub/sub: a cluster of Redis >= 7 (found out on first use)
        self._sharded_probe: asyncio.Future[bool] | None = None
        self._stop_ms = _ms(stop_ttl)
        self._acquire = load_script(redis, _LUA, "acquire.lua")
        self._renew = load_script(redis, _LUA, "renew.lua")
        self._release = load_script(redis, _LUA, "release.lua")
        self._stop = load_script(redis, _LUA, "stop.lua")
        self._claim = load_script(redis, _LUA, "claim.lua")
        self._pubsub: PubSub | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._readers: dict[str, asyncio.Task[None]] = {}  # cluster, sharded: node name -> its reader
        self._waiters: dict[bytes, set[asyncio.Event]] = {}  # channel -> events of its waiters
        self._run_of: dict[bytes, str] = {}  # channel -> its run id, while it has waiters
        self._subscribed: set[bytes] = set()  # channels whose subscription Redis confirmed
        self._confirming: dict[bytes, asyncio.Future[None]] = {}
        self._unsubscribe: set[bytes] = set()  # channels without waiters, dropped by the dispatcher
        self._background: set[asyncio.Task[None]] = set()

    def _lease_keys(self, conversation_id: str) -> list[str]:
        return [self._keys.conversation(conversation_id, "run"), self._keys.conversation(conversation_id, "hold")]

    async def acquire(self, conversation_id: str, run_id: str, *, ttl: float, hold: float | None = None) -> str | None:
        keys = self._lease_keys(conversation_id)
        with unavailable("run registry"):
            holder = await self._acquire(keys, [run_id, _ms(ttl), _ms(ttl if hold is None else hold)])
        return None if holder is None else _text(holder)

    async def heartbeat(self, conversation_id: str, run_id: str, *, ttl: float, hold: float | None = None) -> bool:
        return (await self.renew([(conversation_id, run_id)], ttl=ttl, hold=hold))[0]

    async def renew(self, leases: Sequence[tuple[str, str]], *, ttl: float, hold: float | None = None) -> list[bool]:
        if not leases:
            return []
        # One call for all on a single Redis; one per slot on a cluster (the same round trip).
        indexed = list(enumerate(leases))
        groups = slot_groups(self._redis, indexed, lambda item: self._keys.conversation(item[1][0], "run"))
        calls = []
        for group in groups:
            keys: list[str] = []
            args: list[str | int] = [_ms(ttl), _ms(ttl if hold is None else hold)]
            for _, (conversation_id, run_id) in group:
                keys += self._lease_keys(conversation_id)
                args.append(run_id)
            calls.append((keys, args))
        with unavailable("run registry"):
            replies = await self._renew.many(calls)
        held = [False] * len(leases)
        for group, reply in zip(groups, replies, strict=True):
            flags = _text(raise_unavailable(reply, "run registry"))
            for (i, _), flag in zip(group, flags, strict=True):
                held[i] = flag == "1"
        return held

    async def release(self, conversation_id: str, run_id: str) -> None:
        stopreq = self._keys.run(run_id, "stopreq")
        with unavailable("run registry"):
            if not self._cluster:  # one node: the stop request goes in the same call
                await self._release([*self._lease_keys(conversation_id), stopreq], [run_id])
                return
            # Two slots (the conversation's leases, the run's stop request), both at once; see the module docstring.
            await asyncio.gather(
                self._release(self._lease_keys(conversation_id), [run_id]), self._redis.delete(stopreq)
            )

    async def active(self, conversation_id: str) -> str | None:
        with unavailable("run registry"):
            holder = await self._redis.get(self._keys.conversation(conversation_id, "run"))
        return None if holder is None else _text(holder)

    async def request_stop(self, conversation_id: str) -> str | None:
        with unavailable("run registry"):
            holder = await self._redis.get(self._keys.conversation(conversation_id, "run"))
            if holder is None:
                return None
            run_id = _text(holder)
            keys = [self._keys.run(run_id, "stopreq"), self._keys.run(run_id, "stop")]
            await self._stop(keys, [self._stop_ms, int(await self._use_sharded())])
        return run_id

    async def _use_sharded(self) -> bool:
        """Sharded pub/sub: on a cluster whose every primary runs Redis >= 7 (asked once, by one caller)."""
        if self._sharded is None:
            if not self._cluster:
                self._sharded = False
                return False
            probe = self._sharded_probe
            if probe is None or (probe.done() and (probe.cancelled() or probe.exception() is not None)):
                probe = self._sharded_probe = asyncio.ensure_future(self._probe_sharded())
            self._sharded = await asyncio.shield(probe)
        return self._sharded

    async def _probe_sharded(self) -> bool:
        from redis.asyncio.cluster import RedisCluster

        infos = await self._redis.execute_command("INFO", "server", target_nodes=RedisCluster.PRIMARIES)
        versions = [info.get("redis_version", "0") for info in _per_node(infos)]
        return bool(versions) and all(int(str(v).split(".")[0]) >= 7 for v in versions)

    async def wait_stop(self, run_id: str) -> None:
        channel = self._keys.run(run_id, "stop").encode()
        event = asyncio.Event()
        waiters = self._waiters.setdefault(channel, set())
        waiters.add(event)
        self._run_of[channel] = run_id
        self._unsubscribe.discard(channel)
        try:
            await self._subscribe(channel)
            with unavailable("run registry"):
                requested = await self._redis.exists(self._keys.run(run_id, "stopreq"))
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                # A cancel() that landed as redis-py completed a write was dropped by its `wait_for` (Python
                # 3.11, gh-86296; seen on the cluster's subscriptions under load): honour it here, or this
                # waiter would wait forever.
                raise asyncio.CancelledError
            if not requested:
                await event.wait()
        finally:
            waiters.discard(event)
            if not waiters and self._waiters.get(channel) is waiters:
                del self._waiters[channel]
                self._run_of.pop(channel, None)
                self._unsubscribe.add(channel)

    async def _subscribe(self, channel: bytes) -> None:
        """Return once Redis has confirmed a subscription to `channel`."""
        if channel in self._subscribed:
            return
        confirmed = self._confirming.get(channel)
        if confirmed is None:
            confirmed = self._confirming[channel] = asyncio.get_running_loop().create_future()
            try:
                with unavailable("run registry"):
                    sharded = await self._use_sharded()
                    if self._pubsub is None:
                        self._pubsub = self._redis.pubsub()
                    if sharded:
                        await self._pubsub.ssubscribe(channel)
                    else:
                        await self._pubsub.subscribe(channel)
            except BaseException:
                self._confirming.pop(channel, None)
                raise
            if self._dispatcher is None or self._dispatcher.done():
                dispatch = self._dispatch_sharded() if sharded else self._dispatch()
                self._dispatcher = asyncio.create_task(dispatch, name="run-registry-stop-dispatcher")
            if sharded:
                self._start_readers()
        await asyncio.shield(confirmed)

    async def _dispatch(self) -> None:
        """Read the shared PubSub connection forever, fanning stop messages out to waiters."""
        pubsub = self._pubsub
        assert pubsub is not None
        delay = 0.05
        loop = asyncio.get_running_loop()
        flushed = loop.time()
        while True:
            try:
                message = await pubsub.get_message(timeout=1.0)
                # Unsubscribes go out together, at most every `_UNSUBSCRIBE_SECONDS` while messages flow (or
                # once the connection is quiet): one UNSUBSCRIBE per run was a round trip per run. A channel
                # kept a little longer costs nothing: a stop on it finds no waiter, and a new waiter for it
                # finds it subscribed still (and takes it out of `_unsubscribe`).
                if self._unsubscribe and (message is None or loop.time() - flushed >= _UNSUBSCRIBE_SECONDS):
                    flushed = loop.time()
                    await self._flush_unsubscribes(pubsub)
            except RedisError as exc:  # connection lost: redis-py reconnects and re-subscribes on the next read
                _log.warning("stop channel connection failed (%s); retrying in %.2fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            delay = 0.05
            if message is not None:
                self._handle(message)

    async def _dispatch_sharded(self) -> None:
        """Cluster, sharded: keep a reader on every node connection and send the unsubscribes."""
        while True:
            await asyncio.sleep(_SUPERVISE_SECONDS)
            pubsub = self._pubsub
            if pubsub is None:
                return
            self._start_readers()  # a slot moved: redis-py re-subscribed its channels on another node
            if self._unsubscribe:
                try:
                    await self._flush_unsubscribes(pubsub)
                except RedisError as exc:
                    _log.warning("stop channel unsubscribe failed (%s); retrying", exc)

    def _start_readers(self) -> None:
        pubsub: ClusterPubSub | None = self._pubsub  # type: ignore[assignment]
        if pubsub is None:
            return
        for name in pubsub.node_pubsub_mapping:
            reader = self._readers.get(name)
            if reader is None or reader.done():
                self._readers[name] = asyncio.create_task(self._read_node(pubsub, name), name=f"stop-reader-{name}")

    async def _read_node(self, pubsub: ClusterPubSub, name: str) -> None:
        """Read one node's shard-channel connection until redis-py drops it (no subscription left there)."""
        delay = 0.05
        while name in pubsub.node_pubsub_mapping:
            node = self._redis.get_node(node_name=name)  # type: ignore[union-attr]
            try:
                if node is None:
                    raise RedisError(f"node {name} left the cluster")
                message = await pubsub.get_sharded_message(target_node=node, timeout=1.0)
            except RedisError as exc:  # redis-py reconnects and re-subscribes on the next read
                _log.warning("stop channel connection to %s failed (%s); retrying in %.2fs", name, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            delay = 0.05
            if message is not None:
                self._handle(message)

    def _handle(self, message: dict[str, Any]) -> None:
        kind, channel = message["type"], message["channel"]
        if isinstance(kind, bytes):
            kind = kind.decode()
        if kind in ("message", "smessage"):
            for event in self._waiters.get(channel, ()):
                event.set()
        elif kind in ("subscribe", "ssubscribe"):
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
        elif kind in ("unsubscribe", "sunsubscribe"):
            self._subscribed.discard(channel)

    async def _flush_unsubscribes(self, pubsub: PubSub) -> None:
        # Checked and removed synchronously before the command goes out: a waiter arriving afterwards
        # finds the channel unconfirmed and subscribes again (its SUBSCRIBE follows our UNSUBSCRIBE).
        channels = [c for c in self._unsubscribe if c not in self._waiters]
        self._unsubscribe.clear()
        if channels:
            self._subscribed.difference_update(channels)
            if self._sharded:
                await pubsub.sunsubscribe(*channels)
            else:
                await pubsub.unsubscribe(*channels)

    async def _recheck(self, channel: bytes) -> None:
        run_id = self._run_of.get(channel)
        if run_id is None:
            return
        try:
            requested = await self._redis.exists(self._keys.run(run_id, "stopreq"))
        except RedisError as exc:
            _log.warning("stop re-check for %s failed: %s", run_id, exc)
            return
        if requested:
            for event in self._waiters.get(channel, ()):
                event.set()

    async def touch_reader(self, run_id: str, *, ttl: float) -> None:
        # `{prefix}:{r:<run>}:reader`: one key with a PX lease, refreshed by every reader (any instance).
        with unavailable("run registry"):
            await self._redis.set(self._keys.run(run_id, "reader"), b"1", px=_ms(ttl))

    async def reader_seen(self, run_id: str) -> bool:
        with unavailable("run registry"):
            return bool(await self._redis.exists(self._keys.run(run_id, "reader")))

    async def claim_idempotency(self, key: str, value: str, *, ttl: float) -> str | None:
        with unavailable("run registry"):
            existing = await self._claim([self._keys.tagged("k", key)], [value, _ms(ttl)])
        return None if existing is None else _text(existing)

    async def ping(self) -> None:
        with unavailable("run registry"):
            await self._redis.ping()

    async def aclose(self) -> None:
        """Stop the dispatcher and close the PubSub connection(s); the client itself belongs to the caller."""
        for task in [self._dispatcher, self._sharded_probe, *self._readers.values(), *self._background]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._dispatcher = None
        self._readers.clear()
        for confirmed in self._confirming.values():
            confirmed.cancel()
        self._confirming.clear()
        if self._pubsub is not None:
            with contextlib.suppress(RedisError):
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]
            self._pubsub = None
        self._subscribed.clear()


def _per_node(reply: Any) -> list[dict[str, Any]]:
    """`INFO` sent to several nodes: one dict per node (redis-py answers a dict keyed by node name)."""
    if isinstance(reply, dict) and reply and all(isinstance(v, dict) for v in reply.values()):
        return list(reply.values())
    return [reply] if isinstance(reply, dict) else []


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
