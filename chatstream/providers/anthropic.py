"""`AnthropicProvider`: the Anthropic messages wire format, for `claude`.

The official SDK (`AsyncAnthropic`) builds and sends the request, owns auth and raises status errors; the event
stream is read through its streaming-response API and decoded with msgspec (see `bench/README.md`). A model id
ending in `-thinking` is our name for the same model with extended thinking on. SDK and httpx2 types and
exceptions stay in this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anthropic
import msgspec
from anthropic._models import FinalRequestOptions

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
from chatstream.providers._sdk_post import SdkPost
from chatstream.providers._sse import SSEDecoder
from chatstream.providers._upstream_errors import SdkExceptions, error_for_status, sdk_errors
from chatstream.providers.base import ModelFinish, ModelText, ModelToolCall, ModelToolCallDelta, ModelToolCallStart

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator

    import httpx2

    from chatstream.providers.base import ModelEvent, ProviderRequest
    from chatstream.providers.catalog import ProviderConfig

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

    generates_images = False

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
        self._post = SdkPost(self._client, "/v1/messages", FinalRequestOptions)
        """The SDK's request, built by the SDK once and reused with each body (`_sdk_post`)."""

    def stream(self, request: ProviderRequest) -> AsyncIterator[ModelEvent]:
        events = stream_with_retries(lambda: self._attempt(request), self.retry, provider=self.name)
        return events if request.output is None else _structured(events, request.output.name)

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
        if request.output is not None:
            # Structured output is a forced call of a tool whose input is the object (`_structured` streams
            # that input as the answer's text). Anthropic refuses a forced tool call with thinking on.
            output = request.output
            tool = {
                "name": output.name,
                "description": output.description or output.name,
                "input_schema": output.schema,
            }
            body["tools"] = [*body.get("tools", ()), tool]
            body["tool_choice"] = {"type": "tool", "name": output.name}
            body.pop("thinking", None)
        return body

    async def _attempt(self, request: ProviderRequest) -> AsyncGenerator[ModelEvent, None]:
        body = self.request_body(request)
        state = EventState()
        decoder = SSEDecoder()
        stopped = False
        with sdk_errors(self.name, _SDK_ERRORS):
            # As in the OpenAI adapter: the SDK's own request, built once, with the body we built (skipping the
            # params transform of `messages.create`); the SDK's client sends it and raises its status errors.
            response = await self._post.send(body)
            try:
                async for raw in response:
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


async def _structured(events: AsyncIterator[ModelEvent], name: str) -> AsyncGenerator[ModelEvent, None]:
    """The forced `name` tool call of a structured-output request, as the text of the answer: its input's
    JSON deltas become `ModelText` (the whole input, if it came in one piece), and the call's `tool_use`
    stop an ordinary `stop`."""
    streamed: dict[str, bool] = {}
    async for event in events:
        match event:
            case ModelToolCallStart(id=call_id, name=called) if called == name:
                streamed[call_id] = False
            case ModelToolCallDelta(id=call_id, delta=delta) if call_id in streamed:
                streamed[call_id] = True
                yield ModelText(text=delta)
            case ModelToolCall(id=call_id, arguments=arguments) if call_id in streamed:
                if not streamed[call_id] and arguments:
                    yield ModelText(text=arguments)
            case ModelFinish(reason="tool-calls") if streamed:
                yield ModelFinish(reason="stop")
            case _:
                yield event
