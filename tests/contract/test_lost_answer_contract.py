"""A dead producer's answer, stored once: `save_message_once`, run-checked appends and `recover_lost_answer`
behave the same on memory, fakeredis and real Redis.

For the Redis kinds every `conversation_store()` / `remote_stream_buffer()` is another client, as another
instance would have, so "exactly once" is checked across instances, not within one.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from chatstream.models import Conversation, Message, MessagePart
from chatstream.protocol.chunks import (
    ErrorChunk,
    FinishStep,
    Start,
    StartStep,
    TextDelta,
    TextEnd,
    TextStart,
    ToolInputAvailable,
    ToolOutputAvailable,
    decode_chunk,
    encode_chunk,
)
from chatstream.runs.recovery import recover_lost_answer
from chatstream.streams.reader import PRODUCER_LOST

if TYPE_CHECKING:
    from chatstream.protocol.chunks import Chunk
    from chatstream.store.base import ConversationStore
    from chatstream.streams.base import StreamBuffer
    from tests.contract.conftest import Env


def answer(mid: str, run_id: str, text: str) -> Message:
    return Message(
        id=mid,
        conversation_id="c1",
        role="assistant",
        parts=(MessagePart(type="text", text=text),),
        run_id=run_id,
        created_at=1,
    )


async def texts(store: ConversationStore) -> list[tuple[str, str]]:
    return [(m.id, m.text) for m in await store.list_messages("c1")]


async def test_save_message_once_stores_one_answer_per_run(conversation_store: ConversationStore) -> None:
    await conversation_store.put_conversation(Conversation(id="c1", user_id="alice"))
    assert await conversation_store.save_message_once(answer("m1", "run-1", "partial")) is True
    # A second recoverer of the same run finds it stored and changes nothing.
    assert await conversation_store.save_message_once(answer("m1", "run-1", "other partial")) is False
    assert await texts(conversation_store) == [("m1", "partial")]
    # The producer coming back replaces it, in place: still one message.
    await conversation_store.save_message(answer("m1", "run-1", "the whole answer"))
    assert await texts(conversation_store) == [("m1", "the whole answer")]
    assert await conversation_store.save_message_once(answer("m1", "run-1", "late partial")) is False
    assert await texts(conversation_store) == [("m1", "the whole answer")]


async def test_save_message_once_replaces_another_runs_message(conversation_store: ConversationStore) -> None:
    """The first half of an answer paused for approval (run-1) is continued by run-2 under the same id."""
    await conversation_store.put_conversation(Conversation(id="c1", user_id="alice"))
    await conversation_store.save_message(answer("m0", "run-0", "before"))
    await conversation_store.save_message(answer("m1", "run-1", "first half"))
    await conversation_store.save_message(answer("m2", "run-0", "after"))
    assert await conversation_store.save_message_once(answer("m1", "run-2", "first half, second half")) is True
    assert await texts(conversation_store) == [("m0", "before"), ("m1", "first half, second half"), ("m2", "after")]


async def test_save_message_once_never_resurrects_a_deleted_conversation(
    conversation_store: ConversationStore,
) -> None:
    assert await conversation_store.save_message_once(answer("m1", "run-1", "partial")) is False
    assert await conversation_store.list_messages("c1") == []


async def test_save_message_once_needs_a_run_id(conversation_store: ConversationStore) -> None:
    await conversation_store.put_conversation(Conversation(id="c1", user_id="alice"))
    with pytest.raises(ValueError, match="run_id"):
        await conversation_store.save_message_once(Message(id="m1", conversation_id="c1", role="assistant"))


async def test_concurrent_save_message_once_stores_exactly_once(env: Env) -> None:
    stores = [env.conversation_store() for _ in range(5)]
    await stores[0].put_conversation(Conversation(id="c1", user_id="alice"))
    won = await asyncio.gather(*(s.save_message_once(answer("m1", "run-1", f"copy {i}")) for i, s in enumerate(stores)))
    assert sorted(won) == [False, False, False, False, True]
    assert len(await stores[0].list_messages("c1")) == 1


async def test_append_naming_a_run_only_writes_into_that_runs_stream(env: Env) -> None:
    buffer = env.stream_buffer()
    other = env.remote_stream_buffer() if env.is_redis else buffer  # another instance's view of the stream
    await buffer.create("c1", "run-1")
    await buffer.append("c1", [b"a"])
    with pytest.raises(KeyError):
        await other.append("c1", [b"x"], final=True, run_id="run-0")  # an older run: refused
    await other.append("c1", [b"end"], final=True, run_id="run-1")
    result = await other.read("c1", None)
    assert result is not None
    assert [e.data for e in result.entries] == [b"a", b"end"]
    assert result.done
    with pytest.raises(KeyError):
        await other.append("c1", [b"again"], final=True, run_id="run-1")  # ended: nothing after the end


def lost_stream() -> list[Chunk]:
    """What a producer wrote before it died: a tool step done, then text cut off mid-part."""
    return [
        Start(message_id="m1", message_metadata={"runId": "run-1", "provider": "mock", "model": "mock-1"}),
        StartStep(),
        ToolInputAvailable(tool_call_id="call-1", tool_name="getWeather", input={"city": "Oslo"}),
        ToolOutputAvailable(tool_call_id="call-1", output={"temp": 3}),
        FinishStep(),
        StartStep(),
        TextStart(id="t1"),
        TextDelta(id="t1", delta="It is "),
        TextDelta(id="t1", delta="cold"),
    ]


async def write_lost_run(buffer: StreamBuffer, store: ConversationStore) -> None:
    await store.put_conversation(Conversation(id="c1", user_id="alice"))
    await buffer.create("c1", "run-1")
    await buffer.append("c1", [encode_chunk(c) for c in lost_stream()])


async def test_recovery_stores_the_answer_once_and_ends_the_stream(env: Env) -> None:
    buffer, store = env.stream_buffer(), env.conversation_store()
    await write_lost_run(buffer, store)
    instances = [(env.remote_stream_buffer() if env.is_redis else buffer, env.conversation_store()) for _ in range(4)]
    results = await asyncio.gather(*(recover_lost_answer(b, s, "c1", "run-1") for b, s in instances))
    stored = [m for m in results if m is not None]
    assert len(stored) == 1
    messages = await store.list_messages("c1")
    assert len(messages) == 1
    message = messages[0]
    assert (message.id, message.run_id, message.finish_reason, message.error) == ("m1", "run-1", "error", PRODUCER_LOST)
    assert (message.provider, message.model) == ("mock", "mock-1")
    assert [p.type for p in message.parts] == ["step-start", "tool-getWeather", "step-start", "text"]
    assert message.parts[1].state == "output-available"
    assert message.parts[1].output == {"temp": 3}
    assert message.text == "It is cold"
    # The stream ends well formed, once: the open text part and step closed, then the error. (Read as
    # another instance: the dead producer's local copy, here still in `buffer`, would never learn of it.)
    result = await instances[0][0].read("c1", None)
    assert result is not None
    assert result.done
    tail = [decode_chunk(e.data) for e in result.entries][len(lost_stream()) :]
    assert tail == [TextEnd(id="t1"), FinishStep(), ErrorChunk(error_text=PRODUCER_LOST)]
    # Later attempts (a late reader, the next send) find nothing to do.
    assert await recover_lost_answer(buffer, store, "c1", "run-1") is None


async def test_recovery_continues_an_answer_resumed_after_approval(env: Env) -> None:
    buffer, store = env.stream_buffer(), env.conversation_store()
    await store.put_conversation(Conversation(id="c1", user_id="alice"))
    first_half = Message(
        id="m1",
        conversation_id="c1",
        role="assistant",
        parts=(
            MessagePart(type="step-start"),
            MessagePart(type="text", text="Let me check."),
            MessagePart(
                type="tool-getWeather",
                tool_call_id="call-1",
                state="approval-requested",
                input={"city": "Oslo"},
                approval={"id": "apv-1"},
            ),
        ),
        run_id="run-1",
        finish_reason="tool-calls",
    )
    await store.save_message(first_half)
    await buffer.create("c1", "run-2")
    continuation = [
        Start(message_id="m1", message_metadata={"runId": "run-2", "provider": "mock", "model": "mock-1"}),
        ToolInputAvailable(tool_call_id="call-1", tool_name="getWeather", input={"city": "Oslo"}),
        ToolOutputAvailable(tool_call_id="call-1", output={"temp": 3}),
        StartStep(),
        TextStart(id="t2"),
        TextDelta(id="t2", delta="Cold."),
    ]
    await buffer.append("c1", [encode_chunk(c) for c in continuation])
    message = await recover_lost_answer(buffer, store, "c1", "run-2")
    assert message is not None
    stored = await store.list_messages("c1")
    assert [m.id for m in stored] == ["m1"]
    parts = stored[0].parts
    assert [p.type for p in parts] == ["step-start", "text", "tool-getWeather", "step-start", "text"]
    assert parts[2].state == "output-available"
    assert [p.text for p in parts if p.type == "text"] == ["Let me check.", "Cold."]
    assert stored[0].run_id == "run-2"


async def test_recovery_leaves_a_finished_or_replaced_stream_alone(env: Env) -> None:
    buffer, store = env.stream_buffer(), env.conversation_store()
    await write_lost_run(buffer, store)
    await buffer.create("c1", "run-2")  # the conversation's next run took the stream
    assert await recover_lost_answer(buffer, store, "c1", "run-1") is None
    await buffer.append("c1", [b"{}"], final=True)
    assert await recover_lost_answer(buffer, store, "c1", "run-2") is None
    assert await store.list_messages("c1") == []


async def test_a_read_stops_at_the_runs_final_entry_when_the_next_run_follows(env: Env) -> None:
    """A lost run's end is written by a recoverer just before the next send creates the new run's stream: a
    reader still behind must never read on into the new run's frames (it learns the stream was replaced)."""
    if not env.is_redis:
        pytest.skip("one process: a memory reader behind a replaced stream is woken with None by `create`")
    buffer = env.stream_buffer()
    reader = env.remote_stream_buffer()
    await buffer.create("c1", "run-1")
    await buffer.append("c1", [b"a"])
    first = await reader.read("c1", None)
    assert first is not None
    assert [e.data for e in first.entries] == [b"a"]  # from the start: its own run's first entry is no marker
    cursor = first.entries[-1].cursor
    await reader.append("c1", [b"end"], final=True, run_id="run-1")
    ended = await reader.read("c1", cursor)
    assert ended is not None
    assert ([e.data for e in ended.entries], ended.done) == ([b"end"], True)
    await buffer.create("c1", "run-2")
    await buffer.append("c1", [b"new run"])
    assert await reader.read("c1", cursor) is None
