"""Writes for booking: appointments, series, waitlist offers and calendar feeds.

The API, the admin, the demo seed and the Celery tasks all call these functions.

No double booking, in two layers:
1. Before checking, the booking transaction locks the practitioner's row (then the room's,
   then the patient's, always in that order, so two bookings cannot deadlock). Concurrent
   bookings of the same practitioner queue on that lock; the second one sees the first
   one's row and is refused with `BookingConflictError`, which the API turns into a 409 that
   names the conflicting time.
2. On PostgreSQL the exclusion constraints on `Appointment` refuse any overlapping active
   row whatever path wrote it; an `IntegrityError` from them also becomes `BookingConflictError`.
On SQLite (`transaction_mode=IMMEDIATE`) writers are serialized, so the check in 1 holds.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass, field

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from clinic.messaging import appointment_messages_sync, intake_nudge_schedule, waitlist_offer_message_create
from clinic.models import Clinic, Practitioner, Room, SeriesConflictMode, Service, User, WebhookEventType
from clinic.webhooks import webhook_event_emit
from intake.models import IntakeLink, IntakeLinkStatus
from patients.models import Patient
from sessions.availability import is_aligned, working_window_for
from sessions.models import (
    MAX_APPOINTMENT_SPAN,
    Appointment,
    AppointmentChange,
    AppointmentChangeKind,
    AppointmentSeries,
    AppointmentStatus,
    CalendarFeed,
    CancelledBy,
    OfferStatus,
    WaitlistEntry,
    WaitlistOffer,
    WaitlistStatus,
)

# How long a waitlist offer stays open (never past the slot itself), and how many
# waiting patients are offered one freed slot at once (the first to accept gets it).
WAITLIST_OFFER_TTL = dt.timedelta(hours=2)
WAITLIST_OFFERS_PER_SLOT = 3


# --- domain errors ---------------------------------------------------------------------


@dataclass(frozen=True)
class Clash:
    """An active appointment in the way: which resource, and the time it holds."""

    resource: str  # "practitioner", "room" or "patient"
    appointment_id: int
    start: dt.datetime
    end: dt.datetime  # end of the occupied time, buffer included


class BookingConflictError(Exception):
    """The time is taken. The API answers 409 with the conflicting time."""

    def __init__(self, clashes: list[Clash]):
        self.clashes = clashes
        first = clashes[0]
        super().__init__(
            f"The {first.resource} is already booked from {first.start.isoformat()} to {first.end.isoformat()}."
        )

    def describe(self, tz) -> list[dict]:
        return [
            {
                "resource": c.resource,
                "appointment": c.appointment_id,
                "start": c.start.astimezone(tz).isoformat(),
                "end": c.end.astimezone(tz).isoformat(),
            }
            for c in self.clashes
        ]

    def message(self, tz) -> str:
        first = self.clashes[0]
        return (
            f"The {first.resource} is already booked from {first.start.astimezone(tz).isoformat()} "
            f"to {first.end.astimezone(tz).isoformat()}."
        )


class InvalidTransitionError(Exception):
    """The appointment's current status does not allow this action (HTTP 409)."""


# --- helpers ---------------------------------------------------------------------------

_NOT_FOUND = "Not found."


def _same_clinic(clinic: Clinic, **objects) -> None:
    errors = {name: _NOT_FOUND for name, obj in objects.items() if obj is not None and obj.clinic_id != clinic.pk}
    if errors:
        raise ValidationError(errors)


