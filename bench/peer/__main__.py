"""Side by side with the closest open-source Django peer, django-appointment (PyPI).

    .venv/bin/python -m bench.peer [--rounds 7] [--parallel 20]

Not a project dependency: the peer is installed in its own virtual environment (under
var/peer/, built on first use from PyPI, pinned below) with a minimal site
(bench/peer/peer_site/). Both apps get the same small dataset (one therapist working 09:00-17:00
every day, one 60-minute service, 21 clients/patients) in their own PostgreSQL databases and are
served the same way (gunicorn, 2 workers, DEBUG off). Reported, in one run:

- free slots for one day and for one week (the peer answers a day per request, so a week is
  seven requests; ours is one request): medians of interleaved rounds (peer, ours, peer, ours);
- one booking through each app's own booking flow (the peer's is its two form posts as a
  signed-in client; ours is one API call);
- `--parallel` bookings of one slot at once, each on its own connection: appointments created.

Writes bench/results/peer-<date>.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import threading
import time
import zoneinfo
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
RESULTS = ROOT / "bench" / "results"
PEER_PACKAGES = ["django-appointment==3.12.0", "Django==5.2.19", "psycopg[binary]==3.3.9", "gunicorn==27.0.1"]
ZONE = zoneinfo.ZoneInfo("America/Toronto")
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _fresh_database(name: str) -> None:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _peer_venv(venv: Path) -> Path:
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    if not stamp.exists() or stamp.read_text() != " ".join(PEER_PACKAGES):
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *PEER_PACKAGES], check=True)
        stamp.write_text(" ".join(PEER_PACKAGES))
    return python


def _serve(command: list[str], *, cwd: Path, env: dict, port: int, probe: str) -> subprocess.Popen:
    process = subprocess.Popen(command, cwd=cwd, env=env, start_new_session=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}{probe}", timeout=2)
            return process
        except requests.RequestException:
            if process.poll() is not None:
                raise SystemExit(f"{command[0]} exited with {process.returncode}") from None
            time.sleep(0.5)
    process.kill()
    raise SystemExit(f"no answer on port {port} within 90 s")


def _gunicorn(python: Path, app: str, port: int) -> list[str]:
    return [str(python), "-m", "gunicorn", app, "--bind", f"127.0.0.1:{port}", "--workers", "2", "--log-level", "error"]


# --- the peer -------------------------------------------------------------------------------


class Peer:
    name = "django-appointment 3.12.0"

    def __init__(self, venv: Path, clients: int):
        self.python = _peer_venv(venv)
        self.db = "clinic_peer_appointment"
        _fresh_database(self.db)
        self.env = {
            **os.environ, "PEER_DB_NAME": self.db, "PEER_SECRET_KEY": secrets.token_urlsafe(32),
            "DJANGO_SETTINGS_MODULE": "peer_site.settings", "PYTHONPATH": str(HERE),
        }  # fmt: skip
        manage = [str(self.python), "-m", "django"]
        # The package ships no migrations: its README has the site make them.
        subprocess.run([*manage, "makemigrations", "appointment", "-v0"], cwd=HERE, env=self.env, check=True)
        subprocess.run([*manage, "migrate", "--no-input", "-v0"], cwd=HERE, env=self.env, check=True)
        seeded = subprocess.run(
            [str(self.python), "-m", "peer_site.seed", str(clients)],
            cwd=HERE, env=self.env, check=True, capture_output=True, text=True,
        )  # fmt: skip
        self.data = json.loads(seeded.stdout.strip().splitlines()[-1])
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process = _serve(
            _gunicorn(self.python, "django.core.wsgi:get_wsgi_application()", self.port),
            cwd=HERE, env=self.env, port=self.port, probe="/appointment/request/1/",
        )  # fmt: skip

    def slots_day(self, session: requests.Session, day: dt.date) -> int:
        response = session.get(
            f"{self.base}/appointment/ajax/available_slots/",
            params={
                "selected_date": day.isoformat(), "staff_member": self.data["staff"],
                "service_id": self.data["service"],
            },
            headers={"X-Requested-With": "XMLHttpRequest"}, timeout=30,
        )  # fmt: skip
        response.raise_for_status()
        return len(response.json()["available_slots"])

    def slots_week(self, session: requests.Session, day: dt.date) -> int:
        return sum(self.slots_day(session, day + dt.timedelta(days=i)) for i in range(7))

    def client(self, i: int) -> requests.Session:
        session = requests.Session()
        session.cookies.set("sessionid", self.data["sessions"][i], domain="127.0.0.1")
        return session

    def book(self, session: requests.Session, day: dt.date, hour: int) -> int:
        """The peer's own flow as a signed-in client: the request form, then the client details."""
        page = session.get(f"{self.base}/appointment/request/{self.data['service']}/", timeout=30)
        page.raise_for_status()
        token = session.cookies["csrftoken"]
        headers = {"Referer": page.url}
        submitted = session.post(
            f"{self.base}/appointment/request-submit/",
            data={
                "csrfmiddlewaretoken": token, "date": day.isoformat(), "start_time": f"{hour:02d}:00",
                "end_time": f"{hour + 1:02d}:00", "service": self.data["service"], "staff_member": self.data["staff"],
            },
            headers=headers, allow_redirects=False, timeout=30,
        )  # fmt: skip
        if submitted.status_code != 302:
            return submitted.status_code
        client_page = self.base + submitted.headers["Location"]
        details = session.post(
            client_page,
            data={
                "csrfmiddlewaretoken": token, "name": "Pat Client", "email": "ignored@example.com",
                "phone_0": "CA", "phone_1": "4165550123", "address": "1 King St W", "additional_info": "",
                "payment_type": "full",  # the page's radio button, checked by default
            },
            headers={"Referer": client_page}, allow_redirects=False, timeout=30,
        )  # fmt: skip
        return details.status_code

    def booked_at(self, day: dt.date, hour: int) -> int:
        with psycopg.connect(f"{PG}/{self.db}") as conn:
            return conn.execute(
                "SELECT count(*) FROM appointment_appointment a JOIN appointment_appointmentrequest r "
                "ON r.id = a.appointment_request_id WHERE r.date = %s AND r.start_time = %s",
                [day, dt.time(hour)],
            ).fetchone()[0]

    def stop(self) -> None:
        os.killpg(self.process.pid, 15)
        self.process.wait(timeout=30)


