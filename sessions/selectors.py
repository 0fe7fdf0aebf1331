"""Reads of treatment sessions and notes: one access helper per resource, with preloading."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from sessions.models import AcupunctureEntry, Addendum, ArtEntry, MassageEntry, TreatmentSession


def notes_with_content() -> QuerySet[TreatmentSession]:
    """Sessions with everything the full note shows, in a fixed number of queries."""
    return TreatmentSession.objects.select_related("signed_by").prefetch_related(
        Prefetch("art_entries", ArtEntry.objects.select_related("structure", "protocol")),
        Prefetch("massage_entries", MassageEntry.objects.select_related("region").prefetch_related("trigger_points")),
        Prefetch("acupuncture_entries", AcupunctureEntry.objects.select_related("point")),
        "home_care",
        Prefetch("addenda", Addendum.objects.select_related("author")),
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
