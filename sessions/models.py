"""Appointments and treatment sessions."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q

from clinic.models import ClinicOwned


class AppointmentStatus(models.TextChoices):
    BOOKED = "booked", "Booked"
    CONFIRMED = "confirmed", "Confirmed"
    ARRIVED = "arrived", "Arrived"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"
    NO_SHOW = "no_show", "No-show"


ACTIVE_STATUSES = (
    AppointmentStatus.BOOKED,
    AppointmentStatus.CONFIRMED,
    AppointmentStatus.ARRIVED,
    AppointmentStatus.COMPLETED,
)


class AppointmentQuerySet(models.QuerySet):
    def active(self):
        return self.filter(status__in=ACTIVE_STATUSES)


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

    objects = AppointmentQuerySet.as_manager()

    class Meta:
        ordering = ["start", "id"]
        indexes = [
            # A practitioner's day and the booking overlap check.
            models.Index(fields=["practitioner", "start"], name="appt_practitioner_start"),
            # Sync by integrations: `?updated_since=` within a clinic.
            models.Index(fields=["clinic", "updated_at"], name="appt_clinic_updated"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(end__gt=F("start")), name="appointment_end_after_start"),
        ]

    def __str__(self) -> str:
        return f"{self.patient} with {self.practitioner} at {self.start:%Y-%m-%d %H:%M}"
