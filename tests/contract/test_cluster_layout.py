"""On a real 3-master Redis Cluster (`REDIS_CLUSTER_URL`): the keys of one conversation land on one slot, the
keys of one user on one slot, and a workload of many conversations spreads over every master."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import TYPE_CHECKING

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from chatstream.limits import Limits, RedisRateLimiter
from chatstream.models import (
    Conversation,
    Message,
    MessagePart,
    PendingToolCall,
    Preferences,
    Principal,
    SuspendedRun,
    Vote,
)

if TYPE_CHECKING:
    from tests.contract.conftest import Env

pytestmark = pytest.mark.parametrize(
    "env", [pytest.param("cluster", marks=[pytest.mark.redis, pytest.mark.redis_cluster])], indirect=True
)

CONVERSATIONS = 60
USERS = 12
_TAG = re.compile(rb"\{([a-z]+):([^}]*)\}")


async def workload(env: Env) -> None:
    """Every backend writes what a conversation and its user leave in Redis."""
    store, buffer, registry = env.conversation_store(), env.stream_buffer(), env.run_registry()
    assert env.redis is not None
    limits = Limits(
        RedisRateLimiter(env.redis), prefix=env.prefix, tokens_per_day={"free": 10_000}, max_concurrent_runs=100
    )
    for i in range(CONVERSATIONS):
        cid, user, run = f"conv-{i}", f"user-{i % USERS}", f"run-{i}"
        assert await registry.acquire(cid, run, ttl=30) is None
        await limits.admit(Principal(user_id=user), f"10.0.0.{i % 7}", run_id=run, estimate_tokens=10)
        await store.put_conversation(Conversation(id=cid, user_id=user, channel="web"))
        for mid in ("m1", "m2"):
            parts = (MessagePart(type="text", text="hi"),)
            await store.save_message(Message(id=mid, conversation_id=cid, role="user", parts=parts))
        await store.vote(Vote(chat_id=cid, message_id="m2", is_upvoted=True))
        pending = (PendingToolCall(tool_call_id="t", tool_name="getWeather", input={}),)
        await store.save_suspended_run(
            SuspendedRun(
                run_id=run,
                conversation_id=cid,
                user_id=user,
                message_id="m2",
                pending=pending,
                step=1,
                provider="p",
                model="m",
            )
        )
        await buffer.create(cid, run)
        await buffer.append(cid, [b'{"type":"text-delta"}'], final=True)
    for u in range(USERS):
        await store.put_preferences(Preferences(user_id=f"user-{u}", model="m"))


async def keys_by_node(env: Env) -> dict[str, list[bytes]]:
    assert isinstance(env.redis, RedisCluster)
    out: dict[str, list[bytes]] = {}
    for node in env.redis.get_primaries():
        client = aioredis.Redis(host=node.host, port=int(node.port))
        try:
            out[node.name] = [key async for key in client.scan_iter(match=f"{env.prefix}:*", count=1000)]
        finally:
            await client.aclose()
    return out


async def test_one_owner_one_slot_and_every_master_used(env: Env) -> None:
    await workload(env)
    by_node = await keys_by_node(env)
    assert len(by_node) == 3, "REDIS_CLUSTER_URL should name a 3-master cluster"
    owners: dict[tuple[bytes, bytes], set[tuple[str, int]]] = defaultdict(set)
    for node, keys in by_node.items():
        for key in keys:
            tag = _TAG.search(key)
            assert tag is not None, f"a key without a hash tag: {key!r}"
            owners[(tag.group(1), tag.group(2))].add((node, key_slot(key)))
    conversations = {ident for scope, ident in owners if scope == b"c"}
    assert conversations == {f"conv-{i}".encode() for i in range(CONVERSATIONS)}
    assert {ident for scope, ident in owners if scope == b"u"} == {f"user-{u}".encode() for u in range(USERS)}
    for owner, places in owners.items():
        assert len(places) == 1, f"{owner} is spread over {places}"
    # Stream, lease, record, messages, votes and suspended runs: all of them, per conversation.
    kinds = {key.rsplit(b":", 1)[-1] for keys in by_node.values() for key in keys if b"{c:conv-0}" in key}
    assert kinds == {b"stream", b"streammeta", b"run", b"hold", b"conv", b"msgs", b"msgids", b"votes", b"sruns"}
    spread = {node: sum(b"{c:" in key for key in keys) for node, keys in by_node.items()}
    assert all(count > 0 for count in spread.values()), spread  # 60 conversations reach every master


async def test_listing_fetches_conversations_from_every_node(env: Env) -> None:
    store = env.conversation_store()
    for i in range(30):
        await store.put_conversation(Conversation(id=f"c{i}", user_id="alice", updated_at=1_000 + i))
    listed = await store.list_conversations("alice", limit=30)
    assert [c.id for c in listed] == [f"c{i}" for i in reversed(range(30))]
    assert isinstance(env.redis, RedisCluster)
    _ = await env.redis.initialize()
    nodes = {env.redis.get_node_from_key(f"{env.prefix}:{{c:c{i}}}:conv") for i in range(30)}
    assert len({node.name for node in nodes if node is not None}) == 3
