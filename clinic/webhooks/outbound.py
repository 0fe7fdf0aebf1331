"""HTTP requests to addresses a clinic typed in (webhook endpoints): public addresses only.

A webhook URL is chosen by whoever manages the clinic's integrations; without a check, the
server would POST wherever it points: its own admin on 127.0.0.1, the database host, a cloud
metadata service on 169.254.169.254, anything on the private network (server-side request
forgery). So, unless `WEBHOOK_ALLOW_PRIVATE_ADDRESSES` is on (development, or a receiver on
the clinic's own network):

- each connection resolves the host itself and connects only to an address that is globally
  routable, checked at connect time on the address actually used (a name that resolved to a
  public address when the URL was saved and to 10.0.0.5 now is refused: DNS rebinding);
- redirects are not followed (a public receiver answering 302 to an internal address would
  otherwise be followed there): a 3xx is a failed delivery with its status;
- proxies from the environment are not used (the check must see the real destination).

The URL check at save time (`url_refusal`) catches literal addresses and `localhost` early
with a field error; the connect-time check is the one that holds.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import urllib.request
from urllib.parse import urlsplit

from django.conf import settings


class PrivateAddressError(OSError):
    """The destination resolves only to addresses that are not public."""


# IPv6 forms that carry an IPv4 address inside: the packet may end up at that IPv4 address (a
# relay, a NAT64 gateway, the host's own dual stack), so the IPv4 inside must be public too.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052 well-known prefix: last 32 bits
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215 local-use: never public
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # deprecated ::a.b.c.d (RFC 4291 2.5.5.1)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (mapped, 6to4, Teredo, NAT64, compatible)."""
    embedded = []
    if ip.ipv4_mapped is not None:
        embedded.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        embedded.append(ip.sixtofour)
    if ip.teredo is not None:
        embedded.extend(ip.teredo)  # (server, client)
    if ip in _NAT64 or ip in _IPV4_COMPATIBLE:
        embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return embedded


def is_public(address: str) -> bool:
    """Globally routable unicast, and so is every IPv4 address an IPv6 one carries."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone index
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:a.b.c.d is that IPv4 address itself
    if not ip.is_global or ip.is_multicast:
        return False  # (Teredo, 2001::/32, is not global either: refused whatever it carries)
    if isinstance(ip, ipaddress.IPv4Address):
        return True
    if ip in _NAT64_LOCAL:
        return False
    return all(v4.is_global and not v4.is_multicast for v4 in _embedded_ipv4(ip))


def url_refusal(url: str) -> str | None:
    """Why this URL may not be used, judged without a DNS lookup; None if it may."""
    if settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES:
        return None
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return "Webhook URLs must point to a public address, not this server."
    try:
        public = is_public(host)
    except ValueError:
        return None  # a name: checked on the address it resolves to, at each delivery
    return None if public else "Webhook URLs must point to a public address, not a private or reserved one."


def _connect_public(address, timeout=socket._GLOBAL_DEFAULT_TIMEOUT, source_address=None):
    """socket.create_connection, to public addresses only."""
    host, port = address
    refused = []
    last_error: OSError | None = None
    for family, kind, proto, _, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        if not is_public(sockaddr[0]):
            refused.append(sockaddr[0])
            continue
        sock = socket.socket(family, kind, proto)
        try:
            if timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as error:
            sock.close()
            last_error = error
    if last_error is not None:
        raise last_error
    raise PrivateAddressError(f"{host} resolves only to addresses that are not public ({', '.join(refused)}).")


class _PublicHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._create_connection = _connect_public


class _PublicHTTPSConnection(http.client.HTTPSConnection):
    # HTTPSConnection.connect() opens the TCP connection through _create_connection, then
    # wraps it in TLS for the URL's host name (certificate checked against the name).
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._create_connection = _connect_public


class _PublicHTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req):
        return self.do_open(_PublicHTTPConnection, req)


class _PublicHTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req):
        return self.do_open(_PublicHTTPSConnection, req, context=self._context, check_hostname=self._check_hostname)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # the 3xx is raised as an HTTPError: a failed attempt with its status


def _opener(*, public_only: bool) -> urllib.request.OpenerDirector:
    handlers = [urllib.request.ProxyHandler({}), _NoRedirects()]
    if public_only:
        handlers += [_PublicHTTPHandler(), _PublicHTTPSHandler()]
    return urllib.request.build_opener(*handlers)


def open_url(request: urllib.request.Request, *, timeout: float):
    """urlopen for a URL a clinic configured: no proxies, no redirects, and public addresses only
    unless WEBHOOK_ALLOW_PRIVATE_ADDRESSES."""
    return _opener(public_only=not settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES).open(request, timeout=timeout)
