"""A reproducible clinic-chain dataset built with bulk inserts.

Appointments are laid end to end per practitioner inside working days, so the
dataset satisfies the booking rules (no overlaps, buffers respected).
"""

from __future__ import annotations

import datetime as dt
import random
import sys
import time
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from clinic.models import Clinic, Location, Message, Practitioner, Service, User
from clinic.security.roles import Role
from clinic.services import api_key_create, membership_set
from patients.models import Patient
from sessions.models import (
    Appointment,
    AppointmentStatus,
    TreatmentSession,
    WorkingHours,
)
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
    notes: int  # signed treatment notes with structured entries, on past appointments
    messages: int  # reminder outbox rows, one per appointment (sent in the past, scheduled ahead)


SCALES = {
    "smoke": Scale("smoke", 1, 3, 300, 600, 0.25, 200, 300),
    "small": Scale("small", 2, 10, 5_000, 50_000, 1, 15_000, 25_000),
    "default": Scale("default", 5, 50, 100_000, 1_000_000, 3, 300_000, 500_000),
    # The growth comparison: 10% of the default dataset, the same clinics and staff with the
    # same days as full, so a day's list is the same size and only the tables are smaller.
    "tenth": Scale("tenth", 5, 50, 10_000, 100_000, 0.3, 30_000, 50_000),
}
BATCH = 5_000


def _progress(label: str, done: int, total: int) -> None:
    width = 30
    filled = int(width * done / total) if total else width
    sys.stderr.write(f"\r  {label:<14} [{'#' * filled}{'.' * (width - filled)}] {done:>9,}/{total:,}")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def _bench_clinics():
    return Clinic.objects.filter(slug__startswith="bench-")


# Runs add to a dataset (each booking scenario books appointments, with their messages), so a
# built dataset holds at least its scale's rows of those; patients and notes stay as built.


def existing(scale: Scale) -> bool:
    """The base of the dataset (clinics, patients, appointments) is complete."""
    clinics = _bench_clinics()
    return (
        clinics.count() == scale.clinics
        and Appointment.objects.filter(clinic__in=clinics).count() >= scale.appointments
        and Patient.objects.filter(clinic__in=clinics).count() == scale.patients
    )


def complete(scale: Scale) -> bool:
    clinics = _bench_clinics()
    return (
        existing(scale)
        and TreatmentSession.objects.filter(clinic__in=clinics).count() == scale.notes
        and Message.objects.filter(clinic__in=clinics).count() >= scale.messages
    )


def resumable(scale: Scale) -> bool:
    """The base is complete and each later phase is either complete or not begun."""
    clinics = _bench_clinics()
    notes = TreatmentSession.objects.filter(clinic__in=clinics).count()
    messages = Message.objects.filter(clinic__in=clinics).count()
    return existing(scale) and notes in (0, scale.notes) and (messages == 0 or messages >= scale.messages)


def started() -> bool:
    """Any bench rows at all: an incomplete dataset is rebuilt in a fresh database, since
    signed notes cannot be deleted (the PostgreSQL lock on signed notes refuses it)."""
    return _bench_clinics().exists()


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
        # The therapist's signed-in session must outlast the run (it is idle between scenarios).
        Clinic.objects.filter(pk=clinic.pk).update(
            api_rate_limit_per_minute=10_000_000, session_idle_minutes=600, session_max_hours=24
        )
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
    """Builds what is missing; each phase is reproducible from `seed`."""
    built = False
    if existing(scale):
        _clinics(scale)  # idempotent: brings staff, services and hours up to date
    else:
        if started():
            raise RuntimeError("an incomplete bench dataset is present; start from a fresh database")
        _base(scale, random.Random(seed))
        built = True
    clinics = _bench_clinics()
    if not TreatmentSession.objects.filter(clinic__in=clinics).exists():
        _notes(scale)
        built = True
    if not Message.objects.filter(clinic__in=clinics).exists():
        _messages(scale)
        built = True
    if built:
        # Bulk loads leave the planner's statistics behind (it guessed 600 rows for a clinic of
        # 200,000 and chose accordingly); a clinic's database is analysed as it grows, so is this.
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("VACUUM (ANALYZE)")
    if not complete(scale):
        raise RuntimeError("the bench dataset is incomplete (an earlier build was interrupted); start afresh")
    sys.stderr.write(f"  dataset '{scale.name}' ready\n")


