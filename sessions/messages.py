"""Messages about appointments and courses of care: what triggers them, whether they still
apply when due, and what their templates say about the visit. The outbox engine
(clinic.messaging) writes and sends them; `register()` plugs these in from SessionsConfig.ready().

- `appointment_messages_sync`: a confirmation and reminders per appointment occurrence
  (booked/confirmed and ahead), a cancellation notice when the clinic cancels.
- `followup_nudges_schedule`: re-booking nudges after a signed note, one ladder per patient
  (a newer note's ladder supersedes the older one; `followup_nudges_rebooked` cancels it on booking).
- `waitlist_offer_message_create`: a freed slot offered to a waitlisted patient.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.urls import reverse
from django.utils import timezone

from clinic.messaging.channels import Attachment
from clinic.messaging.outbox import (
    Planned,
    message_about,
    message_about_model,
    message_about_register,
    messages_reconcile,
    reminder_due,
    reminder_policy_for,
    start_ref,
    validity_check_register,
)
from clinic.messaging.render import attachment_provider_register, context_provider_register, when_text
from clinic.models import (
    Location,
    Message,
    MessageChannel,
    MessageKind,
    MessageStatus,
    ReminderPolicy,
    ServiceReminderPolicy,
)
from patients.models import Patient
from sessions.calendar import appointment_invite
from sessions.models import Appointment, AppointmentStatus, WaitlistOffer

UPCOMING_STATUSES = (AppointmentStatus.BOOKED, AppointmentStatus.CONFIRMED)


def lead_times_for(appointment: Appointment, policy: ReminderPolicy) -> list[dict]:
    override = ServiceReminderPolicy.objects.filter(service_id=appointment.service_id).first()
    return override.lead_times if override else policy.lead_times


@transaction.atomic
def appointment_messages_sync(*, appointment: Appointment, clinic_cancelled: bool = False) -> list[Message]:
    """(Re)compute the messages of an appointment from its current state. Idempotent.

    Booked or confirmed and ahead: a confirmation now and reminders at the lead times
    (service override, else the clinic's policy); a new start time moves them (the old
    ones are cancelled). Cancelled: its open messages are cancelled, and when the
    clinic cancelled (`clinic_cancelled=True`) the patient gets a cancellation notice.
    Any other status (arrived, completed, no-show) cancels what is still scheduled.
    Call it inside the transaction that changes the appointment.
    """
    appointment = (
        Appointment.objects.select_for_update(of=("self",)).select_related("clinic", "patient").get(pk=appointment.pk)
    )
    now = timezone.now()
    clinic, patient = appointment.clinic, appointment.patient
    policy = reminder_policy_for(clinic)
    ref = start_ref(appointment.start)
    context = {"start": ref}
    planned: list[Planned] = []
    managed = {MessageKind.APPOINTMENT_CONFIRMATION, MessageKind.APPOINTMENT_REMINDER}
    if appointment.status in UPCOMING_STATUSES and appointment.start > now:
        reason = "appointment moved"
        if _reminders_stopped(appointment, policy):
            reason = REMINDERS_STOPPED
        planned.append(
            Planned(
                kind=MessageKind.APPOINTMENT_CONFIRMATION,
                occurrence=ref,
                due_at=now,
                expires_at=appointment.start,
                immediate=policy.confirmations_immediate,
                context=context,
                keep_due=True,
            )
        )
        for lead in [] if _reminders_stopped(appointment, policy) else lead_times_for(appointment, policy):
            planned.append(
                Planned(
                    kind=MessageKind.APPOINTMENT_REMINDER,
                    occurrence=f"{lead['hours']}h@{ref}",
                    wanted_channel=lead["channel"],
                    due_at=reminder_due(appointment.start, hours=lead["hours"], tz=clinic.tz),
                    expires_at=appointment.start,
                    context=context,
                    only_ahead=True,
                )
            )
        managed.add(MessageKind.APPOINTMENT_CANCELLED)
    elif appointment.status == AppointmentStatus.CANCELLED:
        reason = "appointment cancelled"
        if clinic_cancelled and appointment.start > now:
            planned.append(
                Planned(
                    kind=MessageKind.APPOINTMENT_CANCELLED,
                    occurrence=ref,
                    due_at=now,
                    expires_at=appointment.start,
                    immediate=policy.confirmations_immediate,
                    context=context,
                    keep_due=True,
                )
            )
    else:
        reason = f"appointment {appointment.get_status_display().lower()}"
        managed.add(MessageKind.APPOINTMENT_CANCELLED)
    return messages_reconcile(
        clinic=clinic, patient=patient, about=appointment, planned=planned, managed_kinds=managed, cancel_reason=reason
    )


REMINDERS_STOPPED = "appointment confirmed; the clinic sends no more reminders"


def _reminders_stopped(appointment: Appointment, policy: ReminderPolicy) -> bool:
    return appointment.status == AppointmentStatus.CONFIRMED and policy.stop_reminders_when_confirmed


SUPERSEDED = "superseded by a newer note"
REBOOKED = "patient has re-booked"


def _since(message: Message) -> dt.datetime:
    return dt.datetime.fromisoformat(message.context["since"])


@transaction.atomic
def followup_nudges_schedule(
    *, patient: Patient, about: models.Model, signed_at: dt.datetime, rebook_within_days: int, booking_url: str = ""
) -> list[Message]:
    """Re-booking nudges after a signed note recommended a visit within N days.

    The first is due `rebook_within_days` after signing, a second (only if the clinic
    sets `followup_second_nudge_days`) that many days later. Each is sent only if the
    patient has no appointment after `signed_at` by then (checked by the sender).

    The nudges belong to the patient's course of care, not to the note: a patient has at
    most one pending ladder. The patient's row is locked first, so two signings for one
    patient queue here; the newest note's ladder (by `signed_at`) stays scheduled and every
    other scheduled one is cancelled as superseded. `message_one_followup_ladder` refuses a
    second scheduled rung of the same number whatever path wrote it. Idempotent.
    """
    if rebook_within_days < 1:
        raise ValidationError({"rebook_within_days": "Must be at least one day."})
    list(Patient.objects.select_for_update().filter(pk=patient.pk).values_list("pk", flat=True))
    others = (
        Message.objects.select_for_update()
        .filter(patient_id=patient.pk, kind=MessageKind.FOLLOWUP_NUDGE, status=MessageStatus.SCHEDULED)
        .exclude(about_type=ContentType.objects.get_for_model(about), about_id=about.pk)
    )
    others = list(others)
    planned: list[Planned] = []
    if not any(_since(row) > signed_at for row in others):
        if others:
            Message.objects.filter(pk__in=[row.pk for row in others], status=MessageStatus.SCHEDULED).update(
                status=MessageStatus.CANCELLED, reason=SUPERSEDED, updated_at=timezone.now()
            )
        policy = reminder_policy_for(patient.clinic)
        first = signed_at + dt.timedelta(days=rebook_within_days)
        context = {"link": booking_url, "since": signed_at.isoformat()}
        planned.append(Planned(kind=MessageKind.FOLLOWUP_NUDGE, occurrence="1", due_at=first, context=context))
        if policy.followup_second_nudge_days:
            second = first + dt.timedelta(days=policy.followup_second_nudge_days)
            planned.append(Planned(kind=MessageKind.FOLLOWUP_NUDGE, occurrence="2", due_at=second, context=context))
    return messages_reconcile(
        clinic=patient.clinic,
        patient=patient,
        about=about,
        planned=planned,
        managed_kinds={MessageKind.FOLLOWUP_NUDGE},
        cancel_reason="no longer applies" if planned else SUPERSEDED,
    )


def followup_nudges_rebooked(*, appointment: Appointment) -> int:
    """Cancel the patient's pending re-booking nudges that a new booking answers (those from
    notes signed before the visit's start), in the booking's transaction. Locks the patient's
    row as signing does (last in the booking's lock order), so a signing and a booking of one
    patient queue. Returns how many were cancelled."""
    list(Patient.objects.select_for_update().filter(pk=appointment.patient_id).values_list("pk", flat=True))
    pending = Message.objects.select_for_update().filter(
        patient_id=appointment.patient_id, kind=MessageKind.FOLLOWUP_NUDGE, status=MessageStatus.SCHEDULED
    )
    answered = [row.pk for row in pending if _since(row) < appointment.start]
    if not answered:
        return 0
    return Message.objects.filter(pk__in=answered, status=MessageStatus.SCHEDULED).update(
        status=MessageStatus.CANCELLED, reason=REBOOKED, updated_at=timezone.now()
    )


@transaction.atomic
def waitlist_offer_message_create(
    *, patient: Patient, about: models.Model, url: str, expires_at: dt.datetime
) -> Message:
    """Offer a freed slot; not sent after `expires_at` (quiet hours still apply)."""
    plan = Planned(
        kind=MessageKind.WAITLIST_OFFER,
        occurrence="1",
        due_at=timezone.now(),
        expires_at=expires_at,
        context={"link": url, "expires": expires_at.isoformat()},
        keep_due=True,
    )
    return messages_reconcile(
        clinic=patient.clinic, patient=patient, about=about, planned=[plan], managed_kinds=set(), cancel_reason=""
    )[0]


def _appointment_upcoming(message: Message, about) -> str:
    if about is None:
        return "appointment no longer exists"
    if about.status not in UPCOMING_STATUSES:
        return f"appointment {about.get_status_display().lower()}"
    if start_ref(about.start) != message.context.get("start"):
        return "appointment moved"
    return ""


def _reminder_not_stopped(message: Message, about) -> str:
    # The clinic's policy may say a confirmed visit needs no more reminders; read from the
    # clinic setup the sender holds (select_related), so no query per message.
    if about is None or about.status != AppointmentStatus.CONFIRMED:
        return ""
    try:
        policy = message.clinic.reminder_policy
    except ReminderPolicy.DoesNotExist:
        return ""
    return REMINDERS_STOPPED if policy.stop_reminders_when_confirmed else ""


def _appointment_still_cancelled(message: Message, about) -> str:
    if about is None or about.status != AppointmentStatus.CANCELLED:
        return "appointment no longer cancelled"
    return ""


def _patient_not_rebooked(message: Message, about) -> str:
    booked = Appointment.objects.active().filter(patient_id=message.patient_id, start__gt=_since(message)).exists()
    return REBOOKED if booked else ""


def _intake_appointment_upcoming(message: Message, about) -> str:
    # An intake nudge is about the intake link; the appointment it leads up to is in its context.
    appointment = Appointment.objects.filter(pk=message.context.get("appointment_id")).first()
    return _appointment_upcoming(message, appointment)


def appointment_location(appointment: Appointment):
    """Where the visit is: its location, else its room's, else the clinic's only active one."""
    if appointment.location_id:
        return appointment.location
    if appointment.room_id and appointment.room.location_id:
        return appointment.room.location
    return _only_location(appointment.clinic)


def _only_location(clinic):
    """The clinic's single active location (None when it has none or several), read once
    per clinic object: a sender's chunk shares one clinic across its messages."""
    if not hasattr(clinic, "_only_location"):
        places = list(Location.objects.filter(clinic_id=clinic.pk, is_active=True)[:2])
        clinic._only_location = places[0] if len(places) == 1 else None
    return clinic._only_location


def _place_keys(location, clinic) -> dict:
    if location is None:
        # Never an empty "at": the clinic's name is the place when it has no location on file.
        return {"location_name": clinic.name, "location_address": "", "location_directions": ""}
    return {
        "location_name": location.name,
        "location_address": location.address_text,
        "location_directions": location.directions,
    }


def _when_keys(start: dt.datetime, tz) -> dict:
    when, date, clock = when_text(start, tz)
    return {
        "appointment_when": when,
        "appointment_date": date,
        "appointment_time": clock,
        "appointment_zone": start.astimezone(tz).tzname() or "",
    }


def _appointment_of(message: Message) -> Appointment | None:
    if message_about_model(message) is Appointment:
        return message_about(message)
    if message.context.get("appointment_id"):
        return (
            Appointment.objects.select_related("practitioner", "location", "room__location")
            .filter(pk=message.context["appointment_id"])
            .first()
        )
    return None


def _appointment_context(message: Message) -> dict:
    """Template keys of the appointment a message is about (or leads up to, for an intake
    nudge; or the slot a waitlist offer holds): who, when (clinic time and zone), where, and
    for the confirmation and reminders the patient's confirm and "I can't come" links."""
    clinic = message.clinic
    if message.kind == MessageKind.WAITLIST_OFFER:
        offer = message_about(message)
        if offer is None:
            return {}
        location = offer.room.location if offer.room_id and offer.room.location_id else _only_location(clinic)
        return {
            "practitioner_name": offer.practitioner.display_name,
            **_when_keys(offer.start, clinic.tz),
            **_place_keys(location, clinic),
        }
    appointment = _appointment_of(message)
    if appointment is None:
        return {}
    appointment.clinic = clinic
    context = {
        "practitioner_name": appointment.practitioner.display_name,
        **_when_keys(appointment.start, clinic.tz),
        **_place_keys(appointment_location(appointment), clinic),
    }
    if message.kind in ANSWERABLE and appointment.status in UPCOMING_STATUSES:
        if message.channel == MessageChannel.EMAIL:
            token = appointment_reply_token(appointment)
            if appointment.status == AppointmentStatus.BOOKED:
                context["confirm_url"] = settings.PUBLIC_BASE_URL + reverse("appointment-reply", args=[token])
            context["decline_url"] = settings.PUBLIC_BASE_URL + reverse("appointment-decline", args=[token])
        elif appointment.status == AppointmentStatus.BOOKED:
            context["sms_reply_hint"] = "Reply Y to confirm or N if you can't come."
        else:
            context["sms_reply_hint"] = "Reply N if you can't come."
    return context


# --- the patient's confirm and "I can't come" links ---------------------------------------

ANSWERABLE = (MessageKind.APPOINTMENT_CONFIRMATION, MessageKind.APPOINTMENT_REMINDER)
_REPLY_SALT = "sessions.appointment.reply"


def appointment_reply_token(appointment: Appointment) -> str:
    """The signed token of the patient's links: the appointment and its start, so a link
    from before a move does not answer for the new time."""
    return signing.dumps([appointment.pk, start_ref(appointment.start)], salt=_REPLY_SALT, compress=True)


def appointment_reply_token_read(token: str) -> tuple[int, str] | None:
    """(appointment id, start ref) of a genuine token, else None (tampered or not ours)."""
    try:
        value = signing.loads(token, salt=_REPLY_SALT)
    except (signing.BadSignature, ValueError, TypeError):
        return None
    if not (isinstance(value, list) and len(value) == 2 and isinstance(value[0], int) and isinstance(value[1], str)):
        return None
    return value[0], value[1]


def _booking_invite(message: Message) -> list[Attachment]:
    """The .ics of a booking confirmation (METHOD:REQUEST) or a cancellation notice (METHOD:CANCEL)."""
    if message.kind not in (MessageKind.APPOINTMENT_CONFIRMATION, MessageKind.APPOINTMENT_CANCELLED):
        return []
    appointment = message_about(message)
    if appointment is None:
        return []
    appointment.clinic = message.clinic
    cancel = message.kind == MessageKind.APPOINTMENT_CANCELLED
    content = appointment_invite(
        appointment, location=appointment_location(appointment), cancel=cancel, to_email=message.patient.email
    )
    method = "CANCEL" if cancel else "REQUEST"
    return [Attachment("appointment.ics", content, f"text/calendar; charset=utf-8; method={method}")]


def register() -> None:
    """Plug the appointment messages into the engine (SessionsConfig.ready)."""
    message_about_register("appointment", Appointment, select_related=("practitioner", "location", "room__location"))
    message_about_register("waitlist_offer", WaitlistOffer, select_related=("practitioner", "room__location"))
    validity_check_register(MessageKind.APPOINTMENT_CONFIRMATION, _appointment_upcoming)
    validity_check_register(MessageKind.APPOINTMENT_REMINDER, _appointment_upcoming)
    validity_check_register(MessageKind.APPOINTMENT_REMINDER, _reminder_not_stopped)
    validity_check_register(MessageKind.APPOINTMENT_CANCELLED, _appointment_still_cancelled)
    validity_check_register(MessageKind.INTAKE_NUDGE, _intake_appointment_upcoming)
    validity_check_register(MessageKind.FOLLOWUP_NUDGE, _patient_not_rebooked)
    context_provider_register(_appointment_context)
    attachment_provider_register(_booking_invite)
