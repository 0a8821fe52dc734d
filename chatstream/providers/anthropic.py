"""`AnthropicProvider`: the Anthropic messages wire format, for `claude`.

The official SDK (`AsyncAnthropic`) builds and sends the request, owns auth and raises status errors; the event
stream is read through its streaming-response API and decoded with msgspec (see `bench/README.md`). A model id
ending in `-thinking` is our name for the same model with extended thinking on. SDK and httpx2 types and
exceptions stay in this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anthropic
import httpx2
import msgspec

from chatstream.errors import ProviderResponseError
from chatstream.providers._anthropic_wire import (
    DECODERS,
    ERROR_STATUS,
    EventState,
    StreamError,
    build_messages,
    build_tools,
)
from chatstream.providers._retry import RetryPolicy, stream_with_retries
from chatstream.providers._sse import SSEDecoder
from chatstream.providers._upstream_errors import SdkExceptions, error_for_status, sdk_errors

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator

    from chatstream.providers.base import ModelEvent, ProviderRequest
    from chatstream.providers.catalog import ProviderConfig

# Asks the SDK to hand back the unread streaming response (what `with_streaming_response` sets).
_STREAM_RAW = {"X-Stainless-Raw-Response": "stream"}

_SDK_ERRORS = SdkExceptions(
    anthropic.APIStatusError, anthropic.APITimeoutError, anthropic.APIConnectionError, anthropic.AnthropicError
)

__all__ = ["AnthropicProvider"]

THINKING_SUFFIX = "-thinking"
DEFAULT_MAX_TOKENS = 4096
THINKING_BUDGET = 4096
"""Tokens Claude may spend thinking; `max_tokens` must exceed it, so thinking requests get more room."""
THINKING_MAX_TOKENS = 16000
# Models on which Anthropic deprecated `thinking.type=enabled` for `adaptive` (the SDK warns otherwise).
ADAPTIVE_THINKING = ("claude-opus-4-6", "claude-mythos")


class AnthropicProvider:
    """Claude through the Anthropic messages API."""

    def __init__(
        self,
        config: ProviderConfig,
        *,
        api_key: str | None,
        base_url: str | None = None,
        http_client: httpx2.AsyncClient,
        timeout: httpx2.Timeout,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.name = config.name
        self.config = config
        self.retry = retry or RetryPolicy()
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key or "unused",  # explicit, so the SDK never goes looking for credentials on disk
            base_url=base_url or config.base_url,
            default_headers=config.extra_headers or None,
            timeout=timeout,
            max_retries=0,  # `stream_with_retries` is the one retry policy (it also covers in-stream errors)
            http_client=http_client,
        )

    def stream(self, request: ProviderRequest) -> AsyncIterator[ModelEvent]:
        return stream_with_retries(lambda: self._attempt(request), self.retry, provider=self.name)

    async def aclose(self) -> None:
        # The httpx2 client is shared by every provider and closed by the registry that owns it.
        return None

    def request_body(self, request: ProviderRequest) -> dict[str, Any]:
        """The JSON body of the messages request (public for tests and the benchmark)."""
        model = request.model
        body: dict[str, Any] = {"messages": build_messages(request), "stream": True}
        if model.endswith(THINKING_SUFFIX):
            model = model[: -len(THINKING_SUFFIX)]
            if model.startswith(ADAPTIVE_THINKING):
                body["thinking"] = {"type": "adaptive"}
            else:
                body["thinking"] = {"type": "enabled", "budget_tokens": THINKING_BUDGET}
            body["max_tokens"] = max(request.max_output_tokens or THINKING_MAX_TOKENS, THINKING_BUDGET + 1024)
        else:
            body["max_tokens"] = request.max_output_tokens or DEFAULT_MAX_TOKENS
        body["model"] = model
        if request.system:
            body["system"] = request.system
        if request.tools:
            body["tools"] = build_tools(request.tools)
        return body

    async def _attempt(self, request: ProviderRequest) -> AsyncGenerator[ModelEvent, None]:
        body = self.request_body(request)
        state = EventState()
        decoder = SSEDecoder()
        stopped = False
        with sdk_errors(self.name, _SDK_ERRORS):
            # As in the OpenAI adapter: the SDK's generic `post` with the body we built (skipping the params
            # transform of `messages.create`); the SDK still sends, authenticates and raises status errors.
            response = await self._client.post(
                "/v1/messages", cast_to=httpx2.Response, body=body, options={"headers": _STREAM_RAW}
            )
            try:
                async for raw in response.aiter_bytes():
                    for name, data in decoder.feed(raw):
                        if stopped:
                            continue
                        if name == "message_stop":
                            stopped = True
                            continue
                        for event in state.feed(self._decode(name, data)):
                            yield event
            finally:
                await response.aclose()
        if not stopped:
            raise ProviderResponseError(
                f"{self.name} ended the stream before the response was complete", provider=self.name, retryable=True
            )
        for event in state.finish():
            yield event

    def _decode(self, name: str, data: bytes) -> object:
        decoder = DECODERS.get(name)
        if decoder is None:
            return None  # `ping` and event types newer than this code
        try:
            event = decoder.decode(data)
        except msgspec.DecodeError as exc:
            raise ProviderResponseError(f"{self.name} sent an unreadable event: {exc}", provider=self.name) from exc
        if isinstance(event, StreamError):
            status = ERROR_STATUS.get(event.error.type, 500)
            raise error_for_status(status, event.error.message or event.error.type, provider=self.name)
        return event
