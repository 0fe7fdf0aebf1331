"""One re-booking ladder per patient: a newer note's nudges replace the older note's, booking
cancels them at once, parallel signings still leave one ladder, the database refuses a second,
and the migration collapses the duplicates written before."""

from __future__ import annotations

import importlib
import threading
import time

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, connection, transaction

from clinic.models import Message, MessageKind, MessageStatus
from sessions.messages import followup_nudges_schedule
from sessions.models import TreatmentSession
from sessions.services import appointment_book, note_sign, note_update
from tests.factories import (
    MessageFactory,
    PatientFactory,
    TreatmentSessionFactory,
)
from tests.sessions.conftest import local

collapse_migration = importlib.import_module("clinic.migrations.0012_message_one_followup_ladder")


def pending_nudges(patient):
    return Message.objects.filter(patient=patient, kind=MessageKind.FOLLOWUP_NUDGE, status=MessageStatus.SCHEDULED)


def pending_ladders(patient) -> set[int]:
    return set(pending_nudges(patient).values_list("about_id", flat=True))


def note_recommending_rebooking(patient, practitioner, therapist) -> TreatmentSession:
    note = TreatmentSessionFactory(clinic=patient.clinic, practitioner=practitioner, patient=patient)
    return note_update(session=note, actor=therapist, rebook_within_days=7)


@pytest.mark.django_db
def test_two_notes_signed_for_one_patient_leave_exactly_one_pending_ladder(desk, therapist):
    older = note_sign(session=note_recommending_rebooking(desk.patient, desk.practitioner, therapist), actor=therapist)
    newer = note_sign(session=note_recommending_rebooking(desk.patient, desk.practitioner, therapist), actor=therapist)
    assert pending_ladders(desk.patient) == {newer.pk}
    assert sorted(pending_nudges(desk.patient).values_list("occurrence", flat=True)) == ["1", "2"]
    superseded = Message.objects.filter(about_id=older.pk, kind=MessageKind.FOLLOWUP_NUDGE)
    assert {(m.status, m.reason) for m in superseded} == {(MessageStatus.CANCELLED, "superseded by a newer note")}


@pytest.mark.django_db
def test_scheduling_twice_or_again_for_the_older_note_keeps_the_newer_ladder(desk, therapist):
    older = note_sign(session=note_recommending_rebooking(desk.patient, desk.practitioner, therapist), actor=therapist)
    newer = note_sign(session=note_recommending_rebooking(desk.patient, desk.practitioner, therapist), actor=therapist)
    before = set(Message.objects.values_list("pk", "status", "due_at"))
    for note in (newer, newer, older):
        followup_nudges_schedule(
            patient=desk.patient, about=note, signed_at=note.signed_at, rebook_within_days=note.rebook_within_days
        )
    assert set(Message.objects.values_list("pk", "status", "due_at")) == before
    assert pending_ladders(desk.patient) == {newer.pk}


@pytest.mark.django_db
def test_booking_an_appointment_cancels_the_pending_nudges_at_once(desk, therapist):
    signed = note_sign(session=note_recommending_rebooking(desk.patient, desk.practitioner, therapist), actor=therapist)
    assert pending_ladders(desk.patient) == {signed.pk}
    appointment_book(
        clinic=desk.clinic,
        patient=desk.patient,
        practitioner=desk.practitioner,
        service=desk.massage,
        start=local(2027, 3, 8, 10),
    )
    nudges = Message.objects.filter(patient=desk.patient, kind=MessageKind.FOLLOWUP_NUDGE)
    assert {(m.occurrence, m.status, m.reason) for m in nudges} == {
        ("1", MessageStatus.CANCELLED, "patient has re-booked"),
        ("2", MessageStatus.CANCELLED, "patient has re-booked"),
    }


@pytest.mark.django_db
def test_booking_another_patient_leaves_the_nudges_alone(desk, therapist):
    signed = note_sign(session=note_recommending_rebooking(desk.patient, desk.practitioner, therapist), actor=therapist)
    appointment_book(
        clinic=desk.clinic,
        patient=PatientFactory(clinic=desk.clinic),
        practitioner=desk.practitioner,
        service=desk.massage,
        start=local(2027, 3, 8, 10),
    )
    assert pending_ladders(desk.patient) == {signed.pk}


def _ladder_row(patient, note, occurrence: str, since: str, **fields) -> Message:
    return MessageFactory(
        appointment=None,
        clinic=patient.clinic,
        patient=patient,
        kind=MessageKind.FOLLOWUP_NUDGE,
        about_type=ContentType.objects.get_for_model(TreatmentSession),
        about_id=note.pk,
        occurrence=occurrence,
        context={"link": "", "since": since},
        expires_at=None,
        **fields,
    )


@pytest.mark.django_db
def test_the_database_refuses_a_second_pending_ladder_but_allows_both_rungs_of_one(clinic, practitioner):
    patient = PatientFactory(clinic=clinic)
    first, second = TreatmentSessionFactory.create_batch(2, clinic=clinic, patient=patient, practitioner=practitioner)
    _ladder_row(patient, first, "1", "2027-03-01T13:00:00+00:00")
    _ladder_row(patient, first, "2", "2027-03-01T13:00:00+00:00")
    _ladder_row(patient, second, "1", "2027-03-02T13:00:00+00:00", status=MessageStatus.CANCELLED)
    with pytest.raises(IntegrityError), transaction.atomic():
        _ladder_row(patient, second, "2", "2027-03-02T13:00:00+00:00")