def _validate_booking(
    *,
    clinic: Clinic,
    patient: Patient,
    practitioner: Practitioner,
    service: Service,
    room: Room | None,
    start: dt.datetime,
    now: dt.datetime,
    allow_past: bool,
) -> None:
    _same_clinic(clinic, patient=patient, practitioner=practitioner, service=service, room=room)
    errors: dict[str, str] = {}
    if timezone.is_naive(start):
        raise ValidationError({"start": "Give the time with its UTC offset (e.g. 2027-03-01T10:00:00-05:00)."})
    if patient.is_archived:
        errors["patient"] = "This patient is archived."
    if not practitioner.is_active:
        errors["practitioner"] = "This practitioner is inactive."
    if not service.is_active:
        errors["service"] = "This service is no longer offered."
    elif dt.timedelta(minutes=service.duration_minutes + service.buffer_minutes) > MAX_APPOINTMENT_SPAN:
        errors["service"] = f"An appointment with its buffer may last at most {MAX_APPOINTMENT_SPAN}."
    elif not practitioner.services.filter(pk=service.pk).exists():
        errors["service"] = f"{practitioner} does not offer {service.name}."
    if room is not None:
        if not room.is_active:
            errors["room"] = "This room is inactive."
        elif not room.services.filter(pk=service.pk).exists():
            errors["room"] = f"{room} does not allow {service.name}."
    if not is_aligned(start, clinic=clinic):
        errors["start"] = (
            f"Appointments start on multiples of {clinic.booking_granularity_minutes} minutes "
            f"in the clinic's time zone ({clinic.time_zone})."
        )
    elif start < now and not allow_past:
        errors["start"] = "That time is in the past."
    if errors:
        raise ValidationError(errors)


def _clashes(
    *,
    resource: str,
    start: dt.datetime,
    until: dt.datetime,
    exclude_id: int | None,
    **match,
) -> list[Clash]:
    rows = Appointment.objects.active().overlapping(start, until).filter(**match)
    if exclude_id:
        rows = rows.exclude(pk=exclude_id)
    return [Clash(resource, pk, s, e) for pk, s, e in rows.values_list("pk", "start", "blocked_until")[:3]]


def _utc(value: dt.datetime) -> dt.datetime:
    """Durations are added in UTC: adding to a zone-aware value adds wall-clock time, which is
    an hour off across a daylight-saving change."""
    return value.astimezone(dt.UTC)


def _lock(model, pks) -> None:
    """Row locks in primary-key order (every booking path locks in the same order)."""
    pks = sorted({pk for pk in pks if pk is not None})
    if pks:
        list(model.objects.select_for_update().filter(pk__in=pks).order_by("pk").values_list("pk", flat=True))


@dataclass
class _Placement:
    location_id: int | None
    room: Room | None
    hours_override_by: User | None = None
    hours_override_reason: str = ""
    clashes: list[Clash] = field(default_factory=list)


def _place(
    *,
    clinic: Clinic,
    patient: Patient,
    practitioner: Practitioner,
    service: Service,
    room: Room | None,
    start: dt.datetime,
    by: User | None,
    hours_override: bool,
    hours_override_reason: str,
    exclude_id: int | None = None,
    preferred_room: Room | None = None,
    lock_practitioners: tuple[int, ...] = (),
) -> _Placement:
    """Checks hours, takes the locks, picks a room if needed and checks for clashes."""
    end = start + dt.timedelta(minutes=service.duration_minutes)
    until = end + dt.timedelta(minutes=service.buffer_minutes)
    window, reason = working_window_for(clinic=clinic, practitioner=practitioner, start=start, end=end)
    placement = _Placement(location_id=window.location_id if window else None, room=room)
    if window is None:
        if not hours_override:
            raise ValidationError({"start": reason})
        if by is None or not hours_override_reason.strip():
            raise ValidationError({"hours_override_reason": "Say why this is booked outside working hours."})
        placement.hours_override_by = by
        placement.hours_override_reason = hours_override_reason.strip()
        placement.location_id = room.location_id if room else None
    if room is not None and room.location_id and window and room.location_id != window.location_id:
        raise ValidationError({"room": f"{room} is at another location than {practitioner}'s hours at that time."})

    _lock(Practitioner, {practitioner.pk, *lock_practitioners})
    clashes = _clashes(
        resource="practitioner", start=start, until=until, exclude_id=exclude_id, practitioner_id=practitioner.pk
    )
    if clashes:
        raise BookingConflictError(clashes)

    if room is None and service.requires_room:
        candidates = Room.objects.filter(clinic=clinic, is_active=True, services=service).order_by("pk")
        if placement.location_id:
            candidates = candidates.filter(Q(location_id=placement.location_id) | Q(location__isnull=True))
        candidates = list(candidates)
        if not candidates:
            raise ValidationError({"room": f"No room allows {service.name} here."})
        ordered = sorted(candidates, key=lambda r: (preferred_room is None or r.pk != preferred_room.pk, r.pk))
        room_clashes: list[Clash] = []
        for candidate in ordered:
            _lock(Room, [candidate.pk])
            found = _clashes(resource="room", start=start, until=until, exclude_id=exclude_id, room_id=candidate.pk)
            if not found:
                placement.room = candidate
                break
            room_clashes.extend(found)
        else:
            raise BookingConflictError(room_clashes)
    elif room is not None:
        _lock(Room, [room.pk])
        clashes = _clashes(resource="room", start=start, until=until, exclude_id=exclude_id, room_id=room.pk)
        if clashes:
            raise BookingConflictError(clashes)

    if clinic.refuse_patient_overlap:
        _lock(Patient, [patient.pk])
        clashes = _clashes(resource="patient", start=start, until=until, exclude_id=exclude_id, patient_id=patient.pk)
        if clashes:
            raise BookingConflictError(clashes)
    return placement


