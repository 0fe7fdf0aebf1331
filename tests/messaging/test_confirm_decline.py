"""The patient answers a reminder: signed confirm / "I can't come" links in emails and SMS
replies (Y/YES/C, N/NO) through the inbound webhook; opt-out words stay opt-out."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core import signing
from django.test import override_settings

from clinic.messaging.channels import TwilioSmsBackend
from clinic.messaging.render import message_render
from clinic.messaging.sending import message_send, messages_claim_due
from clinic.models import Message, MessageChannel, MessageKind, MessageStatus
from patients.models import Patient
from sessions import services
from sessions.messages import appointment_reply_token
from sessions.models import AppointmentStatus, ConfirmedVia, OfferStatus, WaitlistOffer
from tests.factories import PatientFactory, ReminderPolicyFactory, WaitlistEntryFactory
from tests.sessions.conftest import local

pytestmark = pytest.mark.django_db

TWILIO = {
    "SMS_BACKEND": "clinic.messaging.channels.TwilioSmsBackend",
    "TWILIO_ACCOUNT_SID": "AC0123",
    "TWILIO_AUTH_TOKEN": "secret-token",
    "TWILIO_FROM_NUMBER": "+14165550100",
}


def book(desk, patient=None, start=None):
    return services.appointment_book(
        clinic=desk.clinic,
        patient=patient or desk.patient,
        practitioner=desk.practitioner,
        service=desk.massage,
        start=start or local(2027, 3, 3, 10),
    )


def sms_reply(client, patient_or_number, body: str):
    number = patient_or_number if isinstance(patient_or_number, str) else str(patient_or_number.mobile_phone)
    data = {"From": number, "Body": body, "AccountSid": "AC0123", "MessageSid": "SM1"}
    with override_settings(**TWILIO):
        signature = TwilioSmsBackend().signature("http://127.0.0.1:8000/messages/sms/inbound/", data)
    with override_settings(**TWILIO):
        return client.post("/messages/sms/inbound/", data, HTTP_X_TWILIO_SIGNATURE=signature)


def answer(response) -> str:
    found = re.search(r"<Message>(.*)</Message>", response.content.decode(), re.S)
    return found.group(1) if found else ""


def sms_sent_about(appointment, kind=MessageKind.APPOINTMENT_REMINDER):
    """Mark the appointment's SMS of `kind` as sent (what the sender does), so a reply answers it."""
    Message.objects.filter(about_id=appointment.pk, kind=kind).update(
        channel=MessageChannel.SMS, status=MessageStatus.SENT, sent_at=local(2027, 3, 1, 8)
    )


@pytest.fixture
def sms_desk(desk):
    Patient.objects.filter(pk=desk.patient.pk).update(sms_consent=True, mobile_phone="+14165550123")
    desk.patient.refresh_from_db()
    desk.clinic.phone = "+1 416 555 0199"
    desk.clinic.save()
    return desk


# --- the email links ----------------------------------------------------------------------


def test_the_confirm_link_shows_the_visit_and_confirms_only_on_the_button(client, desk):
    appointment = book(desk)
    url = f"/visit/{appointment_reply_token(appointment)}/"
    page = client.get(url)
    assert page.status_code == 200
    text = page.content.decode()
    assert "Wednesday 3 March 2027 at 10:00 AM EST" in text
    assert "Main street" in text
    assert "Confirm my visit" in text
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.BOOKED  # a GET (a mail scanner) changes nothing
    done = client.post(url)
    assert "Thank you, your visit is confirmed." in done.content.decode()
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.CONFIRMED
    assert appointment.confirmed_via == ConfirmedVia.EMAIL_LINK
    assert appointment.confirmed_at is not None
    assert client.post(url).status_code == 200  # a second tap is harmless
    assert appointment.changes.filter(new_status="confirmed").count() == 1


def test_i_cannot_come_cancels_by_the_patient_and_offers_the_slot_to_the_waitlist(client, desk):
    appointment = book(desk)
    waiting = WaitlistEntryFactory(clinic=desk.clinic, service=desk.massage)
    url = f"/visit/{appointment_reply_token(appointment)}/cannot-come/"
    page = client.get(url)
    assert "Cancel my visit" in page.content.decode()
    assert "late-cancellation" not in page.content.decode()  # two days' notice, 24 h needed
    done = client.post(url)
    assert "Your visit is cancelled." in done.content.decode()
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.CANCELLED
    assert appointment.cancelled_by_party == "patient"
    assert not appointment.late_cancellation
    assert "email" in appointment.cancellation_reason
    offer = WaitlistOffer.objects.get(freed_by=appointment)
    assert offer.entry == waiting
    assert offer.status == OfferStatus.PENDING


