"""Appointments and the availability they are booked against: series, history, working hours,
exceptions, calendar feeds and the waitlist.

Times: appointments store aware datetimes (UTC in the database) and are rendered in the
clinic's time zone. Working hours and exceptions are wall-clock times in the clinic's
time zone, turned into instants per date (see `sessions.availability`), so 09:00 stays
09:00 across daylight-saving changes.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib.postgres.fields import DateTimeRangeField, RangeBoundary, RangeOperators
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Func, Q
from django.utils import timezone

from clinic.models import ClinicOwned
from clinic.models.constraints import PostgresOnlyExclusionConstraint


class AppointmentStatus(models.TextChoices):
    BOOKED = "booked", "Booked"
    CONFIRMED = "confirmed", "Confirmed"
    ARRIVED = "arrived", "Arrived"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"
    NO_SHOW = "no_show", "No-show"


# Statuses that hold the practitioner's and the room's time.
ACTIVE_STATUSES = (
    AppointmentStatus.BOOKED,
    AppointmentStatus.CONFIRMED,
    AppointmentStatus.ARRIVED,
    AppointmentStatus.COMPLETED,
)
ACTIVE_Q = Q(status__in=[s.value for s in ACTIVE_STATUSES])


class ConfirmedVia(models.TextChoices):
    STAFF = "staff", "By staff"
    EMAIL_LINK = "email_link", "Patient, by the link in an email"
    SMS_REPLY = "sms_reply", "Patient, by SMS reply"


class CancelledBy(models.TextChoices):
    PATIENT = "patient", "Patient"
    CLINIC = "clinic", "Clinic"


# The longest time one appointment may hold (duration plus buffer). Overlap queries bound
# `start` from below with it, so they range-scan the (practitioner|room|patient, start)
# indexes instead of reading every past appointment.
MAX_APPOINTMENT_SPAN = dt.timedelta(hours=12)


class TsTzRange(Func):
    """`tstzrange(start, end, '[)')`: the half-open interval an appointment occupies."""

    function = "TSTZRANGE"
    output_field = DateTimeRangeField()


class AppointmentQuerySet(models.QuerySet):
    def active(self):
        return self.filter(ACTIVE_Q)

    def overlapping(self, start, end):
        """Rows whose occupied time (buffer included) overlaps [start, end)."""
        return self.filter(start__lt=end, start__gt=start - MAX_APPOINTMENT_SPAN, blocked_until__gt=start)


class AppointmentSeries(ClinicOwned):
    """One request that booked several occurrences (weekly or every K days)."""

    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="appointment_series")
    practitioner = models.ForeignKey("clinic.Practitioner", on_delete=models.PROTECT, related_name="+")
    service = models.ForeignKey("clinic.Service", on_delete=models.PROTECT, related_name="+")
    first_start = models.DateTimeField()
    interval_days = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(90)])
    occurrences = models.PositiveSmallIntegerField(validators=[MinValueValidator(2), MaxValueValidator(52)])
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "appointment series"
        constraints = [
            models.CheckConstraint(
                condition=Q(interval_days__gte=1) & Q(interval_days__lte=90), name="series_interval_1_to_90_days"
            ),
            models.CheckConstraint(
                condition=Q(occurrences__gte=2) & Q(occurrences__lte=52), name="series_2_to_52_occurrences"
            ),
        ]

    def __str__(self) -> str:
        first = timezone.localtime(self.first_start)
        return f"{self.occurrences} × every {self.interval_days} days from {first:%Y-%m-%d}"


class Appointment(ClinicOwned):
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="appointments")
    practitioner = models.ForeignKey("clinic.Practitioner", on_delete=models.PROTECT, related_name="appointments")
    service = models.ForeignKey("clinic.Service", on_delete=models.PROTECT, related_name="appointments")
    room = models.ForeignKey(
        "clinic.Room", on_delete=models.PROTECT, null=True, blank=True, related_name="appointments"
    )
    start = models.DateTimeField()
    end = models.DateTimeField()
    status = models.CharField(max_length=20, choices=AppointmentStatus.choices, default=AppointmentStatus.BOOKED)
    notes = models.TextField(blank=True, help_text="Front-desk notes; no clinical content.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Booking: `blocked_until` is `end` plus the service's buffer, stored so that the
    # exclusion constraints can compare the whole occupied time.
    blocked_until = models.DateTimeField(help_text="End plus the service's buffer.")
    location = models.ForeignKey(
        "clinic.Location", on_delete=models.PROTECT, null=True, blank=True, related_name="appointments"
    )
    series = models.ForeignKey(
        AppointmentSeries, on_delete=models.SET_NULL, null=True, blank=True, related_name="appointments"
    )
    # Who put the appointment with its practitioner: the booker, or whoever moved it to another
    # practitioner (an import names its staff member); empty for an API key or a patient
    # accepting a waitlist offer.
    # A booking by someone other than the practitioner makes a care relationship (clinic.access).
    booked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    hours_override_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Who booked this outside working hours.",
    )
    hours_override_reason = models.CharField(max_length=200, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    cancelled_by_party = models.CharField(max_length=10, choices=CancelledBy.choices, blank=True)
    cancellation_reason = models.CharField(max_length=200, blank=True)
    late_cancellation = models.BooleanField(default=False)
    # Who confirmed it and how (sessions.services.confirmation); kept once set.
    confirmed_at = models.DateTimeField(null=True, blank=True)
    confirmed_via = models.CharField(max_length=12, choices=ConfirmedVia.choices, blank=True)
    # iCalendar SEQUENCE: bumped on every change a calendar should pick up.
    sequence = models.PositiveIntegerField(default=0)

    objects = AppointmentQuerySet.as_manager()

    class Meta:
        ordering = ["start", "id"]
        permissions = [("override_hours_appointment", "Can book outside working hours")]
        indexes = [
            # A practitioner's day and the booking overlap check.
            models.Index(fields=["practitioner", "start"], name="appt_practitioner_start"),
            # Sync by integrations: `?updated_since=` within a clinic.
            models.Index(fields=["clinic", "updated_at"], name="appt_clinic_updated"),
            # Room overlap check and the admin's room day view.
            models.Index(fields=["room", "start"], name="appt_room_start", condition=Q(room__isnull=False)),
            # Patient overlap check and "this patient's appointments" lists.
            models.Index(fields=["patient", "start"], name="appt_patient_start"),
            # API lists page by -id within a clinic (cursor pagination): without it, a clinic
            # whose rows are old scans past every other clinic's newer rows.
            models.Index(fields=["clinic", "-id"], name="appt_clinic_id"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(end__gt=F("start")), name="appointment_end_after_start"),
            models.CheckConstraint(
                condition=Q(blocked_until__gte=F("end")),
                name="appointment_blocked_until_not_before_end",
            ),
            models.CheckConstraint(
                condition=~Q(status=AppointmentStatus.CANCELLED) | Q(cancelled_at__isnull=False),
                name="appointment_cancelled_has_time",
            ),
            PostgresOnlyExclusionConstraint(
                name="appointment_no_practitioner_overlap",
                expressions=[
                    ("practitioner", RangeOperators.EQUAL),
                    (TsTzRange("start", "blocked_until", RangeBoundary()), RangeOperators.OVERLAPS),
                ],
                condition=ACTIVE_Q,
                violation_error_code="practitioner_overlap",
            ),
            PostgresOnlyExclusionConstraint(
                name="appointment_no_room_overlap",
                expressions=[
                    ("room", RangeOperators.EQUAL),
                    (TsTzRange("start", "blocked_until", RangeBoundary()), RangeOperators.OVERLAPS),
                ],
                condition=ACTIVE_Q & Q(room__isnull=False),
                violation_error_code="room_overlap",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.patient} with {self.practitioner} at {timezone.localtime(self.start):%Y-%m-%d %H:%M}"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def confirmation_text(self) -> str:
        """For staff screens (calendar, admin): 'Confirmed by SMS reply, 2 Mar 09:14' or ''.
        The time is in the active zone (the clinic's on staff pages)."""
        if self.confirmed_at is None:
            return ""
        how = {
            ConfirmedVia.STAFF: "by staff",
            ConfirmedVia.EMAIL_LINK: "by the patient (email link)",
            ConfirmedVia.SMS_REPLY: "by the patient (SMS reply)",
        }.get(self.confirmed_via, "")
        return f"Confirmed {how}, {timezone.localtime(self.confirmed_at):%d %b %H:%M}".replace(" ,", ",")


class AppointmentChangeKind(models.TextChoices):
    BOOKED = "booked", "Booked"
    RESCHEDULED = "rescheduled", "Rescheduled"
    STATUS = "status", "Status changed"


class AppointmentChange(models.Model):
    """History of an appointment: booking, every move (old and new time) and status change."""

    appointment = models.ForeignKey(Appointment, on_delete=models.CASCADE, related_name="changes")
    kind = models.CharField(max_length=20, choices=AppointmentChangeKind.choices)
    at = models.DateTimeField()
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    old_start = models.DateTimeField(null=True, blank=True)
    new_start = models.DateTimeField(null=True, blank=True)
    old_practitioner = models.ForeignKey(
        "clinic.Practitioner", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    new_practitioner = models.ForeignKey(
        "clinic.Practitioner", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    old_room = models.ForeignKey("clinic.Room", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    new_room = models.ForeignKey("clinic.Room", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    old_status = models.CharField(max_length=20, choices=AppointmentStatus.choices, blank=True)
    new_status = models.CharField(max_length=20, choices=AppointmentStatus.choices, blank=True)
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["appointment", "at", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} at {timezone.localtime(self.at):%Y-%m-%d %H:%M}"


class WorkingHours(ClinicOwned):
    """A practitioner's weekly interval at a location (several per day are fine)."""

    class Weekday(models.IntegerChoices):
        MONDAY = 0, "Monday"
        TUESDAY = 1, "Tuesday"
        WEDNESDAY = 2, "Wednesday"
        THURSDAY = 3, "Thursday"
        FRIDAY = 4, "Friday"
        SATURDAY = 5, "Saturday"
        SUNDAY = 6, "Sunday"

    practitioner = models.ForeignKey("clinic.Practitioner", on_delete=models.CASCADE, related_name="working_hours")
    location = models.ForeignKey("clinic.Location", on_delete=models.PROTECT, related_name="working_hours")
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    start_time = models.TimeField()
    end_time = models.TimeField()

    class Meta:
        ordering = ["practitioner", "weekday", "start_time"]
        verbose_name_plural = "working hours"
        constraints = [
            models.CheckConstraint(condition=Q(end_time__gt=F("start_time")), name="working_hours_end_after_start"),
            models.CheckConstraint(condition=Q(weekday__gte=0) & Q(weekday__lte=6), name="working_hours_weekday_0_6"),
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.start_time:%H:%M}-{self.end_time:%H:%M}"

    def clean(self) -> None:
        errors = {}
        if self.practitioner_id and self.clinic_id and self.practitioner.clinic_id != self.clinic_id:
            errors["practitioner"] = "This practitioner belongs to another clinic."
        if self.location_id and self.clinic_id and self.location.clinic_id != self.clinic_id:
            errors["location"] = "This location belongs to another clinic."
        if self.start_time and self.end_time and self.end_time <= self.start_time:
            errors["end_time"] = "The end must be after the start."
        if errors:
            raise ValidationError(errors)
        if self.practitioner_id and self.start_time and self.end_time and self.weekday is not None:
            overlapping = WorkingHours.objects.filter(
                practitioner_id=self.practitioner_id,
                weekday=self.weekday,
                start_time__lt=self.end_time,
                end_time__gt=self.start_time,
            ).exclude(pk=self.pk)
            if overlapping.exists():
                raise ValidationError("These hours overlap other hours of this practitioner on the same day.")


class ExceptionKind(models.TextChoices):
    TIME_OFF = "time_off", "Time off"
    EXTRA = "extra", "Extra shift"


class AvailabilityException(ClinicOwned):
    """A dated change to the weekly hours: time off (all day without times) or an extra shift."""

    practitioner = models.ForeignKey(
        "clinic.Practitioner", on_delete=models.CASCADE, related_name="availability_exceptions"
    )
    kind = models.CharField(max_length=10, choices=ExceptionKind.choices)
    date = models.DateField()
    start_time = models.TimeField(null=True, blank=True, help_text="Empty with the end: the whole day.")
    end_time = models.TimeField(null=True, blank=True)
    location = models.ForeignKey(
        "clinic.Location", on_delete=models.PROTECT, null=True, blank=True, help_text="Where an extra shift is."
    )
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["practitioner", "date", "start_time"]
        indexes = [
            # Availability for a date range: one practitioner's (or all) exceptions between two dates.
            models.Index(fields=["practitioner", "date"], name="availability_exc_date"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(Q(start_time__isnull=True) & Q(end_time__isnull=True))
                | (Q(start_time__isnull=False) & Q(end_time__isnull=False) & Q(end_time__gt=F("start_time"))),
                name="availability_exc_times_both_or_none",
            ),
            models.CheckConstraint(
                condition=~Q(kind="extra") | (Q(start_time__isnull=False) & Q(location__isnull=False)),
                name="availability_exc_extra_has_times_and_location",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.date:%Y-%m-%d}"

    def clean(self) -> None:
        errors = {}
        if self.practitioner_id and self.clinic_id and self.practitioner.clinic_id != self.clinic_id:
            errors["practitioner"] = "This practitioner belongs to another clinic."
        if self.location_id and self.clinic_id and self.location.clinic_id != self.clinic_id:
            errors["location"] = "This location belongs to another clinic."
        if (self.start_time is None) != (self.end_time is None):
            errors["end_time"] = "Give both times, or neither for the whole day."
        elif self.start_time and self.end_time <= self.start_time:
            errors["end_time"] = "The end must be after the start."
        if self.kind == ExceptionKind.EXTRA:
            if self.start_time is None:
                errors["start_time"] = "An extra shift needs its times."
            if self.location_id is None:
                errors["location"] = "An extra shift needs its location."
        if errors:
            raise ValidationError(errors)


class CalendarFeed(ClinicOwned):
    """A practitioner's iCalendar feed behind a secret URL; revoking it kills the URL."""

    practitioner = models.ForeignKey("clinic.Practitioner", on_delete=models.CASCADE, related_name="calendar_feeds")
    prefix = models.CharField(max_length=12, unique=True)
    digest = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the secret in the URL.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.practitioner} feed ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class WaitlistStatus(models.TextChoices):
    WAITING = "waiting", "Waiting"
    BOOKED = "booked", "Booked"
    WITHDRAWN = "withdrawn", "Withdrawn"
    LAPSED = "lapsed", "Window passed"


class WaitlistEntry(ClinicOwned):
    """A patient waiting for an earlier slot with a service (and optionally a practitioner)."""

    patient = models.ForeignKey("patients.Patient", on_delete=models.CASCADE, related_name="waitlist_entries")
    service = models.ForeignKey("clinic.Service", on_delete=models.PROTECT, related_name="+")
    practitioner = models.ForeignKey(
        "clinic.Practitioner",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty: any practitioner who offers the service.",
    )
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    status = models.CharField(max_length=10, choices=WaitlistStatus.choices, default=WaitlistStatus.WAITING)
    appointment = models.OneToOneField(
        Appointment, on_delete=models.SET_NULL, null=True, blank=True, related_name="waitlist_entry"
    )
    notes = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "waitlist entries"
        indexes = [
            # Matching a freed slot: waiting entries of a clinic and service, oldest first.
            models.Index(
                fields=["clinic", "service", "created_at"],
                name="waitlist_waiting",
                condition=Q(status="waiting"),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(window_end__gt=F("window_start")), name="waitlist_window_end_after_start"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.patient} waiting for {self.service}"


class OfferStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    ACCEPTED = "accepted", "Accepted"
    DECLINED = "declined", "Declined"
    EXPIRED = "expired", "Expired"
    TAKEN = "taken", "Taken by someone else"


class WaitlistOffer(ClinicOwned):
    """A freed slot offered to one waiting patient; the first accepted offer books it."""

    entry = models.ForeignKey(WaitlistEntry, on_delete=models.CASCADE, related_name="offers")
    practitioner = models.ForeignKey("clinic.Practitioner", on_delete=models.CASCADE, related_name="+")
    room = models.ForeignKey("clinic.Room", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    start = models.DateTimeField()
    status = models.CharField(max_length=10, choices=OfferStatus.choices, default=OfferStatus.PENDING)
    expires_at = models.DateTimeField()
    freed_by = models.ForeignKey(
        Appointment, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", help_text="What freed it."
    )
    appointment = models.ForeignKey(Appointment, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    responded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The expiry sweeper: pending offers whose time is up.
            models.Index(fields=["expires_at"], name="waitlist_offer_pending_due", condition=Q(status="pending")),
        ]
        constraints = [
            models.UniqueConstraint(fields=["entry", "practitioner", "start"], name="waitlist_offer_once_per_slot"),
        ]

    def __str__(self) -> str:
        return f"Offer of {timezone.localtime(self.start):%Y-%m-%d %H:%M} to {self.entry.patient}"
