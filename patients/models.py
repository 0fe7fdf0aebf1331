"""Patients of a clinic: identity, contact details and reminder consents."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from phonenumber_field.modelfields import PhoneNumberField

from clinic.models import ClinicOwned


class Gender(models.TextChoices):
    """FHIR AdministrativeGender; `gender_text` holds the patient's own words."""

    MALE = "male", "Male"
    FEMALE = "female", "Female"
    OTHER = "other", "Other"
    UNKNOWN = "unknown", "Unknown"


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"


class PatientQuerySet(models.QuerySet):
    def active(self):
        return self.filter(is_archived=False)


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
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = PatientQuerySet.as_manager()

    class Meta:
        ordering = ["family_name", "given_name", "id"]
        indexes = [
            # Sync by integrations: `?updated_since=` within a clinic.
            models.Index(fields=["clinic", "updated_at"], name="patient_clinic_updated"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(email_consent=False) | ~Q(email=""), name="patient_email_consent_needs_email"
            ),
        ]

    def __str__(self) -> str:
        return self.full_name

    @property
    def full_name(self) -> str:
        return f"{self.given_name} {self.family_name}".strip()
