"""Many due messages at once, written with bulk inserts (delivery tests and the benchmark)."""

from __future__ import annotations

import datetime as dt

from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from clinic.models import Clinic, Message, MessageKind, Practitioner, ReminderPolicy, Service, User
from patients.models import Patient
from sessions.models import Appointment
from treatments.models import Modality


def _ref(start: dt.datetime) -> str:
    return start.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%MZ")


def seed_due_messages(count: int, *, label: str = "delivery") -> list[int]:
    """`count` reminders due a minute ago, alternating email and SMS, in a clinic without
    quiet hours (so the result does not depend on the time of day the test runs)."""
    clinic = Clinic.objects.create(name=f"Bulk {label}", slug=f"bulk-{label}", time_zone="America/Toronto")
    ReminderPolicy.objects.create(clinic=clinic, quiet_hours_start=None, quiet_hours_end=None)
    modality, _ = Modality.objects.get_or_create(code="massage", defaults={"name": "Massage"})
    service = Service.objects.create(clinic=clinic, name="Massage 60", modality=modality, duration_minutes=60)
    user = User.objects.create(username=f"bulk-{label}-therapist")
    practitioner = Practitioner.objects.create(clinic=clinic, user=user, display_name="Dana Therapist")
    now = timezone.now().replace(second=0, microsecond=0)
    first = now + dt.timedelta(days=1)
    patients = Patient.objects.bulk_create(
        Patient(
            clinic=clinic,
            given_name="Pat",
            family_name=f"Number {i}",
            email=f"pat{i}@example.com",
            email_consent=True,
            mobile_phone=f"+1416{5550000 + i:07d}",
            sms_consent=bool(i % 2),
            preferred_channel="sms" if i % 2 else "email",
        )
        for i in range(count)
    )
    # One practitioner, so one hour each: the exclusion constraint refuses overlapping visits.
    appointments = Appointment.objects.bulk_create(
        Appointment(
            clinic=clinic,
            patient=patient,
            practitioner=practitioner,
            service=service,
            start=first + dt.timedelta(hours=i),
            end=first + dt.timedelta(hours=i + 1),
            blocked_until=first + dt.timedelta(hours=i + 1),
        )
        for i, patient in enumerate(patients)
    )
    about_type = ContentType.objects.get_for_model(Appointment)
    messages = Message.objects.bulk_create(
        Message(
            clinic=clinic,
            kind=MessageKind.APPOINTMENT_REMINDER,
            patient=appointment.patient,
            channel=appointment.patient.preferred_channel,
            about_type=about_type,
            about_id=appointment.pk,
            occurrence=f"2h@{_ref(appointment.start)}",
            context={"start": _ref(appointment.start)},
            due_at=now - dt.timedelta(minutes=1),
            expires_at=appointment.start,
        )
        for appointment in appointments
    )
    return [m.pk for m in messages]
