"""FHIR writes: Patient create (also conditional) and update, Appointment booking, moving and
cancelling, through the same services, scopes, clinic scoping and idempotency as the REST API;
malformed resources and references are 400/404 OperationOutcomes naming where."""

from __future__ import annotations

import datetime as dt

import pytest

from clinic.models import WebhookEvent
from clinic.services import api_key_create
from patients.models import Patient
from sessions.fhir.booking import SERVICE_SYSTEM
from sessions.models import Appointment, AppointmentStatus
from tests.api.errors import error_fields, is_error
from tests.factories import AppointmentFactory, PatientFactory, bookable_service
from tests.fhir_validation import assert_valid_fhir
from tests.sessions.conftest import NOW

pytestmark = pytest.mark.django_db
FHIR = "application/fhir+json"


def _send(client, method: str, url: str, resource: dict, **headers):
    response = getattr(client, method)(url, resource, format="json", **headers)
    if response.status_code < 300:
        assert response["Content-Type"] == FHIR
        assert_valid_fhir(response.json())
    else:
        assert is_error(response), response.content[:400]
    return response


def _patient(**extra) -> dict:
    return {
        "resourceType": "Patient",
        "name": [{"use": "official", "family": "Okafor", "given": ["Ngozi"]}],
        "birthDate": "1984-05-02",
        "gender": "female",
        "telecom": [{"system": "email", "value": "ngozi@example.com"}, {"system": "phone", "value": "416 555 0199"}],
        **extra,
    }


# --- Patient ----------------------------------------------------------------------------------


def test_a_patient_is_created_through_the_same_service_with_its_webhook(owner_api, clinic):
    response = _send(owner_api, "post", "/fhir/R4/Patient", _patient())
    assert response.status_code == 201, response.content
    created = Patient.objects.get(clinic=clinic)
    assert response["Location"].endswith(f"/fhir/R4/Patient/{created.pk}")
    assert (created.family_name, created.given_name, str(created.mobile_phone)) == ("Okafor", "Ngozi", "+14165550199")
    assert created.birth_date == dt.date(1984, 5, 2)
    assert response.json()["id"] == str(created.pk)
    assert WebhookEvent.objects.filter(clinic=clinic, type="patient.created").count() == 1


def test_a_likely_duplicate_is_409_naming_the_existing_patient(owner_api, clinic):
    existing = PatientFactory(clinic=clinic, family_name="Okafor", given_name="Ngozi", birth_date=dt.date(1984, 5, 2))
    response = _send(owner_api, "post", "/fhir/R4/Patient", _patient())
    assert response.status_code == 409
    [issue] = response.json()["issue"]
    assert issue["code"] == "conflict"
    assert f"Patient/{existing.pk}" in issue["diagnostics"]
    assert Patient.objects.count() == 1


def test_conditional_create_returns_the_match_or_creates_or_refuses_several(owner_api, clinic):
    existing = PatientFactory(clinic=clinic, email="ngozi@example.com")
    found = _send(owner_api, "post", "/fhir/R4/Patient", _patient(), HTTP_IF_NONE_EXIST="email=ngozi@example.com")
    assert found.status_code == 200
    assert found.json()["id"] == str(existing.pk)
    assert Patient.objects.count() == 1
    other = _patient(name=[{"use": "official", "family": "Adeyemi", "given": ["Tunde"]}], telecom=[])
    created = _send(owner_api, "post", "/fhir/R4/Patient", other, HTTP_IF_NONE_EXIST="family=Adeyemi&given=Tunde")
    assert created.status_code == 201
    PatientFactory(clinic=clinic, family_name="Adeyemi")
    several = _send(owner_api, "post", "/fhir/R4/Patient", other, HTTP_IF_NONE_EXIST="family=Adeyemi")
    assert several.status_code == 412
    assert several.json()["issue"][0]["code"] == "multiple-matches"
    unknown = _send(owner_api, "post", "/fhir/R4/Patient", other, HTTP_IF_NONE_EXIST="surname=Adeyemi")
    assert unknown.status_code == 400
    assert "If-None-Exist" in error_fields(unknown)
    assert Patient.objects.count() == 3