def _save_or_conflict(appointment: Appointment) -> None:
    """Save; if the database's exclusion constraint refuses, report the clash it saw."""
    try:
        with transaction.atomic():
            appointment.save()
    except IntegrityError as exc:
        clashes = _clashes(
            resource="practitioner",
            start=appointment.start,
            until=appointment.blocked_until,
            exclude_id=appointment.pk,
            practitioner_id=appointment.practitioner_id,
        )
        if appointment.room_id:
            clashes += _clashes(
                resource="room",
                start=appointment.start,
                until=appointment.blocked_until,
                exclude_id=appointment.pk,
                room_id=appointment.room_id,
            )
        if not clashes:
            raise
        raise BookingConflictError(clashes) from exc


def _record(appointment: Appointment, kind: str, by: User | None, **values) -> AppointmentChange:
    return AppointmentChange.objects.create(appointment=appointment, kind=kind, at=timezone.now(), by=by, **values)


def _announce(appointment: Appointment, event: WebhookEventType, *, clinic_cancelled: bool = False) -> None:
    """Bring the patient's messages in line with the appointment and tell the webhooks, in the
    caller's transaction: both exist exactly when the change commits."""
    appointment_messages_sync(appointment=appointment, clinic_cancelled=clinic_cancelled)
    payload = {
        "appointment_id": appointment.pk,
        "patient_id": appointment.patient_id,
        "practitioner_id": appointment.practitioner_id,
        "service_id": appointment.service_id,
        "start": appointment.start,
        "end": appointment.end,
        "status": appointment.status,
    }
    webhook_event_emit(clinic=appointment.clinic, event=event, payload=payload)


# --- appointments ----------------------------------------------------------------------


@transaction.atomic
def appointment_book(
    *,
    clinic: Clinic,
    patient: Patient,
    practitioner: Practitioner,
    service: Service,
    start: dt.datetime,
    room: Room | None = None,
    booked_by: User | None = None,
    notes: str = "",
    hours_override: bool = False,
    hours_override_reason: str = "",
    series: AppointmentSeries | None = None,
    allow_past: bool = False,
) -> Appointment:
    """Book one appointment, or refuse with ValidationError (400) or BookingConflictError (409).

    `hours_override` books outside working hours; the caller checks the permission, this
    records who did it and why. `allow_past` is for recording visits after the fact (demo).
    """
    now = timezone.now()
    _validate_booking(
        clinic=clinic,
        patient=patient,
        practitioner=practitioner,
        service=service,
        room=room,
        start=start,
        now=now,
        allow_past=allow_past,
    )
    start = _utc(start)
    placement = _place(
        clinic=clinic,
        patient=patient,
        practitioner=practitioner,
        service=service,
        room=room,
        start=start,
        by=booked_by,
        hours_override=hours_override,
        hours_override_reason=hours_override_reason,
    )
    end = start + dt.timedelta(minutes=service.duration_minutes)
    appointment = Appointment(
        clinic=clinic,
        patient=patient,
        practitioner=practitioner,
        service=service,
        room=placement.room,
        location_id=placement.location_id,
        start=start,
        end=end,
        blocked_until=end + dt.timedelta(minutes=service.buffer_minutes),
        notes=notes,
        series=series,
        booked_by=booked_by,
        hours_override_by=placement.hours_override_by,
        hours_override_reason=placement.hours_override_reason,
    )
    # The exclusion constraints were checked above under the locks, and the related rows are
    # the instances checked by `_validate_booking`: validating either again would only repeat
    # queries (one per foreign key) on the busiest write path.
    appointment.full_clean(exclude=_RELATED, validate_constraints=False)
    _save_or_conflict(appointment)
    _record(appointment, AppointmentChangeKind.BOOKED, booked_by, new_start=start, new_status=appointment.status)
    _announce(appointment, WebhookEventType.APPOINTMENT_CREATED)
    return appointment


