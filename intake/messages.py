"""Messages about intake links: the link itself (sent at once) and the nudge to finish it
before the visit. Written through the outbox engine (clinic.messaging); the booking that
schedules a nudge passes its appointment, and sessions registers the check that the
appointment is still ahead when the nudge is due.
"""

from __future__ import annotations

import datetime as dt

from django.db import models, transaction
from django.utils import timezone

from clinic.messaging.outbox import Planned, messages_reconcile, reminder_policy_for, start_ref
from clinic.models import Message, MessageKind
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
