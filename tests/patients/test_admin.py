"""Patient admin: search, flag badge, the clinical summary (clinical roles, audited), duplicates, merge."""

from __future__ import annotations

import pytest

from clinic.models import AuditAction, AuditEvent
from intake.services import intake_submit
from patients.models import Patient
from tests.factories import AppointmentFactory, PatientFactory, clean_intake_answers, intake_link

pytestmark = pytest.mark.django_db


@pytest.fixture
def flagged(clinic, practitioner):
    patient = PatientFactory(clinic=clinic, given_name="Maya", family_name="Singh")
    # The shared therapist is her usual practitioner (see clinic.security.access).
    AppointmentFactory(clinic=clinic, patient=patient, practitioner=practitioner)
    intake_submit(link=intake_link(patient), answers=clean_intake_answers(fever=True, goals="Run a 10k again."))
    return patient


def test_the_list_searches_by_phone_and_shows_a_flag_badge(client, receptionist, flagged, clinic):
    PatientFactory(clinic=clinic, given_name="Liam", family_name="Brown")
    client.force_login(receptionist)
    response = client.get("/admin/patients/patient/", {"q": str(flagged.mobile_phone)[2:]})
    body = response.content.decode()
    assert response.status_code == 200
    assert "Singh" in body
    assert "Brown" not in body
    assert "1 urgent" in body


def test_a_therapist_sees_flags_on_top_and_the_intake_as_a_readable_summary_and_the_view_is_audited(
    client, therapist, flagged
):
    client.force_login(therapist)
    body = client.get(f"/admin/patients/patient/{flagged.pk}/change/").content.decode()
    assert body.index("Possible systemic cause") < body.index("Intake history") < body.index("Run a 10k again.")
    assert "<dt>Have you had a fever (a high temperature) since this pain started?</dt><dd>Yes</dd>" in body
    event = AuditEvent.objects.get(action=AuditAction.VIEW, patient_id=flagged.pk)
    assert event.via == "admin"


def test_a_receptionist_sees_the_flags_but_not_the_answers_and_nothing_is_audited(client, receptionist, flagged):
    client.force_login(receptionist)
    body = client.get(f"/admin/patients/patient/{flagged.pk}/change/").content.decode()
    assert "Urgent flag: review before treatment" in body
    assert "Possible systemic cause" not in body  # the flag's title and reason are clinical
    assert "Run a 10k again." not in body
    assert client.get("/admin/intake/intakesubmission/").status_code == 403
    assert not AuditEvent.objects.filter(patient_id=flagged.pk, action=AuditAction.VIEW).exists()


def test_adding_a_likely_duplicate_asks_for_confirmation(client, receptionist, clinic, flagged):
    client.force_login(receptionist)
    form = {
        "clinic": clinic.pk, "given_name": "Maya", "family_name": "Singh",
        "birth_date": flagged.birth_date.isoformat(), "gender": "female", "preferred_channel": "email",
    }  # fmt: skip
    response = client.post("/admin/patients/patient/add/", form)
    assert response.status_code == 200
    assert "Possible duplicate of: Maya Singh" in response.content.decode()
    assert Patient.objects.count() == 1
    response = client.post("/admin/patients/patient/add/", {**form, "confirm_not_duplicate": "on"})
    assert response.status_code == 302
    assert Patient.objects.count() == 2


def test_the_merge_action_merges_the_newer_record_into_the_older(client, owner, clinic, flagged):
    newer = PatientFactory(clinic=clinic, given_name="Maya", family_name="Singh")
    client.force_login(owner)
    response = client.post(
        "/admin/patients/patient/",
        {"action": "merge_selected", "_selected_action": [flagged.pk, newer.pk]},
    )
    assert response.status_code == 302
    newer.refresh_from_db()
    assert newer.merged_into == flagged
    assert newer.is_archived
