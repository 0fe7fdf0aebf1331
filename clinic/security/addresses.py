"""The client's address: one helper for everything that records or counts by address.

Behind a load balancer or reverse proxy, REMOTE_ADDR is the proxy. Each proxy appends the
address it received the connection from to X-Forwarded-For, so the header reads
`client, proxy1, proxy2` and REMOTE_ADDR is the last proxy. Only the entries that our own
proxies wrote can be believed: anything to their left was sent by the client and may be
invented. `TRUSTED_PROXIES` (settings) says which hops are ours:

- a count `N`: the N hops nearest to us are our proxies; the client is the address the
  N-th one saw (the N-th entry from the right of `X-Forwarded-For + [REMOTE_ADDR]`'s end);
- a list of networks (`10.0.0.0/8, 172.16.0.0/12`): walking from REMOTE_ADDR leftwards,
  every hop inside them is ours; the first hop outside them is the client.

With no trusted proxies (the default) the header is ignored and REMOTE_ADDR is the client,
so a client talking to gunicorn directly cannot choose the address it is recorded under.

Users: django-axes (`AXES_CLIENT_IP_CALLABLE`), the intake pages' wrong-link limit and the
submission's recorded address, the audit trail, and the request log.
"""

from __future__ import annotations

import contextlib
import ipaddress
from dataclasses import dataclass

from django.conf import settings

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class TrustedProxies:
    """Parsed `TRUSTED_PROXIES`: a hop count, or networks whose hops are ours."""

    count: int = 0
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, value: str) -> TrustedProxies:
        """'' or '0' (none), a count ('2'), or comma-separated addresses/networks. Raises ValueError."""
        value = value.strip()
        if not value:
            return cls()
        if value.isdigit():
            return cls(count=int(value))
        networks = []
        for item in value.split(","):
            item = item.strip()
            if item:
                networks.append(ipaddress.ip_network(item, strict=False))
        return cls(networks=tuple(networks))

    def trusts(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(address in network for network in self.networks)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address as a proxy writes it: bare, or `[v6]:port` / `v4:port`; None if not one."""
    text = text.strip()
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def client_address(remote_addr: str | None, forwarded_for: str | None, trusted: TrustedProxies) -> str | None:
    """The client's address given the connection's peer and the X-Forwarded-For header."""
    peer = _address(remote_addr or "")
    if peer is None:
        return None
    if not trusted.count and not trusted.networks:
        return str(peer)
    hops = [_address(item) for item in (forwarded_for or "").split(",")] if forwarded_for else []
    chain = [*hops, peer]  # leftmost: the claimed client; rightmost: who connected to us
    if trusted.count:
        # Fewer hops than proxies: the request did not come through all of them. The farthest
        # hop is the best we know (a proxy may have been bypassed: list networks instead).
        index = max(len(chain) - 1 - trusted.count, 0)
        # An entry that is no address was not written by one of our proxies: the nearest valid
        # hop to its right (one of ours saw that one) is the most we can say.
        while chain[index] is None:
            index += 1
        return str(chain[index])
    client = peer
    for hop in reversed(chain):
        if hop is None:
            break
        client = hop
        if not trusted.trusts(hop):
            break
    return str(client)


def client_ip(request) -> str | None:
    """The address of the client that sent `request` (a Django or DRF request), per TRUSTED_PROXIES.

    Computed once per request."""
    request = getattr(request, "_request", request)
    cached = getattr(request, "_client_ip", False)
    if cached is not False:
        return cached
    meta = getattr(request, "META", {})
    address = client_address(meta.get("REMOTE_ADDR"), meta.get("HTTP_X_FORWARDED_FOR"), settings.TRUSTED_PROXIES)
    with contextlib.suppress(AttributeError):  # a request-like object that takes no attributes
        request._client_ip = address
    return address
