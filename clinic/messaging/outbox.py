"""The outbox engine's writing side: a domain's trigger says which messages it wants about
an object (`Planned` rows) and `messages_reconcile` makes the open rows match, inside the
caller's transaction; the sweeper delivers them after commit (clinic.messaging.sending).

The engine knows no domain. Each app that sends messages owns its triggers and templates
(`sessions/messages.py`, `intake/messages.py`) and plugs in from its AppConfig.ready():
`validity_check_register` (does a message still apply when it is due?),
`message_about_register` (what messages are about, for the log and for rendering) and
`clinic.messaging.render.context_provider_register` (template context).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.urls import reverse
from django.utils import timezone

from clinic.celery import task_named
from clinic.degrade import publish
from clinic.models import (
    Clinic,
    Message,
    MessageChannel,
    MessageKind,
    MessageStatus,
    ReminderPolicy,
)

log = logging.getLogger(__name__)
UTC = dt.UTC
OPEN_STATUSES = (MessageStatus.SCHEDULED, MessageStatus.SENDING)


# --- policy ---------------------------------------------------------------------------


def reminder_policy_for(clinic: Clinic) -> ReminderPolicy:
    """The clinic's policy, or the defaults (unsaved) when it never set one."""
    policy = ReminderPolicy.objects.filter(clinic=clinic).first()
    return policy or ReminderPolicy(clinic=clinic)


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


def channel_problem(patient, channel: str) -> str:
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


def channel_choose(patient, wanted: str | None = None) -> tuple[str, str]:
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


def start_ref(start: dt.datetime) -> str:
    return start.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def _kick_sweeper() -> None:
    """Send due rows now rather than at the next beat tick; with the broker down they wait for it."""
    publish(task_named("clinic.tasks.dispatch_due_messages"))


def messages_reconcile(
    *,
    clinic: Clinic,
    patient,
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
def staff_alerts_create(
    *, clinic: Clinic, patient, about: models.Model, kind: str, users: list, target: str, ref: str = "1"
) -> list[Message]:
    """One email per staff member in `users` about `about` (e.g. an intake link whose answers
    need review), due now and sent even in quiet hours. The email carries only a link to
    `clinic.messaging.alerts.staff_alert_open`, which audits the opening and sends the signed-in
    staff member on to `target` (a staff page that applies its own access rules). Call it in the transaction of the
    change that causes it: the alert exists exactly when the change commits (never lost).

    The unique key (about, kind, channel, occurrence = "<ref>:user-<id>") makes a second
    alert to the same person about the same thing impossible whatever path writes it; a
    second call changes nothing. Returns every alert of `kind` about `about`.
    """
    about_type = ContentType.objects.get_for_model(about)
    now = timezone.now()
    rows = []
    for user in {user.pk: user for user in users}.values():
        row = Message(
            clinic=clinic,
            kind=kind,
            patient=patient,
            to_user=user,
            channel=MessageChannel.EMAIL,
            about_type=about_type,
            about_id=about.pk,
            occurrence=f"{ref}:user-{user.pk}"[:80],
            context={"target": target},
            due_at=now,
            immediate=True,
            status=MessageStatus.SCHEDULED if user.email else MessageStatus.SKIPPED,
            reason="" if user.email else "staff member has no email address",
        )
        # The database enforces the keys: a row it already holds is skipped below, not refused here.
        row.full_clean(
            exclude=["clinic", "patient", "about_type", "to_user"], validate_unique=False, validate_constraints=False
        )
        rows.append(row)
    # ON CONFLICT DO NOTHING: rows the unique key already holds are not written again.
    Message.objects.bulk_create(rows, ignore_conflicts=True)
    if rows:
        transaction.on_commit(_kick_sweeper)
    return list(Message.objects.filter(about_type=about_type, about_id=about.pk, kind=kind).order_by("id"))


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


for _kind in MessageKind.values:
    validity_check_register(_kind, _about_exists)


def message_about_model(message: Message) -> type[models.Model] | None:
    # ContentType's own per-process cache: no query per message.
    return ContentType.objects.get_for_id(message.about_type_id).model_class()


_ABOUT_RELATED: dict[type[models.Model], tuple[str, ...]] = {}
_ABOUT_NAMES: dict[str, type[models.Model]] = {}


def message_about_register(name: str, model: type[models.Model], *, select_related: tuple[str, ...] = ()) -> None:
    """Declare a kind of object messages are about: `name` is its filter in the message log
    (`?appointment=12`), `select_related` what rendering reads through it. Called from the
    owning app's AppConfig.ready()."""
    _ABOUT_NAMES[name] = model
    _ABOUT_RELATED[model] = select_related


def message_about_models() -> dict[str, type[models.Model]]:
    return dict(_ABOUT_NAMES)


def _about_queryset(model: type[models.Model]) -> models.QuerySet:
    queryset = model._default_manager.all()
    if _ABOUT_RELATED.get(model):
        queryset = queryset.select_related(*_ABOUT_RELATED[model])
    return queryset.order_by()


def message_about(message: Message) -> models.Model | None:
    """The object the message is about (None if deleted), fetched once per message."""
    if not hasattr(message, "_about"):
        message._about = next(iter(_about_queryset(message_about_model(message)).filter(pk=message.about_id)), None)
    return message._about


def messages_about_prefetch(messages: list[Message]) -> None:
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
