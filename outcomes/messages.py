"""The message outcomes causes: a link to fill a measure (baseline or repeat), through the outbox."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from clinic.messaging.outbox import Planned, messages_reconcile
from clinic.models import Message, MessageKind


@transaction.atomic
def outcome_link_message_create(*, link) -> Message:
    """Send the link now; one message per link (the occurrence is fixed), so a retried
    call never sends the patient a second copy."""
    plan = Planned(
        kind=MessageKind.OUTCOME_LINK,
        occurrence="1",
        due_at=timezone.now(),
        expires_at=link.expires_at,
        context={"link": link.url, "expires": link.expires_at.isoformat()},
        keep_due=True,
    )
    return messages_reconcile(
        clinic=link.clinic, patient=link.patient, about=link, planned=[plan], managed_kinds=set(), cancel_reason=""
    )[0]


def outcome_link_still_applies(message: Message, link) -> str:
    """Validity check at send time: the link is still open and unexpired."""
    if link is None:
        return "the measure link no longer exists"
    if link.status != "open":
        return f"the measure link is {link.status}"
    if link.expires_at <= timezone.now():
        return "the measure link has expired"
    return ""
