"""Messages to patients: triggers that write outbox rows, the sweeper that claims due
rows, and the sender that re-checks and delivers them.

Triggers (`appointment_messages_sync`, `intake_link_message_create`, ...) only write
rows, so they are safe inside the caller's transaction; they queue work on commit.
`messages_dispatch_due` (beat, every minute) claims due rows and, after commit, queues
one `send_messages` task per chunk of MESSAGE_SEND_CHUNK_SIZE rows. `messages_send`
delivers a chunk one message at a time: each is re-checked from a read at most
MESSAGE_RECHECK_SECONDS old, sent outside any transaction, and its result recorded with
one UPDATE of the row it still holds before the next send.

Template context (every kind; empty where it does not apply). No clinical detail:
no service, no treatment, no note content.

    patient_name       preferred name, else given name
    clinic_name, clinic_phone, clinic_email
    practitioner_name  appointment kinds and the intake nudge
    appointment_when   e.g. "Tuesday 5 May at 2:00 PM" in the clinic's time zone
    appointment_date, appointment_time
    link               intake, waitlist offer or booking link
    expires_when       when a link or offer runs out (clinic time)
    unsubscribe_url    email only
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import connection, models, transaction
from django.db.models import F
from django.template import Context, Engine, Template, TemplateDoesNotExist, TemplateSyntaxError
from django.urls import reverse
from django.utils import timezone

from clinic.channels import (
    OutgoingEmail,
    OutgoingSms,
    PermanentSendError,
    TransientSendError,
    email_send,
    sms_backend,
)
from clinic.models import (
    Clinic,
    Message,
    MessageChannel,
    MessageKind,
    MessageStatus,
    MessageTemplate,
    OptOut,
    OptOutSource,
    ReminderPolicy,
    ServiceReminderPolicy,
)
from patients.models import Patient
from sessions.models import Appointment, AppointmentStatus

log = logging.getLogger(__name__)
UTC = dt.UTC
UPCOMING_STATUSES = (AppointmentStatus.BOOKED, AppointmentStatus.CONFIRMED)
OPEN_STATUSES = (MessageStatus.SCHEDULED, MessageStatus.SENDING)

# --- policy ---------------------------------------------------------------------------


def reminder_policy_for(clinic: Clinic) -> ReminderPolicy:
    """The clinic's policy, or the defaults (unsaved) when it never set one."""
    policy = ReminderPolicy.objects.filter(clinic=clinic).first()
    return policy or ReminderPolicy(clinic=clinic)


def lead_times_for(appointment: Appointment, policy: ReminderPolicy) -> list[dict]:
    override = ServiceReminderPolicy.objects.filter(service_id=appointment.service_id).first()
    return override.lead_times if override else policy.lead_times


