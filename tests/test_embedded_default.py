"""Smoke test of the embedded default that `make run` uses when nothing is configured:
a fresh SQLite file and the filesystem broker, migrate, seed, and one task delivered
by a real Celery worker process."""

from __future__ import annotations

import time

import pytest

from tests.processes import celery_worker, manage, project_env, stop_process

pytestmark = [pytest.mark.slow, pytest.mark.processes]


def test_fresh_sqlite_and_filesystem_broker_migrate_seed_and_deliver(tmp_path):
    env = project_env(DATABASE_URL=None, REDIS_URL=None, DJANGO_ENV="development", VAR_DIR=str(tmp_path))
    assert manage("migrate", "--no-input", env=env).returncode == 0
    seeded = manage("seed_demo", env=env)
    assert seeded.returncode == 0, seeded.stderr
    assert "Demo clinic ready." in seeded.stdout
    assert manage("seed_demo", env=env).returncode == 0

    worker = celery_worker(env, "--pool=solo", "--loglevel=INFO")
    try:
        sent = manage(
            "shell", "-c", "from clinic.tasks import record_heartbeat; record_heartbeat.delay('smoke')", env=env
        )
        assert sent.returncode == 0, sent.stderr
        check = "from clinic.models import WorkerHeartbeat as W; print(W.objects.filter(name='smoke').exists())"
        deadline = time.monotonic() + 60
        delivered = False
        while time.monotonic() < deadline and not delivered:
            delivered = manage("shell", "-c", check, env=env).stdout.strip().endswith("True")
            if not delivered:
                time.sleep(1)
        assert delivered, "the worker did not run the task within 60 s"
    finally:
        output = stop_process(worker)
    assert "succeeded" in output
    assert (tmp_path / "clinic.sqlite3").exists()
