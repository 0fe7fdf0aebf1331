"""`make bench`: dataset, gunicorn on PostgreSQL with production settings, scenarios, report.

    python -m bench                  # default scale (clinic chain; builds a large dataset once)
    python -m bench --scale small    # a few minutes
    python -m bench --scale smoke    # seconds; what the test suite runs so this can't rot

Every figure is reported next to baselines measured in the same run (a trivial
view and a single-row DRF retrieve): this machine is shared and noisy, so only
ratios mean anything.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Timing:
    saturation_seconds: float
    rate: float
    rate_seconds: float
    concurrency: int


TIMINGS = {
    # Smoke figures are never judged: half-second saturation (a second at the fixed rate, so
    # that always sends at least one request) keeps the test suite's run short.
    "smoke": Timing(0.5, 10, 1.0, 4),
    "small": Timing(3.0, 50, 6.0, 8),
    "default": Timing(10.0, 100, 30.0, 8),
}
# The default run also measures the front-desk requests on a dataset a tenth the size (growth).
GROWTH = {"default": "tenth"}
# Scales whose growth step compares the dataset with itself: the smoke run keeps that code running.
GROWTH_AGAINST_ITSELF = {"smoke"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ensure_database(url: str, *, fresh: bool = False) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if fresh:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def _worker_peak_memory_mb(master_pid: int) -> float:
    peak = 0.0
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children")
    for pid in children.read_text().split() if children.exists() else []:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peak = max(peak, int(line.split()[1]) / 1024)
    return peak


def _start_gunicorn(env: dict, port: int, workers: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "bench.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ],  # fmt: skip
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/bench/trivial", timeout=2) as response:
                if response.status == 200:
                    return process
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit("gunicorn did not answer within 60 s")


# The booking and reminders benchmarks run as their own programs (each builds its own
# dataset and measures against its own baseline in the same run); the report quotes them.
SUB_BENCHMARKS = {
    "smoke": [],
    "small": [("reminders", ["-m", "bench.reminders", "--count", "2000"]),
              ("booking", ["-m", "bench.booking", "--requests", "200"])],
    "default": [("reminders", ["-m", "bench.reminders", "--count", "10000"]),
                ("booking", ["-m", "bench.booking"])],
}  # fmt: skip


def _sub_benchmarks(scale: str) -> str:
    sections = []
    for name, command in SUB_BENCHMARKS[scale]:
        print(f"bench: {name} benchmark", flush=True)
        done = subprocess.run([sys.executable, *command], cwd=ROOT, capture_output=True, text=True, check=False)
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-25:])
        status = "finished" if done.returncode == 0 else f"FAILED (exit {done.returncode})"
        sections.append(f"\n## {name.capitalize()} benchmark ({status})\n\n```\n{tail}\n```\n")
    return "".join(sections)


def _environment(scale: str) -> dict:
    database_url = os.environ.get("BENCH_DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/clinic_bench_{scale}")
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
    if scale in GROWTH.values():
        database_url = database_url.rsplit("/", 1)[0] + f"/clinic_bench_{scale}"
        # Its own queue and worker: tasks queued by one dataset's server are run against that
        # dataset, and each server has a worker doing its follow-up work alongside it.
        parts = urlsplit(redis_url)
        redis_url = urlunsplit(parts._replace(path=f"/{int(parts.path.strip('/') or 0) + 1}"))
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DJANGO_ENV": "production",
        "SECRET_KEY": os.environ.get("BENCH_SECRET_KEY") or secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend",
        "SMS_BACKEND": "clinic.messaging.channels.ConsoleSmsBackend",
        "LOG_LEVEL": "error",  # 409s are answers here, not news
    }


def _prepare(scale_name: str) -> dict:
    """Builds (or reuses) the dataset in this process; returns what the scenarios need."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    from bench import dataset

    scale = dataset.SCALES[scale_name]
    print(f"bench: scale {scale.name}: {scale.patients:,} patients, {scale.appointments:,} appointments, "
          f"{scale.notes:,} notes, {scale.messages:,} messages", flush=True)  # fmt: skip
    call_command("migrate", verbosity=0)
    if dataset.started() and not dataset.resumable(scale):
        print("bench: the dataset there is incomplete or another size; starting from a fresh database", flush=True)
        connections.close_all()
        _ensure_database(os.environ["DATABASE_URL"], fresh=True)
        call_command("migrate", verbosity=0)
    call_command("load_catalogs", verbosity=0, stdout=open(os.devnull, "w"))  # noqa: SIM115
    # Production serves its static files from STATIC_ROOT (WhiteNoise), collected at deploy.
    call_command("collectstatic", interactive=False, verbosity=0)
    dataset.build(scale)
    prepared = {
        "key": dataset.api_key_for("bench-0"),
        "context": {**dataset.scenario_context("bench-0"), "therapist_cookie": dataset.therapist_session("bench-0")},
    }
    connections.close_all()
    return prepared