def _base(scale: Scale, rng: random.Random) -> None:
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


SUBJECTIVE = [
    "Low back ache after gardening, worse bending, eases walking.",
    "Right calf tight after running; cramps at night.",
    "Knee pain climbing stairs, stiff first thing in the morning.",
    "Neck and shoulder tension from desk work; headaches late in the day.",
    "Sciatic pain down the left leg to the knee, sitting aggravates.",
]
OBJECTIVE = [
    "Reduced lumbar flexion; tender L4-L5 paraspinals; SLR negative.",
    "Gastrocnemius hypertonic, trigger point medial head; full ankle range.",
    "Patellofemoral crepitus, VMO inhibition, tight ITB on Ober's test.",
    "Upper trapezius and levator scapulae trigger points; rotation 60 degrees each side.",
    "Piriformis tender on the left, slump test reproduces buttock pain only.",
]
TECHNIQUES = ["trigger_point", "stripping", "effleurage", "petrissage", "cross_fibre", "myofascial", "compression"]

# Set-based SQL: hundreds of thousands of notes in seconds instead of Python objects. Every
# choice is a function of the row's id, so the dataset is the same on every build. Notes are
# inserted as drafts with their entries and then signed, as a therapist would (the PostgreSQL
# lock refuses entries on a signed note). `%%` is a literal modulo under psycopg.
NOTES_SQL = """
WITH past AS (
    SELECT a.*, row_number() OVER (ORDER BY a.id) - 1 AS rn, count(*) OVER () AS total
      FROM treatment_sessions_appointment a
     WHERE a.clinic_id = ANY(%(clinics)s) AND a.start < %(now)s
)
INSERT INTO treatment_sessions_treatmentsession
    (clinic_id, patient_id, practitioner_id, appointment_id, started_at, status, subjective, objective,
     assessment, plan, pain_before, pain_after, rebook_within_days, needle_incident, content_hash,
     created_by_id, created_at, updated_at)
SELECT a.clinic_id, a.patient_id, a.practitioner_id, a.id, a.start, 'draft',
       (%(subjective)s::text[])[1 + a.id %% 5], (%(objective)s::text[])[1 + a.id %% 5],
       'Myofascial pain with adhesion; no red flags.',
       'ART and massage as recorded; home stretches; review in two weeks.',
       3 + a.id %% 6, greatest(0, 2 + a.id %% 6 - a.id %% 3), 14, '', '', p.user_id, a.start, a.start
  FROM past a JOIN clinic_practitioner p ON p.id = a.practitioner_id
 WHERE (a.rn * %(notes)s) / a.total <> ((a.rn + 1) * %(notes)s) / a.total
"""
ENTRIES_SQL = [
    """
INSERT INTO treatment_sessions_artentry (clinic_id, session_id, override_reason, overridden_rules, created_at,
                                         structure_id, side, passes, patient_movement, response)
SELECT s.clinic_id, s.id, '', '[]', s.started_at, (%(muscles)s::bigint[])[1 + s.id %% %(muscle_count)s],
       CASE WHEN s.id %% 2 = 0 THEN 'left' ELSE 'right' END, 2 + s.id %% 5, 'Active knee extension',
       'Tissue texture improved, range increased.'
  FROM treatment_sessions_treatmentsession s WHERE s.clinic_id = ANY(%(clinics)s) AND s.status = 'draft'
""",
    """
INSERT INTO treatment_sessions_massageentry (clinic_id, session_id, override_reason, overridden_rules, created_at,
                                             region_id, side, technique, pressure, minutes)
SELECT s.clinic_id, s.id, '', '[]', s.started_at, (%(regions)s::bigint[])[1 + s.id %% %(region_count)s], '',
       (%(techniques)s::text[])[1 + s.id %% 7], 2 + s.id %% 3, 10 + 5 * (s.id %% 3)
  FROM treatment_sessions_treatmentsession s WHERE s.clinic_id = ANY(%(clinics)s) AND s.status = 'draft'
""",
    """
INSERT INTO treatment_sessions_homecareentry (clinic_id, session_id, override_reason, overridden_rules, created_at,
                                              exercise, sets, reps, frequency, instructions)
SELECT s.clinic_id, s.id, '', '[]', s.started_at, 'Calf stretch against a wall', 3, 10, 'twice daily', ''
  FROM treatment_sessions_treatmentsession s
 WHERE s.clinic_id = ANY(%(clinics)s) AND s.status = 'draft' AND s.id %% 3 = 0
""",
]
SIGN_SQL = """
UPDATE treatment_sessions_treatmentsession
   SET status = 'signed', signed_at = started_at + interval '1 hour', signed_by_id = created_by_id,
       content_hash = encode(sha256(convert_to(subjective || objective || assessment || plan, 'UTF8')), 'hex')
 WHERE clinic_id = ANY(%(clinics)s) AND status = 'draft'
"""
MESSAGES_SQL = """
INSERT INTO clinic_message
    (clinic_id, patient_id, kind, channel, about_type_id, about_id, occurrence, context, due_at, immediate,
     status, reason, attempts, last_error, sent_at, provider_message_id, recipient, subject, body,
     created_at, updated_at)
SELECT a.clinic_id, a.patient_id, 'appointment_reminder', m.channel, %(about)s, a.id,
       '24h@' || to_char(a.start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI"Z"'), '{}',
       a.start - interval '24 hours', false,
       CASE WHEN m.sent THEN 'sent' ELSE 'scheduled' END, '', CASE WHEN m.sent THEN 1 ELSE 0 END, '',
       CASE WHEN m.sent THEN a.start - interval '24 hours' END, '',
       CASE WHEN m.channel = 'email' THEN 'p' || a.patient_id || '@bench.example'
            ELSE '+1416' || lpad(a.patient_id::text, 7, '0') END,
       CASE WHEN m.sent AND m.channel = 'email' THEN 'Your appointment tomorrow' ELSE '' END,
       CASE WHEN m.sent THEN 'Reminder: your appointment on ' || to_char(a.start, 'Dy DD Mon "at" HH24:MI') || '.'
            ELSE '' END,
       a.start - interval '25 hours', a.start - interval '24 hours'
  FROM (SELECT * FROM treatment_sessions_appointment WHERE clinic_id = ANY(%(clinics)s)
        ORDER BY start DESC, id DESC LIMIT %(messages)s) a
 CROSS JOIN LATERAL (SELECT CASE WHEN a.id %% 2 = 1 THEN 'email' ELSE 'sms' END AS channel,
                            a.start - interval '24 hours' < %(now)s AS sent) m
"""


