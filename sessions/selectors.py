"""Reads of treatment sessions and notes: one access helper per resource, with preloading."""

from __future__ import annotations

import datetime as dt

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet

from clinic.security.access import USUAL_WINDOW
from sessions.models import (
    PREFETCHED,
    AcupunctureEntry,
    Addendum,
    Appointment,
    AppointmentStatus,
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


def care_relationship_q(*, user, clinic_id, patient: OuterRef, now: dt.datetime) -> Q:
    """The facts that make `user` one of the patient's usual practitioners (the rule is stated in
    clinic.security.access, which this implements; registered from SessionsConfig.ready()), as
    correlated EXISTS on `patient` (an `OuterRef` to the patient's id).

    Three probes, not one with an OR inside: each finds its rows by an index (the patient's
    appointments by (patient, start), the notes by (patient, started_at)), whichever way the
    planner runs them (per row, or hashed once per query)."""
    since = now - USUAL_WINDOW
    rows = {"clinic_id": clinic_id, "patient_id": patient}
    upcoming = Q(status__in=[AppointmentStatus.BOOKED, AppointmentStatus.CONFIRMED], end__gt=now)
    attended = Q(status__in=[AppointmentStatus.ARRIVED, AppointmentStatus.COMPLETED])
    # `exclude(booked_by=user)` keeps the rows nobody signed in booked (NULL): keys, patients.
    booked_by_others = (
        Appointment.objects.filter(**rows, practitioner__user=user, start__gte=since)
        .filter(upcoming | attended)
        .exclude(booked_by=user)
    )
    signed = TreatmentSession.objects.filter(**rows, started_at__gte=since, signed_by=user)
    given_to_them = TreatmentSession.objects.filter(**rows, started_at__gte=since, practitioner__user=user).exclude(
        created_by=user
    )
    return Exists(booked_by_others) | Exists(signed) | Exists(given_to_them)
