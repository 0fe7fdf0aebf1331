"""FHIR R4 views of treatment sessions: Encounter, Procedure and Observation.

- Encounter: one treatment session (`Encounter/<session id>`), finished once its note is signed.
- Procedure: one ART, massage or acupuncture entry, with its body site; ids name the entry's
  table (`Procedure/art-12`, `massage-7`, `acupuncture-3`) because each kind has its own ids.
  Home care is advice given, not a procedure performed, so it is not served here.
- Observation: the pain score before and after the session (LOINC 72514-3, 0-10), ids
  `Observation/pain-before-12` and `pain-after-12`.

Procedure and Observation searches page over sessions (`_count` counts sessions) and answer
every resource of the sessions on the page: a fixed number of queries whatever the page size.
All three are clinical: see `clinic.fhir.base.ClinicalFhirMixin` for roles, scopes and break-glass.
"""

from __future__ import annotations

import abc
import re

from django.conf import settings
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions
from rest_framework.response import Response

from clinic.api.clinical import require_clinical_access
from clinic.fhir.base import (
    BUNDLE_SCHEMA,
    FHIR_QUERY_PARAMS,
    FORMAT_PARAMETER,
    RESOURCE_SCHEMA,
    ClinicalFhirMixin,
    FhirDateFilter,
    FhirViewSet,
    fhir_datetime,
    fhir_schema,
)
from clinic.models import AuditAction
from clinic.security.audit import audit_record
from sessions import selectors
from sessions.models import ENTRY_MODELS, EntryKind, NoteStatus, TreatmentSession, related_rows

PAIN_LOINC = {
    "system": "http://loinc.org",
    "code": "72514-3",
    "display": "Pain severity - 0-10 verbal numeric rating [Score] - Reported",
}
SURVEY = {
    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
    "code": "survey",
    "display": "Survey",
}
AMBULATORY = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB", "display": "ambulatory"}
PROCEDURE_KINDS = (EntryKind.ART, EntryKind.MASSAGE, EntryKind.ACUPUNCTURE)
_PROCEDURE_ID = re.compile(r"^(art|massage|acupuncture)-([0-9]{1,18})$")
_OBSERVATION_ID = re.compile(r"^pain-(before|after)-([0-9]{1,18})$")


def _system(name: str) -> str:
    return f"{settings.PUBLIC_BASE_URL}/fhir/CodeSystem/{name}"


def _refs(session: TreatmentSession) -> dict:
    return {
        "subject": {"reference": f"Patient/{session.patient_id}"},
        "encounter": {"reference": f"Encounter/{session.pk}"},
    }


def encounter_to_fhir(session: TreatmentSession) -> dict:
    resource = {
        "resourceType": "Encounter",
        "id": str(session.pk),
        "meta": {"lastUpdated": fhir_datetime(session.updated_at)},
        "status": "finished" if session.status == NoteStatus.SIGNED else "in-progress",
        "class": AMBULATORY,
        "subject": {"reference": f"Patient/{session.patient_id}"},
        "participant": [{"individual": {"reference": f"Practitioner/{session.practitioner_id}"}}],
        "period": {"start": fhir_datetime(session.started_at)},
    }
    if session.appointment_id:
        resource["appointment"] = [{"reference": f"Appointment/{session.appointment_id}"}]
    return resource


def _body_site(entry) -> dict:
    if entry.kind == EntryKind.ART:
        place, catalog = entry.structure, "muscle"
    elif entry.kind == EntryKind.MASSAGE:
        place, catalog = entry.region, "body-region"
    else:
        place, catalog = entry.point, "acupuncture-point"
    side = f" ({entry.get_side_display().lower()})" if entry.side else ""
    return {
        "coding": [{"system": _system(catalog), "code": place.code, "display": place.name}],
        "text": f"{place.name}{side}",
    }


def procedure_to_fhir(session: TreatmentSession, entry) -> dict:
    resource = {
        "resourceType": "Procedure",
        "id": f"{entry.kind}-{entry.pk}",
        "status": "completed" if session.status == NoteStatus.SIGNED else "in-progress",
        "code": {
            "coding": [
                {"system": _system("treatment-technique"), "code": str(entry.kind), "display": entry.kind.label}
            ],
            "text": str(entry),
        },
        **_refs(session),
        "performedDateTime": fhir_datetime(session.started_at),
        "performer": [{"actor": {"reference": f"Practitioner/{session.practitioner_id}"}}],
        "bodySite": [_body_site(entry)],
    }
    if getattr(entry, "response", ""):
        resource["note"] = [{"text": entry.response}]
    return resource


def procedures_of(session: TreatmentSession) -> list[dict]:
    entries = [related_rows(session, name) for name in ("art_entries", "massage_entries", "acupuncture_entries")]
    entries = [entry for rows in entries for entry in rows]
    return [procedure_to_fhir(session, entry) for entry in entries]


def pain_to_fhir(session: TreatmentSession, when: str) -> dict | None:
    score = session.pain_before if when == "before" else session.pain_after
    if score is None:
        return None
    return {
        "resourceType": "Observation",
        "id": f"pain-{when}-{session.pk}",
        "meta": {"lastUpdated": fhir_datetime(session.updated_at)},
        "status": "final" if session.status == NoteStatus.SIGNED else "preliminary",
        "category": [{"coding": [SURVEY]}],
        "code": {"coding": [PAIN_LOINC], "text": f"Pain {when} treatment (0-10)"},
        **_refs(session),
        "effectiveDateTime": fhir_datetime(session.started_at),
        "performer": [{"reference": f"Practitioner/{session.practitioner_id}"}],
        "valueInteger": score,
    }


