"""Messages about intake links: the link itself (sent at once), the nudge to finish it
before the visit, and when an answer is urgent the staff alert and what the thank-you page
tells the patient to do. Written through the outbox engine (clinic.messaging); the booking that
schedules a nudge passes its appointment, and sessions registers the check that the
appointment is still ahead when the nudge is due.
"""

from __future__ import annotations

import datetime as dt

from django.db import models, transaction
from django.urls import reverse
from django.utils import timezone

from clinic.messaging.outbox import Planned, messages_reconcile, reminder_policy_for, staff_alerts_create, start_ref
from clinic.models import Message, MessageKind, User
from clinic.security.roles import Role
from patients.models import Patient


@transaction.atomic
def intake_link_message_create(
    *, patient: Patient, about: models.Model, url: str, expires_at: dt.datetime | None = None, occurrence: str = "1"
) -> Message:
    """Send an intake link now (staff asked for it, so quiet hours do not hold it back).

    `about` is the intake link object; a second send of the same link needs a new
    `occurrence` (e.g. "2").
    """
    plan = Planned(
        kind=MessageKind.INTAKE_LINK,
        occurrence=occurrence,
        due_at=timezone.now(),
        expires_at=expires_at,
        immediate=True,
        context={"link": url, "expires": expires_at.isoformat() if expires_at else ""},
        keep_due=True,
    )
    return messages_reconcile(
        clinic=patient.clinic, patient=patient, about=about, planned=[plan], managed_kinds=set(), cancel_reason=""
    )[0]


@transaction.atomic
def intake_nudge_schedule(*, patient: Patient, about: models.Model, appointment, url: str) -> list[Message]:
    """Nudge to finish the intake, `intake_nudge_hours` (default 24) before the appointment.

    Not created when that time has passed. It stops when `messages_cancel_about` is
    called on intake submission, and the sender asks the `intake_nudge` validity checks
    (register "already submitted?" with `validity_check_register`) before sending.
    """
    policy = reminder_policy_for(patient.clinic)
    plan = Planned(
        kind=MessageKind.INTAKE_NUDGE,
        occurrence=f"before@{start_ref(appointment.start)}",
        due_at=appointment.start - dt.timedelta(hours=policy.intake_nudge_hours),
        expires_at=appointment.start,
        context={"link": url, "appointment_id": appointment.pk, "start": start_ref(appointment.start)},
        only_ahead=True,
    )
    return messages_reconcile(
        clinic=patient.clinic,
        patient=patient,
        about=about,
        planned=[plan],
        managed_kinds={MessageKind.INTAKE_NUDGE},
        cancel_reason="appointment moved",
    )


# --- urgent answers: the clinic is told at once, the patient told what to do -----------------


def _next_practitioner_user(link):
    """The staff user of the practitioner the patient sees next: the link's own visit while
    it is ahead, else the patient's next booked or confirmed visit; None without one."""
    appointments = link._meta.get_field("appointment").related_model.objects.select_related("practitioner__user")
    upcoming = appointments.filter(status__in=("booked", "confirmed"), start__gt=timezone.now())
    appointment = None
    if link.appointment_id:
        appointment = upcoming.filter(pk=link.appointment_id).first()
    if appointment is None:
        appointment = upcoming.filter(patient_id=link.patient_id).order_by("start").first()
    user = appointment.practitioner.user if appointment is not None else None
    return user if user is not None and user.is_active else None


def urgent_intake_alert_create(*, link, submission, flags: list) -> list[Message]:
    """When a submission raised an urgent flag: one email to the practitioner of the patient's
    next visit and one to each owner, saying only "an urgent intake answer needs review" with
    a link to the submission (behind the audited alert page). Call it in `intake_submit`'s
    transaction: the alert exists exactly when the submission does. One alert per person per
    intake link, whatever happens (the outbox's unique key; `staff_alerts_create`)."""
    if not any(flag.severity == "urgent" for flag in flags):
        return []
    owners = User.objects.filter(
        memberships__clinic_id=link.clinic_id, memberships__role=Role.OWNER, memberships__is_active=True, is_active=True
    )
    users = [user for user in (_next_practitioner_user(link), *owners) if user is not None]
    return staff_alerts_create(
        clinic=link.clinic,
        patient=link.patient,
        about=link,
        kind=MessageKind.URGENT_INTAKE_ALERT,
        users=users,
        target=reverse("admin:intake_intakesubmission_change", args=[submission.pk]),
        ref="urgent",
    )