_MOVABLE = (AppointmentStatus.BOOKED, AppointmentStatus.CONFIRMED)
_RELATED = [f.name for f in Appointment._meta.get_fields() if f.many_to_one and f.concrete]


@transaction.atomic
def appointment_reschedule(
    *,
    appointment: Appointment,
    start: dt.datetime,
    practitioner: Practitioner | None = None,
    room: Room | None = None,
    by: User | None = None,
    reason: str = "",
    hours_override: bool = False,
    hours_override_reason: str = "",
) -> Appointment:
    """Move an appointment (time, and optionally practitioner or room); the old values go to its history.
    A move to another practitioner makes `by` the appointment's `booked_by`.

    Without a `room`, a service that needs one keeps its room if free, else gets another.
    The freed time is offered to the waitlist.
    """
    if timezone.is_naive(start):
        raise ValidationError({"start": "Give the time with its UTC offset (e.g. 2027-03-01T10:00:00-05:00)."})
    start = _utc(start)
    locked = Appointment.objects.select_for_update().get(pk=appointment.pk)
    if locked.status not in _MOVABLE:
        raise InvalidTransitionError(f"A {locked.get_status_display().lower()} appointment cannot be moved.")
    clinic = locked.clinic
    new_practitioner = practitioner or locked.practitioner
    _validate_booking(
        clinic=clinic,
        patient=locked.patient,
        practitioner=new_practitioner,
        service=locked.service,
        room=room,
        start=start,
        now=timezone.now(),
        allow_past=False,
    )
    placement = _place(
        clinic=clinic,
        patient=locked.patient,
        practitioner=new_practitioner,
        service=locked.service,
        room=room,
        start=start,
        by=by,
        hours_override=hours_override,
        hours_override_reason=hours_override_reason,
        exclude_id=locked.pk,
        preferred_room=locked.room,
        lock_practitioners=(locked.practitioner_id,),
    )
    old_start, old_practitioner_id, old_room_id = locked.start, locked.practitioner_id, locked.room_id
    freed = Appointment(
        pk=locked.pk,
        clinic=clinic,
        patient=locked.patient,
        practitioner_id=old_practitioner_id,
        service=locked.service,
        room_id=old_room_id,
        start=old_start,
        end=locked.end,
    )
    end = start + dt.timedelta(minutes=locked.service.duration_minutes)
    if new_practitioner.pk != old_practitioner_id:
        # Whoever puts the appointment with another practitioner books it with them: a therapist
        # moving a colleague's booking onto themselves makes no care relationship (clinic.access).
        locked.booked_by = by
    locked.practitioner = new_practitioner
    locked.room = placement.room
    locked.location_id = placement.location_id
    locked.start = start
    locked.end = end
    locked.blocked_until = end + dt.timedelta(minutes=locked.service.buffer_minutes)
    locked.hours_override_by = placement.hours_override_by
    locked.hours_override_reason = placement.hours_override_reason
    locked.sequence += 1
    locked.full_clean(validate_constraints=False)
    _save_or_conflict(locked)
    _record(
        locked,
        AppointmentChangeKind.RESCHEDULED,
        by,
        old_start=old_start,
        new_start=start,
        old_practitioner_id=old_practitioner_id,
        new_practitioner_id=new_practitioner.pk,
        old_room_id=old_room_id,
        new_room_id=locked.room_id,
        reason=reason[:200],
    )
    _announce(locked, WebhookEventType.APPOINTMENT_UPDATED)
    _intake_nudges_move(locked)
    waitlist_match_freed_slot(appointment=freed)
    return locked