# --- ours -----------------------------------------------------------------------------------

OUR_SEED = """
import datetime as dt, json, sys
import django
django.setup()
from clinic.models import Clinic, Location, Service, User
from clinic.services import api_key_create, practitioner_create
from patients.models import Patient
from sessions.models import WorkingHours
from treatments.models import Modality
clients = int(sys.argv[1])
clinic = Clinic.objects.create(name="Peer comparison", slug="peer", time_zone="America/Toronto")
location = Location.objects.create(clinic=clinic, name="Main")
modality, _ = Modality.objects.get_or_create(code="massage", defaults={"name": "Massage"})
service = Service.objects.create(
    clinic=clinic, name="Massage 60", modality=modality, duration_minutes=60, buffer_minutes=0, requires_room=False
)
user = User.objects.create(username="peer-dana")
practitioner = practitioner_create(clinic=clinic, user=user, display_name="Dana Lee")
practitioner.services.add(service)
for day in range(7):
    WorkingHours.objects.create(
        clinic=clinic, practitioner=practitioner, location=location, weekday=day,
        start_time=dt.time(9), end_time=dt.time(17),
    )
patients = [
    Patient.objects.create(clinic=clinic, given_name="Client", family_name=str(i), email=f"client{i}@example.com")
    for i in range(clients)
]
_, key = api_key_create(clinic=clinic, name="peer", scopes=["appointments:read", "appointments:write"])
print(json.dumps({"service": service.pk, "practitioner": practitioner.pk, "patients": [p.pk for p in patients],
                  "key": key}))
"""


