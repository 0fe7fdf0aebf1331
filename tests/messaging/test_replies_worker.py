"""Patients answer texts that a real Celery worker sent (real Redis and PostgreSQL, the file
SMS backend): YES confirms and stops later reminders (the clinic's policy), NO cancels for the
patient and the freed slot's waitlist offer goes out, CANCEL opts out and cancels nothing."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest
from django.utils import timezone

from clinic.models import Message, MessageKind, MessageStatus
from sessions import services
from sessions.messages import REMINDERS_STOPPED
from sessions.models import Appointment, AppointmentStatus, ConfirmedVia, OfferStatus, WaitlistOffer
from tests.factories import LocationFactory, PatientFactory, ReminderPolicyFactory, RoomFactory, ServiceFactory
from tests.messaging.test_confirm_decline import answer, sms_reply
from tests.messaging.test_worker_delivery import broker, drain, worker  # noqa: F401 - fixtures
from tests.sessions.conftest import weekday_hours

pytestmark = [pytest.mark.slow, pytest.mark.processes, pytest.mark.django_db(transaction=True)]

DEADLINE_SECONDS = 60


def texts_to(var_dir: Path, number: str) -> list[str]:
    folder = var_dir / "sms"
    records = [json.loads(path.read_text()) for path in folder.glob("*.json")] if folder.exists() else []
    return [record["body"] for record in records if record["to"] == number]


def sms_patient(clinic, number: str):
    return PatientFactory(clinic=clinic, mobile_phone=number, sms_consent=True, preferred_channel="sms")


def wait_sent(ids: list[int]) -> None:
    drain(ids, time.monotonic() + DEADLINE_SECONDS)
    assert set(Message.objects.filter(pk__in=ids).values_list("status", flat=True)) == {MessageStatus.SENT}


@pytest.fixture
def clinic_day(clinic, practitioner):
    """Real time (the worker runs on the real clock): a visit day five days ahead, 09-17."""
    clinic.phone = "+1 416 555 0199"
    clinic.save()
    ReminderPolicyFactory(
        clinic=clinic, quiet_hours_start=None, quiet_hours_end=None, stop_reminders_when_confirmed=True,
        lead_times=[{"hours": 48, "channel": "sms"}],
    )  # fmt: skip
    location = LocationFactory(clinic=clinic, name="Main street", address_line1="100 Main St")
    massage = ServiceFactory(clinic=clinic, name="Remedial massage", duration_minutes=60, buffer_minutes=15)
    room = RoomFactory(clinic=clinic, location=location)
    room.services.add(massage)
    practitioner.services.add(massage)
    weekday_hours(clinic, practitioner, location)
    day = (timezone.now().astimezone(clinic.tz) + dt.timedelta(days=5)).date()

    def book(patient, hour: int) -> Appointment:
        start = dt.datetime.combine(day, dt.time(hour), tzinfo=clinic.tz)
        return services.appointment_book(
            clinic=clinic, patient=patient, practitioner=practitioner, service=massage, start=start
        )

    return book, massage


def confirmation_of(appointment) -> Message:
    return Message.objects.get(about_id=appointment.pk, kind=MessageKind.APPOINTMENT_CONFIRMATION)


def test_replies_to_texts_a_real_worker_sent(worker, tmp_path, client, clinic, clinic_day):  # noqa: F811
    book, massage = clinic_day
    yes, no, cancel = (sms_patient(clinic, f"+1416555012{n}") for n in (1, 2, 3))
    waiting = sms_patient(clinic, "+14165550124")
    visits = {patient: book(patient, hour) for patient, hour in ((yes, 10), (no, 12), (cancel, 14))}
    services.waitlist_entry_create(
        clinic=clinic, patient=waiting, service=massage, window_start=timezone.now(),
        window_end=timezone.now() + dt.timedelta(days=10),
    )  # fmt: skip
    worker().start()
    wait_sent([confirmation_of(visit).pk for visit in visits.values()])
    for patient in (yes, no, cancel):
        [text] = texts_to(tmp_path, str(patient.mobile_phone))
        assert "Reply Y to confirm or N if you can't come." in text
        assert "at Main street, 100 Main St" in text

    # YES: confirmed by SMS reply; the clinic's policy cancels the reminder still scheduled.
    assert "is confirmed" in answer(sms_reply(client, yes, "YES"))
    visit = Appointment.objects.get(pk=visits[yes].pk)
    assert (visit.status, visit.confirmed_via) == (AppointmentStatus.CONFIRMED, ConfirmedVia.SMS_REPLY)
    reminder = Message.objects.get(about_id=visit.pk, kind=MessageKind.APPOINTMENT_REMINDER)
    assert (reminder.status, reminder.reason) == (MessageStatus.CANCELLED, REMINDERS_STOPPED)

    # NO: cancelled by the patient, the slot offered to the waiting patient, whose text the worker sends.
    assert "is cancelled" in answer(sms_reply(client, no, "NO"))
    visit = Appointment.objects.get(pk=visits[no].pk)
    assert (visit.status, visit.cancelled_by_party) == (AppointmentStatus.CANCELLED, "patient")
    offer = WaitlistOffer.objects.get(freed_by=visit)
    assert (offer.entry.patient_id, offer.status) == (waiting.pk, OfferStatus.PENDING)
    wait_sent(list(Message.objects.filter(kind=MessageKind.WAITLIST_OFFER).values_list("pk", flat=True)))
    [offer_text] = texts_to(tmp_path, str(waiting.mobile_phone))
    assert "a time you were waiting for opened up" in offer_text
    assert "/waitlist/offers/" in offer_text

    # CANCEL: a carrier opt-out word; the visit stands and the answer says how to cancel it.
    reply = answer(sms_reply(client, cancel, "CANCEL"))
    assert "Your appointments are NOT cancelled" in reply
    visit = Appointment.objects.get(pk=visits[cancel].pk)
    assert visit.status == AppointmentStatus.BOOKED
    cancel.refresh_from_db()
    assert not cancel.sms_consent
    reminder = Message.objects.get(about_id=visit.pk, kind=MessageKind.APPOINTMENT_REMINDER)
    assert (reminder.status, reminder.reason) == (MessageStatus.CANCELLED, "patient opted out")
    # Nothing else went to anyone.
    assert len(texts_to(tmp_path, str(cancel.mobile_phone))) == 1
