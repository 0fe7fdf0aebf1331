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
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from clinic.models import Clinic, Practitioner, Room, SeriesConflictMode, Service, User, WebhookEventType
from intake.messages import intake_nudge_schedule
from intake.models import IntakeLink, IntakeLinkStatus
from patients.models import Patient
from sessions.messages import followup_nudges_rebooked
from sessions.models import (
    Appointment,
    AppointmentChangeKind,
    AppointmentSeries,
    AppointmentStatus,
    CancelledBy,
    ConfirmedVia,
    OfferStatus,
    WaitlistEntry,
    WaitlistOffer,
    WaitlistStatus,
)
from sessions.services.placement import (
    BookingConflictError,
    InvalidTransitionError,
    appointment_announce,
    as_utc,
    booking_validate,
    history_record,
    placement_find,
    rows_lock,
    save_or_conflict,
)
from sessions.services.waitlist import waitlist_match_freed_slot

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
    booking_validate(
        clinic=clinic,
        patient=patient,
        practitioner=practitioner,
        service=service,
        room=room,
        start=start,
        now=now,
        allow_past=allow_past,
    )
    start = as_utc(start)
    placement = placement_find(
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
    # the instances checked by `booking_validate`: validating either again would only repeat
    # queries (one per foreign key) on the busiest write path.
    appointment.full_clean(exclude=_RELATED, validate_constraints=False)
    save_or_conflict(appointment)
    history_record(appointment, AppointmentChangeKind.BOOKED, booked_by, new_start=start, new_status=appointment.status)
    appointment_announce(appointment, WebhookEventType.APPOINTMENT_CREATED)
    followup_nudges_rebooked(appointment=appointment)
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
    start = as_utc(start)
    locked = Appointment.objects.select_for_update().get(pk=appointment.pk)
    if locked.status not in _MOVABLE:
        raise InvalidTransitionError(f"A {locked.get_status_display().lower()} appointment cannot be moved.")
    clinic = locked.clinic
    new_practitioner = practitioner or locked.practitioner
    booking_validate(
        clinic=clinic,
        patient=locked.patient,
        practitioner=new_practitioner,
        service=locked.service,
        room=room,
        start=start,
        now=timezone.now(),
        allow_past=False,
    )
    placement = placement_find(
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
        # moving a colleague's booking onto themselves makes no care relationship (clinic.security.access).
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
    save_or_conflict(locked)
    history_record(
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
    appointment_announce(locked, WebhookEventType.APPOINTMENT_UPDATED)
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


# The status lifecycle in one table: each status an appointment can be moved to, and the
# statuses it may come from. Rescheduling keeps the status and needs one of _MOVABLE.
TRANSITIONS: dict[AppointmentStatus, tuple[AppointmentStatus, ...]] = {
    AppointmentStatus.CONFIRMED: (AppointmentStatus.BOOKED,),
    AppointmentStatus.ARRIVED: _MOVABLE,
    AppointmentStatus.COMPLETED: (AppointmentStatus.ARRIVED,),
    AppointmentStatus.NO_SHOW: _MOVABLE,
    AppointmentStatus.CANCELLED: _MOVABLE,
}


def _transition(
    appointment: Appointment,
    *,
    to: AppointmentStatus,
    by: User | None,
    reason: str = "",
    **fields,
) -> Appointment:
    # A conditional UPDATE: of two racing requests exactly one changes the row.
    changed = Appointment.objects.filter(pk=appointment.pk, status__in=TRANSITIONS[to]).update(
        status=to, sequence=F("sequence") + 1, updated_at=timezone.now(), **fields
    )
    old_status = appointment.status
    appointment.refresh_from_db()
    if not changed:
        raise InvalidTransitionError(
            f"A {appointment.get_status_display().lower()} appointment cannot become {to.label.lower()}."
        )
    history_record(
        appointment, AppointmentChangeKind.STATUS, by, old_status=old_status, new_status=to, reason=reason[:200]
    )
    return appointment


@transaction.atomic
def appointment_confirm(
    *, appointment: Appointment, by: User | None = None, via: ConfirmedVia | str = ConfirmedVia.STAFF
) -> Appointment:
    reason = "" if via == ConfirmedVia.STAFF else ConfirmedVia(via).label
    fields = {"confirmed_at": timezone.now(), "confirmed_via": ConfirmedVia(via)}
    changed = _transition(appointment, to=AppointmentStatus.CONFIRMED, by=by, reason=reason, **fields)
    appointment_announce(changed, WebhookEventType.APPOINTMENT_UPDATED)
    return changed


@transaction.atomic
def appointment_check_in(*, appointment: Appointment, by: User | None = None) -> Appointment:
    changed = _transition(appointment, to=AppointmentStatus.ARRIVED, by=by)
    appointment_announce(changed, WebhookEventType.APPOINTMENT_UPDATED)
    return changed


@transaction.atomic
def appointment_complete(*, appointment: Appointment, by: User | None = None) -> Appointment:
    changed = _transition(appointment, to=AppointmentStatus.COMPLETED, by=by)
    appointment_announce(changed, WebhookEventType.APPOINTMENT_UPDATED)
    return changed


@transaction.atomic
def appointment_no_show(*, appointment: Appointment, by: User | None = None, reason: str = "") -> Appointment:
    """The patient did not come; `reason` (the front desk's note) goes into the history."""
    if appointment.start > timezone.now():
        raise ValidationError({"status": "An appointment that has not started yet cannot be a no-show."})
    changed = _transition(appointment, to=AppointmentStatus.NO_SHOW, by=by, reason=reason)
    appointment_announce(changed, WebhookEventType.APPOINTMENT_UPDATED)
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
        by=by,
        reason=reason,
        cancelled_at=now,
        cancelled_by=by,
        cancelled_by_party=party,
        cancellation_reason=reason[:200],
        late_cancellation=late,
    )
    # Only when the clinic cancels is the patient told; a patient who cancelled already knows.
    appointment_announce(
        cancelled, WebhookEventType.APPOINTMENT_CANCELLED, clinic_cancelled=party == CancelledBy.CLINIC
    )
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
    booking_validate(
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


@transaction.atomic
def waitlist_offer_accept(*, offer: WaitlistOffer, by: User | None = None) -> WaitlistOffer:
    """Book the offered slot. Returns the offer: `accepted` (with its appointment), `expired`
    or `taken` (another patient accepted first, or the slot was booked meanwhile)."""
    # Lock order as in booking: the practitioner first, then the offer. Locking the offer first
    # deadlocks two accepts of one slot (each holds its offer and waits for the other's).
    practitioner_id = WaitlistOffer.objects.values_list("practitioner_id", flat=True).get(pk=offer.pk)
    rows_lock(Practitioner, [practitioner_id])
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
