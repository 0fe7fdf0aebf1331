"""Import appointments from another system's CSV export: every row or none.

Rows name the patient (id or email), the practitioner and service (id or name) and
the start (ISO 8601 with offset, or a local date-time in the clinic's zone: ISO 8601, or
the file's date format and HH:MM when one is given; the day/month order is never guessed), and
optionally the room. Each row is booked through `appointment_book`, so working
hours are recorded as overridden (the old system's history may lie outside today's
hours) but double bookings are refused like any other booking: a clash is an error
on its line and nothing is imported.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable

from django.core.exceptions import ValidationError
from django.db.models import Q

from clinic.csv_import import ImportReport, column_mapping_parse, csv_datetime, csv_import_run
from clinic.csv_safety import SafeCsvWriter
from clinic.models import Clinic, Practitioner, Room, Service
from patients.csv_io import ndjson_writer
from patients.models import Patient
from sessions.fhir.scheduling import appointment_to_fhir
from sessions.models import Appointment
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


def parse_appointment_mapping(spec: str) -> dict[str, str]:
    """`patient=Client Email,start=Date` -> our field -> their column."""
    return column_mapping_parse(spec, APPOINTMENT_COLUMNS)


def _start(clinic: Clinic, raw: str, date_format: str, column: str) -> dt.datetime:
    parsed = csv_datetime(raw, date_format=date_format, column=column)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=clinic.tz)  # local time of the clinic


def _one(queryset, raw: str, by_name: str, what: str):
    lookup = Q(pk=int(raw)) if raw.isdigit() else Q(**{f"{by_name}__iexact": raw})
    found = list(queryset.filter(lookup)[:2])
    if len(found) != 1:
        raise ValidationError(f"No single {what} matches {raw!r}." if found else f"No {what} {raw!r} in this clinic.")
    return found[0]


def _row_values(clinic: Clinic, row: dict, mapping: dict[str, str], date_format: str) -> dict:
    raw = {ours: (row.get(theirs) or "").strip() for ours, theirs in mapping.items()}
    values: dict = {"notes": raw.get("notes", "")}
    errors: dict[str, list[str]] = {}
    finders = {
        "patient": lambda v: _one(Patient.objects.filter(clinic=clinic), v, "email", "patient"),
        "practitioner": lambda v: _one(Practitioner.objects.filter(clinic=clinic), v, "display_name", "practitioner"),
        "service": lambda v: _one(Service.objects.filter(clinic=clinic), v, "name", "service"),
        "room": lambda v: _one(Room.objects.filter(clinic=clinic), v, "name", "room"),
        "start": lambda v: _start(clinic, v, date_format, mapping["start"]),
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
    date_format: str = "",
) -> ImportReport:
    """Validate every row, then book all of them in one transaction, or none (ImportRefused)."""
    mapping = mapping or dict(APPOINTMENT_COLUMNS)

    def write_row(line: int, values: dict) -> None:
        try:
            appointment_book(
                clinic=clinic, patient=values["patient"], practitioner=values["practitioner"],
                service=values["service"], start=values["start"], room=values.get("room"),
                booked_by=imported_by, notes=values["notes"], hours_override=True,
                hours_override_reason="imported from CSV", allow_past=True,
            )  # fmt: skip
        except BookingConflictError as exc:
            raise ValidationError({"start": [exc.message(clinic.tz)]}) from None

    return csv_import_run(
        lines=lines,
        mapping=mapping,
        required=REQUIRED_COLUMNS,
        parse_row=lambda row: _row_values(clinic, row, mapping, date_format),
        write_row=write_row,
        dry_run=dry_run,
        progress=progress,
    )


# --- export ---------------------------------------------------------------------------

APPOINTMENT_EXPORT_FIELDS = [
    "id", "patient_id", "patient_name", "practitioner_id", "practitioner", "service", "room", "start", "end",
    "status", "created_at", "updated_at",
]  # fmt: skip


def appointments_export_csv(*, clinic: Clinic, out) -> int:
    writer = SafeCsvWriter(out, zone=clinic.tz)
    writer.writerow(APPOINTMENT_EXPORT_FIELDS)
    rows = (
        Appointment.objects.filter(clinic=clinic)
        .select_related("patient", "practitioner", "service", "room")
        .order_by("start", "id")
    )
    count = 0
    for a in rows.iterator(chunk_size=1000):
        writer.writerow(
            [
                a.id,
                a.patient_id,
                a.patient.full_name,
                a.practitioner_id,
                a.practitioner.display_name,
                a.service.name,
                a.room.name if a.room else "",
                a.start,
                a.end,
                a.status,
                a.created_at,
                a.updated_at,
            ]  # fmt: skip
        )
        count += 1
    return count


# The same appointments as FHIR Appointment resources, one per line (`POST /api/v1/exports/`).
appointments_export_ndjson = ndjson_writer(
    lambda clinic: (
        Appointment.objects.filter(clinic=clinic)
        .select_related("patient", "practitioner", "service")
        .order_by("id")
        .iterator(chunk_size=1000)
    ),
    appointment_to_fhir,
)
