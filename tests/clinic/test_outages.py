"""Degrade, don't fail: the API with its Redis (cache and broker) or its PostgreSQL down.

Each test runs the app under gunicorn against a PRIVATE Redis or PostgreSQL that it starts
and stops itself; the shared servers other tests use are never touched.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import tempfile
import zoneinfo
from pathlib import Path

import pytest
import requests
from django.utils import timezone

from clinic import degrade
from clinic.models import Clinic, Message, MessageStatus, WebhookDelivery, WebhookDeliveryStatus
from clinic.services import api_key_create
from clinic.webhooks.delivery import webhook_endpoint_create
from sessions.models import Appointment, AppointmentStatus
from tests.factories import LocationFactory, PatientFactory, ServiceFactory, WorkingHoursFactory
from tests.processes import (
    PrivatePostgres,
    PrivateRedis,
    free_port,
    manage,
    project_env,
    wait_for,
    web_server,
)

APPOINTMENTS = "/api/v1/appointments/"


@pytest.fixture
def cache_down(settings, monkeypatch):
    """The cache at a Redis port nobody listens on, and fresh fail-open bookkeeping."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
        }
    }
    fresh = degrade.Dependency("cache", "rate limits fail open")
    monkeypatch.setattr(degrade, "CACHE", fresh)
    return fresh


@pytest.mark.django_db
def test_with_the_cache_down_the_rate_limiter_fails_open_with_one_warning_and_a_count(
    cache_down, receptionist_api, caplog
):
    with caplog.at_level(logging.WARNING, logger="clinic.degrade"):
        statuses = [receptionist_api.get("/api/v1/rooms/").status_code for _ in range(5)]
    assert statuses == [200] * 5
    assert cache_down.count == 5
    assert degrade.degraded_counts()["cache_fail_open"] == 5
    warnings = [r.getMessage() for r in caplog.records if r.name == "clinic.degrade"]
    assert len(warnings) == 1
    assert warnings[0].startswith("cache unavailable (ConnectionError: ")
    assert "rate limits fail open" in warnings[0]


@pytest.mark.django_db
def test_with_the_cache_down_an_unknown_intake_link_is_still_a_404_page(cache_down, client):
    assert client.get("/intake/not-a-token/").status_code == 404
    assert cache_down.count >= 1


def _server_env(**overrides: str) -> dict[str, str]:
    # DEBUG off, as in production: Django's debug page would otherwise answer errors raised
    # outside a view.
    return project_env(DJANGO_ENV="test", DEBUG="false", LOG_LEVEL="error", **overrides)


def _get(url: str, **kwargs) -> requests.Response:
    return requests.get(url, timeout=30, **kwargs)


def _problem(response) -> dict:
    body = response.json()
    assert set(body) == {"type", "title", "status", "detail", "errors"}
    return body


@pytest.fixture
def private_dir():
    with tempfile.TemporaryDirectory(prefix="clinic-outage-") as name:
        yield Path(name)


@pytest.fixture
def bookable(clinic, practitioner):
    location = LocationFactory(clinic=clinic)
    service = ServiceFactory(clinic=clinic, duration_minutes=45, buffer_minutes=0, requires_room=False)
    practitioner.services.add(service)
    for weekday in range(7):
        WorkingHoursFactory(
            clinic=clinic, practitioner=practitioner, location=location, weekday=weekday, start_time=dt.time(9)
        )
    patient = PatientFactory(clinic=clinic)
    day = timezone.localdate(timezone=zoneinfo.ZoneInfo(clinic.time_zone)) + dt.timedelta(days=7)
    start = dt.datetime.combine(day, dt.time(10), tzinfo=zoneinfo.ZoneInfo(clinic.time_zone))
    scopes = ["appointments:read", "appointments:write", "patients:read", "patients:write"]
    _, key = api_key_create(clinic=clinic, name="integration", scopes=scopes)
    endpoint, _ = webhook_endpoint_create(
        clinic=clinic, url="https://hooks.example.com/clinic", events=["appointment.created"]
    )
    return {"patient": patient, "service": service, "start": start, "key": key, "endpoint": endpoint}


