"""Reads of treatment sessions and notes: one access helper per resource, with preloading."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from sessions.models import (
    PREFETCHED,
    AcupunctureEntry,
    Addendum,
    ArtEntry,
    HomeCareEntry,
    MassageEntry,
    TreatmentSession,
)
from treatments.models import TriggerPoint


def _into_list(relation: str, queryset: QuerySet) -> Prefetch:
    # Read back with sessions.models.related_rows(obj, relation).
    return Prefetch(relation, queryset, to_attr=PREFETCHED.format(relation))


def notes_with_content() -> QuerySet[TreatmentSession]:
    """Sessions with everything the full note shows, in a fixed number of queries.

    Each relation is left on the session as a plain list: read it with
    `sessions.models.related_rows(session, "art_entries")` (or `session.entries()`)."""
    massage = MassageEntry.objects.select_related("region").prefetch_related(
        _into_list("trigger_points", TriggerPoint.objects.all())
    )
    return TreatmentSession.objects.select_related("signed_by").prefetch_related(
        _into_list("art_entries", ArtEntry.objects.select_related("structure", "protocol")),
        _into_list("massage_entries", massage),
        _into_list("acupuncture_entries", AcupunctureEntry.objects.select_related("point")),
        _into_list("home_care", HomeCareEntry.objects.all()),
        _into_list("addenda", Addendum.objects.select_related("author")),
    )


def pain_series(*, clinic, patient_id: int) -> QuerySet[TreatmentSession]:
    """Pain before/after of a patient's sessions, oldest first (sessions without a score are left out)."""
    return (
        TreatmentSession.objects.filter(clinic=clinic, patient_id=patient_id)
        .exclude(pain_before__isnull=True, pain_after__isnull=True)
        .order_by("started_at", "id")
        .only("id", "started_at", "pain_before", "pain_after", "status")
    )


def last_session_before(session: TreatmentSession) -> TreatmentSession | None:
    """The patient's previous session (for the summary on the session page)."""
    return (
        TreatmentSession.objects.filter(patient_id=session.patient_id, clinic_id=session.clinic_id)
        .filter(started_at__lt=session.started_at)
        .exclude(pk=session.pk)
        .order_by("-started_at", "-id")
        .first()
    )
