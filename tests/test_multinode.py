"""Several nodes against one PostgreSQL and one Redis, as a scaled-out clinic runs.

Two gunicorn servers (two processes each), two Celery workers and beat, all real processes:
- 20 parallel bookings of one slot, spread over both servers on separate connections, create
  exactly one appointment; the other 19 get the 409 that names the clash;
- 300 due reminders go out with one of the two workers killed (SIGKILL) mid-batch: none lost,
  duplicates bounded by the sends in flight at the kill, and reported;
- a second beat started by mistake waits as a standby behind RedBeat's lock (it schedules
  nothing while the first lives) and takes over when the first is killed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import threading
import time
import zoneinfo
from collections import Counter
from pathlib import Path

import pytest
import redis
import requests
from django.conf import settings
from django.utils import timezone

from clinic.models import Message, MessageStatus
from clinic.services import api_key_create
from clinic.tasks import dispatch_due_messages
from sessions.models import Appointment
from tests.factories import PatientFactory, bookable_service
from tests.messaging.seed import seed_due_messages
from tests.messaging.test_worker_delivery import CONCURRENCY, Worker, _test_database_url, broker, drain, sends
from tests.processes import celery_beat, project_env, stop_process, wait_for, web_server

pytestmark = [pytest.mark.slow, pytest.mark.processes, pytest.mark.django_db(transaction=True)]

__all__ = ["broker"]  # the fixture, imported for its use below

PARALLEL_BOOKINGS = 20
REMINDERS = 300
BEAT_LOCK_SECONDS = 20


@pytest.fixture
def slot(clinic, practitioner):
    """One bookable 45-minute slot a week ahead, and an integration key that may book it."""
    zone = zoneinfo.ZoneInfo(clinic.time_zone)
    service = bookable_service(clinic, practitioner, buffer_minutes=0)
    start = dt.datetime.combine(timezone.localdate(timezone=zone) + dt.timedelta(days=7), dt.time(10), tzinfo=zone)
    _, key = api_key_create(clinic=clinic, name="front desk", scopes=["appointments:read", "appointments:write"])
    patients = [PatientFactory(clinic=clinic) for _ in range(PARALLEL_BOOKINGS)]
    return {"service": service, "start": start, "key": key, "patients": patients}


def _book_in_parallel(bases: list[str], slot: dict, practitioner) -> list[requests.Response]:
    barrier = threading.Barrier(PARALLEL_BOOKINGS)
    responses: list[requests.Response | None] = [None] * PARALLEL_BOOKINGS

    def book(i: int) -> None:
        with requests.Session() as session:  # its own connection
            session.headers["Authorization"] = f"Bearer {slot['key']}"
            body = {
                "patient": slot["patients"][i].pk,
                "practitioner": practitioner.pk,
                "service": slot["service"].pk,
                "start": slot["start"].isoformat(),
            }
            barrier.wait(timeout=30)
            responses[i] = session.post(bases[i % len(bases)] + "/api/v1/appointments/", json=body, timeout=60)

    threads = [threading.Thread(target=book, args=(i,)) for i in range(PARALLEL_BOOKINGS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(response is not None for response in responses), "a booking request never returned"
    return responses


def test_two_web_servers_book_one_slot_once(slot, practitioner):
    env = project_env(
        DJANGO_ENV="test", DEBUG="false", LOG_LEVEL="error",
        DATABASE_URL=_test_database_url(), REDIS_URL=settings.CELERY_BROKER_URL,
    )  # fmt: skip
    with contextlib.ExitStack() as servers:
        bases = [servers.enter_context(web_server(env, workers=2)) for _ in range(2)]
        responses = _book_in_parallel(bases, slot, practitioner)

    statuses = Counter(response.status_code for response in responses)
    assert statuses == {201: 1, 409: PARALLEL_BOOKINGS - 1}, [r.text for r in responses if r.status_code >= 500]
    booked = Appointment.objects.filter(practitioner=practitioner, start=slot["start"])
    assert booked.count() == 1
    clash = next(response for response in responses if response.status_code == 409).json()
    assert clash["status"] == 409
    # Both servers refused some: the guarantee held across nodes, not inside one process.
    assert {i % 2 for i, response in enumerate(responses) if response.status_code == 409} == {0, 1}


def _beat_env(var_dir: Path) -> dict[str, str]:
    return project_env(
        DJANGO_ENV="test", LOG_LEVEL="warning", DATABASE_URL=_test_database_url(),
        REDIS_URL=settings.CELERY_BROKER_URL, VAR_DIR=str(var_dir),
        BEAT_LOCK_TIMEOUT_SECONDS=str(BEAT_LOCK_SECONDS),
    )  # fmt: skip


def _log(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def test_two_workers_lose_no_reminder_when_one_is_killed_and_a_second_beat_stands_by(tmp_path, broker):
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete("clinic:redbeat:lock")
    ids = seed_due_messages(REMINDERS, label="multinode")
    deadline = time.monotonic() + 90

    beats: list = []
    workers: list[Worker] = []
    try:
        # The first beat takes the lock; the second, started by mistake on another node, waits.
        first_log, second_log = tmp_path / "beat-1.log", tmp_path / "beat-2.log"
        (tmp_path / "beat-1").mkdir()
        (tmp_path / "beat-2").mkdir()
        with open(first_log, "w") as out:
            beats.append(celery_beat(_beat_env(tmp_path / "beat-1"), stdout=out))
        wait_for(lambda: "beat: Acquired lock" in _log(first_log), timeout=30, what="the first beat's lock")
        with open(second_log, "w") as out:
            beats.append(celery_beat(_beat_env(tmp_path / "beat-2"), stdout=out))
        wait_for(lambda: "beat: Starting" in _log(second_log), timeout=30, what="the second beat")

        # Two worker nodes, each with its own folder for the file mail and SMS backends.
        for n in (1, 2):
            (tmp_path / f"node-{n}").mkdir()
            worker = Worker(tmp_path / f"node-{n}", MESSAGE_CLAIM_LEASE_SECONDS="8")
            worker.start()
            workers.append(worker)

        def sent() -> Counter:
            return sends(tmp_path / "node-1") + sends(tmp_path / "node-2")

        dispatch_due_messages.delay()
        while sum(sent().values()) < REMINDERS // 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        workers[0].kill()
        at_kill = sum(sent().values())
        assert at_kill < REMINDERS, "everything was sent before the kill; the test proves nothing"
        in_flight = Message.objects.filter(pk__in=ids, status=MessageStatus.SENDING).count()

        # The surviving worker finishes the batch, the dead one's claims included once their lease lapses.
        drain(ids, deadline)
        statuses = Counter(Message.objects.filter(pk__in=ids).values_list("status", flat=True))
        assert statuses == {MessageStatus.SENT: REMINDERS}
        counted = sent()
        lost = {f"msg-{pk}" for pk in ids} - set(counted)
        duplicates = sum(n - 1 for n in counted.values())
        print(
            f"\n2 workers, SIGKILL of one after {at_kill} sends ({in_flight} claimed rows unfinished): "
            f"lost {len(lost)}, duplicates {duplicates} (bound: {CONCURRENCY} sends in flight on the killed node)"
        )
        assert lost == set()
        assert duplicates <= CONCURRENCY

        # While the first beat lived the second never held the lock nor scheduled anything.
        assert "beat: Acquired lock" not in _log(second_log)
        assert "Sending due task" not in _log(second_log)
        # The first beat's node dies: the standby takes over once the lock lapses.
        os.killpg(beats[0].pid, signal.SIGKILL)
        beats[0].wait(timeout=30)
        wait_for(
            lambda: "beat: Acquired lock" in _log(second_log),
            timeout=BEAT_LOCK_SECONDS + 20,
            what="the standby beat taking over",
        )
    finally:
        for worker in workers:
            worker.stop()
        for beat in beats:
            stop_process(beat)
        client.delete("clinic:redbeat:lock")
        client.close()
