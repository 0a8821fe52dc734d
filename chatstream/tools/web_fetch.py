"""`web_fetch`: read one public web page as text, safely.

The model chooses the URL, so the server must never become a proxy into its own network (SSRF). Every hop,
the first request and each redirect, is checked *after* DNS resolution: all addresses a name resolves to
must be public, and the connection then goes to the checked address (the URL's host is replaced by the IP,
with the original `Host` header and TLS SNI), so a second, different DNS answer (rebinding) cannot slip in
between the check and the connect. Private, loopback, link-local, shared, reserved and multicast ranges are
refused unless `CHAT_WEB_FETCH_ALLOW_PRIVATE` is set or the host or its network is on the allowlist.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import ssl
from collections.abc import Awaitable, Callable
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple
from urllib.parse import urljoin

import httpx
import msgspec

from chatstream.tools.base import Source, Tool, ToolError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from chatstream.tools.base import ToolContext

__all__ = [
    "AddressPolicy",
    "Resolver",
    "WebFetchInput",
    "WebFetcher",
    "page_sources",
    "system_resolver",
    "web_fetch_tool",
]

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""`resolve(host, port) -> [ip, ...]`; injectable so tests can make any name resolve anywhere."""

MAX_REDIRECTS = 5
MAX_TEXT_CHARS = 20_000
"""Text handed to the model; a page's first 20k characters say what it is about."""

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/xhtml+xml")


async def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's resolver, without blocking the event loop."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ToolError(f"cannot resolve {host!r}: {exc.strerror}") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, 6to4, NAT64), which is what actually gets reached."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public(address: str) -> bool:
    """True for globally routable unicast addresses only."""
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and (v4 := _embedded_v4(ip)) is not None:
        ip = v4
    # `is_global` excludes private, loopback, link-local (169.254/16, fe80::/10), shared (100.64/10),
    # reserved and unspecified ranges; multicast is "global" to Python but never a web server.
    return ip.is_global and not ip.is_multicast


class AddressPolicy:
    """Which addresses `web_fetch` may connect to."""

    def __init__(self, *, allow_private: bool = False, allowlist: Iterable[str] = ()) -> None:
        self.allow_private = allow_private
        self._hosts: set[str] = set()
        self._networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in allowlist:
            try:
                self._networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self._hosts.add(entry.lower().rstrip("."))

    def host_allowed(self, host: str) -> bool:
        return self.allow_private or host.lower().rstrip(".") in self._hosts

    def address_allowed(self, address: str) -> bool:
        if self.allow_private or is_public(address):
            return True
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        return any(ip.version == net.version and ip in net for net in self._networks)


class _Target(NamedTuple):
    urls: list[httpx.URL]
    """The URL with its host replaced by each checked IP address, in resolver order."""
    host_header: str
    sni: str | None


class WebFetchInput(msgspec.Struct):
    url: Annotated[str, msgspec.Meta(description="Absolute http(s) URL of the page to read.")]


