"""A reproducible clinic-chain dataset built with bulk inserts.

Appointments are laid end to end per practitioner inside working days, so the
dataset satisfies the booking rules (no overlaps, buffers respected).
"""

from __future__ import annotations

import datetime as dt
import random
import sys
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from clinic.models import Clinic, Location, Practitioner, Service, User
from clinic.roles import Role
from clinic.services import api_key_create, membership_set
from patients.models import Patient
from sessions.models import Appointment, AppointmentStatus, WorkingHours
from treatments.models import Modality

GIVEN = ["Maya", "Liam", "Noah", "Emma", "Olivia", "Lucas", "Sofia", "Ethan", "Zoe", "Jack", "Aria", "Leo",
         "Chloe", "Owen", "Mila", "Ryan", "Ivy", "Sam", "Nora", "Adam", "Grace", "Eli", "Ruby", "Theo"]  # fmt: skip
FAMILY = ["Singh", "Brown", "Tremblay", "Roy", "Gagnon", "Wilson", "Martin", "Lee", "Taylor", "Campbell",
          "Anderson", "Nguyen", "Smith", "Johnson", "Bouchard", "Chen", "Patel", "Kelly", "Morin", "Walsh"]  # fmt: skip


@dataclass(frozen=True)
class Scale:
    name: str
    clinics: int
    practitioners: int
    patients: int
    appointments: int
    years: float


SCALES = {
    "smoke": Scale("smoke", 1, 3, 300, 600, 0.25),
    "small": Scale("small", 2, 10, 5_000, 50_000, 1),
    "default": Scale("default", 5, 50, 100_000, 1_000_000, 3),
}
BATCH = 5_000


def _progress(label: str, done: int, total: int) -> None:
    width = 30
    filled = int(width * done / total) if total else width
    sys.stderr.write(f"\r  {label:<14} [{'#' * filled}{'.' * (width - filled)}] {done:>9,}/{total:,}")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def existing(scale: Scale) -> bool:
    clinics = Clinic.objects.filter(slug__startswith="bench-")
    return (
        clinics.count() == scale.clinics
        and Appointment.objects.filter(clinic__in=clinics).count() == scale.appointments
        and Patient.objects.filter(clinic__in=clinics).count() == scale.patients
    )


def reset() -> None:
    clinics = Clinic.objects.filter(slug__startswith="bench-")
    Appointment.objects.filter(clinic__in=clinics).delete()
    Patient.objects.filter(clinic__in=clinics).delete()
    for model in (Practitioner, Service):
        model.objects.filter(clinic__in=clinics).delete()


@transaction.atomic
def _clinics(scale: Scale):
    modality, _ = Modality.objects.get_or_create(code="massage", defaults={"name": "Remedial massage"})
    clinics, services, practitioners = [], {}, {}
    for c in range(scale.clinics):
        clinic, _ = Clinic.objects.get_or_create(
            slug=f"bench-{c}", defaults={"name": f"Bench clinic {c}", "two_factor_required": False}
        )
        # One API key drives every scenario: the per-key rate limit would answer 429s
        # and measure the limiter instead of the endpoints.
        Clinic.objects.filter(pk=clinic.pk).update(api_rate_limit_per_minute=10_000_000)
        clinics.append(clinic)
        services[clinic.id], _ = Service.objects.get_or_create(
            clinic=clinic,
            name="Massage 25",
            defaults={"modality": modality, "duration_minutes": 25, "buffer_minutes": 5, "requires_room": False},
        )
        practitioners[clinic.id] = []
    for p in range(scale.practitioners):
        clinic = clinics[p % len(clinics)]
        user, _ = User.objects.get_or_create(username=f"bench-therapist-{p}")
        membership_set(clinic=clinic, user=user, role=Role.THERAPIST)
        practitioner, _ = Practitioner.objects.get_or_create(
            clinic=clinic, user=user, defaults={"display_name": f"Therapist {p}"}
        )
        practitioner.services.add(services[clinic.id])
        location, _ = Location.objects.get_or_create(clinic=clinic, name="Main")
        for weekday in range(7):  # the dataset books every day 08:00-17:00
            WorkingHours.objects.get_or_create(
                clinic=clinic, practitioner=practitioner, location=location, weekday=weekday,
                defaults={"start_time": dt.time(8), "end_time": dt.time(18)},
            )  # fmt: skip
        practitioners[clinic.id].append(practitioner)
    return clinics, services, practitioners


