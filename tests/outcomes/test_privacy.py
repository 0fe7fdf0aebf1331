"""Outcome responses in the patient's export; erasure revokes open links; retention removes them."""

from __future__ import annotations

import pytest

from outcomes.models import OutcomeLink, OutcomeResponse
from outcomes.privacy import PART
from outcomes.services import outcome_link_create, outcome_submit
from patients.privacy import patient_erase
from tests.outcomes.conftest import lefs

pytestmark = pytest.mark.django_db


def test_the_export_holds_each_response_and_its_score(owner_api, patient):
    response = outcome_submit(link=outcome_link_create(patient=patient, measure="lefs"), answers=lefs(44))
    bundle = owner_api.get(f"/api/v1/patients/{patient.pk}/export/", {"format": "fhir"}).json()
    ids = {(e["resource"]["resourceType"], e["resource"]["id"]) for e in bundle["entry"]}
    assert ("QuestionnaireResponse", f"outcome-{response.pk}") in ids
    assert ("Observation", f"outcome-score-{response.pk}") in ids
    page = owner_api.get(f"/api/v1/patients/{patient.pk}/export/", {"format": "html"}).content.decode()
    assert "Outcome measures (1)" in page


def test_erasure_revokes_open_links_and_retention_removes_everything(owner, patient):
    outcome_submit(link=outcome_link_create(patient=patient, measure="nprs"), answers={"pain": 4})
    open_link = outcome_link_create(patient=patient, measure="lefs")
    patient_erase(patient=patient, by=owner, reason="Patient asked to be forgotten")
    open_link.refresh_from_db()
    assert open_link.status == "revoked"
    assert PART.purge_counts([patient]) == {"outcome_responses": 1}
    PART.purge([patient])
    assert not OutcomeResponse.objects.exists()
    assert not OutcomeLink.objects.exists()