def _execute(label: str, sql: str, params: dict) -> int:
    from django.db import connection

    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        count = cursor.rowcount
    sys.stderr.write(f"  {label:<14} {count:>9,} rows in {time.monotonic() - started:.0f} s\n")
    return count


@transaction.atomic
def _notes(scale: Scale) -> None:
    """Signed notes with an ART and a massage entry each (and home care on a third), spread
    evenly over the past appointments."""
    from treatments.models import BodyRegion, Muscle

    params = {
        "clinics": list(_bench_clinics().values_list("id", flat=True)),
        "now": timezone.now(),
        "notes": scale.notes,
        "subjective": SUBJECTIVE,
        "objective": OBJECTIVE,
        "techniques": TECHNIQUES,
        "muscles": list(Muscle.objects.filter(clinic__isnull=True).order_by("id").values_list("id", flat=True)),
        "regions": list(BodyRegion.objects.filter(clinic__isnull=True).order_by("id").values_list("id", flat=True)),
    }
    params.update(muscle_count=len(params["muscles"]), region_count=len(params["regions"]))
    _execute("notes", NOTES_SQL, params)
    for sql, label in zip(ENTRIES_SQL, ("ART entries", "massage entries", "home care"), strict=True):
        _execute(label, sql, params)
    _execute("signing", SIGN_SQL, params)


@transaction.atomic
def _messages(scale: Scale) -> None:
    """One reminder per appointment for the most recent appointments: sent before now, scheduled after."""
    from django.contrib.contenttypes.models import ContentType

    params = {
        "clinics": list(_bench_clinics().values_list("id", flat=True)),
        "now": timezone.now(),
        "messages": scale.messages,
        "about": ContentType.objects.get_for_model(Appointment).id,
    }
    _execute("messages", MESSAGES_SQL, params)