def test_conditional_create_sees_only_the_callers_clinic(owner_api, clinic, other_clinic):
    PatientFactory(clinic=other_clinic, email="ngozi@example.com")
    response = _send(owner_api, "post", "/fhir/R4/Patient", _patient(), HTTP_IF_NONE_EXIST="email=ngozi@example.com")
    assert response.status_code == 201
    assert Patient.objects.filter(clinic=clinic).count() == 1


def test_a_retried_create_with_the_same_idempotency_key_creates_once(owner_api, clinic):
    first = _send(owner_api, "post", "/fhir/R4/Patient", _patient(), HTTP_IDEMPOTENCY_KEY="fhir-1")
    again = _send(owner_api, "post", "/fhir/R4/Patient", _patient(), HTTP_IDEMPOTENCY_KEY="fhir-1")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Patient.objects.count() == 1


def test_an_update_replaces_what_fhir_carries_and_archives_when_inactive(owner_api, clinic):
    patient = PatientFactory(clinic=clinic, emergency_contact_name="Sam")
    resource = owner_api.get(f"/fhir/R4/Patient/{patient.pk}").json()
    resource["name"][0]["family"] = "Renamed"
    resource["active"] = False
    response = _send(owner_api, "put", f"/fhir/R4/Patient/{patient.pk}", resource)
    assert response.status_code == 200, response.content
    patient.refresh_from_db()
    assert patient.family_name == "Renamed"
    assert patient.is_archived
    assert patient.emergency_contact_name == "Sam"  # not carried by FHIR: left as it was
    assert response.json()["active"] is False
    unchanged = owner_api.get(f"/fhir/R4/Patient/{patient.pk}").json()
    assert _send(owner_api, "put", f"/fhir/R4/Patient/{patient.pk}", unchanged).json()["name"] == unchanged["name"]


@pytest.mark.parametrize(
    ("resource", "where"),
    [
        ({"resourceType": "Practitioner"}, "resourceType"),
        ({**_patient(), "surely_not_a_field": 1}, "surely_not_a_field"),
        ({**_patient(), "birthDate": "02/05/1984"}, "birthDate"),
        ({**_patient(), "birthDate": "1850-01-01"}, "birthDate"),
        ({**_patient(), "gender": "bogus"}, "gender"),
        ({**_patient(), "name": [{"use": "official", "family": 7, "given": ["x"]}]}, "name[0].family"),
        ({**_patient(), "name": [{"use": "usual", "given": ["Ngo"]}]}, "name"),
        ({**_patient(), "telecom": [{"system": "fax", "value": "1"}]}, "telecom[0]"),
        ({**_patient(), "telecom": [{"system": "email", "value": "not an email"}]}, "telecom"),
    ],
)
def test_a_malformed_patient_is_400_naming_the_element_and_writes_nothing(owner_api, resource, where):
    response = _send(owner_api, "post", "/fhir/R4/Patient", resource)
    assert response.status_code == 400, response.content
    assert where in error_fields(response), response.json()
    assert Patient.objects.count() == 0


def test_an_update_must_name_the_resource_it_updates(owner_api, clinic):
    patient = PatientFactory(clinic=clinic)
    response = _send(owner_api, "put", f"/fhir/R4/Patient/{patient.pk}", {**_patient(), "id": str(patient.pk + 1)})
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["Patient.id"]


def test_writes_need_the_write_scope_and_the_403_names_it(api, clinic):
    _, reader = api_key_create(clinic=clinic, name="reader", scopes=["patients:read"])
    _, writer = api_key_create(clinic=clinic, name="writer", scopes=["patients:write"])
    refused = _send(api, "post", "/fhir/R4/Patient", _patient(), HTTP_AUTHORIZATION=f"Bearer {reader}")
    assert refused.status_code == 403
    assert "patients:write" in refused.json()["issue"][0]["diagnostics"]
    assert refused.json()["issue"][0]["code"] == "forbidden"
    assert _send(api, "post", "/fhir/R4/Patient", _patient(), HTTP_AUTHORIZATION=f"Bearer {writer}").status_code == 201


