"""What the readiness check and the metrics ask of the database and the broker.

Each probe is one cheap query (or one broker call) served by an existing index; the callers
decide what a failure means (readiness: not ready; metrics: the series is left out).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.db.models import Count, Min, Q
from django.utils import timezone

from clinic.celery import app
from clinic.models import Message, MessageStatus, WebhookDelivery, WebhookDeliveryStatus, WorkerHeartbeat

# The queues workers consume (the project routes every task to Celery's default queue).
QUEUES = ("celery",)


def database_ping() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return connection.vendor


def broker_ping() -> str:
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
        if conn.transport.driver_type == "redis":
            conn.default_channel.client.ping()
    return "redis" if settings.REDIS_URL else "filesystem"


def queue_lengths() -> dict[str, int]:
    """Messages waiting in each queue (not those a worker holds unacknowledged)."""
    with app.connection_for_read() as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
        channel = conn.default_channel
        # Not passive: a queue no worker has declared yet is empty, not an error (on Redis and the
        # filesystem transport a declaration writes nothing).
        return {name: channel.queue_declare(queue=name).message_count for name in QUEUES}


@dataclass(frozen=True)
class Outbox:
    due: int  # scheduled messages whose due time has come
    oldest_due_age: float  # seconds since the oldest of them was due (0 when none)


def outbox_backlog(now: dt.datetime | None = None) -> Outbox:
    """Served by the partial index message_due_scheduled (status = 'scheduled', due_at)."""
    now = now or timezone.now()
    row = Message.objects.filter(status=MessageStatus.SCHEDULED, due_at__lte=now).aggregate(
        due=Count("id"), oldest=Min("due_at")
    )
    oldest = row["oldest"]
    return Outbox(due=row["due"], oldest_due_age=(now - oldest).total_seconds() if oldest else 0.0)


def webhook_failures() -> dict[str, int]:
    """Deliveries that gave up, and pending ones that have failed at least once (retrying)."""
    return WebhookDelivery.objects.aggregate(
        failed=Count("id", filter=Q(status=WebhookDeliveryStatus.FAILED)),
        retrying=Count("id", filter=Q(status=WebhookDeliveryStatus.PENDING, attempts__gt=0)),
    )


def heartbeat_ages(now: dt.datetime | None = None) -> dict[str, float | None]:
    """Seconds since beat last sent its heartbeat task (`beat`) and a worker last ran it (`worker`)."""
    now = now or timezone.now()
    seen = dict(WorkerHeartbeat.objects.filter(name__in=("beat", "worker")).values_list("name", "seen_at"))
    return {name: (now - seen[name]).total_seconds() if name in seen else None for name in ("beat", "worker")}
