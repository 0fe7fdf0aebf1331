"""CSV import of patients from another system's export, all or nothing.

`patients_import_csv` reads every row through a column mapping (our field -> their column
header), validates each as a Patient (`full_clean`, constraints included), then creates them
with `patient_create` in one transaction (the duplicate check, consent stamps and the
`patient.created` webhook, as for a patient added by hand), committed only when no row has an
error; `dry_run` does the same and rolls back, so it reports duplicates too.
Used by `manage.py import_patients`.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from clinic.celery import task_named
from clinic.csv_import import ImportRefused, ImportReport, column_mapping_parse, csv_date, csv_import_run
from clinic.csv_safety import SafeCsvWriter
from clinic.degrade import publish
from clinic.models import Clinic, ImportJob, ImportJobStatus
from patients.models import Patient
from patients.services import DuplicatePatientError, patient_create

# Our field -> the column header most exports use. Override per file with a mapping.
DEFAULT_COLUMNS = {
    "given_name": "given_name",
    "family_name": "family_name",
    "preferred_name": "preferred_name",
    "birth_date": "birth_date",
    "gender": "gender",
    "email": "email",
    "mobile_phone": "mobile_phone",
    "address_line1": "address_line1",
    "address_line2": "address_line2",
    "city": "city",
    "region": "region",
    "postal_code": "postal_code",
    "country": "country",
}
REQUIRED = ("given_name", "family_name")


def parse_mapping(spec: str) -> dict[str, str]:
    """`given_name=First Name,family_name=Surname` -> {"given_name": "First Name", ...}."""
    return column_mapping_parse(spec, DEFAULT_COLUMNS)


def _patient_from_row(clinic: Clinic, row: dict, mapping: dict[str, str], date_format: str) -> dict:
    """The row's values for `patient_create`, checked as a Patient; ValidationError by field."""
    values = {}
    errors: dict[str, list[str]] = {}
    for ours, theirs in mapping.items():
        raw = (row.get(theirs) or "").strip()
        if not raw:
            continue
        if ours == "birth_date":
            try:
                values[ours] = csv_date(raw, date_format=date_format, column=theirs)
            except ValidationError as exc:
                errors[ours] = exc.messages
        elif ours == "gender":
            values[ours] = raw.lower()
        else:
            values[ours] = raw
    patient = Patient(clinic=clinic, **values)
    try:
        patient.full_clean()
    except ValidationError as exc:
        for name, messages in exc.message_dict.items():
            errors.setdefault(name, []).extend(messages)
    if errors:
        raise ValidationError(errors)
    return values


def patients_import_csv(
    *,
    clinic: Clinic,
    lines: Iterable[str],
    mapping: dict[str, str] | None = None,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
    date_format: str = "",
) -> ImportReport:
    """Validate every row, then create all patients in one transaction, or none (ImportRefused).

    Birth dates are ISO 8601, or in `date_format` (`clinic.csv_import.date_format_parse`)."""
    line_of: dict[int, int] = {}  # patients created from this file -> their line
    mapping = mapping or dict(DEFAULT_COLUMNS)

    def write_row(line: int, values: dict) -> None:
        try:
            line_of[patient_create(clinic=clinic, data=values, source="csv import").pk] = line
        except DuplicatePatientError as exc:
            who = ", ".join(
                f"the patient on line {line_of[match.pk]}" if match.pk in line_of else f"patient #{match.pk}"
                for match in exc.matches
            )
            raise ValidationError({"duplicate": [f"Probably the same person as {who}."]}) from None

    return csv_import_run(
        lines=lines,
        mapping=mapping,
        required=REQUIRED,
        parse_row=lambda row: _patient_from_row(clinic, row, mapping, date_format),
        write_row=write_row,
        dry_run=dry_run,
        progress=progress,
    )


# --- export ---------------------------------------------------------------------------

PATIENT_EXPORT_FIELDS = ["id", *DEFAULT_COLUMNS, "is_archived", "created_at", "updated_at"]


