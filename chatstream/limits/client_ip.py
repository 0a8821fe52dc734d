"""Which address a request really comes from, believing `X-Forwarded-For` only from trusted proxies."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["client_ip"]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def client_ip(peer: str | None, headers: Mapping[str, str], trusted_proxies: Sequence[str]) -> str:
    """The client address for per-IP limits.

    The peer (the TCP connection's address) is the answer unless it is a trusted proxy. Then
    `X-Forwarded-For` is read right to left, skipping trusted hops: the rightmost untrusted address is the
    client, because everything left of it was written by the client itself and can be forged. If every hop
    is trusted, the leftmost one is used. An unparsable hop stops the walk at the last good address.

    Args:
        peer: the connection's remote address (`request.client.host`), None when unknown.
        headers: request headers; looked up case-insensitively.
        trusted_proxies: IPs or CIDRs (`10.0.0.0/8`, `::1`) whose forwarding headers are believed.
    """
    if not trusted_proxies:
        return _peer(peer)  # nothing forwarded is believed: the peer's own address, parsed once per peer
    peer_addr = _parse(peer)
    if peer_addr is None:
        return peer or "unknown"
    networks = _networks(tuple(trusted_proxies))
    if not _trusted(peer_addr, networks):
        return str(peer_addr)
    forwarded = _header(headers, "x-forwarded-for")
    client = peer_addr
    for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
        addr = _parse(hop)
        if addr is None:
            break
        client = addr
        if not _trusted(addr, networks):
            break
    return str(client)


@lru_cache(maxsize=4096)
def _peer(peer: str | None) -> str:
    addr = _parse(peer)
    return (peer or "unknown") if addr is None else str(addr)


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name) or headers.get(name.title()) or headers.get(name.upper())
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), "")
    return value


def _parse(value: str | None) -> _Address | None:
    """An address from `1.2.3.4`, `1.2.3.4:5678`, `::1` or `[::1]:80`; None when it is none of these."""
    if not value:
        return None
    text = value.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else text
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    # An IPv4 client seen through a dual-stack socket should count as the same client.
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


@lru_cache(maxsize=16)
def _networks(proxies: tuple[str, ...]) -> tuple[_Network, ...]:
    return tuple(ipaddress.ip_network(p.strip(), strict=False) for p in proxies if p.strip())


def _trusted(addr: _Address, networks: tuple[_Network, ...]) -> bool:
    return any(addr.version == net.version and addr in net for net in networks)