def test_another_clinics_patient_cannot_be_updated(owner_api, other_clinic):
    foreign = PatientFactory(clinic=other_clinic, family_name="Elsewhere")
    response = _send(owner_api, "put", f"/fhir/R4/Patient/{foreign.pk}", {**_patient(), "id": str(foreign.pk)})
    assert response.status_code == 404
    foreign.refresh_from_db()
    assert foreign.family_name == "Elsewhere"


# --- Appointment ------------------------------------------------------------------------------


@pytest.fixture
def bookable(clinic, practitioner, time_machine):
    """The practitioner offers a 45-minute service every day, 09:00-17:00 (clinic time)."""
    time_machine.move_to(NOW, tick=True)
    return bookable_service(clinic, practitioner, name="Acupuncture")


def _appointment(patient, practitioner, service, start: dt.datetime, **extra) -> dict:
    return {
        "resourceType": "Appointment",
        "status": "booked",
        "serviceType": [{"coding": [{"system": SERVICE_SYSTEM, "code": str(service.pk)}]}],
        "start": start.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "participant": [
            {"actor": {"reference": f"Patient/{patient.pk}"}, "status": "accepted"},
            {"actor": {"reference": f"Practitioner/{practitioner.pk}"}, "status": "accepted"},
        ],
        **extra,
    }


TEN = NOW.replace(hour=10) + dt.timedelta(days=1)


def test_booking_through_fhir_runs_appointment_book(owner_api, owner, clinic, practitioner, bookable):
    patient = PatientFactory(clinic=clinic)
    response = _send(owner_api, "post", "/fhir/R4/Appointment", _appointment(patient, practitioner, bookable, TEN))
    assert response.status_code == 201, response.content
    booked = Appointment.objects.get()
    assert (booked.start, booked.end) == (TEN, TEN + dt.timedelta(minutes=45))
    assert booked.booked_by == owner
    assert response.json()["status"] == "booked"
    assert WebhookEvent.objects.filter(type="appointment.created").count() == 1


def test_booking_a_slot_from_the_slot_search(owner_api, clinic, practitioner, bookable):
    patient = PatientFactory(clinic=clinic)
    slots = owner_api.get("/fhir/R4/Slot", {"service": bookable.pk, "start": ["ge2027-03-02", "lt2027-03-03"]}).json()
    slot = slots["entry"][0]["resource"]
    resource = {
        "resourceType": "Appointment",
        "status": "booked",
        "slot": [{"reference": f"Slot/{slot['id']}"}],
        "participant": [{"actor": {"reference": f"Patient/{patient.pk}"}, "status": "accepted"}],
    }
    response = _send(owner_api, "post", "/fhir/R4/Appointment", resource)
    assert response.status_code == 201, response.content
    assert dt.datetime.fromisoformat(response.json()["start"]) == dt.datetime.fromisoformat(slot["start"])
    assert owner_api.get(f"/fhir/R4/Slot/{slot['id']}").status_code == 404  # no longer free


def test_a_clash_is_409_naming_the_appointment_that_holds_the_time(owner_api, clinic, practitioner, bookable):
    first = _send(
        owner_api,
        "post",
        "/fhir/R4/Appointment",
        _appointment(PatientFactory(clinic=clinic), practitioner, bookable, TEN),
    )
    later = TEN + dt.timedelta(minutes=15)
    response = _send(
        owner_api,
        "post",
        "/fhir/R4/Appointment",
        _appointment(PatientFactory(clinic=clinic), practitioner, bookable, later),
    )
    assert response.status_code == 409
    codes = {issue["code"] for issue in response.json()["issue"]}
    assert codes == {"conflict"}
    assert any(f"Appointment/{first.json()['id']}" in issue["diagnostics"] for issue in response.json()["issue"])
    assert Appointment.objects.count() == 1


