"""The messaging outbox, reminder policy, templates and opt-outs."""

from __future__ import annotations

from datetime import time as dt_time

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.template import Engine, Template, TemplateSyntaxError

from clinic.models.tenancy import Clinic, ClinicOwned, Service, User


class MessageKind(models.TextChoices):
    APPOINTMENT_CONFIRMATION = "appointment_confirmation", "Booking confirmation"
    APPOINTMENT_REMINDER = "appointment_reminder", "Appointment reminder"
    APPOINTMENT_CANCELLED = "appointment_cancelled", "Cancellation notice"
    INTAKE_LINK = "intake_link", "Intake link"
    INTAKE_NUDGE = "intake_nudge", "Intake not yet completed"
    FOLLOWUP_NUDGE = "followup_nudge", "Follow-up re-booking nudge"
    WAITLIST_OFFER = "waitlist_offer", "Waitlist offer"
    # To staff, not to the patient: `Message.to_user` is set (see Message).
    URGENT_INTAKE_ALERT = "urgent_intake_alert", "Urgent intake answer (staff alert)"
    OUTCOME_LINK = "outcome_link", "Outcome measure link"


# Kinds about an appointment: each names the visit's place and time (clinic/templates/messages/).
APPOINTMENT_KINDS = (
    MessageKind.APPOINTMENT_CONFIRMATION,
    MessageKind.APPOINTMENT_REMINDER,
    MessageKind.APPOINTMENT_CANCELLED,
)


class MessageChannel(models.TextChoices):
    # Also the patient's preferred channel (patients.models.Channel is this class).
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

    A staff alert (`to_user` set) goes to that staff member's email instead of the patient;
    `patient` is then whom it concerns, and the patient's consent does not apply.
    """

    kind = models.CharField(max_length=30, choices=MessageKind.choices)
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="messages")
    to_user = models.ForeignKey(
        User,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Staff alerts only: the staff member it goes to.",
    )
    opened_at = models.DateTimeField(null=True, blank=True, help_text="Staff alerts: when its link was first opened.")
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
            # One pending re-booking ladder per patient: its rungs "1" and "2" may both be
            # scheduled, a second ladder's may not (sessions.messages.followup_nudges_schedule).
            models.UniqueConstraint(
                fields=["patient", "occurrence"],
                condition=Q(kind="followup_nudge", status="scheduled"),
                name="message_one_followup_ladder",
            ),
            models.CheckConstraint(
                condition=~Q(status="sending") | (Q(claim_token__isnull=False) & Q(lease_until__isnull=False)),
                name="message_sending_has_claim",
            ),
            # A staff alert names its recipient, a patient message never has one.
            models.CheckConstraint(
                condition=Q(kind="urgent_intake_alert", to_user__isnull=False, channel="email")
                | (~Q(kind="urgent_intake_alert") & Q(to_user__isnull=True)),
                name="message_staff_alert_has_user",
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
    stop_reminders_when_confirmed = models.BooleanField(
        default=False,
        help_text="Once the patient (or the desk) confirms an appointment, its later reminders are not sent.",
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


# Message templates are plain text: no HTML escaping. Rendering (clinic.messaging.render)
# compiles with the same engine, so a template that saves is one that renders.
TEXT_ENGINE = Engine(autoescape=False)


def template_check(*, subject: str, body: str) -> None:
    for name, source in (("subject", subject), ("body", body)):
        try:
            Template(source, engine=TEXT_ENGINE)
        except TemplateSyntaxError as exc:
            raise ValidationError({name: f"Template error: {exc}"}) from None


class MessageTemplate(ClinicOwned):
    """A clinic's wording of one kind of message on one channel (Django template syntax).

    Without a row the default in clinic/templates/messages/ is used. The context is
    documented in clinic/messaging/render.py; it holds no clinical detail.
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