class WebFetcher:
    """Fetches pages for the model: size and time caps, redirects followed by hand and re-checked."""

    def __init__(
        self,
        *,
        policy: AddressPolicy,
        resolver: Resolver = system_resolver,
        max_bytes: int = 2_000_000,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.policy = policy
        self.resolver = resolver
        self.max_bytes = max_bytes
        self.timeout = timeout
        self._transport = transport
        self._ssl: ssl.SSLContext | None = None

    async def _target(self, url: httpx.URL) -> _Target:
        if url.scheme not in ("http", "https"):
            raise ToolError(f"only http and https URLs can be fetched, not {url.scheme or 'relative'!r} ones")
        host = url.host
        if not host:
            raise ToolError("the URL has no host")
        if url.userinfo:
            raise ToolError("URLs with credentials are not fetched")
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            addresses = [str(ipaddress.ip_address(host))]
        except ValueError:
            addresses = await self.resolver(host, port)
        if not addresses:
            raise ToolError(f"cannot resolve {host!r}")
        if not self.policy.host_allowed(host):
            blocked = [a for a in addresses if not self.policy.address_allowed(a)]
            if blocked:
                raise ToolError(f"refused: {host} resolves to a private, loopback or link-local address ({blocked[0]})")
        return _Target(
            urls=[url.copy_with(host=a.split("%", 1)[0]) for a in addresses],
            host_header=url.netloc.decode("ascii"),
            sni=host if url.scheme == "https" and not _is_ip(host) else None,
        )

    def _client(self) -> httpx.AsyncClient:
        # A client per fetch: no cookies, connections or proxy settings shared with providers or other users.
        if self._transport is not None:
            return httpx.AsyncClient(transport=self._transport, trust_env=False)
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return httpx.AsyncClient(verify=self._ssl, trust_env=False)

    async def fetch(self, raw_url: str) -> dict[str, Any]:
        try:
            url = httpx.URL(raw_url.strip())
        except httpx.InvalidURL as exc:
            raise ToolError(f"invalid URL: {exc}") from exc
        try:
            async with asyncio.timeout(self.timeout), self._client() as client:
                return await self._follow(client, url)
        except TimeoutError as exc:
            raise ToolError(f"fetching {raw_url} took longer than {self.timeout:g} s") from exc
        except httpx.HTTPError as exc:
            raise ToolError(f"fetching {raw_url} failed: {type(exc).__name__}: {exc}") from exc

    async def _follow(self, client: httpx.AsyncClient, url: httpx.URL) -> dict[str, Any]:
        for _ in range(MAX_REDIRECTS + 1):
            response = await self._send(client, await self._target(url))
            try:
                if response.is_redirect and "location" in response.headers:
                    # Resolved against the URL as the model wrote it, not the IP we connected to.
                    url = httpx.URL(urljoin(str(url), response.headers["location"]))
                    continue
                body, truncated = await self._read(response)
            finally:
                await response.aclose()
            return _page(url, response, body, truncated)
        raise ToolError(f"more than {MAX_REDIRECTS} redirects")

    async def _send(self, client: httpx.AsyncClient, target: _Target) -> httpx.Response:
        """Connect to the checked addresses in turn (a name may resolve to an IPv6 address that is not
        listening, then to an IPv4 one that is)."""
        for i, pinned in enumerate(target.urls):
            request = client.build_request(
                "GET",
                pinned,
                headers={
                    "Host": target.host_header,
                    "User-Agent": "chatstream-web-fetch/1.0",
                    "Accept": "text/html,application/xhtml+xml,text/plain;q=0.9,*/*;q=0.5",
                },
                extensions={"sni_hostname": target.sni} if target.sni else None,
            )
            try:
                return await client.send(request, stream=True, follow_redirects=False)
            except httpx.ConnectError:
                if i == len(target.urls) - 1:
                    raise
        raise AssertionError("unreachable: a target has at least one address")

    async def _read(self, response: httpx.Response) -> tuple[bytes, bool]:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size >= self.max_bytes:
                return b"".join(chunks)[: self.max_bytes], True
        return b"".join(chunks), False


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _page(url: httpx.URL, response: httpx.Response, body: bytes, truncated: bool) -> dict[str, Any]:
    if response.status_code >= 400:
        raise ToolError(f"{url} answered HTTP {response.status_code}")
    content_type = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type and not content_type.startswith(_TEXT_TYPES):
        raise ToolError(f"{url} is {content_type}, not a text page")
    text = body.decode(response.charset_encoding or "utf-8", errors="replace")
    title = None
    if content_type in ("text/html", "application/xhtml+xml") or (not content_type and "<html" in text[:1000].lower()):
        title, text = html_to_text(text)
    if len(text) > MAX_TEXT_CHARS:
        text, truncated = text[:MAX_TEXT_CHARS], True
    return {
        "url": str(url),
        "status": response.status_code,
        "contentType": content_type or None,
        "title": title,
        "text": text,
        "truncated": truncated,
    }


class _TextExtractor(HTMLParser):
    _SKIP = frozenset({"script", "style", "noscript", "template", "svg", "head"})
    _BLOCK = frozenset(
        {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "pre", "table"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.pieces: list[str] = []
        self.title: list[str] = []
        self._skip = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in self._SKIP:
            self._skip += 1
        elif tag in self._BLOCK:
            self.pieces.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in self._SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag in self._BLOCK:
            self.pieces.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title.append(data)
        elif not self._skip:
            self.pieces.append(data)


_SPACES = re.compile(r"[ \t\r\f\v]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


def html_to_text(html: str) -> tuple[str | None, str]:
    """The page's title and its readable text: scripts and styles dropped, whitespace collapsed."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    text = _SPACES.sub(" ", "".join(parser.pieces))
    text = _BLANK_LINES.sub("\n\n", "\n".join(line.strip() for line in text.split("\n"))).strip()
    title = " ".join("".join(parser.title).split()) or None
    return title, text


def page_sources(output: Any) -> list[Source]:
    """The page a fetch returned is a citation: its final URL (after redirects) and its title."""
    url = output.get("url") if isinstance(output, dict) else None
    if not isinstance(url, str) or not url:
        return []
    title = output.get("title")
    return [Source(url, title if isinstance(title, str) and title else None)]


def web_fetch_tool(fetcher: WebFetcher) -> Tool[WebFetchInput]:
    async def handler(data: WebFetchInput, ctx: ToolContext) -> dict[str, Any]:
        return await fetcher.fetch(data.url)

    return Tool(
        "web_fetch",
        "Fetch a public web page by URL and return its title and readable text (truncated when long).",
        WebFetchInput,
        handler,
        web=True,
        sources=page_sources,
    )
