"""Notes through the services: field errors, the needle rule, signing, the lock (services
and database), addenda, the audit trail of every change, and the follow-up for reminders."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, transaction

from clinic.models import AuditAction, AuditEvent
from sessions.models import AcupunctureEntry, Addendum, ArtEntry, MassageEntry, NoteStatus, TreatmentSession
from sessions.services import (
    NoteLockedError,
    content_hash,
    entry_add,
    entry_delete,
    entry_save,
    note_addendum_add,
    note_followup,
    note_sign,
    note_update,
    note_verify,
    session_start,
)
from tests.factories import AppointmentFactory, PatientFactory, PractitionerFactory, TreatmentSessionFactory
from tests.sessions.conftest import art, home_care, massage, needle
from treatments.models import TriggerPoint

pytestmark = pytest.mark.django_db


def actions(session) -> list[str]:
    return list(
        AuditEvent.objects.filter(object_type="treatment_sessions.treatmentsession", object_id=str(session.pk))
        .order_by("id")
        .values_list("action", flat=True)
    )


# --- writing a draft ----------------------------------------------------------------------


def test_starting_a_session_from_an_appointment_takes_its_time_and_is_audited(
    catalogs, clinic, practitioner, therapist
):
    appointment = AppointmentFactory(clinic=clinic, practitioner=practitioner)
    session = session_start(
        clinic=clinic, patient=appointment.patient, practitioner=practitioner, appointment=appointment, actor=therapist
    )
    assert session.started_at == appointment.start
    assert session.status == NoteStatus.DRAFT
    assert session.created_by == therapist
    assert actions(session) == [AuditAction.CREATE]


def test_a_session_refuses_another_clinics_patient(clinic, other_clinic, practitioner, therapist):
    stranger = PatientFactory(clinic=other_clinic)
    with pytest.raises(ValidationError) as caught:
        session_start(clinic=clinic, patient=stranger, practitioner=practitioner, actor=therapist)
    assert "patient" in caught.value.message_dict
    assert not TreatmentSession.objects.exists()


def test_an_appointment_of_another_patient_is_refused(clinic, practitioner, therapist):
    appointment = AppointmentFactory(clinic=clinic, practitioner=practitioner)
    other = PatientFactory(clinic=clinic)
    with pytest.raises(ValidationError) as caught:
        session_start(clinic=clinic, patient=other, practitioner=practitioner, appointment=appointment, actor=therapist)
    assert "appointment" in caught.value.message_dict


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"pain_before": 11}, "pain_before"),
        ({"pain_after": 12}, "pain_after"),
        ({"rebook_within_days": 0}, "rebook_within_days"),
        ({"course_sessions": 60}, "course_sessions"),
    ],
)
def test_out_of_range_note_values_are_field_errors_and_nothing_changes(session, therapist, changes, field):
    with pytest.raises(ValidationError) as caught:
        note_update(session=session, actor=therapist, **changes)
    assert field in caught.value.message_dict
    session.refresh_from_db()
    assert (session.pain_before, session.pain_after) == (6, 3)


def test_a_field_that_is_not_part_of_the_note_cannot_be_changed(session, therapist):
    with pytest.raises(ValidationError) as caught:
        note_update(session=session, actor=therapist, status=NoteStatus.SIGNED)
    assert "status" in caught.value.message_dict


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda s: needle(s, inserted=-1), "needles_inserted"),
        (lambda s: needle(s, point="GV4", side="left"), "side"),
        (lambda s: needle(s, point="CV4", side="both"), "side"),
        (lambda s: needle(s, point="ST36", side=""), "side"),
        (lambda s: massage(s, pressure=6), "pressure"),
        (lambda s: massage(s, pressure=0), "pressure"),
        (lambda s: art(s, passes=0), "passes"),
        (lambda s: home_care(s, sets=0), "sets"),
    ],
)
def test_bad_entry_values_are_field_errors_and_nothing_is_written(session, therapist, build, field):
    with pytest.raises(ValidationError) as caught:
        entry_add(entry=build(session), actor=therapist)
    assert field in caught.value.message_dict
    assert not AcupunctureEntry.objects.exists()
    assert not MassageEntry.objects.exists()


def test_a_midline_point_is_recorded_without_side(session, therapist):
    entry = entry_add(entry=needle(session, point="GV4", side=""), actor=therapist)
    assert entry.side == ""


def test_an_art_protocol_fills_in_the_patient_movement(session, therapist):
    from treatments.models import ArtProtocol

    protocol = ArtProtocol.objects.get(code="gastrocnemius")
    entry = entry_add(entry=art(session, protocol=protocol), actor=therapist)
    assert entry.patient_movement == "Patient actively dorsiflexes the ankle."
    with pytest.raises(ValidationError) as caught:
        entry_add(entry=art(session, structure="soleus", protocol=protocol), actor=therapist)
    assert "protocol" in caught.value.message_dict


def test_massage_entry_keeps_its_trigger_points_and_each_change_is_audited(session, therapist):
    points = TriggerPoint.objects.filter(code__in=["gastrocnemius_medial", "soleus_heel"])
    entry = entry_add(entry=massage(session), actor=therapist, trigger_points=points)
    entry.minutes = 25
    entry_save(entry=entry, actor=therapist)
    entry_delete(entry=entry, actor=therapist)
    assert actions(session) == [AuditAction.CHANGE] * 3
    ops = [e.extra["op"] for e in AuditEvent.objects.filter(object_id=str(session.pk)).order_by("id")]
    assert ops == ["add", "change", "delete"]


def test_another_clinics_catalog_addition_cannot_be_used(session, therapist, other_clinic):
    from treatments.models import BodyRegion, Muscle

    theirs = Muscle.objects.create(
        clinic=other_clinic, code="theirs", name="Theirs", region=BodyRegion.objects.get(code="calf")
    )
    with pytest.raises(ValidationError) as caught:
        entry_add(entry=ArtEntry(session=session, structure=theirs, side="left", passes=2), actor=therapist)
    assert "structure" in caught.value.message_dict


# --- the needle rule and signing -----------------------------------------------------------


def test_needles_in_and_out_must_match_before_signing(session, therapist):
    entry = entry_add(entry=needle(session, point="GB34", side="both", inserted=2, removed=1), actor=therapist)
    with pytest.raises(ValidationError) as caught:
        note_sign(session=session, actor=therapist)
    assert "GB34: 2 in, 1 out" in caught.value.message_dict["needle_incident"][0]
    session.refresh_from_db()
    assert session.status == NoteStatus.DRAFT

    entry.needles_removed = 2
    entry_save(entry=entry, actor=therapist)
    assert note_sign(session=session, actor=therapist).is_signed


def test_a_recorded_needle_incident_allows_signing_with_a_mismatch(session, therapist):
    entry_add(entry=needle(session, inserted=1, removed=0), actor=therapist)
    note_update(session=session, actor=therapist, needle_incident="Needle not found; bed and floor checked; reported.")
    assert note_sign(session=session, actor=therapist).is_signed


def test_signing_records_who_when_and_a_hash_of_the_content(session, therapist, practitioner):
    entry_add(entry=art(session), actor=therapist)
    entry_add(entry=home_care(session), actor=therapist)
    signed = note_sign(session=session, actor=therapist, via="api")
    stored = TreatmentSession.objects.get(pk=session.pk)
    assert (stored.status, stored.signed_by) == (NoteStatus.SIGNED, therapist)
    assert stored.signed_at is not None
    assert len(stored.content_hash) == 64
    assert stored.content_hash == content_hash(stored) == signed.content_hash
    assert note_verify(stored)
    assert actions(session)[-1] == AuditAction.SIGN


def test_a_tampered_signed_note_no_longer_verifies(session, therapist):
    note_sign(session=session, actor=therapist)
    with connection.cursor() as cursor:  # what a superuser bypassing triggers could do
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("UPDATE treatment_sessions_treatmentsession SET plan = 'edited' WHERE id = %s", [session.pk])
        cursor.execute("SET LOCAL session_replication_role = origin")
    assert not note_verify(TreatmentSession.objects.get(pk=session.pk))


def test_an_incomplete_soap_note_cannot_be_signed(session, therapist):
    note_update(session=session, actor=therapist, assessment="  ")
    with pytest.raises(ValidationError) as caught:
        note_sign(session=session, actor=therapist)
    assert list(caught.value.message_dict) == ["assessment"]


def test_only_the_treating_practitioner_signs(session, owner, clinic):
    colleague = PractitionerFactory(clinic=clinic)
    with pytest.raises(ValidationError, match="treating practitioner"):
        note_sign(session=session, actor=owner)
    with pytest.raises(ValidationError, match="treating practitioner"):
        note_sign(session=session, actor=colleague.user)
    session.refresh_from_db()
    assert not session.is_signed


def test_a_flag_raised_after_the_entry_was_written_stops_signing(session, therapist):
    from tests.factories import PatientFlagFactory

    entry_add(entry=massage(session, side="left"), actor=therapist)
    PatientFlagFactory(clinic=session.clinic, patient=session.patient, rule_code="dvt_suspected", severity="urgent",
                       region="leg", side="left")  # fmt: skip
    with pytest.raises(ValidationError) as caught:
        note_sign(session=session, actor=therapist)
    assert "deep vein thrombosis" in caught.value.message_dict["entries"][0]


def test_a_signed_note_reports_its_follow_up(session, therapist):
    note_update(session=session, actor=therapist, rebook_within_days=7, course_sessions=4)
    signed = note_sign(session=session, actor=therapist)
    followup = note_followup(session=signed)
    assert (followup.session_id, followup.rebook_within_days, followup.course_sessions) == (session.pk, 7, 4)
    assert followup.rebook_by - signed.signed_at == dt.timedelta(days=7)


def test_a_draft_or_a_note_without_follow_up_recommends_nothing(session, therapist):
    assert note_followup(session=session) is None
    assert note_followup(session=note_sign(session=session, actor=therapist)) is None


# --- the lock -------------------------------------------------------------------------------


@pytest.fixture
def signed(session, therapist):
    entry_add(entry=art(session), actor=therapist)
    entry_add(entry=massage(session), actor=therapist, trigger_points=TriggerPoint.objects.filter(code="soleus_heel"))
    entry_add(entry=needle(session), actor=therapist)
    return note_sign(session=session, actor=therapist)


def test_services_refuse_every_change_to_a_signed_note(signed, therapist):
    before = content_hash(TreatmentSession.objects.get(pk=signed.pk))
    with pytest.raises(NoteLockedError):
        note_update(session=signed, actor=therapist, plan="changed")
    with pytest.raises(NoteLockedError):
        entry_add(entry=home_care(signed), actor=therapist)
    existing = signed.art_entries.get()
    existing.passes = 9
    with pytest.raises(NoteLockedError):
        entry_save(entry=existing, actor=therapist)
    with pytest.raises(NoteLockedError):
        entry_delete(entry=signed.acupuncture_entries.get(), actor=therapist)
    with pytest.raises(NoteLockedError):
        note_sign(session=signed, actor=therapist)
    stored = TreatmentSession.objects.get(pk=signed.pk)
    assert content_hash(stored) == before == stored.content_hash


def refused(operation) -> bool:
    try:
        with transaction.atomic():
            operation()
    except DatabaseError as error:
        return "locked" in str(error) or "append-only" in str(error)
    return False


def test_the_database_refuses_changes_to_a_signed_note_and_its_entries(signed):
    sessions = TreatmentSession.objects.filter(pk=signed.pk)
    massage_entry = signed.massage_entries.get()
    assert refused(lambda: sessions.update(plan="edited behind the app's back"))
    assert refused(lambda: sessions.update(status=NoteStatus.DRAFT, signed_at=None, signed_by=None, content_hash=""))
    assert refused(lambda: sessions.delete())
    assert refused(lambda: ArtEntry.objects.filter(session=signed).update(passes=9))
    assert refused(lambda: AcupunctureEntry.objects.filter(session=signed).delete())
    assert refused(lambda: MassageEntry.objects.filter(session=signed).update(pressure=5))
    assert refused(lambda: ArtEntry.objects.bulk_create([art(signed)]))
    assert refused(lambda: massage_entry.trigger_points.clear())
    assert refused(lambda: massage_entry.trigger_points.add(TriggerPoint.objects.get(code="gastrocnemius_medial")))
    stored = TreatmentSession.objects.get(pk=signed.pk)
    assert note_verify(stored)


def test_the_database_still_lets_drafts_change(session):
    TreatmentSession.objects.filter(pk=session.pk).update(plan="drafts are editable")
    session.refresh_from_db()
    assert session.plan == "drafts are editable"


def test_the_database_refuses_a_signed_state_without_who_when_and_hash(session):
    with pytest.raises(DatabaseError), transaction.atomic():
        TreatmentSession.objects.filter(pk=session.pk).update(status=NoteStatus.SIGNED)


# --- addenda --------------------------------------------------------------------------------


def test_addenda_are_appended_to_a_signed_note_with_their_author(signed, therapist, owner):
    first = note_addendum_add(session=signed, text="Patient called: calf soreness settled.", actor=therapist)
    second = note_addendum_add(session=signed, text="Correction: the left calf, not the right.", actor=owner)
    assert [a.pk for a in signed.addenda.all()] == [first.pk, second.pk]
    assert (second.author, second.clinic_id) == (owner, signed.clinic_id)
    assert actions(signed)[-2:] == [AuditAction.ADDENDUM, AuditAction.ADDENDUM]
    assert note_verify(TreatmentSession.objects.get(pk=signed.pk))


def test_an_addendum_needs_text_and_a_signed_note(session, therapist):
    with pytest.raises(ValidationError) as caught:
        note_addendum_add(session=session, text="Too early", actor=therapist)
    assert "text" in caught.value.message_dict
    note_sign(session=session, actor=therapist)
    with pytest.raises(ValidationError) as caught:
        note_addendum_add(session=session, text="   ", actor=therapist)
    assert "text" in caught.value.message_dict
    assert not Addendum.objects.exists()


def test_the_database_refuses_to_edit_or_delete_an_addendum(signed, therapist):
    addendum = note_addendum_add(session=signed, text="Follow-up call done.", actor=therapist)
    assert refused(lambda: Addendum.objects.filter(pk=addendum.pk).update(text="rewritten"))
    assert refused(lambda: Addendum.objects.filter(pk=addendum.pk).delete())


def test_draft_sessions_of_other_patients_are_unaffected_by_a_signature(signed, clinic, practitioner):
    other = TreatmentSessionFactory(clinic=clinic, practitioner=practitioner)
    assert TreatmentSession.objects.filter(pk=other.pk).update(plan="still editable") == 1


@pytest.mark.slow  # two demo seeds
def test_the_demo_seed_writes_signed_notes_once():
    from io import StringIO

    from django.core.management import call_command

    call_command("seed_demo", stdout=StringIO())
    notes = TreatmentSession.objects.filter(clinic__slug="demo")
    assert notes.count() == 11
    assert set(notes.values_list("status", flat=True)) == {NoteStatus.SIGNED}
    assert all(note_verify(note) for note in notes)
    assert MassageEntry.objects.filter(session__in=notes, trigger_points__code="vastus_medialis").count() == 3
    call_command("seed_demo", stdout=StringIO())
    assert notes.count() == 11


def test_a_warning_that_appeared_after_the_override_must_be_acknowledged_before_signing(session, therapist):
    from tests.factories import PatientFlagFactory

    PatientFlagFactory(clinic=session.clinic, patient=session.patient, rule_code="anticoagulant_or_bleeding")
    entry = needle(session, point="SP6", override_reason="INR in range; fine needles, light technique.")
    entry = entry_add(entry=entry, actor=therapist)
    assert entry.overridden_rules == ["anticoagulant_or_bleeding"]
    PatientFlagFactory(clinic=session.clinic, patient=session.patient, rule_code="pregnancy")
    with pytest.raises(ValidationError) as caught:
        note_sign(session=session, actor=therapist)
    assert "Pregnancy" in caught.value.message_dict["entries"][0]
    entry.override_reason += " Pregnancy noted: SP6 agreed with the patient's midwife."
    assert entry_save(entry=entry, actor=therapist).overridden_rules == ["anticoagulant_or_bleeding", "pregnancy"]
    assert note_sign(session=session, actor=therapist).is_signed
