"""Import appointments from another system's CSV export: every row or none.

Rows name the patient (id or email), the practitioner and service (id or name) and
the start (ISO 8601 with offset, or a local date-time in the clinic's zone), and
optionally the room. Each row is booked through `appointment_book`, so working
hours are recorded as overridden (the old system's history may lie outside today's
hours) but double bookings are refused like any other booking: a clash is an error
on its line and nothing is imported.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable, Iterable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q

from clinic.models import Clinic, Practitioner, Room, Service
from patients.csv_io import ImportRefused, ImportReport
from patients.models import Patient
from sessions.services import BookingConflictError, appointment_book

APPOINTMENT_COLUMNS = {
    "patient": "patient",
    "practitioner": "practitioner",
    "service": "service",
    "start": "start",
    "room": "room",
    "notes": "notes",
}
REQUIRED_COLUMNS = ("patient", "practitioner", "service", "start")
LOCAL_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%d/%m/%Y %H:%M")


def parse_appointment_mapping(spec: str) -> dict[str, str]:
    """`patient=Client Email,start=Date` -> our field -> their column."""
    mapping = dict(APPOINTMENT_COLUMNS)
    for part in filter(None, (p.strip() for p in spec.split(","))):
        ours, sep, theirs = part.partition("=")
        if not sep or ours.strip() not in APPOINTMENT_COLUMNS:
            raise ValueError(
                f"Bad mapping {part!r}: use field=Column with field one of {', '.join(APPOINTMENT_COLUMNS)}."
            )
        mapping[ours.strip()] = theirs.strip()
    return mapping


def _start(clinic: Clinic, raw: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(raw)
    except ValueError:
        parsed = None
        for fmt in LOCAL_FORMATS:
            try:
                parsed = dt.datetime.strptime(raw, fmt)  # noqa: DTZ007 - local time of the clinic, zoned below
                break
            except ValueError:
                continue
    if parsed is None:
        raise ValidationError("Not a date-time (ISO 8601, or YYYY-MM-DD HH:MM in the clinic's time zone).")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=clinic.tz)


def _one(queryset, raw: str, by_name: str, what: str):
    lookup = Q(pk=int(raw)) if raw.isdigit() else Q(**{f"{by_name}__iexact": raw})
    found = list(queryset.filter(lookup)[:2])
    if len(found) != 1:
        raise ValidationError(f"No single {what} matches {raw!r}." if found else f"No {what} {raw!r} in this clinic.")
    return found[0]


def _row_values(clinic: Clinic, row: dict, mapping: dict[str, str]) -> dict:
    raw = {ours: (row.get(theirs) or "").strip() for ours, theirs in mapping.items()}
    values: dict = {"notes": raw.get("notes", "")}
    errors: dict[str, list[str]] = {}
    finders = {
        "patient": lambda v: _one(Patient.objects.filter(clinic=clinic), v, "email", "patient"),
        "practitioner": lambda v: _one(Practitioner.objects.filter(clinic=clinic), v, "display_name", "practitioner"),
        "service": lambda v: _one(Service.objects.filter(clinic=clinic), v, "name", "service"),
        "room": lambda v: _one(Room.objects.filter(clinic=clinic), v, "name", "room"),
        "start": lambda v: _start(clinic, v),
    }
    for name, find in finders.items():
        if not raw.get(name):
            if name in REQUIRED_COLUMNS:
                errors[name] = ["This column is empty."]
            continue
        try:
            values[name] = find(raw[name])
        except ValidationError as exc:
            errors[name] = exc.messages
    if errors:
        raise ValidationError(errors)
    return values


def appointments_import_csv(
    *,
    clinic: Clinic,
    lines: Iterable[str],
    mapping: dict[str, str] | None = None,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
    imported_by=None,
) -> ImportReport:
    """Validate every row, then book all of them in one transaction, or none (ImportRefused)."""
    mapping = mapping or dict(APPOINTMENT_COLUMNS)
    reader = csv.DictReader(lines)
    missing = [mapping[name] for name in REQUIRED_COLUMNS if mapping[name] not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"Missing column(s): {', '.join(missing)}. Found: {', '.join(reader.fieldnames or [])}.")
    report = ImportReport(dry_run=dry_run)
    rows: list[tuple[int, dict]] = []
    for row in reader:
        report.rows += 1
        try:
            rows.append((reader.line_num, _row_values(clinic, row, mapping)))
        except ValidationError as exc:
            report.errors[reader.line_num] = exc.message_dict
        if progress is not None:
            progress(report.rows)
    if report.errors:
        raise ImportRefused(report)
    with transaction.atomic():
        for line, values in rows:
            try:
                # A savepoint per row: a refused row is reported and the rest still checked.
                with transaction.atomic():
                    appointment_book(
                        clinic=clinic, patient=values["patient"], practitioner=values["practitioner"],
                        service=values["service"], start=values["start"], room=values.get("room"),
                        booked_by=imported_by, notes=values["notes"], hours_override=True,
                        hours_override_reason="imported from CSV", allow_past=True,
                    )  # fmt: skip
            except BookingConflictError as exc:
                report.errors[line] = {"start": [str(exc)]}
            except ValidationError as exc:
                report.errors[line] = exc.message_dict if hasattr(exc, "error_dict") else {"row": exc.messages}
        if report.errors:
            raise ImportRefused(report)  # leaving the block with it rolls every row back
        if dry_run:
            transaction.set_rollback(True)
    report.created = 0 if dry_run else len(rows)
    return report
