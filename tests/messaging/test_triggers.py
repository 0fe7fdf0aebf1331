"""Triggers write the right rows: appointment confirmation, reminders, moves, cancellations,
quiet hours, DST, the unique key, and the intake, follow-up and waitlist services."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import IntegrityError, transaction
from django.utils import timezone

from clinic.messaging.outbox import messages_cancel_about, reminder_due
from clinic.models import Message, MessageKind, MessageStatus, ServiceReminderPolicy
from intake.messages import intake_link_message_create, intake_nudge_schedule
from sessions.messages import appointment_messages_sync, followup_nudges_schedule, waitlist_offer_message_create
from sessions.models import AppointmentStatus
from tests.factories import AppointmentFactory, PatientFactory, ReminderPolicyFactory, sms_patient

TORONTO = ZoneInfo("America/Toronto")
pytestmark = pytest.mark.django_db


def local(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=TORONTO)


def rows(appointment) -> dict[tuple[str, str, str], Message]:
    found = Message.objects.filter(about_id=appointment.pk, about_type__model="appointment")
    return {(m.kind, m.channel, m.status): m for m in found}


def open_rows(appointment):
    return Message.objects.filter(
        about_id=appointment.pk, about_type__model="appointment", status=MessageStatus.SCHEDULED
    ).order_by("due_at")


def move(appointment, start: dt.datetime, end: dt.datetime) -> None:
    # Field writes stand in for the booking service here; keep the row as valid as it would.
    appointment.start, appointment.end, appointment.blocked_until = start, end, end
    appointment.save()


def cancel(appointment) -> None:
    appointment.status, appointment.cancelled_at = AppointmentStatus.CANCELLED, timezone.now()
    appointment.save()


@pytest.fixture
def frozen():
    # Monday 4 May 2026, 10:00 in Toronto.
    with time_machine.travel(local(2026, 5, 4, 10, 0), tick=False) as traveller:
        yield traveller


def test_booking_schedules_a_confirmation_now_and_reminders_at_the_default_lead_times(clinic, frozen):
    appointment = AppointmentFactory(clinic=clinic, patient=sms_patient(clinic=clinic), start=local(2026, 5, 8, 14))
    appointment_messages_sync(appointment=appointment)
    scheduled = list(open_rows(appointment))
    assert [(m.kind, m.channel, m.due_at) for m in scheduled] == [
        (MessageKind.APPOINTMENT_CONFIRMATION, "sms", local(2026, 5, 4, 10)),
        (MessageKind.APPOINTMENT_REMINDER, "email", local(2026, 5, 6, 14)),
        (MessageKind.APPOINTMENT_REMINDER, "sms", local(2026, 5, 8, 12)),
    ]
    assert all(m.expires_at == appointment.start for m in scheduled)


def test_confirmation_due_now_wakes_the_sweeper_on_commit(clinic, frozen, django_capture_on_commit_callbacks):
    appointment = AppointmentFactory(clinic=clinic, start=local(2026, 5, 8, 14))
    with django_capture_on_commit_callbacks() as callbacks:
        appointment_messages_sync(appointment=appointment)
    assert [c.__name__ for c in callbacks] == ["_kick_sweeper"]


def test_sync_twice_writes_nothing_new(clinic, frozen):
    appointment = AppointmentFactory(clinic=clinic, start=local(2026, 5, 8, 14))
    first = appointment_messages_sync(appointment=appointment)
    second = appointment_messages_sync(appointment=appointment)
    assert [m.pk for m in first] == [m.pk for m in second]
    assert Message.objects.count() == 3


def test_the_unique_key_refuses_a_second_row_for_the_same_occurrence(clinic, frozen):
    appointment = AppointmentFactory(clinic=clinic, start=local(2026, 5, 8, 14))
    appointment_messages_sync(appointment=appointment)
    original = Message.objects.filter(kind=MessageKind.APPOINTMENT_REMINDER).first()
    original.pk = None
    with pytest.raises(IntegrityError), transaction.atomic():
        original.save()


def test_email_only_patient_gets_the_sms_reminder_by_email(clinic, frozen):
    patient = PatientFactory(clinic=clinic)  # email consent only
    appointment = AppointmentFactory(clinic=clinic, patient=patient, start=local(2026, 5, 8, 14))
    appointment_messages_sync(appointment=appointment)
    assert [(m.channel, m.occurrence.split("@")[0]) for m in open_rows(appointment)[1:]] == [
        ("email", "48h"),
        ("email", "2h"),
    ]


def test_patient_without_any_usable_channel_gets_skipped_rows_with_the_reason(clinic, frozen):
    patient = PatientFactory(clinic=clinic, email="", email_consent=False, mobile_phone="")
    appointment = AppointmentFactory(clinic=clinic, patient=patient, start=local(2026, 5, 8, 14))
    appointment_messages_sync(appointment=appointment)
    found = Message.objects.all()
    assert {m.status for m in found} == {MessageStatus.SKIPPED}
    assert {m.reason for m in found} == {"no email address", "no mobile phone number"}


def test_consent_given_later_revives_the_skipped_reminder_on_the_next_sync(clinic, frozen):
    patient = PatientFactory(clinic=clinic, email_consent=False, email_consent_at=None)
    appointment = AppointmentFactory(clinic=clinic, patient=patient, start=local(2026, 5, 8, 14))
    appointment_messages_sync(appointment=appointment)
    assert not open_rows(appointment).exists()
    patient.email_consent = True
    patient.save()
    appointment_messages_sync(appointment=appointment)
    assert open_rows(appointment).count() == 3


def test_reminders_whose_time_has_passed_at_booking_are_not_created(clinic, frozen):
    appointment = AppointmentFactory(clinic=clinic, start=local(2026, 5, 5, 11))  # 25 h ahead
    appointment_messages_sync(appointment=appointment)
    assert [m.occurrence.split("@")[0] for m in open_rows(appointment)] == ["2026-05-05T15:00Z", "2h"]


def test_rescheduling_moves_the_reminders_and_cancels_the_old_ones(clinic, frozen):
    appointment = AppointmentFactory(clinic=clinic, start=local(2026, 5, 8, 14))
    appointment_messages_sync(appointment=appointment)
    move(appointment, local(2026, 5, 12, 15), local(2026, 5, 12, 16))
    appointment_messages_sync(appointment=appointment)
    assert [(m.kind, m.due_at) for m in open_rows(appointment)] == [
        (MessageKind.APPOINTMENT_CONFIRMATION, local(2026, 5, 4, 10)),
        (MessageKind.APPOINTMENT_REMINDER, local(2026, 5, 10, 15)),
        (MessageKind.APPOINTMENT_REMINDER, local(2026, 5, 12, 13)),
    ]
    old = Message.objects.filter(status=MessageStatus.CANCELLED)
    assert old.count() == 3
    assert {m.reason for m in old} == {"appointment moved"}


def test_moving_back_to_the_original_time_revives_the_original_rows(clinic, frozen):
    appointment = AppointmentFactory(clinic=clinic, start=local(2026, 5, 8, 14))
    original = {m.pk for m in appointment_messages_sync(appointment=appointment)}
    move(appointment, local(2026, 5, 12, 15), local(2026, 5, 12, 16))
    appointment_messages_sync(appointment=appointment)
    move(appointment, local(2026, 5, 8, 14), local(2026, 5, 8, 15))
    appointment_messages_sync(appointment=appointment)
    assert {m.pk for m in open_rows(appointment)} == original
    assert Message.objects.count() == 6


def test_patient_cancelling_cancels_everything_and_sends_no_notice(clinic, frozen):
    appointment = AppointmentFactory(clinic=clinic, start=local(2026, 5, 8, 14))
    appointment_messages_sync(appointment=appointment)
    cancel(appointment)
    appointment_messages_sync(appointment=appointment)
    assert not open_rows(appointment).exists()
    assert set(Message.objects.values_list("reason", flat=True)) == {"appointment cancelled"}


def test_clinic_cancelling_also_schedules_a_cancellation_notice_now(clinic, frozen):
    appointment = AppointmentFactory(clinic=clinic, start=local(2026, 5, 8, 14))
    appointment_messages_sync(appointment=appointment)
    cancel(appointment)
    appointment_messages_sync(appointment=appointment, clinic_cancelled=True)
    appointment_messages_sync(appointment=appointment)  # a later plain sync keeps the notice
    assert [(m.kind, m.due_at) for m in open_rows(appointment)] == [
        (MessageKind.APPOINTMENT_CANCELLED, local(2026, 5, 4, 10))
    ]


@pytest.mark.parametrize("status", [AppointmentStatus.ARRIVED, AppointmentStatus.COMPLETED, AppointmentStatus.NO_SHOW])
def test_arrival_completion_or_no_show_cancel_what_is_still_scheduled(clinic, frozen, status):
    appointment = AppointmentFactory(clinic=clinic, start=local(2026, 5, 8, 14))
    appointment_messages_sync(appointment=appointment)
    appointment.status = status
    appointment.save()
    appointment_messages_sync(appointment=appointment)
    assert not open_rows(appointment).exists()


def test_clinic_lead_times_replace_the_defaults_and_a_service_override_replaces_both(clinic, frozen):
    ReminderPolicyFactory(clinic=clinic, lead_times=[{"hours": 72, "channel": "email"}])
    appointment = AppointmentFactory(clinic=clinic, start=local(2026, 5, 8, 14))
    appointment_messages_sync(appointment=appointment)
    assert [m.occurrence.split("@")[0] for m in open_rows(appointment)][1:] == ["72h"]
    ServiceReminderPolicy.objects.create(
        clinic=clinic, service=appointment.service, lead_times=[{"hours": 24, "channel": "email"}]
    )
    appointment_messages_sync(appointment=appointment)
    assert [m.occurrence.split("@")[0] for m in open_rows(appointment)][1:] == ["24h"]
    assert Message.objects.get(occurrence__startswith="72h").reason == "appointment moved"


def test_a_reminder_due_in_quiet_hours_waits_until_they_end(clinic, frozen):
    policy = ReminderPolicyFactory(clinic=clinic, lead_times=[{"hours": 2, "channel": "email"}])
    appointment = AppointmentFactory(clinic=clinic, start=local(2026, 5, 8, 23, 30))
    appointment_messages_sync(appointment=appointment)
    reminder = Message.objects.get(kind=MessageKind.APPOINTMENT_REMINDER)
    assert reminder.due_at == local(2026, 5, 8, 21, 0) - dt.timedelta(minutes=1)  # end would be too late
    policy.lead_times = [{"hours": 12, "channel": "email"}]
    policy.save()
    move(appointment, local(2026, 5, 9, 13), local(2026, 5, 9, 14))
    appointment_messages_sync(appointment=appointment)
    assert open_rows(appointment).last().due_at == local(2026, 5, 9, 8, 0)  # 01:00 waits until 08:00


def test_confirmations_go_out_in_quiet_hours_unless_the_clinic_says_otherwise(clinic):
    with time_machine.travel(local(2026, 5, 4, 22, 30), tick=False):
        appointment = AppointmentFactory(clinic=clinic, start=local(2026, 5, 8, 14))
        appointment_messages_sync(appointment=appointment)
        assert open_rows(appointment).first().due_at == local(2026, 5, 4, 22, 30)
        ReminderPolicyFactory(clinic=clinic, confirmations_immediate=False)
        other = AppointmentFactory(clinic=clinic, start=local(2026, 5, 9, 14))
        appointment_messages_sync(appointment=other)
        assert open_rows(other).first().due_at == local(2026, 5, 5, 8, 0)


def test_whole_day_lead_times_keep_the_wall_clock_across_the_spring_dst_change():
    # Clocks go forward in Toronto on Sunday 8 March 2026 at 02:00.
    start = local(2026, 3, 9, 10, 0)
    assert reminder_due(start, hours=48, tz=TORONTO) == local(2026, 3, 7, 10, 0)
    assert start - reminder_due(start, hours=48, tz=TORONTO) == dt.timedelta(hours=47)
    assert reminder_due(start, hours=2, tz=TORONTO) == local(2026, 3, 9, 8, 0)


def test_hour_lead_times_count_elapsed_hours_across_the_autumn_dst_change():
    # Clocks go back on Sunday 1 November 2026 at 02:00 (01:00-02:00 happens twice).
    start = local(2026, 11, 1, 3, 0)
    assert start - reminder_due(start, hours=2, tz=TORONTO) == dt.timedelta(hours=2)
    assert reminder_due(start, hours=2, tz=TORONTO).astimezone(TORONTO).hour == 1
    assert reminder_due(start, hours=24, tz=TORONTO) == local(2026, 10, 31, 3, 0)


def test_sync_across_dst_books_reminders_at_local_times(clinic):
    with time_machine.travel(local(2026, 3, 5, 12, 0), tick=False):
        appointment = AppointmentFactory(
            clinic=clinic, patient=sms_patient(clinic=clinic), start=local(2026, 3, 9, 10, 0)
        )
        appointment_messages_sync(appointment=appointment)
    reminders = open_rows(appointment).filter(kind=MessageKind.APPOINTMENT_REMINDER)
    assert [m.due_at.astimezone(TORONTO).strftime("%a %H:%M") for m in reminders] == ["Sat 10:00", "Mon 08:00"]


def test_intake_link_is_due_now_and_a_second_send_needs_a_new_occurrence(clinic, frozen):
    patient = PatientFactory(clinic=clinic)
    about = AppointmentFactory(clinic=clinic, patient=patient)  # stands in for the intake link object
    message = intake_link_message_create(patient=patient, about=about, url="https://x.test/i/abc")
    again = intake_link_message_create(patient=patient, about=about, url="https://x.test/i/abc")
    assert message.pk == again.pk
    assert message.due_at == local(2026, 5, 4, 10)
    assert message.immediate
    second = intake_link_message_create(patient=patient, about=about, url="https://x.test/i/abc", occurrence="2")
    assert second.pk != message.pk


def test_intake_nudge_is_due_a_day_before_and_stops_when_the_intake_is_submitted(clinic, frozen):
    patient = PatientFactory(clinic=clinic)
    appointment = AppointmentFactory(clinic=clinic, patient=patient, start=local(2026, 5, 8, 14))
    intake = AppointmentFactory(clinic=clinic, patient=patient)  # stands in for the intake link object
    [nudge] = intake_nudge_schedule(patient=patient, about=intake, appointment=appointment, url="https://x.test/i/1")
    assert nudge.due_at == local(2026, 5, 7, 14)
    assert nudge.expires_at == appointment.start
    assert messages_cancel_about(about=intake, kinds=[MessageKind.INTAKE_NUDGE], reason="intake submitted") == 1
    nudge.refresh_from_db()
    assert (nudge.status, nudge.reason) == (MessageStatus.CANCELLED, "intake submitted")


def test_intake_nudge_is_not_created_when_the_appointment_is_within_the_nudge_time(clinic, frozen):
    patient = PatientFactory(clinic=clinic)
    appointment = AppointmentFactory(clinic=clinic, patient=patient, start=local(2026, 5, 4, 16))
    assert intake_nudge_schedule(patient=patient, about=appointment, appointment=appointment, url="u") == []


def test_followup_nudges_are_due_n_days_after_signing_and_a_second_after_the_clinic_interval(clinic, frozen):
    patient = PatientFactory(clinic=clinic)
    note = AppointmentFactory(clinic=clinic, patient=patient)  # stands in for the signed note
    signed = local(2026, 5, 4, 10)
    nudges = followup_nudges_schedule(patient=patient, about=note, signed_at=signed, rebook_within_days=7)
    assert [m.due_at for m in nudges] == [local(2026, 5, 11, 10), local(2026, 5, 18, 10)]
    ReminderPolicyFactory(clinic=clinic, followup_second_nudge_days=None)
    nudges = followup_nudges_schedule(patient=patient, about=note, signed_at=signed, rebook_within_days=7)
    assert [m.occurrence for m in nudges] == ["1"]
    assert Message.objects.get(occurrence="2").status == MessageStatus.CANCELLED


def test_waitlist_offer_is_due_now_and_carries_its_expiry(clinic, frozen):
    patient = sms_patient(clinic=clinic)
    slot = AppointmentFactory(clinic=clinic)  # stands in for the waitlist offer object
    expires = local(2026, 5, 4, 12)
    message = waitlist_offer_message_create(patient=patient, about=slot, url="https://x.test/w/9", expires_at=expires)
    assert (message.channel, message.due_at, message.expires_at) == ("sms", local(2026, 5, 4, 10), expires)
    assert message.context["link"] == "https://x.test/w/9"
