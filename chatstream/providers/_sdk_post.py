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

Through the SDKs' aiohttp transport (`DefaultAioHttpClient`, what `providers.setup` builds), the request goes
straight to the transport's aiohttp session with the arguments the transport itself would pass (`_Direct`):
httpx2's client, request and response objects around it were another sixth of a run's start-up. What httpx2
would add is kept: the cookies the upstream set are stored in the client's jar and sent back, and a redirect is
followed by sending through the SDK's client after all. Any other transport (a proxy, a host's own client with
hooks or auth) goes through httpx2 as the SDK's `post` would.

What is reused is only valid for static credentials, which is how the adapters build their clients (an
`api_key` string).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Protocol

import httpx2
import msgspec

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from contextlib import AbstractContextManager

__all__ = ["SdkPost", "UpstreamBody"]

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
    direct: _Direct | None
    """The aiohttp path, when the client's transport for this URL is the SDKs' aiohttp transport."""


class _Direct:
    """What the SDKs' `AiohttpTransport.handle_async_request` passes to aiohttp for this endpoint, computed once."""

    __slots__ = ("head", "headers_type", "map_errors", "options", "session_type", "stream_type", "transport", "url")

    def __init__(
        self,
        transport: Any,
        url: str,
        head: list[tuple[str, str]],
        options: dict[str, Any],
        map_errors: Callable[[], AbstractContextManager[None]],
        stream_type: type[Any],
    ) -> None:
        from aiohttp import ClientSession
        from multidict import CIMultiDict

        self.transport = transport
        self.url = url
        self.head = head
        """httpx2's headers as the transport hands them to aiohttp (lower-cased names, in order): `host`, then the
        template's; per body, an idempotency key, the cookies and `content-length` follow, as httpx2 orders them."""
        self.options = options
        self.map_errors = map_errors
        self.stream_type = stream_type
        """The transport module's `AiohttpResponseStream`: an aiohttp response as httpx2's stream, as the transport
        wraps it (its `aclose` releases the response, errors mapped)."""
        self.session_type: type[Any] = ClientSession
        self.headers_type: type[Any] = CIMultiDict


