"""FHIR R4 read API under /fhir/R4/: Patient, Practitioner, Appointment (here); Encounter,
Procedure, Observation (sessions/fhir.py); Questionnaire, QuestionnaireResponse (intake/fhir.py).

Same authentication, clinic scoping and scopes as /api/v1/ (`ClinicAccess`, `ClinicScopedMixin`).
Each resource is a plain dict in FHIR JSON form, built by a `to_fhir(obj) -> dict` mapper: no
`fhir.resources` model is built per request (validating a page of 50 cost more than the rest of
the request). The form is the one those models serialise to: no `None`, no empty list, UTC
date-times with `Z` (`fhir_datetime`, `compact`). Tests validate every resource served with the
`fhir.resources` R4B models (`tests/fhir_validation.py`); the patient export, not a hot path,
still validates at runtime. Searches answer a `searchset` Bundle, cursor-paged with `_count`
(1-100) and a `next` link.

The lead adds Encounter, Procedure, Observation and Questionnaire(Response) the same way: a
`to_fhir(obj) -> dict` mapper and a `FhirViewSet` subclass with its search filters.
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

from clinic.api import (
    DATE_RANGE_ERROR,
    ClinicScopedMixin,
    CursorPagination,
    SupportedDateFilter,
    filter_parameter,
    in_supported_range,
    require_clinical_access,
    scope_clinical_list,
)
from clinic.audit import audit_record
from clinic.models import AuditAction, Practitioner
from clinic.roles import CLINICAL_ROLES
from patients.models import Patient
from sessions.models import Appointment, AppointmentStatus


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


def _meta(obj) -> dict:
    return {"lastUpdated": fhir_datetime(obj.updated_at)}


def patient_to_fhir(patient: Patient) -> dict:
    names = [{"use": "official", "family": patient.family_name, "given": [patient.given_name]}]
    if patient.preferred_name:
        names.append({"use": "usual", "given": [patient.preferred_name]})
    resource = {
        "resourceType": "Patient",
        "id": str(patient.pk),
        "meta": _meta(patient),
        "active": not patient.is_archived,
        "name": names,
    }
    telecom = []
    if patient.email:
        telecom.append({"system": "email", "value": patient.email})
    if patient.mobile_phone:
        telecom.append({"system": "phone", "value": str(patient.mobile_phone), "use": "mobile"})
    if telecom:
        resource["telecom"] = telecom
    if patient.gender:
        resource["gender"] = patient.gender
    if patient.birth_date:
        resource["birthDate"] = patient.birth_date.isoformat()
    address = {}
    lines = [line for line in (patient.address_line1, patient.address_line2) if line]
    if lines:
        address["line"] = lines
    for key, value in (
        ("city", patient.city),
        ("state", patient.region),
        ("postalCode", patient.postal_code),
        ("country", patient.country),
    ):
        if value:
            address[key] = value
    if address:
        resource["address"] = [address]
    return resource


def practitioner_to_fhir(practitioner: Practitioner) -> dict:
    resource = {"resourceType": "Practitioner", "id": str(practitioner.pk), "meta": _meta(practitioner)}
    if practitioner.registration_number:
        identifier = {"value": practitioner.registration_number}
        if practitioner.registration_body:
            identifier["assigner"] = {"display": practitioner.registration_body}
        resource["identifier"] = [identifier]
    resource["active"] = practitioner.is_active
    resource["name"] = [{"text": practitioner.display_name}]
    return resource


_APPOINTMENT_STATUS = {
    AppointmentStatus.BOOKED: "booked",
    AppointmentStatus.CONFIRMED: "booked",
    AppointmentStatus.ARRIVED: "arrived",
    AppointmentStatus.COMPLETED: "fulfilled",
    AppointmentStatus.CANCELLED: "cancelled",
    AppointmentStatus.NO_SHOW: "noshow",
}


def appointment_to_fhir(appointment: Appointment) -> dict:
    return {
        "resourceType": "Appointment",
        "id": str(appointment.pk),
        "meta": _meta(appointment),
        "status": _APPOINTMENT_STATUS[appointment.status],
        "serviceType": [{"text": appointment.service.name}],
        "start": fhir_datetime(appointment.start),
        "end": fhir_datetime(appointment.end),
        "minutesDuration": int((appointment.end - appointment.start).total_seconds() // 60),
        "participant": [
            {
                "actor": {"reference": f"Patient/{appointment.patient_id}", "display": str(appointment.patient)},
                "status": "accepted",
            },
            {
                "actor": {
                    "reference": f"Practitioner/{appointment.practitioner_id}",
                    "display": appointment.practitioner.display_name,
                },
                "status": "accepted",
            },
        ],
    }


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
    `clinic.api.exception_handler`), which is not a FHIR OperationOutcome, so not FHIR's media
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


def _fhir_schema(resource: str):
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


class PatientSearch(filters.FilterSet):
    family = filters.CharFilter(field_name="family_name", lookup_expr="istartswith")
    given = filters.CharFilter(field_name="given_name", lookup_expr="istartswith")
    birthdate = SupportedDateFilter(field_name="birth_date")
    email = filters.CharFilter(field_name="email", lookup_expr="iexact")
    _lastUpdated = FhirDateFilter(field_name="updated_at")  # noqa: N815 - FHIR parameter name

    class Meta:
        model = Patient
        fields: list[str] = []


@_fhir_schema("Patient")
class FhirPatientViewSet(FhirViewSet):
    """FHIR R4 Patient: demographics and contact details (no clinical content)."""

    api_scope = "patients"
    queryset = Patient.objects.all()
    filterset_class = PatientSearch
    to_fhir = staticmethod(patient_to_fhir)


class PractitionerSearch(filters.FilterSet):
    name = filters.CharFilter(field_name="display_name", lookup_expr="icontains")
    active = filters.BooleanFilter(field_name="is_active")
    _lastUpdated = FhirDateFilter(field_name="updated_at")  # noqa: N815

    class Meta:
        model = Practitioner
        fields: list[str] = []


@_fhir_schema("Practitioner")
class FhirPractitionerViewSet(FhirViewSet):
    """FHIR R4 Practitioner: the clinic's therapists."""

    api_scope = "clinic"
    queryset = Practitioner.objects.all()
    filterset_class = PractitionerSearch
    to_fhir = staticmethod(practitioner_to_fhir)


