"""Clinic-wide models: the clinic, its places, services and staff."""

from __future__ import annotations

import uuid
import zoneinfo
from datetime import time as dt_time

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from clinic.roles import Role


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not a known IANA time zone (e.g. America/Toronto).")


class User(AbstractUser):
    """Staff account. Patients have no account; they use signed links."""

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"


class SeriesConflictMode(models.TextChoices):
    FAIL = "fail", "A conflict fails the whole series"
    SKIP = "skip", "Skip conflicting occurrences, book the rest"


class Clinic(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60, unique=True)
    time_zone = models.CharField(max_length=64, default="America/Toronto", validators=[validate_time_zone])
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=32, blank=True)
    website = models.URLField(blank=True)
    currency = models.CharField(max_length=3, default="CAD")
    two_factor_required = models.BooleanField(
        default=True, help_text="Every staff member must sign in with a second factor (TOTP)."
    )
    session_idle_minutes = models.PositiveSmallIntegerField(
        default=30, validators=[MinValueValidator(5)], help_text="Staff are signed out after this much inactivity."
    )
    session_max_hours = models.PositiveSmallIntegerField(
        default=12, validators=[MinValueValidator(1)], help_text="Staff sign in again after this long, active or not."
    )
    api_rate_limit_per_minute = models.PositiveIntegerField(
        default=200,
        validators=[MinValueValidator(1)],
        help_text="API requests per minute allowed to each API key and each staff user of this clinic.",
    )
    retention_years = models.PositiveSmallIntegerField(
        default=7,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="Years after an erased patient's last visit before `apply_retention` removes their clinical records.",
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Booking policy (sessions/services.py reads these).
    booking_granularity_minutes = models.PositiveSmallIntegerField(
        default=15,
        validators=[MinValueValidator(5)],
        help_text="Appointments start on multiples of this many minutes past the hour, in the clinic's time zone.",
    )
    cancellation_notice_hours = models.PositiveSmallIntegerField(
        default=24, help_text="A cancellation with less notice than this is recorded as late."
    )
    refuse_patient_overlap = models.BooleanField(
        default=False, help_text="Refuse a booking that overlaps another active appointment of the same patient."
    )
    series_conflict_mode = models.CharField(
        max_length=10,
        choices=SeriesConflictMode.choices,
        default=SeriesConflictMode.FAIL,
        help_text="What a conflicting occurrence does to a recurring series.",
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(booking_granularity_minutes__gte=5) & Q(booking_granularity_minutes__lte=60),
                name="clinic_booking_granularity_5_to_60",
            ),
            models.CheckConstraint(condition=Q(api_rate_limit_per_minute__gte=1), name="clinic_rate_limit_positive"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)


class ClinicOwned(models.Model):
    """Base for every row that belongs to exactly one clinic."""

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT)

    class Meta:
        abstract = True


class Location(ClinicOwned):
    name = models.CharField(max_length=120)
    address_line1 = models.CharField(max_length=200, blank=True)
    address_line2 = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100, blank=True)
    region = models.CharField(max_length=100, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    country = models.CharField(max_length=2, default="CA")
    phone = models.CharField(max_length=32, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["clinic", "name"], name="location_unique_name_per_clinic")]

    def __str__(self) -> str:
        return self.name


class Service(ClinicOwned):
    name = models.CharField(max_length=120)
    modality = models.ForeignKey("treatments.Modality", on_delete=models.PROTECT, related_name="services")
    description = models.TextField(blank=True)
    duration_minutes = models.PositiveSmallIntegerField(validators=[MinValueValidator(5)])
    buffer_minutes = models.PositiveSmallIntegerField(default=0, help_text="Time kept free after the appointment.")
    price = models.DecimalField(max_digits=8, decimal_places=2, default=0, validators=[MinValueValidator(0)])
    requires_room = models.BooleanField(default=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["clinic", "name"], name="service_unique_name_per_clinic"),
            models.CheckConstraint(condition=Q(duration_minutes__gte=5), name="service_duration_at_least_5"),
            models.CheckConstraint(condition=Q(price__gte=0), name="service_price_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.duration_minutes} min)"


class Room(ClinicOwned):
    location = models.ForeignKey(Location, on_delete=models.PROTECT, null=True, blank=True, related_name="rooms")
    name = models.CharField(max_length=120)
    services = models.ManyToManyField(Service, blank=True, related_name="rooms", help_text="Services this room allows.")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["clinic", "name"], name="room_unique_name_per_clinic")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.location_id and self.location.clinic_id != self.clinic_id:
            raise ValidationError({"location": "This location belongs to another clinic."})


