"""A week of demo appointments, laid out once: a clinic that already has some keeps them."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from clinic.demo import demo_clinic
from clinic.models import Practitioner, Room
from patients.models import Patient
from sessions.models import Appointment


@transaction.atomic
def seed_appointments(stdout) -> int:
    clinic = demo_clinic()
    if Appointment.objects.filter(clinic=clinic).exists():
        stdout.write(f"appointments: {Appointment.objects.filter(clinic=clinic).count()} (kept)\n")
        return 0
    tz = clinic.tz
    today = timezone.now().astimezone(tz).date()
    monday = today - dt.timedelta(days=today.weekday())
    patients = list(Patient.objects.filter(clinic=clinic).order_by("id"))
    practitioners = list(Practitioner.objects.filter(clinic=clinic).prefetch_related("services").order_by("id"))
    rooms = list(Room.objects.filter(clinic=clinic).order_by("id"))
    rows = []
    counter = 0
    for day in range(5):
        date = monday + dt.timedelta(days=day)
        for p_index, practitioner in enumerate(practitioners):
            service = practitioner.services.first()
            # Two rooms for three practitioners: the third works afternoons.
            room = rooms[p_index % len(rooms)]
            start = dt.datetime.combine(date, dt.time(9 + 5 * (p_index // len(rooms)), 0), tzinfo=tz)
            for _slot in range(4):
                end = start + dt.timedelta(minutes=service.duration_minutes)
                rows.append(
                    Appointment(
                        clinic=clinic,
                        patient=patients[counter % len(patients)],
                        practitioner=practitioner,
                        service=service,
                        room=room if service.requires_room else None,
                        start=start,
                        end=end,
                        status="completed" if date < today else "booked",
                    )
                )
                counter += 1
                start = end + dt.timedelta(minutes=service.buffer_minutes + 30)
    Appointment.objects.bulk_create(rows)
    stdout.write(f"appointments: {len(rows)} in the week of {monday:%Y-%m-%d}\n")
    return len(rows)