def _intake_nudges_move(appointment: Appointment) -> None:
    """An open intake tied to a moved appointment is nudged before the new time (the old nudge is cancelled)."""
    links = IntakeLink.objects.filter(appointment=appointment, status=IntakeLinkStatus.OPEN).select_related(
        "patient__clinic"
    )
    for link in links:
        intake_nudge_schedule(patient=link.patient, about=link, appointment=appointment, url=link.url)


def _transition(
    appointment: Appointment,
    *,
    to: AppointmentStatus,
    allowed_from: tuple[AppointmentStatus, ...],
    by: User | None,
    reason: str = "",
    **fields,
) -> Appointment:
    # A conditional UPDATE: of two racing requests exactly one changes the row.
    changed = Appointment.objects.filter(pk=appointment.pk, status__in=allowed_from).update(
        status=to, sequence=F("sequence") + 1, updated_at=timezone.now(), **fields
    )
    old_status = appointment.status
    appointment.refresh_from_db()
    if not changed:
        raise InvalidTransitionError(
            f"A {appointment.get_status_display().lower()} appointment cannot become {to.label.lower()}."
        )
    _record(appointment, AppointmentChangeKind.STATUS, by, old_status=old_status, new_status=to, reason=reason[:200])
    return appointment


@transaction.atomic
def appointment_confirm(*, appointment: Appointment, by: User | None = None) -> Appointment:
    changed = _transition(appointment, to=AppointmentStatus.CONFIRMED, allowed_from=(AppointmentStatus.BOOKED,), by=by)
    _announce(changed, WebhookEventType.APPOINTMENT_UPDATED)
    return changed


@transaction.atomic
def appointment_check_in(*, appointment: Appointment, by: User | None = None) -> Appointment:
    changed = _transition(appointment, to=AppointmentStatus.ARRIVED, allowed_from=_MOVABLE, by=by)
    _announce(changed, WebhookEventType.APPOINTMENT_UPDATED)
    return changed


@transaction.atomic
def appointment_complete(*, appointment: Appointment, by: User | None = None) -> Appointment:
    changed = _transition(appointment, to=AppointmentStatus.COMPLETED, allowed_from=(AppointmentStatus.ARRIVED,), by=by)
    _announce(changed, WebhookEventType.APPOINTMENT_UPDATED)
    return changed


@transaction.atomic
def appointment_no_show(*, appointment: Appointment, by: User | None = None) -> Appointment:
    if appointment.start > timezone.now():
        raise ValidationError({"status": "An appointment that has not started yet cannot be a no-show."})
    changed = _transition(appointment, to=AppointmentStatus.NO_SHOW, allowed_from=_MOVABLE, by=by)
    _announce(changed, WebhookEventType.APPOINTMENT_UPDATED)
    return changed


@transaction.atomic
def appointment_cancel(
    *,
    appointment: Appointment,
    by: User | None = None,
    party: CancelledBy | str = CancelledBy.CLINIC,
    reason: str = "",
) -> Appointment:
    """Cancel; late per the clinic's notice policy. The freed time is offered to the waitlist."""
    party = CancelledBy(party)
    now = timezone.now()
    notice = dt.timedelta(hours=appointment.clinic.cancellation_notice_hours)
    # Late-cancellation fees are about the patient's notice; the clinic cancelling is never late.
    late = party == CancelledBy.PATIENT and appointment.start - now < notice
    cancelled = _transition(
        appointment,
        to=AppointmentStatus.CANCELLED,
        allowed_from=_MOVABLE,
        by=by,
        reason=reason,
        cancelled_at=now,
        cancelled_by=by,
        cancelled_by_party=party,
        cancellation_reason=reason[:200],
        late_cancellation=late,
    )
    # Only when the clinic cancels is the patient told; a patient who cancelled already knows.
    _announce(cancelled, WebhookEventType.APPOINTMENT_CANCELLED, clinic_cancelled=party == CancelledBy.CLINIC)
    waitlist_match_freed_slot(appointment=cancelled)
    return cancelled


# --- recurring series ------------------------------------------------------------------


@dataclass
class SeriesResult:
    series: AppointmentSeries | None
    booked: list[Appointment]
    skipped: list[dict]  # {"start", "reason", "conflicts"}