# What the patient reads on the thank-you page for each urgent flag: plain words, what to do
# and how soon (checked against ../shared/DOMAIN.md, "Red flags and contraindications").
# Keyed by the screening rule's code; codes of other forms fall back on a word in the code.
_CALL_NOW = "If you feel very unwell, call emergency services now."
URGENT_ADVICE = {
    "dvt_suspected": (
        "You told us about a swollen, warm, red or painful calf, or a recent operation, cast or long rest. "
        "This can be a sign of a blood clot. Please call your doctor today, before your treatment. "
        "If you suddenly get short of breath or have chest pain, call emergency services now."
    ),
    "cauda_equina": (
        "You told us about numbness between your legs or around your bottom, new trouble with your bladder "
        "or bowels, or weakness in both legs. This needs a doctor straight away: please go to an emergency "
        "department today. Do not wait for your appointment."
    ),
    "progressive_weakness_foot_drop": (
        "You told us about weakness that is getting worse, or a foot that drags or catches. Please see your "
        "doctor soon, before your treatment. If it gets quickly worse, go to an emergency department."
    ),
    "recent_trauma_possible_fracture": (
        "You told us about a recent fall, blow or accident with pain in a bone. Please have it checked by a "
        "doctor before we treat that area, in case something is broken."
    ),
    "systemic_red_flags": (
        "You told us about a fever, weight loss you cannot explain, a history of cancer, or pain at night "
        "that rest does not ease. Please book a visit with your doctor soon so they can check the cause."
    ),
}
_ADVICE_BY_WORD = (
    (("myelopathy",), (
        "You told us about clumsy or numb hands, unsteady walking, or an electric-shock feeling down your "
        "back when you bend your neck. Please see a doctor today, before any neck treatment. "
        "If you have new trouble with your bladder or bowels, go to an emergency department now."
    )),
    (("artery", "vertebrobasilar", "dissection"), (
        "You told us about sudden severe neck pain or headache unlike any before, or dizziness, double "
        "vision, or trouble speaking or swallowing. If this is happening now or started suddenly, call "
        "emergency services now. Otherwise please see a doctor today, before any neck treatment."
    )),
    (("cardiac", "heart", "chest"), (
        "You told us about arm pain with chest pressure, shortness of breath or sweating. If you have these "
        "now, call emergency services now. Please see a doctor before any treatment."
    )),
    (("dvt", "clot", "thromb"), (
        "You told us about a swollen, heavy or discoloured arm or leg. This can be a sign of a blood clot. "
        "Please call your doctor today, before your treatment. If you get short of breath or have chest "
        "pain, call emergency services now."
    )),
    (("infection", "septic"), (
        "You told us about a hot, swollen joint with a fever. Please see a doctor today."
    )),
    (("fracture", "trauma"), URGENT_ADVICE["recent_trauma_possible_fracture"]),
    (("cauda",), URGENT_ADVICE["cauda_equina"]),
)  # fmt: skip
GENERIC_URGENT_ADVICE = (
    "One of your answers needs a health professional's attention before treatment. "
    f"Please call your doctor today. {_CALL_NOW}"
)


def urgent_advice(rule_code: str) -> str:
    """What a patient with this urgent flag should do, in plain words."""
    if rule_code in URGENT_ADVICE:
        return URGENT_ADVICE[rule_code]
    code = rule_code.lower()
    for words, advice in _ADVICE_BY_WORD:
        if any(word in code for word in words):
            return advice
    return GENERIC_URGENT_ADVICE