class AppointmentSearch(filters.FilterSet):
    patient = filters.NumberFilter(field_name="patient_id")
    practitioner = filters.NumberFilter(field_name="practitioner_id")
    date = FhirDateFilter(field_name="start")
    status = filters.ChoiceFilter(
        method="filter_status", choices=[(v, v) for v in sorted(set(_APPOINTMENT_STATUS.values()))]
    )
    _lastUpdated = FhirDateFilter(field_name="updated_at")  # noqa: N815

    class Meta:
        model = Appointment
        fields: list[str] = []

    def filter_status(self, qs, name, value):
        return qs.filter(status__in=[ours for ours, theirs in _APPOINTMENT_STATUS.items() if theirs == value])


@_fhir_schema("Appointment")
class FhirAppointmentViewSet(FhirViewSet):
    """FHIR R4 Appointment: who, with whom, when, and its status."""

    api_scope = "appointments"
    # One query for a page of any size, with only the columns the mapper reads.
    queryset = Appointment.objects.select_related("patient", "practitioner", "service").only(
        "id", "updated_at", "status", "start", "end",
        "patient__given_name", "patient__family_name", "practitioner__display_name", "service__name",
    )  # fmt: skip
    filterset_class = AppointmentSearch
    to_fhir = staticmethod(appointment_to_fhir)


# --- clinical resources ---------------------------------------------------------------------


class ClinicalFhirMixin:
    """Clinical FHIR resources: clinical roles or a `clinical:read` key; receptionists get 404
    (audited, as for notes); a therapist's searches hold only the patients they may open, and
    reading one resource of another patient needs break-glass (403, audited). Reads are audited.

    `patient_of(obj)` names the patient a served object belongs to.
    """

    allowed_roles = CLINICAL_ROLES
    api_scope = "clinical"

    def permission_denied(self, request, message=None, code=None):
        if getattr(request, "clinic", None) is not None:
            audit_record(
                action=AuditAction.DENIED, clinic=request.clinic, request=request, via="fhir",
                reason=f"{request.method} {request.path}", extra={"role": request.role or "api-key"},
            )  # fmt: skip
            raise exceptions.NotFound()
        super().permission_denied(request, message=message, code=code)

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
