"""Emergency access: usual practitioners read freely; others give a reason; owners review."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from clinic.models import AuditAction, AuditEvent, BreakGlassAccess
from clinic.security.access import BreakGlassRequired, break_glass_open, clinical_access_check
from clinic.security.roles import Role
from clinic.services import api_key_create
from tests.factories import AppointmentFactory, PatientFactory, PractitionerFactory, staff

pytestmark = pytest.mark.django_db
REASON = "Covering for Theo today; patient arrived with acute calf pain."


@pytest.fixture
def patient(clinic):
    return PatientFactory(clinic=clinic)


@pytest.fixture
def colleague(clinic):
    """A therapist of the same clinic who has never seen this patient."""
    user = staff(clinic, Role.THERAPIST, "cara-colleague")
    PractitionerFactory(clinic=clinic, user=user)
    return user


def test_owner_and_usual_practitioner_need_no_reason(owner, practitioner, patient):
    AppointmentFactory(clinic=patient.clinic, patient=patient, practitioner=practitioner)
    assert clinical_access_check(user=owner, patient=patient) == "owner"
    assert clinical_access_check(user=practitioner.user, patient=patient) == "usual"


def test_other_therapist_must_break_the_glass(colleague, patient):
    with pytest.raises(BreakGlassRequired):
        clinical_access_check(user=colleague, patient=patient)


def test_receptionist_never_gets_clinical_access(receptionist, patient):
    with pytest.raises(PermissionDenied) as raised:
        clinical_access_check(user=receptionist, patient=patient)
    assert not isinstance(raised.value, BreakGlassRequired)
    with pytest.raises(PermissionDenied):
        break_glass_open(user=receptionist, patient=patient, reason=REASON)


def test_break_glass_without_a_reason_is_refused_and_writes_nothing(colleague, patient):
    with pytest.raises(ValidationError) as raised:
        break_glass_open(user=colleague, patient=patient, reason="  urgent ")
    assert "reason" in raised.value.message_dict
    assert not BreakGlassAccess.objects.exists()
    assert not AuditEvent.objects.filter(action=AuditAction.BREAK_GLASS).exists()


def test_break_glass_with_a_reason_grants_access_for_hours_and_is_audited(colleague, patient):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        access = break_glass_open(user=colleague, patient=patient, reason=REASON)
        assert clinical_access_check(user=colleague, patient=patient) == "break_glass"
    event = AuditEvent.objects.get(action=AuditAction.BREAK_GLASS)
    assert (event.actor, event.patient_id, event.reason) == (colleague, patient.id, REASON)
    assert access.expires_at == start + dt.timedelta(hours=4)
    with time_machine.travel(start + dt.timedelta(hours=4, minutes=1), tick=False), pytest.raises(BreakGlassRequired):
        clinical_access_check(user=colleague, patient=patient)


def test_api_break_glass_then_owner_reviews(client, colleague, owner, patient):
    from rest_framework.test import APIClient

    therapist_api, owner_api = APIClient(), APIClient()
    therapist_api.force_authenticate(colleague)
    owner_api.force_authenticate(owner)
    refused = therapist_api.post("/api/v1/break-glass/", {"patient": patient.id, "reason": "x"})
    assert refused.status_code == 400
    assert "reason" in refused.json()["errors"]
    created = therapist_api.post("/api/v1/break-glass/", {"patient": patient.id, "reason": REASON})
    assert created.status_code == 201, created.json()
    access_id = created.json()["id"]
    assert [row["id"] for row in owner_api.get("/api/v1/break-glass/").json()["results"]] == [access_id]
    assert therapist_api.post(f"/api/v1/break-glass/{access_id}/review/").status_code == 403
    reviewed = owner_api.post(f"/api/v1/break-glass/{access_id}/review/")
    assert reviewed.status_code == 200
    assert reviewed.json()["reviewed_by"] == owner.id
    assert owner_api.post(f"/api/v1/break-glass/{access_id}/review/").status_code == 400


def test_api_break_glass_on_another_clinics_patient_is_not_found(other_clinic, colleague):
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(colleague)
    foreign = PatientFactory(clinic=other_clinic)
    response = api.post("/api/v1/break-glass/", {"patient": foreign.id, "reason": REASON})
    assert response.status_code == 400
    assert "patient" in response.json()["errors"]
    assert not BreakGlassAccess.objects.exists()


def test_api_keys_cannot_break_the_glass(api, clinic, patient):
    _, raw = api_key_create(clinic=clinic, name="ehr", scopes=["clinical:read", "clinical:write"])
    response = api.post(
        "/api/v1/break-glass/", {"patient": patient.id, "reason": REASON}, HTTP_AUTHORIZATION=f"Bearer {raw}"
    )
    assert response.status_code == 403
