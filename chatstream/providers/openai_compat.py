"""`OpenAICompatProvider`: the OpenAI chat-completions wire format, for `openai`, `groq`, `openrouter`, `ollama`
and `google`. The backends differ only in their `ProviderConfig` row.

The official SDK (`AsyncOpenAI`) builds and sends the request, owns auth and raises status errors; the body is
read through its streaming-response API and decoded with msgspec, because building SDK objects per chunk
dominated the per-token cost (`bench/README.md`). SDK and httpx2 types and exceptions stay in this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
import openai
from openai._models import FinalRequestOptions

from chatstream.errors import ProviderError, ProviderResponseError
from chatstream.providers._openai_wire import ChatChunk, ChunkState, build_messages, build_tools, decode_chunk
from chatstream.providers._retry import RetryPolicy, stream_with_retries
from chatstream.providers._sdk_post import SdkPost
from chatstream.providers._sse import SSEDecoder
from chatstream.providers._upstream_errors import SdkExceptions, error_for_status, sdk_errors

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator

    import httpx2

    from chatstream.providers.base import ModelEvent, ProviderRequest
    from chatstream.providers.catalog import ProviderConfig

_SDK_ERRORS = SdkExceptions(
    openai.APIStatusError, openai.APITimeoutError, openai.APIConnectionError, openai.OpenAIError
)

__all__ = ["OpenAICompatProvider"]


class OpenAICompatProvider:
    """One OpenAI-compatible backend, configured by its catalog row."""

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
        self._client = openai.AsyncOpenAI(
            # Ollama needs no key, but the SDK refuses to start without one (and would read OPENAI_API_KEY).
            api_key=api_key or "unused",
            base_url=base_url or config.base_url,
            default_headers=config.extra_headers or None,
            timeout=timeout,
            max_retries=0,  # `stream_with_retries` is the one retry policy (it also covers in-stream errors)
            http_client=http_client,
        )
        self._post = SdkPost(self._client, "/chat/completions", FinalRequestOptions)
        """The SDK's request, built by the SDK once and reused with each body (`_sdk_post`)."""

    def stream(self, request: ProviderRequest) -> AsyncIterator[ModelEvent]:
        return stream_with_retries(lambda: self._attempt(request), self.retry, provider=self.name)

    async def aclose(self) -> None:
        # The httpx2 client is shared by every provider and closed by the registry that owns it.
        return None

    def request_body(self, request: ProviderRequest) -> dict[str, Any]:
        """The JSON body of the chat completions request (public for tests and the benchmark)."""
        body: dict[str, Any] = {"model": request.model, "messages": build_messages(request), "stream": True}
        if request.tools:
            body["tools"] = build_tools(request.tools)
        if request.max_output_tokens is not None:
            body[self.config.max_tokens_field] = request.max_output_tokens
        if self.config.stream_usage:
            body["stream_options"] = {"include_usage": True}
        if request.output is not None:
            # Structured outputs: OpenAI, Groq, OpenRouter, Ollama and Gemini's compatible endpoint all take
            # this form; the object's JSON arrives as ordinary content deltas.
            schema: dict[str, Any] = {"name": request.output.name, "schema": request.output.schema, "strict": True}
            if request.output.description:
                schema["description"] = request.output.description
            body["response_format"] = {"type": "json_schema", "json_schema": schema}
        return body

    async def _attempt(self, request: ProviderRequest) -> AsyncGenerator[ModelEvent, None]:
        body = self.request_body(request)
        state = ChunkState(self.config.reasoning_field)
        decoder = SSEDecoder()
        done = False
        with sdk_errors(self.name, _SDK_ERRORS):
            # The SDK's own request with the body we built: `chat.completions.create` would first walk the whole
            # message history through its TypedDict transform (a sixth of the per-request CPU), and even its
            # generic `post` rebuilds headers and URL per request (another third; `_sdk_post`). The SDK's HTTP
            # client sends it, and a status error is the SDK's.
            response = await self._post.send(body)
            try:
                async for raw in response:
                    for _event, data in decoder.feed(raw):
                        if done:
                            continue
                        if data == b"[DONE]":
                            done = True
                            continue
                        chunk = self._decode(data)
                        if chunk.error is not None:
                            for event in state.interrupted(chunk):
                                yield event
                            raise _stream_error(self.name, chunk.error.code, chunk.error.message)
                        for event in state.feed(chunk):
                            yield event
            finally:
                await response.aclose()
        if not done and state.finish_reason is None:
            raise ProviderResponseError(
                f"{self.name} ended the stream before the response was complete", provider=self.name, retryable=True
            )
        for event in state.finish():
            yield event

    def _decode(self, data: bytes) -> ChatChunk:
        try:
            chunk = decode_chunk(data)
        except msgspec.DecodeError as exc:
            raise ProviderResponseError(f"{self.name} sent an unreadable chunk: {exc}", provider=self.name) from exc
        return chunk


def _stream_error(provider: str, code: int | str | None, message: str | None) -> ProviderError:
    """An error sent inside a 200 stream (OpenRouter does this); its `code` is often an HTTP status."""
    if isinstance(code, int) and 400 <= code < 600:
        return error_for_status(code, message, provider=provider)
    return ProviderResponseError(
        f"{provider} reported an error mid-stream: {message or code or 'unknown'}", provider=provider
    )
