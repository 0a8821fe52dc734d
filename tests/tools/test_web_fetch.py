"""web_fetch refuses private, loopback and link-local targets: literal, via DNS, and on every redirect."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from chatstream.tools.base import ToolError
from chatstream.tools.web_fetch import AddressPolicy, WebFetcher, html_to_text, is_public

PUBLIC = "93.184.215.14"


def resolver(table: dict[str, list[str]]) -> Any:
    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise ToolError(f"cannot resolve {host!r}")
        return table[host]

    return resolve


class Recorder:
    """An httpx transport that answers from a function and keeps every request it was sent."""

    def __init__(self, answer: Any = None) -> None:
        self.requests: list[httpx.Request] = []
        self._answer = answer or (
            lambda request: httpx.Response(200, text="hello", headers={"content-type": "text/plain"})
        )

    def transport(self) -> httpx.MockTransport:
        def handle(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            response: httpx.Response = self._answer(request)
            return response

        return httpx.MockTransport(handle)


def fetcher(rec: Recorder, table: dict[str, list[str]] | None = None, **policy: Any) -> WebFetcher:
    return WebFetcher(
        policy=AddressPolicy(**policy),
        resolver=resolver({"example.com": [PUBLIC], **(table or {})}),
        transport=rec.transport(),
        max_bytes=1000,
        timeout=2.0,
    )


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.1.2.3",
        "10.0.0.5",
        "172.16.3.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fe80::1%eth0",
        "fd00::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "64:ff9b::7f00:1",
        "2002:7f00:1::1",
    ],
)
def test_non_public_addresses(address: str) -> None:
    assert not is_public(address)
    assert not AddressPolicy().address_allowed(address)


@pytest.mark.parametrize("address", [PUBLIC, "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses(address: str) -> None:
    assert is_public(address)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://127.0.0.1:8000/api/chat",
        "http://10.0.0.5/",
        "http://10.255.255.1:9200/_cat",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:6379/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0:8000/",
        "https://192.168.0.1/",
    ],
)
async def test_literal_private_targets_are_refused(url: str) -> None:
    rec = Recorder()
    with pytest.raises(ToolError, match="refused"):
        await fetcher(rec).fetch(url)
    assert rec.requests == []


@pytest.mark.parametrize("addresses", [["127.0.0.1"], ["10.1.1.1"], ["169.254.169.254"], ["::1"], [PUBLIC, "10.0.0.1"]])
async def test_names_resolving_to_private_addresses_are_refused(addresses: list[str]) -> None:
    rec = Recorder()
    with pytest.raises(ToolError, match="refused"):
        await fetcher(rec, {"evil.test": addresses}).fetch("http://evil.test/")
    assert rec.requests == []


@pytest.mark.parametrize(
    "location",
    [
        "http://127.0.0.1/admin",
        "http://169.254.169.254/latest/meta-data/iam",
        "http://localhost.evil.test/",
        "//10.0.0.1/x",
    ],
)
async def test_redirects_to_private_targets_are_refused(location: str) -> None:
    rec = Recorder(lambda request: httpx.Response(302, headers={"location": location}))
    with pytest.raises(ToolError, match="refused"):
        await fetcher(rec, {"localhost.evil.test": ["127.0.0.1"]}).fetch("http://example.com/start")
    assert len(rec.requests) == 1  # the redirect was never followed


async def test_connections_go_to_the_checked_address() -> None:
    """The URL's host is replaced by the address that was checked (no second DNS lookup to rebind)."""
    rec = Recorder()
    result = await fetcher(rec).fetch("https://example.com/page?q=1")
    (request,) = rec.requests
    assert request.url.host == PUBLIC and request.url.path == "/page" and request.url.query == b"q=1"
    assert request.headers["host"] == "example.com"
    assert request.extensions["sni_hostname"] == "example.com"
    assert result["url"] == "https://example.com/page?q=1"
    assert result["text"] == "hello"


async def test_public_redirects_are_followed_and_rechecked() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/a":
            return httpx.Response(301, headers={"location": "/b"})
        return httpx.Response(
            200, text="<html><title>B</title><p>page b</p></html>", headers={"content-type": "text/html"}
        )

    rec = Recorder(answer)
    result = await fetcher(rec).fetch("http://example.com/a")
    assert [r.url.path for r in rec.requests] == ["/a", "/b"]
    assert result["url"] == "http://example.com/b"
    assert result["title"] == "B" and result["text"] == "page b"


