"""The services write their outbox messages themselves, in the transaction of the change:
booking, moving, status changes and cancelling an appointment; waitlist offers; intake links
and nudges; the re-booking nudge of a signed note. A change that rolls back leaves no message."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction

from clinic.messaging.outbox import message_still_applies
from clinic.models import Message, MessageKind, MessageStatus
from intake.models import IntakeLink
from intake.services import intake_link_create, intake_link_resend, intake_link_revoke, intake_submit
from sessions.models import CancelledBy, OfferStatus, WaitlistOffer
from sessions.services import (
    appointment_book,
    appointment_cancel,
    appointment_check_in,
    appointment_complete,
    appointment_confirm,
    appointment_no_show,
    appointment_reschedule,
    note_sign,
    note_update,
    waitlist_offer_decline,
    waitlist_offer_link,
)
from tests.factories import (
    PatientFactory,
    TreatmentSessionFactory,
    WaitlistEntryFactory,
    clean_intake_answers,
    default_questionnaire,
)
from tests.sessions.conftest import local

pytestmark = pytest.mark.django_db


def rolled_back(change):
    """Run `change` in a transaction that is then rolled back, as when a later step fails."""
    with transaction.atomic():
        change()
        transaction.set_rollback(True)


def book(desk, start=None, patient=None):
    return appointment_book(
        clinic=desk.clinic,
        patient=patient or desk.patient,
        practitioner=desk.practitioner,
        service=desk.massage,
        start=start or local(2027, 3, 4, 10),
    )


def messages_about(obj, **filters):
    return Message.objects.filter(about_id=obj.pk, about_type__model=obj._meta.model_name, **filters)


def scheduled_kinds(obj) -> list[str]:
    return sorted(messages_about(obj, status=MessageStatus.SCHEDULED).values_list("kind", flat=True))


# --- appointments -------------------------------------------------------------------------


def test_booking_writes_the_confirmation_and_the_reminders(desk):
    appointment = book(desk)
    assert scheduled_kinds(appointment) == [
        MessageKind.APPOINTMENT_CONFIRMATION,
        MessageKind.APPOINTMENT_REMINDER,
        MessageKind.APPOINTMENT_REMINDER,
    ]
    assert {m.context["start"] for m in messages_about(appointment)} == {"2027-03-04T15:00Z"}


def test_a_booking_that_rolls_back_leaves_no_message(desk):
    rolled_back(lambda: book(desk))
    assert not Message.objects.exists()


def test_rescheduling_moves_the_reminders_to_the_new_time(desk):
    appointment = book(desk)
    appointment_reschedule(appointment=appointment, start=local(2027, 3, 5, 11))
    scheduled = messages_about(appointment, status=MessageStatus.SCHEDULED)
    assert {m.context["start"] for m in scheduled} == {"2027-03-05T16:00Z"}
    assert sorted(m.kind for m in scheduled) == scheduled_kinds(appointment)
    assert len(scheduled) == 3
    old = messages_about(appointment, status=MessageStatus.CANCELLED)
    assert {(m.context["start"], m.reason) for m in old} == {("2027-03-04T15:00Z", "appointment moved")}


def test_a_clinic_cancellation_cancels_the_reminders_and_tells_the_patient(desk, receptionist):
    appointment = book(desk)
    appointment_cancel(appointment=appointment, by=receptionist, party=CancelledBy.CLINIC)
    assert scheduled_kinds(appointment) == [MessageKind.APPOINTMENT_CANCELLED]
    assert set(messages_about(appointment, kind=MessageKind.APPOINTMENT_REMINDER).values_list("status", flat=True)) == {
        MessageStatus.CANCELLED
    }


def test_a_patient_cancellation_cancels_the_reminders_without_a_notice(desk):
    appointment = book(desk)
    appointment_cancel(appointment=appointment, party=CancelledBy.PATIENT)
    assert scheduled_kinds(appointment) == []
    assert not messages_about(appointment, kind=MessageKind.APPOINTMENT_CANCELLED).exists()


def test_a_cancellation_that_rolls_back_keeps_the_reminders(desk):
    appointment = book(desk)
    rolled_back(lambda: appointment_cancel(appointment=appointment))
    assert len(scheduled_kinds(appointment)) == 3
    assert not messages_about(appointment, kind=MessageKind.APPOINTMENT_CANCELLED).exists()


def test_confirming_keeps_the_reminders(desk):
    appointment = book(desk)
    appointment_confirm(appointment=appointment)
    assert len(scheduled_kinds(appointment)) == 3


def test_checking_in_and_completing_cancel_what_is_still_scheduled(desk, time_machine):
    appointment = book(desk)
    time_machine.move_to(local(2027, 3, 4, 9, 55), tick=True)
    appointment_check_in(appointment=appointment)
    assert scheduled_kinds(appointment) == []
    assert "appointment arrived" in set(messages_about(appointment).values_list("reason", flat=True))
    appointment_complete(appointment=appointment)
    assert scheduled_kinds(appointment) == []


def test_a_no_show_cancels_what_is_still_scheduled(desk, time_machine):
    appointment = book(desk)
    time_machine.move_to(local(2027, 3, 4, 10, 30), tick=True)
    appointment_no_show(appointment=appointment)
    assert scheduled_kinds(appointment) == []


# --- waitlist ------------------------------------------------------------------------------


def waiting(desk):
    return WaitlistEntryFactory(
        clinic=desk.clinic,
        patient=PatientFactory(clinic=desk.clinic),
        service=desk.massage,
        window_start=local(2027, 3, 1, 0),
        window_end=local(2027, 3, 10, 0),
    )


def test_a_freed_slot_offer_writes_its_message_with_the_accept_link(desk):
    entry = waiting(desk)
    appointment_cancel(appointment=book(desk))
    offer = WaitlistOffer.objects.get(entry=entry)
    [message] = messages_about(offer)
    assert (message.kind, message.patient_id, message.status) == (
        MessageKind.WAITLIST_OFFER,
        entry.patient_id,
        MessageStatus.SCHEDULED,
    )
    assert message.context["link"] == waitlist_offer_link(offer)
    assert message.expires_at == offer.expires_at
    assert message_still_applies(message) == ""


def test_an_offer_rolled_back_with_its_cancellation_leaves_no_message(desk):
    waiting(desk)
    appointment = book(desk)
    rolled_back(lambda: appointment_cancel(appointment=appointment))
    assert not WaitlistOffer.objects.exists()
    assert not Message.objects.filter(kind=MessageKind.WAITLIST_OFFER).exists()


def test_a_declined_offer_is_no_longer_sent(desk):
    waiting(desk)
    appointment_cancel(appointment=book(desk))
    offer = waitlist_offer_decline(offer=WaitlistOffer.objects.get())
    assert offer.status == OfferStatus.DECLINED
    assert message_still_applies(messages_about(offer).get()) == "offer declined"


def test_an_expired_offer_is_no_longer_sent(desk, time_machine):
    waiting(desk)
    appointment_cancel(appointment=book(desk))
    offer = WaitlistOffer.objects.get()
    time_machine.move_to(offer.expires_at + dt.timedelta(minutes=1), tick=True)
    assert message_still_applies(messages_about(offer).get()) == "offer expired"


# --- intake ----------------------------------------------------------------------------------


@pytest.fixture
def questionnaire(db):
    return default_questionnaire()


def test_sending_an_intake_link_writes_an_intake_link_message(desk, questionnaire):
    link = intake_link_create(patient=desk.patient, questionnaire=questionnaire, send=True)
    [message] = messages_about(link)
    assert (message.kind, message.occurrence, message.immediate) == (MessageKind.INTAKE_LINK, "1", True)
    assert message.context["link"] == link.url
    assert message.expires_at == link.expires_at
    assert link.send_count == 1


def test_a_link_not_sent_writes_no_message(desk, questionnaire):
    link = intake_link_create(patient=desk.patient, questionnaire=questionnaire)
    assert not messages_about(link).exists()


def test_resending_writes_the_next_occurrence(desk, questionnaire):
    link = intake_link_create(patient=desk.patient, questionnaire=questionnaire, send=True)
    link = intake_link_resend(link=link)
    assert sorted(messages_about(link).values_list("occurrence", flat=True)) == ["1", "2"]
    assert link.send_count == 2


def test_a_link_that_rolls_back_leaves_no_message(desk, questionnaire):
    rolled_back(lambda: intake_link_create(patient=desk.patient, questionnaire=questionnaire, send=True))
    assert not IntakeLink.objects.exists()
    assert not Message.objects.exists()


def test_a_link_for_an_appointment_schedules_the_nudge_before_the_visit(desk, questionnaire):
    appointment = book(desk)
    link = intake_link_create(patient=desk.patient, questionnaire=questionnaire, appointment=appointment)
    [nudge] = messages_about(link, kind=MessageKind.INTAKE_NUDGE)
    assert nudge.status == MessageStatus.SCHEDULED
    assert nudge.context["appointment_id"] == appointment.pk
    assert nudge.due_at == appointment.start - dt.timedelta(hours=24)
    assert message_still_applies(nudge) == ""


def test_rescheduling_the_visit_moves_the_nudge(desk, questionnaire):
    appointment = book(desk)
    link = intake_link_create(patient=desk.patient, questionnaire=questionnaire, appointment=appointment)
    moved = appointment_reschedule(appointment=appointment, start=local(2027, 3, 5, 11))
    scheduled = messages_about(link, kind=MessageKind.INTAKE_NUDGE, status=MessageStatus.SCHEDULED)
    assert [m.due_at for m in scheduled] == [moved.start - dt.timedelta(hours=24)]
    old = messages_about(link, kind=MessageKind.INTAKE_NUDGE, status=MessageStatus.CANCELLED).get()
    assert old.reason == "appointment moved"


def test_submitting_the_intake_cancels_the_nudge(desk, questionnaire):
    appointment = book(desk)
    link = intake_link_create(patient=desk.patient, questionnaire=questionnaire, appointment=appointment)
    intake_submit(link=link, answers=clean_intake_answers())
    nudge = messages_about(link, kind=MessageKind.INTAKE_NUDGE).get()
    assert (nudge.status, nudge.reason) == (MessageStatus.CANCELLED, "intake submitted")
    assert message_still_applies(nudge) == "intake already submitted"


def test_a_submission_that_rolls_back_keeps_the_nudge(desk, questionnaire):
    link = intake_link_create(patient=desk.patient, questionnaire=questionnaire, appointment=book(desk))
    rolled_back(lambda: intake_submit(link=link, answers=clean_intake_answers()))
    assert messages_about(link, kind=MessageKind.INTAKE_NUDGE).get().status == MessageStatus.SCHEDULED


def test_revoking_the_link_cancels_the_nudge(desk, questionnaire):
    link = intake_link_create(patient=desk.patient, questionnaire=questionnaire, appointment=book(desk))
    intake_link_revoke(link=link)
    nudge = messages_about(link, kind=MessageKind.INTAKE_NUDGE).get()
    assert (nudge.status, nudge.reason) == (MessageStatus.CANCELLED, "intake link revoked")


# --- follow-up -------------------------------------------------------------------------------


@pytest.fixture
def note(desk):
    return TreatmentSessionFactory(clinic=desk.clinic, practitioner=desk.practitioner, patient=desk.patient)


def test_signing_a_note_that_recommends_rebooking_schedules_the_nudge(note, therapist):
    note_update(session=note, actor=therapist, rebook_within_days=7)
    signed = note_sign(session=note, actor=therapist)
    nudge = messages_about(signed).get(occurrence="1")
    assert (nudge.kind, nudge.status, nudge.patient_id) == (
        MessageKind.FOLLOWUP_NUDGE,
        MessageStatus.SCHEDULED,
        signed.patient_id,
    )
    assert nudge.due_at >= signed.signed_at + dt.timedelta(days=7)
    assert nudge.context["since"] == signed.signed_at.isoformat()


def test_signing_a_note_without_a_rebooking_recommendation_schedules_nothing(note, therapist):
    signed = note_sign(session=note, actor=therapist)
    assert not messages_about(signed).exists()


def test_a_signing_that_rolls_back_leaves_no_nudge(note, therapist):
    note_update(session=note, actor=therapist, rebook_within_days=7)
    rolled_back(lambda: note_sign(session=note, actor=therapist))
    assert not Message.objects.filter(kind=MessageKind.FOLLOWUP_NUDGE).exists()


def test_the_nudge_stops_applying_once_the_patient_rebooks(desk, note, therapist):
    note_update(session=note, actor=therapist, rebook_within_days=7)
    signed = note_sign(session=note, actor=therapist)
    nudge = messages_about(signed).get(occurrence="1")
    assert message_still_applies(nudge) == ""
    book(desk, start=local(2027, 3, 8, 10))
    assert message_still_applies(nudge) == "patient has re-booked"
