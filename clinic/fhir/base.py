"""FHIR R4 machinery for /fhir/R4/: the JSON form, searchset Bundles and paging, the FHIR
formats, the `FhirViewSet` base and the clinical-access mixin. Each app serves its own
resources with them: Practitioner (clinic/fhir/resources.py), Patient (patients/fhir.py),
Appointment, Schedule, Slot, Encounter, Procedure, Observation (sessions/fhir/),
Questionnaire and QuestionnaireResponse (intake/fhir.py); clinic/urls.py mounts them.

Same authentication, clinic scoping and scopes as /api/v1/ (`ClinicAccess`, `ClinicScopedMixin`).
Each resource is a plain dict in FHIR JSON form, built by a `to_fhir(obj) -> dict` mapper: no
`fhir.resources` model is built per request (validating a page of 50 cost more than the rest of
the request). The form is the one those models serialise to: no `None`, no empty list, UTC
date-times with `Z` (`fhir_datetime`, `compact`). Tests validate every resource served with the
`fhir.resources` R4B models (`tests/fhir_validation.py`); the patient export, not a hot path,
still validates at runtime. Searches answer a `searchset` Bundle, cursor-paged with `_count`
(1-100) and a `next` link.
"""

from __future__ import annotations

import datetime as dt

from django.utils.dateparse import parse_date, parse_datetime
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, viewsets
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from clinic.api.clinical import ClinicalAccessMixin, require_clinical_access, scope_clinical_list
from clinic.api.conventions import ClinicScopedMixin, CursorPagination
from clinic.api.inputs import DATE_RANGE_ERROR, filter_parameter, in_supported_range
from clinic.models import AuditAction
from clinic.security.audit import audit_record


def fhir_datetime(value: dt.datetime) -> str:
    """A FHIR dateTime/instant as fhir.resources writes it: ISO 8601, a zero offset as `Z`."""
    text = value.isoformat()
    return f"{text[:-6]}Z" if text.endswith("+00:00") else text


def compact(value):
    """Drop `None` and empty lists from every object, as fhir.resources does when it serialises
    (FHIR has no null and no empty array). For mappers whose shape depends on data."""
    if isinstance(value, dict):
        return {key: compact(item) for key, item in value.items() if item is not None and item != []}
    if isinstance(value, list):
        return [compact(item) for item in value]
    return value


def fhir_meta(obj) -> dict:
    return {"lastUpdated": fhir_datetime(obj.updated_at)}


def searchset(request, resources: list[dict], *, links: list[dict], total: int | None = None) -> dict:
    """A searchset Bundle of these resources, each with its full URL under the request's path."""
    base = request.build_absolute_uri(request.path).rstrip("/")
    bundle: dict = {"resourceType": "Bundle", "type": "searchset"}
    if total is not None:
        bundle["total"] = total
    bundle["link"] = links
    if resources:
        bundle["entry"] = [
            {"fullUrl": f"{base}/{resource['id']}", "resource": resource, "search": {"mode": "match"}}
            for resource in resources
        ]
    return bundle


class FhirPagination(CursorPagination):
    page_size_query_param = "_count"

    def get_paginated_response(self, data):
        links = [{"relation": "self", "url": self.request.build_absolute_uri()}]
        next_link = self.get_next_link()
        if next_link:
            links.append({"relation": "next", "url": next_link})
        return Response(searchset(self.request, data, links=links))

    def get_paginated_response_schema(self, schema):
        return BUNDLE_SCHEMA


RESOURCE_SCHEMA = {
    "type": "object",
    "description": "A FHIR R4 resource (https://hl7.org/fhir/R4B/).",
    "properties": {"resourceType": {"type": "string"}, "id": {"type": "string"}},
    "required": ["resourceType", "id"],
    "additionalProperties": True,
}
BUNDLE_SCHEMA = {
    "type": "object",
    "description": "A FHIR searchset Bundle.",
    "properties": {
        "resourceType": {"type": "string", "enum": ["Bundle"]},
        "type": {"type": "string", "enum": ["searchset"]},
        "link": {"type": "array", "items": {"type": "object", "additionalProperties": True}},
        "entry": {"type": "array", "items": {"type": "object", "additionalProperties": True}},
    },
    "required": ["resourceType", "type"],
}


# --- format: FHIR JSON, served as application/fhir+json -----------------------------------------

FHIR_JSON = "application/fhir+json"
_JSON_MEDIA_TYPES = frozenset({FHIR_JSON, "application/json"})
FORMATS = ("json", "application/json", FHIR_JSON)
# Query parameters every FHIR search and read understands, whatever its filters.
FHIR_QUERY_PARAMS = ("_count", "_format")
FORMAT_PARAMETER = OpenApiParameter(
    "_format",
    str,
    OpenApiParameter.QUERY,
    enum=FORMATS,
    description="Overrides `Accept`; the answer is `application/fhir+json` in every case (JSON is the only format).",
)


class FhirJSONRenderer(JSONRenderer):
    """FHIR's JSON format with its media type (R4 http.html#mime-type)."""

    media_type = FHIR_JSON


