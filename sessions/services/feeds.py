"""Writes for practitioners' calendar feeds: a secret token per feed, shown once, stored as a digest."""

from __future__ import annotations

import hashlib
import secrets

from django.db import transaction
from django.utils import timezone

from clinic.models import Practitioner, User
from sessions.models import (
    CalendarFeed,
)

# --- calendar feeds --------------------------------------------------------------------


def calendar_token_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@transaction.atomic
def calendar_feed_create(*, practitioner: Practitioner, created_by: User | None = None) -> tuple[CalendarFeed, str]:
    """A new secret feed URL token; returned once, stored as a digest."""
    raw = secrets.token_urlsafe(32)
    feed = CalendarFeed(
        clinic_id=practitioner.clinic_id,
        practitioner=practitioner,
        prefix=raw[:8],
        digest=calendar_token_digest(raw),
        created_by=created_by,
    )
    feed.full_clean()
    feed.save()
    return feed, raw


def calendar_feed_revoke(*, feed: CalendarFeed) -> None:
    CalendarFeed.objects.filter(pk=feed.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
