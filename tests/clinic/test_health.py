"""Liveness (/healthz) and readiness (/readyz) against the real database and broker, against
ones that are down, with beat's heartbeat fresh, stale or missing, and with an outbox that
workers do not keep up with; beat's real process stamps its heartbeat."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pytest
from django.db import connection
from django.utils import timezone

from clinic.models import WorkerHeartbeat
from clinic.services import heartbeat_record
from tests.factories import AppointmentFactory, MessageFactory
from tests.processes import ROOT, manage, project_env, stop_process, wait_for

PROBE = (
    "import json; from django.test import Client; r = Client().get('/readyz');"
    " print(json.dumps({'status': r.status_code, 'body': r.json()}))"
)


def _probe(**env) -> dict:
    result = manage("shell", "-c", PROBE, env=project_env(**env))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def _beat_seen(seconds_ago: float) -> None:
    WorkerHeartbeat.objects.update_or_create(
        name="beat", defaults={"seen_at": timezone.now() - dt.timedelta(seconds=seconds_ago)}
    )


def test_healthz_is_liveness_and_asks_no_dependency(client):
    # No database access is allowed in this test: a query would fail it.
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "degraded": {"cache_fail_open": 0, "tasks_not_queued": 0}}


@pytest.mark.django_db
def test_readyz_is_200_when_database_broker_beat_and_outbox_are_fine(client):
    _beat_seen(30)
    heartbeat_record(name="worker")
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["database"] == {"ok": True, "detail": "postgresql"}
    assert body["broker"] == {"ok": True, "detail": "redis"}
    assert body["beat"]["ok"] is True
    assert 30 <= body["beat"]["age_seconds"] <= 32
    assert body["worker"]["age_seconds"] <= 2
    assert body["outbox"] == {"ok": True, "due": 0, "oldest_due_age_seconds": 0, "max_lag_seconds": 900}


@pytest.mark.django_db
@pytest.mark.parametrize("seen", [None, 181])
def test_readyz_is_503_when_beat_is_dead_or_never_ran(client, seen):
    if seen is not None:
        _beat_seen(seen)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["beat"]["ok"] is False
    assert response.json()["beat"]["age_seconds"] == seen


@pytest.mark.django_db
def test_readyz_is_503_when_the_oldest_due_message_waits_too_long(client, clinic):
    _beat_seen(10)
    now = timezone.now()
    for minutes in (3, 16):
        MessageFactory(appointment=AppointmentFactory(clinic=clinic), due_at=now - dt.timedelta(minutes=minutes))
    response = client.get("/readyz")
    assert response.status_code == 503
    outbox = response.json()["outbox"]
    assert (outbox["ok"], outbox["due"]) == (False, 2)
    assert 16 * 60 <= outbox["oldest_due_age_seconds"] < 17 * 60


@pytest.mark.processes
@pytest.mark.django_db
def test_readyz_is_503_naming_the_broker_when_redis_is_down():
    test_db = connection.settings_dict["NAME"]  # the test database (settings keep the configured name)
    result = _probe(DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{test_db}", REDIS_URL="redis://127.0.0.1:1/0")
    assert result["status"] == 503
    assert result["body"]["broker"]["ok"] is False
    assert result["body"]["database"]["ok"] is True


@pytest.mark.processes
def test_readyz_is_503_naming_the_database_when_it_is_down():
    result = _probe(DATABASE_URL="postgres://postgres@127.0.0.1:1/nowhere")
    assert result["status"] == 503
    body = result["body"]
    assert body["database"]["ok"] is False
    assert body["broker"]["ok"] is True
    assert body["beat"] == {"ok": False, "detail": "database unavailable"}


@pytest.mark.processes
@pytest.mark.django_db(transaction=True)
def test_a_running_beat_stamps_its_heartbeat_and_the_check_command_reads_it(settings, tmp_path):
    test_db = connection.settings_dict["NAME"]  # the test database (settings keep the configured name)
    env = project_env(DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{test_db}")
    stale = manage("heartbeat_check", "beat", env=env)
    assert stale.returncode == 1
    assert "beat: no heartbeat recorded yet" in stale.stderr
    beat = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "clinic", "beat", "--loglevel=INFO", f"--schedule={tmp_path / 'sched'}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        wait_for(lambda: WorkerHeartbeat.objects.filter(name="beat").exists(), timeout=60, what="beat's heartbeat")
    finally:
        output = stop_process(beat)
    fresh = manage("heartbeat_check", "beat", "--max-age", "120", env=env)
    assert fresh.returncode == 0, fresh.stderr + output
    assert fresh.stdout.startswith("beat: last heartbeat")
    WorkerHeartbeat.objects.filter(name="beat").update(seen_at=timezone.now() - dt.timedelta(minutes=5))
    old = manage("heartbeat_check", "beat", "--max-age", "120", env=env)
    assert old.returncode == 1
    assert "more than 120 s" in old.stderr
