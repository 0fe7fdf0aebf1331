"""/healthz: is the database reachable, is the broker reachable; what this process did without them."""

from __future__ import annotations

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from clinic.celery import app
from clinic.degrade import degraded_counts
from clinic.models import WorkerHeartbeat


def _check_database() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any failure means "down"; the reason is reported
        return False, type(exc).__name__
    return True, connection.vendor


def _check_broker() -> tuple[bool, str]:
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
            if conn.transport_cls == "redis" or conn.transport.driver_type == "redis":
                conn.default_channel.client.ping()
    except Exception as exc:  # any failure means "down"; the reason is reported
        return False, type(exc).__name__
    return True, "redis" if settings.REDIS_URL else "filesystem"


@never_cache
@require_GET
def healthz(request):
    db_ok, db_detail = _check_database()
    broker_ok, broker_detail = _check_broker()
    body = {
        "status": "ok" if db_ok and broker_ok else "unavailable",
        "database": {"ok": db_ok, "detail": db_detail},
        "broker": {"ok": broker_ok, "detail": broker_detail},
        # Since this process started: requests let through unthrottled, tasks left to the sweepers.
        "degraded": degraded_counts(),
    }
    if db_ok:
        try:
            heartbeat = WorkerHeartbeat.objects.filter(name="worker").first()
        except DatabaseError:  # e.g. not migrated yet; informational only
            heartbeat = None
        body["worker_last_seen"] = heartbeat.seen_at.isoformat() if heartbeat else None
    return JsonResponse(body, status=200 if db_ok and broker_ok else 503)
