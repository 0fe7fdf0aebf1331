"""The patient answers a reminder: confirms the visit or says they can't come, by the signed
links of an email (sessions/pages.py) or by SMS reply (Y/YES/C, N/NO; registered with
`clinic.messaging.inbound` in SessionsConfig.ready).

Declining is a cancellation by the patient: `appointment_cancel(party=PATIENT)` records it as
late or not by the clinic's notice policy, frees the slot and offers it to the waitlist, all
in one transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.utils import timezone

from clinic.messaging.outbox import start_ref
from clinic.messaging.render import when_text
from clinic.models import Message, MessageChannel, MessageStatus
from sessions.messages import ANSWERABLE, UPCOMING_STATUSES, appointment_location, appointment_reply_token_read
from sessions.models import Appointment, AppointmentStatus, CancelledBy, ConfirmedVia
from sessions.services.booking import appointment_cancel, appointment_confirm

log = logging.getLogger(__name__)

CONFIRM_WORDS = frozenset({"Y", "YES", "C"})
DECLINE_WORDS = frozenset({"N", "NO"})


@dataclass(frozen=True)
class LinkLookup:
    """What a patient's link leads to: the appointment, or the HTTP status of the refusal
    (404 not ours or tampered; 410 cancelled, moved, passed or already attended)."""

    appointment: Appointment | None
    status: int = 200


def appointment_from_reply_token(token: str) -> LinkLookup:
    found = appointment_reply_token_read(token)
    if found is None:
        return LinkLookup(None, 404)
    appointment = (
        Appointment.objects.select_related("clinic", "practitioner", "location", "room__location")
        .filter(pk=found[0])
        .first()
    )
    if appointment is None:
        return LinkLookup(None, 404)
    if (
        appointment.status not in UPCOMING_STATUSES
        or appointment.start <= timezone.now()
        or start_ref(appointment.start) != found[1]
    ):
        return LinkLookup(None, 410)
    return LinkLookup(appointment)


@transaction.atomic
def appointment_patient_confirm(*, appointment: Appointment, via: ConfirmedVia | str) -> bool:
    """Confirm for the patient. False when it already was (nothing changes: a second tap or
    a repeated reply is harmless). Refuses (InvalidTransitionError) anything not booked."""
    locked = Appointment.objects.select_for_update(of=("self",)).select_related("clinic").get(pk=appointment.pk)
    if locked.status == AppointmentStatus.CONFIRMED:
        return False
    appointment_confirm(appointment=locked, via=via)
    log.info("appointment %s confirmed by the patient (%s)", locked.pk, via)
    return True


@transaction.atomic
def appointment_patient_decline(*, appointment: Appointment, via: ConfirmedVia | str) -> Appointment:
    """The patient can't come: cancelled by the patient under the clinic's notice policy, the
    slot offered to the waitlist (appointment_cancel)."""
    locked = Appointment.objects.select_for_update(of=("self",)).select_related("clinic").get(pk=appointment.pk)
    reason = f"Patient can't come ({ConfirmedVia(via).label.split(', ', 1)[-1]})"
    cancelled = appointment_cancel(appointment=locked, party=CancelledBy.PATIENT, reason=reason)
    log.info("appointment %s cancelled by the patient (%s), late=%s", locked.pk, via, cancelled.late_cancellation)
    return cancelled


def appointment_replied_to(patients: list) -> Appointment | None:
    """The visit an SMS reply answers: the one of the latest confirmation or reminder we texted
    these patients; without any, their next upcoming visit."""
    about_type = ContentType.objects.get_for_model(Appointment)
    last = (
        Message.objects.filter(
            patient__in=patients,
            channel=MessageChannel.SMS,
            status=MessageStatus.SENT,
            kind__in=ANSWERABLE,
            about_type=about_type,
            to_user__isnull=True,
        )
        .order_by("-sent_at", "-id")
        .values_list("about_id", flat=True)
        .first()
    )
    rows = Appointment.objects.select_related("clinic", "practitioner", "location", "room__location")
    if last is not None:
        return rows.filter(pk=last).first()
    return (
        rows.filter(patient__in=patients, status__in=UPCOMING_STATUSES, start__gt=timezone.now())
        .order_by("start")
        .first()
    )


def _visit(appointment: Appointment) -> str:
    tz = appointment.clinic.tz
    when = when_text(appointment.start, tz)[0]
    place = appointment_location(appointment)
    where = f" at {place.name}" if place is not None else ""
    return f"{when} {appointment.start.astimezone(tz).tzname()}{where}"


def sms_appointment_reply(patients: list, word: str) -> str | None:
    """Y/YES/C confirm, N/NO cancel the visit the reply answers; the answer says what happened.
    None for other words. A visit already past or cancelled changes nothing."""
    if word not in CONFIRM_WORDS | DECLINE_WORDS:
        return None
    appointment = appointment_replied_to(patients)
    if appointment is None:
        log.info("sms reply %s: patients %s have no visit to answer", word, [p.pk for p in patients])
        clinic = patients[0].clinic
        call = f" Please call {clinic.phone}." if clinic.phone else ""
        return f"{clinic.name}: we found no upcoming visit for this number.{call}"
    clinic = appointment.clinic
    call = f" Please call {clinic.phone}." if clinic.phone else ""
    visit = _visit(appointment)
    if appointment.status == AppointmentStatus.CANCELLED:
        log.info("sms reply %s about cancelled appointment %s: nothing changed", word, appointment.pk)
        return f"{clinic.name}: your visit on {visit} is already cancelled.{call}"
    if appointment.status not in UPCOMING_STATUSES or appointment.start <= timezone.now():
        log.info("sms reply %s about past appointment %s: nothing changed", word, appointment.pk)
        return f"{clinic.name}: your visit on {visit} has already passed, so nothing was changed.{call}"
    if word in CONFIRM_WORDS:
        appointment_patient_confirm(appointment=appointment, via=ConfirmedVia.SMS_REPLY)
        return f"{clinic.name}: thank you, your visit on {visit} is confirmed. Reply N if you can't come after all."
    cancelled = appointment_patient_decline(appointment=appointment, via=ConfirmedVia.SMS_REPLY)
    late = ""
    if cancelled.late_cancellation:
        notice = clinic.cancellation_notice_hours
        late = f" This is less than {notice} hours' notice, so our late-cancellation policy may apply."
    book = f" To book again call {clinic.phone}." if clinic.phone else ""
    return f"{clinic.name}: your visit on {visit} is cancelled.{late}{book}"