@pytest.mark.django_db
def test_the_migration_collapses_duplicate_ladders_to_the_newest_note(clinic, practitioner):
    constraint = next(c for c in Message._meta.constraints if c.name == "message_one_followup_ladder")
    with connection.schema_editor() as editor:
        editor.remove_constraint(Message, constraint)
    noah, maya, lone = PatientFactory.create_batch(3, clinic=clinic)
    noah_notes = TreatmentSessionFactory.create_batch(3, clinic=clinic, patient=noah, practitioner=practitioner)
    for day, note in zip((3, 5, 4), noah_notes, strict=True):
        for rung in ("1", "2"):
            _ladder_row(noah, note, rung, f"2027-03-0{day}T13:00:00+00:00")
    maya_notes = TreatmentSessionFactory.create_batch(2, clinic=clinic, patient=maya, practitioner=practitioner)
    _ladder_row(maya, maya_notes[0], "1", "2027-03-01T13:00:00+00:00")
    _ladder_row(maya, maya_notes[1], "1", "2027-03-02T13:00:00+00:00", status=MessageStatus.SENT)
    lone_note = TreatmentSessionFactory(clinic=clinic, patient=lone, practitioner=practitioner)
    _ladder_row(lone, lone_note, "1", "2027-03-01T13:00:00+00:00")

    assert collapse_migration.followup_ladders_collapse(Message) == 4
    assert pending_ladders(noah) == {noah_notes[1].pk}  # signed on the 5th, the newest
    assert pending_nudges(noah).count() == 2
    assert set(
        Message.objects.filter(patient=noah, status=MessageStatus.CANCELLED).values_list("reason", flat=True)
    ) == {"superseded by a newer note"}
    assert pending_ladders(maya) == {maya_notes[0].pk}  # the newer one was already sent
    assert pending_ladders(lone) == {lone_note.pk}
    assert collapse_migration.followup_ladders_collapse(Message) == 0
    with connection.cursor() as cursor:  # the rows written above have deferred foreign-key checks
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    with connection.schema_editor() as editor:
        editor.add_constraint(Message, constraint)


def _sign_in_thread(note, actor, errors: list, hold: threading.Event | None = None, entered=None) -> None:
    try:
        with transaction.atomic():
            note_sign(session=note, actor=actor)
            if hold is not None:
                entered.set()
                hold.wait(timeout=30)
    except Exception as exc:  # reported by the test
        errors.append(exc)
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_two_notes_signed_in_parallel_still_leave_one_pending_ladder(clinic, practitioner, therapist):
    patient = PatientFactory(clinic=clinic)
    first = note_recommending_rebooking(patient, practitioner, therapist)
    second = note_recommending_rebooking(patient, practitioner, therapist)
    errors: list[Exception] = []
    entered, hold = threading.Event(), threading.Event()
    # The first signing holds its transaction open after scheduling; the second runs meanwhile
    # on its own connection and must wait for it rather than write a ladder of its own.
    one = threading.Thread(target=_sign_in_thread, args=(first, therapist, errors, hold, entered))
    one.start()
    try:
        assert entered.wait(timeout=30)
        two = threading.Thread(target=_sign_in_thread, args=(second, therapist, errors))
        two.start()
        time.sleep(0.5)
    finally:
        hold.set()
        one.join(timeout=30)
    two.join(timeout=30)
    assert errors == []
    assert TreatmentSession.objects.filter(pk__in=[first.pk, second.pk], signed_at__isnull=False).count() == 2
    assert pending_ladders(patient) == {second.pk}
    assert pending_nudges(patient).count() == 2


@pytest.mark.django_db
def test_a_rung_that_fails_while_a_newer_ladder_was_scheduled_is_cancelled_not_retried(desk, practitioner, therapist):
    """A send that fails transiently would go back to scheduled beside the newer note's ladder;
    the outbox allows one ladder, so the old rung is recorded as superseded instead of raising."""
    from clinic.messaging.sending import _record_failure, messages_claim_due

    old_note = note_recommending_rebooking(desk.patient, practitioner, therapist)
    note_sign(session=old_note, actor=therapist)
    old_rung = pending_nudges(desk.patient).get(occurrence="1")
    Message.objects.filter(pk=old_rung.pk).update(due_at=old_rung.created_at)
    token, ids = messages_claim_due(limit=10)
    assert old_rung.pk in ids
    new_note = note_recommending_rebooking(desk.patient, practitioner, therapist)
    note_sign(session=new_note, actor=therapist)  # schedules the newer ladder while the old rung is sending
    old_rung.refresh_from_db()
    assert _record_failure(old_rung, str(token), error="timed out", permanent=False) == "cancelled"
    old_rung.refresh_from_db()
    assert (old_rung.status, old_rung.reason) == (MessageStatus.CANCELLED, "superseded while being sent")
    assert pending_ladders(desk.patient) == {new_note.pk}