class Ours:
    name = "this project"

    def __init__(self, clients: int):
        self.db = "clinic_peer_ours"
        _fresh_database(self.db)
        self.env = {
            **os.environ, "DJANGO_SETTINGS_MODULE": "clinic.settings", "DJANGO_ENV": "production",
            "SECRET_KEY": secrets.token_urlsafe(64), "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECURE_SSL_REDIRECT": "false", "DATABASE_URL": f"{PG}/{self.db}",
            "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9"),
            "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend", "LOG_LEVEL": "error",
        }  # fmt: skip
        migrate = [sys.executable, "manage.py", "migrate", "--no-input", "-v0"]
        subprocess.run(migrate, cwd=ROOT, env=self.env, check=True)
        seeded = subprocess.run(
            [sys.executable, "-c", OUR_SEED, str(clients)], cwd=ROOT, env=self.env, check=True, capture_output=True,
            text=True,
        )  # fmt: skip
        self.data = json.loads(seeded.stdout.strip().splitlines()[-1])
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process = _serve(
            _gunicorn(Path(sys.executable), "clinic.wsgi:application", self.port),
            cwd=ROOT, env=self.env, port=self.port, probe="/healthz",
        )  # fmt: skip

    def client(self, i: int) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.data['key']}"
        return session

    def _slots(self, session: requests.Session, day: dt.date, days: int) -> int:
        start = dt.datetime.combine(day, dt.time(0), tzinfo=ZONE)
        response = session.get(
            f"{self.base}/api/v1/slots/",
            params={
                "service": self.data["service"], "practitioner": self.data["practitioner"],
                "start": start.isoformat(), "end": (start + dt.timedelta(days=days)).isoformat(),
            },
            timeout=30,
        )  # fmt: skip
        response.raise_for_status()
        return len(response.json()["results"])

    def slots_day(self, session: requests.Session, day: dt.date) -> int:
        return self._slots(session, day, 1)

    def slots_week(self, session: requests.Session, day: dt.date) -> int:
        return self._slots(session, day, 7)

    def book(self, session: requests.Session, day: dt.date, hour: int, patient: int = 0) -> int:
        start = dt.datetime.combine(day, dt.time(hour), tzinfo=ZONE)
        response = session.post(
            f"{self.base}/api/v1/appointments/",
            json={
                "patient": self.data["patients"][patient], "practitioner": self.data["practitioner"],
                "service": self.data["service"], "start": start.isoformat(),
            },
            timeout=30,
        )  # fmt: skip
        return response.status_code

    def booked_at(self, day: dt.date, hour: int) -> int:
        start = dt.datetime.combine(day, dt.time(hour), tzinfo=ZONE)
        with psycopg.connect(f"{PG}/{self.db}") as conn:
            return conn.execute(
                "SELECT count(*) FROM treatment_sessions_appointment WHERE start = %s AND status <> 'cancelled'",
                [start],
            ).fetchone()[0]

    def stop(self) -> None:
        os.killpg(self.process.pid, 15)
        self.process.wait(timeout=30)


# --- measuring ------------------------------------------------------------------------------


def _timed(fn) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn()
    return (time.perf_counter() - started) * 1000, result


def _parallel(app, day: dt.date, hour: int, count: int) -> tuple[int, list[int]]:
    barrier = threading.Barrier(count)
    statuses: list[int] = [0] * count

    def one(i: int) -> None:
        session = app.client(i)  # its own connection
        barrier.wait(timeout=60)
        statuses[i] = app.book(session, day, hour, i) if isinstance(app, Ours) else app.book(session, day, hour)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    return app.booked_at(day, hour), statuses


