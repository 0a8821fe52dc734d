"""The `ConversationStore` contract: memory, fakeredis and real Redis behave the same."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import msgspec

from chatstream.models import (
    Conversation,
    Message,
    MessagePart,
    PendingToolCall,
    Preferences,
    SuspendedRun,
    Usage,
    Vote,
)

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
        pending=(PendingToolCall(tool_call_id="call-1", tool_name="getWeather", input={"city": "Oslo"}),),
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
        parts=(MessagePart(type="text", text="partial"), MessagePart(type="tool-getWeather", tool_call_id="t1")),
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


async def test_listing_filters_by_visibility(conversation_store: ConversationStore) -> None:
    await conversation_store.put_conversation(conversation("p1", visibility="public", updated=1_000))
    await conversation_store.put_conversation(conversation("x1", updated=2_000))
    await conversation_store.put_conversation(conversation("p2", visibility="public", channel="web", updated=3_000))
    assert [c.id for c in await conversation_store.list_conversations("alice", visibility="public")] == ["p2", "p1"]
    assert [c.id for c in await conversation_store.list_conversations("alice", visibility="private")] == ["x1"]
    listed = await conversation_store.list_conversations("alice", visibility="public", channel="web")
    assert [c.id for c in listed] == ["p2"]
    # Changing visibility moves the conversation between the filtered listings.
    await conversation_store.put_conversation(conversation("x1", visibility="public", updated=4_000))
    assert [c.id for c in await conversation_store.list_conversations("alice", visibility="public")] == [
        "x1",
        "p2",
        "p1",
    ]


async def test_listing_pages_with_cursors(conversation_store: ConversationStore) -> None:
    # Most recent first: c9 ... c0.
    for i in range(10):
        await conversation_store.put_conversation(conversation(f"c{i}", updated=1_000 + i))
    await conversation_store.put_conversation(conversation("bob-1", user="bob", updated=5_500))
    store = conversation_store

    async def ids(**kw: object) -> list[str]:
        return [c.id for c in await store.list_conversations("alice", **kw)]  # type: ignore[arg-type]

    assert await ids(limit=3) == ["c9", "c8", "c7"]
    assert await ids(limit=3, starting_after="c7") == ["c6", "c5", "c4"]
    assert await ids(limit=3, starting_after="c1") == ["c0"]
    assert await ids(limit=3, starting_after="c0") == []
    # ending_before: the newer ones nearest to the cursor, still most recent first.
    assert await ids(limit=3, ending_before="c4") == ["c7", "c6", "c5"]
    assert await ids(limit=3, ending_before="c8") == ["c9"]
    assert await ids(limit=3, ending_before="c9") == []
    # A cursor that is not one of the user's conversations lists nothing.
    assert await ids(limit=3, starting_after="bob-1") == []
    assert await ids(limit=3, starting_after="missing") == []
    # Filters apply after the cursor.
    await store.put_conversation(conversation("c3", channel="web", updated=1_003))
    await store.put_conversation(conversation("c1", channel="web", updated=1_001))
    assert await ids(limit=5, starting_after="c5", channel="web") == ["c3", "c1"]
    assert await ids(limit=1, ending_before="c0", channel="web") == ["c1"]


async def test_messages_page_back_with_before(conversation_store: ConversationStore) -> None:
    await conversation_store.put_conversation(conversation("c1"))
    for i in range(6):
        await conversation_store.save_message(message("c1", f"m{i}"))
    store = conversation_store
    assert [m.id for m in await store.list_messages("c1", limit=2, before="m4")] == ["m2", "m3"]
    assert [m.id for m in await store.list_messages("c1", limit=10, before="m2")] == ["m0", "m1"]
    assert [m.id for m in await store.list_messages("c1", before="m3")] == ["m0", "m1", "m2"]
    assert await store.list_messages("c1", limit=2, before="m0") == []
    assert await store.list_messages("c1", limit=2, before="unknown") == []


async def test_message_metadata_round_trips(conversation_store: ConversationStore) -> None:
    await conversation_store.put_conversation(conversation("c1"))
    sent = msgspec.structs.replace(message("c1", "m0"), metadata={"client": "web", "tags": [1, 2], "n": None})
    await conversation_store.save_message(sent)
    assert await conversation_store.get_message("c1", "m0") == sent
    assert (await conversation_store.list_messages("c1"))[0].metadata == {"client": "web", "tags": [1, 2], "n": None}


async def _five(store: ConversationStore) -> None:
    await store.put_conversation(conversation("c1"))
    for i, role in enumerate(["user", "assistant", "user", "assistant", "user"]):
        await store.save_message(message("c1", f"m{i}", f"text {i}", role=role))


async def test_rewind_removes_a_message_and_everything_after(conversation_store: ConversationStore) -> None:
    await _five(conversation_store)
    await conversation_store.put_conversation(conversation("c2", updated=1))
    await conversation_store.save_message(message("c2", "m3"))
    assert await conversation_store.rewind("c1", "m3") == ["m3", "m4"]
    assert [m.id for m in await conversation_store.list_messages("c1")] == ["m0", "m1", "m2"]
    assert await conversation_store.get_message("c1", "m4") is None
    assert [m.id for m in await conversation_store.list_messages("c2")] == ["m3"]  # the neighbour is untouched
    # The removed ids are free again: saving one appends it at the end.
    await conversation_store.save_message(message("c1", "m4", "new answer", role="assistant"))
    assert [m.id for m in await conversation_store.list_messages("c1")] == ["m0", "m1", "m2", "m4"]
    assert (await conversation_store.list_messages("c1"))[-1].text == "new answer"


async def test_rewind_with_a_replacement_edits_a_message(conversation_store: ConversationStore) -> None:
    await _five(conversation_store)
    edited = message("c1", "m2", "edited question")
    assert await conversation_store.rewind("c1", "m2", replacement=edited) == ["m2", "m3", "m4"]
    listed = await conversation_store.list_messages("c1")
    assert [m.id for m in listed] == ["m0", "m1", "m2"]
    assert listed[-1] == edited
    # The replacement may have a new id.
    fresh = message("c1", "m9", "again")
    assert await conversation_store.rewind("c1", "m2", replacement=fresh) == ["m2"]
    assert [m.id for m in await conversation_store.list_messages("c1")] == ["m0", "m1", "m9"]


async def test_rewind_unknown_message_changes_nothing(conversation_store: ConversationStore) -> None:
    await _five(conversation_store)
    before = await conversation_store.list_messages("c1")
    assert await conversation_store.rewind("c1", "nope") is None
    assert await conversation_store.rewind("c1", "nope", replacement=message("c1", "x")) is None
    assert await conversation_store.rewind("missing", "m0") is None
    assert await conversation_store.list_messages("c1") == before
    assert await conversation_store.get_message("c1", "x") is None


async def test_rewind_from_the_first_message_empties_the_conversation(conversation_store: ConversationStore) -> None:
    await _five(conversation_store)
    assert await conversation_store.rewind("c1", "m0") == ["m0", "m1", "m2", "m3", "m4"]
    assert await conversation_store.list_messages("c1") == []
    assert await conversation_store.get_conversation("c1") is not None
    await conversation_store.save_message(message("c1", "m0"))
    assert [m.id for m in await conversation_store.list_messages("c1")] == ["m0"]


async def test_rewind_is_atomic_between_instances(env: Env) -> None:
    """Two instances rewind the same conversation at once: the outcome is one of the two orders, whole."""
    first, second = env.conversation_store(), env.conversation_store()
    await _five(first)
    a, b = await asyncio.gather(
        first.rewind("c1", "m1", replacement=message("c1", "a", role="assistant")),
        second.rewind("c1", "m3", replacement=message("c1", "b", role="assistant")),
    )
    # Either order ends in the same history: [m0, a] (rewinding to m1 removes whatever the other left).
    assert [m.id for m in await first.list_messages("c1")] == ["m0", "a"]
    assert (a, b) in ((["m1", "m2", "m3", "m4"], None), (["m1", "m2", "b"], ["m3", "m4"]))
    for mid in ["m1", "m2", "m3", "m4", "b"]:
        assert await first.get_message("c1", mid) is None


async def test_votes_replace_and_list_in_message_order(conversation_store: ConversationStore) -> None:
    await _five(conversation_store)
    store = conversation_store
    assert await store.vote(Vote(chat_id="c1", message_id="m3", is_upvoted=True))
    assert await store.vote(Vote(chat_id="c1", message_id="m1", is_upvoted=True))
    assert await store.vote(Vote(chat_id="c1", message_id="m3", is_upvoted=False))  # voting again replaces
    assert await store.list_votes("c1") == [
        Vote(chat_id="c1", message_id="m1", is_upvoted=True),
        Vote(chat_id="c1", message_id="m3", is_upvoted=False),
    ]
    assert not await store.vote(Vote(chat_id="c1", message_id="nope", is_upvoted=True))
    assert not await store.vote(Vote(chat_id="missing", message_id="m1", is_upvoted=True))
    assert await store.list_votes("missing") == []
    assert len(await store.list_votes("c1")) == 2


async def test_votes_go_with_their_messages(env: Env, conversation_store: ConversationStore) -> None:
    await _five(conversation_store)
    store = conversation_store
    for mid in ["m0", "m1", "m2", "m3", "m4"]:
        await store.vote(Vote(chat_id="c1", message_id=mid, is_upvoted=True))
    await store.rewind("c1", "m3")
    assert [v.message_id for v in await store.list_votes("c1")] == ["m0", "m1", "m2"]
    # A message saved again under a removed id does not get the old vote back.
    await store.save_message(message("c1", "m3", role="assistant"))
    assert [v.message_id for v in await store.list_votes("c1")] == ["m0", "m1", "m2"]
    await store.truncate("c1", 2)
    assert [v.message_id for v in await store.list_votes("c1")] == ["m2"]
    await store.delete_conversation("c1")
    assert await store.list_votes("c1") == []
    await store.put_conversation(conversation("c1"))
    await store.save_message(message("c1", "m2"))
    assert await store.list_votes("c1") == []  # nothing of the deleted conversation comes back
    if env.redis is not None:
        await store.delete_conversation("c1")
        leftovers = [k async for k in env.redis.scan_iter(match=f"{env.prefix}:*c1*")]
        assert leftovers == []


async def test_preferences_round_trip(conversation_store: ConversationStore) -> None:
    assert await conversation_store.get_preferences("alice") is None
    prefs = Preferences(user_id="alice", provider="openai", model="gpt-4o-mini", mood="friendly", updated_at=5)
    await conversation_store.put_preferences(prefs)
    assert await conversation_store.get_preferences("alice") == prefs
    assert await conversation_store.get_preferences("bob") is None
    replaced = Preferences(user_id="alice", model="gpt-4o", updated_at=6)
    await conversation_store.put_preferences(replaced)
    assert await conversation_store.get_preferences("alice") == replaced
