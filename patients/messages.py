"""A patient's consent to messages: opting out by link, by SMS reply (STOP words) or through staff."""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from clinic.messaging.inbound import sms_reply_dispatch, sms_reply_word
from clinic.models import Message, MessageChannel, MessageStatus, OptOut, OptOutSource
from patients.models import Patient

log = logging.getLogger(__name__)


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
    # Staff alerts about the patient go to staff: the patient's consent does not touch them.
    Message.objects.filter(
        patient=patient, channel=channel, status=MessageStatus.SCHEDULED, to_user__isnull=True
    ).update(status=MessageStatus.CANCELLED, reason="patient opted out", updated_at=timezone.now())
    return opt_out


STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"}


def _opt_out_answer(patient: Patient) -> str:
    # CANCEL is a carrier opt-out word: a patient who meant "cancel my visit" must learn
    # that the visit still stands and how to cancel it.
    phone = f" call {patient.clinic.phone} or" if patient.clinic.phone else ""
    return (
        f"{patient.clinic.name}: you will get no more texts from us. Your appointments are NOT cancelled. "
        f"To cancel a visit,{phone} use the link in your email. To get texts again, tell us at the front desk."
    )


def sms_reply_handle(*, from_number: str, body: str) -> str:
    """An inbound SMS, answered with the returned text ('' for no answer).

    A STOP word opts the number out of SMS in every clinic (whatever else the domains make of
    it: CANCEL cancels nothing). Other words go to the handlers domains registered
    (`clinic.messaging.inbound`): Y/N for visits. A number we do not know gets no answer; a
    reply nobody understood gets a short help text. Every reply is logged, without its text.
    """
    word = sms_reply_word(body)
    patients = list(Patient.objects.filter(mobile_phone=from_number).select_related("clinic")) if from_number else []
    if not patients:
        log.info("sms reply from an unknown number ignored")
        return ""
    if body.strip().upper() in STOP_WORDS or word in STOP_WORDS:
        for patient in patients:
            if patient.sms_consent:
                patient_opt_out(patient=patient, channel=MessageChannel.SMS, source=OptOutSource.SMS_STOP)
        log.info("sms reply: patients %s opted out", [p.pk for p in patients])
        return _opt_out_answer(patients[0])
    answer = sms_reply_dispatch(patients=patients, word=word)
    if answer is not None:
        return answer
    log.info("sms reply from patients %s not understood", [p.pk for p in patients])
    clinic = patients[0].clinic
    phone = f" or call {clinic.phone}" if clinic.phone else ""
    return f"{clinic.name}: sorry, we did not understand. Reply Y to confirm your visit, N if you can't come{phone}."