@pytest.mark.slow
@pytest.mark.processes
@pytest.mark.django_db(transaction=True)
def test_booking_and_reads_work_while_redis_is_down_and_rate_limits_resume_after(
    bookable, practitioner, receptionist, clinic, private_dir, settings
):
    redis = PrivateRedis(private_dir)
    redis.start()
    db = settings.DATABASES["default"]
    env = _server_env(REDIS_URL=redis.url, DATABASE_URL=f"postgres://postgres@{db['HOST']}:{db['PORT']}/{db['NAME']}")
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {bookable['key']}"
    try:
        with web_server(env) as base:
            assert api.get(base + APPOINTMENTS).status_code == 200

            redis.kill()
            body = {
                "patient": bookable["patient"].pk,
                "practitioner": practitioner.pk,
                "service": bookable["service"].pk,
                "start": bookable["start"].isoformat(),
            }
            booked = api.post(base + APPOINTMENTS, json=body)
            assert booked.status_code == 201, booked.text
            appointment = Appointment.objects.get(pk=booked.json()["id"])
            assert appointment.status == AppointmentStatus.BOOKED
            # The confirmation is an outbox row, due now: the sweeper sends it once the broker is back.
            confirmation = Message.objects.get(
                about_id=appointment.pk, about_type__model="appointment", kind="appointment_confirmation"
            )
            assert confirmation.status == MessageStatus.SCHEDULED
            assert confirmation.due_at <= timezone.now()
            # So is the webhook delivery: pending and due, for the sweeper to queue.
            delivery = WebhookDelivery.objects.get(endpoint=bookable["endpoint"])
            assert delivery.status == WebhookDeliveryStatus.PENDING
            assert delivery.next_attempt_at <= timezone.now()

            assert api.get(base + APPOINTMENTS).json()["results"][0]["id"] == appointment.pk
            assert api.get(f"{base}{APPOINTMENTS}{appointment.pk}/").status_code == 200
            later = (bookable["start"] + dt.timedelta(hours=2)).isoformat()
            moved = api.post(f"{base}{APPOINTMENTS}{appointment.pk}/reschedule/", json={"start": later})
            assert moved.status_code == 200, moved.text
            cancelled = api.post(f"{base}{APPOINTMENTS}{appointment.pk}/cancel/", json={"reason": "flu"})
            assert cancelled.status_code == 200, cancelled.text
            appointment.refresh_from_db()
            assert appointment.status == AppointmentStatus.CANCELLED

            # An import job has no sweeper: it fails at once, saying why, instead of staying queued.
            upload = {
                "csv": "First Name,Surname\nAda,Moss\n",
                "mapping": {"given_name": "First Name", "family_name": "Surname"},
            }
            submitted = api.post(base + "/api/v1/patient-imports/", json=upload)
            assert submitted.status_code == 202, submitted.text
            job = api.get(f"{base}/api/v1/patient-imports/{submitted.json()['id']}/").json()
            assert job["status"] == "failed"
            assert job["detail"] == "The task queue is unavailable; nothing was imported. Retry."

            # Staff still sign in: sessions and sign-in throttling live in the database.
            browser = requests.Session()
            browser.get(base + "/admin/login/")
            signed_in = browser.post(
                base + "/admin/login/?next=/admin/",
                data={
                    "username": receptionist.username,
                    "password": "a-long-test-password",
                    "csrfmiddlewaretoken": browser.cookies["csrftoken"],
                },
                allow_redirects=False,
            )
            assert signed_in.status_code == 302
            assert signed_in.headers["Location"] == "/admin/"

            health = _get(base + "/readyz")
            assert health.status_code == 503
            assert health.json()["broker"]["ok"] is False
            degraded = health.json()["degraded"]
            # Counted since the server started: the seven API requests after the kill went through unthrottled.
            assert degraded["cache_fail_open"] == 7
            # The message sweeper's kicks, the webhook delivery, the import job.
            assert degraded["tasks_not_queued"] >= 3

            # Redis back: within seconds the limiter counts again.
            redis.start()
            Clinic.objects.filter(pk=clinic.pk).update(api_rate_limit_per_minute=3)
            statuses: list[int] = []
            wait_for(
                lambda: statuses.append(api.get(base + APPOINTMENTS).status_code) or statuses[-1] == 429,
                timeout=30,
                what="the rate limit",
            )
            limited = api.get(base + APPOINTMENTS)
            assert limited.status_code == 429
            assert int(limited.headers["Retry-After"]) >= 1
            assert _get(base + "/readyz").json()["broker"]["ok"] is True
    finally:
        redis.kill()


