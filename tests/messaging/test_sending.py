"""The sweeper and the sender, called directly: claims, re-checks, quiet hours, retries,
leases of dead workers, and the run-twice guarantee of the periodic job."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from clinic.messaging.outbox import message_resend, validity_check_register
from clinic.messaging.sending import (
    ResultNotRecordedError,
    message_send,
    messages_claim_due,
    messages_dispatch_due,
    messages_send,
)
from clinic.models import Message, MessageKind, MessageStatus
from clinic.tasks import dispatch_due_messages, send_message, send_messages
from patients.messages import patient_opt_out
from sessions.messages import appointment_messages_sync
from sessions.models import AppointmentStatus
from tests.factories import AppointmentFactory, MessageFactory, PatientFactory, ReminderPolicyFactory, sms_patient

TORONTO = ZoneInfo("America/Toronto")
pytestmark = pytest.mark.django_db


def local(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=TORONTO)


@pytest.fixture
def daytime():
    with time_machine.travel(local(2026, 5, 4, 10, 0), tick=False) as traveller:
        yield traveller


@pytest.fixture
def sms_files(settings, tmp_path):
    settings.SMS_BACKEND = "clinic.messaging.channels.FileSmsBackend"
    settings.SMS_FILE_PATH = str(tmp_path / "sms")
    return tmp_path / "sms"


def claim_one(message: Message) -> str:
    token, ids = messages_claim_due(limit=10)
    assert message.pk in ids
    return str(token)


def test_the_sweeper_claims_due_rows_only_and_queues_their_sends_on_commit(daytime, django_capture_on_commit_callbacks):
    due = MessageFactory.create_batch(3)
    later = MessageFactory(due_at=timezone.now() + dt.timedelta(minutes=5))
    with django_capture_on_commit_callbacks() as callbacks:
        assert messages_dispatch_due() == 3
    assert len(callbacks) == 1
    assert set(Message.objects.filter(status=MessageStatus.SENDING).values_list("id", flat=True)) == {m.pk for m in due}
    later.refresh_from_db()
    assert later.status == MessageStatus.SCHEDULED


def test_the_sweeper_run_twice_claims_nothing_the_second_time(daytime, django_capture_on_commit_callbacks):
    MessageFactory.create_batch(2)
    with django_capture_on_commit_callbacks() as first:
        assert dispatch_due_messages() == 2
    with django_capture_on_commit_callbacks() as second:
        assert dispatch_due_messages() == 0
    assert (len(first), len(second)) == (1, 0)


def test_a_backlog_drains_in_batches_with_a_cap_per_tick(daytime, settings):
    settings.MESSAGE_BATCH_SIZE, settings.MESSAGE_MAX_PER_TICK = 2, 5
    MessageFactory.create_batch(7, due_at=timezone.now() - dt.timedelta(hours=3))  # missed ticks
    assert messages_dispatch_due() == 5
    assert messages_dispatch_due() == 2
    assert messages_dispatch_due() == 0


def test_the_sender_sends_an_email_with_an_unsubscribe_link_and_records_it(daytime):
    message = MessageFactory()
    token = claim_one(message)
    assert send_message(message.pk, token) == "sent"
    message.refresh_from_db()
    assert (message.status, message.attempts) == (MessageStatus.SENT, 1)
    assert message.sent_at == timezone.now()
    [email] = mail.outbox
    assert email.to == [message.patient.email]
    assert email.extra_headers["Message-ID"] == message.provider_message_id
    assert email.extra_headers["List-Unsubscribe"].startswith("<http://127.0.0.1:8000/messages/unsubscribe/")
    assert "reminder of your appointment" in email.body
    assert message.body == email.body.strip() + "\n"


def test_a_second_delivery_of_the_same_task_sends_nothing(daytime):
    message = MessageFactory()
    token = claim_one(message)
    assert message_send(message_id=message.pk, claim_token=token) == "sent"
    assert message_send(message_id=message.pk, claim_token=token) == "stale"
    assert len(mail.outbox) == 1


def test_the_sender_sends_sms_through_the_configured_backend(daytime, sms_files):
    appointment = AppointmentFactory(patient=sms_patient(), start=timezone.now() + dt.timedelta(hours=3))
    message = MessageFactory(appointment=appointment, channel="sms")
    assert message_send(message_id=message.pk, claim_token=claim_one(message)) == "sent"
    [written] = list(sms_files.glob("*.json"))
    record = json.loads(written.read_text())
    assert record["to"] == str(appointment.patient.mobile_phone)
    assert record["key"] == f"msg-{message.pk}"
    assert "Reply STOP" in record["body"]
    message.refresh_from_db()
    assert message.provider_message_id == record["id"]


def test_a_reminder_of_a_cancelled_appointment_is_cancelled_not_sent(daytime):
    message = MessageFactory()
    token = claim_one(message)
    message.patient.appointments.update(status=AppointmentStatus.CANCELLED, cancelled_at=timezone.now())
    assert message_send(message_id=message.pk, claim_token=token) == "cancelled"
    message.refresh_from_db()
    assert (message.status, message.reason) == (MessageStatus.CANCELLED, "appointment cancelled")
    assert mail.outbox == []


def test_a_reminder_of_a_moved_appointment_is_cancelled_not_sent(daytime):
    message = MessageFactory()
    token = claim_one(message)
    later = timezone.now() + dt.timedelta(days=9)
    message.patient.appointments.update(
        start=later, end=later + dt.timedelta(hours=1), blocked_until=later + dt.timedelta(hours=1)
    )
    assert message_send(message_id=message.pk, claim_token=token) == "cancelled"
    assert Message.objects.get(pk=message.pk).reason == "appointment moved"


def test_withdrawn_consent_skips_the_message_with_the_reason(daytime):
    message = MessageFactory()
    token = claim_one(message)
    type(message.patient).objects.filter(pk=message.patient_id).update(email_consent=False)
    assert message_send(message_id=message.pk, claim_token=token) == "skipped"
    assert Message.objects.get(pk=message.pk).reason == "no email consent"


def test_a_message_past_its_cut_off_is_skipped(daytime):
    message = MessageFactory(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert message_send(message_id=message.pk, claim_token=claim_one(message)) == "skipped"
    assert Message.objects.get(pk=message.pk).reason == "past its cut-off time"


def test_a_message_claimed_inside_quiet_hours_waits_until_they_end():
    with time_machine.travel(local(2026, 5, 4, 22, 30), tick=False):
        appointment = AppointmentFactory(start=local(2026, 5, 6, 14))
        message = MessageFactory(appointment=appointment)  # e.g. delayed by an outage into the night
        assert message_send(message_id=message.pk, claim_token=claim_one(message)) == "deferred"
    message.refresh_from_db()
    assert (message.status, message.due_at, message.claim_token) == (
        MessageStatus.SCHEDULED,
        local(2026, 5, 5, 8, 0),
        None,
    )


def test_an_immediate_message_goes_out_in_quiet_hours(clinic):
    with time_machine.travel(local(2026, 5, 4, 22, 30), tick=False):
        appointment = AppointmentFactory(clinic=clinic, start=local(2026, 5, 6, 14))
        [confirmation, *_] = appointment_messages_sync(appointment=appointment)
        assert message_send(message_id=confirmation.pk, claim_token=claim_one(confirmation)) == "sent"
    assert "When:  Wednesday 6 May at 2:00 PM EDT" in mail.outbox[0].body


def test_smtp_down_retries_with_backoff_then_fails_visibly(daytime, settings):
    settings.EMAIL_BACKEND = "tests.messaging.backends.DownEmailBackend"
    settings.MESSAGE_MAX_ATTEMPTS = 2
    message = MessageFactory(expires_at=timezone.now() + dt.timedelta(days=3))
    assert message_send(message_id=message.pk, claim_token=claim_one(message)) == "retry"
    message.refresh_from_db()
    assert message.status == MessageStatus.SCHEDULED
    assert message.due_at == timezone.now() + dt.timedelta(seconds=60)
    assert "SMTPServerDisconnected" in message.last_error
    daytime.shift(dt.timedelta(minutes=2))
    assert message_send(message_id=message.pk, claim_token=claim_one(message)) == "failed"
    message.refresh_from_db()
    assert (message.status, message.attempts, message.reason) == (
        MessageStatus.FAILED,
        2,
        "gave up after 2 attempts",
    )


def test_a_refused_recipient_fails_at_once_and_the_rest_of_the_batch_still_goes(daytime, settings):
    settings.EMAIL_BACKEND = "tests.messaging.backends.RefusingEmailBackend"
    refused, fine = MessageFactory(), MessageFactory()
    token, ids = messages_claim_due(limit=10)
    assert message_send(message_id=refused.pk, claim_token=str(token)) == "failed"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert message_send(message_id=fine.pk, claim_token=str(token)) == "sent"
    refused.refresh_from_db()
    assert (refused.status, refused.reason) == (MessageStatus.FAILED, "provider refused it")
    assert "550" in refused.last_error


def test_a_claim_left_by_a_dead_worker_is_taken_again_after_the_lease(daytime, settings):
    message = MessageFactory()
    dead_token = claim_one(message)
    assert messages_claim_due(limit=10)[1] == []  # the lease still holds
    daytime.shift(dt.timedelta(seconds=settings.MESSAGE_CLAIM_LEASE_SECONDS + 1))
    new_token = claim_one(message)
    assert message_send(message_id=message.pk, claim_token=dead_token) == "stale"
    assert message_send(message_id=message.pk, claim_token=new_token) == "sent"
    assert len(mail.outbox) == 1


def test_a_row_whose_sender_keeps_dying_is_given_up(daytime, settings):
    settings.MESSAGE_MAX_ATTEMPTS = 2
    message = MessageFactory()
    claim_one(message)
    for _ in range(2):  # each lost claim counts as an attempt
        daytime.shift(dt.timedelta(seconds=settings.MESSAGE_CLAIM_LEASE_SECONDS + 1))
        claim_one(message)
    daytime.shift(dt.timedelta(seconds=settings.MESSAGE_CLAIM_LEASE_SECONDS + 1))
    assert messages_claim_due(limit=10)[1] == []
    message.refresh_from_db()
    assert (message.status, message.reason) == (MessageStatus.FAILED, "gave up: no result after the last attempt")


def test_a_clinic_template_that_fails_to_render_fails_the_message_visibly(daytime, clinic):
    from clinic.models import MessageTemplate

    MessageTemplate.objects.create(
        clinic=clinic, kind=MessageKind.APPOINTMENT_REMINDER, channel="email", body="{% include 'nope.txt' %}"
    )
    message = MessageFactory(appointment=AppointmentFactory(clinic=clinic))
    assert message_send(message_id=message.pk, claim_token=claim_one(message)) == "failed"
    message.refresh_from_db()
    assert (message.status, message.reason) == (MessageStatus.FAILED, "could not render the template")


def test_opt_out_cancels_scheduled_messages_on_that_channel_only(daytime):
    patient = sms_patient()
    appointment = AppointmentFactory(clinic=patient.clinic, patient=patient, start=local(2026, 5, 8, 14))
    appointment_messages_sync(appointment=appointment)
    patient_opt_out(patient=patient, channel="sms", source="staff")
    patient.refresh_from_db()
    assert not patient.sms_consent
    open_channels = Message.objects.filter(status=MessageStatus.SCHEDULED).values_list("channel", flat=True)
    assert sorted(open_channels) == ["email"]
    assert set(Message.objects.filter(channel="sms").values_list("reason", flat=True)) == {"patient opted out"}


def test_resend_puts_a_failed_message_back_in_the_queue(daytime):
    message = MessageFactory(status=MessageStatus.FAILED, attempts=5, due_at=timezone.now() - dt.timedelta(days=1))
    message_resend(message=message)
    assert (message.status, message.attempts, message.due_at) == (MessageStatus.SCHEDULED, 0, timezone.now())
    with pytest.raises(Exception, match="Only a failed or skipped"):
        message_resend(message=message)


def test_a_registered_validity_check_cancels_its_kind(daytime):
    patient = PatientFactory()
    about = AppointmentFactory(clinic=patient.clinic, patient=patient)
    from intake.messages import intake_link_message_create

    message = intake_link_message_create(patient=patient, about=about, url="https://x.test/i/1")

    def submitted(message, about):
        return "intake already submitted" if about.notes == "submitted" else ""

    validity_check_register(MessageKind.INTAKE_LINK, submitted)
    try:
        type(about).objects.filter(pk=about.pk).update(notes="submitted")
        assert message_send(message_id=message.pk, claim_token=claim_one(message)) == "cancelled"
    finally:
        from clinic.messaging.outbox import _VALIDITY_CHECKS

        _VALIDITY_CHECKS[MessageKind.INTAKE_LINK].remove(submitted)
    assert Message.objects.get(pk=message.pk).reason == "intake already submitted"


def test_followup_nudge_is_cancelled_when_the_patient_has_re_booked(daytime):
    from sessions.messages import followup_nudges_schedule

    patient = PatientFactory()
    note = AppointmentFactory(clinic=patient.clinic, patient=patient, start=local(2026, 4, 27, 10))
    signed = local(2026, 4, 27, 9)
    [first, _] = followup_nudges_schedule(patient=patient, about=note, signed_at=signed, rebook_within_days=7)
    AppointmentFactory(clinic=patient.clinic, patient=patient, start=local(2026, 5, 12, 10))
    assert message_send(message_id=first.pk, claim_token=claim_one(first)) == "cancelled"
    assert Message.objects.get(pk=first.pk).reason == "patient has re-booked"


def test_clinic_templates_replace_the_default_wording(daytime, clinic):
    from clinic.models import MessageTemplate

    MessageTemplate.objects.create(
        clinic=clinic,
        kind=MessageKind.APPOINTMENT_REMINDER,
        channel="email",
        subject="See you {{ appointment_date }}",
        body="Hi {{ patient_name }} & co, {{ appointment_time }} with {{ practitioner_name }}.",
    )
    ReminderPolicyFactory(clinic=clinic)
    appointment = AppointmentFactory(clinic=clinic, start=local(2026, 5, 5, 15, 30))
    message = MessageFactory(appointment=appointment)
    message_send(message_id=message.pk, claim_token=claim_one(message))
    assert mail.outbox[0].subject == "See you Tuesday 5 May"
    assert mail.outbox[0].body.startswith(f"Hi {appointment.patient.given_name} & co, 3:30 PM with ")


# --- chunks: one task delivers several claimed rows -------------------------------------


def test_the_sweeper_queues_one_send_task_per_chunk_covering_every_claimed_row_once(
    daytime, settings, django_capture_on_commit_callbacks, monkeypatch
):
    settings.MESSAGE_SEND_CHUNK_SIZE = 2
    due = MessageFactory.create_batch(5)
    queued = []
    monkeypatch.setattr(send_messages, "apply_async", lambda args, **options: queued.append(args))
    with django_capture_on_commit_callbacks(execute=True):
        assert messages_dispatch_due() == 5
    assert [len(ids) for ids, _ in queued] == [2, 2, 1]
    assert sorted(pk for ids, _ in queued for pk in ids) == sorted(m.pk for m in due)
    [token] = {token for _, token in queued}
    assert set(Message.objects.values_list("claim_token", flat=True)) == {uuid.UUID(token)}


def test_a_chunk_sends_each_message_once_and_run_again_sends_nothing(daytime):
    messages = MessageFactory.create_batch(3)
    token, ids = messages_claim_due(limit=10)
    assert send_messages(ids, str(token)) == {"sent": 3}
    assert sorted(email.to[0] for email in mail.outbox) == sorted(m.patient.email for m in messages)
    # The same task delivered again (e.g. redelivered by the broker) finds every row sent.
    assert send_messages(ids, str(token)) == {"stale": 3}
    assert len(mail.outbox) == 3
    assert set(Message.objects.values_list("status", "attempts")) == {(MessageStatus.SENT, 1)}


def test_one_bad_message_in_a_chunk_neither_stops_nor_resends_the_others(daytime, settings):
    settings.EMAIL_BACKEND = "tests.messaging.backends.PickyEmailBackend"
    first, refused, crashing, broken_check, last = MessageFactory.create_batch(5)
    type(refused.patient).objects.filter(pk=refused.patient_id).update(email="refuse@example.com")
    type(crashing.patient).objects.filter(pk=crashing.patient_id).update(email="crash@example.com")

    def check_crashes(message, about):
        if message.pk == broken_check.pk:
            raise RuntimeError("a validity check with a bug")
        return ""

    validity_check_register(MessageKind.APPOINTMENT_REMINDER, check_crashes)
    try:
        token, ids = messages_claim_due(limit=10)
        outcomes = messages_send(message_ids=ids, claim_token=str(token))
        assert outcomes == {
            first.pk: "sent",
            refused.pk: "failed",
            crashing.pk: "error",
            broken_check.pk: "error",
            last.pk: "sent",
        }
        assert sorted(email.to[0] for email in mail.outbox) == sorted([first.patient.email, last.patient.email])
        # Run again: nothing is sent twice; the two errors are still held, for the lease to run out.
        again = messages_send(message_ids=ids, claim_token=str(token))
        assert again[first.pk] == again[refused.pk] == again[last.pk] == "stale"
        assert len(mail.outbox) == 2
    finally:
        from clinic.messaging.outbox import _VALIDITY_CHECKS

        _VALIDITY_CHECKS[MessageKind.APPOINTMENT_REMINDER].remove(check_crashes)
    statuses = dict(Message.objects.values_list("id", "status"))
    assert statuses == {
        first.pk: MessageStatus.SENT,
        refused.pk: MessageStatus.FAILED,
        crashing.pk: MessageStatus.SENDING,
        broken_check.pk: MessageStatus.SENDING,
        last.pk: MessageStatus.SENT,
    }
    # After the lease the sweeper takes back exactly the two that errored, counting an attempt.
    daytime.shift(dt.timedelta(seconds=settings.MESSAGE_CLAIM_LEASE_SECONDS + 1))
    _, retaken = messages_claim_due(limit=10)
    assert sorted(retaken) == sorted([crashing.pk, broken_check.pk])
    assert set(Message.objects.filter(pk__in=retaken).values_list("attempts", flat=True)) == {1}


# Without the test's transaction: as in a worker, the sender runs in autocommit.
@pytest.mark.django_db(transaction=True)
def test_a_chunk_stops_when_a_sent_message_cannot_be_recorded(daytime):
    first, second, third = MessageFactory.create_batch(3)
    with transaction.atomic():
        token, _ = messages_claim_due(limit=10)
    ids = [first.pk, second.pk, third.pk]

    def database_down_at_the_first_result(execute, sql, params, many, context):
        if sql.startswith("UPDATE") and '"sent_at"' in sql:
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(database_down_at_the_first_result), pytest.raises(ResultNotRecordedError):
        messages_send(message_ids=ids, claim_token=str(token))
    # Only the message whose result was lost went out; the others were not tried.
    assert [email.to[0] for email in mail.outbox] == [first.patient.email]
    assert set(Message.objects.values_list("status", flat=True)) == {MessageStatus.SENDING}


@pytest.fixture
def between_sends(settings):
    """Run a function after each email the sender hands over (the chunk goes on afterwards)."""
    from tests.messaging.backends import HookEmailBackend

    settings.EMAIL_BACKEND = "tests.messaging.backends.HookEmailBackend"
    yield lambda hook: setattr(HookEmailBackend, "hook", hook)
    HookEmailBackend.hook = None


def test_a_chunk_extends_the_lease_of_the_rows_it_has_not_reached_when_it_runs_low(daytime, settings, between_sends):
    first, second = MessageFactory.create_batch(2)
    token, _ = messages_claim_due(limit=10)
    lease = dt.timedelta(seconds=settings.MESSAGE_CLAIM_LEASE_SECONDS)
    daytime.shift(lease * 0.6)  # e.g. the chunk waited in the queue behind others
    retaken = []

    def sweeper_after_the_first_send(email):
        if email.to == [first.patient.email]:
            assert Message.objects.get(pk=second.pk).lease_until == timezone.now() + lease
            daytime.shift(lease * 0.6)  # past the lease taken at the claim, within the extended one
            retaken.extend(messages_claim_due(limit=10)[1])

    between_sends(sweeper_after_the_first_send)
    assert messages_send(message_ids=[first.pk, second.pk], claim_token=str(token)) == {
        first.pk: "sent",
        second.pk: "sent",
    }
    assert retaken == []
    assert len(mail.outbox) == 2


def test_each_message_of_a_chunk_is_re_checked_at_most_the_recheck_time_before_its_send(
    daytime, settings, between_sends
):
    first, second, third = MessageFactory.create_batch(3)
    token, _ = messages_claim_due(limit=10)

    def cancel_the_second_then_take_time(email):
        if email.to == [first.patient.email]:
            second.patient.appointments.update(status=AppointmentStatus.CANCELLED, cancelled_at=timezone.now())
            daytime.shift(dt.timedelta(seconds=settings.MESSAGE_RECHECK_SECONDS + 1))  # a slow provider

    between_sends(cancel_the_second_then_take_time)
    outcomes = messages_send(message_ids=[first.pk, second.pk, third.pk], claim_token=str(token))
    assert outcomes == {first.pk: "sent", second.pk: "cancelled", third.pk: "sent"}
    assert Message.objects.get(pk=second.pk).reason == "appointment cancelled"


def test_with_no_recheck_time_each_message_is_read_right_before_its_send(daytime, settings, between_sends):
    settings.MESSAGE_RECHECK_SECONDS = 0
    first, second = MessageFactory.create_batch(2)
    token, _ = messages_claim_due(limit=10)

    def opt_out_of_the_second(email):
        if email.to == [first.patient.email]:
            patient_opt_out(patient=second.patient, channel="email", source="staff")

    between_sends(opt_out_of_the_second)
    outcomes = messages_send(message_ids=[first.pk, second.pk], claim_token=str(token))
    assert outcomes == {first.pk: "sent", second.pk: "skipped"}
    assert Message.objects.get(pk=second.pk).reason == "no email consent"


def test_a_chunk_whose_rows_cannot_be_read_together_reads_them_one_at_a_time(daytime, monkeypatch):
    from clinic.messaging import sending as messaging

    prefetch = messaging.messages_about_prefetch

    def fails_for_several(messages):
        if len(messages) > 1:
            raise RuntimeError("one row the batch read cannot load")
        prefetch(messages)

    monkeypatch.setattr(messaging, "messages_about_prefetch", fails_for_several)
    MessageFactory.create_batch(3)
    token, ids = messages_claim_due(limit=10)
    assert messages_send(message_ids=ids, claim_token=str(token)) == dict.fromkeys(ids, "sent")
    assert len(mail.outbox) == 3


def test_a_chunk_reads_its_rows_together_and_writes_one_update_per_message(daytime, clinic, django_assert_num_queries):
    ReminderPolicyFactory(clinic=clinic)
    messages = [MessageFactory(appointment=AppointmentFactory(clinic=clinic)) for _ in range(4)]
    token, ids = messages_claim_due(limit=10)
    # Once: the rows with their patients, the appointments with their practitioners and
    # places, the clinic with its policy, its templates, its only location (the place of
    # visits booked without one). Then one UPDATE (its own commit) per message.
    with django_assert_num_queries(5 + len(messages)):
        assert messages_send(message_ids=ids, claim_token=str(token)) == dict.fromkeys(ids, "sent")
