"""Helpers for tests that start real processes (manage.py, Celery workers)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
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
    return _celery(env, stdout, "worker", "--without-gossip", "--without-mingle", *options)


def celery_beat(env: dict[str, str], *, stdout) -> subprocess.Popen:
    """Celery beat of this project (INFO log, where RedBeat reports its lock) in its own process group."""
    return _celery(env, stdout, "beat", "--loglevel=INFO")


def _celery(env: dict[str, str], stdout, *arguments: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "clinic", *arguments],
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


# --- private servers for fault tests ------------------------------------------------------
# A fault test stops a dependency: never the shared PostgreSQL or Redis other tests (and other
# test runs) use, always a private one on a free port that this test alone knows.


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(check: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready after {timeout} s")
        time.sleep(0.1)


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2)  # noqa: S310 - a local test server
    except urllib.error.HTTPError:
        return True  # an error status is an answer
    except OSError:
        return False
    return True


class PrivateRedis:
    """A redis-server of one test on a free port, no persistence: kill it and start it again."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
            + ["--daemonize", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        import redis

        def pong() -> bool:
            try:
                return redis.Redis(port=self.port, socket_connect_timeout=1).ping()
            except redis.exceptions.ConnectionError:
                return False

        wait_for(pong, timeout=10, what="private redis-server")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


class PrivatePostgres:
    """A PostgreSQL cluster of one test (initdb in a temporary folder, a free port); `stop()`
    is an immediate shutdown, as a crash or a failover looks to the app."""

    def __init__(self, directory: Path):
        self.bin = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]
        self.directory = directory
        self.port = free_port()
        # initdb and postgres refuse to run as root (CI containers): then they run as postgres.
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            import pwd

            account = pwd.getpwnam("postgres")
            os.chown(directory, account.pw_uid, account.pw_gid)

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *command: str, check: bool = True) -> None:
        subprocess.run([*self.as_user, *command], check=check, capture_output=True, timeout=120)

    def init(self) -> None:
        data = str(self.directory / "data")
        self._run(str(self.bin / "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.directory / "data"), "-o", options, "-l",
            str(self.directory / "log"), "-w", "start",
        )  # fmt: skip

    def stop(self, *, check: bool = True) -> None:
        data = str(self.directory / "data")
        self._run(str(self.bin / "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop", check=check)

    def copy_schema(self, *, source_url: str, database: str) -> None:
        """`database` with the tables of `source_url` (a migrated database) and its migration
        history, in seconds where running the migrations takes a minute or more."""
        self._run(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", database)
        for only in (["--schema-only"], ["--data-only", "--table=django_migrations"]):
            dump = subprocess.run(
                [str(self.bin / "pg_dump"), "--no-owner", "--no-privileges", *only, source_url],
                check=True, capture_output=True, timeout=120,
            )  # fmt: skip
            subprocess.run(
                [str(self.bin / "psql"), "-q", "-v", "ON_ERROR_STOP=1", self.url(database)],
                input=dump.stdout, check=True, capture_output=True, timeout=120,
            )  # fmt: skip


@contextlib.contextmanager
def web_server(env: dict[str, str], *, workers: int = 1) -> Iterator[str]:
    """gunicorn serving this project (`workers` processes) on a free port; yields its base URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "clinic.wsgi:application", "--bind", f"127.0.0.1:{port}"]
        + ["--workers", str(workers), "--timeout", "60"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited:\n{stop_process(process)}")
        return _answers(f"{base}/healthz")

    try:
        wait_for(ready, timeout=60, what="gunicorn")
    except TimeoutError:
        raise TimeoutError(stop_process(process)) from None
    try:
        yield base
    finally:
        stop_process(process)
