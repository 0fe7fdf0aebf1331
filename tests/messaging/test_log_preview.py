"""The admin message log shows what the recipient gets (rendered) and why a message was held
back, skipped, cancelled or superseded."""

from __future__ import annotations

import pytest
from django.urls import reverse

from clinic.messaging.preview import message_explained
from clinic.models import Message, MessageKind, MessageStatus
from sessions import services
from sessions.messages import SUPERSEDED
from tests.sessions.conftest import local

pytestmark = pytest.mark.django_db


def _book(desk):
    return services.appointment_book(
        clinic=desk.clinic, patient=desk.patient, practitioner=desk.practitioner, service=desk.massage,
        start=local(2027, 3, 3, 10),
    )  # fmt: skip


def test_a_scheduled_reminder_shows_the_text_the_patient_will_get(client, desk, receptionist):
    appointment = _book(desk)
    reminder = Message.objects.get(about_id=appointment.pk, occurrence__startswith="48h")
    client.force_login(receptionist)
    page = client.get(reverse("admin:clinic_message_change", args=[reminder.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert "What the recipient gets" in text
    assert "Reminder: your appointment at Riverside" in text
    assert "When:  Wednesday 3 March at 10:00 AM EST" in text
    assert "Where: Main street" in text
    assert "Due 2027-03-01 10:00 EST." in text  # in clinic time
    confirmation = Message.objects.get(about_id=appointment.pk, kind=MessageKind.APPOINTMENT_CONFIRMATION)
    page = client.get(reverse("admin:clinic_message_change", args=[confirmation.pk]))
    assert "Attached:</strong> appointment.ics" in page.content.decode()


def test_the_log_says_why_a_message_was_cancelled_or_superseded(client, desk, owner):
    appointment = _book(desk)
    services.appointment_reschedule(appointment=appointment, start=local(2027, 3, 3, 14))
    moved = Message.objects.filter(about_id=appointment.pk, status=MessageStatus.CANCELLED).first()
    assert message_explained(moved) == (
        "Cancelled: The appointment was moved: messages for the new time replaced this one."
    )
    moved.reason = SUPERSEDED
    assert "replaced this one, so the patient gets one re-booking reminder, not one per note" in message_explained(
        moved
    )
    moved.status, moved.reason = MessageStatus.SKIPPED, "no SMS consent"
    moved.save()
    client.force_login(owner)
    listing = client.get(reverse("admin:clinic_message_changelist")).content.decode()
    assert "Skipped: The patient has not agreed to SMS, and no other channel could be used." in listing