class SeriesConflictError(Exception):
    """In "fail" mode: at least one occurrence could not be booked, so none was."""

    def __init__(self, skipped: list[dict]):
        self.skipped = skipped
        super().__init__(f"{len(skipped)} occurrence(s) could not be booked; nothing was booked.")


def series_starts(*, clinic: Clinic, first: dt.datetime, interval_days: int, occurrences: int) -> list[dt.datetime]:
    """Occurrence starts at the same wall-clock time in the clinic's zone (10:00 stays 10:00 across DST)."""
    local = first.astimezone(clinic.tz)
    return [
        dt.datetime.combine(local.date() + dt.timedelta(days=i * interval_days), local.time(), tzinfo=clinic.tz)
        for i in range(occurrences)
    ]


@transaction.atomic
def appointment_series_book(
    *,
    clinic: Clinic,
    patient: Patient,
    practitioner: Practitioner,
    service: Service,
    start: dt.datetime,
    occurrences: int,
    interval_days: int = 7,
    room: Room | None = None,
    booked_by: User | None = None,
    notes: str = "",
) -> SeriesResult:
    """Book `occurrences` appointments every `interval_days`.

    Errors in the request itself (ids, alignment, a service not offered) refuse the whole
    series with a ValidationError. An occurrence that clashes or falls outside working
    hours fails the whole series (SeriesConflictError) or is skipped, per the clinic's
    `series_conflict_mode`.
    """
    if timezone.is_naive(start):
        raise ValidationError({"start": "Give the time with its UTC offset (e.g. 2027-03-01T10:00:00-05:00)."})
    series = AppointmentSeries(
        clinic=clinic,
        patient=patient,
        practitioner=practitioner,
        service=service,
        first_start=start,
        interval_days=interval_days,
        occurrences=occurrences,
        created_by=booked_by,
    )
    series.full_clean()
    _validate_booking(
        clinic=clinic,
        patient=patient,
        practitioner=practitioner,
        service=service,
        room=room,
        start=start,
        now=timezone.now(),
        allow_past=False,
    )
    series.save()
    booked: list[Appointment] = []
    skipped: list[dict] = []
    for occurrence in series_starts(clinic=clinic, first=start, interval_days=interval_days, occurrences=occurrences):
        try:
            with transaction.atomic():
                booked.append(
                    appointment_book(
                        clinic=clinic,
                        patient=patient,
                        practitioner=practitioner,
                        service=service,
                        start=occurrence,
                        room=room,
                        booked_by=booked_by,
                        notes=notes,
                        series=series,
                    )
                )
        except BookingConflictError as exc:
            skipped.append({"start": occurrence, "reason": exc.message(clinic.tz), "conflicts": exc.clashes})
        except ValidationError as exc:
            reasons = [m for messages in exc.message_dict.values() for m in messages]
            skipped.append({"start": occurrence, "reason": " ".join(reasons), "conflicts": []})
    if skipped and clinic.series_conflict_mode == SeriesConflictMode.FAIL:
        raise SeriesConflictError(skipped)
    if not booked:
        raise SeriesConflictError(skipped)
    return SeriesResult(series=series, booked=booked, skipped=skipped)


# --- waitlist --------------------------------------------------------------------------


@transaction.atomic
def waitlist_entry_create(
    *,
    clinic: Clinic,
    patient: Patient,
    service: Service,
    window_start: dt.datetime,
    window_end: dt.datetime,
    practitioner: Practitioner | None = None,
    created_by: User | None = None,
    notes: str = "",
) -> WaitlistEntry:
    _same_clinic(clinic, patient=patient, service=service, practitioner=practitioner)
    if practitioner is not None and not practitioner.services.filter(pk=service.pk).exists():
        raise ValidationError({"service": f"{practitioner} does not offer {service.name}."})
    if window_end <= timezone.now():
        raise ValidationError({"window_end": "The window has already passed."})
    entry = WaitlistEntry(
        clinic=clinic,
        patient=patient,
        service=service,
        practitioner=practitioner,
        window_start=window_start,
        window_end=window_end,
        created_by=created_by,
        notes=notes,
    )
    entry.full_clean()
    entry.save()
    return entry


