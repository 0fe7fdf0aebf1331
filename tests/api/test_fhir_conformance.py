"""FHIR conformance: the CapabilityStatement says what the server serves (and validates), and
the spec's common search parameters work: Patient name/family/given/birthdate/identifier/phone/
email, Appointment date (prefixes, ranges)/patient/actor/status with `_include`, Practitioner
name."""

from __future__ import annotations

import datetime as dt

import pytest

from clinic.services import api_key_create
from clinic.urls import fhir
from tests.api.errors import error_fields
from tests.factories import AppointmentFactory, PatientFactory, PractitionerFactory
from tests.fhir_validation import assert_valid_fhir

pytestmark = pytest.mark.django_db


def _ids(client, resource: str, **params) -> list[int]:
    response = client.get(f"/fhir/R4/{resource}", params)
    assert response.status_code == 200, response.content[:300]
    assert_valid_fhir(response.json(), "Bundle")
    return sorted(
        int(entry["resource"]["id"]) for entry in response.json().get("entry", []) if entry["search"]["mode"] == "match"
    )


# --- the CapabilityStatement --------------------------------------------------------------------


def test_metadata_is_a_valid_capability_statement_anyone_can_read(api):
    response = api.get("/fhir/R4/metadata")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/fhir+json"
    statement = response.json()
    assert_valid_fhir(statement, "CapabilityStatement")
    assert statement["fhirVersion"].startswith("4.")
    assert statement["kind"] == "instance"
    assert "application/fhir+json" in statement["format"]


def test_the_statement_lists_every_registered_resource_with_what_it_serves(api):
    [rest] = api.get("/fhir/R4/metadata").json()["rest"]
    resources = {entry["type"]: entry for entry in rest["resource"]}
    assert set(resources) == {prefix for prefix, _, _ in fhir.registry}
    interactions = {name: {i["code"] for i in entry["interaction"]} for name, entry in resources.items()}
    assert interactions["Patient"] == {"read", "search-type", "create", "update"}
    assert interactions["Appointment"] == {"read", "search-type", "create", "update"}
    assert interactions["Practitioner"] == {"read", "search-type"}
    assert resources["Patient"]["conditionalCreate"] is True
    assert resources["Appointment"]["searchInclude"] == ["Appointment:patient", "Appointment:practitioner"]
    params = {name: {p["name"]: p["type"] for p in entry.get("searchParam", [])} for name, entry in resources.items()}
    assert {
        "name": "string",
        "family": "string",
        "given": "string",
        "birthdate": "date",
        "identifier": "token",
        "phone": "token",
        "email": "token",
    }.items() <= params["Patient"].items()
    assert {"date": "date", "patient": "reference", "actor": "reference", "status": "token"}.items() <= params[
        "Appointment"
    ].items()
    assert params["Practitioner"]["name"] == "string"
    assert params["Slot"]["start"] == "date"
    assert "patients:write" in resources["Patient"]["documentation"]


def test_every_search_parameter_the_statement_names_is_accepted(owner_api, clinic):
    """Generated from the server, the statement cannot name a parameter the server refuses."""
    AppointmentFactory(clinic=clinic)
    [rest] = owner_api.get("/fhir/R4/metadata").json()["rest"]
    values = {"date": "ge2026-01-01", "reference": "1", "token": "x", "string": "x", "number": "1"}
    for entry in rest["resource"]:
        if entry["type"] == "Slot":
            continue  # a computed search with a required service: covered in tests/api/test_bad_input.py
        for param in entry.get("searchParam", []):
            value = {"status": "booked", "active": "true"}.get(param["name"], values[param["type"]])
            response = owner_api.get(f"/fhir/R4/{entry['type']}", {param["name"]: value})
            where = f"{entry['type']}?{param['name']}={value}: {response.content!r}"
            assert response.status_code in (200, 400, 403), where
            # A value may be refused (a status another resource does not have); the name never is.
            assert "Unknown query parameter." not in error_fields(response).get(param["name"], []), where


# --- Patient searches ---------------------------------------------------------------------------