SETUP_SCRIPT = """
import json
from django.core.management import call_command
from django.test import Client
from clinic.security.roles import Role
from clinic.services import api_key_create
from tests.factories import ClinicFactory, RoomFactory, staff

call_command("migrate", verbosity=0)  # nothing to run: its post-migrate hooks add roles and types
clinic = ClinicFactory(slug="outage")
RoomFactory(clinic=clinic, name="Room 1")
_, key = api_key_create(clinic=clinic, name="outage", scopes=["clinic:read", "patients:read"])
client = Client()
client.force_login(staff(clinic, Role.RECEPTIONIST, "rita-outage"))
print(json.dumps({"key": key, "session": client.cookies["sessionid"].value}))
"""


@pytest.mark.slow
@pytest.mark.processes
def test_a_database_outage_is_a_503_in_the_api_error_format_with_retry_after(django_db_setup, settings, private_dir):
    postgres = PrivatePostgres(private_dir)
    postgres.init()
    postgres.start()
    try:
        db = settings.DATABASES["default"]
        postgres.copy_schema(
            source_url=f"postgres://postgres@{db['HOST']}:{db['PORT']}/{db['NAME']}", database="clinic"
        )
        env = _server_env(DATABASE_URL=postgres.url("clinic"))
        created = manage("shell", "-c", SETUP_SCRIPT, env=env)
        assert created.returncode == 0, created.stderr
        ids = json.loads(created.stdout.strip().splitlines()[-1])
        key = {"Authorization": f"Bearer {ids['key']}"}
        session = {"sessionid": ids["session"]}

        with web_server(env) as base:
            assert _get(base + "/api/v1/rooms/", headers=key).status_code == 200
            assert _get(base + "/api/v1/rooms/", cookies=session).status_code == 200

            postgres.stop()
            fhir = _get(base + "/fhir/R4/Patient", headers=key)  # FHIR errors are OperationOutcomes
            assert fhir.status_code == 503
            assert fhir.headers["Content-Type"] == "application/fhir+json"
            assert int(fhir.headers["Retry-After"]) > 0
            [issue] = fhir.json()["issue"]
            assert issue["code"] == "transient"
            assert "database" in issue["diagnostics"]
            for response in (
                _get(base + "/api/v1/rooms/", headers=key),  # fails in an API view
                _get(base + "/api/v1/rooms/", cookies=session),  # fails in the session middleware
            ):
                assert response.status_code == 503
                assert response.headers["Content-Type"] == "application/problem+json"
                assert int(response.headers["Retry-After"]) > 0
                body = _problem(response)
                assert body["status"] == 503
                assert body["title"] == "Service unavailable"
                assert "database" in body["detail"]
            page = _get(base + "/admin/", cookies=session)
            assert page.status_code == 503
            assert "Retry-After" in page.headers
            health = _get(base + "/readyz")
            assert health.status_code == 503
            assert health.json()["database"]["ok"] is False

            postgres.start()
            assert _get(base + "/api/v1/rooms/", headers=key).status_code == 200
            assert _get(base + "/api/v1/rooms/", cookies=session).status_code == 200
    finally:
        postgres.stop(check=False)  # already stopped unless the test failed half-way