class FhirContentNegotiation(DefaultContentNegotiation):
    """JSON is the only format, answered as `application/fhir+json`. `Accept` may name
    `application/fhir+json`, `application/json`, `application/*` or `*/*` (or be absent);
    `_format` (json, application/json, application/fhir+json) overrides `Accept`, as FHIR's
    REST API says. Anything else is 406."""

    def select_renderer(self, request, renderers, format_suffix=None):
        renderer = renderers[0]
        requested = request.query_params.get("_format")
        if requested is not None:
            # An unescaped `+` in a query string reads as a space: application/fhir json.
            if requested.replace(" ", "+") not in FORMATS:
                raise exceptions.NotAcceptable(f"_format: use one of {', '.join(FORMATS)}.")
            return renderer, renderer.media_type
        accept = request.META.get("HTTP_ACCEPT", "")
        ranges = {media_range.split(";")[0].strip().lower() for media_range in accept.split(",")}
        if not accept.strip() or ranges & (_JSON_MEDIA_TYPES | {"*/*", "application/*"}):
            return renderer, renderer.media_type
        raise exceptions.NotAcceptable(f"FHIR resources are JSON: accept {FHIR_JSON} or application/json.")


class FhirFormatMixin:
    """Resources and Bundles as `application/fhir+json`. Errors keep the API's error body (see
    `clinic.api.conventions.exception_handler`), which is not a FHIR OperationOutcome, so not FHIR's media
    type: `application/json`, as everywhere else."""

    renderer_classes = [FhirJSONRenderer]
    content_negotiation_class = FhirContentNegotiation

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        response.content_type = "application/json"
        return response


class FhirViewSet(FhirFormatMixin, ClinicScopedMixin, viewsets.ReadOnlyModelViewSet):
    pagination_class = FhirPagination
    extra_query_params = FHIR_QUERY_PARAMS
    to_fhir = staticmethod(lambda obj: {})
    ordering_fields: list[str] = []

    def get_serializer(self, *args, **kwargs):  # FHIR mappers replace serializers
        raise exceptions.MethodNotAllowed(self.request.method)

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response([type(self).to_fhir(obj) for obj in page])

    def retrieve(self, request, *args, **kwargs):
        return Response(type(self).to_fhir(self.get_object()))


def fhir_schema(resource: str):
    return extend_schema_view(
        list=extend_schema(
            summary=f"Search {resource} resources (searchset Bundle)",
            parameters=[FORMAT_PARAMETER],
            responses={200: OpenApiResponse(response=BUNDLE_SCHEMA)},
        ),
        retrieve=extend_schema(
            summary=f"Read one {resource}",
            parameters=[FORMAT_PARAMETER],
            responses={200: OpenApiResponse(response=RESOURCE_SCHEMA)},
        ),
    )


def fhir_date_value(raw: str, *, parameter: str) -> dt.date | dt.datetime:
    """A FHIR search date (`2026-11-21`) or date-time (naive means UTC), in the supported
    years; anything else is a 400 naming the parameter."""
    try:
        when = parse_datetime(raw) if "T" in raw else parse_date(raw)
    except ValueError:  # well formed but impossible: 2027-02-30, hour 25, offset +24:00
        when = None
    if when is None:
        raise exceptions.ValidationError({parameter: ["Use a FHIR date like ge2026-11-21."]})
    if not in_supported_range(when):
        raise exceptions.ValidationError({parameter: [DATE_RANGE_ERROR]})
    if isinstance(when, dt.datetime) and when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when


class FhirDateFilter(filters.CharFilter):
    """FHIR date search: `2026-11-21`, or with a prefix `ge`, `gt`, `le`, `lt`, `eq`."""

    _LOOKUPS = {"ge": "gte", "gt": "gt", "le": "lte", "lt": "lt", "eq": "date"}

    def filter(self, qs, value):
        if not value:
            return qs
        prefix, raw = (value[:2], value[2:]) if value[:2] in self._LOOKUPS else ("eq", value)
        when = fhir_date_value(raw, parameter=filter_parameter(self))
        if isinstance(when, dt.datetime):
            when = when.astimezone(dt.UTC)  # PostgreSQL refuses some offsets ISO 8601 allows, so send UTC
        lookup = self._LOOKUPS[prefix]
        if lookup != "date" and "T" not in raw:
            lookup = f"date__{lookup}"
        return qs.filter(**{f"{self.field_name}__{lookup}": when})


# --- clinical resources ---------------------------------------------------------------------


class ClinicalFhirMixin(ClinicalAccessMixin):
    """Clinical FHIR resources: clinical roles or a `clinical:read` key; receptionists get 404
    (audited, as for notes); a therapist's searches hold only the patients they may open, and
    reading one resource of another patient needs break-glass (403, audited). Reads are audited.

    `patient_of(obj)` names the patient a served object belongs to.
    """

    audit_via = "fhir"

    def patient_of(self, obj):
        return obj.patient

    def get_queryset(self):
        rows = super().get_queryset()
        return scope_clinical_list(rows, self.request) if self.action == "list" else rows

    def get_object(self):
        obj = super().get_object()
        require_clinical_access(self.request, self.patient_of(obj), via="fhir")
        audit_record(action=AuditAction.VIEW, obj=obj, request=self.request, via="fhir")
        return obj

    def audit_search(self, rows) -> None:
        audit_record(
            action=AuditAction.LIST, clinic=self.request.clinic, request=self.request, via="fhir",
            extra={"object_type": self.get_queryset().model._meta.label_lower, "ids": [row.pk for row in rows]},
        )  # fmt: skip

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        self.audit_search(page)
        return self.get_paginated_response(self.resources_of(page))

    def resources_of(self, page) -> list[dict]:
        return [type(self).to_fhir(obj) for obj in page]
