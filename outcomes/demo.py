"""Demo outcome data: the clinic's measure settings, a patient with three LEFS scores and three
pain ratings (the trend shows on his page and notes), and finished courses for the owners' report.
Idempotent: a patient who already has responses keeps them."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from clinic.demo import demo_clinic
from clinic.models import Practitioner
from outcomes.models import OutcomeCourse, OutcomeResponse, OutcomeSettings
from outcomes.services import outcome_course_finish, outcome_record
from patients.models import Patient

# (given, family, practitioner username, measure, [(weeks ago, score)], finished)
COURSES = [
    ("Noah", "Tremblay", "chen", "lefs", [(6, 38), (3, 49), (0, 61)], False),
    ("Noah", "Tremblay", "chen", "nprs", [(6, 6), (3, 4), (0, 2)], False),
    ("Maya", "Singh", "ava", "lefs", [(10, 44), (5, 57)], True),
    ("Liam", "Brown", "ben", "nprs", [(9, 7), (4, 6)], True),
]


def lefs_answers(total: int) -> dict:
    """Twenty items (0-4) that add up to `total`."""
    return {f"q{n}": min(4, max(0, total - 4 * (n - 1))) for n in range(1, 21)}


def _answers(measure: str, score: int) -> dict:
    return lefs_answers(score) if measure == "lefs" else {"pain": score}


@transaction.atomic
def seed_outcomes(stdout) -> int:
    clinic = demo_clinic()
    OutcomeSettings.objects.get_or_create(
        clinic=clinic, defaults={"baseline_measures": ["nprs", "lefs"], "repeat_every_weeks": 3}
    )
    today = timezone.localdate(timezone.now(), clinic.tz)
    created = 0
    for given, family, username, measure, scores, finished in COURSES:
        patient = Patient.objects.filter(clinic=clinic, given_name=given, family_name=family).first()
        if patient is None or OutcomeResponse.objects.filter(patient=patient, measure=measure).exists():
            continue
        for weeks_ago, score in scores:
            outcome_record(
                patient=patient, measure=measure, answers=_answers(measure, score),
                recorded_on=today - dt.timedelta(weeks=weeks_ago), by=None,
            )  # fmt: skip
            created += 1
        course = OutcomeCourse.objects.get(patient=patient, measure=measure, finished_at__isnull=True)
        course.practitioner = Practitioner.objects.filter(clinic=clinic, user__username=username).first()
        course.save(update_fields=["practitioner"])
        if finished:
            outcome_course_finish(course=course, by=None)
    stdout.write(f"outcomes: {OutcomeResponse.objects.filter(clinic=clinic).count()} responses ({created} new)\n")
    return created
