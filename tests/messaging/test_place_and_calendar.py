"""Every appointment message says where and when (location, address, directions, the clinic's
phone, clinic time with the zone's short name), and booking emails carry an .ics whose UID
stays put while SEQUENCE follows moves and METHOD:CANCEL follows a cancellation."""

from __future__ import annotations

from io import StringIO

import icalendar
import pytest
from django.contrib.contenttypes.models import ContentType
from django.core import mail
from django.core.management import call_command
from django.db import transaction

from clinic.messaging.render import message_attachments, message_render
from clinic.messaging.sending import message_send, messages_claim_due
from clinic.models import Clinic, Message, MessageChannel, MessageKind, MessageStatus
from sessions import services
from sessions.models import Appointment, WaitlistOffer
from tests.factories import ReminderPolicyFactory
from tests.sessions.conftest import local

pytestmark = pytest.mark.django_db

# Kinds that are about a visit (or the slot a waitlist offer holds, or the visit an intake
# nudge leads up to): each must name its place and time.
PLACE_KINDS = [
    MessageKind.APPOINTMENT_CONFIRMATION,
    MessageKind.APPOINTMENT_REMINDER,
    MessageKind.APPOINTMENT_CANCELLED,
    MessageKind.INTAKE_NUDGE,
    MessageKind.WAITLIST_OFFER,
]


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker):
    """The demo clinic, seeded once for the module and rolled back after it."""
    with django_db_blocker.unblock(), transaction.atomic():
        call_command("seed_demo", stdout=StringIO())
        yield Clinic.objects.get(slug="demo")
        transaction.set_rollback(True)


def _demo_message(clinic, kind: str, channel: str) -> Message:
    """A message of `kind` from the demo data: the seeded row when there is one, else one
    built on a demo appointment (a cancellation notice, an intake nudge or an offer)."""
    found = Message.objects.filter(clinic=clinic, kind=kind).select_related("patient", "clinic").first()
    if found is not None:
        found.channel = channel
        return found
    appointment = Appointment.objects.filter(clinic=clinic, status="booked").order_by("start").first()
    if kind == MessageKind.WAITLIST_OFFER:
        offer = WaitlistOffer.objects.filter(clinic=clinic).first()
        if offer is None:
            entry = services.waitlist_entry_create(
                clinic=clinic, patient=appointment.patient, service=appointment.service,
                window_start=appointment.start, window_end=appointment.end,
            )  # fmt: skip
            offer = services.waitlist_offer_create(
                entry=entry, practitioner=appointment.practitioner, room=appointment.room, start=appointment.start
            )
        return Message.objects.filter(clinic=clinic, kind=kind).select_related("patient", "clinic").first()
    context = {"start": "x", "appointment_id": appointment.pk, "link": "https://example.test/i/"}
    return Message(
        clinic=clinic, patient=appointment.patient, kind=kind, channel=channel, context=context,
        about_type=ContentType.objects.get_for_model(Appointment), about_id=appointment.pk,
        due_at=appointment.start, pk=0,
    )  # fmt: skip


@pytest.mark.parametrize("channel", [MessageChannel.EMAIL, MessageChannel.SMS])
@pytest.mark.parametrize("kind", PLACE_KINDS)
def test_every_appointment_message_of_the_demo_names_its_place_time_zone_and_phone(demo, kind, channel):
    message = _demo_message(demo, kind, channel)
    assert message is not None, f"no {kind} in the demo data"
    subject, body = message_render(message)
    assert "Main street" in body
    assert "EST" in body or "EDT" in body
    assert "100 Main St, Toronto ON M5V 1A1" in body
    assert "+1 416 555 0100" in body
    if kind in (MessageKind.APPOINTMENT_CONFIRMATION, MessageKind.APPOINTMENT_REMINDER):
        assert "the door beside the pharmacy" in body
        assert "+1 416 555 0100" in body


def test_the_demo_has_appointment_messages_to_check(demo):
    kinds = set(Message.objects.filter(clinic=demo).values_list("kind", flat=True))
    assert {MessageKind.APPOINTMENT_CONFIRMATION, MessageKind.APPOINTMENT_REMINDER} <= kinds


# --- the .ics ----------------------------------------------------------------------------


def _send_all() -> None:
    token, ids = messages_claim_due(limit=100)
    for pk in ids:
        message_send(message_id=pk, claim_token=str(token))


def _invite(email) -> icalendar.Calendar:
    [(name, content, mimetype)] = email.attachments
    assert name == "appointment.ics"
    assert mimetype.startswith("text/calendar")
    return icalendar.Calendar.from_ical(content)


def test_the_booking_email_carries_an_ics_that_moves_and_cancels_the_same_event(desk):
    ReminderPolicyFactory(clinic=desk.clinic, quiet_hours_start=None, quiet_hours_end=None)
    appointment = services.appointment_book(
        clinic=desk.clinic, patient=desk.patient, practitioner=desk.practitioner, service=desk.massage,
        start=local(2027, 3, 3, 10),
    )  # fmt: skip
    _send_all()
    booked = _invite(mail.outbox[-1])
    event = booked.walk("VEVENT")[0]
    assert booked["METHOD"] == "REQUEST"
    assert event["DTSTART"].dt == local(2027, 3, 3, 10)
    assert "Main street" in str(event["LOCATION"])
    assert "Remedial massage" not in booked.to_ical().decode()  # nothing clinical
    uid, first_sequence = str(event["UID"]), int(event["SEQUENCE"])

    services.appointment_reschedule(appointment=appointment, start=local(2027, 3, 3, 14))
    _send_all()
    moved = _invite(mail.outbox[-1]).walk("VEVENT")[0]
    assert str(moved["UID"]) == uid
    assert int(moved["SEQUENCE"]) > first_sequence
    assert moved["DTSTART"].dt == local(2027, 3, 3, 14)

    services.appointment_cancel(appointment=Appointment.objects.get(pk=appointment.pk))
    _send_all()
    cancelled = _invite(mail.outbox[-1])
    gone = cancelled.walk("VEVENT")[0]
    assert cancelled["METHOD"] == "CANCEL"
    assert str(gone["UID"]) == uid
    assert str(gone["STATUS"]) == "CANCELLED"
    assert int(gone["SEQUENCE"]) > int(moved["SEQUENCE"])


def test_reminders_and_sms_carry_no_attachment(desk):
    appointment = services.appointment_book(
        clinic=desk.clinic, patient=desk.patient, practitioner=desk.practitioner, service=desk.massage,
        start=local(2027, 3, 3, 10),
    )  # fmt: skip
    reminder = Message.objects.filter(about_id=appointment.pk, kind=MessageKind.APPOINTMENT_REMINDER).first()
    assert message_attachments(reminder) == ()
    confirmation = Message.objects.get(about_id=appointment.pk, kind=MessageKind.APPOINTMENT_CONFIRMATION)
    confirmation.channel = MessageChannel.SMS
    assert message_attachments(confirmation) == ()
    assert confirmation.status == MessageStatus.SCHEDULED