def api_key_for(clinic_slug: str) -> str:
    from clinic.api.authentication import ALL_SCOPES

    _, raw = api_key_create(clinic=Clinic.objects.get(slug=clinic_slug), name="bench", scopes=list(ALL_SCOPES))
    return raw


def therapist_session(clinic_slug: str = "bench-0") -> str:
    """A signed-in session cookie for the clinic's first therapist (the therapist mix)."""
    from django.conf import settings
    from django.test import Client

    practitioner = Practitioner.objects.filter(clinic__slug=clinic_slug).order_by("id").first()
    client = Client()
    client.force_login(practitioner.user, backend="django.contrib.auth.backends.ModelBackend")
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def _utc(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def scenario_context(clinic_slug: str = "bench-0") -> dict:
    """Ids and values the HTTP scenarios need, read from the dataset."""
    from django.db.models import Count, Max, Min

    clinic = Clinic.objects.get(slug=clinic_slug)
    practitioner = Practitioner.objects.filter(clinic=clinic).order_by("id").first()
    patient = Patient.objects.filter(clinic=clinic).order_by("id").first()
    now = timezone.now()
    today = now.astimezone(clinic.tz).date()
    day_start = dt.datetime.combine(today, dt.time(0), tzinfo=clinic.tz)
    week_start = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(0), tzinfo=clinic.tz)
    appointments = Appointment.objects.filter(clinic=clinic)
    notes = TreatmentSession.objects.filter(clinic=clinic, practitioner=practitioner)
    pain_patient = (
        notes.values("patient").annotate(n=Count("id")).order_by("-n", "patient").values_list("patient", flat=True)
    ).first()
    # Booking: the days after the last appointment of any run so far, so every run books
    # fresh slots; two requests per slot, so about half the answers are 409 by design.
    last = appointments.aggregate(m=Max("start"))["m"]
    booking_day = (last.astimezone(clinic.tz) + dt.timedelta(days=1)).date()
    cancellable = appointments.filter(status=AppointmentStatus.BOOKED, start__gte=now + dt.timedelta(days=2))
    # A therapist's day of notes: the latest day with notes (early in the clinic's day, today has
    # none yet, and an empty page would measure nothing).
    last_note = notes.filter(started_at__lt=now).order_by("-started_at").values_list("started_at", flat=True).first()
    notes_start = dt.datetime.combine((last_note or now).astimezone(clinic.tz).date(), dt.time(0), tzinfo=clinic.tz)
    notes_end = notes_start + dt.timedelta(days=1)
    notes_on_day = notes.filter(started_at__gte=notes_start, started_at__lt=notes_end).count()
    return {
        "practitioner": practitioner.id,
        "service": Service.objects.filter(clinic=clinic).values_list("id", flat=True).first(),
        "patient": patient.id,
        "name_prefix": patient.family_name[:4],
        "phone_part": str(patient.mobile_phone)[-7:],
        "day_from": _utc(day_start),
        "day_to": _utc(day_start + dt.timedelta(days=1)),
        "week_from": _utc(week_start),
        "week_to": _utc(week_start + dt.timedelta(days=7)),
        "notes_day_from": _utc(notes_start),
        "notes_day_to": _utc(notes_end),
        "notes_on_day": notes_on_day or None,  # None: the scenario is skipped, and says so
        "appointment_min_id": appointments.aggregate(m=Min("id"))["m"],
        "note": notes.signed().order_by("-started_at").values_list("id", flat=True).first(),
        "pain_patient": pain_patient,
        "booking": {
            "practitioners": list(
                Practitioner.objects.filter(clinic=clinic).order_by("id").values_list("id", flat=True)
            ),
            "patients": list(Patient.objects.filter(clinic=clinic).order_by("id").values_list("id", flat=True)[:5000]),
            "first_day": booking_day.isoformat(),
            "tz": str(clinic.tz),
        },
        "cancel_ids": list(cancellable.order_by("-start").values_list("id", flat=True)[:30_000]),
    }