@transaction.atomic
def waitlist_entry_withdraw(*, entry: WaitlistEntry) -> WaitlistEntry:
    changed = WaitlistEntry.objects.filter(pk=entry.pk, status=WaitlistStatus.WAITING).update(
        status=WaitlistStatus.WITHDRAWN
    )
    if not changed:
        entry.refresh_from_db()
        raise InvalidTransitionError(f"This entry is {entry.get_status_display().lower()}.")
    WaitlistOffer.objects.filter(entry=entry, status=OfferStatus.PENDING).update(status=OfferStatus.DECLINED)
    entry.refresh_from_db()
    return entry


@transaction.atomic
def waitlist_offer_create(
    *, entry: WaitlistEntry, practitioner: Practitioner, room: Room | None, start: dt.datetime, freed_by=None
) -> WaitlistOffer:
    """One offer row and its message to the patient (due now, not sent after the offer
    expires), in one transaction: the message exists exactly when the offer does."""
    now = timezone.now()
    offer = WaitlistOffer(
        clinic_id=entry.clinic_id,
        entry=entry,
        practitioner=practitioner,
        room=room,
        start=start,
        expires_at=min(now + WAITLIST_OFFER_TTL, start),
        freed_by=freed_by if freed_by is not None and freed_by.pk else None,
    )
    offer.full_clean(validate_constraints=False)
    offer.save()
    waitlist_offer_message_create(
        patient=entry.patient, about=offer, url=waitlist_offer_link(offer), expires_at=offer.expires_at
    )
    return offer


def waitlist_offer_still_open(message, offer: WaitlistOffer | None) -> str:
    """The outbox's last check before sending an offer: '' while the patient can still accept it."""
    if offer is None:
        return "offer no longer exists"
    if offer.status != OfferStatus.PENDING:
        return f"offer {offer.get_status_display().lower()}"
    if offer.expires_at <= timezone.now():
        return "offer expired"
    return ""


_OFFER_SALT = "sessions.waitlist-offer"


def waitlist_offer_link(offer: WaitlistOffer) -> str:
    """The patient's public accept link for the offer message (signed, no login)."""
    token = signing.dumps(offer.pk, salt=_OFFER_SALT, compress=True)
    return f"{settings.PUBLIC_BASE_URL}/waitlist/offers/{token}/"


def waitlist_offer_from_token(token: str) -> WaitlistOffer | None:
    try:
        pk = signing.loads(token, salt=_OFFER_SALT)
    except signing.BadSignature:
        return None
    return (
        WaitlistOffer.objects.select_related("clinic", "practitioner", "entry__service").filter(pk=pk).first()
        if isinstance(pk, int)
        else None
    )


def waitlist_match_freed_slot(*, appointment: Appointment) -> list[WaitlistOffer]:
    """Offer the time `appointment` no longer holds to the oldest matching waiting patients.

    Matches: same clinic and service, the practitioner wanted (or any), the slot inside the
    patient's window, not the patient who freed it, no offer of this slot yet. Called inside
    the cancel/reschedule transaction, so offers exist only if the slot was really freed.
    """
    now = timezone.now()
    if appointment.start <= now:
        return []
    entries = (
        WaitlistEntry.objects.filter(
            clinic_id=appointment.clinic_id,
            service_id=appointment.service_id,
            status=WaitlistStatus.WAITING,
            window_start__lte=appointment.start,
            window_end__gte=appointment.end,
        )
        .filter(Q(practitioner__isnull=True) | Q(practitioner_id=appointment.practitioner_id))
        .exclude(patient_id=appointment.patient_id)
        .exclude(
            Exists(
                WaitlistOffer.objects.filter(
                    entry=OuterRef("pk"), practitioner_id=appointment.practitioner_id, start=appointment.start
                )
            )
        )
        .order_by("created_at", "pk")[:WAITLIST_OFFERS_PER_SLOT]
    )
    return [
        waitlist_offer_create(
            entry=entry,
            practitioner=appointment.practitioner,
            room=appointment.room,
            start=appointment.start,
            freed_by=appointment,
        )
        for entry in entries
    ]