class UpstreamBody:
    """A streamed upstream response: its body as the bytes arrive (`async for`), then `aclose()`."""

    __slots__ = ("_chunks", "_close")

    def __init__(self, chunks: AsyncIterator[bytes], close: Callable[[], Any]) -> None:
        self._chunks = chunks
        self._close = close

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks

    async def aclose(self) -> None:
        await self._close()


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
        extensions = dict(request.extensions)
        return _Template(
            url=request.url,
            headers=headers,
            extensions=extensions,
            idempotency_header=idempotency_header or None,
            direct=_direct(sdk._client, request, headers, extensions),
        )

    def build(self, body: object, template: _Template) -> httpx2.Request:
        """The httpx2 request for `body` (public for the wire tests)."""
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

    async def send(self, body: object) -> UpstreamBody:
        """Send `body`; the response's body is unread (the caller reads and closes it). A non-2xx status raises
        the SDK's status error, after reading its body, as the SDK does."""
        template = await self.template()
        if template.direct is not None:
            return await self._send_direct(body, template, template.direct)
        return await self._send_httpx(self.build(body, template))

    async def _send_httpx(self, request: httpx2.Request) -> UpstreamBody:
        return await self._streamed(await self._sdk._client.send(request, stream=True))

    async def _streamed(self, response: httpx2.Response) -> UpstreamBody:
        """A streamed response as the SDK takes it: an error status raised (the SDK's error, after reading the
        body), else the body unread."""
        if response.status_code >= 400:
            await response.aread()
            raise self._sdk._make_status_error_from_response(response)
        return UpstreamBody(_httpx_chunks(response), response.aclose)

    async def _send_direct(self, body: object, template: _Template, direct: _Direct) -> UpstreamBody:
        content = _encode(body)
        client = self._sdk._client
        head = direct.head.copy()
        if template.idempotency_header is not None:
            head.append((template.idempotency_header.lower(), self._sdk._idempotency_key()))
        if client.cookies:
            # As httpx2's `Request` sets it: the jar's cookies for this URL (the upstream set them earlier).
            cookie = httpx2.Request("POST", template.url, cookies=client.cookies).headers.get("cookie")
            if cookie is not None:
                head.append(("cookie", cookie))
        head.append(("content-length", str(len(content))))  # last, as httpx2 adds it
        transport = direct.transport
        session = transport.client
        if not isinstance(session, direct.session_type):
            session = transport.client = transport.get_client()  # as the transport does on its first request
        with direct.map_errors():
            response = await session.request(
                "POST", direct.url, headers=direct.headers_type(head), data=content, **direct.options
            ).__aenter__()
        headers = response.headers
        if (
            response.status < 300
            and "set-cookie" not in headers
            and headers.get("content-encoding", "identity").lower() in ("identity", "")
        ):
            return UpstreamBody(
                _aiohttp_chunks(response.content, direct.map_errors), direct.stream_type(response).aclose
            )
        return await self._as_httpx(template, direct, response, head, content)

    async def _as_httpx(
        self, template: _Template, direct: _Direct, response: Any, head: list[tuple[str, str]], content: bytes
    ) -> UpstreamBody:
        """Anything but a plain streamed success, answered as httpx2 and the SDK would: cookies stored in the
        client's jar, a compressed body decoded, a redirect followed, an error status raised."""
        client = self._sdk._client
        request = httpx2.Request(
            "POST", template.url, headers=head, content=content, extensions=dict(template.extensions)
        )
        extensions: dict[str, Any] = {"http_version": b"HTTP/1.1"}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode()
        wrapped = httpx2.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=direct.stream_type(response),
            request=request,
            extensions=extensions,
        )
        client.cookies.extract_cookies(wrapped)
        if wrapped.has_redirect_location and client.follow_redirects:
            await wrapped.aclose()
            return await self._send_httpx(client._build_redirect_request(request, wrapped))
        return await self._streamed(wrapped)


def _direct(
    client: httpx2.AsyncClient, request: httpx2.Request, headers: httpx2.Headers, extensions: dict[str, Any]
) -> _Direct | None:
    """The aiohttp path for `request`, or None when httpx2 would do more than hand it to the SDKs' aiohttp
    transport: a proxy or a mounted transport, event hooks, auth (including a URL's user info)."""
    transport = client._transport_for_url(request.url)
    module = sys.modules.get(type(transport).__module__)
    map_errors = getattr(module, "map_aiohttp_exceptions", None)
    stream_type = getattr(module, "AiohttpResponseStream", None)
    hooks = client.event_hooks
    if (
        type(transport).__name__ != "AiohttpTransport"
        or map_errors is None
        or stream_type is None
        or getattr(transport, "proxy", None) is not None
        or hooks.get("request")
        or hooks.get("response")
        or client.auth is not None
        or request.url.userinfo
    ):
        return None
    from aiohttp import ClientTimeout

    timeout = extensions.get("timeout", {})
    return _Direct(
        transport=transport,
        url=str(request.url),
        head=[("host", request.headers["host"]), *headers.items()],
        options={
            "allow_redirects": False,
            "auto_decompress": False,
            "compress": False,
            "timeout": ClientTimeout(
                sock_connect=timeout.get("connect"), sock_read=timeout.get("read"), connect=timeout.get("pool")
            ),
            "server_hostname": extensions.get("sni_hostname"),
        },
        map_errors=map_errors,
        stream_type=stream_type,
    )


def _httpx_chunks(response: httpx2.Response) -> AsyncIterator[bytes]:
    """The body of a streamed httpx2 `response`, as the bytes arrive.

    Through the aiohttp transport with an unencoded body, straight from aiohttp's stream: `aiter_bytes` passes
    every piece through five async generators (httpx2's decoder, chunker and bound stream, the transport's
    `iter_chunked`), about a fifth of a paced token's CPU (`bench/frame_cost.py`). Any other transport, or a
    compressed body, goes through `aiter_bytes`.
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
