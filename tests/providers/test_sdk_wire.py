"""Our request is the SDK's own request, on the wire: the adapters build the SDK's request once and reuse it
(`chatstream/providers/_sdk_post.py`), so each provider's request is captured at a raw TCP server next to the one
the SDK's typed call sends (`with_streaming_response.create`, same client settings, same production HTTP client),
and compared: request line and every header, in order, byte for byte; the body as JSON (the SDK orders the
top-level keys by its parameter list, we by our mapping)."""

from __future__ import annotations

import asyncio
import gzip
import json
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

import anthropic
import httpx2
import openai
import pytest

from chatstream.models import Message, MessagePart
from chatstream.providers.base import ProviderRequest, ToolSpec
from chatstream.providers.setup import build_registry, new_http_client
from chatstream.settings import ProviderSettings, Secret, Settings
from tests.providers.conftest import KEY, collect, request, user

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

OPENAI_SSE = (
    b'data: {"id":"c1","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}\n\n'
    b'data: {"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}\n\n'
    b"data: [DONE]\n\n"
)
ANTHROPIC_SSE = (
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"m1","type":"message","role":"assistant",'
    b'"content":[],"model":"claude","stop_reason":null,"usage":{"input_tokens":3,"output_tokens":1}}}\n\n'
    b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
    b'"content_block":{"type":"text","text":""}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"text_delta","text":"hi"}}\n\n'
    b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
    b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},'
    b'"usage":{"output_tokens":1}}\n\n'
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
)
WEATHER = ToolSpec(
    name="getWeather",
    description="Weather for a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
HISTORY = (
    user("Wie ist das Wetter in Köln? 🌦", id="u1"),
    Message(id="a1", conversation_id="c1", role="assistant", parts=(MessagePart(type="text", text="Sonnig."),)),
    user("Und morgen?", id="u2"),
)


class Capture:
    """A raw HTTP/1.1 server on 127.0.0.1: records each request's head and body as received, answers `sse`."""

    def __init__(self, sse: bytes, *, first_sets: bytes = b"") -> None:
        self.sse = sse
        self.first_sets = first_sets
        """A `set-cookie` header line for the first answer (an upstream behind Cloudflare sets one)."""
        self.requests: list[tuple[bytes, bytes]] = []
        self.server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                self.requests.append((head, await reader.readexactly(length)))
                cookie = self.first_sets if len(self.requests) == 1 else b""
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                    + cookie
                    + f"content-length: {len(self.sse)}\r\n\r\n".encode()
                    + self.sse
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def __aenter__(self) -> Capture:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"


@pytest.fixture
async def http_client() -> AsyncIterator[httpx2.AsyncClient]:
    """The production client (aiohttp-backed), so what is compared is what goes out in production."""
    client = new_http_client(Settings())
    yield client
    await client.aclose()


def _split(captured: tuple[bytes, bytes]) -> tuple[list[bytes], Any]:
    head, body = captured
    return head.split(b"\r\n"), json.loads(body)


async def _twice(capture: Capture, send: Any) -> None:
    """Send twice: the second request is the one built from what the first one prepared."""
    await send()
    await send()


async def _ours_twice_then_the_sdks(
    capture: Capture, http_client: httpx2.AsyncClient, name: str, base_url: str, req: ProviderRequest
) -> None:
    """Provider `name`'s request twice (the second built from what the first prepared), then the SDK's own typed
    call with the same body and client settings: `capture.requests` holds the three."""
    settings = Settings(providers={name: ProviderSettings(api_key=Secret(KEY), base_url=base_url)})
    provider = build_registry(settings, http_client=http_client).get(name)

    async def ours() -> None:
        await collect(provider, req)

    await _twice(capture, ours)
    options: dict[str, Any] = {
        "api_key": KEY,
        "base_url": base_url,
        "timeout": httpx2.Timeout(settings.provider_read_timeout, connect=settings.provider_connect_timeout),
        "max_retries": 0,
        "http_client": http_client,
    }
    body = provider.request_body(req)  # type: ignore[attr-defined]
    call: AbstractAsyncContextManager[Any]  # the SDK's own streamed response, unread
    if name == "claude":
        call = anthropic.AsyncAnthropic(**options).messages.with_streaming_response.create(**body)
    else:
        call = openai.AsyncOpenAI(**options).chat.completions.with_streaming_response.create(**body)
    async with call as response:
        await response.read()


def _assert_ours_are_the_sdks(capture: Capture, request_line: bytes, names: set[bytes]) -> None:
    """Our two requests and the SDK's: the same head byte for byte, the same body as JSON."""
    (first, _), (second, _), (theirs, _) = capture.requests
    assert first == second == theirs
    for mine in capture.requests[:2]:
        assert _split(mine)[1] == _split(capture.requests[2])[1]
    lines = theirs.split(b"\r\n")
    assert lines[0] == request_line
    assert names <= {line.split(b":")[0].lower() for line in lines[1:] if line}


async def test_openai_compat_request_is_the_sdks_own(http_client: httpx2.AsyncClient) -> None:
    async with Capture(OPENAI_SSE) as capture:
        req = request(*HISTORY, model="gpt-4o", system="Be brief.", tools=(WEATHER,), max_output_tokens=100)
        await _ours_twice_then_the_sdks(capture, http_client, "openai", f"{capture.url}/v1", req)
    _assert_ours_are_the_sdks(
        capture,
        b"POST /v1/chat/completions HTTP/1.1",
        {b"authorization", b"content-type", b"x-stainless-retry-count", b"user-agent"},
    )


async def test_anthropic_request_is_the_sdks_own(http_client: httpx2.AsyncClient) -> None:
    async with Capture(ANTHROPIC_SSE) as capture:
        req = request(*HISTORY, model="claude-sonnet-4-6", system="Be brief.", tools=(WEATHER,))
        await _ours_twice_then_the_sdks(capture, http_client, "claude", capture.url, req)
    _assert_ours_are_the_sdks(
        capture,
        b"POST /v1/messages HTTP/1.1",
        {b"authorization", b"anthropic-version", b"content-type", b"x-stainless-retry-count"},
    )


async def test_a_cookie_the_upstream_set_goes_back_as_the_sdk_sends_it(http_client: httpx2.AsyncClient) -> None:
    """httpx2 keeps the cookies an upstream sets in the client's jar and sends them back: so does the aiohttp
    path, in the same place among the headers."""
    async with Capture(OPENAI_SSE, first_sets=b"set-cookie: __cf_bm=abc123; Path=/; HttpOnly\r\n") as capture:
        req = request(*HISTORY, model="gpt-4o")
        await _ours_twice_then_the_sdks(capture, http_client, "openai", f"{capture.url}/v1", req)
    (first, _), (second, _), (theirs, _) = capture.requests
    assert b"cookie:" not in first.lower()
    assert b"\r\ncookie: __cf_bm=abc123\r\n" in second
    assert second == theirs


async def test_a_compressed_stream_is_decoded(http_client: httpx2.AsyncClient) -> None:
    """The SDK asks for gzip (`accept-encoding`); an upstream that uses it is decoded as httpx2 decodes it."""
    async with Capture(gzip.compress(OPENAI_SSE), first_sets=b"content-encoding: gzip\r\n") as capture:
        settings = Settings(providers={"openai": ProviderSettings(api_key=Secret(KEY), base_url=f"{capture.url}/v1")})
        provider = build_registry(settings, http_client=http_client).get("openai")
        events = await collect(provider, request(*HISTORY, model="gpt-4o"))
    assert "".join(getattr(e, "text", "") for e in events) == "hi"
