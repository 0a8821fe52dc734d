"""Whole runs through the real adapters against the fake upstream: what a provider's stream becomes in the
stored message, and what the next request sends back. The app runs in-process; the upstream is the fake."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from litestar.testing import AsyncTestClient

from chatstream import create_app
from chatstream.settings import ProviderSettings, Secret
from tests.providers.conftest import KEY, Upstream
from tests.providers.test_providers_anthropic import REDACTED_1, REDACTED_2, SIGNATURE_3
from tests.support.settings import ALICE, make_settings, services_of
from tests.support.sse import Frame, parse_frames

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from chatstream.models import Message


def _client(upstream: Upstream, name: str) -> AbstractAsyncContextManager[AsyncTestClient[Any]]:
    settings = make_settings(
        providers={name: ProviderSettings(api_key=Secret(KEY), base_url=upstream.base_url(name))},
        title_generation=False,  # the fake's request log then holds only the answers' requests
    )
    return AsyncTestClient(create_app(settings))


async def _chat(client: AsyncTestClient[Any], text: str, **extra: Any) -> tuple[str, list[Frame]]:
    r = await client.post("/api/chat", json={"parts": [{"type": "text", "text": text}], **extra}, headers=ALICE)
    assert r.status_code == 200, r.text
    frames = parse_frames(r.text)
    assert frames[-1].data == "[DONE]", r.text
    thread = r.headers["x-thread-id"]
    services = services_of(client.app)
    for _ in range(500):  # until the run has released the conversation (just after its final frames)
        if await services.registry.active(thread) is None:
            break
        await asyncio.sleep(0.01)
    return thread, frames[:-1]


async def _answer(client: AsyncTestClient[Any], thread: str) -> Message:
    messages = await services_of(client.app).store.list_messages(thread)
    return messages[-1]


async def test_anthropic_reasoning_blocks_in_a_row_stay_apart_and_go_back_unchanged(upstream: Upstream) -> None:
    upstream.enqueue({"transcript": "anthropic_redacted_sequence.sse"})  # the next answer is generated
    model = {"provider": "claude", "model": "claude-sonnet-4-6-thinking"}
    async with _client(upstream, "claude") as client:
        thread, frames = await _chat(client, "Think, then answer.", **model)
        answer = await _answer(client, thread)
        await _chat(client, "And then?", threadId=thread, **model)

    reasoning = [p for p in answer.parts if p.type == "reasoning"]
    assert [(p.text, p.provider_metadata) for p in reasoning] == [
        ("", {"anthropic": {"redactedData": REDACTED_1}}),
        ("", {"anthropic": {"redactedData": REDACTED_2}}),
        ("Two blocks were redacted; answer briefly.", {"anthropic": {"signature": SIGNATURE_3}}),
    ]
    # The stream carries the same three parts, each closed with its own metadata.
    starts = [f.data["id"] for f in frames if f.type == "reasoning-start"]
    ends = [(f.data["id"], f.data["providerMetadata"]) for f in frames if f.type == "reasoning-end"]
    assert len(set(starts)) == 3
    assert ends == [(i, p.provider_metadata) for i, p in zip(starts, reasoning, strict=True)]

    first, second = upstream.requests()
    assert first["body"]["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Think, then answer."}]}]
    assert second["body"]["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Think, then answer."}]},
        {
            "role": "assistant",
            "content": [
                {"type": "redacted_thinking", "data": REDACTED_1},
                {"type": "redacted_thinking", "data": REDACTED_2},
                {"type": "thinking", "thinking": "Two blocks were redacted; answer briefly.", "signature": SIGNATURE_3},
                {"type": "text", "text": "Here is the answer."},
            ],
        },
        {"role": "user", "content": [{"type": "text", "text": "And then?"}]},
    ]


async def test_openrouter_usage_on_error_chunk_and_earlier_finish_are_kept(upstream: Upstream) -> None:
    upstream.enqueue({"transcript": "openrouter_length_then_error.sse"})
    async with _client(upstream, "openrouter") as client:
        thread, frames = await _chat(client, "Write a lot.", provider="openrouter", model="google/gemini-2.5-flash")
        answer = await _answer(client, thread)
        metrics = services_of(client.app).metrics

    assert frames[-1].type == "error"
    assert "Provider disconnected unexpectedly" in frames[-1].data["errorText"]
    assert answer.text == "The long answer"
    assert answer.usage is not None
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (31, 64)
    assert answer.finish_reason == "length"  # the model's own reason, reported before the error
    assert answer.error is not None and "Provider disconnected unexpectedly" in answer.error
    assert metrics.tokens["output"] == 64
