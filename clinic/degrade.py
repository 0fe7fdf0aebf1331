"""Degrade, don't fail, when a dependency is down (docs/architecture.md, "When a dependency is down").

- Redis as the cache: the API's rate limiter and the intake pages' wrong-link counter fail open
  (the request goes through uncounted). `CACHE.unavailable(exc)` records it.
- Redis as the broker: a task queued from a request after commit (the message sweeper's kick,
  a webhook delivery, an import job) is only a shortcut, its row stays due and the beat sweeper
  queues it later. `publish()` never lets a broker failure turn a committed request into a 500.
- PostgreSQL: an API request answers 503 in the API's error format with `Retry-After`, other
  pages a plain 503 (`DatabaseUnavailable`, `server_error`).

Each failure is counted per process (`degraded_counts()`, shown by /healthz) and logged as one
warning per dependency and minute, with the number of failures since the last one, so an outage
does not flood the log. After a failure the dependency is left alone for `pause` seconds: a
Redis that hangs instead of refusing costs one request its timeout, not every request.
"""

from __future__ import annotations

import logging
import sys
import threading
import time

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from redis.exceptions import RedisError
from rest_framework import exceptions, status

from clinic.fhir.outcome import fhir_error_response

log = logging.getLogger(__name__)

# What a cache call raises when its server is unreachable: redis-py's errors (connection
# refused, timeout) and OSError (the embedded file cache on a full or missing disk).
CACHE_ERRORS = (RedisError, OSError)
# psycopg's connection failures (server stopped, connection dropped) reach Django as these.
DATABASE_ERRORS = (OperationalError, InterfaceError)
RETRY_AFTER_SECONDS = 30
LOG_EVERY_SECONDS = 60.0


class Dependency:
    """One dependency the request path can do without: failures counted, logged sparingly."""

    def __init__(self, name: str, consequence: str, *, pause: float = 5.0):
        self.name = name
        self.consequence = consequence
        self.pause = pause
        self.count = 0  # decisions taken without it since the process started
        self._lock = threading.Lock()
        self._skip_until = 0.0
        self._logged_at: float | None = None
        self._unlogged = 0

    def usable(self) -> bool:
        """False for `pause` seconds after a failure: callers go straight to their fallback."""
        return time.monotonic() >= self._skip_until

    def unavailable(self, exc: BaseException | None = None) -> None:
        """Record one decision taken without the dependency (`exc`: the call that just failed)."""
        now = time.monotonic()
        with self._lock:
            self.count += 1
            self._unlogged += 1
            if exc is not None:
                self._skip_until = now + self.pause
            if self._logged_at is not None and now - self._logged_at < LOG_EVERY_SECONDS:
                return
            self._logged_at, unlogged, self._unlogged = now, self._unlogged, 0
        log.warning(
            "%s unavailable (%s): %s; %d time(s) since the last warning",
            self.name,
            f"{type(exc).__name__}: {exc}" if exc is not None else "recent failure",
            self.consequence,
            unlogged,
        )


CACHE = Dependency("cache", "rate limits fail open")
BROKER = Dependency("broker", "task not queued, its row stays due for the sweeper")


def degraded_counts() -> dict[str, int]:
    """This process's decisions taken without a dependency since it started."""
    return {"cache_fail_open": CACHE.count, "tasks_not_queued": BROKER.count}


def publish(task, *args, on_failure=None) -> bool:
    """`task.delay(*args)`, or False when the broker is down (logged and counted, never raised).

    For work whose row a sweeper picks up anyway; `on_failure` handles work that has none.
    """
    error = None
    if BROKER.usable():
        try:
            task.delay(*args)
        except Exception as exc:  # kombu's OperationalError, redis-py's errors: any means "not queued"
            error = exc
        else:
            return True
    BROKER.unavailable(error)
    if on_failure is not None:
        on_failure()
    return False


# --- database outage ----------------------------------------------------------------------


class DatabaseUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The service is temporarily unavailable (its database does not answer). Retry shortly."
    default_code = "service_unavailable"
    # DRF's exception handler turns `wait` into the Retry-After header.
    wait = RETRY_AFTER_SECONDS


def is_database_outage(exc: BaseException | None) -> bool:
    return isinstance(exc, DATABASE_ERRORS)


def database_unavailable_response(request) -> HttpResponse:
    if request.path.startswith("/fhir/"):
        response = fhir_error_response(503, "transient", DatabaseUnavailable.default_detail)
    elif request.path.startswith("/api/"):
        body = {
            "type": "about:blank",
            "title": "Service unavailable",
            "status": 503,
            "detail": DatabaseUnavailable.default_detail,
            "errors": {},
        }
        response = JsonResponse(body, status=503, content_type="application/problem+json")
    else:
        response = HttpResponse(
            "Service temporarily unavailable. Please try again in a minute.\n", status=503, content_type="text/plain"
        )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def server_error(request):
    """handler500: a database outage raised outside an API view (session or sign-in middleware,
    admin, pages) is a 503 as above; any other error is Django's 500 page."""
    from django.views.defaults import server_error as django_server_error

    if is_database_outage(sys.exc_info()[1]):
        return database_unavailable_response(request)
    return django_server_error(request)
