"""Helpers for tests that start real processes (manage.py, Celery workers)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def project_env(**overrides: str | None) -> dict[str, str]:
    """The current environment with overrides; a None value removes the variable."""
    env = dict(os.environ)
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def manage(*args: str, env: dict[str, str] | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env or project_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def celery_worker(env: dict[str, str], *options: str, stdout=subprocess.PIPE) -> subprocess.Popen:
    """A real Celery worker of this project in its own process group; stop it with stop_process().

    `options` are worker options (`--pool=solo`, `--loglevel=INFO`); gossip and mingle are off
    (one worker, nothing to sync). With the default `stdout`, its log is what stop_process returns.
    """
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "clinic", "worker", "--without-gossip", "--without-mingle", *options],
        cwd=ROOT,
        env=env,
        stdout=stdout,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def stop_process(process: subprocess.Popen, *, timeout: int = 30) -> str:
    """SIGTERM to the process group, SIGKILL if it has not ended within `timeout`; its piped output."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate(timeout=timeout)
    return output or ""


@contextlib.contextmanager
def broker_to_myself(broker_url: str) -> Iterator[None]:
    """Hold the Redis broker's queue alone for the block, across pytest-xdist workers.

    Every test process publishes to the same queue: a real worker started by one test would
    take another test's tasks (and look for their rows in its own database), and a purge would
    drop them. Tests that start a worker on Redis, or purge its queue, take turns here.
    """
    name = hashlib.sha256(broker_url.encode()).hexdigest()[:16]
    with open(Path(tempfile.gettempdir()) / f"clinic-tests-broker-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
