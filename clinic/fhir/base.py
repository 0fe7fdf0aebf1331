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

from django import forms
from django.db.models import Q
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
from clinic.fhir.outcome import outcome_from_error
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
    """Resources and Bundles as `application/fhir+json`, and so are errors: the API's error
    body (`clinic.api.conventions.exception_handler` decides status and messages) rewritten as
    an OperationOutcome whose issues name the query parameter, header or element at fault
    (`clinic.fhir.outcome`)."""

    renderer_classes = [FhirJSONRenderer]
    content_negotiation_class = FhirContentNegotiation

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        if isinstance(response.data, dict) and "status" in response.data:
            response.data = outcome_from_error(
                response.data,
                status=response.status_code,
                resource_type=fhir_resource_type(self.request),
                query=None if self.request.method in ("GET", "HEAD") else set(self.request.GET),
                headers={name.lower() for name in self.request.headers},
            )
        # Content negotiation may have failed (406): the error is FHIR JSON all the same.
        self.request.accepted_renderer = FhirJSONRenderer()
        self.request.accepted_media_type = FHIR_JSON
        response.content_type = FHIR_JSON
        return response


def fhir_resource_type(request) -> str:
    """`Patient` for /fhir/R4/Patient/12: the type an error's FHIRPaths start with."""
    parts = request.path.split("/")
    return parts[3] if len(parts) > 3 and parts[3] else "Resource"


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


def resource_body_schema(resource: str) -> dict:
    return {
        "type": "object",
        "description": f"A FHIR R4 {resource} resource (https://hl7.org/fhir/R4B/{resource.lower()}.html).",
        "properties": {"resourceType": {"type": "string", "enum": [resource]}, "id": {"type": "string"}},
        "required": ["resourceType"],
        "additionalProperties": True,
    }


IF_NONE_EXIST_PARAMETER = OpenApiParameter(
    "If-None-Exist",
    str,
    OpenApiParameter.HEADER,
    description="Conditional create: a search (`family=Moss&birthdate=1980-04-02`); one match is "
    "answered 200 with it and nothing is created, several are 412.",
)


def fhir_schema(resource: str, *, writes: bool = False):
    """OpenAPI for a FHIR resource's search and read, and with `writes` its create and update."""
    operations = {
        "list": extend_schema(
            summary=f"Search {resource} resources (searchset Bundle)",
            parameters=[FORMAT_PARAMETER],
            responses={200: OpenApiResponse(response=BUNDLE_SCHEMA)},
        ),
        "retrieve": extend_schema(
            summary=f"Read one {resource}",
            parameters=[FORMAT_PARAMETER],
            responses={200: OpenApiResponse(response=RESOURCE_SCHEMA)},
        ),
    }
    if writes:
        body = {FHIR_JSON: resource_body_schema(resource), "application/json": resource_body_schema(resource)}
        operations["create"] = extend_schema(
            summary=f"Create a {resource} (conditional with If-None-Exist)",
            parameters=[FORMAT_PARAMETER, IF_NONE_EXIST_PARAMETER],
            request=body,
            responses={
                201: OpenApiResponse(response=RESOURCE_SCHEMA, description="Created."),
                200: OpenApiResponse(response=RESOURCE_SCHEMA, description="If-None-Exist matched this one."),
            },
        )
        operations["update"] = extend_schema(
            summary=f"Update a {resource} (the whole resource)",
            parameters=[FORMAT_PARAMETER],
            request=body,
            responses={200: OpenApiResponse(response=RESOURCE_SCHEMA)},
        )
    return extend_schema_view(**operations)


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


class _RepeatedValues(forms.Widget):
    """Every value of a repeated query parameter: FHIR ANDs them (`date=ge2026-01-01&date=lt2026-02-01`)."""

    def value_from_datadict(self, data, files, name):
        if hasattr(data, "getlist"):
            return data.getlist(name)
        return [data[name]] if name in data else []


class RepeatedCharField(forms.CharField):
    widget = _RepeatedValues

    def to_python(self, value):
        values = value if isinstance(value, list | tuple) else [value]
        return [str(item).strip() for item in values if item not in (None, "")]


class FhirDateFilter(filters.CharFilter):
    """FHIR date search: `2026-11-21`, or with a prefix `ge`, `gt`, `le`, `lt`, `eq`; repeated
    values all apply (a range). `date_only` for a date column (Patient.birthdate)."""

    field_class = RepeatedCharField
    _LOOKUPS = {"ge": "gte", "gt": "gt", "le": "lte", "lt": "lt", "eq": "date"}

    def __init__(self, *args, date_only: bool = False, **kwargs):
        self.date_only = date_only
        super().__init__(*args, **kwargs)

    def filter(self, qs, value):
        for one in value or []:
            qs = self._filter_one(qs, one)
        return qs

    def _filter_one(self, qs, value):
        prefix, raw = (value[:2], value[2:]) if value[:2] in self._LOOKUPS else ("eq", value)
        when = fhir_date_value(raw, parameter=filter_parameter(self))
        lookup = self._LOOKUPS[prefix]
        if self.date_only:
            if isinstance(when, dt.datetime):
                raise exceptions.ValidationError({filter_parameter(self): ["Use a date like 1980-04-02."]})
            return qs.filter(**{f"{self.field_name}__{'exact' if lookup == 'date' else lookup}": when})
        if isinstance(when, dt.datetime):
            when = when.astimezone(dt.UTC)  # PostgreSQL refuses some offsets ISO 8601 allows, so send UTC
        if lookup != "date" and "T" not in raw:
            lookup = f"date__{lookup}"
        return qs.filter(**{f"{self.field_name}__{lookup}": when})


def parse_reference_value(value: str, types: tuple[str, ...], *, parameter: str) -> tuple[str | None, int | None]:
    """A reference search value: `12`, `Patient/12` or a URL ending so. (type or None, id), or
    (type, None) for an id no row can have; a malformed value or another type is a 400."""
    tail = value.rstrip("/").split("/")
    kind, pk = (tail[-2], tail[-1]) if len(tail) >= 2 else (None, tail[-1])
    if kind is not None and kind not in types:
        raise exceptions.ValidationError({parameter: [f"Give {' or '.join(types)} references, like {types[0]}/12."]})
    if not pk.isascii() or not pk.isdigit():
        raise exceptions.ValidationError({parameter: [f"Give a reference like {types[0]}/12 or an id."]})
    return kind, (int(pk) if len(pk) <= 18 else None)


class FhirReferenceFilter(filters.CharFilter):
    """FHIR reference search (`patient=Patient/12` or `patient=12`): the rows pointing at that
    resource. An id of another clinic matches nothing, like an id that exists nowhere."""

    def __init__(self, *args, types: dict[str, str], **kwargs):
        self.types = types  # resource type -> the column holding its id
        super().__init__(*args, **kwargs)

    def filter(self, qs, value):
        if not value:
            return qs
        kind, pk = parse_reference_value(value, tuple(self.types), parameter=filter_parameter(self))
        if pk is None:
            return qs.none()
        columns = [self.types[kind]] if kind else list(self.types.values())
        condition = Q()
        for column in columns:
            condition |= Q(**{column: pk})
        return qs.filter(condition)


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