def test_declining_inside_the_notice_window_is_recorded_as_late(client, desk, time_machine):
    appointment = book(desk)
    time_machine.move_to(local(2027, 3, 2, 18), tick=True)  # 16 hours ahead, 24 needed
    url = f"/visit/{appointment_reply_token(appointment)}/cannot-come/"
    assert "late-cancellation policy may apply" in client.get(url).content.decode()
    client.post(url)
    appointment.refresh_from_db()
    assert appointment.late_cancellation


def test_a_tampered_link_is_404_and_names_nothing(client, desk):
    appointment = book(desk)
    token = appointment_reply_token(appointment)
    forged = signing.dumps([appointment.pk + 1, "2027-03-03T15:00Z"], salt="not.ours", compress=True)
    for bad in (token[:-2] + "xx", forged):
        page = client.get(f"/visit/{bad}/")
        assert page.status_code == 404
        assert "This link no longer works" in page.content.decode()
        assert "Main street" not in page.content.decode()
        assert client.post(f"/visit/{bad}/cannot-come/").status_code == 404
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.BOOKED


def test_a_link_of_a_cancelled_moved_or_past_visit_is_410_and_changes_nothing(client, desk, time_machine):
    cancelled = book(desk)
    cancelled_link = f"/visit/{appointment_reply_token(cancelled)}/"
    services.appointment_cancel(appointment=cancelled)
    moved = book(desk, start=local(2027, 3, 4, 10))
    moved_link = f"/visit/{appointment_reply_token(moved)}/"
    services.appointment_reschedule(appointment=moved, start=local(2027, 3, 4, 14))
    past = book(desk, start=local(2027, 3, 5, 10))
    past_link = f"/visit/{appointment_reply_token(past)}/"
    time_machine.move_to(local(2027, 3, 5, 12), tick=True)
    for url in (cancelled_link, moved_link, past_link):
        page = client.post(url)
        assert page.status_code == 410
        assert "This link has expired" in page.content.decode()
        assert "10:00" not in page.content.decode()
    moved.refresh_from_db()
    past.refresh_from_db()
    assert moved.status == past.status == AppointmentStatus.BOOKED


def test_reminder_emails_carry_both_links_and_sms_reminders_say_how_to_reply(desk):
    appointment = book(desk)
    reminder = Message.objects.get(
        about_id=appointment.pk, kind=MessageKind.APPOINTMENT_REMINDER, occurrence__startswith="48h"
    )
    _, body = message_render(reminder)
    token = appointment_reply_token(appointment)
    assert f"Confirm that you are coming: http://127.0.0.1:8000/visit/{token}/" in body
    assert f"I can't come (cancel the visit): http://127.0.0.1:8000/visit/{token}/cannot-come/" in body
    reminder.channel = MessageChannel.SMS
    _, sms = message_render(reminder)
    assert "Reply Y to confirm or N if you can't come." in sms


# --- SMS replies ----------------------------------------------------------------------------


@pytest.mark.parametrize("word", ["Y", "yes", "C", " Yes! "])
def test_an_sms_yes_confirms_the_visit_it_answers(client, sms_desk, word):
    appointment = book(sms_desk)
    sms_sent_about(appointment)
    response = sms_reply(client, sms_desk.patient, word)
    assert response.status_code == 200
    assert "is confirmed" in answer(response)
    assert "Wednesday 3 March at 10:00 AM EST at Main street" in answer(response)
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.CONFIRMED
    assert appointment.confirmed_via == ConfirmedVia.SMS_REPLY


def test_an_sms_no_cancels_by_the_patient_and_offers_the_slot(client, sms_desk):
    appointment = book(sms_desk)
    sms_sent_about(appointment)
    WaitlistEntryFactory(clinic=sms_desk.clinic, service=sms_desk.massage)
    response = sms_reply(client, sms_desk.patient, "no")
    assert "is cancelled" in answer(response)
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.CANCELLED
    assert appointment.cancelled_by_party == "patient"
    assert WaitlistOffer.objects.filter(freed_by=appointment, status=OfferStatus.PENDING).count() == 1


def test_cancel_is_an_opt_out_that_cancels_no_visit_and_says_how_to_cancel_one(client, sms_desk):
    appointment = book(sms_desk)
    sms_sent_about(appointment)
    response = sms_reply(client, sms_desk.patient, "CANCEL")
    text = answer(response)
    assert "Your appointments are NOT cancelled" in text
    assert "To cancel a visit, call +1 416 555 0199 or use the link in your email." in text
    appointment.refresh_from_db()
    sms_desk.patient.refresh_from_db()
    assert appointment.status == AppointmentStatus.BOOKED
    assert not sms_desk.patient.sms_consent


@pytest.mark.parametrize("word", ["STOP", "STOPALL", "UNSUBSCRIBE", "END", "QUIT"])
def test_every_carrier_opt_out_word_opts_out(client, sms_desk, word):
    book(sms_desk)
    assert "NOT cancelled" in answer(sms_reply(client, sms_desk.patient, word))
    sms_desk.patient.refresh_from_db()
    assert not sms_desk.patient.sms_consent


