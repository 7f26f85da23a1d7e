"""The optional IP allow-list of the callback endpoint: pure functions, a thin Flask hook in web.py."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def parse_networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    """"10.0.0.0/8", "203.0.113.7" (a single host) -> networks; raises ValueError on a bad entry."""
    return tuple(ipaddress.ip_network(c.strip(), strict=False) for c in cidrs)


def client_address(remote_addr: str, forwarded_for: str | None, trusted_proxies: int) -> str:
    """The client's address, given how many proxies in front of imhook are trusted.

    Each proxy appends the address it received the request from to X-Forwarded-For, so with N
    trusted proxies the client is the N-th address from the right of [X-Forwarded-For..., peer].
    Anything further left was written by the client and may be forged. With 0 the header is
    never read. With fewer entries than proxies the header is incomplete: use the peer address
    (a proxy's, which then fails the allow-list instead of trusting a guess).
    """
    if trusted_proxies <= 0 or not forwarded_for:
        return remote_addr
    hops = [part.strip() for part in forwarded_for.split(",")] + [remote_addr]
    if len(hops) < trusted_proxies + 1:
        return remote_addr
    return hops[-(trusted_proxies + 1)]


def is_allowed(address: str, networks: Iterable[Network]) -> bool:
    """True if `address` lies in one of `networks`; an unparsable address never does."""
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # "::ffff:10.1.2.3" from a dual-stack socket is 10.1.2.3
    return any(ip.version == net.version and ip in net for net in networks)


def check(remote_addr: str, forwarded_for: str | None, *, allow: tuple[str, ...], trusted_proxies: int) -> str | None:
    """None when the request may proceed, else the client address that was refused."""
    if not allow:
        return None
    address = client_address(remote_addr, forwarded_for, trusted_proxies)
    return None if is_allowed(address, parse_networks(allow)) else address
