"""FHIR writes: `create` (POST, with `If-None-Exist` and `Idempotency-Key`) and `update` (PUT)
for the resources that accept them (Patient in patients/fhir.py, Appointment in
sessions/fhir/booking.py).

A posted resource is checked in three steps, each a 400 OperationOutcome naming where:
1. it is a JSON object whose `resourceType` is the endpoint's (`Patient.resourceType`);
2. it validates against its fhir.resources R4B model (unknown elements, wrong types, dates
   that are not FHIR dates: `Patient.name[0].family`); writes are rare enough to afford it;
3. the resource's own mapper (`fhir_create`/`fhir_update` of the viewset) reads what the
   clinic stores, calling the same services as the REST API, whose field errors it names as
   FHIRPaths (`field_expressions`).

References (`Patient/12`) are read by `resolve_reference`: malformed, or of a type the element
does not take, is a 400 at the element; a resource that is not in the caller's clinic (missing,
or another clinic's) is a 404 "not-found" at the element, the same answer for both.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import QueryDict
from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError as PydanticValidationError
from rest_framework import exceptions, status
from rest_framework.response import Response

from clinic.api.idempotency import idempotent
from clinic.api.inputs import JSONParser

FHIR_JSON = "application/fhir+json"
IF_NONE_EXIST = "If-None-Exist"
# `Patient/12`, or a full URL ending so (a client may send its base URL with it).
_REFERENCE = re.compile(r"^(?:.*/)?([A-Z][A-Za-z]+)/([0-9]{1,18})$")


class FhirJSONParser(JSONParser):
    """FHIR JSON bodies: `application/fhir+json` (what FHIR clients send) or `application/json`."""

    media_type = FHIR_JSON


class PreconditionFailed(exceptions.APIException):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_detail = "The condition matches more than one resource."
    default_code = "multiple_matches"


class ReferenceNotFound(exceptions.NotFound):
    """A reference to a resource that is not in the caller's clinic: 404 naming the element."""

    def __init__(self, expression: str, reference: str):
        super().__init__({"detail": f"{reference} is not a known resource.", expression: [f"{reference} not found."]})


def _path(resource_type: str, loc: tuple) -> str:
    text = resource_type
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def validate_resource(data, resource_type: str) -> dict:
    """The body as a FHIR resource of `resource_type`, or a 400 naming every problem's element."""
    if not isinstance(data, dict):
        raise exceptions.ValidationError({"non_field_errors": ["The body must be a FHIR resource (a JSON object)."]})
    errors: dict[str, list[str]] = {}
    if data.get("resourceType") != resource_type:
        errors[f"{resource_type}.resourceType"] = [f"Must be {resource_type!r}, not {data.get('resourceType')!r}."]
    try:  # every other problem too, in one answer
        get_fhir_model_class(resource_type).model_validate({**data, "resourceType": resource_type})
    except PydanticValidationError as exc:
        for error in exc.errors():
            message = "Not a FHIR element." if error["type"] == "extra_forbidden" else error["msg"]
            errors.setdefault(_path(resource_type, error["loc"]), []).append(message)
    except (TypeError, ValueError) as exc:  # what pydantic does not wrap
        errors.setdefault("non_field_errors", []).append(f"Not a valid {resource_type}: {exc}")
    if errors:
        raise exceptions.ValidationError(errors)
    return data


def resolve_reference(value, *, expression: str, types: dict[str, object]):
    """The row a reference names: `types` maps each accepted resource type to a queryset
    already limited to the caller's clinic. Returns (resource type, row)."""
    reference = value.get("reference") if isinstance(value, dict) else None
    match = _REFERENCE.match(reference) if isinstance(reference, str) else None
    if match is None or match.group(1) not in types:
        accepted = " or ".join(f"{name}/<id>" for name in types)
        raise exceptions.ValidationError({expression: [f"Give a reference like {accepted}."]})
    resource_type, pk = match.group(1), int(match.group(2))
    row = types[resource_type].filter(pk=pk).first()
    if row is None:
        raise ReferenceNotFound(expression, f"{resource_type}/{pk}")
    return resource_type, row


def django_errors_as_fhir(exc: DjangoValidationError, field_expressions: dict[str, str], resource_type: str):
    """A service's field errors, named by the FHIRPath of the element that carries each field."""
    if not hasattr(exc, "error_dict"):
        return exceptions.ValidationError({"non_field_errors": exc.messages})
    errors = {}
    for name, problems in exc.message_dict.items():
        key = field_expressions.get(name, resource_type if name == "__all__" else f"{resource_type}.{name}")
        errors.setdefault(key if key != resource_type else "non_field_errors", []).extend(problems)
    return exceptions.ValidationError(errors)


class FhirWriteMixin:
    """`create` and `update` for a `FhirViewSet`. The viewset defines `fhir_create(resource)`
    and `fhir_update(obj, resource)`, each returning the saved object (served with `to_fhir`),
    and `resource_type`. `If-None-Exist` runs the viewset's own search on the clinic's rows."""

    parser_classes = [FhirJSONParser, JSONParser]
    idempotent_actions = ("create",)
    resource_type = ""

    def create(self, request, *args, **kwargs):
        # A retried create (same Idempotency-Key) replays the first answer instead of writing twice.
        return idempotent(request, lambda: self._create(request))

    def _create(self, request):
        resource = validate_resource(request.data, self.resource_type)
        condition = request.headers.get(IF_NONE_EXIST)
        if condition is not None:
            matches = self._conditional_matches(condition)
            if len(matches) > 1:
                raise PreconditionFailed(
                    f"{IF_NONE_EXIST}: {condition} matches more than one {self.resource_type}; make it more specific."
                )
            if matches:  # FHIR: the existing resource, 200, nothing created
                return Response(type(self).to_fhir(matches[0]), status=status.HTTP_200_OK)
        obj = self.fhir_create(resource)
        location = request.build_absolute_uri(f"{request.path.rstrip('/')}/{obj.pk}")
        return Response(type(self).to_fhir(obj), status=status.HTTP_201_CREATED, headers={"Location": location})

    def update(self, request, *args, **kwargs):
        obj = self.get_object()  # another clinic's resource is a 404 before the body is read
        resource = validate_resource(request.data, self.resource_type)
        if resource.get("id") != str(obj.pk):
            raise exceptions.ValidationError(
                {f"{self.resource_type}.id": [f"Must be the id in the URL ({obj.pk}) for an update."]}
            )
        return Response(type(self).to_fhir(self.fhir_update(obj, resource)))

    def _conditional_matches(self, condition: str) -> list:
        params = QueryDict(mutable=True)
        for name, value in parse_qsl(condition, keep_blank_values=True):
            params.appendlist(name, value)
        filterset_class = self.filterset_class
        unknown = sorted(set(params) - set(filterset_class.base_filters))
        if not params or unknown:
            problem = f"unknown search parameters {', '.join(unknown)}" if unknown else "no search parameters"
            raise exceptions.ValidationError({IF_NONE_EXIST: [f"A {self.resource_type} search is needed: {problem}."]})
        filterset = filterset_class(data=params, queryset=self.get_queryset(), request=self.request)
        try:
            if not filterset.is_valid():
                raise exceptions.ValidationError(filterset.errors)
            return list(filterset.qs[:2])
        except exceptions.ValidationError as exc:
            detail = exc.detail if isinstance(exc.detail, dict) else {"search": exc.detail}
            messages = [f"{name}: {problem}" for name, problems in detail.items() for problem in problems]
            raise exceptions.ValidationError({IF_NONE_EXIST: messages}) from None
