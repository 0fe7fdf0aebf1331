"""Writes for the waitlist: entries, offers of a freed slot (a signed link per offer, the first
to accept gets it, see `booking.waitlist_offer_accept`), declines and expiry."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from clinic.models import Clinic, Practitioner, Room, Service, User
from patients.models import Patient
from sessions.messages import waitlist_offer_message_create
from sessions.models import (
    Appointment,
    OfferStatus,
    WaitlistEntry,
    WaitlistOffer,
    WaitlistStatus,
)
from sessions.services.placement import InvalidTransitionError, same_clinic_check

# How long a waitlist offer stays open (never past the slot itself), and how many
# waiting patients are offered one freed slot at once (the first to accept gets it).
WAITLIST_OFFER_TTL = dt.timedelta(hours=2)
WAITLIST_OFFERS_PER_SLOT = 3

# --- waitlist --------------------------------------------------------------------------


@transaction.atomic
def waitlist_entry_create(
    *,
    clinic: Clinic,
    patient: Patient,
    service: Service,
    window_start: dt.datetime,
    window_end: dt.datetime,
    practitioner: Practitioner | None = None,
    created_by: User | None = None,
    notes: str = "",
) -> WaitlistEntry:
    same_clinic_check(clinic, patient=patient, service=service, practitioner=practitioner)
    if practitioner is not None and not practitioner.services.filter(pk=service.pk).exists():
        raise ValidationError({"service": f"{practitioner} does not offer {service.name}."})
    if window_end <= timezone.now():
        raise ValidationError({"window_end": "The window has already passed."})
    entry = WaitlistEntry(
        clinic=clinic,
        patient=patient,
        service=service,
        practitioner=practitioner,
        window_start=window_start,
        window_end=window_end,
        created_by=created_by,
        notes=notes,
    )
    entry.full_clean()
    entry.save()
    return entry


@transaction.atomic
def waitlist_entry_withdraw(*, entry: WaitlistEntry) -> WaitlistEntry:
    changed = WaitlistEntry.objects.filter(pk=entry.pk, status=WaitlistStatus.WAITING).update(
        status=WaitlistStatus.WITHDRAWN
    )
    if not changed:
        entry.refresh_from_db()
        raise InvalidTransitionError(f"This entry is {entry.get_status_display().lower()}.")
    WaitlistOffer.objects.filter(entry=entry, status=OfferStatus.PENDING).update(status=OfferStatus.DECLINED)
    entry.refresh_from_db()
    return entry


@transaction.atomic
def waitlist_offer_create(
    *, entry: WaitlistEntry, practitioner: Practitioner, room: Room | None, start: dt.datetime, freed_by=None
) -> WaitlistOffer:
    """One offer row and its message to the patient (due now, not sent after the offer
    expires), in one transaction: the message exists exactly when the offer does."""
    now = timezone.now()
    offer = WaitlistOffer(
        clinic_id=entry.clinic_id,
        entry=entry,
        practitioner=practitioner,
        room=room,
        start=start,
        expires_at=min(now + WAITLIST_OFFER_TTL, start),
        freed_by=freed_by if freed_by is not None and freed_by.pk else None,
    )
    offer.full_clean(validate_constraints=False)
    offer.save()
    waitlist_offer_message_create(
        patient=entry.patient, about=offer, url=waitlist_offer_link(offer), expires_at=offer.expires_at
    )
    return offer


def waitlist_offer_still_open(message, offer: WaitlistOffer | None) -> str:
    """The outbox's last check before sending an offer: '' while the patient can still accept it."""
    if offer is None:
        return "offer no longer exists"
    if offer.status != OfferStatus.PENDING:
        return f"offer {offer.get_status_display().lower()}"
    if offer.expires_at <= timezone.now():
        return "offer expired"
    return ""


_OFFER_SALT = "sessions.waitlist-offer"


def waitlist_offer_link(offer: WaitlistOffer) -> str:
    """The patient's public accept link for the offer message (signed, no login)."""
    token = signing.dumps(offer.pk, salt=_OFFER_SALT, compress=True)
    return f"{settings.PUBLIC_BASE_URL}/waitlist/offers/{token}/"


def waitlist_offer_from_token(token: str) -> WaitlistOffer | None:
    try:
        pk = signing.loads(token, salt=_OFFER_SALT)
    except signing.BadSignature:
        return None
    return (
        WaitlistOffer.objects.select_related("clinic", "practitioner", "entry__service").filter(pk=pk).first()
        if isinstance(pk, int)
        else None
    )


def waitlist_match_freed_slot(*, appointment: Appointment) -> list[WaitlistOffer]:
    """Offer the time `appointment` no longer holds to the oldest matching waiting patients.

    Matches: same clinic and service, the practitioner wanted (or any), the slot inside the
    patient's window, not the patient who freed it, no offer of this slot yet. Called inside
    the cancel/reschedule transaction, so offers exist only if the slot was really freed.
    """
    now = timezone.now()
    if appointment.start <= now:
        return []
    entries = (
        WaitlistEntry.objects.filter(
            clinic_id=appointment.clinic_id,
            service_id=appointment.service_id,
            status=WaitlistStatus.WAITING,
            window_start__lte=appointment.start,
            window_end__gte=appointment.end,
        )
        .filter(Q(practitioner__isnull=True) | Q(practitioner_id=appointment.practitioner_id))
        .exclude(patient_id=appointment.patient_id)
        .exclude(
            Exists(
                WaitlistOffer.objects.filter(
                    entry=OuterRef("pk"), practitioner_id=appointment.practitioner_id, start=appointment.start
                )
            )
        )
        .order_by("created_at", "pk")[:WAITLIST_OFFERS_PER_SLOT]
    )
    return [
        waitlist_offer_create(
            entry=entry,
            practitioner=appointment.practitioner,
            room=appointment.room,
            start=appointment.start,
            freed_by=appointment,
        )
        for entry in entries
    ]


@transaction.atomic
def waitlist_offer_decline(*, offer: WaitlistOffer) -> WaitlistOffer:
    changed = WaitlistOffer.objects.filter(pk=offer.pk, status=OfferStatus.PENDING).update(
        status=OfferStatus.DECLINED, responded_at=timezone.now()
    )
    offer.refresh_from_db()
    if not changed:
        raise InvalidTransitionError(f"This offer is {offer.get_status_display().lower()}.")
    return offer


def waitlist_expire_due(*, now: dt.datetime | None = None) -> dict[str, int]:
    """The sweeper: expire pending offers whose time is up and lapse entries whose window passed.

    Conditional UPDATEs claim the rows, so two sweepers at once (or a rerun) change each row once.
    """
    now = now or timezone.now()
    offers = WaitlistOffer.objects.filter(status=OfferStatus.PENDING, expires_at__lte=now).update(
        status=OfferStatus.EXPIRED, responded_at=now
    )
    entries = WaitlistEntry.objects.filter(status=WaitlistStatus.WAITING, window_end__lte=now).update(
        status=WaitlistStatus.LAPSED
    )
    return {"offers_expired": offers, "entries_lapsed": entries}
