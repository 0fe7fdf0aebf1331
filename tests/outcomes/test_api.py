"""The outcome API: clinical access (care relationship or break-glass), audit, FHIR, bad input."""

from __future__ import annotations

import pytest
from django.utils import timezone

from clinic.models import AuditAction, AuditEvent
from outcomes.services import outcome_link_create, outcome_record, outcome_submit
from tests.factories import AppointmentFactory, PatientFactory
from tests.fhir_validation import assert_valid_fhir
from tests.outcomes.conftest import lefs

pytestmark = pytest.mark.django_db


@pytest.fixture
def scored(patient, owner):
    return outcome_submit(link=outcome_link_create(patient=patient, measure="lefs"), answers=lefs(44))


def test_a_therapist_reads_scores_of_a_patient_in_their_care(therapist_api, practitioner, patient, scored):
    AppointmentFactory(clinic=patient.clinic, patient=patient, practitioner=practitioner)
    response = therapist_api.get(f"/api/v1/outcome-responses/{scored.pk}/")
    assert response.status_code == 200
    assert response.json()["score"] == "44.00"
    assert response.json()["mcid"] == "9"
    assert AuditEvent.objects.filter(action=AuditAction.VIEW, patient_id=patient.pk).exists()
    listed = therapist_api.get("/api/v1/outcome-responses/", {"patient": patient.pk})
    assert [row["id"] for row in listed.json()["results"]] == [scored.pk]


def test_without_a_care_relationship_a_therapist_needs_break_glass(therapist_api, practitioner, patient, scored):
    response = therapist_api.get(f"/api/v1/outcome-responses/{scored.pk}/")
    assert response.status_code == 403
    assert "break-glass" in response.json()["detail"]
    assert therapist_api.get("/api/v1/outcome-responses/").json()["results"] == []
    assert AuditEvent.objects.filter(action=AuditAction.DENIED, patient_id=patient.pk).exists()


def test_receptionists_send_links_but_never_see_scores(receptionist_api, patient, scored):
    assert receptionist_api.get(f"/api/v1/outcome-responses/{scored.pk}/").status_code == 404
    assert receptionist_api.get("/api/v1/outcome-responses/").status_code == 404
    created = receptionist_api.post("/api/v1/outcome-links/", {"patient": patient.pk, "measure": "nprs", "send": True})
    assert created.status_code == 201
    assert "score" not in created.json()


def test_the_fhir_bundle_has_a_questionnaire_response_and_an_observation(owner_api, scored):
    response = owner_api.get(f"/api/v1/outcome-responses/{scored.pk}/fhir/")
    assert response.status_code == 200
    bundle = response.json()
    assert_valid_fhir(bundle, "Bundle")
    kinds = [entry["resource"]["resourceType"] for entry in bundle["entry"]]
    assert kinds == ["QuestionnaireResponse", "Observation"]
    observation = bundle["entry"][1]["resource"]
    assert observation["valueQuantity"]["value"] == 44
    assert observation["derivedFrom"] == [{"reference": f"QuestionnaireResponse/outcome-{scored.pk}"}]


def test_nprs_is_coded_with_loinc_and_an_incomplete_response_has_no_observation(owner_api, patient, owner):
    today = timezone.localdate(timezone.now(), patient.clinic.tz)
    nprs = outcome_record(patient=patient, measure="nprs", answers={"pain": 6}, recorded_on=today, by=owner)
    bundle = owner_api.get(f"/api/v1/outcome-responses/{nprs.pk}/fhir/").json()
    assert_valid_fhir(bundle, "Bundle")
    assert bundle["entry"][1]["resource"]["code"]["coding"][0] == {
        "system": "http://loinc.org", "code": "72514-3",
        "display": "Pain severity - 0-10 verbal numeric rating [Score] - Reported",
    }  # fmt: skip
    partial = outcome_record(patient=patient, measure="lefs", answers=lefs(30) | {"q2": None}, recorded_on=today,
                             by=owner)  # fmt: skip
    bundle = owner_api.get(f"/api/v1/outcome-responses/{partial.pk}/fhir/").json()
    assert_valid_fhir(bundle, "Bundle")
    assert [e["resource"]["resourceType"] for e in bundle["entry"]] == ["QuestionnaireResponse"]
    assert bundle["entry"][0]["resource"]["status"] == "stopped"


def test_staff_type_in_a_paper_form_and_bad_input_is_a_400_naming_the_field(owner_api, patient):
    today = timezone.localdate(timezone.now(), patient.clinic.tz).isoformat()
    created = owner_api.post(
        "/api/v1/outcome-responses/",
        {"patient": patient.pk, "measure": "psfs", "recorded_on": today,
         "answers": {"activities": [{"name": "Run", "rating": 4}, {"name": "Squat", "rating": 7}]}},
        format="json",
    )  # fmt: skip
    assert created.status_code == 201
    assert created.json()["score"] == "5.50"
    bad = owner_api.post(
        "/api/v1/outcome-responses/",
        {"patient": patient.pk, "measure": "lefs", "recorded_on": today, "answers": {"q1": 9}},
        format="json",
    )
    assert bad.status_code == 400
    assert "q1" in bad.json()["errors"]


def test_another_clinics_patient_is_not_found(owner_api, other_clinic):
    stranger = PatientFactory(clinic=other_clinic)
    response = owner_api.post("/api/v1/outcome-links/", {"patient": stranger.pk, "measure": "nprs"}, format="json")
    assert response.status_code == 400
    assert "patient" in response.json()["errors"]