def _start_worker(env: dict, log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "celery", "-A", "clinic", "worker", "--concurrency=1",
               "--without-gossip", "--without-mingle", "--loglevel=WARNING"]  # fmt: skip
    with log.open("w") as out:
        return subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(process.pid, signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=["smoke", "small", "default", "tenth"], default="default")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    parser.add_argument("--prepare-only", metavar="JSON", help="build the dataset and write the scenario ids here")
    parser.add_argument(
        "--timing", choices=sorted(TIMINGS), help="another scale's durations (a quick look at a big dataset)"
    )
    parser.add_argument("--http-only", action="store_true", help="skip the growth run and the sub-benchmarks")
    parser.add_argument("--workers", type=int, help="gunicorn workers (default: cores + 1)")
    args = parser.parse_args(argv)

    # One key for every process of the run: a session signed in while preparing must be valid
    # in gunicorn (the session's auth hash is keyed by it).
    os.environ.setdefault("BENCH_SECRET_KEY", secrets.token_urlsafe(64))
    env = _environment(args.scale)
    # This process builds the dataset with the same settings the server runs with.
    os.environ.update(env)
    _ensure_database(env["DATABASE_URL"])
    if args.prepare_only:
        Path(args.prepare_only).write_text(json.dumps(_prepare(args.scale)))
        return 0

    growth_scale = None if args.http_only else GROWTH.get(args.scale)
    growth_prepared = None
    if growth_scale:  # its own database, so its own process
        growth_file = Path(args.out) / f".{growth_scale}.json"
        growth_file.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "bench", "--scale", growth_scale, "--prepare-only", str(growth_file)],
                       cwd=ROOT, check=True)  # fmt: skip
        growth_prepared = json.loads(growth_file.read_text())
        growth_file.unlink()
    prepared = _prepare(args.scale)

    from bench import dataset, scenarios

    scale = dataset.SCALES[args.scale]
    cores = os.cpu_count() or 1
    # cores + 1 sync workers: measured against gunicorn's 2 x cores + 1 on this 2-core machine
    # (PostgreSQL and the load generator share the cores), 3 workers served a single-row
    # retrieve at 218-230 req/s and 5 workers at 149-165.
    workers = args.workers or cores + 1
    port = _free_port()
    started = []
    Path(args.out).mkdir(parents=True, exist_ok=True)
    try:
        started.append(_start_worker(env, Path(args.out) / ".worker.log"))
        server = _start_gunicorn(env, port, workers)
        started.append(server)
        headers = {"Authorization": f"Bearer {prepared['key']}"}
        timing = TIMINGS[args.timing or args.scale]
        results = scenarios.run_all(host="127.0.0.1", port=port, headers=headers, timing=timing,
                                    context=prepared["context"])  # fmt: skip
        mix = scenarios.run_mix(host="127.0.0.1", port=port, headers=headers, ctx=prepared["context"],
                                rate=timing.rate, seconds=timing.rate_seconds)  # fmt: skip
        memory = _worker_peak_memory_mb(server.pid)
        growth = None
        if args.scale in GROWTH_AGAINST_ITSELF and not args.http_only:
            same = (port, headers, prepared["context"])
            growth = scenarios.run_growth(host="127.0.0.1", tenth=same, full=same, timing=timing, same_dataset=True)
        if growth_prepared is not None:
            growth_port = _free_port()
            growth_env = _environment(growth_scale)
            started.append(_start_worker(growth_env, Path(args.out) / f".worker-{growth_scale}.log"))
            started.append(_start_gunicorn(growth_env, growth_port, workers))
            growth = scenarios.run_growth(
                host="127.0.0.1",
                tenth=(growth_port, {"Authorization": f"Bearer {growth_prepared['key']}"}, growth_prepared["context"]),
                full=(port, headers, prepared["context"]),
                timing=timing,
            )
    finally:
        for process in reversed(started):
            _stop(process)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(tz=dt.UTC).strftime("%Y-%m-%d")
    report = scenarios.report(results, mix=mix, scale=scale, cores=cores, workers=workers, memory_mb=memory,
                              date=stamp, context=prepared["context"])  # fmt: skip
    if growth is not None:
        report += "\n" + scenarios.growth_report(growth)
    if not args.http_only:
        report += _sub_benchmarks(args.scale)
    path = out / f"{stamp}-{scale.name}.md"
    path.write_text(report)
    summary = {
        **scenarios.summary(results, memory),
        "mix": {"errors": mix.errors, "statuses": {str(c): n for c, n in mix.statuses.items()}},
        "growth": scenarios.growth_summary(growth),
    }
    (out / f"{stamp}-{scale.name}.json").write_text(json.dumps(summary, indent=2))
    print(report)
    print(f"bench: report written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