def test_a_reply_from_an_unknown_number_is_ignored(client, sms_desk):
    appointment = book(sms_desk)
    response = sms_reply(client, "+14165559999", "YES")
    assert response.status_code == 200
    assert answer(response) == ""
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.BOOKED


def test_a_reply_nobody_understands_is_answered_politely_and_changes_nothing(client, sms_desk):
    appointment = book(sms_desk)
    sms_sent_about(appointment)
    text = answer(sms_reply(client, sms_desk.patient, "maybe tuesday?"))
    assert text.startswith(f"{sms_desk.clinic.name}: sorry, we did not understand.")
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.BOOKED


def test_a_reply_about_a_visit_already_past_changes_nothing(client, sms_desk, time_machine):
    appointment = book(sms_desk)
    sms_sent_about(appointment)
    later = book(sms_desk, start=local(2027, 3, 10, 10))  # booked, but its SMS was never sent
    time_machine.move_to(local(2027, 3, 3, 12), tick=True)
    text = answer(sms_reply(client, sms_desk.patient, "N"))
    assert "has already passed, so nothing was changed" in text
    appointment.refresh_from_db()
    later.refresh_from_db()
    assert appointment.status == later.status == AppointmentStatus.BOOKED


def test_an_unsigned_reply_is_403_and_changes_nothing(client, sms_desk):
    appointment = book(sms_desk)
    data = {"From": str(sms_desk.patient.mobile_phone), "Body": "NO", "AccountSid": "AC0123"}
    with override_settings(**TWILIO):
        assert client.post("/messages/sms/inbound/", data).status_code == 403
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.BOOKED


# --- confirmed: reminders per the clinic's policy ------------------------------------------


def test_a_confirmed_visit_keeps_its_reminders_unless_the_policy_stops_them(desk):
    ReminderPolicyFactory(clinic=desk.clinic, stop_reminders_when_confirmed=False)
    kept = book(desk)
    services.appointment_confirm(appointment=kept, via=ConfirmedVia.EMAIL_LINK)
    assert Message.objects.filter(about_id=kept.pk, kind="appointment_reminder", status="scheduled").count() == 2

    desk.clinic.reminder_policy.stop_reminders_when_confirmed = True
    desk.clinic.reminder_policy.save()
    stopped = book(desk, start=local(2027, 3, 4, 10))
    services.appointment_confirm(appointment=stopped, via=ConfirmedVia.SMS_REPLY)
    reminders = Message.objects.filter(about_id=stopped.pk, kind="appointment_reminder")
    assert {(m.status, m.reason) for m in reminders} == {
        ("cancelled", "appointment confirmed; the clinic sends no more reminders")
    }


def test_a_reminder_already_claimed_when_the_visit_is_confirmed_is_not_sent(desk, time_machine):
    ReminderPolicyFactory(
        clinic=desk.clinic, stop_reminders_when_confirmed=True, quiet_hours_start=None, quiet_hours_end=None
    )
    appointment = book(desk, start=local(2027, 3, 4, 10))
    time_machine.move_to(local(2027, 3, 2, 10, 1), tick=True)
    token, ids = messages_claim_due(limit=10)
    reminder = Message.objects.get(about_id=appointment.pk, kind="appointment_reminder", status="sending")
    # Confirmed by the desk while the sender holds the reminder: the sender's last check stops it.
    appointment.__class__.objects.filter(pk=appointment.pk).update(
        status="confirmed", confirmed_at=local(2027, 3, 2, 10), confirmed_via="staff"
    )
    assert message_send(message_id=reminder.pk, claim_token=str(token)) == "cancelled"
    reminder.refresh_from_db()
    assert reminder.reason == "appointment confirmed; the clinic sends no more reminders"


def test_the_api_shows_who_confirmed(receptionist_api, desk):
    appointment = book(desk)
    services.appointment_confirm(appointment=appointment, via=ConfirmedVia.SMS_REPLY)
    body = receptionist_api.get(f"/api/v1/appointments/{appointment.pk}/").json()
    assert body["status"] == "confirmed"
    assert body["confirmed_via"] == "sms_reply"
    assert body["confirmed_at"].startswith("2027-03-01T")


def test_other_patients_numbers_do_not_answer_for_this_visit(client, sms_desk):
    appointment = book(sms_desk)
    sms_sent_about(appointment)
    stranger = PatientFactory(clinic=sms_desk.clinic, mobile_phone="+14165550777", sms_consent=True)
    assert "no upcoming visit" in answer(sms_reply(client, stranger, "N"))
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.BOOKED
    assert dt.timedelta(0) < appointment.start - local(2027, 3, 1, 8)
