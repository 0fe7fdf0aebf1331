"""The baseline task of bench.reminders: does nothing but count itself done."""

from __future__ import annotations

import os

import redis
from celery import shared_task

_client: redis.Redis | None = None
COUNTER = "bench:noop:done"


@shared_task(name="bench.noop")
def noop() -> None:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ["REDIS_URL"])
    _client.incr(COUNTER)
