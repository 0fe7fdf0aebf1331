"""Intake questionnaires, links, submissions, and the screening flags they raise."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from clinic.models import Clinic, ClinicOwned
from intake.definition import parse_form
from intake.tokens import token_for
from treatments.models import Side


class IntakeChoice(models.TextChoices):
    """Which shared intake a new link sends (the questionnaire codes of `intake/catalog_data/`)."""

    LEG = "leg-knee-back-pain", "Leg, knee and back pain"
    UPPER = "neck-shoulder-arm-hand-pain", "Neck, shoulder, arm and hand pain"
    BOTH = "both", "Both: one link for each"

    @classmethod
    def codes(cls, choice: str) -> list[str]:
        """The questionnaire codes a choice sends, in the order the links are made."""
        return [cls.LEG, cls.UPPER] if choice == cls.BOTH else [choice]


class IntakeSettings(models.Model):
    """A clinic's intake preferences: which intake links send, link lifetime, page branding."""

    clinic = models.OneToOneField(Clinic, on_delete=models.CASCADE, related_name="intake_settings")
    link_valid_days = models.PositiveSmallIntegerField(
        default=7, validators=[MinValueValidator(1), MaxValueValidator(90)], help_text="How long a new link works."
    )
    brand_color = models.CharField(
        max_length=7,
        default="#1f5f8b",
        help_text="Accent colour of the patient pages, as #rrggbb.",
        # Used inside a <style> block, so only a strict hex colour is allowed.
        validators=[RegexValidator(r"^#[0-9a-fA-F]{6}$", "Use a colour like #1f5f8b.")],
    )
    logo_url = models.URLField(blank=True)
    welcome_text = models.TextField(blank=True, help_text="Shown on the first page of the intake.")
    intakes = models.CharField(
        max_length=40,
        choices=IntakeChoice.choices,
        default=IntakeChoice.LEG,
        help_text="The intake a new link sends when staff don't choose one; with both, each patient gets two links.",
    )

    class Meta:
        verbose_name_plural = "intake settings"
        constraints = [
            models.CheckConstraint(condition=Q(intakes__in=IntakeChoice.values), name="intake_settings_intakes_known"),
            models.CheckConstraint(
                condition=Q(link_valid_days__gte=1, link_valid_days__lte=90), name="intake_settings_valid_days_range"
            ),
        ]

    def __str__(self) -> str:
        return f"Intake settings of {self.clinic}"


class QuestionnaireStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PUBLISHED = "published", "Published"
    RETIRED = "retired", "Retired"


class Questionnaire(models.Model):
    """One version of an intake form. The definition is data (sections, questions, rules).

    A published version is never edited: a change is a new row with the next version
    number, and each submission points at the exact version it answered. `clinic` is
    empty for the shared forms loaded from `intake/catalog_data/`.
    """

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    code = models.SlugField(max_length=60)
    version = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    status = models.CharField(max_length=10, choices=QuestionnaireStatus.choices, default=QuestionnaireStatus.DRAFT)
    definition = models.JSONField(help_text="Sections, questions and screening rules; see intake/definition.py.")
    published_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["code", "version"], condition=Q(clinic__isnull=True), name="questionnaire_shared_code_version"
            ),
            models.UniqueConstraint(
                fields=["clinic", "code", "version"],
                condition=Q(clinic__isnull=False),
                name="questionnaire_clinic_code_version",
            ),
            models.CheckConstraint(
                condition=Q(status="draft") | Q(published_at__isnull=False), name="questionnaire_published_has_when"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} (v{self.version})"

    @property
    def form(self):
        """The parsed definition (`intake.definition.Form`)."""
        if not hasattr(self, "_form"):
            self._form = parse_form(self.definition)
        return self._form


class IntakeLinkStatus(models.TextChoices):
    OPEN = "open", "Open"
    SUBMITTED = "submitted", "Submitted"
    REVOKED = "revoked", "Revoked"


class IntakeLinkQuerySet(models.QuerySet):
    def usable(self):
        return self.filter(status=IntakeLinkStatus.OPEN, expires_at__gt=timezone.now())


class IntakeLink(ClinicOwned):
    """A patient's way into one intake: no account, just a signed URL.

    The URL carries `nonce` signed with SECRET_KEY; the database stores only the
    nonce, so a copy of the database alone does not give working links, and a
    token altered by one character fails the signature before any lookup.
    """

    patient = models.ForeignKey("patients.Patient", on_delete=models.CASCADE, related_name="intake_links")
    appointment = models.ForeignKey(
        "treatment_sessions.Appointment", on_delete=models.SET_NULL, null=True, blank=True, related_name="intake_links"
    )
    questionnaire = models.ForeignKey(Questionnaire, on_delete=models.PROTECT, related_name="links")
    nonce = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=10, choices=IntakeLinkStatus.choices, default=IntakeLinkStatus.OPEN)
    expires_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    send_count = models.PositiveIntegerField(default=0)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    draft_answers = models.JSONField(default=dict, blank=True, help_text="Answers saved so far (save and resume).")
    draft_saved_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    companion = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The link of the other intake, made and sent together with this one (a clinic sending both).",
    )

    objects = IntakeLinkQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # A patient's intake history (patient page, API filter).
            models.Index(fields=["patient", "-created_at"], name="intakelink_patient_created"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="submitted") | Q(submitted_at__isnull=False), name="intakelink_submitted_has_when"
            ),
            models.CheckConstraint(
                condition=~Q(status="revoked") | Q(revoked_at__isnull=False), name="intakelink_revoked_has_when"
            ),
        ]

    def __str__(self) -> str:
        return f"Intake link for {self.patient} ({self.get_status_display()})"

    @property
    def is_expired(self) -> bool:
        return self.status == IntakeLinkStatus.OPEN and self.expires_at <= timezone.now()

    @property
    def token(self) -> str:
        return token_for(self.nonce)

    @property
    def url(self) -> str:
        from django.urls import reverse

        return settings.PUBLIC_BASE_URL + reverse("intake:start", args=[self.token])


class IntakeSubmission(ClinicOwned):
    """A patient's final answers to one questionnaire version. Never edited after submission."""

    patient = models.ForeignKey("patients.Patient", on_delete=models.CASCADE, related_name="intake_submissions")
    link = models.OneToOneField(IntakeLink, on_delete=models.PROTECT, related_name="submission")
    questionnaire = models.ForeignKey(Questionnaire, on_delete=models.PROTECT, related_name="submissions")
    answers = models.JSONField()
    signature_name = models.CharField(max_length=200, help_text="Name the patient typed to sign the consent.")
    consented_at = models.DateTimeField()
    submitted_at = models.DateTimeField()
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-submitted_at", "-id"]
        indexes = [
            models.Index(fields=["patient", "-submitted_at"], name="submission_patient_time"),
        ]

    def __str__(self) -> str:
        return f"{self.questionnaire} by {self.patient} on {self.submitted_at:%Y-%m-%d}"


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
    submission = models.ForeignKey(
        IntakeSubmission, on_delete=models.SET_NULL, null=True, blank=True, related_name="flags"
    )

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
        # No title: the name shows wherever the flag is named (admin titles, logs), to anyone.
        return f"{self.severity.capitalize()} flag #{self.pk}"
