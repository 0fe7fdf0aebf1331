"""This app's share of a patient's record (patients.privacy): intake submissions and the
questionnaires they answer, for export; the typed signature, the submitting device, drafts and
open links, for erasure; submissions, links and flags, for retention.
Registered from IntakeConfig.ready()."""

from __future__ import annotations

import datetime as dt

from clinic.models import TombstoneReason
from clinic.tombstones import tombstones_record
from intake.fhir import questionnaire_resource, submission_resource
from intake.models import IntakeLink, IntakeLinkStatus, IntakeSubmission, PatientFlag
from patients.models import Patient
from patients.privacy import RecordPart


def _load(patient: Patient) -> dict:
    submissions = list(
        IntakeSubmission.objects.filter(patient=patient)
        .select_related("questionnaire", "patient")
        .order_by("submitted_at")
    )
    return {
        "submissions": submissions,
        "summaries": [{"submission": s, "summary": s.questionnaire.form.summary(s.answers)} for s in submissions],
    }


def _fhir(loaded: dict) -> list[dict]:
    submissions = loaded["submissions"]
    questionnaires = {s.questionnaire_id: s.questionnaire for s in submissions}
    return [questionnaire_resource(q) for q in questionnaires.values()] + [submission_resource(s) for s in submissions]


def _anonymise(patient: Patient, *, by, now: dt.datetime) -> dict:
    # Intake: the typed signature and the submitting device; unsubmitted drafts entirely.
    submissions = IntakeSubmission.objects.filter(patient=patient).update(
        signature_name="", ip_address=None, user_agent=""
    )
    IntakeLink.objects.filter(patient=patient).update(draft_answers={})
    # An open link would still greet the bearer and accept answers for this person.
    IntakeLink.objects.filter(patient=patient, status=IntakeLinkStatus.OPEN).update(
        status=IntakeLinkStatus.REVOKED, revoked_at=now, revoked_by=by
    )
    return {"intake_submissions": submissions}


def _purge_counts(people: list[Patient]) -> dict:
    return {"intake_submissions": IntakeSubmission.objects.filter(patient__in=people).count()}


def _purge(people: list[Patient]) -> None:
    # A submission protects its link; both would otherwise cascade from the patient together.
    PatientFlag.objects.filter(patient__in=people).delete()
    submissions = IntakeSubmission.objects.filter(patient__in=people).values_list("pk", flat=True)
    tombstones_record(
        clinic=people[0].clinic, model=IntakeSubmission, ids=submissions, reason=TombstoneReason.DELETED,
        scope="clinical",
    )  # fmt: skip
    IntakeSubmission.objects.filter(patient__in=people).delete()
    IntakeLink.objects.filter(patient__in=people).delete()


PART = RecordPart(
    name="intake",
    load=_load,
    fhir=_fhir,
    html_template="intake/export_part.html",
    anonymise=_anonymise,
    purge_counts=_purge_counts,
    purge=_purge,
)
