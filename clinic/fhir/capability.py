"""`GET /fhir/R4/metadata`: the server's CapabilityStatement, generated from the resources the
URL map registers (clinic/urls.py passes its FHIR router's registry), so it cannot drift from
what is served: each resource's interactions come from the viewset's actions, its search
parameters from its FilterSet (type from the filter class, documentation from its help text),
`_include` values from `fhir_includes`, and the scope an API key needs from the same
`required_scope` the permission check uses.

Public, like FHIR clients expect (they read it before they authenticate): it holds no data of
any clinic.
"""

from __future__ import annotations

from django.utils import timezone
from django_filters import BooleanFilter, ChoiceFilter, ModelChoiceFilter, NumberFilter
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions
from rest_framework.response import Response
from rest_framework.views import APIView

from clinic.api.conventions import required_scope
from clinic.fhir.base import (
    FORMAT_PARAMETER,
    FORMATS,
    FhirDateFilter,
    FhirFormatMixin,
    FhirReferenceFilter,
    fhir_datetime,
)
from clinic.fhir.writes import FhirWriteMixin
from clinic.models import Practitioner

FHIR_VERSION = "4.0.1"
STARTED = timezone.now()  # the statement describes this running server: dated when it started


def search_type(declared) -> str:
    """The FHIR search parameter type a filter implements."""
    if isinstance(declared, FhirDateFilter):
        return "date"
    if isinstance(declared, FhirReferenceFilter | ModelChoiceFilter):
        return "reference"
    if isinstance(declared, ChoiceFilter | BooleanFilter):
        return "token"
    if isinstance(declared, NumberFilter):
        return "reference" if declared.field_name.endswith("_id") else "number"
    return "string"


def search_params(viewset) -> list[dict]:
    declared = getattr(viewset, "fhir_search_params", None)
    if declared is not None:  # a computed search (Slot) lists its own
        return [{"name": name, "type": kind, "documentation": text} for name, kind, text in declared]
    filterset = getattr(viewset, "filterset_class", None)
    if filterset is None:
        return []
    types = getattr(filterset, "FHIR_TYPES", {})
    found = []
    for name, item in filterset.base_filters.items():
        entry = {"name": name, "type": types.get(name) or search_type(item)}
        text = item.extra.get("help_text")
        if text:
            entry["documentation"] = str(text)
        found.append(entry)
    return found


def _probe(method: str):
    return type("ScopeProbe", (), {"method": method})()


def resource_capability(prefix: str, viewset) -> dict:
    interactions = [
        code
        for code, action in (("read", "retrieve"), ("update", "update"), ("search-type", "list"), ("create", "create"))
        if hasattr(viewset, action)
    ]
    writes = issubclass(viewset, FhirWriteMixin)
    scope = required_scope(viewset, _probe("GET")).removesuffix(":read")
    who = f"API keys need `{scope}:read`" + (f" to read and `{scope}:write` to write." if writes else ".")
    entry: dict = {
        "type": prefix,
        "profile": f"http://hl7.org/fhir/StructureDefinition/{prefix}",
        "documentation": f"{(viewset.__doc__ or '').strip().splitlines()[0]} {who}".strip(),
        "interaction": [{"code": code} for code in interactions],
        "versioning": "no-version",
        "readHistory": False,
    }
    if writes:
        entry["updateCreate"] = False
        entry["conditionalCreate"] = True
    includes = list(getattr(viewset, "fhir_includes", ()))
    if includes:
        entry["searchInclude"] = includes
    params = search_params(viewset)
    if params:
        entry["searchParam"] = params
    return entry


def capability_statement(request, registry) -> dict:
    base = request.build_absolute_uri("/fhir/R4").rstrip("/")
    return {
        "resourceType": "CapabilityStatement",
        "name": "ClinicFhirServer",
        "title": "Clinic practice management: FHIR R4 API",
        "status": "active",
        "date": fhir_datetime(STARTED),
        "publisher": "Clinic",
        "kind": "instance",
        "software": {"name": "clinic"},
        "implementation": {"description": "FHIR R4 API of the clinic's practice management server", "url": base},
        "fhirVersion": FHIR_VERSION,
        "format": list(FORMATS),
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "Every resource is scoped to the caller's clinic: a resource of another clinic is 404. "
                    "Searches answer searchset Bundles paged with _count (1-100) and a next link; an unknown "
                    "search parameter is 400. Creates honour Idempotency-Key like the REST API."
                ),
                "security": {
                    "cors": False,
                    "description": "Authorization: Bearer <API key of one clinic>, or a staff session. "
                    "Keys are scoped per resource (read/write).",
                },
                "resource": [resource_capability(prefix, viewset) for prefix, viewset, _ in registry],
            }
        ],
    }


class CapabilityStatementView(FhirFormatMixin, APIView):
    """FHIR R4 CapabilityStatement: what this server serves (public, no clinic data)."""

    authentication_classes: list = []  # public: credentials are neither needed nor read
    permission_classes = [permissions.AllowAny]
    registry: list = []  # the FHIR router's (prefix, viewset, basename), given by clinic/urls.py
    isolation_model = Practitioner  # serves no rows: the generated isolation tests make one and expect none back

    @extend_schema(
        summary="The server's CapabilityStatement",
        parameters=[FORMAT_PARAMETER],
        responses={200: OpenApiResponse(response={"type": "object", "additionalProperties": True})},
        auth=[],
    )
    def get(self, request):
        return Response(capability_statement(request, self.registry))
