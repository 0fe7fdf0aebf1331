"""A patient's consent to messages: opting out by link, by SMS reply (STOP words) or through staff."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from clinic.models import Message, MessageChannel, MessageStatus, OptOut, OptOutSource
from patients.models import Patient


@transaction.atomic
def patient_opt_out(*, patient: Patient, channel: str, source: str) -> OptOut:
    """Withdraw the patient's consent for `channel`; cancel what is scheduled on it."""
    if channel not in MessageChannel.values:
        raise ValidationError({"channel": f"Unknown channel {channel!r}."})
    consent = "email_consent" if channel == MessageChannel.EMAIL else "sms_consent"
    Patient.objects.filter(pk=patient.pk).update(**{consent: False, "updated_at": timezone.now()})
    setattr(patient, consent, False)
    opt_out = OptOut(clinic_id=patient.clinic_id, patient=patient, channel=channel, source=OptOutSource(source))
    opt_out.full_clean()
    opt_out.save()
    Message.objects.filter(patient=patient, channel=channel, status=MessageStatus.SCHEDULED).update(
        status=MessageStatus.CANCELLED, reason="patient opted out", updated_at=timezone.now()
    )
    return opt_out


STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"}


def sms_reply_handle(*, from_number: str, body: str) -> int:
    """An inbound SMS: a STOP word opts the number out of SMS in every clinic. Returns patients opted out."""
    if body.strip().upper() not in STOP_WORDS or not from_number:
        return 0
    patients = list(Patient.objects.filter(mobile_phone=from_number, sms_consent=True))
    for patient in patients:
        patient_opt_out(patient=patient, channel=MessageChannel.SMS, source=OptOutSource.SMS_STOP)
    return len(patients)