def patients_export_csv(*, clinic: Clinic, out) -> int:
    """Write the clinic's patients (identity and contact details, no clinical content) as CSV."""
    writer = SafeCsvWriter(out)
    writer.writerow(PATIENT_EXPORT_FIELDS)
    count = 0
    for patient in Patient.objects.filter(clinic=clinic).order_by("id").iterator(chunk_size=1000):
        writer.writerow([getattr(patient, name) for name in PATIENT_EXPORT_FIELDS])
        count += 1
    return count


# What `manage.py export_csv` writes: patients here; apps above register theirs from their
# AppConfig.ready() (sessions: appointments), so this app never imports them.
CSV_EXPORTS: dict[str, Callable[..., int]] = {"patients": patients_export_csv}


def csv_export_register(name: str, export: Callable[..., int]) -> None:
    """`export(clinic=, out=) -> rows written`, through `clinic.csv_safety.SafeCsvWriter`."""
    CSV_EXPORTS[name] = export


# --- asynchronous import jobs (API) ------------------------------------------------------


def import_job_submit(
    *, clinic: Clinic, csv_text: str, mapping: dict, dry_run: bool, created_by=None, date_format: str = ""
):
    """Store the upload as a queued job and run it on a worker after commit."""
    unknown = sorted(set(mapping) - set(DEFAULT_COLUMNS))
    if unknown:
        raise ValidationError({"mapping": [f"Unknown field(s): {', '.join(unknown)}."]})
    job = ImportJob(
        clinic=clinic, csv_text=csv_text, mapping=mapping, dry_run=dry_run, date_format=date_format,
        created_by=created_by,
    )  # fmt: skip
    job.full_clean()
    job.save()

    def broker_down() -> None:
        # No sweeper runs queued jobs: say so now rather than leave the job queued for good.
        job.status, job.detail = ImportJobStatus.FAILED, "The task queue is unavailable; nothing was imported. Retry."
        job.finished_at = timezone.now()
        ImportJob.objects.filter(pk=job.pk, status=ImportJobStatus.QUEUED).update(
            status=job.status, detail=job.detail, csv_text="", finished_at=job.finished_at, updated_at=job.finished_at
        )

    # By name: patients.tasks imports this module to run the job.
    transaction.on_commit(lambda: publish(task_named("clinic.tasks.run_import_job"), job.pk, on_failure=broker_down))
    return job


def import_job_run(*, job_id: int) -> None:
    """Run a queued job once (a redelivered task finds it no longer queued and does nothing)."""
    if not ImportJob.objects.filter(pk=job_id, status=ImportJobStatus.QUEUED).update(
        status=ImportJobStatus.RUNNING, updated_at=timezone.now()
    ):
        return
    job = ImportJob.objects.select_related("clinic").get(pk=job_id)
    outcome = {"status": ImportJobStatus.SUCCEEDED, "detail": ""}
    try:
        report = patients_import_csv(
            clinic=job.clinic,
            lines=io.StringIO(job.csv_text, newline=""),
            mapping={**DEFAULT_COLUMNS, **job.mapping},
            dry_run=job.dry_run,
            date_format=job.date_format,
        )
        outcome.update(rows=report.rows, created_count=report.created)
        if job.dry_run:
            outcome["detail"] = f"Dry run: {report.rows} row(s) valid; nothing written."
    except ImportRefused as refused:
        outcome.update(
            status=ImportJobStatus.FAILED,
            rows=refused.report.rows,
            errors={str(line): errors for line, errors in refused.report.errors.items()},
            detail=str(refused),
        )
    except ValueError as exc:  # missing columns, unreadable CSV
        outcome.update(status=ImportJobStatus.FAILED, detail=str(exc)[:500])
    ImportJob.objects.filter(pk=job_id).update(
        **outcome, csv_text="", finished_at=timezone.now(), updated_at=timezone.now()
    )


__all__ = ["ImportRefused", "ImportReport", "parse_mapping", "patients_import_csv"]
