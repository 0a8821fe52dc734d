"""Stored conversations become each wire format's history: files, multi-step assistant messages whose tool
parts carry both the call and its result (ok, error, denied), and Anthropic thinking signatures."""

from __future__ import annotations

from typing import Any

from chatstream.models import Message, MessagePart
from tests.providers.conftest import Upstream, collect, request, user

IMG = "data:image/png;base64,iVBORw0KGgo="
PDF = "data:application/pdf;base64,JVBERi0xLjQ="
TXT = "data:text/plain;base64,aGVsbG8gd29ybGQ="  # "hello world"


def _conversation() -> tuple[Message, ...]:
    first = user(
        "What's the weather?",
        MessagePart(type="file", media_type="image/png", url=IMG, filename="map.png"),
        MessagePart(type="file", media_type="application/pdf", url=PDF, filename="doc.pdf"),
        MessagePart(type="file", media_type="text/plain", url=TXT, filename="notes.txt"),
    )
    answer = Message(
        id="a1",
        conversation_id="c1",
        role="assistant",
        parts=(
            MessagePart(type="step-start"),
            MessagePart(type="reasoning", text="Need weather.", provider_metadata={"anthropic": {"signature": "sig1"}}),
            MessagePart(type="reasoning", text="Unsigned thoughts from another provider."),
            MessagePart(type="text", text="Let me check."),
            MessagePart(
                type="tool-getWeather",
                tool_call_id="call_1",
                state="output-available",
                input={"city": "Paris"},
                output={"temp": 21},
            ),
            MessagePart(type="step-start"),
            MessagePart(
                type="tool-getWeather",
                tool_call_id="call_2",
                state="output-error",
                input={"city": "Atlantis"},
                error_text="no such city",
            ),
            MessagePart(
                type="tool-web_fetch", tool_call_id="call_3", state="output-denied", input={"url": "http://x.test"}
            ),
            MessagePart(type="step-start"),
            MessagePart(type="text", text="Paris is 21°C."),
        ),
    )
    return first, answer, user("Thanks! And tomorrow?", id="u2")


async def test_openai_history(upstream: Upstream) -> None:
    upstream.enqueue({"transcript": "openai_text.sse"})

    await collect(upstream.provider("openai"), request(*_conversation(), system="S"))

    [seen] = upstream.requests()
    getWeather = "getWeather"
    assert seen["body"]["messages"] == [
        {"role": "system", "content": "S"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What's the weather?"},
                {"type": "image_url", "image_url": {"url": IMG}},
                {"type": "file", "file": {"filename": "doc.pdf", "file_data": PDF}},
                {"type": "text", "text": "<file name='notes.txt'>\nhello world\n</file>"},
            ],
        },
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [_openai_call("call_1", getWeather, '{"city":"Paris"}')],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp":21}'},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                _openai_call("call_2", getWeather, '{"city":"Atlantis"}'),
                _openai_call("call_3", "web_fetch", '{"url":"http://x.test"}'),
            ],
        },
        {"role": "tool", "tool_call_id": "call_2", "content": "Error: no such city"},
        {"role": "tool", "tool_call_id": "call_3", "content": "The user denied this tool call."},
        {"role": "assistant", "content": "Paris is 21°C."},
        {"role": "user", "content": "Thanks! And tomorrow?"},
    ]


async def test_anthropic_history(upstream: Upstream) -> None:
    upstream.enqueue({"transcript": "anthropic_text.sse"})

    await collect(upstream.provider("claude"), request(*_conversation(), model="claude-sonnet-4-6"))

    [seen] = upstream.requests()
    assert seen["body"]["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What's the weather?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                {
                    "type": "document",
                    "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0xLjQ="},
                },
                {
                    "type": "document",
                    "source": {"type": "text", "media_type": "text/plain", "data": "hello world"},
                    "title": "notes.txt",
                },
            ],
        },
        {
            "role": "assistant",
            "content": [
                # The signed thinking goes back (Anthropic requires it inside a tool loop); the unsigned is dropped.
                {"type": "thinking", "thinking": "Need weather.", "signature": "sig1"},
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "call_1", "name": "getWeather", "input": {"city": "Paris"}},
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": '{"temp":21}', "is_error": False}],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "call_2", "name": "getWeather", "input": {"city": "Atlantis"}},
                {"type": "tool_use", "id": "call_3", "name": "web_fetch", "input": {"url": "http://x.test"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_2", "content": "no such city", "is_error": True},
                {
                    "type": "tool_result",
                    "tool_use_id": "call_3",
                    "content": "The user denied this tool call.",
                    "is_error": False,
                },
            ],
        },
        {"role": "assistant", "content": [{"type": "text", "text": "Paris is 21°C."}]},
        {"role": "user", "content": [{"type": "text", "text": "Thanks! And tomorrow?"}]},
    ]


async def test_assistant_message_in_progress_ends_with_tool_results(upstream: Upstream) -> None:
    """The run engine's next step: the assistant message being built is the last message, its tool part
    answered (here: denied at approval with a reason), and the tool results close the history."""
    in_progress = Message(
        id="a2",
        conversation_id="c1",
        role="assistant",
        parts=(
            MessagePart(type="step-start"),
            MessagePart(type="reasoning", text="Redacted.", provider_metadata={"anthropic": {"redactedData": "RD"}}),
            MessagePart(
                type="tool-delete_files",
                tool_call_id="toolu_9",
                state="approval-responded",
                input={"path": "/"},
                approval={"id": "ap1", "approved": False, "reason": "too risky"},
            ),
        ),
    )
    upstream.enqueue({"transcript": "anthropic_text.sse"}, {"transcript": "openai_text.sse"})

    await collect(upstream.provider("claude"), request(user("clean up"), in_progress, model="claude-sonnet-4-6"))
    await collect(upstream.provider("openai"), request(user("clean up"), in_progress))

    claude, openai = (r["body"]["messages"] for r in upstream.requests())
    assert claude[1:] == [
        {
            "role": "assistant",
            "content": [
                {"type": "redacted_thinking", "data": "RD"},
                {"type": "tool_use", "id": "toolu_9", "name": "delete_files", "input": {"path": "/"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_9",
                    "content": "The user denied this tool call. too risky",
                    "is_error": False,
                }
            ],
        },
    ]
    assert openai[-1] == {
        "role": "tool",
        "tool_call_id": "toolu_9",
        "content": "The user denied this tool call. too risky",
    }


def _openai_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


async def test_signed_thinking_without_text_goes_back_as_it_came(upstream: Upstream) -> None:
    """With thinking display omitted Claude sends a `thinking` block with empty text and a signature; dropping
    it (as unsigned reasoning is dropped) would change the history Claude checks."""
    answer = Message(
        id="a1",
        conversation_id="c1",
        role="assistant",
        parts=(
            MessagePart(type="step-start"),
            MessagePart(type="reasoning", text="", provider_metadata={"anthropic": {"signature": "sig-omitted"}}),
            MessagePart(type="text", text="42."),
        ),
    )
    upstream.enqueue({"transcript": "anthropic_text.sse"})

    await collect(upstream.provider("claude"), request(user("q"), answer, user("again"), model="claude-sonnet-4-6"))

    [seen] = upstream.requests()
    assert seen["body"]["messages"][1] == {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "", "signature": "sig-omitted"},
            {"type": "text", "text": "42."},
        ],
    }
