"""Patients of a clinic: identity, contact details and reminder consents."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q, Value
from django.db.models.functions import Concat, Lower
from phonenumber_field.modelfields import PhoneNumberField

from clinic.models import ClinicOwned, MessageChannel


class Gender(models.TextChoices):
    """FHIR AdministrativeGender; `gender_text` holds the patient's own words."""

    MALE = "male", "Male"
    FEMALE = "female", "Female"
    OTHER = "other", "Other"
    UNKNOWN = "unknown", "Unknown"


# A patient's preferred channel is one of the channels messages go out on.
Channel = MessageChannel


class PatientQuerySet(models.QuerySet):
    def active(self):
        return self.filter(is_archived=False)

    def search(self, text: str):
        """Patients whose name, email or phone contain every word of `text` (case-insensitive).

        Served on PostgreSQL by the trigram index `patient_search_trgm` on
        `search_text` (migration 0003), so a search never scans the table.
        """
        queryset = self
        for word in normalise_search(text).split():
            queryset = queryset.filter(search_text__contains=word)
        return queryset


def normalise_search(text: str) -> str:
    """Lower-case; a phone number typed with spaces, dashes or brackets becomes its digits."""
    text = " ".join(text.split()).lower()
    digits = "".join(ch for ch in text if ch.isdigit())
    if digits and len(digits) >= 4 and all(ch.isdigit() or ch in "+-() ." for ch in text):
        return digits
    return text


class Patient(ClinicOwned):
    given_name = models.CharField(max_length=100)
    family_name = models.CharField(max_length=100)
    preferred_name = models.CharField(max_length=100, blank=True)
    birth_date = models.DateField(null=True, blank=True)
    gender = models.CharField(max_length=10, choices=Gender.choices, default=Gender.UNKNOWN)
    gender_text = models.CharField(max_length=100, blank=True)
    email = models.EmailField(blank=True)
    mobile_phone = PhoneNumberField(blank=True, help_text="Stored in E.164, e.g. +14165550123.")
    address_line1 = models.CharField(max_length=200, blank=True)
    address_line2 = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100, blank=True)
    region = models.CharField(max_length=100, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    country = models.CharField(max_length=2, blank=True)
    emergency_contact_name = models.CharField(max_length=200, blank=True)
    emergency_contact_phone = PhoneNumberField(blank=True)
    preferred_channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.EMAIL)
    email_consent = models.BooleanField(default=False)
    email_consent_at = models.DateTimeField(null=True, blank=True)
    email_consent_source = models.CharField(max_length=60, blank=True, help_text="How consent was given.")
    sms_consent = models.BooleanField(default=False)
    sms_consent_at = models.DateTimeField(null=True, blank=True)
    sms_consent_source = models.CharField(max_length=60, blank=True)
    is_archived = models.BooleanField(default=False)
    archived_at = models.DateTimeField(null=True, blank=True)
    merged_into = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="merged_from",
        help_text="Set when this record was merged into another; the other record holds the history now.",
    )
    # Lower-cased "given preferred family email phone", kept by the database itself
    # so every write path (admin, API, merge, bulk import) stays searchable.
    search_text = models.GeneratedField(
        expression=Lower(
            Concat(
                "given_name", Value(" "), "preferred_name", Value(" "), "family_name", Value(" "),
                "email", Value(" "), "mobile_phone",
                output_field=models.TextField(),
            )
        ),
        output_field=models.TextField(),
        db_persist=True,
    )  # fmt: skip
    # Erasure (patients/privacy.py): identity and contact data anonymised, clinical records kept.
    erased_at = models.DateTimeField(null=True, blank=True, editable=False)
    erased_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, editable=False, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = PatientQuerySet.as_manager()

    class Meta:
        ordering = ["family_name", "given_name", "id"]
        indexes = [
            # Sync by integrations: `?updated_since=` within a clinic.
            models.Index(fields=["clinic", "updated_at"], name="patient_clinic_updated"),
            # API lists page by -id within a clinic (cursor pagination).
            models.Index(fields=["clinic", "-id"], name="patient_clinic_id"),
            # Duplicate check on create: same clinic, family name and birth date.
            models.Index(fields=["clinic", "birth_date", "family_name"], name="patient_clinic_dob_family"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(email_consent=False) | ~Q(email=""), name="patient_email_consent_needs_email"
            ),
            models.CheckConstraint(
                condition=Q(sms_consent=False) | ~Q(mobile_phone=""), name="patient_sms_consent_needs_phone"
            ),
            models.CheckConstraint(
                condition=Q(is_archived=False) | Q(archived_at__isnull=False), name="patient_archived_has_when"
            ),
            models.CheckConstraint(
                condition=Q(merged_into__isnull=True) | Q(is_archived=True), name="patient_merged_is_archived"
            ),
            models.CheckConstraint(
                condition=Q(erased_at__isnull=True) | Q(is_archived=True), name="patient_erased_is_archived"
            ),
        ]

    def __str__(self) -> str:
        return self.full_name

    @property
    def full_name(self) -> str:
        return f"{self.given_name} {self.family_name}".strip()

    @property
    def display_name(self) -> str:
        """Name to greet the patient with: the preferred name when there is one."""
        return self.preferred_name or self.given_name
