"""Benchmark: 10,000 due reminders drained by one worker with 2 processes, against the
same number of no-op Celery tasks in the same run (target: at most 3x).

    .venv/bin/python -m bench.reminders [--count 10000]

Uses its own PostgreSQL database (`<DATABASE_URL name>_bench_reminders`, created and
migrated here) and REDIS_URL (default redis://127.0.0.1:6379/0), the console email and
SMS backends (output to a log file), and writes a Markdown report to bench/results/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def _database_url() -> tuple[str, str]:
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/clinic")
    parts = urlsplit(base)
    name = parts.path.lstrip("/") + "_bench_reminders"
    return urlunsplit(parts._replace(path=f"/{name}")), urlunsplit(parts._replace(path="/postgres"))


def _create_database(url: str, admin_url: str) -> None:
    import psycopg

    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies --count (make bench SCALE=...)")
    args = parser.parse_args()
    count = int(args.count * args.scale)

    url, admin_url = _database_url()
    redis_url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    var_dir = Path(tempfile.mkdtemp(prefix="bench-reminders-"))
    os.environ.update(
        DJANGO_SETTINGS_MODULE="clinic.settings",
        DJANGO_ENV="test",
        DATABASE_URL=url,
        REDIS_URL=redis_url,
        VAR_DIR=str(var_dir),
        EMAIL_BACKEND="django.core.mail.backends.console.EmailBackend",
        SMS_BACKEND="clinic.messaging.channels.ConsoleSmsBackend",
        # Everything due is claimed in one go: the benchmark times the pipeline, not beat's minute.
        MESSAGE_MAX_PER_TICK=str(count),
        LOG_LEVEL="warning",
        # As in production: DEBUG on would also record every query in memory.
        DEBUG="false",
    )
    _create_database(url, admin_url)

    import django

    django.setup()
    import redis
    from django.core.management import call_command

    from bench.tasks import COUNTER, noop
    from clinic.celery import app
    from clinic.models import Message, MessageStatus
    from clinic.tasks import dispatch_due_messages
    from tests.messaging.seed import seed_due_messages

    call_command("migrate", verbosity=0)
    call_command("flush", interactive=False, verbosity=0)
    client = redis.Redis.from_url(redis_url)
    app.control.purge()
    client.delete(COUNTER)

    log = open(var_dir / "worker.log", "w")  # noqa: SIM115 - closed below
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "clinic",
            "worker",
            "--pool=prefork",
            "--concurrency=2",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-I",
            "bench.tasks",
            "--loglevel=WARNING",
        ],  # fmt: skip
        cwd=ROOT,
        env=dict(os.environ),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        noop.delay()  # warm-up: the worker is up and has imported everything
        _wait(lambda: int(client.get(COUNTER) or 0) == 1, 120, "the worker to start")
        client.delete(COUNTER)

        started = time.perf_counter()
        for _ in range(count):
            noop.delay()
        _wait(lambda: int(client.get(COUNTER) or 0) >= count, 900, "the no-op tasks")
        noop_seconds = time.perf_counter() - started

        ids = seed_due_messages(count, label="bench")
        # Polled every 50 ms: by id range (one bulk insert into a flushed table, so exactly
        # the seeded rows) rather than `pk__in=ids`, whose 10,000 parameters cost the polling
        # process about 75 ms of CPU per poll, taken from the 2 cores the worker runs on.
        if len(ids) != max(ids) - min(ids) + 1:
            raise SystemExit("the seeded message ids are not one range")
        seeded = Message.objects.filter(pk__gte=min(ids), pk__lte=max(ids))
        started = time.perf_counter()
        dispatch_due_messages.delay()
        sent = seeded.filter(status=MessageStatus.SENT)
        _wait(lambda: sent.count() >= count, 1800, "the reminders")
        reminder_seconds = time.perf_counter() - started
        not_sent = Message.objects.filter(pk__in=ids).exclude(status=MessageStatus.SENT).count()
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=60)
        log.close()
        client.close()

    ratio = reminder_seconds / noop_seconds
    now = dt.datetime.now(dt.UTC)
    report = f"""# Reminders benchmark ({now:%Y-%m-%d %H:%M} UTC)

{count:,} due reminders (half email, half SMS, console backends) drained by one Celery worker
with 2 prefork processes against Redis `{redis_url}`, compared with {count:,} no-op tasks in
the same run. The reminder time runs from queueing the sweeper until the last row is `sent`
(claim in batches, one send task per chunk of rows, re-check, render, send, record each).

| | seconds | per message (ms) |
| --- | ---: | ---: |
| {count:,} no-op tasks | {noop_seconds:.1f} | {1000 * noop_seconds / count:.2f} |
| {count:,} reminders | {reminder_seconds:.1f} | {1000 * reminder_seconds / count:.2f} |
| **ratio** | **{ratio:.2f}x** | target <= 3x |

Not sent at the end: {not_sent}. Machine: {platform.platform()}, {os.cpu_count()} CPUs,
load average {", ".join(f"{x:.1f}" for x in os.getloadavg())} (shared with other jobs).
"""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"reminders-{now:%Y%m%d-%H%M}.md"
    path.write_text(report)
    sys.stdout.write(report + f"\nwritten to {path.relative_to(ROOT)}\n")


if __name__ == "__main__":
    main()