def observations_of(session: TreatmentSession) -> list[dict]:
    return [found for when in ("before", "after") if (found := pain_to_fhir(session, when)) is not None]


class EncounterSearch(filters.FilterSet):
    patient = filters.NumberFilter(field_name="patient_id")
    subject = filters.NumberFilter(field_name="patient_id")
    practitioner = filters.NumberFilter(field_name="practitioner_id")
    date = FhirDateFilter(field_name="started_at")
    status = filters.ChoiceFilter(method="filter_status", choices=[("finished", "finished"), ("in-progress", "")])
    _lastUpdated = FhirDateFilter(field_name="updated_at")  # noqa: N815 - FHIR parameter name

    class Meta:
        model = TreatmentSession
        fields: list[str] = []

    def filter_status(self, qs, name, value):
        return qs.filter(status=NoteStatus.SIGNED if value == "finished" else NoteStatus.DRAFT)


@fhir_schema("Encounter")
class FhirEncounterViewSet(ClinicalFhirMixin, FhirViewSet):
    """FHIR R4 Encounter: one treatment session (finished once the note is signed)."""

    queryset = TreatmentSession.objects.all()
    filterset_class = EncounterSearch
    to_fhir = staticmethod(encounter_to_fhir)


class SessionResourceSearch(filters.FilterSet):
    patient = filters.NumberFilter(field_name="patient_id")
    subject = filters.NumberFilter(field_name="patient_id")
    encounter = filters.NumberFilter(field_name="pk")
    date = FhirDateFilter(field_name="started_at")

    class Meta:
        model = TreatmentSession
        fields: list[str] = []


def _derived_schema(resource: str, example_id: str):
    return extend_schema_view(
        list=extend_schema(
            summary=f"Search {resource} resources (searchset Bundle; `_count` counts sessions)",
            parameters=[FORMAT_PARAMETER],
            responses={200: OpenApiResponse(response=BUNDLE_SCHEMA)},
        ),
        retrieve=extend_schema(
            summary=f"Read one {resource}",
            parameters=[
                OpenApiParameter("id", str, OpenApiParameter.PATH, description=f"e.g. `{example_id}`"),
                FORMAT_PARAMETER,
            ],
            responses={200: OpenApiResponse(response=RESOURCE_SCHEMA)},
        ),
    )


class _SessionDerivedViewSet(ClinicalFhirMixin, FhirViewSet, abc.ABC):
    """Resources that are parts of a session: paged over sessions, read by a composite id."""

    queryset = TreatmentSession.objects.all()
    filterset_class = SessionResourceSearch
    id_pattern: re.Pattern

    def resources_of(self, page) -> list[dict]:
        return [resource for session in page for resource in self.resources_of_session(session)]

    @abc.abstractmethod
    def resources_of_session(self, session) -> list[dict]:
        """The FHIR resources this session holds."""

    @abc.abstractmethod
    def find(self, session, part: str, number: int) -> dict | None:
        """The resource `part-number` of this session, or None."""

    @abc.abstractmethod
    def session_for(self, part: str, number: int):
        """The session (of the request's clinic, with content) that holds `part-number`."""

    def retrieve(self, request, *args, **kwargs):
        match = self.id_pattern.match(str(kwargs.get(self.lookup_field, "")))
        if match is None:
            raise exceptions.NotFound()
        part, number = match.group(1), int(match.group(2))
        session = self.session_for(part, number)
        if session is None:
            raise exceptions.NotFound()
        resource = self.find(session, part, number)
        if resource is None:
            raise exceptions.NotFound()
        require_clinical_access(request, session.patient, via="fhir")
        audit_record(
            action=AuditAction.VIEW, obj=session, request=request, via="fhir", extra={"resource": resource["id"]}
        )
        return Response(resource)


@_derived_schema("Procedure", "art-12")
class FhirProcedureViewSet(_SessionDerivedViewSet):
    """FHIR R4 Procedure: each ART, massage or acupuncture entry of a session, with its body site."""

    id_pattern = _PROCEDURE_ID

    def get_queryset(self):
        return (
            super()
            .get_queryset()
            .prefetch_related("art_entries__structure", "massage_entries__region", "acupuncture_entries__point")
        )

    def resources_of_session(self, session) -> list[dict]:
        return procedures_of(session)

    def session_for(self, part: str, number: int):
        entry = ENTRY_MODELS[part].objects.filter(pk=number, clinic=self.request.clinic).first()
        if entry is None:
            return None
        return selectors.notes_with_content().select_related("patient").filter(pk=entry.session_id).first()

    def find(self, session, part: str, number: int) -> dict | None:
        return next((p for p in procedures_of(session) if p["id"] == f"{part}-{number}"), None)


@_derived_schema("Observation", "pain-before-12")
class FhirObservationViewSet(_SessionDerivedViewSet):
    """FHIR R4 Observation: the pain score before and after each session (LOINC 72514-3)."""

    id_pattern = _OBSERVATION_ID
    extra_query_params = (*FHIR_QUERY_PARAMS, "code")

    def get_queryset(self):
        return super().get_queryset().exclude(pain_before__isnull=True, pain_after__isnull=True)

    def filter_queryset(self, queryset):
        code = self.request.query_params.get("code")
        if code is not None and code not in {"72514-3", "http://loinc.org|72514-3"}:
            return queryset.none()
        return super().filter_queryset(queryset)

    def resources_of_session(self, session) -> list[dict]:
        return observations_of(session)

    def session_for(self, part: str, number: int):
        return TreatmentSession.objects.filter(pk=number, clinic=self.request.clinic).select_related("patient").first()

    def find(self, session, part: str, number: int) -> dict | None:
        return pain_to_fhir(session, part)
