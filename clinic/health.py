"""Liveness (/healthz) and readiness (/readyz).

- /healthz: this process answers HTTP. No dependency is asked, so a database or Redis outage
  never gets healthy web processes restarted (they serve 503s and recover on their own). It
  shows what the process did without its dependencies since it started (`degraded`).
- /readyz: the node can do its work: the database and the broker answer, beat sent its
  heartbeat within BEAT_HEARTBEAT_MAX_AGE seconds (beat is alive: reminders are being
  claimed), and the oldest due message of the outbox waits less than OUTBOX_MAX_LAG seconds
  (workers keep up). 503 naming what is wrong otherwise.

Both are exempt from the HTTPS redirect (probes speak plain HTTP inside the network) and
need an allowed Host like every request.
"""

from __future__ import annotations

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from clinic.degrade import degraded_counts
from clinic.observability import probes


def _check(probe) -> tuple[bool, str]:
    try:
        return True, probe()
    except Exception as exc:  # any failure means "down"; the reason is reported
        return False, type(exc).__name__


@never_cache
@require_GET
def healthz(request):
    return JsonResponse({"status": "ok", "degraded": degraded_counts()})


def _work_state() -> dict:
    """Beat's heartbeat and the outbox's lag, read from the database."""
    try:
        ages = probes.heartbeat_ages()
        outbox = probes.outbox_backlog()
    except Exception as exc:  # the database answered SELECT 1 but not this (e.g. not migrated)
        reason = type(exc).__name__
        return {"beat": {"ok": False, "detail": reason}, "outbox": {"ok": False, "detail": reason}}
    beat_age, beat_limit = ages["beat"], settings.BEAT_HEARTBEAT_MAX_AGE
    return {
        "beat": {
            "ok": beat_age is not None and beat_age <= beat_limit,
            "age_seconds": None if beat_age is None else round(beat_age),
            "max_age_seconds": beat_limit,
        },
        "worker": {"age_seconds": None if ages["worker"] is None else round(ages["worker"])},
        "outbox": {
            "ok": outbox.oldest_due_age <= settings.OUTBOX_MAX_LAG,
            "due": outbox.due,
            "oldest_due_age_seconds": round(outbox.oldest_due_age),
            "max_lag_seconds": settings.OUTBOX_MAX_LAG,
        },
    }


@never_cache
@require_GET
def readyz(request):
    db_ok, db_detail = _check(probes.database_ping)
    broker_ok, broker_detail = _check(probes.broker_ping)
    body = {
        "database": {"ok": db_ok, "detail": db_detail},
        "broker": {"ok": broker_ok, "detail": broker_detail},
    }
    if db_ok:
        body.update(_work_state())
    else:
        body.update({part: {"ok": False, "detail": "database unavailable"} for part in ("beat", "outbox")})
    ready = all(part["ok"] for part in body.values() if "ok" in part)
    body = {"status": "ok" if ready else "unavailable", **body, "degraded": degraded_counts()}
    return JsonResponse(body, status=200 if ready else 503)
