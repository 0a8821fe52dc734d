"""The `ConversationStore` contract: memory, fakeredis and real Redis behave the same."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import msgspec

from chatstream.models import Conversation, Message, MessagePart, PendingToolCall, SuspendedRun, Usage

if TYPE_CHECKING:
    from chatstream.store.base import ConversationStore
    from tests.contract.conftest import Env


def conversation(
    cid: str, user: str = "alice", *, updated: int = 1_000, channel: str = "api", **kw: object
) -> Conversation:
    return Conversation(id=cid, user_id=user, channel=channel, created_at=updated, updated_at=updated, **kw)  # type: ignore[arg-type]


def message(cid: str, mid: str, text: str = "hi", role: str = "user") -> Message:
    return Message(
        id=mid,
        conversation_id=cid,
        role=role,  # type: ignore[arg-type]
        parts=(MessagePart(type="text", text=text),),
        created_at=1,
    )


def suspended(run_id: str, cid: str) -> SuspendedRun:
    return SuspendedRun(
        run_id=run_id,
        conversation_id=cid,
        user_id="alice",
        message_id="m-assistant",
        pending=(PendingToolCall(tool_call_id="call-1", tool_name="get_weather", input={"city": "Oslo"}),),
        step=2,
        provider="mock",
        model="mock-1",
        created_at=1,
    )


async def test_round_trip_conversation(conversation_store: ConversationStore) -> None:
    c = conversation("c1", title="Hello", visibility="public", provider="openai", model="gpt-4o")
    await conversation_store.put_conversation(c)
    assert await conversation_store.get_conversation("c1") == c
    assert await conversation_store.get_conversation("missing") is None


async def test_put_replaces_and_keeps_one_index_entry(conversation_store: ConversationStore) -> None:
    await conversation_store.put_conversation(conversation("c1", updated=1_000))
    renamed = conversation("c1", updated=2_000, title="Renamed")
    await conversation_store.put_conversation(renamed)
    assert await conversation_store.get_conversation("c1") == renamed
    assert await conversation_store.list_conversations("alice") == [renamed]


async def test_listing_is_most_recent_first_with_limit(conversation_store: ConversationStore) -> None:
    for i, updated in enumerate([3_000, 1_000, 5_000, 2_000, 4_000]):
        await conversation_store.put_conversation(conversation(f"c{i}", updated=updated))
    await conversation_store.put_conversation(conversation("bob-1", user="bob", updated=9_000))
    listed = await conversation_store.list_conversations("alice")
    assert [c.id for c in listed] == ["c2", "c4", "c0", "c3", "c1"]
    assert [c.id for c in await conversation_store.list_conversations("alice", limit=2)] == ["c2", "c4"]
    assert [c.id for c in await conversation_store.list_conversations("bob")] == ["bob-1"]
    assert await conversation_store.list_conversations("nobody") == []


async def test_listing_ties_break_by_id_descending(conversation_store: ConversationStore) -> None:
    for cid in ["b", "c", "a"]:
        await conversation_store.put_conversation(conversation(cid, updated=1_000))
    assert [c.id for c in await conversation_store.list_conversations("alice")] == ["c", "b", "a"]


async def test_listing_filters_by_channel(conversation_store: ConversationStore) -> None:
    await conversation_store.put_conversation(conversation("w1", channel="web", updated=1_000))
    await conversation_store.put_conversation(conversation("a1", channel="api", updated=2_000))
    await conversation_store.put_conversation(conversation("w2", channel="web", updated=3_000))
    await conversation_store.put_conversation(conversation("x1", user="bob", channel="web", updated=4_000))
    assert [c.id for c in await conversation_store.list_conversations("alice", channel="web")] == ["w2", "w1"]
    assert [c.id for c in await conversation_store.list_conversations("alice", channel="web", limit=1)] == ["w2"]
    assert [c.id for c in await conversation_store.list_conversations("alice", channel="api")] == ["a1"]
    assert await conversation_store.list_conversations("alice", channel="sms") == []
    # Moving a conversation to another channel moves it in the channel listing.
    await conversation_store.put_conversation(conversation("w1", channel="api", updated=5_000))
    assert [c.id for c in await conversation_store.list_conversations("alice", channel="web")] == ["w2"]
    assert [c.id for c in await conversation_store.list_conversations("alice", channel="api")] == ["w1", "a1"]


async def test_channel_and_user_ids_with_separators_do_not_mix(conversation_store: ConversationStore) -> None:
    await conversation_store.put_conversation(conversation("c1", user="a:chan:b", channel="api"))
    await conversation_store.put_conversation(conversation("c2", user="a", channel="b:convs"))
    assert [c.id for c in await conversation_store.list_conversations("a:chan:b")] == ["c1"]
    assert [c.id for c in await conversation_store.list_conversations("a", channel="b:convs")] == ["c2"]


async def test_messages_oldest_first_with_limit(conversation_store: ConversationStore) -> None:
    await conversation_store.put_conversation(conversation("c1"))
    for i in range(5):
        await conversation_store.save_message(message("c1", f"m{i}", f"text {i}"))
    assert [m.id for m in await conversation_store.list_messages("c1")] == ["m0", "m1", "m2", "m3", "m4"]
    assert [m.id for m in await conversation_store.list_messages("c1", limit=2)] == ["m3", "m4"]
    assert [m.id for m in await conversation_store.list_messages("c1", limit=50)] == ["m0", "m1", "m2", "m3", "m4"]
    assert await conversation_store.list_messages("c1", limit=0) == []
    assert await conversation_store.list_messages("missing") == []
    assert (await conversation_store.list_messages("c1"))[2] == message("c1", "m2", "text 2")


async def test_save_message_replaces_by_id_in_place(conversation_store: ConversationStore) -> None:
    await conversation_store.put_conversation(conversation("c1"))
    await conversation_store.save_message(message("c1", "m0"))
    await conversation_store.save_message(message("c1", "m1", "partial", role="assistant"))
    await conversation_store.save_message(message("c1", "m2"))
    grown = msgspec.structs.replace(
        message("c1", "m1", "partial", role="assistant"),
        parts=(MessagePart(type="text", text="partial"), MessagePart(type="tool-get_weather", tool_call_id="t1")),
        usage=Usage(input_tokens=3, output_tokens=4),
        finish_reason="stop",
    )
    await conversation_store.save_message(grown)
    listed = await conversation_store.list_messages("c1")
    assert [m.id for m in listed] == ["m0", "m1", "m2"]
    assert listed[1] == grown
    assert await conversation_store.get_message("c1", "m1") == grown
    assert await conversation_store.get_message("c1", "nope") is None
    assert await conversation_store.get_message("other", "m1") is None


async def test_save_message_touches_updated_at_and_reorders_listing(conversation_store: ConversationStore) -> None:
    await conversation_store.put_conversation(conversation("old", updated=1_000))
    await conversation_store.put_conversation(conversation("new", updated=2_000))
    await conversation_store.save_message(message("old", "m0"))
    touched = await conversation_store.get_conversation("old")
    assert touched is not None
    assert touched.updated_at > 2_000
    listed = await conversation_store.list_conversations("alice")
    assert [c.id for c in listed] == ["old", "new"]
    assert listed[0] == touched


async def test_truncate_keeps_the_most_recent(conversation_store: ConversationStore) -> None:
    await conversation_store.put_conversation(conversation("c1"))
    for i in range(5):
        await conversation_store.save_message(message("c1", f"m{i}"))
    assert await conversation_store.truncate("c1", 2) == (2, 3)
    assert [m.id for m in await conversation_store.list_messages("c1")] == ["m3", "m4"]
    assert await conversation_store.get_message("c1", "m0") is None
    assert await conversation_store.truncate("c1", 10) == (2, 0)
    assert await conversation_store.truncate("c1", 2) == (2, 0)
    assert await conversation_store.truncate("c1", 0) == (0, 2)
    assert await conversation_store.list_messages("c1") == []
    assert await conversation_store.truncate("c1", 0) == (0, 0)
    assert await conversation_store.truncate("missing", 3) == (0, 0)
    # Still usable afterwards, and a re-saved id is new again.
    await conversation_store.save_message(message("c1", "m3"))
    assert [m.id for m in await conversation_store.list_messages("c1")] == ["m3"]
    assert await conversation_store.get_conversation("c1") is not None


async def test_delete_cascades(env: Env, conversation_store: ConversationStore) -> None:
    c1 = conversation("c1", channel="web")
    await conversation_store.put_conversation(c1)
    await conversation_store.put_conversation(conversation("c2", updated=500))
    for i in range(3):
        await conversation_store.save_message(message("c1", f"m{i}"))
    await conversation_store.save_message(message("c2", "keep"))
    await conversation_store.save_suspended_run(suspended("r1", "c1"))
    await conversation_store.save_suspended_run(suspended("r2", "c1"))
    await conversation_store.save_suspended_run(suspended("r3", "c2"))

    deleted = await conversation_store.delete_conversation("c1")
    assert deleted is not None
    assert deleted.id == "c1"
    assert await conversation_store.get_conversation("c1") is None
    assert await conversation_store.list_messages("c1") == []
    assert await conversation_store.get_message("c1", "m0") is None
    assert await conversation_store.get_suspended_run("r1") is None
    assert await conversation_store.take_suspended_run("r2") is None
    assert [c.id for c in await conversation_store.list_conversations("alice")] == ["c2"]
    assert await conversation_store.list_conversations("alice", channel="web") == []
    # The neighbour is untouched.
    assert [m.id for m in await conversation_store.list_messages("c2")] == ["keep"]
    assert await conversation_store.get_suspended_run("r3") == suspended("r3", "c2")
    assert await conversation_store.delete_conversation("c1") is None
    if env.redis is not None:
        leftovers = [k async for k in env.redis.scan_iter(match=f"{env.prefix}:*c1*")]
        assert leftovers == []


async def test_suspended_run_round_trip_and_take(conversation_store: ConversationStore) -> None:
    run = suspended("r1", "c1")
    await conversation_store.save_suspended_run(run)
    assert await conversation_store.get_suspended_run("r1") == run
    assert await conversation_store.get_suspended_run("r1") == run  # get does not consume
    assert await conversation_store.take_suspended_run("r1") == run
    assert await conversation_store.take_suspended_run("r1") is None
    assert await conversation_store.get_suspended_run("r1") is None
    assert await conversation_store.take_suspended_run("never") is None


async def test_take_suspended_run_is_atomic(env: Env) -> None:
    """Two instances take the same run at once: exactly one gets it, repeatedly."""
    first, second = env.conversation_store(), env.conversation_store()
    for i in range(20):
        await first.save_suspended_run(suspended(f"r{i}", "c1"))
        results = await asyncio.gather(first.take_suspended_run(f"r{i}"), second.take_suspended_run(f"r{i}"))
        assert sum(r is not None for r in results) == 1, results


async def test_ping(conversation_store: ConversationStore) -> None:
    await conversation_store.ping()


async def test_no_message_is_stored_into_a_deleted_conversation(conversation_store: ConversationStore) -> None:
    # A run that ends after its conversation was deleted must leave nothing for the id's next owner to read.
    await conversation_store.put_conversation(conversation("c-del"))
    await conversation_store.save_message(message("c-del", "m1"))
    await conversation_store.delete_conversation("c-del")
    await conversation_store.save_message(message("c-del", "m2", role="assistant"))
    assert await conversation_store.list_messages("c-del") == []
    assert await conversation_store.get_message("c-del", "m2") is None
    assert await conversation_store.get_conversation("c-del") is None
    await conversation_store.put_conversation(conversation("c-del", user="bob"))
    assert await conversation_store.list_messages("c-del") == []
