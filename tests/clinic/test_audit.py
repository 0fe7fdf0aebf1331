from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from clinic.models import AuditAction, AuditEvent
from clinic.security.audit import audit_record, audit_verify
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db


def test_each_event_links_to_the_previous_one_of_its_clinic(clinic, other_clinic, therapist):
    first = audit_record(action=AuditAction.VIEW, clinic=clinic, actor=therapist, via="admin")
    audit_record(action=AuditAction.VIEW, clinic=other_clinic, via="api")
    second = audit_record(action=AuditAction.CHANGE, clinic=clinic, actor=therapist, via="api")
    assert first.prev_hash == ""
    assert second.prev_hash == first.hash
    assert audit_verify(clinic_id=clinic.id) == []


def test_event_takes_clinic_and_patient_from_the_object(clinic, therapist):
    patient = PatientFactory(clinic=clinic)
    event = audit_record(action=AuditAction.VIEW, obj=patient, actor=therapist, via="admin")
    assert (event.clinic_id, event.object_type, event.object_id) == (clinic.id, "patients.patient", str(patient.id))
    assert event.actor_label == therapist.username


def test_database_refuses_to_edit_or_delete_audit_rows(clinic):
    event = audit_record(action=AuditAction.VIEW, clinic=clinic)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(reason="edited")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()


def test_verify_audit_reports_a_row_edited_behind_the_apps_back(clinic):
    for _ in range(3):
        audit_record(action=AuditAction.VIEW, clinic=clinic)
    middle = AuditEvent.objects.filter(clinic=clinic).order_by("id")[1]
    with connection.cursor() as cursor:  # what a superuser bypassing triggers could do
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("UPDATE clinic_auditevent SET reason = 'tampered' WHERE id = %s", [middle.id])
        cursor.execute("SET LOCAL session_replication_role = origin")
    assert [b.event_id for b in audit_verify(clinic_id=clinic.id)] == [middle.id]
    with pytest.raises(CommandError, match="1 break"):
        call_command("verify_audit", stdout=StringIO())


def test_verify_audit_passes_on_an_intact_chain(clinic):
    audit_record(action=AuditAction.VIEW, clinic=clinic)
    out = StringIO()
    call_command("verify_audit", stdout=out)
    assert "intact" in out.getvalue()
