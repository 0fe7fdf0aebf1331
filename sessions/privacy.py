"""This app's share of a patient's record (patients.privacy): notes with their entries, pain
scores and addenda, appointments and the practitioners they name, for export; front-desk remarks
for erasure; everything, under the signed-note locks' retention switch, for retention.
Registered from SessionsConfig.ready()."""

from __future__ import annotations

import base64
import datetime as dt

from django.db import connection
from django.db.models import Max, Q

from clinic.fhir.resources import practitioner_to_fhir
from clinic.models import TombstoneReason
from clinic.tombstones import tombstones_record
from patients.models import Patient
from patients.privacy import RecordPart
from sessions import selectors
from sessions.fhir.clinical import encounter_to_fhir, observations_of, procedures_of
from sessions.fhir.scheduling import appointment_to_fhir
from sessions.models import (
    Addendum,
    Appointment,
    AppointmentSeries,
    AppointmentStatus,
    NoteStatus,
    TreatmentSession,
    related_rows,
)
from sessions.services import SOAP_FIELDS


def _load(patient: Patient) -> dict:
    sessions = list(
        selectors.notes_with_content()
        .select_related("practitioner", "appointment")
        .filter(patient=patient)
        .order_by("started_at", "id")
    )
    appointments = list(
        Appointment.objects.filter(patient=patient)
        .select_related("service", "practitioner", "patient")
        .order_by("start")
    )
    practitioners = {s.practitioner for s in sessions} | {a.practitioner for a in appointments}
    return {
        "sessions": sessions,
        "appointments": appointments,
        "practitioners": sorted(practitioners, key=lambda p: p.pk),
        "notes": [
            {
                "session": s,
                "entries": [str(e) for e in s.entries()],
                "addenda": related_rows(s, "addenda"),
                "note": {name: getattr(s, name) for name in SOAP_FIELDS if getattr(s, name)},
            }
            for s in sessions
        ],
    }


def _text_attachment(text: str, title: str) -> dict:
    return {
        "contentType": "text/plain; charset=utf-8",
        "data": base64.b64encode(text.encode()).decode(),
        "title": title,
    }


def note_text(session: TreatmentSession) -> str:
    lines = [f"{name.capitalize()}: {getattr(session, name)}" for name in SOAP_FIELDS if getattr(session, name)]
    for label, score in (("Pain before", session.pain_before), ("Pain after", session.pain_after)):
        if score is not None:
            lines.append(f"{label}: {score}/10")
    lines += [f"- {entry}" for entry in session.entries()]
    return "\n".join(lines)


def _notes(session: TreatmentSession) -> list[dict]:
    signed = session.status == NoteStatus.SIGNED
    note = {
        "resourceType": "DocumentReference",
        "id": f"note-{session.pk}",
        "status": "current",
        "docStatus": "final" if signed else "preliminary",
        "type": {"text": "Treatment note (SOAP)"},
        "subject": {"reference": f"Patient/{session.patient_id}"},
        "date": (session.signed_at or session.updated_at).isoformat(),
        "author": [{"reference": f"Practitioner/{session.practitioner_id}"}],
        "content": [{"attachment": _text_attachment(note_text(session), f"Note of {session.started_at:%Y-%m-%d}")}],
        "context": {"encounter": [{"reference": f"Encounter/{session.pk}"}]},
    }
    if session.content_hash:
        note["description"] = f"Signed; SHA-256 of the signed content {session.content_hash}"
    resources = [note]
    for addendum in related_rows(session, "addenda"):
        resources.append(
            {
                "resourceType": "DocumentReference",
                "id": f"addendum-{addendum.pk}",
                "status": "current",
                "docStatus": "amended",
                "type": {"text": "Addendum to a treatment note"},
                "subject": {"reference": f"Patient/{session.patient_id}"},
                "date": addendum.created_at.isoformat(),
                "relatesTo": [{"code": "appends", "target": {"reference": f"DocumentReference/note-{session.pk}"}}],
                "content": [{"attachment": _text_attachment(addendum.text, f"Addendum by {addendum.author}")}],
                "context": {"encounter": [{"reference": f"Encounter/{session.pk}"}]},
            }
        )
    return resources


def _fhir(loaded: dict) -> list[dict]:
    resources = [practitioner_to_fhir(p) for p in loaded["practitioners"]]
    resources += [appointment_to_fhir(a) for a in loaded["appointments"]]
    for session in loaded["sessions"]:
        resources.append(encounter_to_fhir(session))
        resources += procedures_of(session)
        resources += observations_of(session)
        resources += _notes(session)
    return resources


def _anonymise(patient: Patient, *, by, now: dt.datetime) -> dict:
    # Front-desk remarks on appointments are free text about the person, not clinical content.
    Appointment.objects.filter(patient=patient).exclude(notes="").update(notes="", updated_at=now)
    return {}


def _purge_counts(people: list[Patient]) -> dict:
    return {
        "treatment_sessions": TreatmentSession.objects.filter(patient__in=people).count(),
        "appointments": Appointment.objects.filter(patient__in=people).count(),
    }


def _purge(people: list[Patient]) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # Honoured by the signed-note locks for DELETE only, until this transaction ends
            # (or until switched off below).
            cursor.execute("SET LOCAL clinic.retention_purge = 'on'")
    clinic = people[0].clinic
    for model, scope in ((TreatmentSession, "clinical"), (Appointment, "appointments")):
        ids = model.objects.filter(patient__in=people).values_list("pk", flat=True)
        tombstones_record(clinic=clinic, model=model, ids=ids, reason=TombstoneReason.DELETED, scope=scope)
    Addendum.objects.filter(session__patient__in=people).delete()
    TreatmentSession.objects.filter(patient__in=people).delete()
    Appointment.objects.filter(patient__in=people).delete()
    AppointmentSeries.objects.filter(patient__in=people).delete()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL clinic.retention_purge = 'off'")


PART = RecordPart(
    name="sessions",
    load=_load,
    fhir=_fhir,
    html_template="sessions/export_part.html",
    anonymise=_anonymise,
    purge_counts=_purge_counts,
    purge=_purge,
    last_visits={
        "last_session": Max("treatment_sessions__started_at"),
        "last_appointment": Max("appointments__start", filter=~Q(appointments__status=AppointmentStatus.CANCELLED)),
    },
)
