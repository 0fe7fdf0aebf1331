"""Demo booking data: weekly hours for the three demo practitioners and a week of
appointments, booked through the same service as the API. Idempotent: hours are matched by
their natural key, and a clinic that already has appointments keeps them."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from clinic.demo import demo_clinic
from clinic.models import Location, Practitioner, Room
from patients.models import Patient
from sessions.models import Appointment, WorkingHours
from sessions.services import appointment_book, appointment_check_in, appointment_complete

# Username -> (start, end) on Monday to Friday at the demo location.
HOURS = {
    "ava": (dt.time(9), dt.time(17)),
    "ben": (dt.time(9), dt.time(17)),
    "chen": (dt.time(13), dt.time(20)),
}


def _round_up(value: dt.datetime, minutes: int) -> dt.datetime:
    over = (value.hour * 60 + value.minute) % minutes
    return value if over == 0 else value + dt.timedelta(minutes=minutes - over)


@transaction.atomic
def seed_working_hours(clinic) -> int:
    location = Location.objects.filter(clinic=clinic).order_by("id").first()
    created = 0
    for practitioner in Practitioner.objects.filter(clinic=clinic, user__username__in=HOURS).select_related("user"):
        start, end = HOURS[practitioner.user.username]
        for weekday in range(5):
            _, made = WorkingHours.objects.get_or_create(
                clinic=clinic,
                practitioner=practitioner,
                weekday=weekday,
                start_time=start,
                defaults={"end_time": end, "location": location},
            )
            created += made
    return created


@transaction.atomic
def seed_appointments(stdout) -> int:
    clinic = demo_clinic()
    hours = seed_working_hours(clinic)
    stdout.write(f"working hours: {WorkingHours.objects.filter(clinic=clinic).count()} ({hours} new)\n")
    if Appointment.objects.filter(clinic=clinic).exists():
        stdout.write(f"appointments: {Appointment.objects.filter(clinic=clinic).count()} (kept)\n")
        return 0
    tz = clinic.tz
    now = timezone.now()
    today = now.astimezone(tz).date()
    monday = today - dt.timedelta(days=today.weekday())
    patients = list(Patient.objects.filter(clinic=clinic).order_by("id"))
    practitioners = list(
        Practitioner.objects.filter(clinic=clinic, user__username__in=HOURS)
        .select_related("user")
        .prefetch_related("services")
        .order_by("id")
    )
    rooms = list(Room.objects.filter(clinic=clinic).order_by("id"))
    count = 0
    for day in range(5):
        date = monday + dt.timedelta(days=day)
        for p_index, practitioner in enumerate(practitioners):
            service = practitioner.services.order_by("id").first()
            # Two rooms for three practitioners: the third works afternoons.
            room = rooms[p_index % len(rooms)] if service.requires_room else None
            start = dt.datetime.combine(date, HOURS[practitioner.user.username][0], tzinfo=tz)
            if p_index >= len(rooms):
                start += dt.timedelta(hours=1)
            for _slot in range(4):
                appointment = appointment_book(
                    clinic=clinic,
                    patient=patients[count % len(patients)],
                    practitioner=practitioner,
                    service=service,
                    start=start,
                    room=room,
                    allow_past=True,
                )
                if appointment.end < now:
                    appointment_check_in(appointment=appointment)
                    appointment_complete(appointment=appointment)
                count += 1
                gap = dt.timedelta(minutes=service.duration_minutes + service.buffer_minutes + 30)
                start = _round_up(start + gap, clinic.booking_granularity_minutes)
    stdout.write(f"appointments: {count} in the week of {monday:%Y-%m-%d}\n")
    return count