class Practitioner(ClinicOwned):
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="practitioner_profiles")
    display_name = models.CharField(max_length=120)
    modalities = models.ManyToManyField("treatments.Modality", blank=True, related_name="practitioners")
    services = models.ManyToManyField(Service, blank=True, related_name="practitioners")
    registration_number = models.CharField(max_length=60, blank=True, help_text="Licence or registration number.")
    registration_body = models.CharField(max_length=120, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["display_name"]
        constraints = [models.UniqueConstraint(fields=["clinic", "user"], name="practitioner_one_per_user_and_clinic")]

    def __str__(self) -> str:
        return self.display_name


class Membership(ClinicOwned):
    """A staff user's role in one clinic. A user may work in several clinics."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["clinic", "user"]
        constraints = [models.UniqueConstraint(fields=["clinic", "user"], name="membership_one_per_user_and_clinic")]

    def __str__(self) -> str:
        return f"{self.user} - {self.get_role_display()} at {self.clinic}"


class WorkerHeartbeat(models.Model):
    """Last time a Celery worker ran the heartbeat task that beat sends every minute."""

    name = models.CharField(max_length=60, unique=True)
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} @ {self.seen_at:%Y-%m-%d %H:%M:%S}"


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


class AuditAction(models.TextChoices):
    VIEW = "view", "Viewed"
    LIST = "list", "Listed"
    CREATE = "create", "Created"
    CHANGE = "change", "Changed"
    DELETE = "delete", "Deleted"
    SIGN = "sign", "Signed"
    ADDENDUM = "addendum", "Addendum added"
    EXPORT = "export", "Exported"
    ERASE = "erase", "Erased"
    DENIED = "denied", "Access denied"
    BREAK_GLASS = "break_glass", "Emergency access"
    LOGIN = "login", "Signed in"
    LOGOUT = "logout", "Signed out"
    LOGIN_FAILED = "login_failed", "Sign-in failed"


class AuditEvent(models.Model):
    """Append-only record of who read or changed what. Written by `clinic.audit.audit_record`.

    Each row stores the hash of the previous row of the same clinic, so an edited or
    deleted row breaks the chain (`manage.py verify_audit`). On PostgreSQL a trigger
    refuses UPDATE and DELETE on this table.
    """

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    occurred_at = models.DateTimeField()
    actor = models.ForeignKey(User, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    actor_label = models.CharField(max_length=150, help_text="Username, API key prefix or 'system'.")
    action = models.CharField(max_length=20, choices=AuditAction.choices)
    object_type = models.CharField(max_length=100, blank=True, help_text="app_label.model")
    object_id = models.CharField(max_length=64, blank=True)
    patient_id = models.BigIntegerField(null=True, blank=True)
    via = models.CharField(max_length=20, blank=True, help_text="admin, api, fhir, export, page, system")
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=200, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    reason = models.TextField(blank=True)
    extra = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64, blank=True)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["-id"]
        indexes = [
            # Owner's audit browser and "who saw this patient": newest first within a clinic.
            models.Index(fields=["clinic", "-occurred_at"], name="audit_clinic_time"),
            models.Index(fields=["clinic", "patient_id"], name="audit_clinic_patient"),
            # Every audit write reads the clinic's last hash (the chain): without this index that
            # read sorted all of the clinic's rows, a cost growing with the clinic's history.
            models.Index(fields=["clinic", "-id"], name="audit_clinic_chain"),
        ]

    def __str__(self) -> str:
        return (
            f"{self.occurred_at:%Y-%m-%d %H:%M:%S} {self.actor_label} {self.action} {self.object_type}#{self.object_id}"
        )


class AuditCheckpoint(models.Model):
    """The head of one clinic's audit chain at a moment, signed, kept apart from the chain.

    A hash chain cannot see its own tail cut off: TRUNCATE, or deleting the newest rows,
    leaves what remains intact. `clinic.audit.audit_checkpoint_record` (beat) writes one of
    these whenever a chain has grown, HMAC-signed with AUDIT_CHECKPOINT_KEY (a key the
    database does not hold), and `verify_audit` checks that every checkpoint's event is still
    in the chain with the same hash and count. Optionally also appended to
    AUDIT_CHECKPOINT_FILE, out of reach of someone who can only rewrite the database.
    On PostgreSQL a trigger refuses UPDATE and DELETE here too.
    """

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    # A plain number, not a foreign key: the event it anchors is exactly what may go missing.
    last_event_id = models.BigIntegerField(unique=True)
    last_hash = models.CharField(max_length=64)
    event_count = models.PositiveBigIntegerField(help_text="Events in the chain up to and including last_event_id.")
    created_at = models.DateTimeField()
    signature = models.CharField(max_length=64)

    class Meta:
        ordering = ["-id"]
        indexes = [
            # The beat task's "latest checkpoint of each chain" and verify_audit's per-chain read.
            models.Index(fields=["clinic", "-last_event_id"], name="audit_checkpoint_chain"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} clinic {self.clinic_id} through #{self.last_event_id}"


class BreakGlassAccess(ClinicOwned):
    """Emergency access to a patient's clinical record by a therapist who is not one of
    the patient's usual practitioners. Needs a written reason; audited; owners review it."""

    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    reason = models.TextField()
    opened_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(User, on_delete=models.PROTECT, null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["-opened_at"]
        verbose_name = "emergency (break-glass) access"
        verbose_name_plural = "emergency (break-glass) accesses"
        indexes = [
            # "Does this user hold an open grant for this patient?" on every clinical read.
            models.Index(fields=["user", "patient", "expires_at"], name="breakglass_user_patient"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(expires_at__gt=models.F("opened_at")), name="breakglass_expires_after"),
            models.CheckConstraint(
                condition=Q(reviewed_at__isnull=True) | Q(reviewed_by__isnull=False), name="breakglass_reviewed_has_who"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} → patient {self.patient_id} at {self.opened_at:%Y-%m-%d %H:%M}"


class IdempotencyStatus(models.TextChoices):
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETED = "completed", "Completed"


class IdempotencyRecord(ClinicOwned):
    """One `Idempotency-Key` of one caller (API key or user): the request it stood for and
    the response to replay. Written by `clinic.idempotency`; kept at least 24 hours."""

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


class WebhookEventType(models.TextChoices):
    APPOINTMENT_CREATED = "appointment.created", "Appointment created"
    APPOINTMENT_UPDATED = "appointment.updated", "Appointment updated"
    APPOINTMENT_CANCELLED = "appointment.cancelled", "Appointment cancelled"
    INTAKE_SUBMITTED = "intake.submitted", "Intake submitted"
    NOTE_SIGNED = "note.signed", "Note signed"
    PATIENT_CREATED = "patient.created", "Patient created"
    PATIENT_UPDATED = "patient.updated", "Patient updated"


class WebhookEndpoint(ClinicOwned):
    """Where a clinic wants events sent. The signing secret is stored encrypted (Fernet, key
    derived from SECRET_KEY) because signing needs it back; see clinic.webhooks."""

    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    events = models.JSONField(default=list, help_text="Event types sent to this endpoint.")
    secret_encrypted = models.TextField(editable=False)
    is_active = models.BooleanField(default=True)
    failing_since = models.DateTimeField(null=True, blank=True, help_text="Start of the current run of failures.")
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.url

    def clean(self) -> None:
        unknown = sorted(set(self.events) - set(WebhookEventType.values)) if isinstance(self.events, list) else None
        if unknown is None or unknown or not self.events:
            raise ValidationError({"events": f"Choose one or more of: {', '.join(WebhookEventType.values)}."})


class WebhookEvent(ClinicOwned):
    """Outbox row: written in the same transaction as the change it reports."""

    event_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    type = models.CharField(max_length=40, choices=WebhookEventType.choices)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class WebhookDeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed (gave up)"
    CANCELLED = "cancelled", "Cancelled (endpoint disabled)"


class WebhookDelivery(ClinicOwned):
    """One event to one endpoint, retried with exponential backoff for up to 72 hours."""

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(
        max_length=20, choices=WebhookDeliveryStatus.choices, default=WebhookDeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event"], name="webhook_delivery_once_per_endpoint"),
            models.CheckConstraint(
                condition=~Q(status="pending") | Q(next_attempt_at__isnull=False),
                name="webhook_delivery_pending_has_next_attempt",
            ),
        ]
        indexes = [
            # The beat sweeper: pending rows whose next_attempt_at has come.
            models.Index(fields=["next_attempt_at"], name="webhook_delivery_due", condition=Q(status="pending")),
        ]

    def __str__(self) -> str:
        return f"{self.event} -> {self.endpoint} ({self.status})"


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


# --- messaging: outbox, reminder policy, templates, opt-outs ---------------------------


class MessageKind(models.TextChoices):
    APPOINTMENT_CONFIRMATION = "appointment_confirmation", "Booking confirmation"
    APPOINTMENT_REMINDER = "appointment_reminder", "Appointment reminder"
    APPOINTMENT_CANCELLED = "appointment_cancelled", "Cancellation notice"
    INTAKE_LINK = "intake_link", "Intake link"
    INTAKE_NUDGE = "intake_nudge", "Intake not yet completed"
    FOLLOWUP_NUDGE = "followup_nudge", "Follow-up re-booking nudge"
    WAITLIST_OFFER = "waitlist_offer", "Waitlist offer"


class MessageChannel(models.TextChoices):
    # Same values as patients.models.Channel (the patient's preferred channel).
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"


class MessageStatus(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    SKIPPED = "skipped", "Skipped"


class Message(ClinicOwned):
    """One message to one patient on one channel: a row of the outbox.

    Written in the same transaction as the change that causes it, with the time it is
    `due_at`; the beat sweeper claims due rows (status `sending` with a claim token and
    a lease) and queues one send task per chunk of rows. The unique key per (object, kind,
    channel, occurrence) makes the same reminder impossible to create twice.
    """

    kind = models.CharField(max_length=30, choices=MessageKind.choices)
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="messages")
    channel = models.CharField(max_length=10, choices=MessageChannel.choices)
    # What the message is about (appointment, intake link, note, waitlist offer).
    about_type = models.ForeignKey("contenttypes.ContentType", on_delete=models.PROTECT, related_name="+")
    about_id = models.BigIntegerField()
    occurrence = models.CharField(
        max_length=80, blank=True, help_text="Which one of several of the same kind, e.g. '48h@2026-05-01T14:00Z'."
    )
    context = models.JSONField(default=dict, blank=True, help_text="Values fixed when the message was created.")
    due_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Not sent after this time.")
    immediate = models.BooleanField(default=False, help_text="Sent even inside quiet hours.")
    status = models.CharField(max_length=10, choices=MessageStatus.choices, default=MessageStatus.SCHEDULED)
    reason = models.CharField(max_length=200, blank=True, help_text="Why it was skipped or cancelled.")
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    claim_token = models.UUIDField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    provider_message_id = models.CharField(max_length=200, blank=True)
    recipient = models.CharField(max_length=254, blank=True, help_text="Address or number it was sent to.")
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-due_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["about_type", "about_id", "kind", "channel", "occurrence"], name="message_unique_occurrence"
            ),
            models.CheckConstraint(
                condition=~Q(status="sending") | (Q(claim_token__isnull=False) & Q(lease_until__isnull=False)),
                name="message_sending_has_claim",
            ),
        ]
        indexes = [
            # Sweeper: `status = 'scheduled' AND due_at <= now ORDER BY due_at` (messages_claim_due).
            models.Index(fields=["due_at"], condition=Q(status="scheduled"), name="message_due_scheduled"),
            # Sweeper: claims of dead workers, `status = 'sending' AND lease_until < now`.
            models.Index(fields=["lease_until"], condition=Q(status="sending"), name="message_lease_sending"),
            # Triggers and the API: the messages about one object (appointment_messages_sync, ?appointment=).
            models.Index(fields=["about_type", "about_id"], name="message_about"),
            # API and admin: one patient's messages, newest first.
            models.Index(fields=["clinic", "patient", "-due_at"], name="message_clinic_patient"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} by {self.channel} to patient #{self.patient_id} ({self.status})"


def validate_lead_times(value) -> None:
    """`[{"hours": 48, "channel": "email"}, {"hours": 2, "channel": "sms"}]`."""
    if not isinstance(value, list):
        raise ValidationError("Expected a list of {hours, channel} entries.")
    seen = set()
    for entry in value:
        if not isinstance(entry, dict) or set(entry) != {"hours", "channel"}:
            raise ValidationError("Each lead time is {'hours': <1-720>, 'channel': 'email' or 'sms'}.")
        hours, channel = entry["hours"], entry["channel"]
        if not isinstance(hours, int) or isinstance(hours, bool) or not 1 <= hours <= 720:
            raise ValidationError(f"Lead time hours must be a whole number from 1 to 720, got {hours!r}.")
        if channel not in MessageChannel.values:
            raise ValidationError(f"Lead time channel must be email or sms, got {channel!r}.")
        if (hours, channel) in seen:
            raise ValidationError(f"Lead time {hours} h by {channel} is listed twice.")
        seen.add((hours, channel))


def default_lead_times() -> list[dict]:
    return [{"hours": 48, "channel": "email"}, {"hours": 2, "channel": "sms"}]


class ReminderPolicy(ClinicOwned):
    """A clinic's reminder settings. A clinic without a row uses the defaults of this model."""

    clinic = models.OneToOneField(Clinic, on_delete=models.PROTECT, related_name="reminder_policy")
    lead_times = models.JSONField(default=default_lead_times, validators=[validate_lead_times])
    quiet_hours_start = models.TimeField(
        null=True, blank=True, default=dt_time(21, 0), help_text="Clinic time; empty for no quiet hours."
    )
    quiet_hours_end = models.TimeField(null=True, blank=True, default=dt_time(8, 0))
    confirmations_immediate = models.BooleanField(
        default=True, help_text="Booking confirmations and cancellation notices go out even in quiet hours."
    )
    intake_nudge_hours = models.PositiveSmallIntegerField(
        default=24, validators=[MinValueValidator(1)], help_text="Hours before the appointment."
    )
    followup_second_nudge_days = models.PositiveSmallIntegerField(
        null=True, blank=True, default=7, help_text="Days after the first follow-up nudge; empty for only one."
    )

    class Meta:
        verbose_name_plural = "reminder policies"
        constraints = [
            models.CheckConstraint(
                condition=Q(quiet_hours_start__isnull=True, quiet_hours_end__isnull=True)
                | Q(quiet_hours_start__isnull=False, quiet_hours_end__isnull=False),
                name="reminder_policy_quiet_hours_both_or_neither",
            ),
        ]

    def __str__(self) -> str:
        return f"Reminder policy of {self.clinic}"


class ServiceReminderPolicy(ClinicOwned):
    """Lead times for one service, replacing the clinic's (e.g. a 7-day reminder for long sessions)."""

    service = models.OneToOneField(Service, on_delete=models.CASCADE, related_name="reminder_policy")
    lead_times = models.JSONField(validators=[validate_lead_times])

    class Meta:
        verbose_name_plural = "service reminder policies"

    def __str__(self) -> str:
        return f"Reminder lead times of {self.service}"

    def clean(self) -> None:
        if self.service_id and self.service.clinic_id != self.clinic_id:
            raise ValidationError({"service": "This service belongs to another clinic."})


class MessageTemplate(ClinicOwned):
    """A clinic's wording of one kind of message on one channel (Django template syntax).

    Without a row the default in clinic/templates/messages/ is used. The context is
    documented in clinic/messaging.py (`TEMPLATE_CONTEXT`); it holds no clinical detail.
    """

    kind = models.CharField(max_length=30, choices=MessageKind.choices)
    channel = models.CharField(max_length=10, choices=MessageChannel.choices)
    subject = models.CharField(max_length=200, blank=True, help_text="Email only.")
    body = models.TextField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["clinic", "kind", "channel"], name="message_template_one_per_kind_channel")
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.channel})"

    def clean(self) -> None:
        from clinic.messaging import template_check

        template_check(subject=self.subject, body=self.body)


class OptOutSource(models.TextChoices):
    SMS_STOP = "sms_stop", "SMS reply STOP"
    UNSUBSCRIBE_LINK = "unsubscribe_link", "Unsubscribe link"
    STAFF = "staff", "Recorded by staff"


class OptOut(ClinicOwned):
    """A patient's withdrawal of consent for one channel: when and how it came in."""

    patient = models.ForeignKey("patients.Patient", on_delete=models.CASCADE, related_name="opt_outs")
    channel = models.CharField(max_length=10, choices=MessageChannel.choices)
    source = models.CharField(max_length=20, choices=OptOutSource.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Patient #{self.patient_id} opted out of {self.channel} ({self.source})"