def reminder_due(start: dt.datetime, *, hours: int, tz) -> dt.datetime:
    """When a reminder `hours` before `start` is due.

    Whole days are counted on the clinic's wall clock (a 48 h reminder for Monday
    10:00 goes out Saturday 10:00 even across a DST change); other leads are
    counted in elapsed hours.
    """
    if hours % 24 == 0:
        local = start.astimezone(tz).replace(tzinfo=None) - dt.timedelta(days=hours // 24)
        return local.replace(tzinfo=tz).astimezone(UTC)
    return start - dt.timedelta(hours=hours)


def quiet_window(when: dt.datetime, *, policy: ReminderPolicy, tz) -> tuple[dt.datetime, dt.datetime] | None:
    """The quiet hours (begin, end) containing `when`, or None when `when` is outside them."""
    begin, end = policy.quiet_hours_start, policy.quiet_hours_end
    if begin is None or end is None or begin == end:
        return None
    local = when.astimezone(tz)
    today, clock = local.date(), local.time()
    if begin < end:
        if not begin <= clock < end:
            return None
        begin_day, end_day = today, today
    elif clock >= begin:
        begin_day, end_day = today, today + dt.timedelta(days=1)
    elif clock < end:
        begin_day, end_day = today - dt.timedelta(days=1), today
    else:
        return None
    began = dt.datetime.combine(begin_day, begin, tzinfo=tz).astimezone(UTC)
    ends = dt.datetime.combine(end_day, end, tzinfo=tz).astimezone(UTC)
    return began, ends


def quiet_hours_adjust(
    when: dt.datetime, *, policy: ReminderPolicy, tz, cut_off: dt.datetime | None = None
) -> dt.datetime:
    """Move a due time out of quiet hours: to their end, or (when the end is past the
    cut-off, e.g. a 2 h reminder of an 8:00 appointment) to just before they began."""
    window = quiet_window(when, policy=policy, tz=tz)
    if window is None:
        return when
    began, ends = window
    if cut_off is not None and ends >= cut_off:
        return began - dt.timedelta(minutes=1)
    return ends


# --- channels and consent -------------------------------------------------------------


def channel_problem(patient: Patient, channel: str) -> str:
    """Why `patient` cannot get a message on `channel` ('' when they can)."""
    if patient.is_archived:
        return "patient is archived"
    if channel == MessageChannel.EMAIL:
        if not patient.email:
            return "no email address"
        if not patient.email_consent:
            return "no email consent"
    elif channel == MessageChannel.SMS:
        if not patient.mobile_phone:
            return "no mobile phone number"
        if not patient.sms_consent:
            return "no SMS consent"
    else:
        return f"unknown channel {channel!r}"
    return ""


def channel_choose(patient: Patient, wanted: str | None = None) -> tuple[str, str]:
    """(channel, problem): `wanted` (else the patient's preferred channel), falling back
    to the other channel; when neither works, the wanted one and the reason."""
    first = wanted or patient.preferred_channel or MessageChannel.EMAIL
    problem = channel_problem(patient, first)
    if not problem:
        return first, ""
    other = MessageChannel.SMS if first == MessageChannel.EMAIL else MessageChannel.EMAIL
    if not channel_problem(patient, other):
        return other, ""
    return first, problem


# --- writing rows ---------------------------------------------------------------------


@dataclass
class Planned:
    """One message a trigger wants to exist."""

    kind: str
    occurrence: str
    due_at: dt.datetime
    wanted_channel: str | None = None
    expires_at: dt.datetime | None = None
    immediate: bool = False
    context: dict | None = None
    # Created only while its due time is still ahead (a reminder whose time has passed
    # when the appointment is booked is not sent late).
    only_ahead: bool = False
    # Rows already written keep their due time (a confirmation stays "now" of its creation).
    keep_due: bool = False


def _start_ref(start: dt.datetime) -> str:
    return start.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def _kick_sweeper() -> None:
    """Send due rows now rather than at the next beat tick; with the broker down they wait for it."""
    from clinic.degrade import publish
    from clinic.tasks import dispatch_due_messages

    publish(dispatch_due_messages)


def _reconcile(
    *,
    clinic: Clinic,
    patient: Patient,
    about: models.Model,
    planned: list[Planned],
    managed_kinds: set[str],
    cancel_reason: str,
) -> list[Message]:
    """Make the open rows about `about` (of `managed_kinds`) match `planned`.

    Creates missing rows, moves scheduled ones, revives cancelled or skipped ones that
    apply again, and cancels scheduled ones no longer planned. Idempotent.
    """
    now = timezone.now()
    policy = reminder_policy_for(clinic)
    tz = clinic.tz
    about_type = ContentType.objects.get_for_model(about)
    existing = {
        (m.kind, m.channel, m.occurrence): m
        for m in Message.objects.select_for_update().filter(about_type=about_type, about_id=about.pk)
    }
    kept: list[Message] = []
    created: list[Message] = []
    due_now = False
    for plan in planned:
        channel, problem = channel_choose(patient, plan.wanted_channel)
        due = plan.due_at
        if not plan.immediate:
            due = quiet_hours_adjust(due, policy=policy, tz=tz, cut_off=plan.expires_at)
        status = MessageStatus.SKIPPED if problem else MessageStatus.SCHEDULED
        row = existing.get((plan.kind, channel, plan.occurrence))
        if row is None:
            if plan.only_ahead and due <= now:
                continue
            row = Message(
                clinic=clinic,
                kind=plan.kind,
                patient=patient,
                channel=channel,
                about_type=about_type,
                about_id=about.pk,
                occurrence=plan.occurrence,
                context=plan.context or {},
                due_at=due,
                expires_at=plan.expires_at,
                immediate=plan.immediate,
                status=status,
                reason=problem,
            )
            # The caller's instances, and no row with this key among `existing` (read under the
            # caller's lock on the object): re-checking foreign keys and the unique key would
            # cost four queries per message on every booking; the database enforces both.
            row.full_clean(
                exclude=["clinic", "patient", "about_type"], validate_unique=False, validate_constraints=False
            )
            created.append(row)
        elif row.status == MessageStatus.SCHEDULED and not plan.keep_due:
            if (row.due_at, row.expires_at) != (due, plan.expires_at):
                row.due_at, row.expires_at = due, plan.expires_at
                row.save(update_fields=["due_at", "expires_at", "updated_at"])
        elif row.status in (MessageStatus.CANCELLED, MessageStatus.SKIPPED) and not (plan.only_ahead and due <= now):
            row.status, row.reason, row.due_at, row.expires_at = status, problem, due, plan.expires_at
            row.attempts, row.last_error = 0, ""
            row.context = plan.context or {}
            row.save(update_fields=["status", "reason", "due_at", "expires_at", "attempts", "last_error", "context"])
        kept.append(row)
        due_now = due_now or (row.status == MessageStatus.SCHEDULED and row.due_at <= now)
    Message.objects.bulk_create(created)
    kept_ids = {row.pk for row in kept}
    stale = [
        row
        for row in existing.values()
        if row.pk not in kept_ids and row.kind in managed_kinds and row.status == MessageStatus.SCHEDULED
    ]
    for row in stale:
        row.status, row.reason = MessageStatus.CANCELLED, cancel_reason
    if stale:
        Message.objects.filter(pk__in=[row.pk for row in stale], status=MessageStatus.SCHEDULED).update(
            status=MessageStatus.CANCELLED, reason=cancel_reason, updated_at=timezone.now()
        )
    if due_now:
        transaction.on_commit(_kick_sweeper)
    return kept


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
    ref = _start_ref(appointment.start)
    context = {"start": ref}
    planned: list[Planned] = []
    managed = {MessageKind.APPOINTMENT_CONFIRMATION, MessageKind.APPOINTMENT_REMINDER}
    if appointment.status in UPCOMING_STATUSES and appointment.start > now:
        reason = "appointment moved"
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
        for lead in lead_times_for(appointment, policy):
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
    return _reconcile(
        clinic=clinic, patient=patient, about=appointment, planned=planned, managed_kinds=managed, cancel_reason=reason
    )


@transaction.atomic
def intake_link_message_create(
    *, patient: Patient, about: models.Model, url: str, expires_at: dt.datetime | None = None, occurrence: str = "1"
) -> Message:
    """Send an intake link now (staff asked for it, so quiet hours do not hold it back).

    `about` is the intake link object; a second send of the same link needs a new
    `occurrence` (e.g. "2").
    """
    plan = Planned(
        kind=MessageKind.INTAKE_LINK,
        occurrence=occurrence,
        due_at=timezone.now(),
        expires_at=expires_at,
        immediate=True,
        context={"link": url, "expires": expires_at.isoformat() if expires_at else ""},
        keep_due=True,
    )
    return _reconcile(
        clinic=patient.clinic, patient=patient, about=about, planned=[plan], managed_kinds=set(), cancel_reason=""
    )[0]


@transaction.atomic
def intake_nudge_schedule(
    *, patient: Patient, about: models.Model, appointment: Appointment, url: str
) -> list[Message]:
    """Nudge to finish the intake, `intake_nudge_hours` (default 24) before the appointment.

    Not created when that time has passed. It stops when `messages_cancel_about` is
    called on intake submission, and the sender asks the `intake_nudge` validity checks
    (register "already submitted?" with `validity_check_register`) before sending.
    """
    policy = reminder_policy_for(patient.clinic)
    plan = Planned(
        kind=MessageKind.INTAKE_NUDGE,
        occurrence=f"before@{_start_ref(appointment.start)}",
        due_at=appointment.start - dt.timedelta(hours=policy.intake_nudge_hours),
        expires_at=appointment.start,
        context={"link": url, "appointment_id": appointment.pk, "start": _start_ref(appointment.start)},
        only_ahead=True,
    )
    return _reconcile(
        clinic=patient.clinic,
        patient=patient,
        about=about,
        planned=[plan],
        managed_kinds={MessageKind.INTAKE_NUDGE},
        cancel_reason="appointment moved",
    )


@transaction.atomic
def followup_nudges_schedule(
    *, patient: Patient, about: models.Model, signed_at: dt.datetime, rebook_within_days: int, booking_url: str = ""
) -> list[Message]:
    """Re-booking nudges after a signed note recommended a visit within N days.

    The first is due `rebook_within_days` after signing, a second (only if the clinic
    sets `followup_second_nudge_days`) that many days later. Each is sent only if the
    patient has no appointment after `signed_at` by then (checked by the sender).
    """
    if rebook_within_days < 1:
        raise ValidationError({"rebook_within_days": "Must be at least one day."})
    policy = reminder_policy_for(patient.clinic)
    first = signed_at + dt.timedelta(days=rebook_within_days)
    context = {"link": booking_url, "since": signed_at.isoformat()}
    planned = [Planned(kind=MessageKind.FOLLOWUP_NUDGE, occurrence="1", due_at=first, context=context)]
    if policy.followup_second_nudge_days:
        second = first + dt.timedelta(days=policy.followup_second_nudge_days)
        planned.append(Planned(kind=MessageKind.FOLLOWUP_NUDGE, occurrence="2", due_at=second, context=context))
    return _reconcile(
        clinic=patient.clinic,
        patient=patient,
        about=about,
        planned=planned,
        managed_kinds={MessageKind.FOLLOWUP_NUDGE},
        cancel_reason="no longer applies",
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
    return _reconcile(
        clinic=patient.clinic, patient=patient, about=about, planned=[plan], managed_kinds=set(), cancel_reason=""
    )[0]


@transaction.atomic
def messages_cancel_about(*, about: models.Model, kinds: list[str], reason: str) -> int:
    """Cancel the still-scheduled messages of `kinds` about `about` (e.g. intake submitted)."""
    return Message.objects.filter(
        about_type=ContentType.objects.get_for_model(about),
        about_id=about.pk,
        kind__in=kinds,
        status=MessageStatus.SCHEDULED,
    ).update(status=MessageStatus.CANCELLED, reason=reason[:200], updated_at=timezone.now())


@transaction.atomic
def message_resend(*, message: Message) -> Message:
    """Put a failed (or skipped) message back in the queue, due now."""
    if message.status not in (MessageStatus.FAILED, MessageStatus.SKIPPED):
        raise ValidationError("Only a failed or skipped message can be sent again.")
    updated = Message.objects.filter(pk=message.pk, status=message.status).update(
        status=MessageStatus.SCHEDULED,
        due_at=timezone.now(),
        attempts=0,
        reason="",
        claim_token=None,
        lease_until=None,
        updated_at=timezone.now(),
    )
    if updated:
        transaction.on_commit(_kick_sweeper)
    message.refresh_from_db()
    return message


# --- opt-out --------------------------------------------------------------------------


@transaction.atomic
def patient_opt_out(*, patient: Patient, channel: str, source: str) -> OptOut:
    """Withdraw the patient's consent for `channel`; cancel what is scheduled on it."""
    if channel not in MessageChannel.values:
        raise ValidationError({"channel": f"Unknown channel {channel!r}."})
    consent = "email_consent" if channel == MessageChannel.EMAIL else "sms_consent"
    Patient.objects.filter(pk=patient.pk).update(**{consent: False, "updated_at": timezone.now()})
    setattr(patient, consent, False)
    opt_out = OptOut(clinic_id=patient.clinic_id, patient=patient, channel=channel, source=OptOutSource(source))
    opt_out.full_clean()
    opt_out.save()
    Message.objects.filter(patient=patient, channel=channel, status=MessageStatus.SCHEDULED).update(
        status=MessageStatus.CANCELLED, reason="patient opted out", updated_at=timezone.now()
    )
    return opt_out


STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"}


def sms_reply_handle(*, from_number: str, body: str) -> int:
    """An inbound SMS: a STOP word opts the number out of SMS in every clinic. Returns patients opted out."""
    if body.strip().upper() not in STOP_WORDS or not from_number:
        return 0
    patients = list(Patient.objects.filter(mobile_phone=from_number, sms_consent=True))
    for patient in patients:
        patient_opt_out(patient=patient, channel=MessageChannel.SMS, source=OptOutSource.SMS_STOP)
    return len(patients)


_UNSUBSCRIBE_SALT = "clinic.messaging.unsubscribe"


def unsubscribe_token(*, patient_id: int, channel: str = MessageChannel.EMAIL) -> str:
    return signing.dumps([patient_id, channel], salt=_UNSUBSCRIBE_SALT, compress=True)


def unsubscribe_token_read(token: str) -> tuple[int, str] | None:
    try:
        patient_id, channel = signing.loads(token, salt=_UNSUBSCRIBE_SALT)
    except (signing.BadSignature, ValueError, TypeError):
        return None
    if not isinstance(patient_id, int) or channel not in MessageChannel.values:
        return None
    return patient_id, channel


def unsubscribe_url(*, patient_id: int) -> str:
    path = reverse("messages-unsubscribe", kwargs={"token": unsubscribe_token(patient_id=patient_id)})
    return settings.PUBLIC_BASE_URL + path


# --- validity checks ------------------------------------------------------------------

ValidityCheck = Callable[[Message, models.Model | None], str]
_VALIDITY_CHECKS: dict[str, list[ValidityCheck]] = defaultdict(list)


def validity_check_register(kind: str, check: ValidityCheck) -> None:
    """Add a "does this message still apply?" check for `kind`.

    `check(message, about)` gets the row and the object it is about (None if deleted)
    and returns '' when the message still applies, else the reason it no longer does;
    the sender then cancels it with that reason. Register at import time (AppConfig.ready).
    """
    if kind not in MessageKind.values:
        raise ValueError(f"unknown message kind {kind!r}")
    if check not in _VALIDITY_CHECKS[kind]:
        _VALIDITY_CHECKS[kind].append(check)


def _about_exists(message: Message, about) -> str:
    return "" if about is not None else "what it is about no longer exists"


def _appointment_upcoming(message: Message, about) -> str:
    if about is None:
        return "appointment no longer exists"
    if about.status not in UPCOMING_STATUSES:
        return f"appointment {about.get_status_display().lower()}"
    if _start_ref(about.start) != message.context.get("start"):
        return "appointment moved"
    return ""


def _appointment_still_cancelled(message: Message, about) -> str:
    if about is None or about.status != AppointmentStatus.CANCELLED:
        return "appointment no longer cancelled"
    return ""


def _intake_appointment_upcoming(message: Message, about) -> str:
    appointment = Appointment.objects.filter(pk=message.context.get("appointment_id")).first()
    return _appointment_upcoming(message, appointment)


def _patient_not_rebooked(message: Message, about) -> str:
    since = dt.datetime.fromisoformat(message.context["since"])
    booked = Appointment.objects.active().filter(patient_id=message.patient_id, start__gt=since).exists()
    return "patient has re-booked" if booked else ""


for _kind in MessageKind.values:
    validity_check_register(_kind, _about_exists)
validity_check_register(MessageKind.APPOINTMENT_CONFIRMATION, _appointment_upcoming)
validity_check_register(MessageKind.APPOINTMENT_REMINDER, _appointment_upcoming)
validity_check_register(MessageKind.APPOINTMENT_CANCELLED, _appointment_still_cancelled)
validity_check_register(MessageKind.INTAKE_NUDGE, _intake_appointment_upcoming)
validity_check_register(MessageKind.FOLLOWUP_NUDGE, _patient_not_rebooked)


def _about_model(message: Message) -> type[models.Model] | None:
    # ContentType's own per-process cache: no query per message.
    return ContentType.objects.get_for_id(message.about_type_id).model_class()


def _about_queryset(model: type[models.Model]) -> models.QuerySet:
    queryset = model._default_manager.all()
    if model is Appointment:
        queryset = queryset.select_related("practitioner")
    return queryset.order_by()


def message_about(message: Message) -> models.Model | None:
    """The object the message is about (None if deleted), fetched once per message."""
    if not hasattr(message, "_about"):
        message._about = next(iter(_about_queryset(_about_model(message)).filter(pk=message.about_id)), None)
    return message._about


def _abouts_prefetch(messages: list[Message]) -> None:
    """What each message is about, in one query per kind of object (`message_about` then
    asks no more). A kind whose model is gone is left to `message_about`, which fails
    only the messages about it."""
    by_type: dict[int, list[Message]] = defaultdict(list)
    for message in messages:
        by_type[message.about_type_id].append(message)
    for type_id, group in by_type.items():
        model = ContentType.objects.get_for_id(type_id).model_class()
        if model is None:
            continue
        found = _about_queryset(model).in_bulk({message.about_id for message in group})
        for message in group:
            message._about = found.get(message.about_id)


def message_still_applies(message: Message) -> str:
    """'' when the message should go out now, else why not."""
    about = message_about(message)
    for check in _VALIDITY_CHECKS[message.kind]:
        reason = check(message, about)
        if reason:
            return reason
    return ""


# --- rendering ------------------------------------------------------------------------

_TEXT_ENGINE = Engine(autoescape=False)
DEFAULT_TEMPLATES = Path(__file__).resolve().parent / "templates" / "messages"


def template_check(*, subject: str, body: str) -> None:
    for name, source in (("subject", subject), ("body", body)):
        try:
            Template(source, engine=_TEXT_ENGINE)
        except TemplateSyntaxError as exc:
            raise ValidationError({name: f"Template error: {exc}"}) from None


def _when(value: dt.datetime | None, tz) -> tuple[str, str, str]:
    if value is None:
        return "", "", ""
    local = value.astimezone(tz)
    date = f"{local:%A} {local.day} {local:%B}"
    clock = local.strftime("%I:%M %p").lstrip("0")
    return f"{date} at {clock}", date, clock


def message_context(message: Message) -> dict:
    clinic, patient = message.clinic, message.patient
    tz = clinic.tz
    appointment = None
    if _about_model(message) is Appointment:
        appointment = message_about(message)
    elif message.context.get("appointment_id"):
        appointment = (
            Appointment.objects.select_related("practitioner").filter(pk=message.context["appointment_id"]).first()
        )
    when, date, clock = _when(appointment.start if appointment else None, tz)
    expires = message.context.get("expires")
    return {
        "patient_name": patient.preferred_name or patient.given_name,
        "clinic_name": clinic.name,
        "clinic_phone": clinic.phone,
        "clinic_email": clinic.email,
        "practitioner_name": appointment.practitioner.display_name if appointment else "",
        "appointment_when": when,
        "appointment_date": date,
        "appointment_time": clock,
        "link": message.context.get("link", ""),
        "expires_when": _when(dt.datetime.fromisoformat(expires), tz)[0] if expires else "",
        "unsubscribe_url": unsubscribe_url(patient_id=patient.pk) if message.channel == MessageChannel.EMAIL else "",
    }


@functools.cache
def _default_template(name: str) -> Template:
    # Compiled once per process: the defaults ship with the code.
    return Template((DEFAULT_TEMPLATES / name).read_text(), engine=_TEXT_ENGINE)


@functools.lru_cache(maxsize=256)
def _clinic_template_compile(source: str) -> Template:
    # Keyed by the source itself, so an edited template is simply a new entry.
    return Template(source, engine=_TEXT_ENGINE)


def _clinic_template(message: Message) -> tuple[str, str] | None:
    """(subject, body) of the clinic's own template; the sender sets it from its clinic setup."""
    if hasattr(message, "template_body"):
        return None if message.template_body is None else (message.template_subject, message.template_body)
    found = MessageTemplate.objects.filter(clinic_id=message.clinic_id, kind=message.kind, channel=message.channel)
    return found.values_list("subject", "body").first()


def message_render(message: Message) -> tuple[str, str]:
    """(subject, body) from the clinic's template, else the default in templates/messages/."""
    context = Context(message_context(message), autoescape=False)
    custom = _clinic_template(message)
    if custom:
        subject = _clinic_template_compile(custom[0]).render(context) if custom[0] else ""
        body = _clinic_template_compile(custom[1]).render(context)
    else:
        body = _default_template(f"{message.kind}.{message.channel}.txt").render(context)
        subject = ""
        if message.channel == MessageChannel.EMAIL:
            subject = _default_template(f"{message.kind}.subject.txt").render(context)
    return " ".join(subject.split())[:200], body.strip() + "\n"


# --- the sweeper ----------------------------------------------------------------------


def _lease() -> dt.timedelta:
    return dt.timedelta(seconds=settings.MESSAGE_CLAIM_LEASE_SECONDS)


def messages_claim_due(*, limit: int, now: dt.datetime | None = None) -> tuple[uuid.UUID, list[int]]:
    """Claim up to `limit` rows: due scheduled ones, and `sending` ones whose lease ran out
    (their worker died). Claimed rows are `sending` with a new token. Call in a transaction.

    PostgreSQL: SELECT ... FOR UPDATE SKIP LOCKED, so sweepers running at once take
    disjoint rows. Elsewhere (SQLite): a conditional UPDATE per row, kept only when it
    changed a row.
    """
    now = now or timezone.now()
    token = uuid.uuid4()
    claim = {"status": MessageStatus.SENDING, "claim_token": token, "claimed_at": now, "lease_until": now + _lease()}
    lost = Message.objects.filter(status=MessageStatus.SENDING, lease_until__lt=now).order_by("lease_until", "id")
    due = Message.objects.filter(status=MessageStatus.SCHEDULED, due_at__lte=now).order_by("due_at", "id")
    ids: list[int] = []
    if connection.features.has_select_for_update_skip_locked:
        retaken = list(lost.select_for_update(skip_locked=True).values_list("id", flat=True)[:limit])
        ids = retaken + list(
            due.select_for_update(skip_locked=True).values_list("id", flat=True)[: limit - len(retaken)]
        )
        Message.objects.filter(id__in=ids).update(**claim)
        # Count a lost claim as an attempt: a message that kills its sender (or whose
        # re-check keeps crashing) is retried a bounded number of times, then failed.
        Message.objects.filter(id__in=retaken).update(attempts=F("attempts") + 1)
    else:
        retaken = []
        for queryset in (lost, due):
            for pk in list(queryset.values_list("id", flat=True)[: limit - len(ids)]):
                if queryset.filter(pk=pk).update(**claim) == 1:
                    ids.append(pk)
                    if queryset is lost:
                        retaken.append(pk)
        Message.objects.filter(id__in=retaken).update(attempts=F("attempts") + 1)
    # A row whose sender keeps dying is given up rather than retried forever.
    given_up = Message.objects.filter(id__in=retaken, attempts__gt=settings.MESSAGE_MAX_ATTEMPTS)
    dead = set(given_up.values_list("id", flat=True))
    if dead:
        given_up.update(status=MessageStatus.FAILED, reason="gave up: no result after the last attempt", updated_at=now)
    return token, [pk for pk in ids if pk not in dead]


def _queue_sends(token: uuid.UUID, ids: list[int]) -> None:
    from clinic.tasks import send_messages

    # One task per chunk of MESSAGE_SEND_CHUNK_SIZE rows: the per-task cost of the broker
    # and the worker is paid once per chunk, not once per message. One broker connection
    # for the whole batch.
    size = settings.MESSAGE_SEND_CHUNK_SIZE
    with send_messages.app.producer_or_acquire() as producer:
        for start in range(0, len(ids), size):
            send_messages.apply_async((ids[start : start + size], str(token)), producer=producer)


def messages_dispatch_due(*, now: dt.datetime | None = None) -> int:
    """Claim due messages in batches (at most MESSAGE_MAX_PER_TICK) and queue their sends after commit.

    Missed beat ticks need no bookkeeping: everything due up to now is claimed, a
    backlog over several ticks.
    """
    batch, cap = settings.MESSAGE_BATCH_SIZE, settings.MESSAGE_MAX_PER_TICK
    total = 0
    while total < cap:
        with transaction.atomic():
            token, ids = messages_claim_due(limit=min(batch, cap - total), now=now)
            if ids:
                transaction.on_commit(lambda token=token, ids=ids: _queue_sends(token, ids))
        total += len(ids)
        if len(ids) < batch:
            break
    return total


# --- the sender -----------------------------------------------------------------------


def _retry_delay(attempts: int) -> dt.timedelta:
    seconds = settings.MESSAGE_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0)
    return dt.timedelta(seconds=min(seconds, 3600))


class ResultNotRecordedError(Exception):
    """A message went to the provider but its result could not be written (the database
    is unreachable). A chunk stops there: sending on would pile up sends nobody recorded,
    each one a duplicate once its lease runs out."""


def _held(message_id: int, claim_token: str):
    """The row while this sender still holds it: `sending` under `claim_token`."""
    return Message.objects.filter(pk=message_id, status=MessageStatus.SENDING, claim_token=claim_token)


def _release(message: Message, claim_token: str, **fields) -> bool:
    """Finish a held row in one conditional UPDATE (status, reason, ...; claim and lease
    cleared). False when the claim was lost meanwhile (re-taken after its lease)."""
    updated = _held(message.pk, claim_token).update(
        **fields, claim_token=None, lease_until=None, updated_at=timezone.now()
    )
    return updated == 1


def _lease_keep(message: Message, claim_token: str, later: list[Message], now: dt.datetime) -> bool:
    """Make sure the claim outlives the send: with less than half the lease left, extend it
    (for this row and the rest of its chunk, in one transaction). False when the claim was lost."""
    lease = _lease()
    if message.lease_until - now >= lease / 2:
        return True
    with transaction.atomic():
        if _held(message.pk, claim_token).update(lease_until=now + lease) != 1:
            return False
        if later:
            Message.objects.filter(
                pk__in=[row.pk for row in later], status=MessageStatus.SENDING, claim_token=claim_token
            ).update(lease_until=now + lease)
    for row in [message, *later]:
        row.lease_until = now + lease
    return True


@dataclass(frozen=True)
class _ClinicSetup:
    """What every message of a clinic needs: the clinic, its policy, its own templates."""

    clinic: Clinic
    policy: ReminderPolicy
    templates: dict[tuple[str, str], tuple[str, str]]  # (kind, channel): (subject, body)


def _clinic_setup(clinic_id: int) -> _ClinicSetup:
    clinic = Clinic.objects.select_related("reminder_policy").get(pk=clinic_id)
    try:
        policy = clinic.reminder_policy
    except ReminderPolicy.DoesNotExist:
        policy = ReminderPolicy(clinic=clinic)
    found = MessageTemplate.objects.filter(clinic_id=clinic_id).values_list("kind", "channel", "subject", "body")
    return _ClinicSetup(clinic, policy, {(kind, channel): (subject, body) for kind, channel, subject, body in found})


def _messages_fetch(message_ids: list[int], claim_token: str, clinics: dict[int, _ClinicSetup]) -> dict[int, Message]:
    """The rows of `message_ids` still held under `claim_token`, with their patients (one
    query), what they are about (one query per kind of object) and their clinic's setup
    (read once per chunk: `clinics`)."""
    found = list(
        Message.objects.filter(pk__in=message_ids, status=MessageStatus.SENDING, claim_token=claim_token)
        .select_related("patient")
        .order_by()
    )
    for message in found:
        if message.clinic_id not in clinics:
            clinics[message.clinic_id] = _clinic_setup(message.clinic_id)
        setup = clinics[message.clinic_id]
        message.clinic = setup.clinic
        message.template_subject, message.template_body = setup.templates.get(
            (message.kind, message.channel), (None, None)
        )
    _abouts_prefetch(found)
    return {message.pk: message for message in found}


def _held_back(message: Message, policy: ReminderPolicy, now: dt.datetime) -> tuple[str, dict] | None:
    """(outcome, fields to record) when the message must not go out now, else None: it no
    longer applies, is past its cut-off, the channel lost its consent, or quiet hours."""
    reason = message_still_applies(message)
    if reason:
        return "cancelled", {"status": MessageStatus.CANCELLED, "reason": reason[:200]}
    if message.expires_at and now >= message.expires_at:
        return "skipped", {"status": MessageStatus.SKIPPED, "reason": "past its cut-off time"}
    problem = channel_problem(message.patient, message.channel)
    if problem:
        return "skipped", {"status": MessageStatus.SKIPPED, "reason": problem}
    window = None if message.immediate else quiet_window(now, policy=policy, tz=message.clinic.tz)
    if window:
        began, ends = window
        if message.expires_at is None or ends < message.expires_at:
            return "deferred", {"status": MessageStatus.SCHEDULED, "due_at": ends}
        if message.due_at >= began:
            return "skipped", {"status": MessageStatus.SKIPPED, "reason": "quiet hours last past its cut-off time"}
    return None


def message_send(*, message_id: int, claim_token: str) -> str:
    """Deliver one claimed message (a chunk of one). Returns what happened (for logs and tests).

    Call it outside any transaction (the tasks do). A stale call (the row was sent, or
    re-claimed under another token) does nothing.
    """
    clinics: dict[int, _ClinicSetup] = {}
    message = _messages_fetch([message_id], claim_token, clinics).get(message_id)
    if message is None:
        return "stale"
    return _message_deliver(message, claim_token, clinics[message.clinic_id].policy, [], timezone.now())


def _message_deliver(
    message: Message, claim_token: str, policy: ReminderPolicy, later: list[Message], now: dt.datetime
) -> str:
    """Re-check a held row read moments ago, send it outside any transaction and record
    the result with one UPDATE. `later`: the rows of its chunk still to send, whose lease
    is extended along with this row's when it runs low."""
    held_back = _held_back(message, policy, now)
    if held_back:
        outcome, fields = held_back
        return outcome if _release(message, claim_token, **fields) else "stale"
    try:
        subject, body = message_render(message)
    except (TemplateSyntaxError, TemplateDoesNotExist, ValueError, KeyError, TypeError) as exc:
        # A broken clinic template must not leave the row to be re-claimed forever.
        released = _release(
            message,
            claim_token,
            status=MessageStatus.FAILED,
            reason="could not render the template",
            last_error=str(exc),
        )
        return "failed" if released else "stale"
    if not _lease_keep(message, claim_token, later, now):
        return "stale"

    patient = message.patient
    recipient = patient.email if message.channel == MessageChannel.EMAIL else str(patient.mobile_phone)
    key = f"msg-{message.pk}"
    try:
        if message.channel == MessageChannel.EMAIL:
            provider_id = email_send(
                OutgoingEmail(
                    to=recipient,
                    subject=subject,
                    body=body,
                    idempotency_key=key,
                    unsubscribe_url=unsubscribe_url(patient_id=patient.pk),
                )
            )
        else:
            provider_id = sms_backend().send(OutgoingSms(to=recipient, body=body, idempotency_key=key))
    except (TransientSendError, PermanentSendError) as exc:
        permanent = isinstance(exc, PermanentSendError)
        try:
            sent_as = {"subject": subject, "body": body, "recipient": recipient}
            return _record_failure(message, claim_token, error=str(exc), permanent=permanent, **sent_as)
        except Exception as record_exc:
            raise ResultNotRecordedError(f"message {message.pk}: failure not recorded") from record_exc

    # Recorded even if the row was re-claimed meanwhile: the message did go out, and a
    # sender holding the newer claim then finds it sent and does nothing.
    try:
        Message.objects.filter(pk=message.pk, status__in=OPEN_STATUSES).update(
            status=MessageStatus.SENT,
            sent_at=timezone.now(),
            provider_message_id=provider_id[:200],
            subject=subject,
            body=body,
            recipient=recipient,
            attempts=F("attempts") + 1,
            last_error="",
            lease_until=None,
            updated_at=timezone.now(),
        )
    except Exception as exc:
        raise ResultNotRecordedError(f"message {message.pk} was sent but not recorded") from exc
    return "sent"


def _record_failure(message: Message, claim_token: str, *, error: str, permanent: bool, **sent_as: str) -> str:
    """One UPDATE of the held row: failed (refused, or out of attempts) or back to
    scheduled with exponential backoff; the attempt, error and rendered text recorded."""
    attempts = message.attempts + 1
    if permanent or attempts >= settings.MESSAGE_MAX_ATTEMPTS:
        reason = "provider refused it" if permanent else f"gave up after {attempts} attempts"
        outcome, fields = "failed", {"status": MessageStatus.FAILED, "reason": reason}
    else:
        outcome = "retry"
        fields = {"status": MessageStatus.SCHEDULED, "due_at": timezone.now() + _retry_delay(attempts)}
    released = _release(message, claim_token, attempts=attempts, last_error=error[:2000], **fields, **sent_as)
    return outcome if released else "stale"


def messages_send(*, message_ids: list[int], claim_token: str) -> dict[int, str]:
    """Deliver a chunk of messages claimed together, one after the other.

    The chunk reads its rows (with patients, what they are about, clinic, policy and
    templates) in a few queries, and reads the rows it has not sent yet again whenever
    that read is older than MESSAGE_RECHECK_SECONDS: every message is re-checked (still
    held, still applies, consent, cut-off, quiet hours) at most that long before its own
    send. Each result is its own UPDATE, committed before the next send, so a crash
    repeats at most the one send in flight.

    One message cannot fail the others: an unexpected error is logged and leaves that row
    `sending`, so its lease runs out and the sweeper takes it again (counted as an
    attempt, given up after MESSAGE_MAX_ATTEMPTS). Only a result that cannot be recorded
    stops the chunk (ResultNotRecordedError); the rows not reached wait for their lease.
    Returns the outcome per id ("error" for an unexpected error).
    """
    recheck = dt.timedelta(seconds=settings.MESSAGE_RECHECK_SECONDS)
    outcomes: dict[int, str] = {}
    clinics: dict[int, _ClinicSetup] = {}
    held: dict[int, Message] = {}
    read_at: dt.datetime | None = None
    one_by_one = recheck <= dt.timedelta(0)
    for index, message_id in enumerate(message_ids):
        now = timezone.now()
        later_ids = message_ids[index + 1 :]
        if not one_by_one and (read_at is None or now - read_at > recheck):
            try:
                clinics = {}
                held, read_at = _messages_fetch([message_id, *later_ids], claim_token, clinics), now
            except Exception:
                # Something in the batch read fails (e.g. a row it cannot load): read one at a
                # time from here on, so it fails only the message it is about.
                log.exception("messages %s: reading them together failed; reading one at a time", message_ids[index:])
                one_by_one = True
        try:
            if one_by_one:
                clinics = {}
                held = _messages_fetch([message_id], claim_token, clinics)
            message = held.pop(message_id, None)
            if message is None:
                outcomes[message_id] = "stale"
                continue
            policy = clinics[message.clinic_id].policy
            outcomes[message_id] = _message_deliver(message, claim_token, policy, list(held.values()), now)
        except ResultNotRecordedError:
            raise
        except Exception:
            log.exception("message %s: not sent; it is taken again when its claim runs out", message_id)
            outcomes[message_id] = "error"
    return outcomes
