"""The mechanics under every booking: domain errors, validation, locking order, placing an
appointment in a room and a location, saving under the exclusion constraints, recording its
history and announcing it. Used by `booking` and `waitlist`; callers use their services."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from clinic.models import Clinic, Practitioner, Room, Service, User, WebhookEventType
from clinic.webhooks.delivery import webhook_event_emit
from patients.models import Patient
from sessions.availability import is_aligned, working_window_for
from sessions.messages import appointment_messages_sync
from sessions.models import (
    MAX_APPOINTMENT_SPAN,
    Appointment,
    AppointmentChange,
)

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
        super().__init__(self.message(dt.UTC))

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
        """For people (the API's 409 `detail`, the admin's form error): the clashing time on the
        clinic's wall clock with the zone named, and which appointment holds it."""
        first = self.clashes[0]
        start, end = first.start.astimezone(tz), first.end.astimezone(tz)
        until = f"{end:%H:%M}" if end.date() == start.date() else f"{end:%H:%M} on {_day(end)}"
        return (
            f"The {first.resource} is already booked from {start:%H:%M} to {until} on {_day(start)} "
            f"({getattr(tz, 'key', tz)}), by appointment {first.appointment_id}."
        )


def _day(value: dt.datetime) -> str:
    return f"{value:%A} {value.day} {value:%B %Y}"


class InvalidTransitionError(Exception):
    """The appointment's current status does not allow this action (HTTP 409)."""


# --- helpers ---------------------------------------------------------------------------

NOT_FOUND = "Not found."


def same_clinic_check(clinic: Clinic, **objects) -> None:
    errors = {name: NOT_FOUND for name, obj in objects.items() if obj is not None and obj.clinic_id != clinic.pk}
    if errors:
        raise ValidationError(errors)


def booking_validate(
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
    same_clinic_check(clinic, patient=patient, practitioner=practitioner, service=service, room=room)
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


def clashes_find(
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


def as_utc(value: dt.datetime) -> dt.datetime:
    """Durations are added in UTC: adding to a zone-aware value adds wall-clock time, which is
    an hour off across a daylight-saving change."""
    return value.astimezone(dt.UTC)


def rows_lock(model, pks) -> None:
    """Row locks in primary-key order (every booking path locks in the same order)."""
    pks = sorted({pk for pk in pks if pk is not None})
    if pks:
        list(model.objects.select_for_update().filter(pk__in=pks).order_by("pk").values_list("pk", flat=True))


@dataclass
class Placement:
    location_id: int | None
    room: Room | None
    hours_override_by: User | None = None
    hours_override_reason: str = ""
    clashes: list[Clash] = field(default_factory=list)


def placement_find(
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
) -> Placement:
    """Checks hours, takes the locks, picks a room if needed and checks for clashes."""
    end = start + dt.timedelta(minutes=service.duration_minutes)
    until = end + dt.timedelta(minutes=service.buffer_minutes)
    window, reason = working_window_for(clinic=clinic, practitioner=practitioner, start=start, end=end)
    placement = Placement(location_id=window.location_id if window else None, room=room)
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

    rows_lock(Practitioner, {practitioner.pk, *lock_practitioners})
    clashes = clashes_find(
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
            rows_lock(Room, [candidate.pk])
            found = clashes_find(resource="room", start=start, until=until, exclude_id=exclude_id, room_id=candidate.pk)
            if not found:
                placement.room = candidate
                break
            room_clashes.extend(found)
        else:
            raise BookingConflictError(room_clashes)
    elif room is not None:
        rows_lock(Room, [room.pk])
        clashes = clashes_find(resource="room", start=start, until=until, exclude_id=exclude_id, room_id=room.pk)
        if clashes:
            raise BookingConflictError(clashes)

    if clinic.refuse_patient_overlap:
        rows_lock(Patient, [patient.pk])
        clashes = clashes_find(
            resource="patient", start=start, until=until, exclude_id=exclude_id, patient_id=patient.pk
        )
        if clashes:
            raise BookingConflictError(clashes)
    return placement


def save_or_conflict(appointment: Appointment) -> None:
    """Save; if the database's exclusion constraint refuses, report the clash it saw."""
    try:
        with transaction.atomic():
            appointment.save()
    except IntegrityError as exc:
        clashes = clashes_find(
            resource="practitioner",
            start=appointment.start,
            until=appointment.blocked_until,
            exclude_id=appointment.pk,
            practitioner_id=appointment.practitioner_id,
        )
        if appointment.room_id:
            clashes += clashes_find(
                resource="room",
                start=appointment.start,
                until=appointment.blocked_until,
                exclude_id=appointment.pk,
                room_id=appointment.room_id,
            )
        if not clashes:
            raise
        raise BookingConflictError(clashes) from exc


def history_record(appointment: Appointment, kind: str, by: User | None, **values) -> AppointmentChange:
    return AppointmentChange.objects.create(appointment=appointment, kind=kind, at=timezone.now(), by=by, **values)


def appointment_announce(appointment: Appointment, event: WebhookEventType, *, clinic_cancelled: bool = False) -> None:
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