@transaction.atomic
def waitlist_offer_accept(*, offer: WaitlistOffer, by: User | None = None) -> WaitlistOffer:
    """Book the offered slot. Returns the offer: `accepted` (with its appointment), `expired`
    or `taken` (another patient accepted first, or the slot was booked meanwhile)."""
    # Lock order as in booking: the practitioner first, then the offer. Locking the offer first
    # deadlocks two accepts of one slot (each holds its offer and waits for the other's).
    practitioner_id = WaitlistOffer.objects.values_list("practitioner_id", flat=True).get(pk=offer.pk)
    _lock(Practitioner, [practitioner_id])
    locked = WaitlistOffer.objects.select_for_update().select_related("entry", "clinic").get(pk=offer.pk)
    now = timezone.now()
    if locked.status != OfferStatus.PENDING:
        return locked
    if locked.expires_at <= now:
        locked.status, locked.responded_at = OfferStatus.EXPIRED, now
        locked.save(update_fields=["status", "responded_at"])
        return locked
    entry = locked.entry
    try:
        with transaction.atomic():
            appointment = appointment_book(
                clinic=locked.clinic,
                patient=entry.patient,
                practitioner=locked.practitioner,
                service=entry.service,
                start=locked.start,
                room=locked.room,
                # A patient accepting by link books on behalf of whoever put them on the waitlist:
                # a therapist who waitlisted a patient with themselves makes no care relationship.
                booked_by=by or entry.created_by,
            )
    except (BookingConflictError, ValidationError):
        locked.status, locked.responded_at = OfferStatus.TAKEN, now
        locked.save(update_fields=["status", "responded_at"])
        return locked
    locked.status, locked.responded_at, locked.appointment = OfferStatus.ACCEPTED, now, appointment
    locked.save(update_fields=["status", "responded_at", "appointment"])
    WaitlistEntry.objects.filter(pk=entry.pk).update(status=WaitlistStatus.BOOKED, appointment=appointment)
    # Everyone else offered this slot, and this patient's other open offers, are done.
    WaitlistOffer.objects.filter(status=OfferStatus.PENDING).filter(
        practitioner_id=locked.practitioner_id, start=locked.start
    ).update(status=OfferStatus.TAKEN, responded_at=now)
    WaitlistOffer.objects.filter(status=OfferStatus.PENDING, entry=entry).update(
        status=OfferStatus.TAKEN, responded_at=now
    )
    return locked


@transaction.atomic
def waitlist_offer_decline(*, offer: WaitlistOffer) -> WaitlistOffer:
    changed = WaitlistOffer.objects.filter(pk=offer.pk, status=OfferStatus.PENDING).update(
        status=OfferStatus.DECLINED, responded_at=timezone.now()
    )
    offer.refresh_from_db()
    if not changed:
        raise InvalidTransitionError(f"This offer is {offer.get_status_display().lower()}.")
    return offer


def waitlist_expire_due(*, now: dt.datetime | None = None) -> dict[str, int]:
    """The sweeper: expire pending offers whose time is up and lapse entries whose window passed.

    Conditional UPDATEs claim the rows, so two sweepers at once (or a rerun) change each row once.
    """
    now = now or timezone.now()
    offers = WaitlistOffer.objects.filter(status=OfferStatus.PENDING, expires_at__lte=now).update(
        status=OfferStatus.EXPIRED, responded_at=now
    )
    entries = WaitlistEntry.objects.filter(status=WaitlistStatus.WAITING, window_end__lte=now).update(
        status=WaitlistStatus.LAPSED
    )
    return {"offers_expired": offers, "entries_lapsed": entries}


# --- calendar feeds --------------------------------------------------------------------


def calendar_token_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@transaction.atomic
def calendar_feed_create(*, practitioner: Practitioner, created_by: User | None = None) -> tuple[CalendarFeed, str]:
    """A new secret feed URL token; returned once, stored as a digest."""
    raw = secrets.token_urlsafe(32)
    feed = CalendarFeed(
        clinic_id=practitioner.clinic_id,
        practitioner=practitioner,
        prefix=raw[:8],
        digest=calendar_token_digest(raw),
        created_by=created_by,
    )
    feed.full_clean()
    feed.save()
    return feed, raw


def calendar_feed_revoke(*, feed: CalendarFeed) -> None:
    CalendarFeed.objects.filter(pk=feed.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