def _today() -> dt.date:
    return dt.datetime.now(ZONE).date()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--parallel", type=int, default=20)
    parser.add_argument("--venv", type=Path, default=ROOT / "var" / "peer" / "venv")
    args = parser.parse_args()

    apps = [Peer(args.venv, args.parallel + 1)]
    day = dt.datetime.now(ZONE).date() + dt.timedelta(days=14)
    try:
        apps.append(Ours(args.parallel + 1))  # if it fails, the peer's server still stops below
        timings: dict[tuple[str, str], list[float]] = {}
        counts: dict[tuple[str, str], int] = {}
        sessions = {app.name: app.client(args.parallel) for app in apps}
        for app in apps:  # warm-up: first requests open connections and fill caches
            app.slots_week(sessions[app.name], day)
        for _ in range(args.rounds):  # interleaved: peer, ours, peer, ours ...
            for what in ("day", "week"):
                for app in apps:
                    fn = app.slots_day if what == "day" else app.slots_week
                    ms, found = _timed(lambda fn=fn, app=app: fn(sessions[app.name], day))
                    timings.setdefault((app.name, what), []).append(ms)
                    counts[(app.name, what)] = found
        single = {}
        for app in apps:
            session = sessions[app.name]
            book = (
                (lambda app=app, session=session: app.book(session, day, 9, args.parallel))
                if isinstance(app, Ours)
                else (lambda app=app, session=session: app.book(session, day, 9))
            )
            ms, status = _timed(book)
            single[app.name] = (ms, status, app.booked_at(day, 9))
        raced = {app.name: _parallel(app, day, 13, args.parallel) for app in apps}
    finally:
        for app in apps:
            app.stop()

    lines = [
        f"# Peer comparison ({_today().isoformat()})",
        "",
        f"`python -m bench.peer --rounds {args.rounds} --parallel {args.parallel}` on {os.cpu_count()} cores; "
        "both apps under gunicorn (2 workers), DEBUG off, PostgreSQL, the same dataset "
        "(one therapist 09:00-17:00 daily, a 60-minute service). Medians of interleaved rounds (min-max).",
        "",
        "| | " + " | ".join(app.name for app in apps) + " |",
        "|---|" + "---|" * len(apps),
    ]
    for what, label in (("day", "Free slots, one day"), ("week", "Free slots, one week")):
        cells = []
        for app in apps:
            values = timings[(app.name, what)]
            cells.append(
                f"{statistics.median(values):.1f} ms ({min(values):.1f}-{max(values):.1f}), "
                f"{counts[(app.name, what)]} slots"
            )
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append(
        "| One booking | "
        + " | ".join(
            f"{single[a.name][0]:.1f} ms (status {single[a.name][1]}, {single[a.name][2]} created)" for a in apps
        )
        + " |"
    )
    lines.append(
        f"| {args.parallel} parallel bookings of one slot | "
        + " | ".join(
            f"**{raced[a.name][0]} created** (statuses {dict(sorted(_counted(raced[a.name][1]).items()))})"
            for a in apps
        )
        + " |"
    )
    lines += [
        "",
        "The peer books through HTML forms (its slot list is a per-day AJAX view); this project through its REST API. "
        "The peer offers starts on the hour (its slot length), this project every 15 minutes, hence more slots. "
        "The peer has no database constraint against overlapping appointments, so concurrent requests for one "
        "slot all succeed; here the exclusion constraint admits one and answers the rest with 409.",
    ]
    report = "\n".join(lines) + "\n"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"peer-{_today().isoformat()}.md").write_text(report)
    print(report)


def _counted(statuses: list[int]) -> dict[int, int]:
    out: dict[int, int] = {}
    for status in statuses:
        out[status] = out.get(status, 0) + 1
    return out


if __name__ == "__main__":
    if not re.match(r"^3\.11", sys.version.split()[0]):
        print("bench.peer expects Python 3.11, as the project does", file=sys.stderr)
    main()
