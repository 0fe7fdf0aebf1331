"""This app's share of a patient's record (patients.privacy): outcome responses and their scores
for export; open links for erasure (revoked: a bearer could still answer for the person); courses,
links and responses for retention. Registered from OutcomesConfig.ready()."""

from __future__ import annotations

import datetime as dt

from outcomes.fhir import response_to_fhir, score_to_fhir
from outcomes.models import OutcomeCourse, OutcomeLink, OutcomeLinkStatus, OutcomeResponse
from patients.models import Patient
from patients.privacy import RecordPart


def _load(patient: Patient) -> dict:
    return {"responses": list(OutcomeResponse.objects.filter(patient=patient).order_by("recorded_on", "id"))}


def _fhir(loaded: dict) -> list[dict]:
    resources = []
    for response in loaded["responses"]:
        resources.append(response_to_fhir(response))
        observation = score_to_fhir(response)
        if observation is not None:
            resources.append(observation)
    return resources


def _anonymise(patient: Patient, *, by, now: dt.datetime) -> dict:
    revoked = OutcomeLink.objects.filter(patient=patient, status=OutcomeLinkStatus.OPEN).update(
        status=OutcomeLinkStatus.REVOKED
    )
    return {"outcome_links_revoked": revoked}


def _purge_counts(people: list[Patient]) -> dict:
    return {"outcome_responses": OutcomeResponse.objects.filter(patient__in=people).count()}


def _purge(people: list[Patient]) -> None:
    OutcomeResponse.objects.filter(patient__in=people).delete()
    OutcomeLink.objects.filter(patient__in=people).delete()
    OutcomeCourse.objects.filter(patient__in=people).delete()


PART = RecordPart(
    name="outcomes",
    load=_load,
    fhir=_fhir,
    html_template="outcomes/export_part.html",
    anonymise=_anonymise,
    purge_counts=_purge_counts,
    purge=_purge,
)
