"""`ChunkAssembler` rebuilds, from a run's chunks, the message the run itself stores: what a dead producer's
answer is recovered from must be the answer its readers saw."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar.testing import AsyncTestClient

from chatstream import create_app
from chatstream.api.streaming import stored_chunks
from chatstream.models import Message, MessagePart, Usage
from chatstream.protocol.chunks import decode_chunk
from chatstream.providers.base import (
    ModelFinish,
    ModelReasoning,
    ModelReasoningSignature,
    ModelText,
    ModelToolCall,
    ModelUsage,
)
from chatstream.providers.mock import MockProvider
from chatstream.runs.assembly import ChunkAssembler
from chatstream.tools.base import Tool, ToolContext
from tests.support.settings import ALICE, make_settings
from tests.support.sse import parse_frames


class EchoInput(msgspec.Struct):
    text: str


async def echo(data: EchoInput, ctx: ToolContext) -> dict[str, str]:
    return {"echo": data.text}


def fold(frames: list[dict[str, Any]], base: Message | None = None) -> ChunkAssembler:
    assembler = ChunkAssembler("c", base=base)
    for data in frames:
        assembler.apply(decode_chunk(msgspec.json.encode(data)))
    assert assembler.builder is not None
    assembler.builder.finish()
    return assembler


async def test_folding_a_runs_stream_gives_the_message_the_run_stored() -> None:
    mock = MockProvider(
        script=[
            [
                ModelReasoning(text="thinking "),
                ModelReasoning(text="hard"),
                ModelReasoningSignature(signature="sig-1", redacted=False),
                ModelText(text="Let me "),
                ModelText(text="echo."),
                ModelToolCall(id="call-1", name="echo", arguments='{"text": "hi"}'),
                ModelToolCall(id="call-2", name="echo", arguments="not json"),
                ModelFinish(reason="tool-calls"),
            ],
            [
                ModelText(text="Done: hi"),
                ModelUsage(usage=Usage(input_tokens=5, output_tokens=3)),
                ModelFinish(reason="stop"),
            ],
        ]
    )
    settings = make_settings(title_generation=False)
    app = create_app(settings, providers={"mock": mock}, tools=[Tool("echo", "Echo.", EchoInput, echo)])
    async with AsyncTestClient(app) as client:
        r = await client.post("/api/chat", json={"parts": [{"type": "text", "text": "go"}]}, headers=ALICE)
        frames = [f.data for f in parse_frames(r.text) if isinstance(f.data, dict)]
        thread = r.headers["x-thread-id"]
        stored = (await client.get("/api/chat/messages", params={"conversationId": thread}, headers=ALICE)).json()
    answer = msgspec.convert(stored["messages"][-1], Message)
    assembler = fold(frames)
    assert assembler.builder is not None
    assert assembler.builder.message_id == answer.id
    assert assembler.builder.parts == list(answer.parts)
    assert {p.type for p in answer.parts} >= {"reasoning", "text", "tool-echo", "step-start"}  # all kinds seen
    assert assembler.metadata["runId"] == answer.run_id
    assert assembler.closing_chunks() == []  # a finished stream has nothing left open


def test_stored_chunks_fold_back_into_the_stored_parts() -> None:
    message = Message(
        id="m1",
        conversation_id="c",
        role="assistant",
        parts=(
            MessagePart(type="step-start"),
            MessagePart(type="reasoning", text="why"),
            MessagePart(type="text", text="answer"),
            MessagePart(
                type="tool-echo", tool_call_id="call-1", state="output-available", input={"a": 1}, output={"b": 2}
            ),
            MessagePart(type="tool-echo", tool_call_id="call-2", state="output-error", input={}, error_text="bad"),
            MessagePart(type="step-start"),
            MessagePart(type="text", text="more"),
        ),
        run_id="run-1",
        finish_reason="stop",
    )
    frames = [msgspec.to_builtins(c) for c in stored_chunks(message)]
    folded = fold(frames)
    assert folded.builder is not None
    assert folded.builder.parts == list(message.parts)


def test_open_parts_are_closed_by_closing_chunks() -> None:
    frames: list[dict[str, Any]] = [
        {"type": "start", "messageId": "m1"},
        {"type": "start-step"},
        {"type": "reasoning-start", "id": "r1"},
        {"type": "reasoning-delta", "id": "r1", "delta": "hm"},
    ]
    closing = [msgspec.to_builtins(c) for c in fold(frames).closing_chunks()]
    assert closing == [{"type": "reasoning-end", "id": "r1"}, {"type": "finish-step"}]
