"""FHIR R4 read API: every resource and Bundle served validates against the fhir.resources R4B
models (and is in their JSON form: `tests/fhir_validation.py`), plus the invariants that package
does not check."""

from __future__ import annotations

import datetime as dt

import pytest
from fhir.resources.R4B.appointment import Appointment as FhirAppointment
from fhir.resources.R4B.patient import Patient as FhirPatient
from fhir.resources.R4B.practitioner import Practitioner as FhirPractitioner

from clinic.services import api_key_create
from sessions.models import AppointmentStatus
from tests.api.errors import is_error
from tests.factories import AppointmentFactory, PatientFactory
from tests.fhir_validation import assert_valid_fhir

pytestmark = pytest.mark.django_db

MODELS = {"Patient": FhirPatient, "Practitioner": FhirPractitioner, "Appointment": FhirAppointment}


def _search(client, resource, **params) -> list[dict]:
    response = client.get(f"/fhir/R4/{resource}", params)
    assert response.status_code == 200, response.content[:300]
    body = response.json()
    assert_valid_fhir(body, "Bundle")
    assert body["type"] == "searchset"
    for entry in body.get("entry", []):
        assert_valid_fhir(entry["resource"], resource)
        assert entry["fullUrl"].endswith(f"/fhir/R4/{resource}/{entry['resource']['id']}")
    return [entry["resource"] for entry in body.get("entry", [])]


def test_every_resource_type_validates_and_reads_back(owner_api, clinic):
    appointment = AppointmentFactory(clinic=clinic)
    ids = {
        "Patient": appointment.patient_id,
        "Practitioner": appointment.practitioner_id,
        "Appointment": appointment.id,
    }
    for resource, model in MODELS.items():
        [found] = _search(owner_api, resource)
        assert model.model_validate(found).id == str(ids[resource])
        read = owner_api.get(f"/fhir/R4/{resource}/{ids[resource]}")
        assert read.status_code == 200
        assert read.json() == found
        assert_valid_fhir(read.json(), resource)


def test_patient_carries_identity_and_contact_details(owner_api, clinic):
    patient = PatientFactory(clinic=clinic, given_name="Ada", family_name="Moss", preferred_name="Addie")
    [resource] = _search(owner_api, "Patient")
    assert resource["name"][0] == {"use": "official", "family": "Moss", "given": ["Ada"]}
    assert resource["name"][1]["given"] == ["Addie"]
    assert {"system": "email", "value": patient.email} in resource["telecom"]
    assert resource["birthDate"] == patient.birth_date.isoformat()
    assert resource["active"] is True


@pytest.mark.parametrize("status", list(AppointmentStatus))
def test_appointments_have_start_end_and_both_participants(owner_api, clinic, status):
    appointment = AppointmentFactory(clinic=clinic, status=status)
    [resource] = _search(owner_api, "Appointment")
    parsed = FhirAppointment.model_validate(resource)
    # FHIR: a booked (or later) appointment must have start and end; fhir.resources does not check it.
    if parsed.status not in ("proposed", "cancelled", "waitlist"):
        assert parsed.start is not None
        assert parsed.end is not None
    assert parsed.start < parsed.end
    assert parsed.minutesDuration == 60
    references = {p.actor.reference for p in parsed.participant}
    assert references == {f"Patient/{appointment.patient_id}", f"Practitioner/{appointment.practitioner_id}"}


def test_searches_filter_by_their_parameters(owner_api, clinic):
    moss = PatientFactory(clinic=clinic, family_name="Qzmoss", given_name="Ada")
    stone = PatientFactory(clinic=clinic, family_name="Stone", given_name="Qzben")
    tomorrow = AppointmentFactory(clinic=clinic, patient=moss, practitioner__display_name="Qzpra Lee")
    later = AppointmentFactory(
        clinic=clinic, start=tomorrow.start + dt.timedelta(days=5), end=tomorrow.end + dt.timedelta(days=5)
    )
    AppointmentFactory(clinic=clinic, status=AppointmentStatus.CANCELLED)

    def ids(resource, **params):
        return sorted(int(r["id"]) for r in _search(owner_api, resource, **params))

    assert ids("Patient", family="qzmo") == [moss.id]
    assert ids("Patient", given="qzb") == [stone.id]
    assert ids("Appointment", patient=moss.id) == [tomorrow.id]
    assert ids("Appointment", date=f"ge{(tomorrow.start + dt.timedelta(days=2)).date()}") == [later.id]
    assert tomorrow.id in ids("Appointment", date=f"le{tomorrow.start.date()}")
    assert ids("Appointment", status="cancelled") != ids("Appointment", status="booked")
    assert ids("Practitioner", name=tomorrow.practitioner.display_name[:4]) == [tomorrow.practitioner_id]


def test_bad_search_values_and_unknown_parameters_are_400(owner_api):
    assert owner_api.get("/fhir/R4/Appointment", {"date": "ge-yesterday"}).status_code == 400
    response = owner_api.get("/fhir/R4/Patient", {"name:contains": "x"})
    assert response.status_code == 400
    assert is_error(response)
    [issue] = response.json()["issue"]
    assert issue["location"] == ["http.name:contains"]
    assert issue["code"] == "invalid"
    assert owner_api.get("/fhir/R4/Patient", {"_count": 101}).status_code == 400


def test_bundles_page_with_count_and_a_next_link(owner_api, clinic):
    for _ in range(3):
        PatientFactory(clinic=clinic)
    first = owner_api.get("/fhir/R4/Patient", {"_count": 2}).json()
    assert len(first["entry"]) == 2
    [next_link] = [link["url"] for link in first["link"] if link["relation"] == "next"]
    second = owner_api.get(next_link).json()
    assert len(second["entry"]) == 1


