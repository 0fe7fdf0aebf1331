"""Outcome reads: a patient's series per measure, and the owners' MCID report."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from outcomes.measures import Measure, measures
from outcomes.models import OutcomeCourse, OutcomeResponse, ResponseStatus


@dataclass
class Series:
    measure: Measure
    responses: list[OutcomeResponse]

    @property
    def scored(self) -> list[OutcomeResponse]:
        return [r for r in self.responses if r.status == ResponseStatus.COMPLETE]

    @property
    def incomplete(self) -> list[OutcomeResponse]:
        return [r for r in self.responses if r.status == ResponseStatus.INCOMPLETE]

    @property
    def change(self) -> Decimal | None:
        """Improvement from the first to the last score (positive is better)."""
        scored = self.scored
        if len(scored) < 2:
            return None
        return self.measure.improvement(scored[0].score, scored[-1].score)

    @property
    def reached_mcid(self) -> bool | None:
        change = self.change
        return None if change is None else change >= self.measure.mcid


def patient_series(*, patient_id: int) -> list[Series]:
    """Each measure the patient answered, oldest response first (one query)."""
    rows = OutcomeResponse.objects.filter(patient_id=patient_id).order_by("recorded_on", "id")
    grouped: dict[str, list[OutcomeResponse]] = defaultdict(list)
    for row in rows:
        grouped[row.measure].append(row)
    known = measures()
    return [Series(measure=known[code], responses=grouped[code]) for code in known if code in grouped]


@dataclass
class ReportRow:
    clinic: str
    practitioner: str
    measure: Measure
    finished: int = 0
    reached: int = 0
    not_scored: int = 0  # finished with fewer than two scores: no change to judge
    courses: list[int] = field(default_factory=list)

    @property
    def judged(self) -> int:
        return self.finished - self.not_scored

    @property
    def share(self) -> int | None:
        return None if not self.judged else round(100 * self.reached / self.judged)


def mcid_report(*, clinic_ids: list[int]) -> list[ReportRow]:
    """Per clinic, practitioner and measure: finished courses, and how many reached the MCID
    (first to last score of the course). Two queries whatever the number of courses."""
    courses = list(
        OutcomeCourse.objects.filter(clinic_id__in=clinic_ids, finished_at__isnull=False)
        .select_related("clinic", "practitioner")
        .order_by("clinic__name", "practitioner__display_name", "measure", "id")
    )
    scores: dict[int, list[Decimal]] = defaultdict(list)
    for course_id, value in (
        OutcomeResponse.objects.scored()
        .filter(course__in=courses)
        .order_by("recorded_on", "id")
        .values_list("course_id", "score")
    ):
        scores[course_id].append(value)
    known = measures()
    rows: dict[tuple, ReportRow] = {}
    for course in courses:
        who = course.practitioner.display_name if course.practitioner else "No practitioner"
        key = (course.clinic.name, who, course.measure)
        row = rows.setdefault(key, ReportRow(clinic=key[0], practitioner=who, measure=known[course.measure]))
        row.finished += 1
        row.courses.append(course.pk)
        series = scores[course.pk]
        if len(series) < 2:
            row.not_scored += 1
        elif row.measure.reached_mcid(series[0], series[-1]):
            row.reached += 1
    return list(rows.values())