def test_patient_searches_by_the_common_parameters(owner_api, clinic, other_clinic):
    ada = PatientFactory(
        clinic=clinic,
        given_name="Ada",
        family_name="Qzmoss",
        preferred_name="Addie",
        birth_date=dt.date(1980, 4, 2),
        email="ada@example.com",
        mobile_phone="+14165550111",
    )
    ben = PatientFactory(clinic=clinic, given_name="Qzben", family_name="Stone", birth_date=dt.date(1990, 1, 1))
    PatientFactory(clinic=other_clinic, given_name="Ada", family_name="Qzmoss", email="ada@example.com")
    assert _ids(owner_api, "Patient", name="qzmo") == [ada.pk]
    assert _ids(owner_api, "Patient", name="Addie Qzm") == [ada.pk]  # every word, any part of the name
    assert _ids(owner_api, "Patient", name="Ada Stone") == []
    assert _ids(owner_api, "Patient", family="QZMOSS") == [ada.pk]
    assert _ids(owner_api, "Patient", given="qzb") == [ben.pk]
    assert _ids(owner_api, "Patient", birthdate="1980-04-02") == [ada.pk]
    assert _ids(owner_api, "Patient", birthdate="lt1985-01-01", family="Qzmoss") == [ada.pk]
    assert _ids(owner_api, "Patient", birthdate=["ge1985-01-01", "le1990-01-01"]) == [ben.pk]
    assert _ids(owner_api, "Patient", email="ADA@example.com") == [ada.pk]
    assert _ids(owner_api, "Patient", phone="(416) 555-0111") == [ada.pk]
    assert _ids(owner_api, "Patient", phone="+1 416 555 0111") == [ada.pk]
    assert _ids(owner_api, "Patient", phone="not a phone") == []
    served = owner_api.get(f"/fhir/R4/Patient/{ada.pk}").json()["identifier"][0]
    assert _ids(owner_api, "Patient", identifier=f"{served['system']}|{served['value']}") == [ada.pk]
    assert _ids(owner_api, "Patient", identifier=served["value"]) == [ada.pk]
    assert _ids(owner_api, "Patient", identifier=f"urn:other|{served['value']}") == []


def test_a_date_with_a_time_is_refused_for_birthdate(owner_api):
    response = owner_api.get("/fhir/R4/Patient", {"birthdate": "1980-04-02T10:00:00Z"})
    assert response.status_code == 400
    assert "birthdate" in error_fields(response)


# --- Appointment searches and _include ----------------------------------------------------------


def test_appointment_searches_by_date_range_patient_actor_and_status(owner_api, clinic):
    first = AppointmentFactory(clinic=clinic)
    later = AppointmentFactory(
        clinic=clinic,
        patient=first.patient,
        start=first.start + dt.timedelta(days=5),
        end=first.end + dt.timedelta(days=5),
    )
    other = AppointmentFactory(clinic=clinic, practitioner=PractitionerFactory(clinic=clinic))
    day = first.start.date()
    assert _ids(owner_api, "Appointment", date=[f"ge{day}", f"lt{day + dt.timedelta(days=2)}"]) == sorted(
        a.pk for a in (first, other) if a.start.date() < day + dt.timedelta(days=2)
    )
    assert _ids(owner_api, "Appointment", patient=f"Patient/{first.patient_id}") == [first.pk, later.pk]
    assert _ids(owner_api, "Appointment", patient=str(first.patient_id)) == [first.pk, later.pk]
    assert _ids(owner_api, "Appointment", actor=f"Practitioner/{other.practitioner_id}") == [other.pk]
    assert _ids(owner_api, "Appointment", actor=f"Patient/{other.patient_id}") == [other.pk]
    assert _ids(owner_api, "Appointment", status="booked") == sorted(a.pk for a in (first, later, other))
    refused = owner_api.get("/fhir/R4/Appointment", {"patient": "Practitioner/1"})
    assert refused.status_code == 400
    assert refused.json()["issue"][0]["location"] == ["http.patient"]


def test_include_adds_each_patient_once_in_the_same_query_count(api, clinic):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    shared = PatientFactory(clinic=clinic)
    for _ in range(2):
        AppointmentFactory(clinic=clinic, patient=shared)
    AppointmentFactory(clinic=clinic)
    _, key = api_key_create(clinic=clinic, name="ehr", scopes=["appointments:read", "patients:read"])
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    api.get("/fhir/R4/Appointment")  # the key's first use writes last_used_at
    counts = []
    for size in (1, 50):
        with CaptureQueriesContext(connection) as queries:
            response = api.get("/fhir/R4/Appointment", {"_include": "Appointment:patient", "_count": size})
        counts.append(len(queries))
    assert counts[0] == counts[1]
    bundle = response.json()
    assert_valid_fhir(bundle, "Bundle")
    included = [e for e in bundle["entry"] if e["search"]["mode"] == "include"]
    assert sorted(e["resource"]["resourceType"] for e in included) == ["Patient", "Patient"]
    assert len([e for e in bundle["entry"] if e["search"]["mode"] == "match"]) == 3
    assert all(e["fullUrl"].endswith(f"/fhir/R4/Patient/{e['resource']['id']}") for e in included)


def test_include_needs_the_scope_of_what_it_adds(api, clinic):
    AppointmentFactory(clinic=clinic)
    _, key = api_key_create(clinic=clinic, name="calendar", scopes=["appointments:read"])
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert api.get("/fhir/R4/Appointment").status_code == 200
    refused = api.get("/fhir/R4/Appointment", {"_include": "Appointment:patient"})
    assert refused.status_code == 403
    assert "patients:read" in refused.json()["issue"][0]["diagnostics"]
    unknown = api.get("/fhir/R4/Appointment", {"_include": "Appointment:location"})
    assert unknown.status_code == 400
    assert unknown.json()["issue"][0]["location"] == ["http._include"]