def test_the_same_keys_and_scopes_apply(api, clinic):
    PatientFactory(clinic=clinic)
    _, appointments_only = api_key_create(clinic=clinic, name="calendar", scopes=["appointments:read"])
    _, patients = api_key_create(clinic=clinic, name="ehr", scopes=["patients:read"])
    assert api.get("/fhir/R4/Patient", HTTP_AUTHORIZATION=f"Bearer {appointments_only}").status_code == 403
    assert api.get("/fhir/R4/Patient", HTTP_AUTHORIZATION=f"Bearer {patients}").status_code == 200
    assert api.get("/fhir/R4/Patient").status_code == 401


def test_delete_and_patch_are_not_served(owner_api, clinic):
    patient = PatientFactory(clinic=clinic)
    for response in (
        owner_api.delete(f"/fhir/R4/Patient/{patient.id}"),
        owner_api.patch(f"/fhir/R4/Patient/{patient.id}", {}, format="json"),
        owner_api.post("/fhir/R4/Practitioner", {"resourceType": "Practitioner"}, format="json"),
    ):
        assert response.status_code == 405
        assert is_error(response)
        assert response.json()["issue"][0]["code"] == "not-supported"


def test_date_searches_take_any_iso_offset(owner_api, clinic):
    appointment = AppointmentFactory(clinic=clinic)
    assert _search(owner_api, "Appointment", date="ge1907-02-26T08:56:56-22:42") != []
    assert _search(owner_api, "Appointment", date=f"gt{appointment.start.date()}T23:59:59") == []
    assert owner_api.get("/fhir/R4/Appointment", {"date": "ge2026-13-45"}).status_code == 400


@pytest.mark.parametrize("resource", ["Patient", "Practitioner", "Appointment"])
def test_searches_run_the_same_queries_at_count_1_and_50(api, clinic, resource):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(4):  # each with its own patient, practitioner and service: a lazy load would show
        AppointmentFactory(clinic=clinic)
    _, key = api_key_create(clinic=clinic, name="ehr", scopes=["patients:read", "clinic:read", "appointments:read"])
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    _search(api, resource)  # the key's first use writes last_used_at
    counts = {}
    for size in (1, 50):
        with CaptureQueriesContext(connection) as queries:
            assert len(_search(api, resource, _count=size)) == min(size, 4)
        counts[size] = len(queries)
    assert counts[1] == counts[50], f"{counts[1]} queries at _count=1, {counts[50]} at _count=50"
    assert counts[50] <= 2, [query["sql"] for query in queries.captured_queries]  # the key, the page


NEGOTIATED = [
    ({}, {}),
    ({"HTTP_ACCEPT": "application/fhir+json"}, {}),
    ({"HTTP_ACCEPT": "application/fhir+json; fhirVersion=4.0"}, {}),
    ({"HTTP_ACCEPT": "application/json"}, {}),
    ({"HTTP_ACCEPT": "text/html,application/xhtml+xml,*/*;q=0.8"}, {}),  # a browser
    ({}, {"_format": "json"}),
    ({}, {"_format": "application/json"}),
    ({"HTTP_ACCEPT": "application/fhir+xml"}, {"_format": "application/fhir+json"}),  # _format wins
]


@pytest.mark.parametrize(("headers", "params"), NEGOTIATED)
def test_searches_and_reads_answer_application_fhir_json(owner_api, clinic, headers, params):
    appointment = AppointmentFactory(clinic=clinic)
    for path in ("/fhir/R4/Appointment", f"/fhir/R4/Appointment/{appointment.pk}"):
        response = owner_api.get(path, params, **headers)
        assert response.status_code == 200, response.content[:300]
        assert response["Content-Type"] == "application/fhir+json"
        assert_valid_fhir(response.json())


def test_an_unescaped_plus_in_format_still_reads_as_fhir_json(owner_api, clinic):
    response = owner_api.get("/fhir/R4/Patient?_format=application/fhir+json")  # `+` arrives as a space
    assert response.status_code == 200
    assert response["Content-Type"] == "application/fhir+json"


def test_formats_other_than_json_are_406_and_every_error_is_an_operation_outcome(owner_api, clinic):
    appointment = AppointmentFactory(clinic=clinic)
    for response in (
        owner_api.get("/fhir/R4/Appointment", HTTP_ACCEPT="application/fhir+xml"),
        owner_api.get(f"/fhir/R4/Appointment/{appointment.pk}", HTTP_ACCEPT="text/html"),
        owner_api.get("/fhir/R4/Appointment", {"_format": "xml"}),
        owner_api.get(f"/fhir/R4/Appointment/{appointment.pk}", {"_format": "text/html"}),
    ):
        assert response.status_code == 406
        assert response["Content-Type"] == "application/fhir+json"
        assert response.json()["issue"][0]["code"] == "not-supported"
    expected = {
        "/fhir/R4/Appointment/999999999": (404, "not-found", None),
        "/fhir/R4/Appointment?date=ge-yesterday": (400, "invalid", ["http.date"]),
        "/fhir/R4/Slot": (400, "invalid", ["http.service"]),
    }
    for url, (status, code, location) in expected.items():
        response = owner_api.get(url)
        assert response.status_code == status
        assert response["Content-Type"] == "application/fhir+json"
        body = response.json()
        assert_valid_fhir(body, "OperationOutcome")
        assert body["issue"][0]["code"] == code
        assert body["issue"][0].get("location") == location, body
