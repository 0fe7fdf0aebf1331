"""Inputs that answered 500 when the running system was attacked (issue 13, item 5), each now a
4xx in the error format that changes nothing; and the filter values the intake-submission list
writes into the audit trail are validated first (item 6).

The generated checks over every route are in test_isolation.py (bodies, id filters) and
test_query_parameters.py (date filters).
"""

from __future__ import annotations

import pytest
from drf_spectacular.generators import SchemaGenerator

from clinic.models import AuditAction, AuditEvent, WebhookEndpoint
from patients.models import Patient
from patients.privacy import patient_erase
from sessions.models import Appointment
from tests.api.errors import error_detail, error_fields, is_error
from tests.factories import (
    LocationFactory,
    PatientFactory,
    ServiceFactory,
    WorkingHoursFactory,
    intake_submission_for,
)
from tests.sessions.conftest import NOW

pytestmark = pytest.mark.django_db
MAX_JSON_DEPTH = 32  # clinic.api.conventions.MAX_JSON_DEPTH, as docs/architecture.md states it


def _post(client, url: str, body: str):
    return client.generic("POST", url, body, content_type="application/json")


def _assert_error(response, status: int, field: str | None = None) -> dict:
    """The error in the API's form (REST body, or OperationOutcome under /fhir/), as `{"detail", "errors"}`."""
    assert response.status_code == status, response.content[:400]
    assert is_error(response), response.content[:400]
    body = {"detail": error_detail(response), "errors": error_fields(response)}
    if field is not None:
        assert field in body["errors"], body
    return body


# --- patients and webhooks ------------------------------------------------------------------


def test_an_erased_patient_cannot_be_unarchived(owner_api, owner, clinic):
    patient = patient_erase(patient=PatientFactory(clinic=clinic), by=owner, reason="Patient asked")
    body = _assert_error(owner_api.post(f"/api/v1/patients/{patient.pk}/unarchive/"), 400, "is_archived")
    assert "erased" in body["errors"]["is_archived"][0]
    patient.refresh_from_db()
    assert patient.is_archived
    assert patient.erased_at is not None


def test_an_archived_patient_still_unarchives(owner_api, clinic):
    patient = PatientFactory(clinic=clinic, is_archived=True, archived_at=NOW)
    response = owner_api.post(f"/api/v1/patients/{patient.pk}/unarchive/")
    assert response.status_code == 200, response.content[:300]
    assert response.json()["is_archived"] is False


def test_a_webhook_endpoint_can_be_created_inactive(owner_api, clinic):
    body = {"url": "https://hooks.example.com/in", "events": ["patient.created"], "is_active": False}
    response = owner_api.post("/api/v1/webhooks/", body, format="json")
    assert response.status_code == 201, response.content[:300]
    assert response.json()["is_active"] is False
    assert WebhookEndpoint.objects.get(clinic=clinic, pk=response.json()["id"]).is_active is False


# --- JSON bodies ----------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [1000, 100_000, MAX_JSON_DEPTH + 1])
def test_a_deeply_nested_body_is_400(owner_api, depth):
    for body in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth):
        response = _post(owner_api, "/api/v1/appointments/", body)
        assert "too deeply nested" in _assert_error(response, 400)["detail"]
    assert Appointment.objects.count() == 0


def test_a_body_nested_to_the_limit_is_parsed(owner_api):
    nested = "[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1)
    response = _post(owner_api, "/api/v1/appointments/", '{"notes": ' + nested + "}")
    # Parsed, then refused by the serializer for what it says, not for its depth.
    assert "nested" not in _assert_error(response, 400, "notes")["detail"]


@pytest.mark.parametrize("number", ["1e400", "-1e400", "NaN", "Infinity", "-Infinity", "1" * 5000])
def test_a_number_that_is_not_finite_is_400(owner_api, number):
    response = _post(owner_api, "/api/v1/appointments/", '{"patient": ' + number + "}")
    assert "JSON parse error" in _assert_error(response, 400)["detail"]
    assert Appointment.objects.count() == 0


@pytest.mark.parametrize("number", [10**30, -1, 0])
def test_an_id_no_row_can_have_is_not_found(owner_api, number):
    response = owner_api.post("/api/v1/appointments/", {"patient": number}, format="json")
    assert _assert_error(response, 400, "patient")["errors"]["patient"] == ["Not found."]


# --- slot searches --------------------------------------------------------------------------


@pytest.fixture
def bookable(clinic, practitioner, time_machine):
    """The practitioner offers a 45-minute service every day, 09:00-17:00."""
    time_machine.move_to(NOW, tick=True)
    location = LocationFactory(clinic=clinic)
    service = ServiceFactory(clinic=clinic, duration_minutes=45, requires_room=False)
    practitioner.services.add(service)
    for weekday in range(7):
        WorkingHoursFactory(clinic=clinic, practitioner=practitioner, location=location, weekday=weekday)
    return service, location


@pytest.mark.parametrize(
    "start",
    ["ge2027-02-30", "ge2027-03-02T25:00:00Z", "ge2027-03-02T10:00:00+24:00", "ge2027-13-01", "gt2027-03-02T10:61"],
)
def test_an_impossible_date_in_the_fhir_slot_search_is_400(owner_api, bookable, start):
    service, _ = bookable
    response = owner_api.get("/fhir/R4/Slot", {"service": service.pk, "start": start})
    _assert_error(response, 400, "start")