def build(scale: Scale, *, seed: int = 20261120) -> None:
    rng = random.Random(seed)
    if existing(scale):
        _clinics(scale)  # idempotent: brings staff, services and hours up to date
        sys.stderr.write(f"  dataset '{scale.name}' already present\n")
        return
    reset()
    clinics, services, practitioners = _clinics(scale)
    now = timezone.now()
    patient_rows = []
    for i in range(scale.patients):
        clinic = clinics[i % len(clinics)]
        given, family = rng.choice(GIVEN), f"{rng.choice(FAMILY)}{i // 400 or ''}"
        patient_rows.append(
            Patient(
                clinic=clinic, given_name=given, family_name=family,
                birth_date=dt.date(1950, 1, 1) + dt.timedelta(days=rng.randrange(25_000)),
                email=f"p{i}@bench.example", mobile_phone=f"+1416{2000000 + i:07d}",
                email_consent=True, email_consent_at=now,
            )
        )  # fmt: skip
    for start in range(0, len(patient_rows), BATCH):
        Patient.objects.bulk_create(patient_rows[start : start + BATCH])
        _progress("patients", min(start + BATCH, len(patient_rows)), len(patient_rows))
    patient_ids = {c.id: list(Patient.objects.filter(clinic=c).values_list("id", flat=True)) for c in clinics}

    all_practitioners = [p for c in clinics for p in practitioners[c.id]]
    per_practitioner = scale.appointments // len(all_practitioners)
    extra = scale.appointments - per_practitioner * len(all_practitioners)
    first_day = (now - dt.timedelta(days=int(365 * scale.years * 2 / 3))).date()
    slot = dt.timedelta(minutes=30)
    done, rows = 0, []
    for index, practitioner in enumerate(all_practitioners):
        clinic = next(c for c in clinics if c.id == practitioner.clinic_id)
        tz, service, ids = clinic.tz, services[clinic.id], patient_ids[clinic.id]
        count = per_practitioner + (1 if index < extra else 0)
        per_day = max(1, min(18, -(-count // max(1, int(365 * scale.years)))))
        for n in range(count):
            day = first_day + dt.timedelta(days=n // per_day)
            start = dt.datetime.combine(day, dt.time(8, 0), tzinfo=tz) + slot * (n % per_day)
            past = start < now
            rows.append(
                Appointment(
                    clinic=clinic, patient_id=ids[rng.randrange(len(ids))], practitioner=practitioner,
                    service=service, start=start, end=start + dt.timedelta(minutes=25),
                    blocked_until=start + dt.timedelta(minutes=30),
                    status=AppointmentStatus.COMPLETED if past else AppointmentStatus.BOOKED,
                )
            )  # fmt: skip
            if len(rows) >= BATCH:
                Appointment.objects.bulk_create(rows)
                done += len(rows)
                rows = []
                _progress("appointments", done, scale.appointments)
    if rows:
        Appointment.objects.bulk_create(rows)
        done += len(rows)
    _progress("appointments", done, scale.appointments)


def api_key_for(clinic_slug: str) -> str:
    from clinic.authentication import ALL_SCOPES

    _, raw = api_key_create(clinic=Clinic.objects.get(slug=clinic_slug), name="bench", scopes=list(ALL_SCOPES))
    return raw


def scenario_context(clinic_slug: str = "bench-0") -> dict:
    """Ids and values the HTTP scenarios need, read from the dataset."""
    from django.db.models import Min

    clinic = Clinic.objects.get(slug=clinic_slug)
    practitioner = Practitioner.objects.filter(clinic=clinic).order_by("id").first()
    patient = Patient.objects.filter(clinic=clinic).order_by("id").first()
    today = timezone.now().astimezone(clinic.tz).date()
    day_start = dt.datetime.combine(today, dt.time(0), tzinfo=clinic.tz)
    week_start = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(0), tzinfo=clinic.tz)
    return {
        "practitioner": practitioner.id,
        "service": Service.objects.filter(clinic=clinic).values_list("id", flat=True).first(),
        "patient": patient.id,
        "name_prefix": patient.family_name[:4],
        "phone_part": str(patient.mobile_phone)[-7:],
        "day_from": day_start.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "day_to": (day_start + dt.timedelta(days=1)).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "week_from": week_start.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "week_to": (week_start + dt.timedelta(days=7)).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "appointment_min_id": Appointment.objects.filter(clinic=clinic).aggregate(m=Min("id"))["m"],
    }
