"""Patients API: create with E.164 phones and consent stamps, duplicate warning, search, archive."""

from __future__ import annotations

import datetime as dt

import pytest

from intake.services import intake_submit
from patients.models import Patient
from tests.factories import PatientFactory, clean_intake_answers, intake_link

pytestmark = pytest.mark.django_db

NEW = {
    "given_name": "Maya", "family_name": "Singh", "birth_date": "1984-05-01", "gender": "female",
    "email": "maya@example.com", "mobile_phone": "(416) 555-0123", "email_consent": True,
    "emergency_contact_name": "Raj Singh", "emergency_contact_phone": "+44 20 7946 0958",
}  # fmt: skip


def test_front_desk_creates_a_patient_with_phones_in_e164_and_consent_recorded(receptionist_api, clinic):
    response = receptionist_api.post("/api/v1/patients/", NEW)
    assert response.status_code == 201
    body = response.json()
    assert body["mobile_phone"] == "+14165550123"
    assert body["emergency_contact_phone"] == "+442079460958"
    assert body["email_consent_at"]
    assert body["email_consent_source"] == "api"
    assert body["sms_consent_at"] is None
    assert body["active_flags"] == []
    assert Patient.objects.get(pk=body["id"]).clinic == clinic


@pytest.mark.parametrize(
    ("field", "value"),
    [("mobile_phone", "12"), ("email", "not-an-email"), ("gender", "robot"), ("birth_date", "1984-13-01")],
)
def test_bad_contact_details_are_field_errors_and_nothing_is_written(receptionist_api, field, value):
    response = receptionist_api.post("/api/v1/patients/", {**NEW, field: value})
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert Patient.objects.count() == 0


def test_sms_consent_needs_a_mobile_number(receptionist_api):
    response = receptionist_api.post("/api/v1/patients/", {**NEW, "mobile_phone": "", "sms_consent": True})
    assert response.status_code == 400
    assert Patient.objects.count() == 0


@pytest.mark.parametrize(
    "same",
    [
        {"given_name": "maya", "family_name": "SINGH", "birth_date": dt.date(1984, 5, 1), "email": "other@example.com"},
        {"given_name": "M", "family_name": "S", "email": "MAYA@example.com"},
        {"given_name": "M", "family_name": "S", "email": "x@example.com", "mobile_phone": "+14165550123"},
    ],
    ids=["name-and-birth-date", "email", "phone"],
)
def test_a_likely_duplicate_is_a_409_listing_it_unless_confirmed(receptionist_api, clinic, same):
    existing = PatientFactory(clinic=clinic, **same)
    response = receptionist_api.post("/api/v1/patients/", NEW)
    assert response.status_code == 409
    assert [d["id"] for d in response.json()["errors"]["duplicates"]] == [existing.pk]
    confirmed = receptionist_api.post("/api/v1/patients/", {**NEW, "allow_duplicate": True})
    assert confirmed.status_code == 201


def test_the_same_person_at_another_clinic_is_not_a_duplicate(receptionist_api, other_clinic):
    PatientFactory(clinic=other_clinic, email="maya@example.com")
    assert receptionist_api.post("/api/v1/patients/", NEW).status_code == 201


def test_search_finds_by_name_email_or_phone_typed_any_way(receptionist_api, clinic, other_clinic):
    maya = PatientFactory(clinic=clinic, given_name="Maya", family_name="Singh", email="ms@example.com",
                          mobile_phone="+14165550123")  # fmt: skip
    PatientFactory(clinic=clinic, given_name="Liam", family_name="Brown")
    PatientFactory(clinic=other_clinic, given_name="Maya", family_name="Singh")
    for term in ("sing", "MAYA SINGH", "singh maya", "ms@example", "416 555 0123", "(416) 555-0123"):
        found = receptionist_api.get("/api/v1/patients/", {"q": term}).json()["results"]
        assert [p["id"] for p in found] == [maya.pk], term


def test_a_search_too_short_for_the_index_is_a_field_error(receptionist_api):
    response = receptionist_api.get("/api/v1/patients/", {"q": "ab"})
    assert response.status_code == 400
    assert response.json()["errors"] == {"q": ["Type at least 3 characters."]}


def test_the_patient_list_costs_a_fixed_number_of_queries(receptionist_api, clinic, django_assert_num_queries):
    for patient in PatientFactory.create_batch(5, clinic=clinic):
        intake_submit(link=intake_link(patient), answers=clean_intake_answers(conditions=["pregnancy"]))
    # membership (clinic and role), one page of patients, their active flags
    with django_assert_num_queries(3):
        response = receptionist_api.get("/api/v1/patients/")
    assert len(response.json()["results"]) == 5
    assert all(len(p["active_flags"]) == 1 for p in response.json()["results"])


def test_updating_withdraws_consent_with_the_time_and_source(receptionist_api, clinic):
    patient = PatientFactory(clinic=clinic)
    response = receptionist_api.patch(f"/api/v1/patients/{patient.pk}/", {"email_consent": False})
    assert response.status_code == 200
    patient.refresh_from_db()
    assert patient.email_consent is False
    assert patient.email_consent_source == "api"


def test_patients_are_archived_not_deleted(owner_api, clinic):
    patient = PatientFactory(clinic=clinic)
    assert owner_api.delete(f"/api/v1/patients/{patient.pk}/").status_code == 405
    archived = owner_api.post(f"/api/v1/patients/{patient.pk}/archive/").json()
    assert archived["is_archived"] is True
    assert archived["archived_at"]
    listed = owner_api.get("/api/v1/patients/", {"is_archived": "false"}).json()["results"]
    assert patient.pk not in [p["id"] for p in listed]


def test_another_clinics_patient_is_404(other_api, clinic):
    assert other_api.get(f"/api/v1/patients/{PatientFactory(clinic=clinic).pk}/").status_code == 404
