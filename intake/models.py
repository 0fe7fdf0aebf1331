"""Intake questionnaires, links, submissions, and the screening flags they raise."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from clinic.models import ClinicOwned
from treatments.models import Side


class FlagSeverity(models.TextChoices):
    URGENT = "urgent", "Urgent: refer before treatment"
    CAUTION = "caution", "Caution"
    INFO = "info", "Information"


class PatientFlagQuerySet(models.QuerySet):
    def active(self):
        """Flags still in force: not cleared by a clinician."""
        return self.filter(cleared_at__isnull=True)

    def unacknowledged(self):
        return self.active().filter(acknowledged_at__isnull=True)


class PatientFlag(ClinicOwned):
    """A screening result on a patient: a red flag or contraindication.

    Raised by intake screening rules (`rule_code` names the rule); shown on the patient
    and on the session-note screen until a therapist acknowledges it, and in force for
    treatment safety checks until a clinician clears it. `region` is a body-region code
    (treatments/catalog_data/body_regions.yaml; blank = whole body) and `side` its laterality.
    """

    patient = models.ForeignKey("patients.Patient", on_delete=models.CASCADE, related_name="flags")
    rule_code = models.SlugField(max_length=60)
    severity = models.CharField(max_length=10, choices=FlagSeverity.choices)
    title = models.CharField(max_length=200)
    reason = models.TextField(blank=True)
    region = models.CharField(max_length=40, blank=True)
    side = models.CharField(max_length=10, choices=Side.choices, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    cleared_at = models.DateTimeField(null=True, blank=True)
    cleared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    cleared_reason = models.TextField(blank=True)

    objects = PatientFlagQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # Active flags of one patient (patient page, note screen, safety checks).
            models.Index(fields=["patient"], condition=Q(cleared_at__isnull=True), name="flag_patient_active"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(acknowledged_at__isnull=True) | Q(acknowledged_by__isnull=False),
                name="flag_acknowledged_has_who",
            ),
            models.CheckConstraint(
                condition=Q(cleared_at__isnull=True) | Q(cleared_by__isnull=False), name="flag_cleared_has_who"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_severity_display()}: {self.title}"
