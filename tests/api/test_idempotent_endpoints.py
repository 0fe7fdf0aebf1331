"""Idempotency-Key on the creates that issue 7 names: patients, appointments and intake links.

The machinery itself (claims, races, expiry) is proven in test_idempotency.py; here each real
endpoint shows it is wired in: a retry replays the first response and writes nothing more, and
the same key with a different body is 422.
"""

from __future__ import annotations

import pytest

from intake.models import IntakeLink
from patients.models import Patient
from sessions.models import Appointment
from tests.factories import (
    LocationFactory,
    PatientFactory,
    RoomFactory,
    ServiceFactory,
    default_questionnaire,
)
from tests.sessions.conftest import NOW, weekday_hours

pytestmark = pytest.mark.django_db


def _patients(clinic, practitioner):
    first = {"given_name": "Ada", "family_name": "Moss", "birth_date": "1980-02-03"}
    return Patient, "/api/v1/patients/", first, {**first, "given_name": "Adeline"}


def _appointments(clinic, practitioner):
    location = LocationFactory(clinic=clinic)
    service = ServiceFactory(clinic=clinic)
    RoomFactory(clinic=clinic, location=location).services.add(service)
    practitioner.services.add(service)
    weekday_hours(clinic, practitioner, location)
    patient = PatientFactory(clinic=clinic)
    first = {
        "patient": patient.pk,
        "practitioner": practitioner.pk,
        "service": service.pk,
        "start": "2027-03-02T10:00:00-05:00",
    }
    return Appointment, "/api/v1/appointments/", first, {**first, "start": "2027-03-02T13:00:00-05:00"}


def _intake_links(clinic, practitioner):
    default_questionnaire()
    patient = PatientFactory(clinic=clinic)
    return IntakeLink, "/api/v1/intake-links/", {"patient": patient.pk}, {"patient": PatientFactory(clinic=clinic).pk}


CREATES = [
    pytest.param(_patients, id="patients"),
    pytest.param(_appointments, id="appointments"),
    pytest.param(_intake_links, id="intake-links"),
]


@pytest.fixture
def monday_morning(time_machine):
    # Appointments are booked for Tuesday 2 March 2027 inside working hours; fixed so they stay in the future.
    time_machine.move_to(NOW, tick=True)


@pytest.mark.parametrize("create", CREATES)
def test_a_retry_replays_the_first_response_and_writes_once(create, monday_morning, clinic, practitioner, owner_api):
    model, url, body, _ = create(clinic, practitioner)
    before = model.objects.count()
    first = owner_api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="retry-1")
    again = owner_api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="retry-1")
    assert first.status_code == 201, first.json()
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert model.objects.count() == before + 1


@pytest.mark.parametrize("create", CREATES)
def test_the_same_key_with_a_different_body_is_422(create, monday_morning, clinic, practitioner, owner_api):
    model, url, body, different = create(clinic, practitioner)
    assert owner_api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="retry-1").status_code == 201
    before = model.objects.count()
    response = owner_api.post(url, different, format="json", HTTP_IDEMPOTENCY_KEY="retry-1")
    assert response.status_code == 422
    assert set(response.json()) == {"type", "title", "status", "detail", "errors"}
    assert model.objects.count() == before


@pytest.mark.parametrize("create", CREATES)
def test_without_the_header_each_post_creates(create, monday_morning, clinic, practitioner, owner_api):
    model, url, body, different = create(clinic, practitioner)
    before = model.objects.count()
    assert owner_api.post(url, body, format="json").status_code == 201
    assert owner_api.post(url, different, format="json").status_code == 201
    assert model.objects.count() == before + 2
