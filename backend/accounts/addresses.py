"""Which network address a request comes from: one rule for every entry point (the Reflex
socket, the REST API), so throttling counts the same client the same way everywhere.

Behind N trusted reverse proxies (`REFLEX_TRUSTED_PROXY_HOPS=N`), each proxy appends the address
it received the connection from to `X-Forwarded-For`; the entries a client wrote itself come
first. So the client's address is the N-th entry counted from the right (the one the outermost
trusted proxy wrote) and never the leftmost, which anyone can set. With 0 hops the header is
ignored and the TCP peer is the client. Framework-free: callers pass the raw values.
"""

from __future__ import annotations

import ipaddress

IPV6_THROTTLE_PREFIX = 64  # one IPv6 subscriber usually holds a whole /64


def _parse(value: str | None) -> str | None:
    """A normalized IP address, or None when `value` is not one."""
    value = (value or "").strip()
    if value.startswith("[") and "]" in value:  # "[2001:db8::1]:443"
        value = value[1:value.index("]")]
    elif value.count(":") == 1:  # "203.0.113.7:51234"
        value = value.split(":", 1)[0]
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip)


def client_address(peer: str | None, forwarded_for: str | None, trusted_hops: int) -> str:
    """The client's address under the trusted-hops rule.

    - `trusted_hops` == 0: the peer (`X-Forwarded-For` is client-controlled and ignored).
    - `trusted_hops` == N: the N-th `X-Forwarded-For` entry from the right. When the header has
      fewer entries, or that entry is not an IP address, the request did not come through the
      whole trusted chain (or the chain is misconfigured): the peer is used, as Reflex does.
    Returns "" when nothing usable is known.
    """
    peer_ip = _parse(peer) or (peer or "").strip()[:64]  # the server's own value: kept even if not an IP
    if trusted_hops <= 0:
        return peer_ip
    entries = [e.strip() for e in (forwarded_for or "").split(",") if e.strip()]
    if len(entries) < trusted_hops:
        return peer_ip
    return _parse(entries[-trusted_hops]) or peer_ip


def throttle_bucket(address: str) -> str:
    """The key an address is throttled under: the IPv4 address itself, or its IPv6 /64
    (one IPv6 subscriber can use any of 2^64 addresses)."""
    ip = _parse(address)
    if ip is None:
        return (address or "").strip()[:64]
    parsed = ipaddress.ip_address(ip)
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{parsed}/{IPV6_THROTTLE_PREFIX}", strict=False))
    return ip
