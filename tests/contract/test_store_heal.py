"""What a crash between two steps of a cross-slot store operation leaves (on a Redis Cluster the conversation
and its user's indexes are different slots), and how the next listing heals it: stale index entries are
dropped, lagging scores re-scored, and nothing a concurrent write just indexed is touched."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from chatstream.keys import Keys
from chatstream.models import Conversation, Message, MessagePart
from chatstream.store.redis import RedisConversationStore

if TYPE_CHECKING:
    from tests.contract.conftest import Env

pytestmark = pytest.mark.parametrize(
    "env",
    [
        "fakeredis",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("cluster", marks=[pytest.mark.redis, pytest.mark.redis_cluster]),
    ],
    indirect=True,
)


def conversation(cid: str, updated: int, user: str = "alice", channel: str = "api") -> Conversation:
    return Conversation(id=cid, user_id=user, channel=channel, created_at=updated, updated_at=updated)


async def test_a_listing_drops_entries_left_by_an_interrupted_delete_or_move(env: Env) -> None:
    store = env.conversation_store()
    assert env.redis is not None
    keys = Keys(env.prefix)
    await store.put_conversation(conversation("keep", 1_000))
    # A delete that stopped after its first step: the index still names a conversation that is gone.
    await env.redis.zadd(keys.user("alice", "convs"), {"gone": 3_000})
    await env.redis.zadd(keys.user("alice", "chan", "api"), {"gone": 3_000})
    # A move to bob that stopped before alice's entry went: the hash now says bob.
    await store.put_conversation(conversation("moved", 2_000, user="bob"))
    await env.redis.zadd(keys.user("alice", "convs"), {"moved": 2_000})
    assert [c.id for c in await store.list_conversations("alice")] == ["keep"]
    assert [c.id for c in await store.list_conversations("alice", channel="api")] == ["keep"]
    assert await env.redis.zrange(keys.user("alice", "convs"), 0, -1) == [b"keep"]
    assert await env.redis.zrange(keys.user("alice", "chan", "api"), 0, -1) == [b"keep"]
    assert [c.id for c in await store.list_conversations("bob")] == ["moved"]


async def test_a_listing_rescores_a_touch_whose_index_step_was_lost(env: Env) -> None:
    store = env.conversation_store()
    assert env.redis is not None
    keys = Keys(env.prefix)
    await store.put_conversation(conversation("a", 1_000))
    await store.put_conversation(conversation("b", 2_000))
    await store.save_message(Message(id="m", conversation_id="a", role="user", parts=(MessagePart(type="text"),)))
    # The message save's index step never happened: the index still has a's old score.
    await env.redis.zadd(keys.user("alice", "convs"), {"a": 1_000})
    first = await store.list_conversations("alice")
    assert {c.id for c in first} == {"a", "b"}
    assert first[[c.id for c in first].index("a")].updated_at > 2_000  # the record's `u` is authoritative
    assert [c.id for c in await store.list_conversations("alice")] == ["a", "b"]  # in order again


async def test_an_interrupted_create_is_indexed_by_its_next_touch(env: Env) -> None:
    assert env.redis is not None
    keys = Keys(env.prefix)
    writer = RedisConversationStore(env.second_client(), prefix=env.prefix)
    await writer.put_conversation(conversation("c", 1_000))
    await env.redis.delete(keys.user("alice", "convs"), keys.user("alice", "chan", "api"))  # lost index step
    reader = env.conversation_store()
    assert await reader.list_conversations("alice") == []
    # Another instance (which never saw the conversation) saves into it: the owner comes from the hash.
    other = RedisConversationStore(env.second_client(), prefix=env.prefix)
    await other.save_message(Message(id="m", conversation_id="c", role="user", parts=(MessagePart(type="text"),)))
    assert [c.id for c in await reader.list_conversations("alice")] == ["c"]
    assert [c.id for c in await reader.list_conversations("alice", channel="api")] == ["c"]
