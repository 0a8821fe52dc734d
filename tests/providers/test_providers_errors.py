"""Upstream failures become clear `ProviderError`s; retries happen only before the first token."""

from __future__ import annotations

import socket

import pytest

from chatstream.errors import (
    ProviderAuthError,
    ProviderBadRequestError,
    ProviderRateLimitError,
    ProviderResponseError,
    ProviderTimeoutError,
)
from chatstream.providers._retry import RetryPolicy
from chatstream.providers.base import ModelEvent, ModelFinish, ModelText
from chatstream.providers.setup import build_registry
from chatstream.settings import ProviderSettings, Secret, Settings
from tests.providers.conftest import FAST_RETRY, KEY, Upstream, collect, collect_until_error, request

OPENAI_ERROR = {"error": {"message": "Incorrect API key provided: sk-te***", "type": "invalid_request_error"}}
ANTHROPIC_ERROR = {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}


@pytest.mark.parametrize(
    ("name", "body"), [("openai", OPENAI_ERROR), ("groq", OPENAI_ERROR), ("claude", ANTHROPIC_ERROR)]
)
async def test_auth_failure_is_not_retried(upstream: Upstream, name: str, body: dict[str, object]) -> None:
    upstream.enqueue({"status": 401, "json": body})

    _, error = await collect_until_error(upstream.provider(name), request(model=_model(name)))

    assert isinstance(error, ProviderAuthError)
    assert error.upstream_status == 401
    assert error.provider == name
    assert "rejected our credentials" in error.message
    assert ("Incorrect API key" in error.message) or ("invalid x-api-key" in error.message)
    assert len(upstream.requests()) == 1


async def test_bad_request_carries_upstream_message(upstream: Upstream) -> None:
    upstream.enqueue({"status": 400, "json": {"error": {"message": "Invalid 'messages[1].content'"}}})

    _, error = await collect_until_error(upstream.provider("openai"), request())

    assert isinstance(error, ProviderBadRequestError)
    assert error.status_code == 400
    assert "Invalid 'messages[1].content'" in error.message
    assert len(upstream.requests()) == 1


@pytest.mark.parametrize("name", ["openai", "claude"])
async def test_rate_limit_is_retried_before_first_token_honouring_retry_after(upstream: Upstream, name: str) -> None:
    transcript = "openai_text.sse" if name == "openai" else "anthropic_text.sse"
    upstream.enqueue(
        {"status": 429, "headers": {"retry-after-ms": "30"}, "json": {"error": {"message": "slow down"}}},
        {"transcript": transcript},
    )

    events = await collect(upstream.provider(name), request(model=_model(name)))

    assert events[0] == ModelText(text="Hello")
    assert events[-1] == ModelFinish(reason="stop")
    assert len(upstream.requests()) == 2


async def test_rate_limit_beyond_cap_surfaces_with_retry_after(upstream: Upstream) -> None:
    upstream.enqueue({"status": 429, "headers": {"retry-after": "120"}, "json": {"error": {"message": "quota"}}})

    _, error = await collect_until_error(upstream.provider("openai"), request())

    assert isinstance(error, ProviderRateLimitError)
    assert error.retry_after == 120
    assert error.headers == {"Retry-After": "120"}
    assert len(upstream.requests()) == 1  # 120 s is beyond the cap: the client decides, we don't sit on it


async def test_server_errors_are_retried_twice_then_surface(upstream: Upstream) -> None:
    upstream.enqueue(*({"status": 503, "json": {"error": {"message": "overloaded"}}} for _ in range(3)))

    _, error = await collect_until_error(upstream.provider("groq"), request(model="llama-3.1-8b-instant"))

    assert isinstance(error, ProviderResponseError)
    assert error.upstream_status == 503
    assert len(upstream.requests()) == 3


