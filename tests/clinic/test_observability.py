"""Observability: the JSON request log, Sentry events without patient data, and /metrics."""

from __future__ import annotations

import json
import logging

import pytest
import sentry_sdk
from django.test import Client, override_settings
from rest_framework.test import APIClient
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from clinic.models import WebhookDelivery, WebhookDeliveryStatus
from clinic.observability.errors import SCRUBBED, sentry_init
from clinic.observability.jsonlog import JsonFormatter
from clinic.services import api_key_create, heartbeat_record
from sessions import services as session_services
from tests.factories import (
    AppointmentFactory,
    MessageFactory,
    PatientFactory,
    TreatmentSessionFactory,
    intake_link,
    webhook_delivery_for,
)

pytestmark = pytest.mark.django_db
NOTE_TEXT = "Left calf cramps after the Sunday long run; worried about the Boston qualifier"
TOKEN = "m" * 40


def _request_lines(caplog) -> list[dict]:
    formatter = JsonFormatter()
    return [json.loads(formatter.format(r)) for r in caplog.records if r.name == "clinic.request"]


# --- the request log ------------------------------------------------------------------------


def test_each_api_request_is_one_json_line_with_its_id_clinic_key_status_and_duration(caplog, clinic):
    patient = PatientFactory(clinic=clinic, given_name="Zelda", family_name="Quintanilla")
    key, raw = api_key_create(clinic=clinic, name="front desk app", scopes=["patients:read"])
    api = APIClient()
    with caplog.at_level(logging.INFO, logger="clinic.request"):
        response = api.get(
            f"/api/v1/patients/{patient.pk}/?", HTTP_AUTHORIZATION=f"Bearer {raw}", HTTP_X_REQUEST_ID="req-abc.1"
        )
    assert response.status_code == 200
    (line,) = _request_lines(caplog)
    assert line["request_id"] == "req-abc.1"
    assert (line["method"], line["status"], line["view"]) == ("GET", 200, "v1:patient-detail")
    assert (line["clinic_id"], line["api_key_id"], line["user_id"]) == (clinic.pk, key.pk, None)
    assert line["client_ip"] == "127.0.0.1"
    assert 0 < line["duration_ms"] < 60_000
    assert line["level"] == "INFO"
    text = json.dumps(line)
    assert "Zelda" not in text
    assert "Quintanilla" not in text


def test_a_staff_request_names_the_user_and_an_intake_page_never_logs_its_token(caplog, clinic, owner):
    patient = PatientFactory(clinic=clinic)
    link = intake_link(patient=patient, created_by=owner)
    staff = APIClient()
    staff.force_authenticate(owner)
    with caplog.at_level(logging.INFO, logger="clinic.request"):
        assert staff.get("/api/v1/rooms/").status_code == 200
        assert Client().get(f"/intake/{link.token}/").status_code == 200
    rooms, intake = _request_lines(caplog)
    assert (rooms["user_id"], rooms["clinic_id"]) == (owner.pk, clinic.pk)
    assert intake["view"] == "intake:start"
    assert intake["route"] == "intake/<str:token>/"
    assert link.token not in json.dumps(intake)
    assert link.token.split(":")[0] not in json.dumps(intake)


# --- Sentry ---------------------------------------------------------------------------------


class CapturingTransport(Transport):
    """Keeps every envelope the SDK would send, in memory."""

    def __init__(self, options=None):
        super().__init__(options)
        self.envelopes: list[Envelope] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)

    def events(self) -> list[dict]:
        return [item.payload.json for env in self.envelopes for item in env.items if item.type == "event"]


@pytest.fixture
def sentry_events():
    transport = CapturingTransport()
    sentry_init(dsn="https://public@sentry.invalid/1", environment="test", release="test", transport=transport)
    try:
        yield transport
    finally:
        sentry_sdk.flush()
        sentry_sdk.init(release="test")  # no DSN: the SDK records nothing from here on


def test_a_failing_note_save_reaches_sentry_without_the_notes_text(
    sentry_events, monkeypatch, catalogs, clinic, owner, practitioner
):
    session = TreatmentSessionFactory(clinic=clinic, practitioner=practitioner)
    logger = logging.getLogger("sessions.services")

    def broken_note_update(*, session, **changes):
        # What a real bug looks like: the failing value quoted in a log line and the exception.
        logger.warning("saving note %s: subjective=%r", session.pk, changes.get("subjective"))
        raise RuntimeError(f"could not save subjective={changes.get('subjective')!r}")

    monkeypatch.setattr(session_services, "note_update", broken_note_update)
    api = APIClient(raise_request_exception=False)
    api.force_authenticate(owner)
    response = api.patch(f"/api/v1/notes/{session.pk}/", {"subjective": NOTE_TEXT})
    assert response.status_code == 500
    sentry_sdk.flush()

    events = sentry_events.events()
    (event,) = [e for e in events if "exception" in e]
    (exception,) = event["exception"]["values"]
    assert exception["type"] == "RuntimeError"
    assert exception["value"] == SCRUBBED
    assert any(frame["function"] == "broken_note_update" for frame in exception["stacktrace"]["frames"])
    assert event["transaction"].startswith("/api/v1/notes/")
    everything = json.dumps(sentry_events.envelopes, default=lambda e: e.serialize().decode())
    assert NOTE_TEXT not in everything
    assert "Left calf" not in everything
    assert "Boston" not in everything
    assert session.patient.family_name not in everything


# --- metrics --------------------------------------------------------------------------------


def test_metrics_do_not_exist_without_a_token_and_need_it_when_set(client):
    assert client.get("/metrics").status_code == 404
    with override_settings(METRICS_TOKEN=TOKEN):
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
        assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200


@override_settings(METRICS_TOKEN=TOKEN)
def test_metrics_count_requests_and_read_the_queues_outbox_webhooks_and_heartbeats(client, clinic):
    MessageFactory(appointment=AppointmentFactory(clinic=clinic))
    delivery = webhook_delivery_for(clinic)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status=WebhookDeliveryStatus.FAILED, next_attempt_at=None)
    heartbeat_record(name="beat")
    client.get("/healthz")
    body = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    series = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in body.splitlines() if line[:1] != "#"}
    assert series['clinic_http_requests_total{method="GET",status="200",view="healthz"}'] >= 1
    assert 'clinic_http_request_duration_seconds_count{method="GET",view="healthz"}' in series
    assert series["clinic_outbox_due_messages"] == 1
    assert 50 <= series["clinic_outbox_oldest_due_age_seconds"] < 120
    assert series['clinic_webhook_deliveries{state="failed"}'] == 1
    assert 'clinic_celery_queue_length{queue="celery"}' in series
    assert series['clinic_heartbeat_age_seconds{process="beat"}'] < 5
    assert all(series[f'clinic_probe_up{{probe="{probe}"}}'] == 1 for probe in ("queue", "outbox", "webhooks"))
