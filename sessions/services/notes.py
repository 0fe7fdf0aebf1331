"""Treatment sessions and notes: every write goes through these functions, whoever calls
(admin, API, imports). Each change is audited; a signed note refuses every change."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from clinic.models import AuditAction, Practitioner, TombstoneReason, WebhookEventType
from clinic.security.access import clinical_access_check, clinical_access_enforce, role_in
from clinic.security.audit import audit_record
from clinic.security.roles import Role
from clinic.tombstones import tombstones_record
from clinic.webhooks.delivery import webhook_event_emit
from patients.models import Patient
from sessions.messages import followup_nudges_schedule
from sessions.models import (
    Addendum,
    Appointment,
    MassageEntry,
    NoteEntry,
    NoteStatus,
    TreatmentSession,
)
from sessions.safety import Effect, RegionMap, active_flags, entry_check, entry_problems
from treatments.models import TriggerPoint


class NoteLockedError(Exception):
    """The note is signed: change it with an addendum."""

    def __init__(self, message: str = "This note is signed and locked; add an addendum to correct it.") -> None:
        super().__init__(message)
        self.message = message


NOTE_FIELDS = (
    "subjective", "objective", "assessment", "plan", "pain_before", "pain_after",
    "rebook_within_days", "course_sessions", "needle_incident",
)  # fmt: skip
SOAP_FIELDS = ("subjective", "objective", "assessment", "plan")
UNANSWERED_WARNING = "Give a reason for it in the note's safety review to go ahead."


def _locked_session(session: TreatmentSession) -> TreatmentSession:
    """Re-read the session under a row lock and refuse if it is signed."""
    current = TreatmentSession.objects.select_for_update().select_related("patient").get(pk=session.pk)
    if current.is_signed:
        raise NoteLockedError()
    return current


def _may_write(session: TreatmentSession, actor) -> None:
    """Writing to a note takes the same access as reading it (`clinic.security.access`). Callers that
    show the note (API, admin) checked and audited already; this holds for any other caller.
    No actor: an API key with the clinical scope, or the system (imports, demo data)."""
    if actor is not None and not actor.is_superuser:
        clinical_access_check(user=actor, patient=session.patient)


def note_start_check(*, patient: Patient, practitioner: Practitioner, actor, request=None, via: str = "") -> None:
    """Who may open a note, for which patient, in whose name: one rule for the API, the admin
    and every other caller (`session_start` applies it; forms call it to show the error).

    A therapist writes in their own name only (a ValidationError on `practitioner`) and only
    for a patient they may open: a care relationship or break-glass (`BreakGlassRequired`,
    audited as denied). An owner may give a note to any practitioner of the clinic; it then
    counts as that practitioner's care relationship. No actor (an API key with the clinical
    scope, an import) and superusers pass, as they do for reads.
    """
    if actor is None or actor.is_superuser:
        return
    role = role_in(user=actor, clinic=patient.clinic_id)
    if role == Role.THERAPIST and practitioner.user_id != actor.pk:
        raise ValidationError(
            {"practitioner": "Write notes in your own name: only an owner gives a note to another practitioner."},
            code="not_your_note",
        )
    clinical_access_enforce(request=request, user=actor, patient=patient, via=via, role=role)


def session_start(
    *,
    clinic,
    patient: Patient,
    practitioner: Practitioner,
    actor,
    appointment: Appointment | None = None,
    started_at=None,
    request=None,
    via: str = "",
    **note,
) -> TreatmentSession:
    """Open a treatment session with a draft note (for a booked appointment, or a walk-in).

    The input is validated first (400), then `note_start_check` decides whether the actor may
    (its refusal is audited outside the write's transaction, so the record stays)."""
    unknown = set(note) - set(NOTE_FIELDS)
    if unknown:
        raise ValidationError({name: "Unknown field." for name in sorted(unknown)})
    if started_at is None:
        started_at = appointment.start if appointment is not None else timezone.now()
    session = TreatmentSession(
        clinic=clinic,
        patient=patient,
        practitioner=practitioner,
        appointment=appointment,
        started_at=started_at,
        created_by=actor,
        **note,
    )
    session.full_clean()
    note_start_check(patient=patient, practitioner=practitioner, actor=actor, request=request, via=via)
    return _session_save(session, actor=actor, request=request, via=via)


@transaction.atomic
def _session_save(session: TreatmentSession, *, actor, request, via: str) -> TreatmentSession:
    session.save()
    audit_record(action=AuditAction.CREATE, obj=session, actor=actor, request=request, via=via)
    return session


@transaction.atomic
def note_update(*, session: TreatmentSession, actor, request=None, via: str = "", **changes) -> TreatmentSession:
    """Change the SOAP text, pain scores, follow-up or needle incident of a draft note."""
    unknown = set(changes) - set(NOTE_FIELDS)
    if unknown:
        raise ValidationError({name: "This field cannot be changed here." for name in sorted(unknown)})
    current = _locked_session(session)
    _may_write(current, actor)
    for name, value in changes.items():
        setattr(current, name, value)
    current.full_clean()
    current.save()
    audit_record(
        action=AuditAction.CHANGE, obj=current, actor=actor, request=request, via=via, extra={"fields": sorted(changes)}
    )
    return current


def _trigger_points_check(session: TreatmentSession, trigger_points) -> list[TriggerPoint]:
    points = list(trigger_points)
    foreign = [tp for tp in points if tp.clinic_id not in (None, session.clinic_id)]
    if foreign:
        raise ValidationError({"trigger_points": "Some trigger points belong to another clinic's catalog."})
    return points


def _catalog_check(entry: NoteEntry, session: TreatmentSession) -> None:
    """Catalog rows an entry points at must be shared or the session's clinic's own."""
    errors = {}
    for field in entry._meta.concrete_fields:
        related = field.related_model
        if related is None or not field.name or not hasattr(related.objects, "for_clinic"):
            continue
        value = getattr(entry, field.name, None)
        if value is not None and value.clinic_id not in (None, session.clinic_id):
            errors[field.name] = "This catalog entry belongs to another clinic."
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def entry_save(
    *, entry: NoteEntry, actor, trigger_points=None, request=None, via: str = "", flags=None, regions=None
) -> NoteEntry:
    """Add or change one structured entry of a draft note, after the safety checks."""
    session = _locked_session(entry.session)
    _may_write(session, actor)
    entry.session = session
    entry.clinic_id = session.clinic_id
    is_new = entry.pk is None
    if not is_new:
        stored = type(entry).objects.filter(pk=entry.pk, session=session).exists()
        if not stored:
            raise ValidationError("This entry belongs to another note.")
    entry.full_clean(exclude=["session", "clinic"])
    _catalog_check(entry, session)
    points = _trigger_points_check(session, trigger_points) if trigger_points is not None else None
    entry_check(entry, flags=flags if flags is not None else active_flags(session.patient_id), regions=regions)
    entry.save()
    if points is not None and isinstance(entry, MassageEntry):
        entry.trigger_points.set(points)
    audit_record(
        action=AuditAction.CHANGE,
        obj=session,
        actor=actor,
        request=request,
        via=via,
        extra={"entry": entry.kind, "entry_id": entry.pk, "op": "add" if is_new else "change"},
    )
    return entry


def entry_add(*, entry: NoteEntry, actor, trigger_points=None, request=None, via: str = "") -> NoteEntry:
    if entry.pk is not None:
        raise ValueError("entry_add takes a new entry; use entry_save to change one.")
    return entry_save(entry=entry, actor=actor, trigger_points=trigger_points, request=request, via=via)


@transaction.atomic
def entry_delete(*, entry: NoteEntry, actor, request=None, via: str = "") -> None:
    session = _locked_session(entry.session)
    _may_write(session, actor)
    kind, entry_id = entry.kind, entry.pk
    tombstones_record(
        clinic=session.clinic, model=type(entry), ids=[entry_id], reason=TombstoneReason.DELETED, scope="clinical"
    )
    entry.delete()
    audit_record(
        action=AuditAction.CHANGE,
        obj=session,
        actor=actor,
        request=request,
        via=via,
        extra={"entry": kind, "entry_id": entry_id, "op": "delete"},
    )


# --- signing --------------------------------------------------------------------------


def signed_content(session: TreatmentSession) -> dict:
    """What the signature covers: the note, every entry, who signed and when."""

    def entry_data(entry: NoteEntry) -> dict:
        data = {f.attname: getattr(entry, f.attname) for f in entry._meta.concrete_fields if f.name != "created_at"}
        if isinstance(entry, MassageEntry):
            data["trigger_points"] = sorted(entry.trigger_points.values_list("id", flat=True))
        return {"kind": entry.kind, **data}

    return {
        "session": session.pk,
        "clinic": session.clinic_id,
        "patient": session.patient_id,
        "practitioner": session.practitioner_id,
        "appointment": session.appointment_id,
        "started_at": session.started_at.isoformat(),
        **{name: getattr(session, name) for name in NOTE_FIELDS},
        "entries": [entry_data(e) for e in session.entries()],
        "signed_by": session.signed_by_id,
        "signed_at": session.signed_at.isoformat() if session.signed_at else None,
    }


def content_hash(session: TreatmentSession) -> str:
    body = json.dumps(signed_content(session), sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def note_sign_problems(session: TreatmentSession) -> dict[str, list[str]]:
    """Why the note cannot be signed yet, by field; empty when it can."""
    errors: dict[str, list[str]] = {}
    for name in SOAP_FIELDS:
        if not getattr(session, name).strip():
            errors.setdefault(name, []).append("Write this part of the SOAP note before signing.")
    mismatched = [e for e in session.acupuncture_entries.select_related("point") if not e.needles_match]
    if mismatched and not session.needle_incident.strip():
        counts = "; ".join(f"{e.point.code}: {e.needles_inserted} in, {e.needles_removed} out" for e in mismatched)
        errors.setdefault("needle_incident", []).append(
            f"Needles inserted and removed do not match ({counts}). Correct the counts or record a needle incident."
        )
    # Flags raised after an entry was written still count at signing.
    # A reason written for one warning does not cover a warning that appeared later.
    flags, regions = active_flags(session.patient_id), RegionMap()
    for entry in session.entries():
        for problem in entry_problems(entry, flags, regions):
            if problem.effect == Effect.BLOCK:
                errors.setdefault("entries", []).append(f"{entry}: Blocked: {problem.message}")
            elif problem.rule_code not in entry.overridden_rules:
                errors.setdefault("entries", []).append(f"{entry}: Warning: {problem.message} {UNANSWERED_WARNING}")
    return errors


@transaction.atomic
def note_sign(*, session: TreatmentSession, actor, request=None, via: str = "") -> TreatmentSession:
    """Sign and lock the note. Only the treating practitioner signs."""
    current = _locked_session(session)
    if current.practitioner.user_id != actor.pk:
        raise ValidationError("Only the treating practitioner can sign this note.", code="not_the_practitioner")
    _may_write(current, actor)
    problems = note_sign_problems(current)
    if problems:
        raise ValidationError(problems)
    current.signed_at = timezone.now()
    current.signed_by = actor
    current.content_hash = content_hash(current)
    updated = TreatmentSession.objects.filter(pk=current.pk, status=NoteStatus.DRAFT).update(
        status=NoteStatus.SIGNED,
        signed_at=current.signed_at,
        signed_by=actor,
        content_hash=current.content_hash,
        updated_at=current.signed_at,
    )
    if updated != 1:  # the row lock makes this unreachable unless the row vanished
        raise NoteLockedError()
    current.status = NoteStatus.SIGNED
    audit_record(
        action=AuditAction.SIGN,
        obj=current,
        actor=actor,
        request=request,
        via=via,
        extra={"content_hash": current.content_hash},
    )
    if current.rebook_within_days:
        followup_nudges_schedule(
            patient=current.patient,
            about=current,
            signed_at=current.signed_at,
            rebook_within_days=current.rebook_within_days,
            booking_url=current.clinic.website,
        )
    webhook_event_emit(
        clinic=current.clinic,
        event=WebhookEventType.NOTE_SIGNED,
        payload={"note_id": current.pk, "patient_id": current.patient_id, "practitioner_id": current.practitioner_id},
    )
    return current


def note_verify(session: TreatmentSession) -> bool:
    """True when a signed note still hashes to what was signed."""
    return session.is_signed and content_hash(session) == session.content_hash


@transaction.atomic
def note_addendum_add(*, session: TreatmentSession, text: str, actor, request=None, via: str = "") -> Addendum:
    """Append a correction to a signed note (a draft is simply edited)."""
    current = TreatmentSession.objects.select_for_update().select_related("patient").get(pk=session.pk)
    _may_write(current, actor)
    if not current.is_signed:
        raise ValidationError({"text": "The note is still a draft: edit it instead of adding an addendum."})
    addendum = Addendum(clinic_id=current.clinic_id, session=current, author=actor, text=(text or "").strip())
    addendum.full_clean()
    addendum.save()
    audit_record(
        action=AuditAction.ADDENDUM,
        obj=current,
        actor=actor,
        request=request,
        via=via,
        extra={"addendum_id": addendum.pk},
    )
    return addendum


# --- what other apps read from a signed note -------------------------------------------


@dataclass(frozen=True)
class FollowUp:
    """The follow-up a signed note recommends (for the reminders' rebooking nudge)."""

    session_id: int
    clinic_id: int
    patient_id: int
    practitioner_id: int
    signed_at: object
    rebook_within_days: int | None
    course_sessions: int | None

    @property
    def rebook_by(self):
        if self.rebook_within_days is None:
            return None
        return self.signed_at + dt.timedelta(days=self.rebook_within_days)


def note_followup(*, session: TreatmentSession) -> FollowUp | None:
    """The follow-up recommendation of a signed note, or None (draft, or none recommended)."""
    if not session.is_signed or (session.rebook_within_days is None and session.course_sessions is None):
        return None
    return FollowUp(
        session_id=session.pk,
        clinic_id=session.clinic_id,
        patient_id=session.patient_id,
        practitioner_id=session.practitioner_id,
        signed_at=session.signed_at,
        rebook_within_days=session.rebook_within_days,
        course_sessions=session.course_sessions,
    )
