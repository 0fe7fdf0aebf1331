"""Patient rights: the export (FHIR Bundle and HTML) holds everything about one patient and
validates; erasure removes identity and keeps clinical rows; retention removes erased
patients after the clinic's period, not before, and running it twice changes nothing more."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from clinic.models import AuditAction, AuditEvent, BreakGlassAccess, Message, MessageStatus, OptOut
from clinic.security.access import break_glass_open
from clinic.security.roles import Role
from intake.models import IntakeLink, IntakeLinkStatus, IntakeSubmission
from intake.services import intake_submit
from patients.models import Patient
from patients.privacy import patient_erase, retention_apply
from sessions.models import Addendum, Appointment, ArtEntry, TreatmentSession
from sessions.services import entry_add, note_addendum_add, note_sign
from tests.factories import (
    AppointmentFactory,
    MessageFactory,
    PatientFactory,
    PractitionerFactory,
    TreatmentSessionFactory,
    clean_intake_answers,
    intake_link,
    staff,
)
from tests.fhir_validation import assert_valid_fhir
from tests.sessions.conftest import art, massage

pytestmark = pytest.mark.django_db
SIGNATURE = "Maya R. Singh"
ADDENDUM = "Patient reported less pain the next day."
REASON = "Covering for Theo today; patient arrived with acute calf pain."


@pytest.fixture
def patient(clinic):
    return PatientFactory(
        clinic=clinic, given_name="Maya", family_name="Singh", preferred_name="May",
        email="maya.singh@example.com", mobile_phone="+14165550188", address_line1="12 Elm Street",
        city="Toronto", postal_code="M4C 1A1", emergency_contact_name="Ravi Singh",
        emergency_contact_phone="+14165550199", birth_date=dt.date(1988, 4, 2),
    )  # fmt: skip


@pytest.fixture
def record(catalogs, clinic, practitioner, therapist, patient):
    """Everything the clinic holds about Maya: an appointment with a reminder, a signed note
    with entries and an addendum, an intake with a typed signature, and an opt-out."""
    appointment = AppointmentFactory(
        clinic=clinic, patient=patient, practitioner=practitioner, notes="Prefers to be called May; husband drives."
    )
    message = MessageFactory(appointment=appointment, recipient=patient.email, body="Hi Maya, see you tomorrow.")
    session = TreatmentSessionFactory(
        clinic=clinic, patient=patient, practitioner=practitioner, appointment=appointment
    )
    entry_add(entry=art(session), actor=therapist)
    entry_add(entry=massage(session), actor=therapist)
    note_sign(session=session, actor=therapist)
    note_addendum_add(session=session, text=ADDENDUM, actor=therapist)
    link = intake_link(patient)
    submission = intake_submit(link=link, answers=clean_intake_answers(goals="Run a 10k again."))
    intake_link(patient)  # a second form sent, still open
    IntakeSubmission.objects.filter(pk=submission.pk).update(signature_name=SIGNATURE, ip_address="203.0.113.9")
    OptOut.objects.create(clinic=clinic, patient=patient, channel="sms", source="sms_stop")
    return {"appointment": appointment, "message": message, "session": session, "submission": submission}


# --- export ---------------------------------------------------------------------------------


def test_the_export_bundle_validates_and_holds_everything_about_the_patient(owner_api, owner, record, patient):
    response = owner_api.get(f"/api/v1/patients/{patient.pk}/export/?format=fhir")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/fhir+json")
    body = response.json()
    assert_valid_fhir(body, "Bundle")
    assert body["type"] == "collection"
    resources = [entry["resource"] for entry in body["entry"]]
    for resource in resources:
        assert_valid_fhir(resource)
    kinds = {r["resourceType"] for r in resources}
    assert kinds >= {
        "Patient", "Consent", "Practitioner", "Questionnaire", "QuestionnaireResponse", "Appointment",
        "Encounter", "Procedure", "Observation", "DocumentReference", "Communication",
    }  # fmt: skip
    # Invariants fhir.resources does not check: ids unique per type, references resolve in the Bundle.
    keys = [f"{r['resourceType']}/{r['id']}" for r in resources]
    assert len(keys) == len(set(keys))
    text = response.content.decode()
    for reference in {
        f"Patient/{patient.pk}",
        f"Encounter/{record['session'].pk}",
        f"Appointment/{record['appointment'].pk}",
    }:
        assert f'"{reference}"' in text
        assert reference in keys
    [person] = [r for r in resources if r["resourceType"] == "Patient"]
    assert person["name"][0]["family"] == "Singh"
    addendum = [r for r in resources if r["resourceType"] == "DocumentReference" and r["id"].startswith("addendum-")]
    assert addendum[0]["relatesTo"][0]["target"]["reference"] == f"DocumentReference/note-{record['session'].pk}"
    opt_outs = [r for r in resources if r["resourceType"] == "Consent" and r["id"].startswith("opt-out-")]
    assert opt_outs[0]["provision"]["type"] == "deny"
    [event] = AuditEvent.objects.filter(action=AuditAction.EXPORT, patient_id=patient.pk)
    assert (event.actor, event.extra) == (owner, {"format": "fhir"})


def test_the_html_summary_reads_like_a_letter_and_is_audited(owner_api, record, patient):
    response = owner_api.get(f"/api/v1/patients/{patient.pk}/export/?format=html")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    for expected in ("Maya Singh", "12 Elm Street", "Run a 10k again.", "Sharp calf pain", ADDENDUM,
                     "Hi Maya, see you tomorrow.", SIGNATURE, "Opted out"):  # fmt: skip
        assert expected in page, expected
    assert AuditEvent.objects.filter(action=AuditAction.EXPORT, extra={"format": "html"}).count() == 1


def test_export_follows_the_clinical_access_rules(therapist_api, receptionist_api, other_api, clinic, record, patient):
    url = f"/api/v1/patients/{patient.pk}/export/"
    assert therapist_api.get(url).status_code == 200  # Theo treats Maya
    assert receptionist_api.get(url).status_code == 404
    assert other_api.get(url).status_code == 404
    assert therapist_api.get(url + "?format=pdf").status_code == 400

    from rest_framework.test import APIClient

    colleague = staff(clinic, Role.THERAPIST, "cara-colleague")
    PractitionerFactory(clinic=clinic, user=colleague)
    client = APIClient()
    client.force_authenticate(colleague)
    refused = client.get(url)
    assert refused.status_code == 403
    assert "POST /api/v1/break-glass/" in refused.json()["detail"]
    break_glass_open(user=colleague, patient=patient, reason=REASON)
    assert client.get(url).status_code == 200


# --- erasure --------------------------------------------------------------------------------


def test_erasure_removes_identity_and_contact_data_and_keeps_clinical_rows(owner_api, owner, record, patient):
    response = owner_api.post(f"/api/v1/patients/{patient.pk}/erase/", {"reason": "Request by email, ticket 4411"})
    assert response.status_code == 200, response.content
    patient.refresh_from_db()
    assert (patient.given_name, patient.family_name) == ("Erased", f"Patient {patient.pk}")
    for name in ("preferred_name", "email", "mobile_phone", "address_line1", "city", "postal_code",
                 "emergency_contact_name", "emergency_contact_phone"):  # fmt: skip
        assert not getattr(patient, name), name
    assert patient.birth_date is None
    assert (patient.erased_by, patient.is_archived) == (owner, True)
    assert patient.erased_at is not None
    assert "singh" not in patient.search_text
    assert "maya" not in patient.search_text

    message = Message.objects.get(pk=record["message"].pk)
    assert (message.recipient, message.body, message.context) == ("", "", {})
    assert message.status == MessageStatus.CANCELLED
    submission = IntakeSubmission.objects.get(pk=record["submission"].pk)
    assert (submission.signature_name, submission.ip_address) == ("", None)
    assert submission.answers["goals"] == "Run a 10k again."  # clinical answers stay
    assert Appointment.objects.get(pk=record["appointment"].pk).notes == ""
    assert not IntakeLink.objects.filter(patient=patient, status=IntakeLinkStatus.OPEN).exists()

    session = TreatmentSession.objects.get(pk=record["session"].pk)
    assert session.subjective.startswith("Sharp calf pain")
    assert session.is_signed
    assert ArtEntry.objects.filter(session=session).exists()
    assert Addendum.objects.filter(session=session, text=ADDENDUM).exists()

    [event] = AuditEvent.objects.filter(action=AuditAction.ERASE, patient_id=patient.pk)
    assert (event.actor, event.reason) == (owner, "Request by email, ticket 4411")
    assert owner_api.post(f"/api/v1/patients/{patient.pk}/erase/", {"reason": "again"}).status_code == 400


def test_only_owners_erase(therapist_api, receptionist_api, therapist, patient):
    for client in (therapist_api, receptionist_api):
        assert client.post(f"/api/v1/patients/{patient.pk}/erase/", {"reason": "asked"}).status_code in {403, 404}
    with pytest.raises(PermissionDenied):
        patient_erase(patient=patient, by=therapist)
    patient.refresh_from_db()
    assert patient.erased_at is None
    assert patient.family_name == "Singh"


def test_erasure_needs_a_reason_and_rejects_unknown_fields(owner_api, patient):
    assert owner_api.post(f"/api/v1/patients/{patient.pk}/erase/", {}).status_code == 400
    assert owner_api.post(f"/api/v1/patients/{patient.pk}/erase/", {"reason": "x", "clinic": 1}).status_code == 400
    patient.refresh_from_db()
    assert patient.erased_at is None


# --- retention ------------------------------------------------------------------------------


def _rows(patient_id: int) -> dict:
    return {
        "patients": Patient.objects.filter(pk=patient_id).count(),
        "sessions": TreatmentSession.objects.filter(patient_id=patient_id).count(),
        "addenda": Addendum.objects.filter(session__patient_id=patient_id).count(),
        "appointments": Appointment.objects.filter(patient_id=patient_id).count(),
        "submissions": IntakeSubmission.objects.filter(patient_id=patient_id).count(),
        "messages": Message.objects.filter(patient_id=patient_id).count(),
    }


def test_retention_removes_an_erased_patient_after_the_period_and_not_before(owner, clinic, record, patient):
    colleague = staff(clinic, Role.THERAPIST, "cara-colleague")
    break_glass_open(user=colleague, patient=patient, reason=REASON)  # a PROTECT row pointing at her
    patient_erase(patient=patient, by=owner)
    last_visit = record["appointment"].start
    kept = PatientFactory(clinic=clinic)  # never erased: retention never touches it

    day_before = last_visit.replace(year=last_visit.year + 7) - dt.timedelta(days=1)
    assert retention_apply(now=day_before) == []
    assert all(_rows(patient.pk).values())

    day_after = last_visit.replace(year=last_visit.year + 7) + dt.timedelta(days=1)
    assert retention_apply(now=day_after) == [patient.pk]
    assert not any(_rows(patient.pk).values())
    assert not BreakGlassAccess.objects.filter(patient_id=patient.pk).exists()
    assert Patient.objects.filter(pk=kept.pk).exists()
    # The audit trail stays, with the removal recorded and the chain intact.
    [event] = AuditEvent.objects.filter(action=AuditAction.DELETE, patient_id=patient.pk, via="retention")
    assert event.extra["treatment_sessions"] == 1
    assert AuditEvent.objects.filter(patient_id=patient.pk, action=AuditAction.ERASE).exists()
    call_command("verify_audit")

    # Run it twice: nothing more to do, nothing else removed.
    assert retention_apply(now=day_after) == []
    assert Patient.objects.filter(pk=kept.pk).exists()
    assert AuditEvent.objects.filter(action=AuditAction.DELETE, via="retention").count() == 1


def test_the_clinic_sets_the_retention_period(owner, clinic, record, patient):
    clinic.retention_years = 10
    clinic.full_clean()
    clinic.save()
    patient_erase(patient=patient, by=owner)
    last_visit = record["appointment"].start
    assert retention_apply(now=last_visit.replace(year=last_visit.year + 8)) == []
    assert retention_apply(now=last_visit.replace(year=last_visit.year + 11)) == [patient.pk]


def test_retention_never_removes_a_patient_who_was_not_erased(record, patient):
    assert retention_apply(now=timezone.now() + dt.timedelta(days=365 * 30)) == []
    assert all(_rows(patient.pk).values())


def test_the_command_runs_and_is_idempotent(owner, record, patient, capsys):
    patient_erase(patient=patient, by=owner)
    call_command("apply_retention")
    call_command("apply_retention")
    assert "0 patient record(s) removed" in capsys.readouterr().out
    assert Patient.objects.filter(pk=patient.pk).exists()  # the last visit is tomorrow


def test_signed_notes_stay_locked_outside_the_retention_path(record):
    session = record["session"]
    with pytest.raises(DatabaseError), transaction.atomic():
        TreatmentSession.objects.filter(pk=session.pk).delete()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL clinic.retention_purge = 'on'")
        # The setting lets deletes through, never edits of signed content.
        with pytest.raises(DatabaseError), transaction.atomic():
            TreatmentSession.objects.filter(pk=session.pk).update(plan="changed")
    session.refresh_from_db()
    assert session.plan != "changed"


def test_erasure_refused_twice_at_the_service(owner, patient):
    patient_erase(patient=patient, by=owner)
    with pytest.raises(ValidationError):
        patient_erase(patient=Patient.objects.get(pk=patient.pk), by=owner)


def test_the_daily_task_is_scheduled_and_safe_to_run_twice(owner, record, patient):
    from clinic.celery import app
    from patients.tasks import apply_retention

    assert app.conf.beat_schedule["patient-retention"]["task"] == apply_retention.name
    patient_erase(patient=patient, by=owner)
    assert apply_retention() == 0  # her last visit is tomorrow
    assert apply_retention() == 0
    assert Patient.objects.filter(pk=patient.pk).exists()
