"""Redis Sentinel for the cache: a connection pool class for Django's RedisCache.

The broker reads `sentinel://` URLs itself (kombu's sentinel transport, with the master name
in `CELERY_BROKER_TRANSPORT_OPTIONS`). Django's RedisCache builds its pool with
`pool_class.from_url(url, **options)`; this class answers that call for a URL in the same
form as the broker's, `sentinel://[:password@]host:port[/db][;sentinel://host:port...]`, with
the master's name in the `master_name` option: the pool asks the sentinels for the current
master on each new connection, so a fail-over is followed without a restart.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from redis.sentinel import Sentinel, SentinelConnectionPool


def sentinel_nodes(url: str) -> tuple[list[tuple[str, int]], str | None, int]:
    """The sentinels' (host, port), the password and the database number of a sentinel:// URL."""
    nodes: list[tuple[str, int]] = []
    password: str | None = None
    db = 0
    for part in url.split(";"):
        parts = urlsplit(part.strip())
        if parts.scheme != "sentinel" or not parts.hostname:
            raise ValueError(f"expected sentinel://host:port, got {part!r}")
        nodes.append((parts.hostname, parts.port or 26379))
        if parts.password:
            password = unquote(parts.password)
        if parts.path.strip("/"):
            db = int(parts.path.strip("/"))
    return nodes, password, db


class SentinelPool(SentinelConnectionPool):
    @classmethod
    def from_url(cls, url: str, *, master_name: str, **options) -> SentinelConnectionPool:
        nodes, password, db = sentinel_nodes(url)
        timeouts = {key: options[key] for key in ("socket_timeout", "socket_connect_timeout") if key in options}
        manager = Sentinel(nodes, sentinel_kwargs={"password": password, **timeouts})
        return cls(master_name, manager, db=db, password=password, **options)
