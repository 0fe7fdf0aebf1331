"""Delivery by a real Celery worker on the real Redis and PostgreSQL.

The worker runs the project's own tasks with the file email and SMS backends, so
every send leaves one file the test can count: 300 due messages go out exactly
once, and with the worker killed (SIGKILL) mid-batch and restarted none is lost
and only messages whose send was in flight at the kill can go out twice.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection

from clinic.celery import app
from clinic.models import Message, MessageStatus
from clinic.tasks import dispatch_due_messages
from tests.messaging.seed import seed_due_messages
from tests.processes import broker_to_myself, celery_worker, project_env, stop_process

pytestmark = [pytest.mark.slow, pytest.mark.processes, pytest.mark.django_db(transaction=True)]

COUNT = 300
CONCURRENCY = 2
DEADLINE_SECONDS = 60


def _test_database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def broker():
    """An empty queue before the test; no left-over unacknowledged tasks after it."""
    with broker_to_myself(settings.CELERY_BROKER_URL):
        client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        app.control.purge()
        yield
        app.control.purge()
        client.delete("unacked", "unacked_index", "unacked_mutex")
        client.close()


class Worker:
    def __init__(self, var_dir: Path, **env: str) -> None:
        self.var_dir = var_dir
        self.env = project_env(
            DATABASE_URL=_test_database_url(),
            REDIS_URL=settings.CELERY_BROKER_URL,
            DJANGO_ENV="test",
            VAR_DIR=str(var_dir),
            EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
            SMS_BACKEND="clinic.messaging.channels.FileSmsBackend",
            LOG_LEVEL="warning",
            **env,
        )
        self.process: subprocess.Popen | None = None
        self.runs = 0

    def start(self) -> None:
        self.runs += 1
        log = open(self.var_dir / f"worker-{self.runs}.log", "w")  # noqa: SIM115 - closed with the process
        self.process = celery_worker(
            self.env, "--pool=prefork", f"--concurrency={CONCURRENCY}", "--without-heartbeat", "--loglevel=WARNING",
            stdout=log,
        )  # fmt: skip
        log.close()

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process:
            stop_process(self.process)


@pytest.fixture
def worker(tmp_path, broker):
    started = []

    def make(**env: str) -> Worker:
        w = Worker(tmp_path, **env)
        started.append(w)
        return w

    yield make
    for w in started:
        w.stop()


def sends(var_dir: Path) -> Counter:
    """How many times each message was handed to a provider, from the files the backends wrote."""
    counted: Counter = Counter()
    for path in (var_dir / "mail").glob("*.log") if (var_dir / "mail").exists() else []:
        counted.update(re.findall(r"^X-Clinic-Message-Key: (msg-\d+)$", path.read_text(), flags=re.MULTILINE))
    for path in (var_dir / "sms").glob("*.json") if (var_dir / "sms").exists() else []:
        counted[json.loads(path.read_text())["key"]] += 1
    return counted


def drain(ids: list[int], deadline: float) -> None:
    """Kick the sweeper (as beat would) until every message is finished."""
    while time.monotonic() < deadline:
        dispatch_due_messages.delay()
        if not Message.objects.filter(pk__in=ids, status__in=[MessageStatus.SCHEDULED, MessageStatus.SENDING]).exists():
            return
        time.sleep(1)


def test_300_due_messages_are_each_sent_exactly_once(worker, tmp_path):
    ids = seed_due_messages(COUNT)
    deadline = time.monotonic() + DEADLINE_SECONDS
    worker().start()
    drain(ids, deadline)
    statuses = Counter(Message.objects.filter(pk__in=ids).values_list("status", flat=True))
    assert statuses == {MessageStatus.SENT: COUNT}
    counted = sends(tmp_path)
    assert set(counted) == {f"msg-{pk}" for pk in ids}
    assert set(counted.values()) == {1}


def test_a_worker_killed_mid_batch_loses_nothing_and_duplicates_only_what_was_in_flight(worker, tmp_path):
    ids = seed_due_messages(COUNT)
    # Short lease so the test need not wait 5 minutes for the claims the dead worker held.
    first = worker(MESSAGE_CLAIM_LEASE_SECONDS="8")
    deadline = time.monotonic() + DEADLINE_SECONDS
    first.start()
    dispatch_due_messages.delay()
    while sum(sends(tmp_path).values()) < COUNT // 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    first.kill()
    at_kill = sum(sends(tmp_path).values())
    assert at_kill < COUNT, "the worker finished before the kill; the test proves nothing"
    in_flight = Message.objects.filter(pk__in=ids, status=MessageStatus.SENDING).count()

    worker(MESSAGE_CLAIM_LEASE_SECONDS="8").start()
    drain(ids, deadline)

    statuses = Counter(Message.objects.filter(pk__in=ids).values_list("status", flat=True))
    assert statuses == {MessageStatus.SENT: COUNT}
    counted = sends(tmp_path)
    lost = {f"msg-{pk}" for pk in ids} - set(counted)
    duplicates = sum(n - 1 for n in counted.values())
    print(
        f"\nSIGKILL after {at_kill} sends, {in_flight} claimed rows unfinished: "
        f"lost {len(lost)}, duplicates {duplicates} (bound: {CONCURRENCY} sends in flight)"
    )
    assert lost == set()
    # Only a send whose provider call had finished when the process died, before its
    # result was recorded, is repeated: at most one per worker process.
    assert duplicates <= CONCURRENCY