@pytest.mark.parametrize(
    "window",
    [
        ["ge0001-01-01", "lt0001-01-05"],
        ["ge0001-01-02T00:00:00Z", "lt0001-01-05T00:00:00Z"],
        ["ge9999-12-25", "lt9999-12-31"],
        ["ge1899-12-30", "lt1900-01-02"],
        ["ge2199-12-30", "lt2200-01-02"],
    ],
)
def test_a_fhir_slot_search_outside_the_supported_years_is_400(owner_api, bookable, window):
    service, _ = bookable
    response = owner_api.get("/fhir/R4/Slot", {"service": service.pk, "start": window})
    body = _assert_error(response, 400, "start")
    assert body["errors"]["start"] == ["Give a date between 1900-01-01 and 2199-12-31."]


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("9999-12-20T00:00:00Z", "9999-12-31T00:00:00Z"),
        ("0001-01-02T00:00:00Z", "0001-01-05T00:00:00Z"),
        ("0001-01-01T00:00:00Z", "0001-01-05T00:00:00Z"),
        ("2199-12-30T00:00:00Z", "2200-01-02T00:00:00Z"),
    ],
)
def test_a_slot_search_outside_the_supported_years_is_400(owner_api, bookable, start, end):
    service, _ = bookable
    response = owner_api.get("/api/v1/slots/", {"service": service.pk, "start": start, "end": end})
    body = _assert_error(response, 400)
    messages = [message for field in ("start", "end") for message in body["errors"].get(field, [])]
    assert messages, body
    assert all("1900-01-01 and 2199-12-31" in m or "out of range" in m for m in messages), body


def test_slot_searches_inside_the_supported_years_still_work(owner_api, bookable):
    service, _ = bookable
    response = owner_api.get("/fhir/R4/Slot", {"service": service.pk, "start": ["ge2027-03-02", "lt2027-03-03"]})
    assert response.status_code == 200, response.content[:300]
    assert response.json()["total"] > 0
    late = owner_api.get(
        "/api/v1/slots/", {"service": service.pk, "start": "2199-12-01T00:00:00Z", "end": "2199-12-08T00:00:00Z"}
    )
    assert late.status_code == 200, late.content[:300]
    assert late.json()["count"] > 0


@pytest.mark.parametrize("when", ["20271399T9999", "20270230T1000", "00010101T0000", "99991231T2300"])
def test_a_fhir_slot_id_naming_no_possible_time_is_404(owner_api, bookable, practitioner, when):
    service, location = bookable
    response = owner_api.get(f"/fhir/R4/Slot/{practitioner.pk}-{service.pk}-{location.pk}-{when}Z")
    _assert_error(response, 404)


# --- dates in bodies and filters --------------------------------------------------------------


@pytest.mark.parametrize("birth_date", ["0001-01-01", "9999-12-31", "1899-12-31", "2027-02-30"])
def test_a_birth_date_outside_the_supported_years_is_400(owner_api, birth_date):
    body = {"given_name": "Ada", "family_name": "Moss", "birth_date": birth_date}
    _assert_error(owner_api.post("/api/v1/patients/", body, format="json"), 400, "birth_date")
    assert Patient.objects.count() == 0


@pytest.mark.parametrize("value", ["ge0001-01-01", "lt9999-12-31T23:00:00-05:00", "2027-02-30", "ge2027-03-02T25:00"])
def test_a_fhir_date_search_names_the_parameter_it_refuses(owner_api, value):
    response = owner_api.get("/fhir/R4/Appointment", {"date": value})
    _assert_error(response, 400, "date")


# --- the schema ---------------------------------------------------------------------------------


def test_every_operation_documents_the_servers_414():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = [
        (f"{method.upper()} {path}", operation)
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    ]
    assert len(operations) > 50
    undocumented = [name for name, operation in operations if "414" not in operation["responses"]]
    assert not undocumented
    assert all("text/html" in operation["responses"]["414"]["content"] for _, operation in operations)


# --- item 6: filter values are validated before they are audited ---------------------------------


def _list_audits(clinic):
    return AuditEvent.objects.filter(
        clinic=clinic, action=AuditAction.LIST, extra__object_type="intake.intakesubmission"
    )


@pytest.mark.parametrize("value", ["foreign", "missing", "abc", "1e400", "-1", str(10**30), "0"])
def test_a_bad_patient_filter_on_intake_submissions_is_400_and_audits_nothing(owner_api, clinic, other_clinic, value):
    values = {"foreign": PatientFactory(clinic=other_clinic).pk, "missing": Patient.objects.count() + 10**6}
    before = _list_audits(clinic).count()
    response = owner_api.get("/api/v1/intake-submissions/", {"patient": values.get(value, value)})
    assert _assert_error(response, 400, "patient")["errors"]["patient"] == ["Not found."]
    assert _list_audits(clinic).count() == before
    assert not AuditEvent.objects.filter(patient_id=values.get("foreign")).exists()


def test_a_valid_patient_filter_on_intake_submissions_is_audited_with_that_patient(owner_api, clinic):
    submission = intake_submission_for(clinic)
    response = owner_api.get("/api/v1/intake-submissions/", {"patient": f"{submission.patient_id}"})
    assert response.status_code == 200, response.content[:300]
    assert [row["id"] for row in response.json()["results"]] == [submission.pk]
    event = _list_audits(clinic).latest("id")
    assert event.patient_id == submission.patient_id
    unfiltered = owner_api.get("/api/v1/intake-submissions/")
    assert unfiltered.status_code == 200
    assert _list_audits(clinic).latest("id").patient_id is None
