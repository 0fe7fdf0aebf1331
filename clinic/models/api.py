"""Integration plumbing: API keys, idempotency records and import jobs."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from clinic.models.tenancy import ClinicOwned, User


class ApiKey(ClinicOwned):
    """A key for an integration: shown once, stored as a SHA-256 digest, scoped, revocable.

    Keys are 256-bit random values, so a fast digest is enough; a slow password
    hash would only add latency to every API call.
    """

    name = models.CharField(max_length=120)
    prefix = models.CharField(max_length=12, unique=True, help_text="First characters of the key, shown to find it.")
    digest = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, help_text="Name, scopes or revocation changed (not last use).")
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


class IdempotencyStatus(models.TextChoices):
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETED = "completed", "Completed"


class IdempotencyRecord(ClinicOwned):
    """One `Idempotency-Key` of one caller (API key or user): the request it stood for and
    the response to replay. Written by `clinic.api.idempotency`; kept at least 24 hours."""

    principal = models.CharField(max_length=40, help_text="'key:<id>' or 'user:<id>'.")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path and body.")
    status = models.CharField(max_length=20, choices=IdempotencyStatus.choices, default=IdempotencyStatus.IN_PROGRESS)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["clinic", "principal", "key"], name="idempotency_unique_key_per_caller"),
        ]
        indexes = [
            # The cleanup sweep: DELETE ... WHERE expires_at < now().
            models.Index(fields=["expires_at"], name="idempotency_expires"),
        ]

    def __str__(self) -> str:
        return f"{self.principal} {self.key} ({self.status})"


class ImportJobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed (nothing imported)"


class ImportJob(ClinicOwned):
    """A CSV import submitted through the API and run by a Celery worker, all rows or none."""

    kind = models.CharField(max_length=20, choices=[("patients", "Patients")], default="patients")
    status = models.CharField(max_length=20, choices=ImportJobStatus.choices, default=ImportJobStatus.QUEUED)
    csv_text = models.TextField(help_text="The uploaded file; cleared once the job has run.")
    mapping = models.JSONField(default=dict, blank=True, help_text="Our field -> their column header.")
    dry_run = models.BooleanField(default=False)
    date_format = models.CharField(
        max_length=40, blank=True, help_text="Dates that are not ISO 8601: DMY, MDY, YMD or a strptime format."
    )
    rows = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=dict, blank=True, help_text="CSV line -> field errors.")
    detail = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.kind} import #{self.pk} ({self.status})"


class ExportJobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Ready to download"
    FAILED = "failed", "Failed"


class ExportFormat(models.TextChoices):
    CSV = "csv", "CSV"
    NDJSON = "ndjson", "FHIR NDJSON (one resource per line)"


class ExportJob(ClinicOwned):
    """An export requested through the API, written by a worker, downloadable once by whoever
    asked (the same user or the same API key) until it expires; the file is dropped on download
    or expiry, the row stays as the record of what left the clinic."""

    kind = models.CharField(max_length=40, help_text="What is exported: patients, appointments.")
    format = models.CharField(max_length=10, choices=ExportFormat.choices, default=ExportFormat.CSV)
    status = models.CharField(max_length=20, choices=ExportJobStatus.choices, default=ExportJobStatus.QUEUED)
    content = models.TextField(blank=True, help_text="The file, until it is downloaded or expires.")
    rows = models.PositiveIntegerField(default=0)
    detail = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_by_key = models.ForeignKey(ApiKey, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    downloaded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["expires_at"], name="export_job_expires")]

    def __str__(self) -> str:
        return f"{self.kind} export #{self.pk} ({self.status})"


# --- messaging: outbox, reminder policy, templates, opt-outs ---------------------------