async def test_anthropic_overload_inside_stream_before_content_is_retried(upstream: Upstream) -> None:
    upstream.enqueue({"transcript": "anthropic_overloaded.sse"}, {"transcript": "anthropic_text.sse"})

    events = await collect(upstream.provider("claude"), request(model="claude-sonnet-4-6"))

    assert events[0] == ModelText(text="Hello")
    assert len(upstream.requests()) == 2


async def test_anthropic_529_status_is_retried(upstream: Upstream) -> None:
    upstream.enqueue(
        {"status": 529, "json": {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}},
        {"transcript": "anthropic_text.sse"},
    )

    events = await collect(upstream.provider("claude"), request(model="claude-sonnet-4-6"))

    assert events[-1] == ModelFinish(reason="stop")
    assert len(upstream.requests()) == 2


@pytest.mark.parametrize(
    ("name", "cut_after", "relayed"),
    [
        ("openai", 3, [ModelText(text="Hello"), ModelText(text="! How")]),
        ("claude", 5, [ModelText(text="Hello")]),
    ],
)
async def test_connection_cut_mid_stream_is_not_retried(
    upstream: Upstream, name: str, cut_after: int, relayed: list[ModelEvent]
) -> None:
    transcript = "openai_text.sse" if name == "openai" else "anthropic_text.sse"
    upstream.enqueue({"transcript": transcript, "cut_after": cut_after}, {"transcript": transcript})

    events, error = await collect_until_error(upstream.provider(name), request(model=_model(name)))

    assert (
        events == [ModelText(text="Hello"), ModelText(text="! How")] if name == "openai" else [ModelText(text="Hello")]
    )
    assert isinstance(error, ProviderResponseError)
    assert f"connection to {name} failed" in error.message
    assert len(upstream.requests()) == 1  # the partial answer stands; a retry would repeat tokens


async def test_connection_cut_before_first_token_is_retried(upstream: Upstream) -> None:
    # The role chunk carries no text, so nothing has reached the client when the connection drops.
    upstream.enqueue({"transcript": "openai_text.sse", "cut_after": 1}, {"transcript": "openai_text.sse"})

    events = await collect(upstream.provider("openai"), request())

    assert events[0] == ModelText(text="Hello")
    assert len(upstream.requests()) == 2


async def test_stream_that_ends_without_finishing_is_an_error(upstream: Upstream) -> None:
    upstream.enqueue({"events": ['data: {"choices":[{"index":0,"delta":{"content":"Hel"}}]}\n\n']})

    events, error = await collect_until_error(upstream.provider("openai"), request())

    assert events == [ModelText(text="Hel")]
    assert isinstance(error, ProviderResponseError)
    assert "before the response was complete" in error.message


@pytest.mark.timeout(10)
async def test_read_timeout_is_configurable_and_maps_to_timeout_error(upstream: Upstream) -> None:
    upstream.enqueue({"transcript": "openai_text.sse", "delay_ms": 1000})
    provider = upstream.provider("openai", provider_read_timeout=0.2, retry=RetryPolicy(max_retries=0))

    _, error = await collect_until_error(provider, request())

    assert isinstance(error, ProviderTimeoutError)
    assert error.status_code == 504
    assert len(upstream.requests()) == 1


@pytest.mark.timeout(10)
async def test_connect_failure_is_retried_then_a_clear_error(upstream: Upstream) -> None:
    with socket.socket() as s:  # a port nothing listens on once this socket is closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = Settings(
        providers={"openai": ProviderSettings(api_key=Secret(KEY), base_url=f"http://127.0.0.1:{port}/v1")}
    )
    provider = build_registry(settings, http_client=upstream.http_client, retry=FAST_RETRY).get("openai")

    _, error = await collect_until_error(provider, request())

    assert isinstance(error, ProviderResponseError)
    assert error.retryable
    assert "connection to openai failed" in error.message


def _model(name: str) -> str:
    return {"claude": "claude-sonnet-4-6", "groq": "llama-3.3-70b-versatile"}.get(name, "gpt-4o")
