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

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Timing:
    saturation_seconds: float
    rate: float
    rate_seconds: float
    concurrency: int


TIMINGS = {
    "smoke": Timing(1.0, 10, 1.0, 4),
    "small": Timing(5.0, 50, 10.0, 8),
    "default": Timing(20.0, 100, 60.0, 8),
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ensure_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=["smoke", "small", "default"], default="default")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args(argv)

    database_url = os.environ.get("BENCH_DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/clinic_bench_{args.scale}")
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DJANGO_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "LOG_LEVEL": "warning",
    }
    # This process builds the dataset with the same settings the server runs with.
    os.environ.update({k: v for k, v in env.items() if k not in os.environ or os.environ[k] != v})
    _ensure_database(database_url)
    import django

    django.setup()
    from django.core.management import call_command

    from bench import dataset, scenarios

    scale = dataset.SCALES[args.scale]
    print(f"bench: scale {scale.name}: {scale.patients:,} patients, {scale.appointments:,} appointments", flush=True)
    call_command("migrate", verbosity=0)
    call_command("load_catalogs", verbosity=0, stdout=open(os.devnull, "w"))  # noqa: SIM115
    dataset.build(scale)
    key = dataset.api_key_for("bench-0")
    context = dataset.scenario_context("bench-0")
    from django.db import connections

    connections.close_all()

    cores = os.cpu_count() or 1
    workers = cores + 1
    port = _free_port()
    server = _start_gunicorn(env, port, workers)
    try:
        results = scenarios.run_all(
            host="127.0.0.1",
            port=port,
            headers={"Authorization": f"Bearer {key}"},
            timing=TIMINGS[args.scale],
            context=context,
        )
        memory = _worker_peak_memory_mb(server.pid)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(tz=dt.UTC).strftime("%Y-%m-%d")
    report = scenarios.report(results, scale=scale, cores=cores, workers=workers, memory_mb=memory, date=stamp)
    report += _sub_benchmarks(args.scale)
    path = out / f"{stamp}-{scale.name}.md"
    path.write_text(report)
    (out / f"{stamp}-{scale.name}.json").write_text(json.dumps(scenarios.summary(results, memory), indent=2))
    print(report)
    print(f"bench: report written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