def test_references_to_another_clinic_are_404_like_missing_ones(
    owner_api, clinic, other_clinic, practitioner, bookable
):
    foreign = PatientFactory(clinic=other_clinic)
    missing = Patient.objects.order_by("-pk").first().pk + 1000
    answers = []
    for pk in (foreign.pk, missing):
        resource = _appointment(PatientFactory.build(pk=pk), practitioner, bookable, TEN)
        response = _send(owner_api, "post", "/fhir/R4/Appointment", resource)
        assert response.status_code == 404
        assert "participant[0].actor" in error_fields(response)
        answers.append(response.content.decode().replace(str(pk), "<id>"))
    assert answers[0] == answers[1]
    assert Appointment.objects.count() == 0


@pytest.mark.parametrize("reference", ["Patient/abc", "Group/1", "12", ""])
def test_a_malformed_reference_is_400_at_the_element(owner_api, clinic, practitioner, bookable, reference):
    resource = _appointment(PatientFactory(clinic=clinic), practitioner, bookable, TEN)
    resource["participant"][0]["actor"] = {"reference": reference}
    response = _send(owner_api, "post", "/fhir/R4/Appointment", resource)
    assert response.status_code == 400
    assert any(name.startswith("participant[0].actor") for name in error_fields(response)), response.json()


def test_cancelling_is_an_update_of_the_status(owner_api, clinic, practitioner, bookable):
    patient = PatientFactory(clinic=clinic)
    created = _send(
        owner_api, "post", "/fhir/R4/Appointment", _appointment(patient, practitioner, bookable, TEN)
    ).json()
    created["status"] = "cancelled"
    created["cancelationReason"] = {"text": "Patient unwell"}
    response = _send(owner_api, "put", f"/fhir/R4/Appointment/{created['id']}", created)
    assert response.status_code == 200, response.content
    cancelled = Appointment.objects.get()
    assert cancelled.status == AppointmentStatus.CANCELLED
    assert cancelled.cancellation_reason == "Patient unwell"
    assert owner_api.get(f"/fhir/R4/Appointment/{created['id']}").json()["status"] == "cancelled"
    again = _send(owner_api, "put", f"/fhir/R4/Appointment/{created['id']}", {**created, "status": "booked"})
    assert again.status_code == 400  # a cancelled appointment is not booked again by an update


def test_moving_is_an_update_of_the_start(owner_api, clinic, practitioner, bookable):
    patient = PatientFactory(clinic=clinic)
    created = _send(
        owner_api, "post", "/fhir/R4/Appointment", _appointment(patient, practitioner, bookable, TEN)
    ).json()
    moved = TEN + dt.timedelta(hours=3)
    created["start"] = moved.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    created.pop("end")
    response = _send(owner_api, "put", f"/fhir/R4/Appointment/{created['id']}", created)
    assert response.status_code == 200, response.content
    assert Appointment.objects.get().start == moved


def test_an_appointment_write_needs_the_appointments_write_scope(api, clinic, practitioner, bookable):
    _, reader = api_key_create(clinic=clinic, name="calendar", scopes=["appointments:read"])
    resource = _appointment(PatientFactory(clinic=clinic), practitioner, bookable, TEN)
    response = _send(api, "post", "/fhir/R4/Appointment", resource, HTTP_AUTHORIZATION=f"Bearer {reader}")
    assert response.status_code == 403
    assert "appointments:write" in response.json()["issue"][0]["diagnostics"]
    assert Appointment.objects.count() == 0


def test_a_booking_with_neither_slot_nor_start_is_400(owner_api, clinic, practitioner, bookable):
    resource = _appointment(PatientFactory(clinic=clinic), practitioner, bookable, TEN)
    del resource["start"]
    response = _send(owner_api, "post", "/fhir/R4/Appointment", resource)
    assert response.status_code == 400
    assert Appointment.objects.count() == 0


def test_receptionists_book_and_cancel_like_in_the_rest_api(receptionist_api, clinic, practitioner, bookable):
    appointment = AppointmentFactory(clinic=clinic, practitioner=practitioner)
    resource = receptionist_api.get(f"/fhir/R4/Appointment/{appointment.pk}").json()
    resource["status"] = "cancelled"
    assert _send(receptionist_api, "put", f"/fhir/R4/Appointment/{appointment.pk}", resource).status_code == 200