async def test_redirect_loops_end() -> None:
    rec = Recorder(lambda request: httpx.Response(302, headers={"location": "/again"}))
    with pytest.raises(ToolError, match="redirects"):
        await fetcher(rec).fetch("http://example.com/")


async def test_allowlist_and_allow_private() -> None:
    table = {"intranet.corp": ["10.1.2.3"]}
    await fetcher(Recorder(), table, allowlist=["10.0.0.0/8"]).fetch("http://intranet.corp/")
    await fetcher(Recorder(), table, allowlist=["intranet.corp"]).fetch("http://intranet.corp/")
    await fetcher(Recorder(), table, allow_private=True).fetch("http://127.0.0.1/")
    with pytest.raises(ToolError, match="refused"):
        await fetcher(Recorder(), table, allowlist=["10.0.0.0/8"]).fetch("http://127.0.0.1/")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file:///etc/passwd", "only http"),
        ("ftp://example.com/", "only http"),
        ("http://user:pw@example.com/", "credentials"),
    ],
)
async def test_other_schemes_and_credentials_are_refused(url: str, message: str) -> None:
    rec = Recorder()
    with pytest.raises(ToolError, match=message):
        await fetcher(rec).fetch(url)
    assert rec.requests == []


async def test_size_cap_truncates() -> None:
    rec = Recorder(lambda request: httpx.Response(200, text="x" * 5000, headers={"content-type": "text/plain"}))
    result = await fetcher(rec).fetch("http://example.com/big")
    assert result["truncated"] is True and len(result["text"]) == 1000


async def test_time_cap() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(10)
        return httpx.Response(200)

    f = WebFetcher(
        policy=AddressPolicy(),
        resolver=resolver({"example.com": [PUBLIC]}),
        transport=httpx.MockTransport(slow),
        timeout=0.2,
    )
    with pytest.raises(ToolError, match="longer than"):
        await f.fetch("http://example.com/")


async def test_errors_and_binary_content_are_reported() -> None:
    rec = Recorder(lambda request: httpx.Response(404, text="nope"))
    with pytest.raises(ToolError, match="HTTP 404"):
        await fetcher(rec).fetch("http://example.com/missing")
    rec = Recorder(lambda request: httpx.Response(200, content=b"\x89PNG", headers={"content-type": "image/png"}))
    with pytest.raises(ToolError, match="image/png"):
        await fetcher(rec).fetch("http://example.com/a.png")


def test_html_to_text() -> None:
    html = """<!doctype html><html><head><title> The  Title </title><style>p{}</style>
    <script>alert("x")</script></head><body><nav>Menu</nav><h1>Head</h1><p>One &amp; two.</p>
    <noscript>enable js</noscript><p>Three</p><ul><li>a</li><li>b</li></ul></body></html>"""
    title, text = html_to_text(html)
    assert title == "The Title"
    assert "alert" not in text and "p{}" not in text and "enable js" not in text
    assert "One & two." in text and "Head" in text
    assert text.splitlines()[0] == "Menu"


@pytest.fixture
async def local_server() -> AsyncIterator[int]:
    """A real HTTP server on loopback: what an attacker would want web_fetch to reach."""
    hits: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        hits.append(head)
        body = b"<html><title>secret</title><body>internal admin</body></html>"
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%s"
            % (len(body), body)
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port: int = server.sockets[0].getsockname()[1]
    async with server:
        yield port


async def test_real_loopback_server_is_refused_unless_allowed(local_server: int) -> None:
    real = WebFetcher(policy=AddressPolicy(), timeout=5)
    with pytest.raises(ToolError, match="refused"):
        await real.fetch(f"http://127.0.0.1:{local_server}/")
    with pytest.raises(ToolError, match="refused"):
        await real.fetch(f"http://localhost:{local_server}/")  # the system resolver says loopback
    allowed = WebFetcher(policy=AddressPolicy(allow_private=True), timeout=5)
    result = await allowed.fetch(f"http://localhost:{local_server}/")
    assert result["title"] == "secret" and result["text"] == "internal admin"


async def test_falls_back_to_the_next_checked_address(local_server: int) -> None:
    both = resolver({"dual.test": ["::1", "127.0.0.1"]})  # nothing listens on ::1
    f = WebFetcher(policy=AddressPolicy(allowlist=["dual.test"]), resolver=both, timeout=5)
    result = await f.fetch(f"http://dual.test:{local_server}/")
    assert result["text"] == "internal admin"
