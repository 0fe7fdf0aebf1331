"""CSV import of patients from another system's export, all or nothing.

`patients_import_csv` reads every row through a column mapping (our field -> their column
header), validates each as a Patient (`full_clean`, constraints included), then creates them
with `patient_create` in one transaction (the duplicate check, consent stamps and the
`patient.created` webhook, as for a patient added by hand), committed only when no row has an
error; `dry_run` does the same and rolls back, so it reports duplicates too.
Used by `manage.py import_patients`.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Callable, Iterable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from clinic.celery import task_named
from clinic.csv_import import ImportRefused, ImportReport, column_mapping_parse, csv_date, csv_import_run
from clinic.csv_safety import SafeCsvWriter
from clinic.degrade import publish
from clinic.models import (
    ApiKey,
    AuditAction,
    Clinic,
    ExportFormat,
    ExportJob,
    ExportJobStatus,
    ImportJob,
    ImportJobStatus,
)
from clinic.security.audit import audit_record
from patients.fhir import patient_to_fhir
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
    writer = SafeCsvWriter(out, zone=clinic.tz)
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


def ndjson_writer(rows: Iterable, to_fhir: Callable[..., dict]) -> Callable[..., int]:
    """An NDJSON export (FHIR bulk data style): one resource per line, `to_fhir(row)` each."""

    def export(*, clinic: Clinic, out) -> int:
        count = 0
        for row in rows(clinic):
            out.write(json.dumps(to_fhir(row), separators=(",", ":"), ensure_ascii=False) + "\n")
            count += 1
        return count

    return export


# The same exports as FHIR resources, one per line; sessions registers Appointment.
NDJSON_EXPORTS: dict[str, Callable[..., int]] = {
    "patients": ndjson_writer(
        lambda clinic: Patient.objects.filter(clinic=clinic).order_by("id").iterator(chunk_size=1000),
        patient_to_fhir,
    )
}


def ndjson_export_register(name: str, export: Callable[..., int]) -> None:
    NDJSON_EXPORTS[name] = export


def _exports(export_format: str) -> dict[str, Callable[..., int]]:
    return NDJSON_EXPORTS if export_format == ExportFormat.NDJSON else CSV_EXPORTS


def export_kinds() -> list[str]:
    return sorted(CSV_EXPORTS)


# --- asynchronous export jobs (API) ------------------------------------------------------

# How long a finished export waits for its one download.
EXPORT_TTL = dt.timedelta(hours=24)


class ExportGone(Exception):  # noqa: N818 - a state the API answers with 410
    """Downloaded already, or expired: the file is no longer here."""


class ExportNotReady(Exception):  # noqa: N818 - a state the API answers with 409
    pass


def export_requester(request) -> dict:
    """Who asked, as the job stores it: the API key, or else the signed-in user."""
    key = request.auth if isinstance(getattr(request, "auth", None), ApiKey) else None
    user = request.user if key is None and request.user.is_authenticated else None
    return {"created_by": user, "created_by_key": key}


def export_job_submit(*, clinic: Clinic, kind: str, export_format: str, request) -> ExportJob:
    """Queue an export for a worker, audited as requested; refused fields are 400s."""
    if kind not in _exports(export_format):
        raise ValidationError({"kind": [f"Choose one of: {', '.join(sorted(_exports(export_format)))}."]})
    job = ExportJob.objects.create(clinic=clinic, kind=kind, format=export_format, **export_requester(request))
    audit_record(
        action=AuditAction.EXPORT, clinic=clinic, obj=job, request=request,
        extra={"what": kind, "format": export_format, "step": "requested"},
    )  # fmt: skip

    def broker_down() -> None:
        ExportJob.objects.filter(pk=job.pk, status=ExportJobStatus.QUEUED).update(
            status=ExportJobStatus.FAILED, detail="The task queue is unavailable; nothing was exported. Retry.",
            finished_at=timezone.now(), updated_at=timezone.now(),
        )  # fmt: skip

    transaction.on_commit(lambda: publish(task_named("patients.tasks.run_export_job"), job.pk, on_failure=broker_down))
    return job


def export_job_run(*, job_id: int) -> None:
    """Write a queued export once (a redelivered task finds it no longer queued)."""
    if not ExportJob.objects.filter(pk=job_id, status=ExportJobStatus.QUEUED).update(
        status=ExportJobStatus.RUNNING, updated_at=timezone.now()
    ):
        return
    job = ExportJob.objects.select_related("clinic").get(pk=job_id)
    out = io.StringIO(newline="")
    rows = _exports(job.format)[job.kind](clinic=job.clinic, out=out)
    now = timezone.now()
    ExportJob.objects.filter(pk=job_id).update(
        status=ExportJobStatus.SUCCEEDED, content=out.getvalue(), rows=rows, finished_at=now,
        expires_at=now + EXPORT_TTL, updated_at=now,
    )  # fmt: skip


def export_job_download(*, job: ExportJob, request) -> tuple[str, ExportJob]:
    """The file, once: the row is locked, the content taken and dropped, the download audited."""
    with transaction.atomic():
        job = ExportJob.objects.select_for_update().get(pk=job.pk)
        if job.status in (ExportJobStatus.QUEUED, ExportJobStatus.RUNNING):
            raise ExportNotReady("The export is not finished yet; poll the job until its status is succeeded.")
        if job.status == ExportJobStatus.FAILED:
            raise ExportGone(job.detail or "The export failed; request a new one.")
        if job.downloaded_at is not None:
            raise ExportGone("This export was downloaded already; request a new one.")
        if job.expires_at is None or job.expires_at <= timezone.now():
            raise ExportGone("This export has expired; request a new one.")
        content = job.content
        job.content, job.downloaded_at = "", timezone.now()
        job.save(update_fields=["content", "downloaded_at", "updated_at"])
        audit_record(
            action=AuditAction.EXPORT, clinic=job.clinic, obj=job, request=request,
            extra={"what": job.kind, "format": job.format, "rows": job.rows, "step": "downloaded"},
        )  # fmt: skip
    return content, job


def export_jobs_expire() -> int:
    """Drop the files of exports past their expiry (beat, hourly); the rows stay."""
    return (
        ExportJob.objects.filter(expires_at__lte=timezone.now(), downloaded_at__isnull=True)
        .exclude(content="")
        .update(content="", updated_at=timezone.now())
    )


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
