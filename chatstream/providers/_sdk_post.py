"""A streaming POST to one SDK endpoint, as the SDK would send it, with the SDK's per-request work done once.

The SDKs (`openai`, `anthropic`: the same Stainless client underneath) rebuild every request from scratch: options
models copied, default, auth and platform headers merged, the base URL re-parsed and re-joined, httpx2's own
header and URL normalisation on top. At a few hundred microseconds of CPU per request that was a third of a run's
start-up (`bench/README.md`, `bench/run_start.py`). Here the SDK builds the request once, through its own
`_prepare_options` / `_build_request` / `_prepare_request`, and every later one reuses its URL, headers and
timeout with a new body; it is sent through the SDK's own HTTP client, and a non-2xx answer raises the SDK's own
status error (`_make_status_error_from_response`). Transport errors are httpx2's, as from the SDK's `post`
(`sdk_errors` maps both). The wire-equality tests (`tests/providers/test_sdk_wire.py`) hold the result byte for
byte to what the SDK sends itself.

What is reused is only valid for static credentials, which is how the adapters build their clients (an
`api_key` string); cookies the upstream set on the shared client are still sent, as httpx2 would.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Protocol

import httpx2
import msgspec

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from contextlib import AbstractContextManager

__all__ = ["SdkPost", "body_chunks"]

_STREAM_RAW = {"X-Stainless-Raw-Response": "stream"}
"""What `with_streaming_response` sets: the SDK hands back the unread response (and sends this header)."""

_encode = msgspec.json.Encoder().encode


class _StainlessClient(Protocol):
    """The parts of `openai.AsyncOpenAI` / `anthropic.AsyncAnthropic` a request is built and sent with."""

    @property
    def _client(self) -> httpx2.AsyncClient: ...

    async def _prepare_options(self, options: Any) -> Any: ...

    def _build_request(self, options: Any, *, retries_taken: int = 0) -> httpx2.Request: ...

    async def _prepare_request(self, request: httpx2.Request) -> None: ...

    def _make_status_error_from_response(self, response: httpx2.Response) -> Exception: ...

    def _idempotency_key(self) -> str: ...


class _Template(msgspec.Struct, frozen=True):
    url: httpx2.URL
    headers: httpx2.Headers
    extensions: dict[str, Any]
    idempotency_header: str | None
    """Set when the SDK sends a fresh idempotency key with every request (neither does today): so do we."""


class SdkPost:
    """`POST path` on `client`, streamed, with a JSON body: `await SdkPost(...).send(body)`."""

    def __init__(self, client: _StainlessClient, path: str, options_type: type[Any]) -> None:
        """`options_type` is the SDK's `FinalRequestOptions` (`openai._models`, `anthropic._models`)."""
        self._sdk = client
        self._path = path
        self._options_type = options_type
        self._template: _Template | None = None

    async def _prepare(self) -> _Template:
        """The SDK's own request for this endpoint, built once (as its `post` builds it; the body aside)."""
        sdk = self._sdk
        options = self._options_type.construct(method="post", url=self._path, json_data={}, headers=_STREAM_RAW)
        options = await sdk._prepare_options(options)
        request = sdk._build_request(options, retries_taken=0)
        await sdk._prepare_request(request)
        headers = request.headers.copy()
        # Per body: httpx2 puts both back, in front, as in the SDK's own request.
        for auto in ("host", "content-length"):
            if auto in headers:
                del headers[auto]
        idempotency_header: str | None = getattr(sdk, "_idempotency_header", None)
        if idempotency_header and idempotency_header in headers:
            del headers[idempotency_header]
        return _Template(
            url=request.url,
            headers=headers,
            extensions=dict(request.extensions),
            idempotency_header=idempotency_header or None,
        )

    def build(self, body: object, template: _Template) -> httpx2.Request:
        """The request for `body` (public for the wire tests)."""
        client = self._sdk._client
        cookies = client.cookies
        headers = template.headers
        if template.idempotency_header is not None:
            headers = headers.copy()
            headers[template.idempotency_header] = self._sdk._idempotency_key()
        return httpx2.Request(
            "POST",
            template.url,
            headers=headers,
            content=_encode(body),
            cookies=cookies if cookies else None,
            extensions=dict(template.extensions),
        )

    async def template(self) -> _Template:
        if self._template is None:
            self._template = await self._prepare()
        return self._template

    async def send(self, body: object) -> httpx2.Response:
        """Send `body`; the response is unread (the caller reads and closes it). A non-2xx status raises the
        SDK's status error, after reading its body, as the SDK does."""
        request = self.build(body, await self.template())
        response = await self._sdk._client.send(request, stream=True)
        if response.status_code >= 400:
            await response.aread()
            raise self._sdk._make_status_error_from_response(response)
        return response


def body_chunks(response: httpx2.Response) -> AsyncIterator[bytes]:
    """The body of a streamed `response` (from `SdkPost.send`), as the bytes arrive.

    Through the SDKs' aiohttp transport (`DefaultAioHttpClient`, what `providers.setup` builds) an unencoded
    body is read straight from aiohttp's stream: all that is buffered at each wake-up, where
    `Response.aiter_bytes` passes every piece through five async generators (httpx2's decoder, chunker and
    bound stream, the transport's `iter_chunked`), about a fifth of a paced token's CPU (`bench/frame_cost.py`).
    aiohttp's errors are mapped to httpx2's by the transport's own mapping (in the SDK's vendored module,
    `openai._vendor` or `anthropic._vendor`), as its stream does. Any other transport, or a compressed body,
    goes through `aiter_bytes`. The caller still closes the response.
    """
    if response.headers.get("content-encoding", "identity").lower() not in ("identity", ""):
        return response.aiter_bytes()
    inner = getattr(response.stream, "_stream", None)  # httpx2's `BoundAsyncStream` around the transport's
    aiohttp_response = getattr(inner, "_aiohttp_response", None)
    transport_module = sys.modules.get(type(inner).__module__)
    map_errors = getattr(transport_module, "map_aiohttp_exceptions", None)
    if aiohttp_response is None or map_errors is None or response.is_stream_consumed or response.is_closed:
        return response.aiter_bytes()
    response.is_stream_consumed = True
    return _aiohttp_chunks(aiohttp_response.content, map_errors)


async def _aiohttp_chunks(content: Any, map_errors: Callable[[], AbstractContextManager[None]]) -> AsyncIterator[bytes]:
    readany = content.readany
    with map_errors():
        while chunk := await readany():
            yield chunk
