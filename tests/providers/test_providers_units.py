"""Pure pieces: SSE framing, the status table, the retry policy, titles and mood prompts."""

from __future__ import annotations

import pytest

from chatstream.errors import (
    ProviderAuthError,
    ProviderBadRequestError,
    ProviderRateLimitError,
    ProviderResponseError,
    ProviderTimeoutError,
)
from chatstream.providers._retry import RetryPolicy
from chatstream.providers._sse import SSEDecoder
from chatstream.providers._upstream_errors import error_for_status, parse_retry_after
from chatstream.providers.mock import MockProvider
from chatstream.providers.prompts import system_prompt
from chatstream.providers.titles import clean_title, generate_title, heuristic_title
from tests.providers.conftest import Upstream


def test_sse_decoder_handles_any_split_crlf_comments_and_multiline_data() -> None:
    body = b': keep-alive\r\n\r\nevent: message_start\r\ndata: {"a":\r\ndata: 1}\r\n\r\ndata: [DONE]\r\n\r\n'
    expected = [("message_start", b'{"a":\n1}'), ("message", b"[DONE]")]
    for size in (1, 2, 3, 7, len(body)):
        decoder = SSEDecoder()
        events = [e for i in range(0, len(body), size) for e in decoder.feed(body[i : i + size])]
        assert events == expected, size
        assert not decoder.pending
    decoder = SSEDecoder()
    decoder.feed(b'data: {"cut')
    assert decoder.pending


@pytest.mark.parametrize(
    ("status", "cls", "retryable"),
    [
        (400, ProviderBadRequestError, False),
        (401, ProviderAuthError, False),
        (403, ProviderAuthError, False),
        (404, ProviderBadRequestError, False),
        (408, ProviderTimeoutError, True),
        (422, ProviderBadRequestError, False),
        (429, ProviderRateLimitError, True),
        (500, ProviderResponseError, True),
        (504, ProviderTimeoutError, True),
        (529, ProviderResponseError, True),
        (599, ProviderResponseError, True),
        (418, ProviderBadRequestError, False),
    ],
)
def test_one_status_table(status: int, cls: type, retryable: bool) -> None:
    error = error_for_status(status, "detail", provider="openai", retry_after=2.0)
    assert type(error) is cls
    assert error.retryable is retryable
    assert error.upstream_status == status
    assert f"(HTTP {status}): detail" in error.message


def test_retry_after_headers() -> None:
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # in the past
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


def test_retry_policy() -> None:
    policy = RetryPolicy()
    server = ProviderResponseError("x", provider="p", retryable=True)
    delays = [policy.delay(n, server) for n in range(3)]
    assert delays[2] is None  # two retries, then give up
    assert 0.375 <= delays[0] <= 0.5  # type: ignore[operator]
    assert 0.75 <= delays[1] <= 1.0  # type: ignore[operator]
    assert RetryPolicy(max_retries=10).delay(9, server) <= 8.0  # type: ignore[operator]
    assert policy.delay(0, ProviderRateLimitError("x", provider="p", retry_after=3)) == 3
    assert policy.delay(0, ProviderRateLimitError("x", provider="p", retry_after=600)) is None
    assert policy.delay(0, ProviderAuthError("x", provider="p")) is None


def test_titles_are_cleaned_and_bounded() -> None:
    assert clean_title('"Weather in Paris."') == "Weather in Paris"
    assert clean_title("Title: **Trip planning**\nmore") == "Trip planning"
    assert clean_title("\u201cR\u00e9sum\u00e9 tips\u201d") == "R\u00e9sum\u00e9 tips"
    assert len(clean_title("word " * 40)) <= 60
    assert heuristic_title("  what is the capital of france? tell me more.") == "What is the capital of france"
    assert heuristic_title("mock:tokens=5") == "New chat"
    long = heuristic_title("supercalifragilistic " * 10)
    assert len(long) <= 60
    assert long.endswith("\u2026")


async def test_generate_title_through_the_provider(upstream: Upstream) -> None:
    events = [
        'data: {"choices":[{"index":0,"delta":{"content":"\\"Paris weather"}}]}\n\n',
        'data: {"choices":[{"index":0,"delta":{"content":" forecast.\\""},"finish_reason":"stop"}]}\n\n',
        "data: [DONE]\n\n",
    ]
    upstream.enqueue({"events": events})

    title = await generate_title(upstream.provider("groq"), "llama-3.3-70b-versatile", "Weather in Paris tomorrow?")

    assert title == "Paris weather forecast"
    [seen] = upstream.requests()
    assert seen["body"]["max_tokens"] == 32
    assert "title" in seen["body"]["messages"][0]["content"]
    assert seen["body"]["messages"][1] == {"role": "user", "content": "Weather in Paris tomorrow?"}
    assert "tools" not in seen["body"]


async def test_generate_title_falls_back_on_failure_and_for_mock(upstream: Upstream) -> None:
    upstream.enqueue({"status": 401, "json": {"error": {"message": "bad key"}}})

    assert await generate_title(upstream.provider("openai"), "gpt-4o", "Plan a trip to Rome") == "Plan a trip to Rome"
    assert await generate_title(MockProvider(), "mock-1", "hello there. more") == "Hello there"


async def test_generate_title_strips_thinking_suffix(upstream: Upstream) -> None:
    upstream.enqueue({"transcript": "anthropic_text.sse"})

    title = await generate_title(upstream.provider("claude"), "claude-sonnet-4-6-thinking", "hi")

    assert title == "Hello! How can I help"
    [seen] = upstream.requests()
    assert seen["body"]["model"] == "claude-sonnet-4-6"
    assert "thinking" not in seen["body"]


def test_system_prompt_per_mood() -> None:
    serious, friendly, normal = (system_prompt(m, web_search=False) for m in ("serious", "friendly", "normal"))
    assert len({serious, friendly, normal}) == 3
    assert "concise" in serious
    assert "friendly" in friendly
    assert system_prompt("unknown", web_search=False) == normal
    assert "web_search" in system_prompt("normal", web_search=True)
    assert "web_search" not in normal
