"""`client_ip`: X-Forwarded-For is believed only from trusted proxies, rightmost-untrusted wins."""

from __future__ import annotations

import pytest

from chatstream.limits import client_ip

PROXIES = ("10.0.0.0/8", "192.168.1.1", "fd00::/8")


@pytest.mark.parametrize(
    ("peer", "xff", "expected"),
    [
        # An untrusted peer is the client, whatever it claims.
        ("203.0.113.7", "1.2.3.4", "203.0.113.7"),
        ("203.0.113.7", None, "203.0.113.7"),
        # A trusted proxy: the rightmost address it did not itself add.
        ("10.1.2.3", "198.51.100.9", "198.51.100.9"),
        ("10.1.2.3", "6.6.6.6, 198.51.100.9", "198.51.100.9"),  # the left part is client-forged
        ("10.1.2.3", "6.6.6.6, 198.51.100.9, 10.9.9.9, 192.168.1.1", "198.51.100.9"),
        # Every hop trusted: the leftmost.
        ("10.1.2.3", "10.0.0.5, 192.168.1.1", "10.0.0.5"),
        # A trusted proxy that sent no header is itself the client.
        ("10.1.2.3", None, "10.1.2.3"),
        # Garbage stops the walk at the last good address.
        ("10.1.2.3", "not-an-ip, 10.0.0.7", "10.0.0.7"),
        # Ports, brackets, IPv6, and IPv4-mapped IPv6.
        ("10.1.2.3", "198.51.100.9:4711", "198.51.100.9"),
        ("fd00::1", "[2001:db8::5]:443", "2001:db8::5"),
        ("::ffff:203.0.113.7", None, "203.0.113.7"),
        ("192.168.1.2", "1.2.3.4", "192.168.1.2"),  # a single trusted host, not its network
    ],
)
def test_client_ip(peer: str, xff: str | None, expected: str) -> None:
    headers = {"x-forwarded-for": xff} if xff is not None else {}
    assert client_ip(peer, headers, PROXIES) == expected


def test_header_lookup_is_case_insensitive_and_peer_may_be_missing() -> None:
    assert client_ip("10.0.0.1", {"X-Forwarded-For": "198.51.100.1"}, PROXIES) == "198.51.100.1"
    assert client_ip(None, {"x-forwarded-for": "198.51.100.1"}, PROXIES) == "unknown"
    assert client_ip("testclient", {}, PROXIES) == "testclient"


def test_no_trusted_proxies_never_reads_the_header() -> None:
    assert client_ip("127.0.0.1", {"x-forwarded-for": "1.2.3.4"}, ()) == "127.0.0.1"
