"""Scored outcome measures: a clinic's settings and licensed texts, courses, links and responses."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from clinic.models import Clinic, ClinicOwned
from outcomes.measures import MEASURE_CHOICES, measure_named
from outcomes.tokens import token_for


def _validate_measure_codes(value) -> None:
    if not isinstance(value, list) or any(code not in dict(MEASURE_CHOICES) for code in value):
        raise ValidationError(f"Use a list of measure codes from: {', '.join(dict(MEASURE_CHOICES))}.")


class OutcomeSettings(models.Model):
    """Which measures a clinic asks at intake, and how often it repeats them."""

    clinic = models.OneToOneField(Clinic, on_delete=models.CASCADE, related_name="outcome_settings")
    baseline_measures = models.JSONField(
        default=list, blank=True, validators=[_validate_measure_codes],
        help_text='Measures sent after an intake is submitted, e.g. ["nprs", "lefs"].',
    )  # fmt: skip
    repeat_every_visits = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(52)],
        help_text="Send the measure again after this many attended visits (blank: not by visits).",
    )  # fmt: skip
    repeat_every_weeks = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(52)],
        help_text="Send the measure again this many weeks after the last one (blank: not by weeks).",
    )  # fmt: skip
    link_valid_days = models.PositiveSmallIntegerField(
        default=7, validators=[MinValueValidator(1), MaxValueValidator(90)], help_text="How long a new link works."
    )

    class Meta:
        verbose_name_plural = "outcome settings"
        constraints = [
            models.CheckConstraint(
                condition=Q(link_valid_days__gte=1, link_valid_days__lte=90), name="outcome_settings_valid_days_range"
            ),
        ]

    def __str__(self) -> str:
        return f"Outcome settings of {self.clinic}"


class MeasureText(ClinicOwned):
    """A clinic's licensed wording of a measure whose text we may not ship (ODI, QuickDASH).

    `items` maps each item code of the definition file to `{"text": ..., "options": [label, ...]}`,
    one label per value from the item's lowest to its highest."""

    measure = models.CharField(max_length=20, choices=MEASURE_CHOICES)
    instructions = models.TextField(blank=True)
    items = models.JSONField(help_text='{"s1": {"text": "Pain intensity", "options": ["...", ...]}, ...}')
    licence_note = models.CharField(max_length=300, help_text="Your licence for this wording (who granted it, when).")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["clinic", "measure"], name="measure_text_one_per_clinic")]

    def __str__(self) -> str:
        return f"{self.get_measure_display()} wording of {self.clinic}"


class OutcomeCourse(ClinicOwned):
    """One patient's course of care followed with one measure: from the baseline to the last
    repeat. The owners' report counts finished courses that reached the measure's MCID."""

    patient = models.ForeignKey("patients.Patient", on_delete=models.CASCADE, related_name="outcome_courses")
    measure = models.CharField(max_length=20, choices=MEASURE_CHOICES)
    practitioner = models.ForeignKey(
        "clinic.Practitioner", on_delete=models.SET_NULL, null=True, blank=True, related_name="outcome_courses"
    )
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    finished_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            # One open course per patient and measure: repeats join it.
            models.UniqueConstraint(
                fields=["patient", "measure"], condition=Q(finished_at__isnull=True), name="outcome_course_one_open"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_measure_display()} course #{self.pk}"

    @property
    def definition(self):
        return measure_named(self.measure)


class OutcomeLinkStatus(models.TextChoices):
    OPEN = "open", "Open"
    SUBMITTED = "submitted", "Submitted"
    REVOKED = "revoked", "Revoked"


class OutcomeLinkReason(models.TextChoices):
    BASELINE = "baseline", "Baseline"
    REPEAT = "repeat", "Repeat"


class OutcomeLink(ClinicOwned):
    """A patient's way into one measure: a signed URL, no account (like an intake link)."""

    patient = models.ForeignKey("patients.Patient", on_delete=models.CASCADE, related_name="outcome_links")
    course = models.ForeignKey(OutcomeCourse, on_delete=models.CASCADE, related_name="links")
    measure = models.CharField(max_length=20, choices=MEASURE_CHOICES)
    reason = models.CharField(max_length=10, choices=OutcomeLinkReason.choices, default=OutcomeLinkReason.BASELINE)
    nonce = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=10, choices=OutcomeLinkStatus.choices, default=OutcomeLinkStatus.OPEN)
    expires_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    submitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The repeat sweeper: the newest link of each open course.
            models.Index(fields=["course", "-created_at"], name="outcomelink_course_created"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="submitted") | Q(submitted_at__isnull=False), name="outcomelink_submitted_has_when"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_measure_display()} link #{self.pk} ({self.get_status_display()})"

    @property
    def token(self) -> str:
        return token_for(self.nonce)

    @property
    def url(self) -> str:
        return settings.PUBLIC_BASE_URL + reverse("outcomes:fill", args=[self.token])


class ResponseStatus(models.TextChoices):
    COMPLETE = "complete", "Complete"
    INCOMPLETE = "incomplete", "Incomplete (not scored)"


class OutcomeResponseQuerySet(models.QuerySet):
    def scored(self):
        return self.filter(status=ResponseStatus.COMPLETE)


class OutcomeResponse(ClinicOwned):
    """A patient's answers to one measure on one date, with the score the published rule gives.

    Never edited. An incomplete response keeps its answers and has no score."""

    patient = models.ForeignKey("patients.Patient", on_delete=models.CASCADE, related_name="outcome_responses")
    course = models.ForeignKey(OutcomeCourse, on_delete=models.CASCADE, related_name="responses")
    link = models.OneToOneField(OutcomeLink, on_delete=models.SET_NULL, null=True, blank=True, related_name="response")
    measure = models.CharField(max_length=20, choices=MEASURE_CHOICES)
    measure_version = models.PositiveSmallIntegerField()
    answers = models.JSONField()
    status = models.CharField(max_length=10, choices=ResponseStatus.choices)
    score = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    missing = models.JSONField(default=list, blank=True, help_text="Items left blank.")
    recorded_on = models.DateField(help_text="The day the patient answered, in the clinic's time zone.")
    recorded_at = models.DateTimeField(default=timezone.now)
    entered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        help_text="Staff who typed in a paper form; empty when the patient answered by link.",
    )  # fmt: skip
    updated_at = models.DateTimeField(auto_now=True)

    objects = OutcomeResponseQuerySet.as_manager()

    class Meta:
        ordering = ["-recorded_on", "-id"]
        indexes = [
            # A patient's series per measure (trend charts, API ?patient=).
            models.Index(fields=["patient", "measure", "recorded_on"], name="outcome_patient_measure_day"),
            models.Index(fields=["clinic", "-id"], name="outcome_response_clinic_id"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(Q(status="complete") & Q(score__isnull=False))
                | (Q(status="incomplete") & Q(score__isnull=True)),
                name="outcome_response_scored_iff_complete",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_measure_display()} response #{self.pk}"

    @property
    def definition(self):
        return measure_named(self.measure)
