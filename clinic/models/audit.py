"""The audit trail and emergency (break-glass) access."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from clinic.models.tenancy import Clinic, ClinicOwned, User


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
    """Append-only record of who read or changed what. Written by `clinic.security.audit.audit_record`.

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
        at = timezone.localtime(self.occurred_at)
        return f"{at:%Y-%m-%d %H:%M:%S} {self.actor_label} {self.action} {self.object_type}#{self.object_id}"


class AuditCheckpoint(models.Model):
    """The head of one clinic's audit chain at a moment, signed, kept apart from the chain.

    A hash chain cannot see its own tail cut off: TRUNCATE, or deleting the newest rows,
    leaves what remains intact. `clinic.security.audit.audit_checkpoint_record` (beat) writes one of
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
        return f"{self.user} → patient {self.patient_id} at {timezone.localtime(self.opened_at):%Y-%m-%d %H:%M}"
