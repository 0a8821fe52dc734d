"""Bytes only: chunk encoding, SSE framing, the three dialects."""

from __future__ import annotations

import json

import pytest

from chatstream.protocol.chunks import (
    DataConversation,
    DataStatus,
    ErrorChunk,
    Finish,
    SourceUrl,
    Start,
    TextDelta,
    ToolApprovalRequest,
    ToolInputAvailable,
    ToolInputStart,
    ToolOutputAvailable,
    decode_chunk,
    encode_chunk,
)
from chatstream.protocol.dialects import PlainDialect, Seed003Dialect, UIDialect
from chatstream.protocol.sse import DONE, PING, frame, valid_cursor


def test_chunks_encode_to_ai_sdk_shapes() -> None:
    assert json.loads(encode_chunk(TextDelta(id="t0", delta="Hi"))) == {"type": "text-delta", "id": "t0", "delta": "Hi"}
    assert json.loads(encode_chunk(ToolApprovalRequest(approval_id="a", tool_call_id="c"))) == {
        "type": "tool-approval-request",
        "approvalId": "a",
        "toolCallId": "c",
    }
    assert json.loads(encode_chunk(Finish(finish_reason="stop"))) == {"type": "finish", "finishReason": "stop"}
    assert json.loads(encode_chunk(Start())) == {"type": "start"}
    assert json.loads(encode_chunk(DataConversation(data={"conversationId": "c"}))) == {
        "type": "data-conversation",
        "data": {"conversationId": "c"},
        "id": "conversation",
    }
    assert json.loads(encode_chunk(DataStatus(data={"status": "running"}))) == {
        "type": "data-status",
        "data": {"status": "running"},
        "transient": True,
    }


def test_chunk_round_trip() -> None:
    chunk = ToolInputAvailable(tool_call_id="c1", tool_name="getWeather", input={"city": "Paris"})
    assert decode_chunk(encode_chunk(chunk)) == chunk


def test_sse_frame_and_constants() -> None:
    assert frame("7", b'{"a":1}') == b'id: 7\ndata: {"a":1}\n\n'
    assert PING == b": ping\n\n"
    assert DONE == b"data: [DONE]\n\n"


@pytest.mark.parametrize(
    ("cursor", "ok"),
    [("12", True), ("1700000000000-0.3", True), ("", False), ("abc", False), ("1\n2", False), ("9" * 65, False)],
)
def test_valid_cursor(cursor: str, ok: bool) -> None:
    assert valid_cursor(cursor) is ok


def test_ui_dialect_passes_bytes_through() -> None:
    data = encode_chunk(TextDelta(id="t", delta="x"))
    assert UIDialect().entry("3", data) == frame("3", data)
    assert UIDialect().end() == DONE
    assert json.loads(UIDialect().error("boom", "x")[6:]) == {"type": "error", "errorText": "boom"}


def _events(dialect: PlainDialect | Seed003Dialect, chunks: list[bytes]) -> list[dict[str, object]]:
    out = []
    for i, data in enumerate(chunks):
        encoded = dialect.entry(str(i + 1), data)
        if encoded:
            out.append(json.loads(encoded.split(b"data: ", 1)[1]))
    return out


def test_plain_dialect() -> None:
    meta = {"conversationId": "c", "provider": "mock", "model": "m", "usage": {"outputTokens": 2}}
    chunks = [
        encode_chunk(c)
        for c in (
            Start(message_id="m1", message_metadata=meta),
            TextDelta(id="t", delta="Hel"),
            TextDelta(id="t", delta="lo"),
            DataStatus(data={"status": "running", "tool": "web_search"}),
            SourceUrl(source_id="s1", url="https://a.example/", title="A"),
            SourceUrl(source_id="s2", url="https://b.example/"),
            Finish(finish_reason="stop", message_metadata=meta),
        )
    ]
    events = _events(PlainDialect(), chunks)
    assert events == [
        {"type": "metadata", "conversationId": "c", "provider": "mock", "model": "m"},
        {"type": "delta", "text": "Hel"},
        {"type": "delta", "text": "lo"},
        {"type": "status", "status": "running", "tool": "web_search"},
        {
            "type": "done",
            "response": "Hello",
            "conversationId": "c",
            "provider": "mock",
            "model": "m",
            "usage": {"outputTokens": 2},
            "finishReason": "stop",
            "sources": [
                {"sourceId": "s1", "url": "https://a.example/", "title": "A"},
                {"sourceId": "s2", "url": "https://b.example/", "title": None},
            ],
        },
    ]
    assert json.loads(PlainDialect().error("bad", "code")[6:]) == {"type": "error", "error": "bad", "code": "code"}


def test_seed003_dialect() -> None:
    chunks = [
        encode_chunk(c)
        for c in (
            Start(message_id="m1"),
            TextDelta(id="t", delta="Q"),
            ToolInputStart(tool_call_id="c", tool_name="search"),
            ToolInputAvailable(tool_call_id="c", tool_name="search", input={"q": "x"}),
            ToolOutputAvailable(tool_call_id="c", output=[1]),
            SourceUrl(source_id="s1", url="https://a.example/", title="A"),
            Finish(),
            ErrorChunk(error_text="late"),
        )
    ]
    assert _events(Seed003Dialect(), chunks) == [
        {"type": "start", "messageId": "m1"},
        {"type": "content", "delta": "Q"},
        {"type": "tool_call", "toolName": "search", "toolArgs": {"q": "x"}},
        {"type": "tool_result", "toolName": "search", "result": [1]},
        {"type": "end", "messageId": "m1", "sources": [{"sourceId": "s1", "url": "https://a.example/", "title": "A"}]},
        {"type": "error", "error": "stream_error", "message": "late"},
    ]
