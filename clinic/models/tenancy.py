"""Tenancy: the clinic, its places, services and staff (and the worker heartbeat)."""

from __future__ import annotations

import zoneinfo

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from clinic.security.roles import Role


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
    directions = models.TextField(
        blank=True,
        max_length=500,
        help_text="How to find the door, in words (no map): e.g. 'Second floor, entrance beside the pharmacy'. "
        "Shown in every appointment message.",
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["clinic", "name"], name="location_unique_name_per_clinic")]

    def __str__(self) -> str:
        return self.name

    @property
    def address_text(self) -> str:
        """The address on one line, e.g. '12 Main Street, Unit 3, Toronto ON M5V 2T6'."""
        town = " ".join(part for part in (self.city, self.region, self.postal_code) if part)
        return ", ".join(part for part in (self.address_line1, self.address_line2, town) if part)


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
